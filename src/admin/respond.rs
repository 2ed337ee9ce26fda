//! The answers of the admin side: the headers every admin answer carries, HTML, JSON, text,
//! redirect and asset answers, and [`AdminError`], the refusals handlers return with `?`.

use crate::respond::text;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why an admin request is not answered as asked; each variant is one kind of answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `# MESSAGE - exit` as plain text with this status (PHP's style).
    #[error("{1}")]
    Plain(StatusCode, String),
    /// This JSON value with this status (`{"error": …}`, or `false` for the page's script).
    #[error("{1}")]
    Json(StatusCode, serde_json::Value),
    /// Background work failed: `# internal error - exit`, status 500.
    #[error("internal error")]
    Internal,
    /// An API request with neither session nor token: 401 with `WWW-Authenticate`.
    #[error("log in or send Authorization: Bearer <api token>")]
    Unauthorized,
    /// Too many failed attempts: 429 with `Retry-After` (seconds).
    #[error("too many failed attempts, try again in {0} s")]
    TooMany(u64),
    /// One of PHP's argument checks: its plain-text answer (status 200, no admin headers).
    #[error("{0}")]
    Php(&'static str),
}

impl AdminError {
    /// A plain-text 400.
    pub fn bad(msg: impl Into<String>) -> AdminError {
        AdminError::Plain(StatusCode::BAD_REQUEST, msg.into())
    }

    /// A plain-text 403.
    pub fn forbidden(msg: impl Into<String>) -> AdminError {
        AdminError::Plain(StatusCode::FORBIDDEN, msg.into())
    }

    /// `{"error": msg}` with this status.
    pub fn json(status: StatusCode, msg: impl Into<String>) -> AdminError {
        AdminError::Json(status, serde_json::json!({ "error": msg.into() }))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::Plain(status, msg) => plain(status, &msg),
            AdminError::Json(status, v) => json_response(status, v),
            AdminError::Internal => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            AdminError::Unauthorized => {
                let mut r = json_response(
                    StatusCode::UNAUTHORIZED,
                    serde_json::json!({ "error": "log in or send Authorization: Bearer <api token>" }),
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"update-server\""),
                );
                r
            }
            AdminError::Php(msg) => text(StatusCode::OK, msg),
            AdminError::TooMany(secs) => {
                let msg = format!("too many failed attempts, try again in {secs} s");
                let mut r = json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    serde_json::json!({ "error": msg }),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                r
            }
        }
    }
}

/// What admin handlers return.
pub type AdminResult = Result<Response, AdminError>;

/// Runs blocking file work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AdminError::Internal)
}

/// A compiled-in style sheet or script.
pub fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Adds the headers every admin answer carries.
pub fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

pub fn html_response(status: StatusCode, body: String) -> Response {
    harden(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

pub fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    harden((status, Json(v)).into_response())
}

/// `# msg - exit` as plain text.
pub fn plain(status: StatusCode, msg: &str) -> Response {
    harden(text(status, format!("# {msg} - exit\r\n")))
}

pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = harden(text(status, format!("see {location}\n")));
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub fn add_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
