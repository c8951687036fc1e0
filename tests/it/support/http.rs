//! A small JSON client for the serve API, and JSON accessors with readable failures.

use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

/// The API of one running instance.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .expect("http client");
        Api {
            base: format!("http://{addr}"),
            client,
        }
    }

    /// `GET path` → (status, raw body); `Err` when the request itself fails.
    async fn fetch(&self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: body: {e}"))?;
        Ok((status, body.to_vec()))
    }

    /// `GET path` → (status, body as JSON or `null`); `Err` when the request itself fails.
    pub async fn get(&self, path: &str) -> Result<(u16, Value), String> {
        let (status, body) = self.fetch(path).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// `POST path` with a JSON `body` and bearer `token` → (status, body as JSON or `null`).
    pub async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .post(&url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("POST {url}: body: {e}"))?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// `GET path` as text, whatever the status (`/metrics`).
    pub async fn text(&self, path: &str) -> Result<String, String> {
        let (_, body) = self.fetch(path).await?;
        String::from_utf8(body).map_err(|e| format!("GET {path}: body: {e}"))
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn json(&self, path: &str) -> Result<Value, String> {
        match self.get(path).await? {
            (200, body) => Ok(body),
            (status, body) => Err(format!("GET {path}: {status} {body}")),
        }
    }

    /// The status code of `GET path` (`/readyz`, `/healthz`).
    pub async fn status(&self, path: &str) -> Result<u16, String> {
        self.get(path).await.map(|(status, _)| status)
    }

    /// The sum of every sample of a Prometheus counter or gauge in `GET /metrics` (this process's).
    pub async fn metric_sum(&self, name: &str) -> Result<f64, String> {
        let text = self.text("/metrics").await?;
        Ok(paritygate::metrics::sample_sum(&text, name))
    }

    /// `GET /api/v1/services/{name}` (a `ServiceStatus`).
    pub async fn service(&self, name: &str) -> Result<Value, String> {
        self.json(&format!("/api/v1/services/{name}")).await
    }

    /// `GET /api/v1/services/{name}/gate`.
    pub async fn gate(&self, name: &str) -> Result<Value, String> {
        self.json(&format!("/api/v1/services/{name}/gate")).await
    }

    /// Wait (30 s at most) until the gate of `name` satisfies `done` (`what` names it on timeout).
    pub async fn gate_when(&self, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        super::wait_until(what, Duration::from_secs(30), || async {
            let gate = self.gate(name).await?;
            if done(&gate) {
                Ok(gate)
            } else {
                Err(gate.to_string())
            }
        })
        .await
    }

    /// Every item listed by `GET /api/v1/services/{name}/mismatches?kind=KIND`, following
    /// `next_cursor`; each item must carry a `key` and that kind, and no key may repeat.
    pub async fn mismatches(&self, name: &str, kind: &str) -> Result<Vec<Value>, String> {
        let mut all = Vec::new();
        let mut keys = BTreeSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let mut path = format!("/api/v1/services/{name}/mismatches?kind={kind}&limit=1000");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let body = self.json(&path).await?;
            let items = body["items"]
                .as_array()
                .ok_or_else(|| format!("{path}: no `items` array: {body}"))?;
            for item in items {
                let key = item["key"]
                    .as_str()
                    .ok_or_else(|| format!("{path}: item without `key`: {item}"))?;
                if item["kind"] != kind {
                    return Err(format!(
                        "{path}: item of kind {} listed: {item}",
                        item["kind"]
                    ));
                }
                if !keys.insert(key.to_owned()) {
                    return Err(format!("{path}: key {key:?} listed twice"));
                }
                all.push(item.clone());
            }
            cursor = match &body["next_cursor"] {
                Value::Null => return Ok(all),
                Value::String(c) => Some(c.clone()),
                other => Some(other.to_string()),
            };
        }
        Err(format!("{name}/{kind}: more than 10000 pages"))
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The unsigned integer at `pointer` (e.g. `/baseline/records`); a missing one is an `Err` naming it.
pub fn u64_at(value: &Value, pointer: &str) -> Result<u64, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("no integer at {pointer}"))
}

/// Same as [`u64_at`], but absent counts as 0 (for `rejected`/`skipped` maps).
pub fn count_at(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// `keys.in_flight` summed over kinds.
pub fn in_flight_total(status: &Value) -> Result<u64, String> {
    ["missing_in_candidate", "extra_in_candidate", "mismatched"]
        .iter()
        .map(|k| u64_at(status, &format!("/keys/in_flight/{k}")))
        .sum()
}

/// The criterion `name` of a gate answer (`null` when it has none).
pub fn criterion<'a>(gate: &'a Value, name: &str) -> &'a Value {
    gate["criteria"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}
