//! The PromQL of `dashboards/`: every `targets[].expr` of the Grafana dashboards and every `expr`
//! of the alert rules, read from the files (never listed by hand), with Grafana's template
//! variables substituted, and the metric selectors inside an expression.

use super::root;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// `dashboards/`
pub fn dir() -> PathBuf {
    root().join("dashboards")
}

/// Every dashboard JSON of `dashboards/`, by file name, sorted.
pub fn dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir()).expect("read dashboards/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("read dashboard");
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("file name")
                .to_owned();
            out.push((name, json));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel of a dashboard: top-level ones and those nested in (collapsed) rows.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        for nested in panel["panels"].as_array().into_iter().flatten() {
            out.push(nested);
        }
    }
    out
}

/// One PromQL expression and where it comes from.
#[derive(Debug, Clone)]
pub struct Query {
    /// `overview.json`, or `alerts.yml`.
    pub file: String,
    /// The panel title, or the alert name.
    pub name: String,
    /// `A`, `B`… for a panel target; empty for a rule.
    pub ref_id: String,
    /// As written in the file.
    pub raw: String,
}

impl Query {
    /// `file: name [refId]`, for messages and for the lists of expected-empty queries.
    pub fn id(&self) -> String {
        if self.ref_id.is_empty() {
            format!("{}: {}", self.file, self.name)
        } else {
            format!("{}: {} [{}]", self.file, self.name, self.ref_id)
        }
    }

    /// The expression as Prometheus runs it (template variables substituted).
    pub fn expr(&self) -> String {
        substitute(&self.raw).unwrap_or_else(|e| panic!("{}: {e}", self.id()))
    }
}

/// Every `targets[].expr` of every dashboard.
pub fn dashboard_queries() -> Vec<Query> {
    let mut out = Vec::new();
    for (file, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(Query {
                    file: file.clone(),
                    name: panel["title"].as_str().unwrap_or_default().to_owned(),
                    ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                    raw: target["expr"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    out
}

/// A Prometheus rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    /// Required by the file's schema; nothing reads it.
    #[serde(rename = "name")]
    pub _name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub alert: Option<String>,
    pub record: Option<String>,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or_default()
    }
}

/// `dashboards/alerts.yml`, parsed.
pub fn rules() -> Vec<Rule> {
    let path = dir().join("alerts.yml");
    let text = std::fs::read_to_string(&path).expect("read dashboards/alerts.yml");
    let file: RuleFile = serde_yaml::from_str(&text).expect("parse dashboards/alerts.yml");
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

/// Every `expr` of the alert rules.
pub fn rule_queries() -> Vec<Query> {
    rules()
        .into_iter()
        .map(|r| Query {
            file: "alerts.yml".into(),
            name: r.name().to_owned(),
            ref_id: String::new(),
            raw: r.expr.clone(),
        })
        .collect()
}

/// Grafana's built-in variables as a test substitutes them: ranges long enough to cover a whole
/// test run (so a counter that only moved at its start still shows), `$service` as "All".
const SUBSTITUTIONS: [(&str, &str); 6] = [
    ("$__rate_interval", "5m"),
    ("$__interval", "15s"),
    ("$__range", "5m"),
    ("${service}", ".+"),
    ("$service", ".+"),
    ("${__rate_interval}", "5m"),
];

/// `raw` with the template variables replaced; `Err` names any variable left.
pub fn substitute(raw: &str) -> Result<String, String> {
    let mut expr = raw.to_owned();
    for (var, value) in SUBSTITUTIONS {
        expr = expr.replace(var, value);
    }
    match expr.find('$') {
        Some(at) => Err(format!(
            "unresolved template variable at `{}` in `{raw}`",
            &expr[at..]
        )),
        None => Ok(expr),
    }
}

/// A metric selector of an expression: `name{matchers}` (matchers may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    /// The `{…}` block including braces, or empty.
    pub matchers: String,
}

impl Selector {
    pub fn text(&self) -> String {
        format!("{}{}", self.metric, self.matchers)
    }

    /// The metric family (`_bucket`, `_sum`, `_count` of a histogram stripped).
    pub fn family(&self) -> &str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = self.metric.strip_suffix(suffix) {
                return base;
            }
        }
        &self.metric
    }
}

/// The selectors of paritygate's metrics (`paritygate_…`) and of `up` in `expr`: identifiers
/// outside string literals that are not followed by `(` (functions), with their `{…}` block.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_string(bytes, i);
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let ident = &expr[start..i];
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let is_metric = ident.starts_with("paritygate_") || ident == "up";
            if is_metric && bytes.get(j) != Some(&b'(') {
                let matchers = if bytes.get(j) == Some(&b'{') {
                    let mut k = j;
                    while k < bytes.len() && bytes[k] != b'}' {
                        if bytes[k] == b'"' {
                            k = skip_string(bytes, k);
                        } else {
                            k += 1;
                        }
                    }
                    i = (k + 1).min(bytes.len());
                    expr[j..i].to_owned()
                } else {
                    String::new()
                };
                out.push(Selector {
                    metric: ident.to_owned(),
                    matchers,
                });
            }
            continue;
        }
        i += 1;
    }
    out
}

fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'\\' && quote != b'`' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// `promtool`: `PARITYGATE_PROMTOOL`, else from `PATH` (Debian's `prometheus` package, installed
/// by `scripts/setup`).
pub fn promtool() -> Command {
    Command::new(std::env::var("PARITYGATE_PROMTOOL").unwrap_or_else(|_| "promtool".into()))
}

/// `prometheus`: `PARITYGATE_PROMETHEUS`, else from `PATH`.
pub fn prometheus_program() -> String {
    std::env::var("PARITYGATE_PROMETHEUS").unwrap_or_else(|_| "prometheus".into())
}

/// Run `promtool ARGS…` (optionally with `stdin`); `(success, stdout + stderr)`.
pub fn run_promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = promtool();
    command
        .args(args)
        .current_dir(dir())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot run promtool (scripts/setup installs Debian's prometheus package): {e}")
    });
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes())
            .expect("write promtool stdin");
    }
    let output = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
