//! The waves section: each wave in order with its verdict and reasons, its services' verdicts,
//! counted sign-offs, staleness, the last revocation, what blocks a sign-off, and the sign-off and
//! revocation forms (`POST /ui/waves/{id}/signoff`, `POST /ui/waves/{id}/revoke`).

use super::html::{badge, esc, html, list};
use super::time;
use crate::signoff::WaveStatus;

/// Every wave, or a note that none are configured.
pub fn render(waves: &[WaveStatus]) -> String {
    let mut out = String::from("<h2 id=\"waves\">Waves</h2>");
    if waves.is_empty() {
        out.push_str("<p class=\"muted\">No waves are configured (<code>[[waves]]</code>).</p>");
    }
    for wave in waves {
        out.push_str(&render_wave(wave));
    }
    out
}

fn render_wave(w: &WaveStatus) -> String {
    let mut out = String::new();
    let state = match (w.signed_off, w.stale) {
        (true, true) => "<span class=\"badge fail\">signed off, STALE</span>",
        (true, false) => "<span class=\"badge pass\">signed off</span>",
        (false, _) => "<span class=\"badge pending\">not signed off</span>",
    };
    html!(
        out,
        "<section class=\"card wave\" id=\"wave-{}\" data-verdict=\"{}\">\
         <h3>Wave {}: {} {} {state}</h3>{}",
        esc(w.id),
        esc(w.verdict.as_str()),
        esc(w.id),
        esc(&w.name),
        badge(w.verdict.as_str()),
        list(&w.reasons)
    );
    out.push_str("<p>Services: ");
    for (i, s) in w.services.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        html!(
            out,
            "<a href=\"#service-{}\">{}</a> {}",
            esc(&s.service),
            esc(&s.service),
            badge(s.verdict.as_str())
        );
    }
    out.push_str("</p>");
    html!(
        out,
        "<h4>Sign-offs ({} of {} required)</h4>",
        esc(w.approvals.len()),
        esc(w.required_approvals)
    );
    if w.approvals.is_empty() {
        out.push_str("<p class=\"muted\">No sign-off counts yet.</p>");
    } else {
        out.push_str(
            "<table><tr><th>#</th><th>Approver</th><th>Signed at</th><th>Comment</th><th>Evidence</th></tr>",
        );
        for a in &w.approvals {
            html!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(a.signoff_id),
                esc(&a.identity),
                esc(time(Some(a.signed_at))),
                esc(&a.comment),
                if a.stale {
                    badge("stale")
                } else {
                    badge("current")
                }
            );
        }
        out.push_str("</table>");
    }
    if w.stale {
        html!(
            out,
            "<p class=\"error\">The evidence of a sign-off no longer holds:</p>{}",
            list(&w.stale_reasons)
        );
    }
    if let Some(r) = &w.last_revocation {
        html!(
            out,
            "<p>Last revocation #{} by {} at {}: {}</p>",
            esc(r.id),
            esc(&r.identity),
            esc(time(Some(r.revoked_at))),
            esc(&r.reason)
        );
    }
    if w.signoff_blockers.is_empty() {
        out.push_str("<p class=\"ok\">A sign-off would be accepted now.</p>");
    } else {
        html!(
            out,
            "<p class=\"error\">A sign-off would be refused now:</p>{}",
            list(&w.signoff_blockers)
        );
    }
    out.push_str(&forms(w.id));
    out.push_str("</section>");
    out
}

/// The sign-off and revocation forms; the approver token travels in the form body (never in a URL).
fn forms(id: u32) -> String {
    let mut out = String::new();
    html!(
        out,
        "<form method=\"post\" action=\"/ui/waves/{}/signoff\" class=\"signoff\">\
         <strong>Sign off wave {}</strong>\
         <label>Approver token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>\
         <label>Comment (what was checked) <textarea name=\"comment\" rows=\"2\" cols=\"40\" required></textarea></label>\
         <button type=\"submit\">Sign off</button></form>",
        esc(id),
        esc(id)
    );
    html!(
        out,
        "<form method=\"post\" action=\"/ui/waves/{}/revoke\" class=\"revoke\">\
         <strong>Revoke sign-offs of wave {}</strong>\
         <label>Approver token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>\
         <label>Reason <textarea name=\"reason\" rows=\"2\" cols=\"40\" required></textarea></label>\
         <button type=\"submit\">Revoke</button></form>",
        esc(id),
        esc(id)
    );
    out
}
