//! The operator page: server-rendered HTML at `/` (no JavaScript, no external assets) with every
//! wave (verdict, sign-offs, staleness, blockers) and every service (verdict, criteria, counts,
//! differing keys with field diffs, row diffs, the observation epoch), plus sign-off, revocation
//! and epoch forms (`/ui/services/{service}/epochs`).
//!
//! The forms post `application/x-www-form-urlencoded` bodies to `/ui/waves/{id}/signoff` and
//! `/ui/waves/{id}/revoke`; they run exactly the API's code (`waves::act_on_wave`,
//! [`auth::approver`]) and render the server's answer (the record, or the
//! 4xx message) as a page with the same status code. The approver token is a form field, so a
//! forged cross-site form cannot act without it. `?refresh=N` (1–3600 s) reloads the page.
//!
//! Every interpolated value goes through `html::esc`; a restrictive Content-Security-Policy
//! (no scripts at all) backs that up.

mod data;
mod html;
mod services;
mod waves;

use super::auth::{self, Approver};
use super::body::Fields;
use super::error::query;
use super::{waves as api_waves, ApiError, AppState};
use crate::signoff::SignoffAction;
use crate::signoff::SignoffRecord;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use html::{esc, html};
use serde::Deserialize;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    refresh: Option<String>,
}

/// A time for people: RFC 3339 in UTC to the second, or `never`.
pub(crate) fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".into(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// An HTML response with the page's security headers.
fn respond(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `e` as an HTML page: the message for client errors, a generic one (detail logged) for 5xx.
fn error_page(title: &str, e: &ApiError) -> Response {
    let status = e.status_code();
    if status.is_server_error() {
        tracing::error!(code = e.code(), error = %e, "operator page request failed");
    }
    let mut body = String::new();
    html!(
        body,
        "<h1>{}</h1><p class=\"error\" id=\"answer\">{} {}: {}</p>\
         <p><a href=\"/\">Back to the operator page</a></p>",
        esc(title),
        esc(status.as_u16()),
        esc(status.canonical_reason().unwrap_or("")),
        esc(e.public_message())
    );
    respond(status, html::document(title, None, &body))
}

fn parse_refresh(raw: Option<&str>) -> Result<Option<u32>, ApiError> {
    raw.map(|r| match r.parse::<u32>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "parameter `refresh`: must be a number of seconds from 1 to 3600, got `{r}`"
        ))),
    })
    .transpose()
}

/// `GET /`: the whole page.
pub async fn index(
    State(state): State<AppState>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let refresh = match query(q).and_then(|q| parse_refresh(q.refresh.as_deref())) {
        Ok(r) => r,
        Err(e) => return error_page("Bad request", &e),
    };
    let data = match data::gather(&state).await {
        Ok(d) => d,
        Err(e) => return error_page("Operator page unavailable", &e),
    };
    let readiness = state.status.read(|s| s.readiness.clone());
    let mut body = String::new();
    html!(
        body,
        "<h1>paritygate — operator page</h1><p class=\"muted\">Rendered {} · {} · \
         <a href=\"/api/v1/openapi.json\">API</a> · ready: {}</p>",
        esc(time(Some(data.generated_at))),
        match refresh {
            Some(n) => format!("refreshing every {} s (<a href=\"/\">stop</a>)", esc(n)),
            None => "<a href=\"/?refresh=10\">refresh every 10 s</a>".into(),
        },
        html::badge(if readiness.ready() { "pass" } else { "fail" })
    );
    if let Some(error) = &readiness.last_error {
        html!(
            body,
            "<p class=\"error\">Last dependency error: {}</p>",
            esc(error)
        );
    }
    body.push_str(&waves::render(&data.waves));
    body.push_str(&services::render(&data.services));
    respond(
        StatusCode::OK,
        html::document("paritygate — operator page", refresh, &body),
    )
}

/// The decoded form fields, or 413/400.
fn form_pairs(
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    form.map(|Form(pairs)| pairs).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(super::MAX_BODY_BYTES)
        } else {
            ApiError::BadRequest(format!("form: {}", e.body_text()))
        }
    })
}

/// The approver named by the form's `token` field (401/403 like the API's bearer token).
fn form_approver(state: &AppState, pairs: &[(String, String)]) -> Result<String, ApiError> {
    let token = pairs.iter().rev().find(|(k, _)| k == "token");
    let Approver(identity) = auth::approver(state, token.map(|(_, v)| v.as_str()))?;
    Ok(identity)
}

