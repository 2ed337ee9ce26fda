//! The router called in-process with `oneshot` (no sockets): [`Admin`] seeds the fleet of
//! [`super::seed_fleet`] under [`super::ADMIN_CONFIG`], logs in and sends requests with the
//! connection facts a listener would attach.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use update_server::admin::{AdminApp, SharedAdmin};
use update_server::app::App;
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
    pub app: SharedAdmin,
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
    pub fn new() -> Admin {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tmp");
        let root = super::make_root(
            dir.path(),
            super::ADMIN_CONFIG,
            &[("update-all-default.txt", "# x\n")],
        );
        super::seed_fleet(&root, super::unix_now());
        let app = AdminApp::shared(Arc::new(App::new(root.clone(), "")));
        Admin {
            app,
            root,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let meta = ConnMeta {
            peer: SocketAddr::from(([192, 0, 2, 10], 50000)),
            local: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: false,
            client_cert: None,
        };
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "admin.test:8080")
            .extension(meta);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Body::from(body)).expect("request");
        let resp = update_server::server::router_with(self.app.clone())
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

    /// A GET in a session.
    pub async fn get(&self, uri: &str, s: &Session) -> Answer {
        self.call("GET", uri, &[("cookie", &s.cookie)], Vec::new())
            .await
    }

    pub async fn login(&self) -> Session {
        let r = self
            .call(
                "POST",
                "/admin/admin.php",
                &[("content-type", "application/x-www-form-urlencoded")],
                b"action=login&user=admin&password=secret".to_vec(),
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
        Session { cookie, csrf }
    }

    pub fn state_path(&self, sn: &str) -> PathBuf {
        self.root.join("status").join(format!("{sn}.xml"))
    }
}
