//! Staged rollouts on the admin side: the panel at the top of the status page (waves with
//! their counts, the phase, why it is not moving, why it halted, a snippet rollout's files
//! with the staged and the previous version, the failing devices with type, builds, last
//! address and a link, what abort does, removed rollouts whose devices may move back,
//! and the buttons start / pause / resume / abort / open next wave), its form action
//! (`mode=rollout`, a session and its CSRF token), and the API: `GET api/rollouts` and
//! `POST api/rollouts/{id}/{action}` (the API token, or a session with its CSRF token).

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

/// What the index knows of a failing device: type, reported firmware and boot code, the
/// address it last polled from.
struct DeviceInfo {
    device_type: String,
    firmware: String,
    bootcode: String,
    ip: String,
}

fn device_info(app: &App, cfg: &Config, sn: &str) -> Option<DeviceInfo> {
    let entry = app.states(cfg)?.index().get(sn)?;
    let f = entry.fields();
    Some(DeviceInfo {
        device_type: f.device_type.to_string(),
        firmware: f.firmware.to_string(),
        bootcode: f.bootcode.to_string(),
        ip: f.ip.to_string(),
    })
}

/// The panel (empty without rollouts and without state files of removed ones).
pub fn panel(app: &App, cfg: &Config, prefix: &str, csrf: &str) -> String {
    let orphans = app.rollouts.orphans();
    if cfg.rollouts.is_empty() && orphans.is_empty() {
        return String::new();
    }
    let list = app.rollouts.summaries(&cfg.rollouts, app.rollouts.now());
    let info = |sn: &str| device_info(app, cfg, sn);
    html! {
        section #rollouts .rollouts aria-label="Rollouts" {
            h2.sr-only { "Rollouts" }
            @for o in &orphans {
                p .removed-rollout role="alert" data-rollout=(o.id) {
                    "Rollout " (o.id) " is no longer configured, but " (o.installed)
                    " devices installed its builds (" (o.target) "). " code { "<master>" }
                    " (or another rollout) decides for them now and may move them back. Keep it in "
                    "the configuration (aborted) to hold them where they are, or delete "
                    code { "rollouts/" (o.id) ".xml" } " once that is what you want."
                }
            }
            @for r in &list { (one(r, prefix, csrf, &info)) }
        }
    }
    .into_string()
}

fn one(
    r: &RolloutSummary,
    prefix: &str,
    csrf: &str,
    info: &dyn Fn(&str) -> Option<DeviceInfo>,
) -> Markup {
    let target = crate::rollout::staged::target_words(r);
    let filter = admin_url(prefix, &format!("mode=status&filter=rollout%3A{}", r.id));
    html! {
        details .rollout .fold id=(format!("rollout-{}", r.id)) data-fold=(format!("rollout-{}", r.id)) data-phase=(r.phase.key()) {
            summary { h3 { a href=(filter) { "Rollout " (r.id) } " " span .phase { (r.phase.as_str()) } }
                " " span .foldstate { (fold_state(r)) } }
            p { (target) ". Next wave at " (r.success) "% of its population succeeded and "
                (r.soak) " s soak; halts above " (r.halt) "% failed; " (r.timeout)
                (match (r.snippets.is_empty(), r.firmware.is_some() || r.bootcode.is_some()) {
                    (true, _) => " s to report",
                    (false, false) => " s to poll again after the new version",
                    (false, true) => " s to report the builds and poll again after the new version",
                })
                "; starts " (if r.start == "manual" { "by hand" } else { "by itself" }) "." }
            @if !r.snippets.is_empty() { (files(r)) }
            @if let Some(why) = &r.blocked { p .blocked { "Not moving: " (why) } }
            @if let Some(why) = &r.halted { p .halted role="alert" { "Halted: " (why) } }
            table .waves {
                thead { tr { th { "Wave" } th { "Share" } th { "Opened" } th { "Population" }
                    th { "Told" } th { "Pending" } th { "Succeeded" } th { "Failed" }
                    th title="first seen after the wave opened: served, not counted" { "Later" } } }
                tbody { @for w in &r.waves { tr data-wave=(w.wave) {
                    td { a href=(format!("{filter}+wave%3A{}", w.wave)) { (w.wave) } }
                    td { (w.percent) "%" }
                    td { @match w.opened { Some(t) => (date(t)), None => "not open" } }
                    td .population { (w.population) } td .told { (w.told) }
                    td .pending { (w.pending) } td .succeeded { (w.succeeded) }
                    td .failed { (w.failed) } td .later { (w.later) }
                } } }
            }
            @if !r.failing.is_empty() { (failing(r, prefix, info)) }
            (buttons(r, prefix, csrf))
            @if !r.snippets.is_empty() && r.phase != Phase::Aborted && r.phase != Phase::Idle {
                p .abort-note { "Abort ends this round: every device in scope is then given the "
                    "previous version of the files again, also those given the new one (on their next "
                    "poll). A further change of a file starts a new round from wave 1."
                    @if r.firmware.is_some() || r.bootcode.is_some() {
                        " The builds are held as well (no firmware or boot code command)." } }
            } @else if r.phase != Phase::Aborted && r.phase != Phase::Idle {
                p .abort-note { "Abort is final: every device in scope is then held (no firmware or "
                    "boot code command) and keeps the build it runs, also those that installed "
                    "this rollout's. Removing the rollout from the configuration afterwards hands "
                    "its devices back to " code { "<master>" } ", which may move them back." }
            }
        }
    }
}

