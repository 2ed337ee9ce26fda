//! The frame of every admin page (head, navigation, login form) and small helpers for
//! writing HTML. Every admin page is a `maud` template: a value put into one is escaped by
//! `maud` (text and double-quoted attribute values), so nothing reaches a page unescaped.
//! Text that came from a device, a file or a user is wrapped in [`Text`], which also
//! escapes `'` (`&#39;`, as the PHP pages do). [`q`] encodes URL query values.

use crate::xml::html_escape;
use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

/// Text from a device, a file or a user in a `maud` template: escaped like any value, and
/// `'` as `&#39;` too.
pub struct Text<'a>(pub &'a str);

impl Render for Text<'_> {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str(&html_escape(self.0));
    }
}

/// Encodes a URL query value (the result is escaped by `maud` in an attribute).
pub fn q(s: &str) -> String {
    crate::php::rawurlencode(s.as_bytes())
}

/// An age as the PHP pages show it ("4.1 mins"); `0` is "never" (∞).
pub fn age(now: i64, t: i64) -> String {
    if t == 0 {
        "\u{221e}".to_string()
    } else {
        crate::php::since(now, t)
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for tooltips.
pub fn date(t: i64) -> String {
    if t == 0 {
        "never".to_string()
    } else {
        format!("{} UTC", crate::php::format_datetime(t))
    }
}

/// The URL of the admin page with `query` (already encoded).
pub fn admin_url(prefix: &str, query: &str) -> String {
    if query.is_empty() {
        format!("{prefix}/admin/admin.php")
    } else {
        format!("{prefix}/admin/admin.php?{query}")
    }
}

/// The URL that downloads a root-relative file (`deliverfile`).
pub fn deliver_url(prefix: &str, path: &str) -> String {
    admin_url(prefix, &format!("mode=ui&cmd=deliverfile&fn={}", q(path)))
}

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Status,
    Show,
    Info,
    Login,
    /// An error page (no entry is current).
    Error,
    /// A device's own page.
    Device,
    /// The audit log.
    Audit,
}

/// What the frame needs to know.
pub struct Frame<'a> {
    pub prefix: &'a str,
    pub title: &'a str,
    pub nav: Nav,
    /// The session's CSRF token (`None`: not logged in).
    pub csrf: Option<&'a str>,
    pub user: Option<&'a str>,
    /// `status/@refresh` for the row refresh (0: off).
    pub refresh: i64,
    /// A message shown above the page content.
    pub notice: Option<Markup>,
    /// What the operator must know on every page: a broken configuration on disk, the
    /// default password ([`admin_notice`]).
    pub banner: Option<Markup>,
}

/// A complete page around `body` (already HTML); everything else is escaped by `maud`.
pub fn page(f: &Frame<'_>, body: &str) -> String {
    let p = f.prefix;
    let v = crate::admin::ASSET_VERSION;
    let navs = [
        (Nav::Status, "status", "Devices"),
        (Nav::Show, "show", "Configuration"),
        (Nav::Info, "info", "Add device"),
        (Nav::Audit, "audit", "Audit log"),
    ];
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (f.title) " \u{2013} update-server" }
                link rel="stylesheet" href=(format!("{p}/web/update-server.css?v={v}"));
                script src=(format!("{p}/web/update-server.js?v={v}")) defer {}
            }
            body data-prefix=(p) data-csrf=(f.csrf.unwrap_or("")) data-refresh=(f.refresh.max(0)) {
                a.skip href="#content" { "Skip to the content" }
                header.top {
                    span.brand { "update-server" }
                    @if let Some(csrf) = f.csrf {
                        nav aria-label="Admin pages" {
                            @for (nav, mode, label) in navs {
                                @if nav == f.nav {
                                    a href=(admin_url(p, &format!("mode={mode}"))) class="active" aria-current="page" { (label) }
                                } @else {
                                    a href=(admin_url(p, &format!("mode={mode}"))) { (label) }
                                }
                            }
                        }
                        form.logout method="post" action=(admin_url(p, "")) {
                            input type="hidden" name="action" value="logout";
                            input type="hidden" name="csrf" value=(csrf);
                            span.user { (f.user.unwrap_or("")) }
                            " "
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="content" tabindex="-1" {
                    @if let Some(b) = &f.banner { p.notice.banner role="alert" { (b) } }
                    @if let Some(n) = &f.notice { p.notice { (n) } }
                    (PreEscaped(body))
                }
            }
        }
    };
    doc.into_string()
}

/// The login form; it posts back to `action` (the page that was asked for).
pub fn login_form(action: &str, message: Option<&str>, open_login: bool) -> String {
    html! {
        section class="login" {
            h1 { "Log in" }
            @if let Some(m) = message {
                p class="error" role="alert" { (Text(m)) }
            }
            @if open_login {
                p class="notice" {
                    "No user and password are configured (" code { "master/@user" } ", "
                    code { "master/@password" } "): any login is accepted."
                }
            }
            form method="post" action=(action) {
                input type="hidden" name="action" value="login";
                label { "User " input name="user" id="user" autocomplete="username" autofocus; }
                label {
                    "Password "
                    input name="password" id="password" type="password" autocomplete="current-password";
                }
                button type="submit" id="login" { "Log in" }
            }
        }
    }
    .into_string()
}

/// The banner of the admin pages (HTML), if there is something to warn about.
pub fn admin_notice(app: &crate::app::App, cfg: &crate::config::Config) -> Option<maud::Markup> {
    let broken = app.config.problem();
    let default = cfg.default_password();
    if broken.is_none() && !default {
        return None;
    }
    Some(maud::html! {
        @if let Some(e) = &broken {
            "The configuration on disk is broken; the last good configuration is still in use: "
            (e.to_string())
            @if default { br; }
        }
        @if default {
            "The admin login is still the default " code { "admin" } "/" code { "password" }
            ": change it."
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_escapes_and_links_below_the_prefix() {
        let f = Frame {
            prefix: "/up\"date",
            title: "<x>",
            nav: Nav::Status,
            csrf: Some("tok"),
            user: Some("<admin>"),
            refresh: 10,
            notice: None,
            banner: None,
        };
        let html = page(&f, "<p>body</p>");
        assert!(html.contains("<title>&lt;x&gt; \u{2013} update-server</title>"));
        assert!(html.contains("href=\"/up&quot;date/admin/admin.php?mode=show\""));
        assert!(html.contains("<span class=\"user\">&lt;admin&gt;</span>"));
        assert!(html.contains("data-csrf=\"tok\""));
        assert!(html.contains("data-refresh=\"10\""));
        assert!(!html.contains("<admin>"));
    }

    #[test]
    fn login_page_has_no_navigation() {
        let f = Frame {
            prefix: "",
            title: "Log in",
            nav: Nav::Login,
            csrf: None,
            user: None,
            refresh: 0,
            notice: None,
            banner: None,
        };
        let html = page(
            &f,
            &login_form("/admin/admin.php?mode=show", Some("Wrong"), false),
        );
        assert!(!html.contains("<nav"));
        assert!(html.contains("action=\"/admin/admin.php?mode=show\""));
        assert!(html.contains("Wrong"));
    }

    #[test]
    fn ages_and_urls() {
        assert_eq!(age(100, 0), "\u{221e}");
        assert_eq!(age(100, 40), "60 secs");
        assert_eq!(
            deliver_url("/u", "certs/a b.der"),
            "/u/admin/admin.php?mode=ui&cmd=deliverfile&fn=certs%2Fa%20b.der"
        );
    }
}
