//! Staged rollouts on the admin side: the panel at the top of the status page (waves with
//! their counts, the phase, why a rollout halted and the failing devices, and the buttons
//! pause / resume / abort / open next wave), its form action (`mode=rollout`, a session and
//! its CSRF token), and the API: `GET api/rollouts` and `POST api/rollouts/{id}/{action}`
//! (the API token, or a session with its CSRF token).

use super::html::{admin_url, date};
use super::request::AdminRequest;
use super::respond::{AdminError, AdminResult, json_response, redirect};
use super::session::{self, Session};
use crate::app::App;
use crate::app::SharedApp;
use crate::config::Config;
use crate::conn::ConnMeta;
use crate::rollout::{Action, Phase, RolloutSummary};
use axum::Extension;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use maud::{Markup, html};
use serde_json::{Value, json};

/// The panel (empty without rollouts).
pub fn panel(app: &App, cfg: &Config, prefix: &str, csrf: &str, now: i64) -> String {
    if cfg.rollouts.is_empty() {
        return String::new();
    }
    let list = app.rollouts.summaries(&cfg.rollouts, now);
    html! {
        section #rollouts .rollouts aria-label="Rollouts" {
            h2.sr-only { "Rollouts" }
            @for r in &list { (one(r, prefix, csrf)) }
        }
    }
    .into_string()
}

fn one(r: &RolloutSummary, prefix: &str, csrf: &str) -> Markup {
    let target = format!(
        "firmware {}, boot code {}",
        r.firmware.as_deref().unwrap_or("unchanged"),
        r.bootcode.as_deref().unwrap_or("unchanged")
    );
    let filter = admin_url(prefix, &format!("mode=status&filter=rollout%3A{}", r.id));
    html! {
        details .rollout .fold id=(format!("rollout-{}", r.id)) data-fold=(format!("rollout-{}", r.id)) data-phase=(r.phase.as_str()) {
            summary { h3 { a href=(filter) { "Rollout " (r.id) } " " span .phase { (r.phase.as_str()) } }
                " " span .foldstate { (fold_state(r)) } }
            p { (target) ". Next wave at " (r.success) "% succeeded and " (r.soak)
                " s soak; halts above " (r.halt) "% failed; " (r.timeout) " s to report." }
            @if let Some(why) = &r.halted { p .halted role="alert" { "Halted: " (why) } }
            table .waves {
                thead { tr { th { "Wave" } th { "Share" } th { "Opened" } th { "Told" }
                    th { "Pending" } th { "Succeeded" } th { "Failed" } } }
                tbody { @for w in &r.waves { tr data-wave=(w.wave) {
                    td { a href=(format!("{filter}+wave%3A{}", w.wave)) { (w.wave) } }
                    td { (w.percent) "%" }
                    td { @match w.opened { Some(t) => (date(t)), None => "not open" } }
                    td .told { (w.told) } td .pending { (w.pending) }
                    td .succeeded { (w.succeeded) } td .failed { (w.failed) }
                } } }
            }
            @if !r.failing.is_empty() {
                details .failing { summary { "Failing devices (" (r.failing.len()) ")" }
                    ul { @for f in &r.failing {
                        li { (f.sn) " (wave " (f.wave) ", " (f.why.as_str()) ", " (date(f.at)) ")" }
                    } } }
            }
            (buttons(r, prefix, csrf))
        }
    }
}

/// The one line a folded rollout shows: how far its waves are.
fn fold_state(r: &RolloutSummary) -> String {
    let open = r.waves.iter().filter(|w| w.opened.is_some()).count();
    let sum = |f: fn(&crate::rollout::summary::WaveSummary) -> usize| {
        r.waves.iter().map(f).sum::<usize>()
    };
    format!(
        "{open} of {} waves open: {} pending, {} succeeded, {} failed",
        r.waves.len(),
        sum(|w| w.pending),
        sum(|w| w.succeeded),
        sum(|w| w.failed)
    )
}

