//! The router called in-process with `oneshot` (no sockets): [`Admin`] seeds the fleet of
//! [`super::seed_fleet`] under [`super::ADMIN_CONFIG`] (or another configuration and
//! prefix), logs in and sends requests with the connection facts a listener would attach
//! (plain or TLS).

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use update_server::app::{App, SharedApp};
use update_server::conn::ConnMeta;

/// An answer of the router.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// An installation with the admin test fleet, called through the router.
pub struct Admin {
    pub app: SharedApp,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

/// A logged-in browser: its cookie pair and the session's CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub const TOKEN: &str = "Bearer api-token-0123456789";

impl Admin {
    /// The test fleet under [`super::ADMIN_CONFIG`].
    pub fn new() -> Admin {
        Admin::with_config(super::ADMIN_CONFIG, "")
    }

    /// The test fleet under `user_config`, the server below `prefix`.
    pub fn with_config(user_config: &str, prefix: &str) -> Admin {
        // App::new builds the master device's HTTP client, which needs a TLS provider
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tmp");
        let root = super::make_root(
            dir.path(),
            user_config,
            &[("update-all-default.txt", "# x\n")],
        );
        super::seed_fleet(&root, super::unix_now());
        let app = Arc::new(App::new(root.clone(), prefix));
        Admin {
            app,
            root,
            _dir: dir,
        }
    }

    /// A request over plain HTTP.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        self.call_on(method, uri, headers, body, false).await
    }

    /// A request over plain HTTP (port 8080) or, with `tls`, HTTPS (port 8443).
    pub async fn call_on(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        tls: bool,
    ) -> Answer {
        let port = if tls { 8443 } else { 8080 };
        let meta = ConnMeta {
            peer: SocketAddr::from(([192, 0, 2, 10], 50000)),
            local: SocketAddr::from(([127, 0, 0, 1], port)),
            tls,
            client_cert: None,
        };
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", format!("admin.test:{port}"))
            .extension(meta);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Body::from(body)).expect("request");
        let resp = update_server::server::router(self.app.clone())
            .oneshot(req)
            .await
            .expect("router answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A GET with the API token.
    pub async fn api(&self, uri: &str) -> Answer {
        self.call("GET", uri, &[("authorization", TOKEN)], Vec::new())
            .await
    }

    /// A GET in a session (`&s`, `Some(&s)`) or without one (`None`).
    pub async fn get<'s>(&self, uri: &str, s: impl Into<Option<&'s Session>>) -> Answer {
        match s.into() {
            Some(s) => {
                self.call("GET", uri, &[("cookie", &s.cookie)], Vec::new())
                    .await
            }
            None => self.call("GET", uri, &[], Vec::new()).await,
        }
    }

    /// A form POST in a session or without one.
    pub async fn post_form(&self, uri: &str, s: Option<&Session>, form: &str) -> Answer {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(s) = s {
            h.push(("cookie", s.cookie.as_str()));
        }
        self.call("POST", uri, &h, form.as_bytes().to_vec()).await
    }

    /// Logs in as `admin` and reads the session's CSRF token from the status page.
    pub async fn login(&self) -> Session {
        let r = self
            .post_form(
                "/admin/admin.php",
                None,
                "action=login&user=admin&password=secret",
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let cookie = r
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("session cookie")
            .to_string();
        let page = self
            .call(
                "GET",
                "/admin/admin.php?mode=status",
                &[("cookie", &cookie)],
                Vec::new(),
            )
            .await
            .text();
        let csrf = page
            .split("data-csrf=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("CSRF token on the page")
            .to_string();
        assert_eq!(csrf.len(), 64, "{csrf}");
        Session { cookie, csrf }
    }

    pub fn state_path(&self, sn: &str) -> PathBuf {
        self.root.join("status").join(format!("{sn}.xml"))
    }
}
