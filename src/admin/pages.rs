//! The admin pages behind a session: the device status page (`mode=status`), the
//! configuration (`mode=show`) and "add a new device" (`mode=info`), each in the page frame.

use super::fleet::{Matching, ViewArgs, cached_master, matching, rows_of, with_ctx};
use super::html::{self, Nav};
use super::request::AdminRequest;
use super::respond::{AdminResult, blocking, html_response};
use super::session::{self, Session};
use super::{flash, info, show, status};
use axum::http::StatusCode;
use axum::response::Response;

/// The `rows` argument: how many rows to show (default one page, `all` for all).
pub fn rows_arg(ctx: &AdminRequest) -> usize {
    match ctx.arg("rows").as_deref() {
        Some("all") => usize::MAX,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(status::PAGE_ROWS),
        None => status::PAGE_ROWS,
    }
}

pub async fn status_page(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let va = ViewArgs::from_args(&ctx.args);
    let f = va.filter.clone();
    let sort: String = ctx
        .arg("sort")
        .filter(|v| status::parse_sort(v).is_some())
        .unwrap_or_default();
    let (app, cfg) = (ctx.app.clone(), ctx.cfg.clone());
    let csrf = s.csrf.clone();
    let limit = rows_arg(ctx);
    let problem = va.parsed.as_ref().err().cloned();
    let body = blocking(move || {
        let started = std::time::Instant::now();
        let m = match va.parsed {
            Ok((query, sort)) => matching(&app, &cfg, &query, sort),
            // a filter that cannot be read shows nothing but says why
            Err(_) => Matching {
                devices: Vec::new(),
                total: app.states(&cfg).map_or(0, |st| st.all().len()),
            },
        };
        let panel = super::rollouts::panel(&app, &cfg, &app.prefix, &csrf);
        let html = with_ctx(&app, &cfg, &csrf, true, |sctx| {
            let first = &m.devices[..limit.min(m.devices.len())];
            let page = status::Page {
                summary: &status::summary(&cfg, &sctx.master, sctx.now, &m.devices),
                shown: &rows_of(&app, &cfg, first, false),
                matched: m.devices.len(),
                total: m.total,
                panel: &panel,
            };
            status::render_page(sctx, &page, &f, &sort)
        });
        tracing::debug!(
            devices = m.total,
            matching = m.devices.len(),
            micros = started.elapsed().as_micros() as u64,
            "status page"
        );
        html
    })
    .await?;
    let mut frame = ctx.frame(Some(s), "Devices", Nav::Status);
    let from_cookie = session::cookie(&ctx.headers, flash::FLASH_COOKIE);
    let flash = super::notice::action_notice(ctx, s, from_cookie);
    let problem = problem.map(
        |p| maud::html! { span class="flash error" role="alert" { "Filter: " (html::Text(&p)) } },
    );
    frame.notice = match (flash, problem) {
        (Some(a), Some(b)) => Some(maud::html! { (a) " " (b) }),
        (a, b) => a.or(b),
    };
    let r = html_response(StatusCode::OK, html::page(&frame, &body));
    Ok(super::notice::shown_once(ctx, r, from_cookie))
}

pub async fn show_page(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let (app, cfg) = (ctx.app.clone(), ctx.cfg.clone());
    let body = blocking(move || {
        let cache = cached_master(&app.root, &cfg);
        let snippets = read_snippets(&app.root, &cfg.times.dir);
        show::render_body(&cfg, &cache, &snippets)
    })
    .await?;
    Ok(html_response(
        StatusCode::OK,
        html::page(&ctx.frame(Some(s), "Configuration", Nav::Show), &body),
    ))
}

/// The snippet files (`*-*-*.txt`) of the scripts directory, by name.
fn read_snippets(root: &std::path::Path, dir: &str) -> Vec<show::SnippetFile> {
    const MAX_SHOWN: u64 = 256 * 1024;
    let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut out: Vec<show::SnippetFile> = rd
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".txt")?;
            if stem.split('-').count() < 3 || name.starts_with('.') {
                return None;
            }
            let meta = entry.metadata().ok()?;
            if !meta.is_file() {
                return None;
            }
            let mtime = meta.modified().map_or(0, crate::clock::unix_secs);
            let content = if meta.len() > MAX_SHOWN {
                Err(format!("{} bytes: too large to show here", meta.len()))
            } else {
                std::fs::read(entry.path())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| e.to_string())
            };
            Some(show::SnippetFile {
                name: format!("{dir}/{name}"),
                mtime,
                content,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn info_page(ctx: &AdminRequest, s: &Session) -> Response {
    let base = format!(
        "{}://{}{}",
        if ctx.https { "https" } else { "http" },
        ctx.host,
        ctx.prefix()
    );
    let devname: String = ctx
        .arg("devname")
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    let env = ctx.arg("env");
    let body = info::render_body(
        &ctx.cfg,
        ctx.prefix(),
        &base,
        env.as_deref(),
        devname.trim(),
    );
    html_response(
        StatusCode::OK,
        html::page(&ctx.frame(Some(s), "Add device", Nav::Info), &body),
    )
}
