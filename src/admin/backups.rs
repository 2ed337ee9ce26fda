//! The backup view of the admin pages (`mode=backup`): one configuration backup of a device
//! shown as text, or two of its backups compared as a unified diff (by the `similar` crate).
//!
//! Only the device's own files (`backup/HWID/HWID.N.txt`, as listed by [`crate::backup::list`])
//! are read, at most [`MAX_BACKUP`] bytes each; the page needs a session like every admin page.
//! Rendering is pure ([`render_view`], [`render_diff`]) and escapes by construction (`maud`).

use super::fleet::one_row;
use super::html::{self, Nav, admin_url, age, date, deliver_url};
use super::request::AdminRequest;
use super::respond::{AdminError, AdminResult, blocking, html_response};
use super::session::Session;
use crate::backup::Stored;
use axum::http::StatusCode;
use maud::{Markup, html};
use similar::{ChangeTag, TextDiff};

/// Largest backup file shown or compared.
pub const MAX_BACKUP: u64 = 1024 * 1024;

/// One backup as read for the page.
pub struct Text {
    pub stored: Stored,
    pub content: Result<String, String>,
}

pub(super) fn version_list(
    prefix: &str,
    sn: &str,
    all: &[Stored],
    now: i64,
    sel: &[i64],
) -> Markup {
    html! {
        form.backupsel method="get" action=(admin_url(prefix, "")) {
            input type="hidden" name="mode" value="backup";
            input type="hidden" name="sn" value=(sn);
            table.grid {
                tr { th { "Version" } th { "Stored" } th { "A" } th { "B" } th {} }
                @for b in all {
                    tr {
                        td {
                            a href=(admin_url(prefix, &format!("mode=backup&sn={}&n={}", html::q(sn), b.index))) {
                                (file_name(&b.path))
                            }
                        }
                        td { (date(b.mtime)) " " small.hint { "(" (age(now, b.mtime)) " ago)" } }
                        td { input type="radio" name="a" value=(b.index) checked[sel.first() == Some(&b.index)] aria-label=(format!("A: {}", file_name(&b.path))) required; }
                        td { input type="radio" name="b" value=(b.index) checked[sel.get(1) == Some(&b.index)] aria-label=(format!("B: {}", file_name(&b.path))) required; }
                        td { a href=(deliver_url(prefix, &b.path)) download { "download" } }
                    }
                }
            }
            button type="submit" id="compare" { "Compare A and B" }
        }
    }
}