/// A snippet rollout's files: the version its round stages and the previous one.
fn files(r: &RolloutSummary) -> Markup {
    html! {
        table .staged-files {
            thead { tr { th { "File" } th { "New version (round)" } th { "Previous version (held devices get it)" } } }
            tbody { @for f in &r.snippets { tr .staged-file data-file=(f.name) {
                td { code { (f.name) } }
                td .version { @match f.version { Some(v) => { (v) " (" (date(v)) ")" }, None => "none staged" } }
                td .previous { @match f.previous { Some(v) => { (v) " (" (date(v)) ")" }, None => "not kept yet" } }
            } } }
        }
    }
}

fn failing(r: &RolloutSummary, prefix: &str, info: &dyn Fn(&str) -> Option<DeviceInfo>) -> Markup {
    html! {
        details .failing open { summary { "Failing devices (" (r.failing.len()) ")" }
            table { thead { tr { th { "Device" } th { "Type" } th { "Reports" } th { "Last address" }
                th { "Wave" } th { "Why" } th { "When" } } }
            tbody { @for f in &r.failing {
                @let i = info(&f.sn);
                tr .failing-device data-sn=(f.sn) {
                    td { a href=(admin_url(prefix, &format!("mode=status&filter=sn%3A{}",
                        crate::php::urlencode(f.sn.as_bytes())))) { (f.sn) } }
                    td { (i.as_ref().map_or("", |i| i.device_type.as_str())) }
                    td { @if let Some(i) = &i { "firmware " (i.firmware) ", boot code " (i.bootcode) } }
                    td .last-ip { (i.as_ref().map_or("", |i| i.ip.as_str())) }
                    td { (f.wave) } td { (f.why.words()) } td { (date(f.at)) }
                }
            } } }
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
    let mut actions: Vec<(Action, &str)> = match r.phase {
        Phase::Aborted | Phase::Idle => return html! {},
        Phase::Ready => vec![(Action::Start, "Start")],
        Phase::Paused | Phase::Halted => vec![(Action::Resume, "Resume")],
        _ => vec![(Action::Pause, "Pause")],
    };
    if !matches!(r.phase, Phase::Aborted | Phase::Ready) && closed {
        actions.push((Action::OpenNext, "Open next wave now"));
    }
    if r.phase != Phase::Aborted {
        actions.push((Action::Abort, "Abort"));
    }
    html! {
        @for (a, label) in actions {
            form .rollout-action method="post" action=(admin_url(prefix, ""))
                data-confirm=[(a == Action::Abort).then(|| abort_question(r))] {
                input type="hidden" name="mode" value="rollout";
                input type="hidden" name="id" value=(r.id);
                input type="hidden" name="op" value=(a.as_str());
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" name="do" value=(a.as_str()) { (label) }
            }
        }
    }
}

/// What the page asks before an abort.
fn abort_question(r: &RolloutSummary) -> String {
    if r.snippets.is_empty() {
        format!(
            "Abort rollout {}? This is final: it cannot be resumed.",
            r.id
        )
    } else {
        format!(
            "Abort this round of rollout {}? Every device in scope gets the previous version again; only a new change of the files starts a new round.",
            r.id
        )
    }
}

fn action_arg(op: Option<&str>) -> Result<Action, AdminError> {
    op.and_then(Action::parse)
        .ok_or_else(|| AdminError::bad("'op' must be start, pause, resume, abort or open-next"))
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
    let now = app.rollouts.now();
    let fleet = crate::rollout_ticker::IndexFleet::new(app, cfg, now);
    match app.rollouts.act(&cfg.rollouts, id, action, &fleet, now) {
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
    let now = app.rollouts.now();
    let list: Vec<Value> = app
        .rollouts
        .summaries(&cfg.rollouts, now)
        .iter()
        .map(|s| with_devices(&app, &cfg, s))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "now": now, "rollouts": list, "removed": app.rollouts.orphans() }),
    ))
}

