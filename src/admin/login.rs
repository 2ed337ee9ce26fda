//! The login page, the login (throttled, password checked off the async threads, at most
//! [`crate::app::PARALLEL_PASSWORD_CHECKS`] at once) and the
//! logout (CSRF-checked) of the admin pages.

use super::audit::{self, Entry};
use super::html::{self, Nav, admin_url};
use super::request::AdminRequest;
use super::respond::{AdminError, AdminResult, add_cookie, blocking, html_response, redirect};
use super::router::cookie_path;
use super::session::{self, Session};
use super::throttle::retry_after_secs;
use axum::http::StatusCode;
use axum::response::Response;

/// The login form, with a notice on plain HTTP when a login is configured.
pub fn login_page(ctx: &AdminRequest, status: StatusCode, message: Option<&str>) -> Response {
    let mut frame = ctx.frame(None, "Log in", Nav::Login);
    if !ctx.https && session::login_configured(&ctx.cfg.master) {
        let https = ctx.app.admin.https_port().is_some();
        frame.notice = Some(maud::html! {
            "This connection is not encrypted: the password travels in clear text. "
            @if https { "Use the server's HTTPS address." }
            @else { "This server has no HTTPS listener: configure one (see README, TLS) before logging in over a network." }
        });
    }
    let action = if ctx.query.is_empty() {
        admin_url(ctx.prefix(), "")
    } else {
        admin_url(ctx.prefix(), &ctx.query)
    };
    let body = html::login_form(
        &action,
        message,
        !session::login_configured(&ctx.cfg.master),
    );
    html_response(status, html::page(&frame, &body))
}

/// `action=login`: a session and its cookie, or the login page again (403).
pub async fn login(ctx: &AdminRequest) -> Response {
    let throttle = &ctx.app.admin.throttle;
    match throttle.check(ctx.peer) {
        Err(wait) => {
            let tried = ctx.arg("user").unwrap_or_default();
            let e = Entry::now(&tried, ctx.peer, "login-failed", "", false).detail("throttled");
            audit::record(&ctx.app, e).await;
            return throttled(ctx, wait);
        }
        Ok(slow) if !slow.is_zero() => tokio::time::sleep(slow).await,
        Ok(_) => {}
    }
    let user = ctx.arg("user").unwrap_or_default();
    let password = ctx
        .arg("password")
        .or_else(|| ctx.arg("pw"))
        .unwrap_or_default();
    let master = ctx.cfg.master.clone();
    let u = user.clone();
    // Argon2 needs memory and CPU: only a few checks run at once; an address with failures
    // behind it does not queue for them
    let permit = if throttle.suspect(ctx.peer) {
        ctx.app
            .admin
            .password_checks
            .try_acquire()
            .map_err(|_| std::time::Duration::from_secs(1))
    } else {
        ctx.app
            .admin
            .password_checks
            .acquire()
            .await
            .map_err(|_| std::time::Duration::from_secs(1))
    };
    let _permit = match permit {
        Ok(p) => p,
        Err(wait) => return throttled(ctx, wait),
    };
    let checked = blocking(move || session::check_login(&master, &u, &password)).await;
    match checked {
        Ok(Ok(true)) => {
            ctx.app.admin.throttle.succeeded(ctx.peer);
            let s = ctx.app.admin.sessions.create(&user);
            tracing::info!("admin login of {user:?} from {}", ctx.peer);
            audit::record(&ctx.app, Entry::now(&user, ctx.peer, "login", "", true)).await;
            let target = admin_url(ctx.prefix(), &ctx.query);
            add_cookie(
                redirect(StatusCode::SEE_OTHER, &target),
                &session::set_cookie(
                    session::COOKIE,
                    Some(&s.token),
                    cookie_path(ctx.prefix()),
                    ctx.https,
                ),
            )
        }
        other => {
            if let Ok(Err(e)) = &other {
                tracing::error!("{e}");
            }
            ctx.app.admin.throttle.failed(ctx.peer);
            tracing::warn!("failed admin login of {user:?} from {}", ctx.peer);
            let e = Entry::now(&user, ctx.peer, "login-failed", "", false)
                .detail("wrong user or password");
            audit::record(&ctx.app, e).await;
            login_page(ctx, StatusCode::FORBIDDEN, Some("Wrong user or password."))
        }
    }
}

/// The login page with 429 and `Retry-After`: `wait` before the next attempt.
fn throttled(ctx: &AdminRequest, wait: std::time::Duration) -> Response {
    let secs = retry_after_secs(wait);
    tracing::info!(
        "admin login from {} refused for {secs} s (throttled)",
        ctx.peer
    );
    let msg = format!("Too many failed attempts, try again in {secs} s.");
    let mut r = login_page(ctx, StatusCode::TOO_MANY_REQUESTS, Some(&msg));
    r.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, secs.into());
    r
}

/// `action=logout`: ends the session (its CSRF token required) and clears the cookie.
pub async fn logout(ctx: &AdminRequest, s: Option<&Session>) -> AdminResult {
    if let Some(s) = s {
        if !session::csrf_ok(&s.csrf, ctx.csrf_given().as_deref()) {
            return Err(AdminError::forbidden("bad or missing CSRF token"));
        }
        ctx.app.admin.sessions.remove(&s.token);
        audit::record(&ctx.app, Entry::now(&s.user, ctx.peer, "logout", "", true)).await;
    }
    Ok(add_cookie(
        redirect(StatusCode::SEE_OTHER, &admin_url(ctx.prefix(), "")),
        &session::set_cookie(session::COOKIE, None, cookie_path(ctx.prefix()), ctx.https),
    ))
}
