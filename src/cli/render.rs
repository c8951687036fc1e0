//! The readable summary of a parity report (the default output of `diff`).

use crate::core::report::{Report, ServiceReport, SideReport};
use std::fmt::Write;

fn side_line(name: &str, s: &SideReport) -> String {
    let ops: Vec<String> = s
        .by_operation
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    let mut line = format!(
        "    {name:<9} records {:>9}  events {:>9}  duplicates {:>7}  unparseable {:>5}  [{}]",
        s.records,
        s.events,
        s.duplicates,
        s.unparseable,
        ops.join(", ")
    );
    for (reason, n) in &s.rejected {
        let _ = write!(line, "  rejected {reason} {n}");
    }
    for (what, n) in [
        ("before_start", s.before_start),
        ("after_until", s.after_until),
        ("untimed", s.untimed),
    ] {
        if let Some(n) = n.filter(|n| *n > 0) {
            let _ = write!(line, "  {what} {n}");
        }
    }
    line
}

fn service(out: &mut String, s: &ServiceReport) {
    let wave = s.wave.map(|w| format!(" (wave {w})")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{}{}: {}",
        s.service,
        wave,
        s.verdict.as_str().to_uppercase()
    );
    let _ = writeln!(out, "{}", side_line("baseline", &s.baseline));
    let _ = writeln!(out, "{}", side_line("candidate", &s.candidate));
    let k = &s.keys;
    let _ = writeln!(
        out,
        "    keys      total {}  matched {}  missing_in_candidate {}  extra_in_candidate {}  mismatched {}",
        k.total, k.matched, k.missing_in_candidate, k.extra_in_candidate, k.mismatched
    );
    if s.partition_mismatched_keys > 0 {
        let _ = writeln!(
            out,
            "    note      {} keys on another partition in the candidate (not drift)",
            s.partition_mismatched_keys
        );
    }
    if !s.fields.is_empty() {
        let top: Vec<String> = s
            .fields
            .iter()
            .take(5)
            .map(|f| format!("{} ({})", f.pointer, f.mismatched_keys))
            .collect();
        let _ = writeln!(out, "    fields    {}", top.join(", "));
    }
    for m in s.mismatches.iter().take(10) {
        let fields = if m.fields.is_empty() {
            String::new()
        } else {
            format!(" [{}]", m.fields.join(", "))
        };
        let (kind, key, reason) = (m.kind.as_str(), &m.key, &m.reason);
        let _ = writeln!(out, "      {kind} {key}: {reason}{fields}");
    }
    if s.mismatches.len() > 10 {
        let _ = writeln!(
            out,
            "      … {} more (use --format json)",
            s.mismatches.len() - 10
        );
    }
}

/// Multi-line summary: per service its verdict, counts, mismatches by kind and top fields.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.services {
        service(&mut out, s);
    }
    let i = &report.inputs;
    let _ = writeln!(
        out,
        "inputs: {} files, {} lines, {} ignored records (unconfigured topics), {} malformed lines",
        i.files.len(),
        i.lines,
        i.ignored_records,
        report
            .services
            .iter()
            .map(|s| s.baseline.unparseable + s.candidate.unparseable)
            .sum::<u64>()
            + i.unattributed_unparseable
    );
    let _ = writeln!(
        out,
        "verdict: {} ({})",
        report.verdict.as_str().to_uppercase(),
        report.canonical_version
    );
    out
}
