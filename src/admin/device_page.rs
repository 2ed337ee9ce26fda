//! A device's own page (`mode=device&sn=SN`, the link on the serial number of the status
//! page): identity, type, classes, phase, environments, the builds now and their recorded
//! changes (`state::builds`, newest first), its staged rollouts (scope, wave, the rollout's
//! phase), the message log newest first with absolute dates, the backups with a version
//! picker and diff, the certificate state with its actions, the query results and the
//! delivered snippets.

use super::backups::version_list;
use super::fleet::{one_row, with_device_ctx};
use super::html::{self, Nav, Text, admin_url, age, date, deliver_url};
use super::request::AdminRequest;
use super::respond::{AdminError, AdminResult, blocking, html_response};
use super::session::Session;
use super::status::{self, Row, build_cell, button, cert_cell, polls_newest_first};
use super::view::{Cell, Msg};
use crate::backup::Stored;
use crate::rollout::summary::RolloutSummary;
use crate::state::builds::Change;
use axum::http::StatusCode;
use maud::{Markup, html};

/// What the device page shows besides the row: kept apart from the state file.
pub struct Extra {
    /// The build changes, oldest first.
    pub history: Vec<Change>,
    /// How the device last proved itself (since the server started).
    pub proved: Option<String>,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a rollout recorded of the device, in words with dates.
fn recorded(d: Option<&crate::rollout::state::DeviceRecord>) -> Markup {
    let at = |t: i64| html! { time datetime=(super::audit_http::iso(t)) { (date(t)) } };
    html! {
        @match d {
            None => span.undef { "nothing yet (held)" },
            Some(d) => {
                @if let Some(t) = d.told { "told " (at(t)) }
                @if let Some(t) = d.succeeded { @if d.told.is_some() { "; " } "succeeded " (at(t)) }
                @if let Some((t, why)) = d.failed { @if d.told.is_some() { "; " } "failed " (at(t)) " (" (why.words()) ")" }
                @if d.told.is_none() && d.succeeded.is_none() && d.failed.is_none() {
                    @if d.member { "member, not told yet" } @else { "held" }
                }
            }
        }
    }
}

fn rollouts(sctx: &status::RenderCtx<'_>, r: &Row, states: &[RolloutSummary]) -> Markup {
    let v = &*r.view;
    let all = &sctx.cfg.rollouts;
    let (classes, envs) = (list(&v.classes), list(&v.environments));
    let records = sctx
        .rollouts
        .map(|s| s.for_device(all, &v.sn))
        .unwrap_or_default();
    // the first rollout whose scope the device fits decides for it
    let deciding = all
        .iter()
        .find(|ro| ro.in_scope(&classes, &envs))
        .map(|ro| &ro.id);
    html! {
        @if all.is_empty() {
            p.undef { "No staged rollout is configured." }
        } @else {
            table.grid.rollouts {
                thead { tr { th scope="col" { "Rollout" } th scope="col" { "Target" } th scope="col" { "This device" } th scope="col" { "Recorded" } th scope="col" { "Rollout state" } } }
                tbody { @for ro in all {
                    @let scope = ro.in_scope(&classes, &envs);
                    @let wave = crate::rollout::wave_of(ro, &v.sn);
                    @let phase = states.iter().find(|s| s.id == ro.id).map_or("unknown", |s| s.phase.as_str());
                    @let rec = records.iter().find(|(id, _)| *id == ro.id).and_then(|(_, s)| s.devices.get(v.sn.trim()));
                    tr {
                        td { (Text(&ro.id)) }
                        td { "firmware " (ro.firmware.as_deref().map_or("unchanged", |f| f)) }
                        td { @match (scope, wave) {
                            (true, Some(w)) => { "in scope, wave " (w + 1) " of " (ro.waves.len()) },
                            (true, None) => "in scope, beyond the last wave",
                            (false, _) => "not in scope",
                        }
                        @if scope && deciding != Some(&ro.id) { br; small.hint { "an earlier rollout decides" } } }
                        td { @if scope { (recorded(rec)) } }
                        td { (phase) }
                    }
                } }
            }
        }
    }
}

fn log(ctx_now: i64, msgs: &[Msg]) -> Markup {
    let polls = polls_newest_first(msgs);
    html! {
        @if polls.is_empty() {
            p.undef { "The message log is empty." }
        } @else {
            ol.devlog reversed {
                @for (t, lines) in &polls {
                    li {
                        time datetime=(super::audit_http::iso(*t)) { (date(*t)) }
                        " " small.hint { "(" (age(ctx_now, *t)) " ago)" }
                        @if !lines.is_empty() {
                            ul { @for l in lines { li { (Text(l)) } } }
                        }
                    }
                }
            }
        }
    }
}

/// The build changes, newest first, with absolute dates (`on`: they are recorded).
fn build_history(changes: &[Change], on: bool) -> Markup {
    html! {
        h3 { "Build changes" " " small.hint { "newest first" } }
        @if changes.is_empty() && on {
            p.undef { "No build change recorded." }
        } @else if changes.is_empty() {
            p.undef { "Build changes are not recorded: set " code { "<status buildhistory=\"true\"/>" } " in the configuration." }
        } @else {
            table.grid.builds {
                thead { tr { th scope="col" { "When" } th scope="col" { "Build" } th scope="col" { "Before" } th scope="col" { "After" } } }
                tbody { @for c in changes.iter().rev() {
                    tr {
                        td { time datetime=(super::audit_http::iso(c.time)) { (date(c.time)) } }
                        td { (if c.what == "bootcode" { "boot code" } else { "firmware" }) }
                        td.mono { @match &c.from { Some(f) => (Text(f)), None => span.undef { "none" } } }
                        td.mono { (Text(&c.to)) }
                    }
                } }
            }
        }
    }
}

/// The identity section: serial, hardware id, how its last poll proved it, type, address,
/// last poll, phase, classes, environments.
fn identity(sctx: &status::RenderCtx<'_>, r: &Row, extra: &Extra, missing: bool) -> Markup {
    let v = &*r.view;
    html! {
        section {
            h2 { "Identity" }
            dl.attrs {
                dt { "Serial number" } dd { (Text(&v.sn)) }
                dt { "Hardware id" } dd { (Text(&v.hwid)) }
                dt { "Last proved" } dd {
                    @match &extra.proved {
                        Some(p) => (Text(p)),
                        None => span.undef { "no poll since the server started" },
                    }
                }
                dt { "Type" } dd { (Text(&v.device_type)) }
                dt { "Address" } dd { (Text(&v.realip))
                    @if v.via_proxy { " (via " (Text(&v.proxy)) " " (Text(&v.ip)) ")" } }
                dt { "Last seen" } dd { (date(v.seen)) " (" (age(sctx.now, v.seen)) " ago)"
                    @if missing { " " span.badge.missing { "missing" } } }
                dt { "Phase" } dd { (Text(&v.phase)) }
                dt { "Classes" } dd { (Text(&v.classes)) }
                dt { "Environments" } dd { (Text(&v.environments)) }
            }
        }
    }
}

/// The page's content (pure but for the rendering context's clock).
pub fn render(
    sctx: &status::RenderCtx<'_>,
    r: &Row,
    extra: &Extra,
    states: &[RolloutSummary],
) -> String {
    let v = &*r.view;
    let p = sctx.prefix;
    let missing = v.is_missing(sctx.cfg.status.missing, sctx.now);
    let backups: Vec<Stored> = r.backups.iter().cloned().collect();
    html! {
        p.back { a href=(admin_url(p, "mode=status")) { "\u{2190} Devices" } }
        div.device data-sn=(Text(&v.key)) data-page="device" {
            h1 { "Device " (Text(&v.sn)) @if !v.name.is_empty() { " \u{2013} " (Text(&v.name)) } }
            @if let Some(problem) = &v.problem {
                p.error role="alert" { (Text(problem)) }
            }
            div.acts {
                @if missing { (button("touch", "Mark as seen", &format!("Mark {} as seen", v.key), None)) " " }
                (button("delete", "Delete status", &format!("Delete the status of {}", v.key), None))
            }
            section.devgrid {
                (identity(sctx, r, extra, missing))
                section {
                    h2 { "Builds" }
                    dl.attrs {
                        dt { "Firmware" } dd.mono { (build_cell(&v.firmware, &v.firmware_requested, "firmware")) }
                        dt { "Boot code" } dd.mono { (build_cell(&v.bootcode, &v.bootcode_requested, "boot code")) }
                    }
                    (build_history(&extra.history, sctx.cfg.status.buildhistory))
                    h2 { "Staged rollouts" }
                    (rollouts(sctx, r, states))
                }
                @if sctx.cfg.customcerts.is_some() {
                    section.c-cert {
                        h2 { "Certificate" }
                        (cert_cell(sctx, v, &r.certs))
                    }
                }
                section {
                    h2 { "Query results" }
                    @if sctx.groups.is_empty() { p.undef { "No query shows values." } }
                    @for (gi, g) in sctx.groups.iter().enumerate() {
                        h3 { (g.title) }
                        @match v.queries.get(gi).and_then(Option::as_ref) {
                            Some(res) => {
                                p.hint { "answered " (date(res.seen)) }
                                dl.attrs { @for (c, cell) in g.columns.iter().zip(res.cells.iter()) {
                                    dt { (c.title) }
                                    dd { @match cell { Cell::Value(s) => (Text(s)), Cell::Error(e) => span.err { (Text(e)) } } }
                                } }
                            }
                            None => p.undef { "no answer" },
                        }
                    }
                }
            }
            section {
                h2 { "Message log" " " small.hint { "newest first" } }
                (log(sctx.now, &v.msgs))
            }
            section {
                h2 { "Backups" }
                @if backups.is_empty() { p.undef { "no backup files" } }
                @else { (version_list(p, &v.key, &backups, sctx.now, &[])) }
            }
            section {
                h2 { "Delivered snippets" }
                @if v.snippets.is_empty() { p.undef { "none" } }
                ul { @for s in &v.snippets {
                    li { a href=(deliver_url(p, &s.file)) { (Text(&s.file)) } " delivered " (date(s.delivered)) }
                } }
            }
        }
    }
    .into_string()
}

/// `mode=device&sn=SN`.
pub async fn page(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let sn = ctx.arg("sn").unwrap_or_default();
    if sn.is_empty() || crate::request::check_name("sn", sn.as_bytes()).is_err() {
        return Err(AdminError::bad("argument 'sn' refused"));
    }
    let (app, cfg, csrf, sn2) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone(), sn.clone());
    let body = blocking(move || {
        let r = one_row(&app, &cfg, &sn2)?;
        let extra = Extra {
            history: app
                .states(&cfg)
                .map(|s| s.build_history(&sn2))
                .unwrap_or_default(),
            proved: app.identities.proved(&sn2),
        };
        let states = app.rollouts.summaries(&cfg.rollouts, crate::clock::now());
        Some(with_device_ctx(&app, &cfg, &csrf, |sctx| {
            render(sctx, &r, &extra, &states)
        }))
    })
    .await?
    .ok_or_else(|| {
        AdminError::Plain(
            StatusCode::NOT_FOUND,
            format!(
                "no state file for device {}",
                crate::answer::comment_safe(&sn)
            ),
        )
    })?;
    let title = format!("Device {sn}");
    let mut frame = ctx.frame(Some(s), &title, Nav::Device);
    // what an action on this page did (`msg=KEY&msgsn=SN` on the way back, or the flash
    // cookie of a certificate upload)
    let from_cookie = super::session::cookie(&ctx.headers, super::flash::FLASH_COOKIE);
    frame.notice = super::notice::action_notice(ctx, s, from_cookie);
    let r = html_response(StatusCode::OK, html::page(&frame, &body));
    Ok(super::notice::shown_once(ctx, r, from_cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_newest_first_by_poll() {
        let m = |time, text: &str| Msg {
            time,
            text: text.into(),
        };
        let msgs = [m(1, ""), m(1, "a"), m(1, "b"), m(5, ""), m(5, "c")];
        assert_eq!(
            polls_newest_first(&msgs),
            vec![(5, vec!["c"]), (1, vec!["b", "a"])]
        );
    }

    #[test]
    fn build_changes_are_shown_newest_first_and_escaped() {
        let c = |time, what: &str, from: Option<&str>, to: &str| Change {
            time,
            what: what.into(),
            from: from.map(str::to_string),
            to: to.into(),
        };
        let changes = [
            c(1_700_000_000, "firmware", None, "130100"),
            c(1_700_086_400, "bootcode", Some("1"), "<b>2</b>"),
        ];
        let html = build_history(&changes, true).into_string();
        let (newer, older) = (
            html.find("boot code").expect("boot"),
            html.find("130100").expect("fw"),
        );
        assert!(newer < older, "{html}");
        assert!(html.contains("2023-11-15 22:13:20 UTC"), "{html}");
        assert!(html.contains("&lt;b&gt;2&lt;/b&gt;") && !html.contains("<b>2"));
        assert!(html.contains("none"), "no build before: {html}");
        assert!(
            build_history(&[], true)
                .into_string()
                .contains("No build change recorded")
        );
        assert!(
            build_history(&[], false)
                .into_string()
                .contains("not recorded")
        );
    }
}
