//! Administrator sessions: the login check, session cookies, CSRF tokens and the slow-down of
//! failed logins.
//!
//! - **Credentials** are `master/@user` and `master/@password` (PHP's defaults: admin/password),
//!   or instead of the password a hash in `master/@passwordhash`: an Argon2 PHC string
//!   (`$argon2id$v=19$…`, made by `update-server hash-password`), or `sha256:HEX` /
//!   `sha256:SALT:HEX` (hex SHA-256 of SALT followed by the password). User name and password
//!   are always both compared, in constant time. As in PHP, an installation that sets neither
//!   user nor password lets anyone log in (the page says so).
//! - **Sessions** live in memory (a restart logs everybody out): a random 256-bit token in the
//!   cookie `update_server_session` (`HttpOnly`, `SameSite=Strict`, `Secure` over TLS, path
//!   = the prefix), ended by logout, after 8 hours without use or 24 hours after login.
//! - **CSRF**: every session has its own random token; the pages carry it and every
//!   state-changing request must send it back (`X-CSRF-Token` header or `csrf` field).
//! - **Failed logins** are throttled by [`super::throttle`] (HTTP 429 with `Retry-After`,
//!   at most 15 s per address; a limit per account).

use crate::config::Master;
use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Name of the session cookie.
pub const COOKIE: &str = "update_server_session";
/// Name of the cookie that remembers PHP's `?nohttps` escape.
pub const NOHTTPS_COOKIE: &str = "update_server_nohttps";

/// A session ends after this long without a request …
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// … and this long after the login at the latest.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// At most this many sessions are kept (the oldest is dropped).
const MAX_SESSIONS: usize = 1000;

/// Why a configured password hash cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashError {
    #[error(
        "master/@passwordhash has an unknown format (expected $argon2id$…, sha256:HEX or sha256:SALT:HEX)"
    )]
    Format,
    #[error("master/@passwordhash is not a valid Argon2 hash: {0}")]
    Argon2(String),
}

/// Whether the configuration asks for a login at all (PHP: user or password non-empty).
pub fn login_configured(m: &Master) -> bool {
    !m.user.as_deref().unwrap_or("").is_empty()
        || !m.password.as_deref().unwrap_or("").is_empty()
        || m.password_hash.is_some()
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

/// Checks a login against the configuration, in constant time for user and password.
/// `Ok(true)` for a good login; an unusable hash is an error (and no login).
pub fn check_login(m: &Master, user: &str, password: &str) -> Result<bool, HashError> {
    if !login_configured(m) {
        return Ok(true);
    }
    let good_user = m.user.as_deref().unwrap_or("");
    let user_ok = digest(user.as_bytes()).ct_eq(&digest(good_user.as_bytes()));
    let pw_ok = match &m.password_hash {
        Some(h) => verify_hash(h, password)?,
        None => {
            let good = m.password.as_deref().unwrap_or("");
            bool::from(digest(password.as_bytes()).ct_eq(&digest(good.as_bytes())))
        }
    };
    Ok(bool::from(user_ok & subtle::Choice::from(u8::from(pw_ok))))
}

/// Checks `password` against a hash in one of the accepted formats.
pub fn verify_hash(hash: &str, password: &str) -> Result<bool, HashError> {
    let hash = hash.trim();
    if hash.starts_with("$argon2") {
        let parsed = PasswordHash::new(hash).map_err(|e| HashError::Argon2(e.to_string()))?;
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(HashError::Argon2("salt or hash missing".to_string()));
        }
        return Ok(argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok());
    }
    let Some(rest) = hash.strip_prefix("sha256:") else {
        return Err(HashError::Format);
    };
    let (salt, hex) = match rest.rsplit_once(':') {
        Some((salt, hex)) => (salt, hex),
        None => ("", rest),
    };
    let want = decode_hex(hex).ok_or(HashError::Format)?;
    if want.len() != 32 {
        return Err(HashError::Format);
    }
    let mut input = salt.as_bytes().to_vec();
    input.extend_from_slice(password.as_bytes());
    Ok(bool::from(digest(&input).ct_eq(&want[..])))
}

