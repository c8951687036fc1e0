//! The services section: per configured service its verdict and reasons, every criterion with
//! observed value, threshold and explanation, counts per side, the key summary, the first differing
//! keys with example field diffs, the latest row-diff round, and when it was last evaluated.

use super::data::{ServicePanel, FIELDS_PER_KEY};
use super::html::{badge, esc, html, json_text, list, variant_name};
use super::time;
use crate::model::status::{ServiceStatus, SideStatus};
use crate::model::KindCounts;
use crate::store::read::{MismatchField, MismatchPage};

pub fn render(panels: &[ServicePanel]) -> String {
    let mut out = String::from("<h2 id=\"services\">Services</h2>");
    for panel in panels {
        out.push_str(&render_service(panel));
    }
    out
}

fn render_service(panel: &ServicePanel) -> String {
    let s = &panel.status;
    let verdict = s.gate.verdict.as_str();
    let mut out = String::new();
    let wave = s
        .wave
        .map_or_else(|| "no wave".to_owned(), |w| format!("wave {w}"));
    html!(
        out,
        "<section class=\"card service\" id=\"service-{}\" data-verdict=\"{}\">\
         <h3>{} {}</h3><p class=\"muted\">{} · last evaluated {}</p>{}",
        esc(&s.service),
        esc(verdict),
        esc(&s.service),
        badge(verdict),
        esc(wave),
        esc(time(s.gate.evaluated_at.or(s.evaluated_at))),
        list(&s.gate.reasons)
    );
    out.push_str(&epoch(s));
    out.push_str(&criteria(s));
    out.push_str(&counts(s));
    out.push_str(&mismatches(&s.service, panel.mismatches.as_ref()));
    out.push_str(&row_diff(panel));
    out.push_str("</section>");
    out
}

/// The epoch the gate judges (start, who, why) and the form that starts a new one; the approver
/// token travels in the form body (never in a URL).
fn epoch(s: &ServiceStatus) -> String {
    let mut out = String::from("<h4>Observation epoch</h4>");
    match &s.epoch {
        Some(e) => html!(
            out,
            "<table class=\"epoch\"><tr><th>Epoch</th><td>{}</td></tr>\
             <tr><th>Judges events from</th><td>{}</td></tr><tr><th>Started by</th><td>{}</td></tr>\
             <tr><th>Why</th><td>{}</td></tr></table>",
            esc(e.id),
            esc(e
                .starts_at
                .map_or_else(|| "the beginning".to_owned(), |t| time(Some(t)))),
            esc(&e.created_by),
            esc(&e.reason)
        ),
        None => out.push_str("<p class=\"muted\">Not evaluated yet.</p>"),
    }
    html!(
        out,
        "<form method=\"post\" action=\"/ui/services/{}/epochs\" class=\"epoch\">\
         <strong>Start a new epoch of {}</strong>\
         <label>Approver token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>\
         <label>Reason (the fix that went out) <textarea name=\"reason\" rows=\"2\" cols=\"40\" required></textarea></label>\
         <label>From (RFC 3339, empty: now) <input type=\"text\" name=\"starts_at\" placeholder=\"2026-08-20T10:00:00Z\"></label>\
         <button type=\"submit\">Start epoch</button></form>",
        esc(&s.service),
        esc(&s.service)
    );
    out
}

fn criteria(s: &ServiceStatus) -> String {
    let mut out = String::from("<h4>Criteria</h4>");
    if s.gate.criteria.is_empty() {
        out.push_str("<p class=\"muted\">No criteria evaluated yet.</p>");
        return out;
    }
    out.push_str(
        "<table class=\"criteria\"><tr><th>Criterion</th><th>Status</th><th>Observed</th>\
         <th>Threshold</th><th>Explanation</th></tr>",
    );
    for c in &s.gate.criteria {
        html!(
            out,
            "<tr data-criterion=\"{}\"><td>{}</td><td>{}</td><td class=\"mono\">{}</td>\
             <td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.name),
            badge(&variant_name(&c.status)),
            esc(json_text(&c.observed)),
            esc(json_text(&c.threshold)),
            esc(&c.explanation)
        );
    }
    out.push_str("</table>");
    out
}

/// One count of a side, for the counts table (`None`: unknown, shown as such).
type SideCount = fn(&SideStatus) -> Option<u64>;