fn back(prefix: &str, sn: &str) -> Markup {
    html! {
        p.back { a href=(super::status::device_href(prefix, sn)) { "\u{2190} Device " (sn) } }
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// One backup in full.
pub fn render_view(prefix: &str, sn: &str, all: &[Stored], now: i64, t: &Text) -> String {
    let sel = [t.stored.index];
    html! {
        (back(prefix, sn))
        h1 { "Backup " (file_name(&t.stored.path)) " of " (sn) }
        p.hint { "Stored " (date(t.stored.mtime)) " \u{b7} " a href=(deliver_url(prefix, &t.stored.path)) download { "download" } }
        @match &t.content {
            Ok(c) => pre.backup id="backuptext" { (c) },
            Err(e) => p.error { (e) },
        }
        h2 { "All versions" }
        (version_list(prefix, sn, all, now, &sel))
    }
    .into_string()
}

/// Two backups compared line by line (unified diff, 3 lines of context).
pub fn render_diff(prefix: &str, sn: &str, all: &[Stored], now: i64, a: &Text, b: &Text) -> String {
    let sel = [a.stored.index, b.stored.index];
    let body = match (&a.content, &b.content) {
        (Ok(x), Ok(y)) => diff_table(x, y),
        (Err(e), _) | (_, Err(e)) => html! { p.error { (e) } },
    };
    html! {
        (back(prefix, sn))
        h1 { "Backups of " (sn) ": " (file_name(&a.stored.path)) " \u{2192} " (file_name(&b.stored.path)) }
        p.hint { "A: " (date(a.stored.mtime)) " \u{b7} B: " (date(b.stored.mtime)) }
        (body)
        h2 { "All versions" }
        (version_list(prefix, sn, all, now, &sel))
    }
    .into_string()
}

fn diff_table(old: &str, new: &str) -> Markup {
    let diff = TextDiff::from_lines(old, new);
    let groups = diff.grouped_ops(3);
    html! {
        @if groups.is_empty() {
            p.nodiff { "The two versions are the same." }
        } @else {
            table.diff id="diff" {
                @for (gi, group) in groups.iter().enumerate() {
                    @if gi > 0 { tr.gap { td colspan="3" { "\u{22ef}" } } }
                    @for op in group {
                        @for ch in diff.iter_changes(op) {
                            @let (class, sign) = match ch.tag() {
                                ChangeTag::Delete => ("del", "-"),
                                ChangeTag::Insert => ("ins", "+"),
                                ChangeTag::Equal => ("eq", " "),
                            };
                            tr class=(class) {
                                td.ln { (ch.old_index().map(|i| (i + 1).to_string()).unwrap_or_default()) }
                                td.ln { (ch.new_index().map(|i| (i + 1).to_string()).unwrap_or_default()) }
                                td { span.sign { (sign) } (ch.value().trim_end_matches(['\r', '\n'])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reads one backup file (bounded).
fn read(root: &std::path::Path, s: &Stored) -> Text {
    let path = root.join(&s.path);
    let content = match std::fs::metadata(&path) {
        Ok(m) if !m.is_file() => Err("not a regular file".to_string()),
        Ok(m) if m.len() > MAX_BACKUP => Err(format!("{} bytes: too large to show", m.len())),
        Ok(_) => std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    Text {
        stored: s.clone(),
        content,
    }
}

fn index_arg(ctx: &AdminRequest, k: &str) -> Result<Option<i64>, AdminError> {
    match ctx.arg(k) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| AdminError::bad(format!("argument '{k}' is no backup number"))),
    }
}

/// `mode=backup&sn=SN` with `n=N` (one version, default the newest) or `a=N&b=M` (diff).
pub async fn backup_page(ctx: &AdminRequest, s: &Session) -> AdminResult {
    let sn = ctx.arg("sn").unwrap_or_default();
    if sn.is_empty() || crate::request::check_name("sn", sn.as_bytes()).is_err() {
        return Err(AdminError::bad("argument 'sn' refused"));
    }
    let (n, a, b) = (
        index_arg(ctx, "n")?,
        index_arg(ctx, "a")?,
        index_arg(ctx, "b")?,
    );
    if a.is_some() != b.is_some() {
        return Err(AdminError::bad(
            "to compare, choose two versions: one as A and one as B",
        ));
    }
    let (app, cfg, sn2) = (ctx.app.clone(), ctx.cfg.clone(), sn.clone());
    let body = blocking(move || {
        let row = one_row(&app, &cfg, &sn2)?;
        let mut all: Vec<Stored> = row.backups.iter().cloned().collect();
        all.sort_by_key(|b| std::cmp::Reverse(b.index));
        let find = |i: i64| all.iter().find(|b| b.index == i);
        let now = crate::clock::now();
        Some(match (a, b) {
            (Some(a), Some(b)) => {
                let (x, y) = (find(a)?, find(b)?);
                tracing::debug!(sn = %sn2, a, b, "backup diff");
                render_diff(
                    &app.prefix,
                    &sn2,
                    &all,
                    now,
                    &read(&app.root, x),
                    &read(&app.root, y),
                )
            }
            _ => {
                let one = match n {
                    Some(n) => find(n)?,
                    None => all.first()?,
                };
                render_view(&app.prefix, &sn2, &all, now, &read(&app.root, one))
            }
        })
    })
    .await?;
    let Some(body) = body else {
        return Err(AdminError::Plain(
            StatusCode::NOT_FOUND,
            format!("no such backup of {}", crate::answer::comment_safe(&sn)),
        ));
    };
    Ok(html_response(
        StatusCode::OK,
        html::page(&ctx.frame(Some(s), "Backup", Nav::Status), &body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(i: i64, c: &str) -> Text {
        Text {
            stored: Stored {
                path: format!("backup/H/H.{i}.txt"),
                index: i,
                mtime: 100,
            },
            content: Ok(c.to_string()),
        }
    }

    #[test]
    fn a_backup_is_shown_as_escaped_text() {
        let t = text(2, "config change X <script>alert(1)</script>\r\n");
        let html = render_view(
            "/p",
            "00-90-33-00-00-01",
            std::slice::from_ref(&t.stored),
            200,
            &t,
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("fn=backup%2FH%2FH.2.txt"));
    }

    #[test]
    fn two_backups_are_compared_line_by_line() {
        let a = text(1, "a\nb\nc\n");
        let b = text(2, "a\nB<\nc\n");
        let html = render_diff("", "sn", &[], 200, &a, &b);
        assert!(html.contains("<tr class=\"del\"><td class=\"ln\">2</td><td class=\"ln\"></td><td><span class=\"sign\">-</span>b</td></tr>"), "{html}");
        assert!(
            html.contains("<span class=\"sign\">+</span>B&lt;</td>"),
            "{html}"
        );
        let same = render_diff("", "sn", &[], 200, &a, &text(3, "a\nb\nc\n"));
        assert!(same.contains("The two versions are the same."));
    }
}
