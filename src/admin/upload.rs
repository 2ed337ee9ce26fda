//! The signed-certificate upload `update.php?mode=upload`: PHP's argument checks, then an
//! administrator session and its CSRF token; only the signed certificate of that device,
//! and only a certificate (PEM or DER) that fits the device's CSR, is stored. Afterwards
//! the browser goes back to `proceed` (keeping its `filter` and `sort`), and the flash
//! cookie tells the page what happened (see [`super::flash`]).

use super::audit::{self, Entry};
use super::flash::{self, Flash};
use super::html::{self, admin_url};
use super::respond::{AdminError, AdminResult, add_cookie, blocking, plain, redirect};
use super::session::{self, Session};
use crate::app::SharedApp;
use crate::config::Config;
use crate::conn::ConnMeta;
use crate::php::Args;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// Largest signed-certificate upload read.
const MAX_UPLOAD: usize = 1024 * 1024;

/// Where `proceed` may send the browser after an upload: an admin page of this server
/// (`admin/admin.php?…`, also with the prefix or as `admin/`), never another site.
pub fn proceed_target(prefix: &str, proceed: &str) -> Option<String> {
    let rest = proceed
        .strip_prefix(prefix)
        .filter(|_| !prefix.is_empty())
        .unwrap_or(proceed);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !matches!(path, "admin/admin.php" | "admin/" | "admin") {
        return None;
    }
    match query {
        None | Some("") => Some(admin_url(prefix, "")),
        Some(q)
            if q.len() <= 512
                && q.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'=' | b'&' | b'%' | b'+' | b'-' | b'_' | b'.' | b'~' | b','
                        )
                }) =>
        {
            Some(admin_url(prefix, q))
        }
        _ => None,
    }
}

/// `update.php?mode=upload` (POST multipart, field `cert-SN`): an administrator uploads the
/// signed certificate of a device. PHP's argument checks answer first; then a session and
/// its CSRF token are required, and only `customcerts/@dir/SN-signedrequest.cer` of that
/// device can be written, and only with a certificate (PEM or DER).
pub async fn upload(
    app: SharedApp,
    cfg: Arc<Config>,
    args: Args,
    method: Method,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let h = headers.clone();
    match accept(app.clone(), cfg, args, method, headers, request).await {
        Ok(r) => r,
        Err(e) => super::errors::page_or_answer(&app, &h, e),
    }
}

/// What was checked before the upload is read.
struct Target {
    sn: String,
    /// The file written: `customcerts/@dir/SN-signedrequest.cer`.
    file: String,
    /// The device's CSR (DER).
    request: String,
    /// The admin page to go to afterwards.
    proceed: Option<String>,
}

async fn accept(
    app: SharedApp,
    cfg: Arc<Config>,
    args: Args,
    method: Method,
    headers: HeaderMap,
    request: Request,
) -> AdminResult {
    if !args.has("sn") {
        return Err(AdminError::Php(
            "# need 'sn' arg for mode=upload, use ?sn=#m - exit\r\n",
        ));
    }
    if !args.has("file") {
        return Err(AdminError::Php(
            "# need 'file' arg for mode=upload, use ?file=filename - exit\r\n",
        ));
    }
    let peer = request
        .extensions()
        .get::<ConnMeta>()
        .map(|m| m.peer.ip().to_canonical());
    let tls = request
        .extensions()
        .get::<ConnMeta>()
        .is_some_and(|m| m.tls);
    let Some(s) =
        session::cookie(&headers, session::COOKIE).and_then(|t| app.admin.sessions.get(t))
    else {
        return Err(AdminError::forbidden(
            "mode=upload needs an administrator session",
        ));
    };
    let target = target(&app, &cfg, &args)?;
    if method != Method::POST {
        return Err(AdminError::bad(
            "No File uploaded - use back button to continue",
        ));
    }
    let cert = read_upload(&s, &target.sn, &headers, request).await?;
    let from = peer.map(|p| p.to_string()).unwrap_or_default();
    if let Err(e) = check_cert(&app, &target, &cert).await {
        let entry =
            Entry::now(&s.user, &from, "cert-upload", &target.sn, false).detail(&e.to_string());
        audit::record(&app, entry).await;
        return Err(e);
    }
    let path = app.root.join(&target.file);
    let file = target.file.clone();
    match blocking(move || crate::fsio::write_atomic(&path, &cert)).await? {
        Ok(()) => {
            app.watch.bump();
            let entry = Entry::now(&s.user, &from, "cert-upload", &target.sn, true).detail(&file);
            audit::record(&app, entry).await;
            tracing::info!(
                sn = %target.sn,
                "admin '{}' at {} uploaded {file}",
                s.user,
                peer.map(|p| p.to_string()).unwrap_or_default()
            );
        }
        Err(e) => {
            tracing::error!("cannot write {file}: {e}");
            return Err(AdminError::Plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not store {file}"),
            ));
        }
    }
    Ok(match target.proceed {
        Some(t) => add_cookie(
            redirect(
                StatusCode::SEE_OTHER,
                &format!("{t}#d-{}", html::q(&target.sn)),
            ),
            &flash::cookie(&app.prefix, Flash::CertUploaded, &target.sn, tls),
        ),
        None => plain(StatusCode::OK, "file upload - ?proceed= missing"),
    })
}