/// `POST /ui/waves/{id}/signoff` (form: `token`, `comment`) and `POST /ui/waves/{id}/revoke`
/// (form: `token`, `reason`).
pub async fn wave_form(
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let action = match verb.as_str() {
        "signoff" => SignoffAction::Signoff,
        "revoke" => SignoffAction::Revocation,
        _ => {
            return answer(
                &id,
                "request",
                Err(ApiError::NotFound(format!("no form `{verb}`"))),
            )
        }
    };
    act(&state, &id, action, form).await
}

/// `POST /ui/services/{service}/epochs` (form: `token`, `reason`, optional `starts_at`): starts an
/// epoch through the API's own code and renders the server's answer.
pub async fn epoch_form(
    State(state): State<AppState>,
    Path(service): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let outcome = async {
        let pairs = form_pairs(form)?;
        let identity = form_approver(&state, &pairs)?;
        let config = super::services::known_service(&state, &service)?;
        // An empty start field means "now", as an absent `starts_at` does in the API.
        let pairs = pairs
            .into_iter()
            .filter(|(k, v)| !(k == "starts_at" && v.trim().is_empty()))
            .collect();
        let fields = Fields::from_form(pairs, &["token", "reason", "starts_at"])?;
        super::epochs::start_epoch(&state, config, &identity, fields).await
    }
    .await;
    let epoch = match outcome {
        Ok(epoch) => epoch,
        Err(e) => return error_page(&format!("Service {service}: epoch refused"), &e),
    };
    let title = format!("Service {}: epoch {} started", epoch.service, epoch.id);
    let mut body = String::new();
    html!(
        body,
        "<h1>{}</h1><p class=\"ok\" id=\"answer\">201 Created</p><table class=\"record\">\
         <tr><th>Epoch</th><td>{}</td></tr><tr><th>Judges events from</th><td>{}</td></tr>\
         <tr><th>By</th><td>{}</td></tr><tr><th>Why</th><td>{}</td></tr></table>\
         <p><a href=\"/#service-{}\">Back to the operator page</a></p>",
        esc(&title),
        esc(epoch.id),
        esc(time(epoch.starts_at)),
        esc(&epoch.created_by),
        esc(&epoch.reason),
        esc(&epoch.service)
    );
    respond(StatusCode::CREATED, html::document(&title, None, &body))
}

/// A form's sign-off or revocation through the API's own code.
async fn act(
    state: &AppState,
    id: &str,
    action: SignoffAction,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let outcome = async {
        let pairs = form_pairs(form)?;
        let identity = form_approver(state, &pairs)?;
        api_waves::act_on_wave(state, &identity, id, action, || {
            Fields::from_form(pairs, &["token", api_waves::action_field(action)])
        })
        .await
    }
    .await;
    let what = match action {
        SignoffAction::Signoff => "sign-off",
        SignoffAction::Revocation => "revocation",
    };
    answer(id, what, outcome)
}

/// The server's answer to a form: 201 with the record, or the error's status and message.
fn answer(id: &str, what: &str, outcome: Result<SignoffRecord, ApiError>) -> Response {
    let row = match outcome {
        Ok(row) => row,
        Err(e) => return error_page(&format!("Wave {id}: {what} refused"), &e),
    };
    let title = format!("Wave {}: {what} recorded", row.wave_id);
    let mut body = String::new();
    html!(
        body,
        "<h1>{}</h1><p class=\"ok\" id=\"answer\">201 Created</p><table class=\"record\">\
         <tr><th>Record</th><td>#{}</td></tr><tr><th>Action</th><td>{}</td></tr>\
         <tr><th>By</th><td>{}</td></tr><tr><th>At</th><td>{}</td></tr>\
         <tr><th>Comment</th><td>{}</td></tr><tr><th>Wave verdict then</th><td>{}</td></tr>",
        esc(&title),
        esc(row.id),
        esc(row.action.as_str()),
        esc(&row.identity),
        esc(time(Some(row.created_at))),
        esc(&row.comment),
        esc(html::json_text(&row.snapshot["verdict"]))
    );
    for s in row.snapshot["services"].as_array().into_iter().flatten() {
        html!(
            body,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(html::json_text(&s["service"])),
            esc(html::json_text(&s["gate"]["verdict"]))
        );
    }
    html!(
        body,
        "</table><p><a href=\"/#wave-{}\">Back to the operator page</a></p>",
        esc(row.wave_id)
    );
    respond(StatusCode::CREATED, html::document(&title, None, &body))
}
