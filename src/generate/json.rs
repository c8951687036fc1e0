//! JSON spellings of the two runtimes, and the value formats their encoders produce.
//!
//! The baseline (Redpanda Connect) writes with Go's `encoding/json`: keys sorted, compact, HTML
//! characters escaped, numbers inside `jsonb` passed through `float64`. The candidate (a Bento
//! substitute) writes keys in declaration order with spaces and no HTML escaping. The same row
//! therefore has two byte spellings that the canonical form must reconcile.

use std::fmt::Write as _;

/// Which encoder writes a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Go `encoding/json`: sorted keys, compact, `<>&` escaped, `jsonb` numbers via `float64`.
    Go,
    /// The Bento substitute: declaration order (reversed inside `jsonb`), `", "` and `": "`.
    Bento,
}

/// A JSON value to render (a tiny tree so the generator never round-trips through a parser).
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    /// A number as its exact source text.
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

/// Append `s` as a JSON string in `style`.
pub fn write_str(out: &mut String, s: &str, style: Style) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go 1.22+ writes \b and \f short; serde_json does too.
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if style == Style::Go => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `float64` formatting (`strconv.FormatFloat(f, 'f' or 'e', -1, 64)` as `encoding/json` does):
/// shortest round-trip digits, plain notation between 1e-6 and 1e21.
pub fn go_float(text: &str) -> String {
    let Ok(f) = text.parse::<f64>() else {
        return text.to_owned();
    };
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go writes e.g. 1e+21 and 1e-07: exponent with sign, at least two digits.
        let s = format!("{f:e}");
        return match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        };
    }
    format!("{f}")
}

/// Render `v` in `style`. Object keys of a nested value are sorted (Go) or reversed (Bento).
pub fn write_json(out: &mut String, v: &J, style: Style) {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) if style == Style::Go => out.push_str(&go_float(n)),
        J::Num(n) => out.push_str(n),
        J::Str(s) => write_str(out, s, style),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if style == Style::Go { "," } else { ", " });
                }
                write_json(out, item, style);
            }
            out.push(']');
        }
        J::Obj(members) => {
            let mut refs: Vec<&(&str, J)> = members.iter().collect();
            match style {
                Style::Go => refs.sort_by(|a, b| a.0.cmp(b.0)),
                Style::Bento => refs.reverse(),
            }
            write_members(out, refs.into_iter().map(|(k, v)| (*k, v)), style);
        }
    }
}

fn write_members<'a>(
    out: &mut String,
    members: impl Iterator<Item = (&'a str, &'a J)>,
    style: Style,
) {
    out.push('{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push_str(if style == Style::Go { "," } else { ", " });
        }
        write_str(out, k, style);
        out.push_str(if style == Style::Go { ":" } else { ": " });
        write_json(out, v, style);
    }
    out.push('}');
}

/// A row body: columns in declaration order. Go sorts them; Bento keeps the order and omits nulls
/// when `omit_nulls` (a mapping that drops them), otherwise writes them.
pub fn row_body(columns: &[(&'static str, J)], style: Style, omit_nulls: bool) -> String {
    let mut out = String::with_capacity(64 + columns.len() * 24);
    let mut refs: Vec<&(&str, J)> = columns
        .iter()
        .filter(|(_, v)| !(omit_nulls && *v == J::Null))
        .collect();
    if style == Style::Go {
        refs.sort_by(|a, b| a.0.cmp(b.0));
    }
    write_members(&mut out, refs.into_iter().map(|(k, v)| (*k, v)), style);
    out
}

/// A decimal held as an integer of minor units, written padded to `scale` (`"1050.00"`).
pub fn decimal_padded(units: i64, scale: u32) -> String {
    let pow = 10i64.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let (int, frac) = (
        units.unsigned_abs() / pow as u64,
        units.unsigned_abs() % pow as u64,
    );
    if scale == 0 {
        return format!("{sign}{int}");
    }
    format!("{sign}{int}.{frac:0width$}", width = scale as usize)
}

/// The same decimal without scale padding (`"1050"`, `"1050.5"`), as a Bento substitute writes it.
pub fn decimal_unpadded(units: i64, scale: u32) -> String {
    let padded = decimal_padded(units, scale);
    if scale == 0 {
        return padded;
    }
    padded
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

/// Civil date from days since 1970-01-01 (H. Hinnant's algorithm): no calendar crate in the hot path.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// How to spell an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsFormat {
    /// Local offset in minutes; the wall clock is shifted by it.
    pub offset_min: i32,
    /// Fraction digits kept (3 ms, 6 µs, 7 SQL Server ticks, 9 ns).
    pub digits: u32,
    /// Trim trailing zeros of the fraction (and the dot when nothing is left).
    pub trim: bool,
    /// `Z` for a zero offset (Go RFC3339Nano) instead of `+00:00`.
    pub zulu: bool,
    /// No offset at all (SQL Server `datetime2`).
    pub naive: bool,
}

/// RPCN `postgres_cdc`: RFC3339Nano with trailing zeros trimmed, UTC `Z`.
pub const RFC3339_NANO: TsFormat = TsFormat {
    offset_min: 0,
    digits: 9,
    trim: true,
    zulu: true,
    naive: false,
};
/// RPCN `microsoft_sql_server_cdc` `datetime2(7)`: seven digits, no offset.
pub const DATETIME2: TsFormat = TsFormat {
    offset_min: 0,
    digits: 7,
    trim: false,
    zulu: false,
    naive: true,
};

/// Format `nanos` since the Unix epoch; digits beyond `fmt.digits` are truncated.
pub fn timestamp(nanos: i64, fmt: TsFormat) -> String {
    let local = nanos + i64::from(fmt.offset_min) * 60_000_000_000;
    let secs = local.div_euclid(1_000_000_000);
    let frac = local.rem_euclid(1_000_000_000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut out = String::with_capacity(36);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    let digits = format!("{frac:09}");
    let mut kept = &digits[..fmt.digits.min(9) as usize];
    if fmt.trim {
        kept = kept.trim_end_matches('0');
    }
    if !kept.is_empty() {
        out.push('.');
        out.push_str(kept);
    }
    if fmt.naive {
        return out;
    }
    if fmt.offset_min == 0 && fmt.zulu {
        out.push('Z');
    } else {
        let sign = if fmt.offset_min < 0 { '-' } else { '+' };
        let m = fmt.offset_min.unsigned_abs();
        let _ = write!(out, "{sign}{:02}:{:02}", m / 60, m % 60);
    }
    out
}
