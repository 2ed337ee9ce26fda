//! The `mode=ui&cmd=…` endpoints the status page's script calls: a CSRF check for the
//! commands that change something (and for every POST), then one function per command.
//! The actions (`delstatus`, `touchstatus`, `delfile`) answer `true`/`false`, or with a
//! `back` argument (a form without script) redirect to the same filtered and sorted view
//! with a message (`msg=`, see [`super::flash`]).

use super::audit::{self, Entry};
use super::flash::{Flash, status_query};
use super::fleet::{ViewArgs, matching, one_row, rows_of, with_ctx};
use super::html::admin_url;
use super::order::start_after;
use super::pages::rows_arg;
use super::request::AdminRequest;
use super::respond::{AdminError, AdminResult, blocking, harden, json_response, redirect};
use super::session::{self, Session};
use super::{files, status};
use crate::state::{Loaded, StateStore};
use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use std::net::IpAddr;

/// `mode=ui`: checks the CSRF token where needed and runs `cmd`.
pub async fn ui(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let Some(cmd) = ctx.arg("cmd") else {
        return Err(AdminError::bad("need 'cmd' arg for mode=ui"));
    };
    let changes = matches!(cmd.as_str(), "delstatus" | "touchstatus" | "delfile");
    if (changes || ctx.method == Method::POST)
        && !session::csrf_ok(&s.csrf, ctx.csrf_given().as_deref())
    {
        tracing::warn!(
            "refused mode=ui&cmd={cmd} from {}: bad CSRF token",
            ctx.peer
        );
        return Err(AdminError::json(
            StatusCode::FORBIDDEN,
            "bad or missing CSRF token",
        ));
    }
    match cmd.as_str() {
        "delstatus" => delstatus(ctx, s).await,
        "touchstatus" => touchstatus(ctx, s).await,
        "delfile" => delfile(ctx, s).await,
        "updatestatus" => updatestatus(ctx, s).await,
        "rowpart" => rowpart(ctx, s).await,
        "rows" => rows(ctx, s).await,
        "updaterows" => updaterows(ctx, s).await,
        "deliverfile" => deliverfile(ctx).await,
        other => Err(AdminError::bad(format!(
            "unknown cmd={} for mode=ui",
            crate::answer::comment_safe(other)
        ))),
    }
}

/// Checks the `sn` argument of a ui command.
fn sn_arg(ctx: &AdminRequest, cmd: &str) -> Result<String, AdminError> {
    let Some(sn) = ctx.arg("sn") else {
        return Err(AdminError::bad(format!(
            "need 'sn' arg for mode=ui and cmd={cmd}"
        )));
    };
    match ctx
        .args
        .get_bytes("sn")
        .map(|b| crate::request::check_name("sn", b))
    {
        Some(Ok(())) if !sn.is_empty() => Ok(sn),
        Some(Err(e)) => Err(AdminError::bad(e.to_string())),
        _ => Err(AdminError::bad("argument 'sn' is empty")),
    }
}

/// A change of one device's state file under its lock; answers whether it was done.
async fn change_state(
    ctx: &AdminRequest,
    s: &Session,
    (cmd, action): (&str, &str),
    flash: Flash,
    change: fn(&StateStore, &str, IpAddr) -> bool,
) -> AdminResult {
    let sn = sn_arg(ctx, cmd)?;
    let Some(store) = ctx.app.states(&ctx.cfg) else {
        return Ok(done_answer(ctx, false, flash, &sn));
    };
    let lock = store.lock_for(&sn);
    let _guard = lock.lock().await;
    let who = ctx.peer;
    let key = sn.clone();
    let store2 = store.clone();
    let done = blocking(move || change(&store2, &key, who))
        .await
        .unwrap_or(false);
    // an administrator's change is on disk before it is confirmed
    store.flush().await;
    audit::record(&ctx.app, Entry::now(&s.user, ctx.peer, action, &sn, done)).await;
    Ok(done_answer(ctx, done, flash, &sn))
}

/// The answer of an action: `true`/`false` for the page's script, or with `back` (a form
/// without script) a redirect to the status page with the same `filter` and `sort` and the
/// message `msg` about what happened.
fn done_answer(ctx: &AdminRequest, done: bool, flash: Flash, sn: &str) -> axum::response::Response {
    if !ctx.args.has("back") {
        return json_response(StatusCode::OK, json!(done));
    }
    let flash = if done { flash } else { Flash::Failed };
    let query = status_query(
        &ctx.arg("filter").unwrap_or_default(),
        &ctx.arg("sort").unwrap_or_default(),
        Some((flash, sn)),
    );
    redirect(StatusCode::SEE_OTHER, &admin_url(ctx.prefix(), &query))
}

/// `delstatus`: deletes a device's state file.
async fn delstatus(ctx: &AdminRequest, s: &Session) -> AdminResult {
    change_state(
        ctx,
        s,
        ("delstatus", "delete-status"),
        Flash::StatusDeleted,
        |store, sn, who| match store.delete(sn) {
            Ok(deleted) => {
                if deleted {
                    tracing::info!("admin at {who} deleted the status of {sn}");
                }
                deleted
            }
            Err(e) => {
                tracing::error!("cannot delete the status of {sn}: {e}");
                false
            }
        },
    )
    .await
}

/// `touchstatus`: marks a missing device as seen now.
async fn touchstatus(ctx: &AdminRequest, s: &Session) -> AdminResult {
    change_state(
        ctx,
        s,
        ("touchstatus", "mark-seen"),
        Flash::StatusTouched,
        |store, sn, _| match store.load(sn) {
            Loaded::Ok(el) => {
                let mut el = (*el).clone();
                el.root.set_attr("seen", crate::clock::now().to_string());
                store.save(sn, el).is_ok()
            }
            _ => false,
        },
    )
    .await
}