/// An Argon2id hash of `password` with a fresh random salt, for `master/@passwordhash`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::password_hash::PasswordHasher;
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| HashError::Argon2(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A new random token (256 bits, hex).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` is the session's CSRF token (constant time).
pub fn csrf_ok(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(g) => bool::from(digest(g.as_bytes()).ct_eq(&digest(expected.as_bytes()))),
        None => false,
    }
}

/// A logged-in administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub user: String,
}

struct Entry {
    session: Session,
    created: Instant,
    last: Instant,
}

/// The sessions of one server.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// Starts a session for `user`.
    pub fn create(&self, user: &str) -> Session {
        self.create_at(user, Instant::now())
    }

    fn create_at(&self, user: &str, now: Instant) -> Session {
        let session = Session {
            token: random_token(),
            csrf: random_token(),
            user: user.to_string(),
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, e| alive(e, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            session.token.clone(),
            Entry {
                session: session.clone(),
                created: now,
                last: now,
            },
        );
        session
    }

    /// The live session of `token` (its idle time starts again).
    pub fn get(&self, token: &str) -> Option<Session> {
        self.get_at(token, Instant::now())
    }

    fn get_at(&self, token: &str, now: Instant) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get_mut(token)?;
        if !alive(entry, now) {
            map.remove(token);
            return None;
        }
        entry.last = now;
        Some(entry.session.clone())
    }

    /// Ends the session of `token`.
    pub fn remove(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

fn alive(e: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(e.last) < IDLE
        && now.saturating_duration_since(e.created) < MAX_AGE
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value for a session cookie (`None`: delete it).
pub fn set_cookie(name: &str, value: Option<&str>, path: &str, secure: bool) -> String {
    let mut c = match value {
        Some(v) => format!("{name}={v}; Path={path}; HttpOnly; SameSite=Strict"),
        None => format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(user: Option<&str>, pw: Option<&str>, hash: Option<&str>) -> Master {
        Master {
            info: String::new(),
            expire: 3600,
            cache: "cache/master-info.xml".into(),
            user: user.map(str::to_string),
            password: pw.map(str::to_string),
            password_hash: hash.map(str::to_string),
            firmware: String::new(),
            bootcode: String::new(),
            applies: Vec::new(),
        }
    }

    #[test]
    fn plain_credentials_need_both_parts() {
        let m = master(Some("admin"), Some("password"), None);
        assert_eq!(check_login(&m, "admin", "password"), Ok(true));
        assert_eq!(check_login(&m, "admin", "passwor"), Ok(false));
        assert_eq!(check_login(&m, "Admin", "password"), Ok(false));
        assert_eq!(check_login(&m, "", ""), Ok(false));
    }

    #[test]
    fn no_credentials_configured_lets_anyone_in_like_php() {
        let m = master(Some(""), Some(""), None);
        assert!(!login_configured(&m));
        assert_eq!(check_login(&m, "x", "y"), Ok(true));
        let m = master(None, Some("secret"), None);
        assert!(login_configured(&m));
        assert_eq!(check_login(&m, "", "secret"), Ok(true));
        assert_eq!(check_login(&m, "", "other"), Ok(false));
    }

    #[test]
    fn sha256_hashes_with_and_without_salt() {
        // sha256("password")
        let plain = "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
        let m = master(Some("admin"), Some("ignored"), Some(plain));
        assert_eq!(check_login(&m, "admin", "password"), Ok(true));
        assert_eq!(check_login(&m, "admin", "ignored"), Ok(false));
        // sha256("saltpassword")
        let salted = "sha256:salt:13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322";
        assert_eq!(verify_hash(salted, "password"), Ok(true));
        assert_eq!(verify_hash(salted, "passwort"), Ok(false));
        assert_eq!(verify_hash("md5:abc", "x"), Err(HashError::Format));
        assert_eq!(verify_hash("sha256:zz", "x"), Err(HashError::Format));
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert_eq!(verify_hash(&h, "s3cret"), Ok(true));
        assert_eq!(verify_hash(&h, "s3cret "), Ok(false));
        assert!(matches!(
            verify_hash("$argon2id$garbage", "x"),
            Err(HashError::Argon2(_))
        ));
    }

    #[test]
    fn sessions_expire_when_idle_or_old() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let a = s.create_at("admin", t0);
        assert_ne!(a.token, a.csrf);
        assert_eq!(
            s.get_at(&a.token, t0 + Duration::from_secs(60)),
            Some(a.clone())
        );
        assert_eq!(
            s.get_at(&a.token, t0 + IDLE + Duration::from_secs(61)),
            None
        );
        let b = s.create_at("admin", t0);
        let mut t = t0;
        while t < t0 + MAX_AGE - IDLE {
            t += IDLE / 2;
            assert!(s.get_at(&b.token, t).is_some());
        }
        assert_eq!(s.get_at(&b.token, t0 + MAX_AGE), None);
        assert_eq!(s.get_at("nope", t0), None);
        let c = s.create_at("admin", t0);
        s.remove(&c.token);
        assert_eq!(s.get_at(&c.token, t0), None);
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(csrf_ok("abc", Some("abc")));
        assert!(!csrf_ok("abc", Some("abd")));
        assert!(!csrf_ok("abc", Some("")));
        assert!(!csrf_ok("abc", None));
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut h = axum::http::HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            "a=1; update_server_session=tok; b=2".parse().expect("hv"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(
            set_cookie(COOKIE, Some("t"), "/update", true),
            "update_server_session=t; Path=/update; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(set_cookie(COOKIE, None, "/", false).contains("Max-Age=0"));
    }
}