fn buttons(r: &RolloutSummary, prefix: &str, csrf: &str) -> Markup {
    let closed = r.waves.iter().any(|w| w.opened.is_none());
    let actions: Vec<(Action, &str)> = match r.phase {
        Phase::Aborted => Vec::new(),
        Phase::Paused | Phase::Halted => vec![(Action::Resume, "Resume")],
        _ => vec![(Action::Pause, "Pause")],
    };
    let mut actions = actions;
    if r.phase != Phase::Aborted {
        if closed {
            actions.push((Action::OpenNext, "Open next wave now"));
        }
        actions.push((Action::Abort, "Abort"));
    }
    html! {
        @for (a, label) in actions {
            form .rollout-action method="post" action=(admin_url(prefix, ""))
                data-confirm=[(a == Action::Abort).then(|| format!("Abort rollout {}? This is final: it cannot be resumed.", r.id))] {
                input type="hidden" name="mode" value="rollout";
                input type="hidden" name="id" value=(r.id);
                input type="hidden" name="op" value=(a.as_str());
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" name="do" value=(a.as_str()) { (label) }
            }
        }
    }
}

fn action_arg(op: Option<&str>) -> Result<Action, AdminError> {
    op.and_then(Action::parse)
        .ok_or_else(|| AdminError::bad("'op' must be pause, resume, abort or open-next"))
}

/// `mode=rollout` (POST, CSRF token): an action from the panel; back to the status page.
pub async fn form_action(ctx: &AdminRequest, s: &Session) -> AdminResult {
    if ctx.method != axum::http::Method::POST
        || !session::csrf_ok(&s.csrf, ctx.csrf_given().as_deref())
    {
        tracing::warn!(
            "refused mode=rollout from {}: not a POST with the CSRF token",
            ctx.peer
        );
        return Err(AdminError::forbidden("bad or missing CSRF token"));
    }
    let id = ctx.arg("id").unwrap_or_default();
    let action = action_arg(ctx.arg("op").as_deref())?;
    let who = format!("admin '{}' at {}", s.user, ctx.peer);
    let done = act(&ctx.app, &ctx.cfg, &id, action, &who);
    let e = super::audit::Entry::now(
        &s.user,
        ctx.peer,
        &format!("rollout-{}", action.as_str()),
        &id,
        done.is_ok(),
    );
    super::audit::record(&ctx.app, e).await;
    done.map_err(|(_, msg)| AdminError::bad(msg))?;
    let msg = super::flash::Flash::of_rollout(action);
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!(
            "{}#rollouts",
            admin_url(
                ctx.prefix(),
                &format!(
                    "mode=status&msg={}&msgsn={}",
                    msg.key(),
                    super::html::q(&id)
                )
            )
        ),
    ))
}

/// Runs an action, logged with who did it; the error as (status, message).
fn act(
    app: &App,
    cfg: &Config,
    id: &str,
    action: Action,
    who: &str,
) -> Result<(), (StatusCode, String)> {
    let now = crate::clock::now();
    match app.rollouts.act(&cfg.rollouts, id, action, now) {
        Ok(()) => {
            tracing::info!("{who}: rollout {id} {}", action.as_str());
            Ok(())
        }
        Err(e @ crate::rollout::store::StoreError::Unknown(_)) => {
            Err((StatusCode::NOT_FOUND, e.to_string()))
        }
        Err(e) => Err((StatusCode::CONFLICT, e.to_string())),
    }
}

/// The API routes below `prefix` (see `api_http::PATHS`).
pub fn routes(prefix: &str) -> axum::Router<SharedApp> {
    axum::Router::new()
        .route(&format!("{prefix}/api/rollouts"), axum::routing::get(list))
        .route(
            &format!("{prefix}/api/rollouts/{{id}}/{{action}}"),
            axum::routing::post(api_action),
        )
}