fn counts(s: &ServiceStatus) -> String {
    let mut out = String::from(
        "<h4>Counts</h4><table class=\"counts\"><tr><th></th><th>Baseline</th><th>Candidate</th></tr>",
    );
    let rows: [(&str, SideCount); 10] = [
        ("records", |x| Some(x.counts.records)),
        ("before the comparison start (compare_from)", |x| {
            Some(x.counts.skipped.get("before_start").copied().unwrap_or(0))
        }),
        ("events", |x| Some(x.counts.events)),
        ("duplicates", |x| Some(x.counts.duplicates)),
        ("unparseable", |x| Some(x.counts.unparseable)),
        ("unstorable (refused by the database)", |x| {
            Some(
                x.counts
                    .unparseable_by_reason
                    .get("unstorable")
                    .copied()
                    .unwrap_or(0),
            )
        }),
        ("rejected", |x| Some(x.counts.rejected.values().sum())),
        ("error-topic records", |x| Some(x.counts.errors)),
        ("log resets (topic recreated)", |x| {
            Some(x.counts.log_resets)
        }),
        ("lag", |x| x.lag.map(|l| u64::try_from(l).unwrap_or(0))),
    ];
    let shown = |n: Option<u64>| n.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    for (name, get) in rows {
        html!(
            out,
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            esc(name),
            esc(shown(get(&s.baseline))),
            esc(shown(get(&s.candidate)))
        );
    }
    out.push_str("</table>");
    let k = &s.keys;
    html!(
        out,
        "<p>Keys: {} total, {} matched; settled differences: {}; in flight: {}.</p>",
        esc(k.total),
        esc(k.matched),
        esc(kinds(&k.settled)),
        esc(kinds(&k.in_flight))
    );
    out
}

fn kinds(k: &KindCounts) -> String {
    format!(
        "{} ({} missing_in_candidate, {} extra_in_candidate, {} mismatched)",
        k.total(),
        k.missing_in_candidate,
        k.extra_in_candidate,
        k.mismatched
    )
}

fn mismatches(service: &str, page: Option<&MismatchPage>) -> String {
    let Some(page) = page else {
        return String::new();
    };
    let mut out = String::from(
        "<h4>Differing keys</h4><table class=\"mismatches\"><tr><th>Key</th><th>Kind</th>\
         <th>State</th><th>Field diffs (baseline → candidate)</th></tr>",
    );
    for item in &page.items {
        html!(
            out,
            "<tr><td class=\"mono key\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&item.key),
            esc(item.kind.as_str()),
            esc(variant_name(&item.state)),
            fields(&item.fields)
        );
    }
    out.push_str("</table>");
    if page.next_cursor.is_some() {
        html!(
            out,
            "<p class=\"muted\">More keys: <code>/api/v1/services/{}/mismatches</code> (paged).</p>",
            esc(service)
        );
    }
    out
}

fn fields(fields: &[MismatchField]) -> String {
    let mut out = String::new();
    if fields.is_empty() {
        out.push_str("<span class=\"muted\">—</span>");
    }
    for f in fields.iter().take(FIELDS_PER_KEY) {
        let side = |v: &Option<serde_json::Value>| v.as_ref().map_or("(absent)".into(), json_text);
        html!(
            out,
            "<div class=\"mono\"><strong>{}</strong>: {} → {}</div>",
            esc(&f.pointer),
            esc(side(&f.baseline)),
            esc(side(&f.candidate))
        );
    }
    if fields.len() > FIELDS_PER_KEY {
        html!(
            out,
            "<div class=\"muted\">… {} more</div>",
            esc(fields.len() - FIELDS_PER_KEY)
        );
    }
    out
}

fn row_diff(panel: &ServicePanel) -> String {
    let mut out = String::from("<h4>Row diff</h4>");
    if !panel.targets_configured {
        out.push_str(
            "<p class=\"muted\">No sink tables configured (<code>[services.targets]</code>).</p>",
        );
        return out;
    }
    let Some(r) = &panel.status.rows else {
        out.push_str("<p class=\"muted\">No sampler round has finished yet.</p>");
        return out;
    };
    html!(
        out,
        "<p>Round at {}: {} rows sampled, {} differ; diff ratio {} (95% upper bound {}); \
         {} in flight; {} of {} flagged/recent keys differ.</p>",
        esc(time(Some(r.evaluated_at))),
        esc(r.rows_sampled),
        esc(kinds(&r.differing)),
        esc(format!("{:.4}", r.diff_ratio)),
        esc(format!("{:.4}", r.diff_ratio_upper_95)),
        esc(r.in_flight),
        esc(r.extra_differing.total()),
        esc(r.extra_keys_checked)
    );
    if !panel.row_diffs.is_empty() {
        out.push_str("<table><tr><th>Key</th><th>Kind</th><th>Columns</th><th>Sample</th></tr>");
        for d in &panel.row_diffs {
            html!(
                out,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(d.key.to_string()),
                esc(&d.kind),
                esc(d.columns.join(", ")),
                esc(if d.uniform {
                    "uniform"
                } else {
                    "flagged/recent"
                })
            );
        }
        out.push_str("</table>");
    }
    out
}
