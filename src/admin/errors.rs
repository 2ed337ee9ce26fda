//! The HTML error pages of the admin side: a refusal of an admin page, a `mode=ui` command
//! opened in the browser, or the certificate upload is shown in the page frame (with the
//! navigation for a logged-in administrator), its status kept, with a way back. JSON
//! answers (the page's script, the API), PHP's argument checks and the device endpoints keep
//! their own answers.

use super::html::{self, Frame, Nav, Text, admin_url};
use super::respond::{AdminError, html_response};
use super::session;
use crate::app::App;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

/// The answer of an admin page that failed with `err`: an HTML page for the text refusals,
/// the answer `err` itself otherwise.
pub fn page_or_answer(app: &App, headers: &HeaderMap, err: AdminError) -> Response {
    let (status, msg) = match err {
        AdminError::Plain(status, msg) => (status, msg),
        AdminError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the server log says more".to_string(),
        ),
        other => return other.into_response(),
    };
    let s = session::cookie(headers, session::COOKIE).and_then(|t| app.admin.sessions.get(t));
    let title = format!(
        "Error {} \u{2013} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    let frame = Frame {
        prefix: &app.prefix,
        title: &title,
        nav: Nav::Error,
        csrf: s.as_ref().map(|s| s.csrf.as_str()),
        user: s.as_ref().map(|s| s.user.as_str()),
        refresh: 0,
        notice: None,
        banner: None,
    };
    html_response(status, html::page(&frame, &body(&app.prefix, &title, &msg)))
}

/// The content of an error page.
pub fn body(prefix: &str, title: &str, msg: &str) -> String {
    html! {
        section.errorpage {
            h1 { (title) }
            p.error role="alert" data-status=(title) { (Text(msg)) }
            p {
                a href=(admin_url(prefix, "mode=status")) { "Back to the devices" }
                " \u{b7} "
                a href=(admin_url(prefix, "mode=status")) data-back="1" { "Back to the previous page" }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_page_escapes_the_message_and_links_back() {
        let b = body("/u", "Error 400 \u{2013} Bad Request", "unknown mode=<x>");
        assert!(b.contains("<h1>Error 400 \u{2013} Bad Request</h1>"), "{b}");
        assert!(b.contains("unknown mode=&lt;x&gt;"), "{b}");
        assert!(b.contains("href=\"/u/admin/admin.php?mode=status\""), "{b}");
    }
}
