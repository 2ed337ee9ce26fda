//! The audit log's page (`mode=audit`, newest first, 100 entries a page) and its API
//! (`GET api/audit?offset=&limit=`, the API token or a session; JSON, newest first).

use super::audit::{self, Entry};
use super::html::{self, Nav, Text, admin_url};
use super::request::AdminRequest;
use super::respond::{AdminError, AdminResult, blocking, html_response, json_response};
use super::session::Session;
use crate::admin::SharedApp;
use crate::conn::ConnMeta;
use crate::php::Args;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use maud::html;
use serde_json::json;

/// Entries of a page.
const PAGE: usize = 100;
/// Most entries an API request gets.
pub const MAX_LIMIT: usize = 1000;

/// A time as ISO 8601 in UTC.
pub fn iso(t: i64) -> String {
    crate::php::format_datetime(t).replace(' ', "T") + "Z"
}

/// The page's table of `entries` (pure).
pub fn render(prefix: &str, entries: &[Entry], offset: usize, total: usize) -> String {
    let newer = offset.checked_sub(PAGE).map(|o| o.min(offset));
    let older = (offset + entries.len() < total).then_some(offset + PAGE);
    let link = |o: usize| admin_url(prefix, &format!("mode=audit&offset={o}"));
    html! {
        h1 { "Audit log" }
        p.hint {
            "Admin actions, newest first: " (total) " entr" (if total == 1 { "y" } else { "ies" })
            " kept in " code { "audit/" } " below the installation root (rotated). Also as JSON: "
            code { "GET " (prefix) "/api/audit" } "."
        }
        @if entries.is_empty() {
            p.undef { "No admin action recorded yet." }
        } @else {
            table.grid.audit {
                caption.sr-only { "Admin actions" }
                thead { tr { th scope="col" { "Time (UTC)" } th scope="col" { "User" } th scope="col" { "From" }
                    th scope="col" { "Action" } th scope="col" { "On" } th scope="col" { "Result" } th scope="col" { "Detail" } } }
                tbody {
                    @for e in entries {
                        tr class=(if e.ok { "ok" } else { "refused" }) {
                            td { time datetime=(iso(e.time)) { (html::date(e.time)) } }
                            td { (Text(&e.user)) }
                            td { (Text(&e.from)) }
                            td { (Text(&e.action)) }
                            td { (Text(&e.target)) }
                            td { @if e.ok { "done" } @else { strong.err { "refused" } } }
                            td { (Text(&e.detail)) }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages of the audit log" {
            @if let Some(o) = newer { a href=(link(o)) { "\u{2190} Newer" } " " }
            @if let Some(o) = older { a href=(link(o)) { "Older \u{2192}" } }
        }
    }
    .into_string()
}

/// `mode=audit`: the page.
pub async fn page(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let offset = ctx
        .arg("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let root = ctx.app.root.clone();
    let (entries, total) = blocking(move || audit::read(&root, offset, PAGE)).await?;
    let body = render(ctx.prefix(), &entries, offset, total);
    Ok(html_response(
        StatusCode::OK,
        html::page(&ctx.frame(Some(s), "Audit log", Nav::Audit), &body),
    ))
}

fn number(args: &Args, k: &str, default: usize, max: usize) -> Result<usize, AdminError> {
    match args.get(k) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                AdminError::json(
                    StatusCode::BAD_REQUEST,
                    format!("'{k}' must be a number from 0 to {max}"),
                )
            }),
    }
}

/// `GET api/audit`: a page of the log, newest first.
pub async fn api(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    uri: Uri,
    headers: HeaderMap,
) -> AdminResult {
    let _ = super::api_http::api_config(&app, &meta, &headers).await?;
    let args = Args::parse(uri.query().unwrap_or(""));
    let limit = number(&args, "limit", PAGE, MAX_LIMIT)?;
    let offset = number(&args, "offset", 0, usize::MAX)?;
    let root = app.root.clone();
    let (entries, total) = blocking(move || audit::read(&root, offset, limit)).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "total": total, "offset": offset, "limit": limit, "entries": entries }),
    ))
}

/// The OpenAPI description of `GET api/audit`.
pub fn openapi_path() -> serde_json::Value {
    let err = |d: &str| {
        json!({ "description": d, "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    json!({ "get": {
        "summary": "The audit log of admin actions, newest first, paged",
        "parameters": [
            { "name": "limit", "in": "query", "required": false, "description": "Entries in the page.",
              "schema": { "type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": PAGE } },
            { "name": "offset", "in": "query", "required": false, "description": "Newest entries skipped.",
              "schema": { "type": "integer", "minimum": 0, "default": 0 } }],
        "responses": {
            "200": { "description": "A page of the log", "content": { "application/json": { "schema": {
                "type": "object", "required": ["total", "offset", "limit", "entries"],
                "properties": {
                    "total": { "type": "integer" }, "offset": { "type": "integer" }, "limit": { "type": "integer" },
                    "entries": { "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } } } } } } },
            "400": err("Bad limit or offset"),
            "401": err("No session and no valid API token"),
            "429": err("Too many failed API tokens from this address (Retry-After)"),
        } } })
}

/// The schema of an audit entry.
pub fn entry_schema() -> serde_json::Value {
    json!({ "type": "object", "required": ["time", "user", "from", "action", "target", "ok", "detail"],
        "additionalProperties": false,
        "properties": {
            "time": { "type": "integer", "description": "Unix seconds" },
            "user": { "type": "string", "description": "Session user, the name tried at a failed login, or 'API token'" },
            "from": { "type": "string", "description": "Address the request came from" },
            "action": { "type": "string", "example": "rollout-abort" },
            "target": { "type": "string", "description": "Device, file or rollout acted on" },
            "ok": { "type": "boolean" },
            "detail": { "type": "string" } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_and_pages() {
        let e = Entry::now("<admin>", "10.0.0.1", "login-failed", "", false);
        let html = render("/u", std::slice::from_ref(&e), 100, 250);
        assert!(
            html.contains("&lt;admin&gt;") && !html.contains("<admin>"),
            "{html}"
        );
        assert!(html.contains("mode=audit&amp;offset=0"), "{html}");
        assert!(html.contains("mode=audit&amp;offset=200"), "{html}");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }
}
