//! `paritygate gate --url URL --service NAME [--wait --timeout 30m]`: a running paritygate's
//! verdict for CI scripts. Exit 0 on pass or warn, 1 on fail, 3 on pending (or when `--wait`
//! timed out), 2 when the question cannot be asked (unknown service, refused token, bad usage,
//! unreachable server without `--wait`). Prints the explanation: verdict, reasons, criteria.

use super::EXIT_BAD_INPUT;
use serde_json::Value;
use std::time::{Duration, Instant};

pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_PENDING: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Base URL of a running `paritygate serve`, e.g. `http://paritygate:8080`.
    #[arg(long, env = "PARITYGATE_URL")]
    url: String,
    /// The service whose gate to read.
    #[arg(long)]
    service: String,
    /// Poll until the verdict is pass, warn or fail (or `--timeout` runs out: exit 3).
    #[arg(long)]
    wait: bool,
    /// How long `--wait` may take: `30s`, `30m`, `2h` (also `500ms`).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    timeout: Duration,
    /// Time between polls with `--wait`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    interval: Duration,
    /// Bearer token, for servers that set `require_token_for_reads`.
    #[arg(long, env = "PARITYGATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// `<n>ms`, `<n>s`, `<n>m` or `<n>h`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{raw}`: add a unit (ms, s, m or h), e.g. 30m"))?;
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{raw}`: expected a whole number and a unit, e.g. 30m"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("`{raw}`: unit must be ms, s, m or h")),
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{raw}`: too long"))
}

/// One poll's outcome.
enum Poll {
    /// The gate as served (HTTP 200).
    Gate(Value),
    /// Will not get better by waiting (404, 401, 403, 400): exit 2 at once.
    Refused(String),
    /// May get better (connection refused, 5xx, timeouts).
    Transient(String),
}

async fn poll(client: &reqwest::Client, url: &str, token: Option<&str>) -> Poll {
    let mut request = client.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Poll::Transient(format!("GET {url}: {e}")),
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = || {
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_owned())
    };
    if status.is_success() {
        match serde_json::from_str::<Value>(&body) {
            Ok(v) if v["verdict"].is_string() => Poll::Gate(v),
            _ => Poll::Transient(format!("GET {url}: answer without a verdict")),
        }
    } else if status.is_server_error() {
        Poll::Transient(format!("GET {url}: {status}: {}", message()))
    } else {
        Poll::Refused(format!("GET {url}: {status}: {}", message()))
    }
}

/// The gate as a person reads it: verdict, reasons, then each criterion.
pub fn render(gate: &Value) -> String {
    let s = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut out = format!(
        "{}: {} (raw verdict {}, evaluated at {})\n",
        s(&gate["service"]),
        s(&gate["verdict"]),
        s(&gate["raw_verdict"]),
        s(&gate["evaluated_at"])
    );
    for r in gate["reasons"].as_array().into_iter().flatten() {
        out.push_str(&format!("  - {}\n", s(r)));
    }
    let criteria = gate["criteria"].as_array().into_iter().flatten();
    for c in criteria {
        out.push_str(&format!(
            "  {:<18} {:<14} observed {} threshold {}\n      {}\n",
            s(&c["name"]),
            s(&c["status"]),
            c["observed"],
            c["threshold"],
            s(&c["explanation"])
        ));
    }
    out
}

fn exit_code(verdict: &str) -> Option<u8> {
    match verdict {
        "pass" | "warn" => Some(EXIT_PASS),
        "fail" => Some(EXIT_FAIL),
        _ => None,
    }
}

async fn run_async(args: &GateArgs) -> u8 {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: http client: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let url = format!(
        "{}/api/v1/services/{}/gate",
        args.url.trim_end_matches('/'),
        args.service
    );
    let deadline = Instant::now() + args.timeout;
    let mut last_shown = String::new();
    loop {
        match poll(&client, &url, args.token.as_deref()).await {
            Poll::Gate(gate) => {
                let verdict = gate["verdict"].as_str().unwrap_or_default().to_owned();
                let text = render(&gate);
                if let Some(code) = exit_code(&verdict) {
                    print!("{text}");
                    return code;
                }
                if !args.wait {
                    print!("{text}");
                    return EXIT_PENDING;
                }
                if text != last_shown {
                    eprint!("waiting: {text}");
                    last_shown = text;
                }
            }
            Poll::Refused(e) => {
                eprintln!("error: {e}");
                return EXIT_BAD_INPUT;
            }
            Poll::Transient(e) if !args.wait => {
                eprintln!("error: {e}");
                return EXIT_BAD_INPUT;
            }
            Poll::Transient(e) => eprintln!("warning: {e}; retrying"),
        }
        let now = Instant::now();
        if now >= deadline {
            print!("{last_shown}");
            println!(
                "timed out after {:?} waiting for `{}` to pass or fail",
                args.timeout, args.service
            );
            return EXIT_PENDING;
        }
        tokio::time::sleep(args.interval.min(deadline - now)).await;
    }
}

pub fn run(args: &GateArgs) -> u8 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run_async(args)),
        Err(e) => {
            eprintln!("error: runtime: {e}");
            EXIT_BAD_INPUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["30", "m", "1.5h", "3d", "-1s", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn render_lists_reasons_and_criteria() {
        let gate = serde_json::json!({"service": "orders", "verdict": "fail", "raw_verdict": "fail",
            "evaluated_at": "2026-11-24T12:00:00Z", "reasons": ["2 keys differ"],
            "criteria": [{"name": "key_parity", "status": "fail", "observed": {"total": 2},
                "threshold": {"max_mismatched_keys": 0}, "explanation": "2 settled keys differ"}]});
        let text = render(&gate);
        assert!(text.starts_with("orders: fail (raw verdict fail, evaluated at 2026-11-24T12:00:00Z)\n  - 2 keys differ\n"), "{text}");
        assert!(text.contains("key_parity         fail           observed {\"total\":2} threshold {\"max_mismatched_keys\":0}\n      2 settled keys differ\n"), "{text}");
        assert_eq!(
            (exit_code("warn"), exit_code("fail"), exit_code("pending")),
            (Some(0), Some(1), None)
        );
    }
}
