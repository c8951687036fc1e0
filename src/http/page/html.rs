//! The operator page's HTML toolkit: the one escaping helper ([`esc`]) that every interpolated
//! value goes through, the page frame (inline CSS, no external assets) and small shared pieces.
//!
//! Markup is hand-written with `write!`; the rule is simple enough to check by reading: literal
//! markup lives in the format string, every `{}` argument is wrapped in [`esc`].

use std::fmt::{self, Display, Write};

/// Append formatted markup to a `String` (writing to a `String` cannot fail).
macro_rules! html {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}
pub(crate) use html;

/// `value` as HTML text: `&`, `<`, `>`, `"` and `'` become character references, so the result
/// is safe in element content and in quoted attribute values alike.
pub fn esc<T: Display>(value: T) -> Escaped<T> {
    Escaped(value)
}

/// See [`esc`]. Escapes while formatting, without an intermediate string.
#[derive(Debug)]
pub struct Escaped<T>(T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            self.0.write_str(&rest[..i])?;
            let entity = match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            };
            self.0.write_str(entity)?;
            rest = &rest[i + 1..];
        }
        self.0.write_str(rest)
    }
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 32px;color:#1b1f24}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccd;padding-bottom:4px;margin-top:28px}
h3{font-size:16px;margin:18px 0 6px}h4{font-size:14px;margin:12px 0 4px}
table{border-collapse:collapse;margin:4px 0 8px}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f7}code,.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px;color:#fff;background:#6e7781}
.pass{background:#1a7f37}.warn{background:#bf8700}.fail{background:#cf222e}.pending{background:#6e7781}
.waived{background:#0969da}.not_applicable{background:#8c959f}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;margin:10px 0}
.muted{color:#57606a}.error{color:#cf222e;font-weight:600}.ok{color:#1a7f37;font-weight:600}
form{display:inline-block;margin:6px 16px 6px 0;padding:6px 10px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px}
input,textarea{font:inherit;margin:2px 0}label{display:block}
";

/// A complete document around `body`, optionally reloading itself every `refresh_secs`.
pub fn document(title: &str, refresh_secs: Option<u32>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    html!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    );
    if let Some(secs) = refresh_secs {
        html!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            esc(secs)
        );
    }
    html!(
        out,
        "<title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    );
    out
}

/// A coloured verdict or criterion status (`pass`, `warn`, `fail`, `waived`, …).
pub fn badge(status: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        esc(status),
        esc(status)
    )
}

/// A JSON value as text: strings as they are, everything else in JSON notation.
pub fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A serde unit-variant enum's name (`not_applicable`), or `?` if it serializes otherwise.
pub fn variant_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".into(),
    }
}

/// `<ul>` of `items`, escaped; nothing when empty.
pub fn list(items: &[String]) -> String {
    let mut out = String::new();
    if items.is_empty() {
        return out;
    }
    out.push_str("<ul>");
    for item in items {
        html!(out, "<li>{}</li>", esc(item));
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metacharacter_is_escaped() {
        assert_eq!(
            esc("<script>alert('x' & \"y\")</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(esc("plain ünïcode").to_string(), "plain ünïcode");
        assert_eq!(esc(42).to_string(), "42");
        assert_eq!(esc("").to_string(), "");
    }

    #[test]
    fn badges_and_documents_escape_their_inputs() {
        assert_eq!(
            badge("a\"b"),
            "<span class=\"badge a&quot;b\">a&quot;b</span>"
        );
        let doc = document("<t>", Some(10), "<p>x</p>");
        assert!(doc.contains("<title>&lt;t&gt;</title>"), "{doc}");
        assert!(doc.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
        assert!(!document("t", None, "").contains("refresh"));
        assert_eq!(list(&["<b>".into()]), "<ul><li>&lt;b&gt;</li></ul>");
    }
}
