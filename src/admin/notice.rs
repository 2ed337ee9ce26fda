//! The message after an action on an admin page (the status page, a device's page): from
//! `msg=KEY&msgsn=SN` on the way back, or from the one-time flash cookie (then cleared).

use super::flash;
use super::html;
use super::request::AdminRequest;
use super::respond::add_cookie;
use super::session::{self, Session};
use axum::response::Response;

/// The message after an action: from `msg=` (a rollout action says who did it and when, on
/// the redirect right after it) or from the one-time flash cookie.
pub(super) fn action_notice(
    ctx: &AdminRequest,
    s: &Session,
    from_cookie: Option<&str>,
) -> Option<maud::Markup> {
    match (ctx.arg("msg"), from_cookie) {
        (Some(m), _) if m.starts_with("rollout-") => {
            flash::notice(Some(&m), ctx.arg("msgsn").as_deref()).map(|n| {
                let when = html::date(crate::clock::now());
                maud::html! { (n) " " span.hint { "(" (html::Text(&s.user)) ", " (when) "; see the audit log)" } }
            })
        }
        (Some(m), _) => flash::notice(Some(&m), ctx.arg("msgsn").as_deref()),
        (None, Some(c)) => {
            let (m, sn) = flash::from_cookie(c);
            flash::notice(m, sn)
        }
        (None, None) => None,
    }
}

/// The message of the flash cookie is shown once: a page that showed it clears the cookie.
pub(super) fn shown_once(ctx: &AdminRequest, r: Response, from_cookie: Option<&str>) -> Response {
    match from_cookie {
        Some(_) => add_cookie(
            r,
            &session::set_cookie(
                flash::FLASH_COOKIE,
                None,
                // the cookie's path, as `flash::cookie` sets it
                if ctx.prefix().is_empty() {
                    "/"
                } else {
                    ctx.prefix()
                },
                ctx.https,
            ),
        ),
        None => r,
    }
}