/// `GET api/rollouts`: every configured rollout's summary.
async fn list(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    headers: HeaderMap,
) -> AdminResult {
    let (cfg, _) = super::api_http::api_config(&app, &meta, &headers).await?;
    let now = crate::clock::now();
    let list = app.rollouts.summaries(&cfg.rollouts, now);
    Ok(json_response(
        StatusCode::OK,
        json!({ "now": now, "rollouts": list }),
    ))
}

/// `POST api/rollouts/{id}/{action}`: pause, resume, abort, open-next.
async fn api_action(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    UrlPath((id, action)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> AdminResult {
    let (cfg, caller) = super::api_http::api_config(&app, &meta, &headers).await?;
    let who = super::api_http::changer(&caller, &headers, &uri, meta.peer.ip(), "rollout action")?;
    let action = Action::parse(&action).ok_or_else(|| {
        AdminError::json(
            StatusCode::BAD_REQUEST,
            "action must be pause, resume, abort or open-next",
        )
    })?;
    let done = act(&app, &cfg, &id, action, &who);
    let user = match &caller {
        super::api_http::Caller::Session(s) => s.user.clone(),
        super::api_http::Caller::Token => "API token".to_string(),
    };
    let e = super::audit::Entry::now(
        &user,
        meta.peer.ip().to_canonical(),
        &format!("rollout-{}", action.as_str()),
        &id,
        done.is_ok(),
    )
    .detail("API");
    super::audit::record(&app, e).await;
    done.map_err(|(st, msg)| AdminError::json(st, msg))?;
    let now = crate::clock::now();
    let summary = app
        .rollouts
        .summaries(&cfg.rollouts, now)
        .into_iter()
        .find(|s| s.id == id);
    Ok(json_response(
        StatusCode::OK,
        json!({ "done": true, "rollout": summary }),
    ))
}

/// The OpenAPI description of these paths.
pub fn openapi_paths() -> Value {
    let err = |d: &str| {
        json!({ "description": d, "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let rollout = json!({ "type": "object", "description": "A rollout's summary",
        "properties": {
            "id": { "type": "string" }, "firmware": { "type": ["string", "null"] },
            "bootcode": { "type": ["string", "null"] },
            "phase": { "type": "string", "enum": ["running", "waiting-for-soak", "paused", "halted", "aborted", "done"] },
            "halted": { "type": ["string", "null"] },
            "success": { "type": "integer" }, "halt": { "type": "integer" },
            "soak": { "type": "integer" }, "timeout": { "type": "integer" },
            "soak_until": { "type": ["integer", "null"] },
            "waves": { "type": "array", "items": { "type": "object" } },
            "failing": { "type": "array", "items": { "type": "object" } } } });
    json!({
        "/api/rollouts": { "get": {
            "summary": "Every configured staged rollout with its waves and counts",
            "responses": {
                "200": { "description": "The rollouts", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "now": { "type": "integer" },
                        "rollouts": { "type": "array", "items": rollout } } } } } },
                "401": err("No session and no valid API token"),
            } } },
        "/api/rollouts/{id}/{action}": { "post": {
            "summary": "Pause, resume, abort a rollout, or open its next wave now",
            "description": "With a session, send its CSRF token as X-CSRF-Token (or ?csrf=); the API token is enough by itself.",
            "parameters": [
                { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "action", "in": "path", "required": true,
                    "schema": { "type": "string", "enum": ["pause", "resume", "abort", "open-next"] } },
                { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } }],
            "responses": {
                "200": { "description": "Done", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "done": { "type": "boolean" }, "rollout": rollout } } } } },
                "400": err("Unknown action"),
                "401": err("No session and no valid API token"),
                "403": err("Session without its CSRF token"),
                "404": err("No such rollout"),
                "409": err("Not possible now (aborted, not paused, every wave open)"),
            } } },
    })
}