/// A summary as JSON, its failing devices with type and reported builds (`null` unknown).
fn with_devices(app: &App, cfg: &Config, s: &RolloutSummary) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(list) = v.get_mut("failing").and_then(Value::as_array_mut) {
        for f in list {
            let sn = f["sn"].as_str().unwrap_or("").to_string();
            let i = device_info(app, cfg, &sn);
            f["type"] = json!(i.as_ref().map(|i| i.device_type.clone()));
            f["firmware"] = json!(i.as_ref().map(|i| i.firmware.clone()));
            f["bootcode"] = json!(i.as_ref().map(|i| i.bootcode.clone()));
            f["ip"] = json!(i.as_ref().map(|i| i.ip.clone()));
        }
    }
    v
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
            "action must be start, pause, resume, abort or open-next",
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
    let now = app.rollouts.now();
    let summary = app
        .rollouts
        .summaries(&cfg.rollouts, now)
        .iter()
        .find(|s| s.id == id)
        .map(|s| with_devices(&app, &cfg, s));
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
            "snippets": { "type": "array", "description": "A snippet rollout's files: name, the version its round stages (null: none), the kept previous version",
                "items": { "type": "object", "properties": { "name": { "type": "string" },
                    "version": { "type": ["integer", "null"] }, "previous": { "type": ["integer", "null"] } } } },
            "round_started": { "type": ["integer", "null"] },
            "phase": { "type": "string", "enum": ["idle", "ready", "running", "waiting-for-soak", "paused", "halted", "aborted", "done", "ended-with-failures"] },
            "blocked": { "type": ["string", "null"], "description": "Why the next wave is not open" },
            "halted": { "type": ["string", "null"] },
            "start": { "type": "string", "enum": ["auto", "manual"] },
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
                        "rollouts": { "type": "array", "items": rollout },
                        "removed": { "type": "array", "description": "State files of rollouts no longer configured whose devices installed their builds",
                            "items": { "type": "object", "properties": {
                                "id": { "type": "string" }, "target": { "type": "string" },
                                "installed": { "type": "integer" }, "aborted": { "type": "boolean" } } } } } } } } },
                "401": err("No session and no valid API token"),
            } } },
        "/api/rollouts/{id}/{action}": { "post": {
            "summary": "Start (start=\"manual\"), pause, resume, abort a rollout, or open its next wave now",
            "description": "With a session, send its CSRF token as X-CSRF-Token (or ?csrf=); the API token is enough by itself.",
            "parameters": [
                { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "action", "in": "path", "required": true,
                    "schema": { "type": "string", "enum": ["start", "pause", "resume", "abort", "open-next"] } },
                { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } }],
            "responses": {
                "200": { "description": "Done", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "done": { "type": "boolean" }, "rollout": rollout } } } } },
                "400": err("Unknown action"),
                "401": err("No session and no valid API token"),
                "403": err("Session without its CSRF token"),
                "404": err("No such rollout"),
                "409": err("Not possible now (aborted, not paused, every wave open, not waiting for its start)"),
            } } },
    })
}