/// `delfile`: deletes a certificate file of a device.
async fn delfile(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let sn = sn_arg(ctx, "delfile")?;
    let Some(file) = ctx.arg("file") else {
        return Err(AdminError::bad(
            "need 'file' arg for mode=ui and cmd=delfile",
        ));
    };
    let rel = files::deletable(&ctx.cfg, &sn, &file).map_err(|e| AdminError::bad(e.to_string()))?;
    let path = ctx.app.root.join(&rel);
    let who = ctx.peer;
    let watch = ctx.app.watch.clone();
    let done = blocking(move || match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!("admin at {who} deleted {rel}");
            watch.bump();
            true
        }
        Err(_) => false,
    })
    .await
    .unwrap_or(false);
    let e = Entry::now(&s.user, ctx.peer, "delete-file", &file, done).detail(&sn);
    audit::record(&ctx.app, e).await;
    Ok(done_answer(ctx, done, Flash::FileDeleted, &sn))
}

/// The answer for a device without state file.
fn no_device() -> AdminError {
    AdminError::Json(StatusCode::NOT_FOUND, json!(false))
}

/// `updatestatus`: one device's row, again.
async fn updatestatus(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let sn = sn_arg(ctx, "updatestatus")?;
    let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
    let html = blocking(move || {
        let r = one_row(&app, &cfg, &sn)?;
        Some(with_ctx(&app, &cfg, &csrf, false, |sctx| {
            status::row(sctx, &r)
        }))
    })
    .await?
    .ok_or_else(no_device)?;
    Ok(json_response(StatusCode::OK, json!(html)))
}

/// `rowpart`: the content of a part of a row opened on the page (`part=log|backups|scripts`).
async fn rowpart(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let sn = sn_arg(ctx, "rowpart")?;
    let name = ctx.arg("part").unwrap_or_default();
    let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
    let html = blocking(move || {
        let r = one_row(&app, &cfg, &sn)?;
        Some(with_ctx(&app, &cfg, &csrf, false, |sctx| {
            status::part(sctx, &r, &name)
        }))
    })
    .await?
    .ok_or_else(no_device)?
    .ok_or_else(|| AdminError::bad("unknown part"))?;
    Ok(json_response(StatusCode::OK, json!(html)))
}

/// `rows`: the next rows of the status page (after a key, or from `offset`), or the first
/// ones for a filter and sort, with the summary and the count of the matching devices. A
/// filter or sort that cannot be read answers `error` (and says so in `count`).
async fn rows(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let va = ViewArgs::from_args(&ctx.args);
    let (query, sort) = match va.parsed {
        Ok(p) => p,
        Err(e) => {
            return Ok(json_response(
                StatusCode::OK,
                json!({ "error": e, "count": e }),
            ));
        }
    };
    let filter = va.filter;
    let after = ctx.arg("after").filter(|a| !a.is_empty());
    let offset = ctx
        .arg("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = rows_arg(ctx);
    let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
    let out = blocking(move || {
        let m = matching(&app, &cfg, &query, sort);
        with_ctx(&app, &cfg, &csrf, true, |sctx| {
            let all = &m.devices;
            let before = start_after(all, after.as_deref(), offset);
            let page = &all[before..before.saturating_add(limit).min(all.len())];
            let shown = rows_of(&app, &cfg, page, false);
            let remaining = all.len() - before - shown.len();
            let summary = status::summary(&cfg, &sctx.master, sctx.now, all);
            json!({
                "rows": status::rows_fragment(sctx, &shown, remaining, &filter, before + shown.len()),
                "summary": status::render_facts(&cfg, &summary),
                "charts": status::render_charts(&summary),
                "count": status::count_text(all.len(), m.total, &filter),
                "matched": all.len(),
                "total": m.total,
                "offset": before,
                "sort": sort.param(),
            })
        })
    })
    .await?;
    Ok(json_response(StatusCode::OK, out))
}

/// `updaterows`: the rows of the devices `sn=SN,SN,…` (at most 500), `null` for those
/// without state file.
async fn updaterows(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let list = ctx.arg("sn").unwrap_or_default();
    let sns: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && crate::request::check_name("sn", s.as_bytes()).is_ok())
        .take(500)
        .map(str::to_string)
        .collect();
    let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
    let out = blocking(move || {
        with_ctx(&app, &cfg, &csrf, false, |sctx| {
            let mut map = serde_json::Map::new();
            for sn in sns {
                let v = match one_row(&app, &cfg, &sn) {
                    Some(r) => serde_json::Value::String(status::row(sctx, &r)),
                    None => serde_json::Value::Null,
                };
                map.insert(sn, v);
            }
            serde_json::Value::Object(map)
        })
    })
    .await?;
    Ok(json_response(StatusCode::OK, out))
}

/// `deliverfile`: a download of a file below the status, backup, certificate or snippet
/// directory.
async fn deliverfile(ctx: &AdminRequest) -> AdminResult {
    let Some(name) = ctx.arg("fn") else {
        return Err(AdminError::bad(
            "need 'fn' arg for mode=ui and cmd=deliverfile",
        ));
    };
    let (root, cfg) = (ctx.app.root.clone(), ctx.cfg.clone());
    let n = name.clone();
    let bytes = blocking(move || {
        let path = files::resolve(&root, &cfg, &n).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| e.to_string())
    })
    .await?
    .map_err(|e| {
        tracing::warn!("deliverfile refused from {}: {e}", ctx.peer);
        AdminError::Plain(StatusCode::NOT_FOUND, e)
    })?;
    let base = name.rsplit('/').next().unwrap_or("download");
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(harden(
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{safe}\""),
                ),
            ],
            Body::from(bytes),
        )
            .into_response(),
    ))
}
