//! One `admin/admin.php` request as the page handlers see it ([`AdminRequest`]): the server,
//! the configuration, the connection facts, the arguments and headers, and what is derived
//! from them (the session, the CSRF token given, the page frame).

use super::html::{Frame, Nav};
use super::session::{self, Session};
use crate::app::SharedApp;
use crate::config::Config;
use crate::php::Args;
use axum::http::{HeaderMap, Method};
use std::net::IpAddr;
use std::sync::Arc;

/// One admin request, parsed.
pub struct AdminRequest {
    pub app: SharedApp,
    pub cfg: Arc<Config>,
    pub https: bool,
    pub host: String,
    pub peer: IpAddr,
    pub args: Args,
    pub headers: HeaderMap,
    pub method: Method,
    pub query: String,
}

impl AdminRequest {
    pub fn arg(&self, k: &str) -> Option<String> {
        self.args.get(k).map(|v| v.into_owned())
    }

    pub fn prefix(&self) -> &str {
        &self.app.prefix
    }

    pub(super) fn session(&self) -> Option<Session> {
        let token = session::cookie(&self.headers, session::COOKIE)?;
        self.app.admin.sessions.get(token)
    }

    /// The CSRF token the request carries (header, else `csrf` argument).
    pub fn csrf_given(&self) -> Option<String> {
        self.headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| self.arg("csrf"))
    }

    pub fn frame<'a>(&'a self, s: Option<&'a Session>, title: &'a str, nav: Nav) -> Frame<'a> {
        Frame {
            prefix: self.prefix(),
            title,
            nav,
            csrf: s.map(|s| s.csrf.as_str()),
            user: s.map(|s| s.user.as_str()),
            refresh: self.cfg.status.refresh,
            notice: None,
            // for administrators only: a visitor must not learn that the password is the default
            banner: s.and_then(|_| super::html::admin_notice(&self.app, &self.cfg)),
        }
    }
}