/// Checks `sn`, `file` (only the device's signed certificate) and `proceed`.
fn target(app: &SharedApp, cfg: &Config, args: &Args) -> Result<Target, AdminError> {
    let sn = args.get("sn").map(|v| v.into_owned()).unwrap_or_default();
    let file = args.get("file").map(|v| v.into_owned()).unwrap_or_default();
    if sn.is_empty() || crate::request::check_name("sn", sn.as_bytes()).is_err() {
        return Err(AdminError::bad("argument 'sn' refused"));
    }
    let Some(cc) = &cfg.customcerts else {
        return Err(AdminError::bad(
            "custom certificates are not configured (customcerts/@dir)",
        ));
    };
    let paths = crate::certs::CertPaths::new(cc, &sn);
    if file != paths.signed {
        return Err(AdminError::bad(format!(
            "?file: only {} can be uploaded for this device",
            crate::answer::comment_safe(&paths.signed)
        )));
    }
    let proceed = match args.get("proceed") {
        None => None,
        Some(p) => Some(
            proceed_target(&app.prefix, &p)
                .ok_or_else(|| AdminError::bad("?proceed: only an admin page of this server"))?,
        ),
    };
    Ok(Target {
        sn,
        file: paths.signed,
        request: paths.der,
        proceed,
    })
}

fn upload_error() -> AdminError {
    AdminError::bad("upload error - use back button to continue")
}

/// Reads the multipart upload: the certificate (field `cert-SN`), checked against the
/// session's CSRF token (header, else field `csrf`).
async fn read_upload(
    s: &Session,
    sn: &str,
    headers: &HeaderMap,
    request: Request,
) -> Result<bytes::Bytes, AdminError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_UPLOAD).await.map_err(|_| {
        AdminError::Plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("upload larger than {MAX_UPLOAD} bytes - nothing stored"),
        )
    })?;
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut multipart = axum::extract::Multipart::from_request(req, &())
        .await
        .map_err(|_| AdminError::bad("No File uploaded - use back button to continue"))?;
    let field_name = format!("cert-{sn}");
    let mut csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut cert: Option<bytes::Bytes> = None;
    while let Some(field) = multipart.next_field().await.map_err(|_| upload_error())? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "csrf" {
            csrf = field.text().await.ok();
        } else if name.eq_ignore_ascii_case(&field_name) {
            cert = Some(field.bytes().await.map_err(|_| upload_error())?);
        }
    }
    if !session::csrf_ok(&s.csrf, csrf.as_deref()) {
        return Err(AdminError::forbidden("bad or missing CSRF token"));
    }
    cert.filter(|c| !c.is_empty())
        .ok_or_else(|| AdminError::bad("No File uploaded (2) - use back button to continue"))
}

/// A certificate, and (when the device's CSR is readable) for the CSR's key: anything else
/// would stop the device's certificate handling for good ("Certificate Errors").
async fn check_cert(app: &SharedApp, target: &Target, cert: &[u8]) -> Result<(), AdminError> {
    let request_path = app.root.join(&target.request);
    let der = crate::certs::cert_from_file(cert);
    let checked = blocking(move || match std::fs::read(&request_path) {
        Ok(request) => crate::certs::check_signed(&der, &request),
        Err(_) => crate::certs::check_certificate(&der),
    })
    .await?;
    match checked {
        Ok(()) => Ok(()),
        Err(e @ crate::certs::CertError::OtherKey) => Err(AdminError::bad(format!(
            "the uploaded certificate does not fit this device: {e} - nothing stored"
        ))),
        Err(e) => Err(AdminError::bad(format!(
            "the uploaded file is no certificate in PEM or DER format: {} - nothing stored",
            crate::answer::comment_safe(&e.to_string())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proceed_stays_on_the_admin_pages() {
        assert_eq!(
            proceed_target("", "admin/admin.php?mode=status").as_deref(),
            Some("/admin/admin.php?mode=status")
        );
        assert_eq!(
            proceed_target(
                "/update",
                "/update/admin/admin.php?mode=status&filter=ip232"
            )
            .as_deref(),
            Some("/update/admin/admin.php?mode=status&filter=ip232")
        );
        assert_eq!(
            proceed_target("/update", "admin/").as_deref(),
            Some("/update/admin/admin.php")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/admin/admin.php",
            "/\\evil.example",
            "admin/admin.php?x=1#frag",
            "admin/admin.php?a=b/c",
            "admin/admin.php?a=%0d%0aSet-Cookie:x",
            "../admin/admin.php",
            "update.php?mode=upload",
            "javascript:alert(1)",
            "admin/admin.php?a=b\r\nX: y",
        ] {
            assert_eq!(proceed_target("/update", bad), None, "{bad}");
        }
    }
}
