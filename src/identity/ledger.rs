//! The shell part of `identity`: how each device last proved itself and which identity
//! uploaded its CSR, kept in memory for the admin pages (since the server started; the state
//! files stay as PHP writes them). Bounded: at most [`MAX_ENTRIES`] serials per table, a
//! serial beyond that is not recorded.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most serials recorded per table.
pub const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
struct Tables {
    proved: HashMap<String, String>,
    csr_by: HashMap<String, String>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Ledger(Mutex<Tables>);

fn put(map: &mut HashMap<String, String>, sn: &str, text: String) {
    if let Some(old) = map.get_mut(sn) {
        // a device polls the same way every few minutes: nothing to allocate then
        if *old != text {
            *old = text;
        }
    } else if map.len() < MAX_ENTRIES {
        map.insert(sn.to_string(), text);
    }
}

impl Ledger {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records how a poll for `sn` that was not refused identified itself.
    pub fn record_poll(&self, sn: &str, text: String) {
        put(&mut self.tables().proved, sn, text);
    }

    /// Records the identity that uploaded `sn`'s CSR.
    pub fn record_csr(&self, sn: &str, text: String) {
        put(&mut self.tables().csr_by, sn, text);
    }

    /// How `sn` last proved itself, if it polled since the start.
    pub fn proved(&self, sn: &str) -> Option<String> {
        self.tables().proved.get(sn).cloned()
    }

    /// Whether `sn`'s last recorded poll proved the serial with a client certificate (see
    /// `identity::proof_text`: an unproved one reads `not …`).
    pub fn proved_by_certificate(&self, sn: &str) -> bool {
        self.tables()
            .proved
            .get(sn)
            .is_some_and(|t| !t.starts_with("not "))
    }

    /// The identity that uploaded `sn`'s CSR, if one did since the start.
    pub fn csr_by(&self, sn: &str) -> Option<String> {
        self.tables().csr_by.get(sn).cloned()
    }
}

/// After a poll: a refused one is logged as a warning with the identity it presented; one
/// that was not refused records how it identified itself. Returns the answer's HTTP status.
pub fn poll_outcome(
    ledger: &Ledger,
    cfg: &crate::config::Config,
    conn: &crate::request::ConnInfo,
    sn: &str,
    refused: Option<&super::Refusal>,
) -> axum::http::StatusCode {
    match refused {
        Some(r) => {
            tracing::warn!(
                "refused poll for sn '{sn}' from {} under forcetrust: {}; identity presented: {}",
                conn.device_ip().ip,
                r.reason,
                super::presented(conn)
            );
            if r.forbidden {
                axum::http::StatusCode::FORBIDDEN
            } else {
                axum::http::StatusCode::OK
            }
        }
        None => {
            if !sn.is_empty() {
                ledger.record_poll(sn, super::proof_text(cfg, conn, sn));
            }
            axum::http::StatusCode::OK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_the_latest_and_is_bounded() {
        let l = Ledger::default();
        l.record_poll("a", "MTLS".into());
        l.record_poll("a", "none".into());
        assert_eq!(l.proved("a").as_deref(), Some("none"));
        assert_eq!(l.csr_by("a"), None);
        assert!(l.proved_by_certificate("a") && !l.proved_by_certificate("b"));
        l.record_poll("b", "not proved: CN='x'".into());
        assert!(!l.proved_by_certificate("b"));
        l.record_csr("a", "CN='x'".into());
        assert_eq!(l.csr_by("a").as_deref(), Some("CN='x'"));
        let mut t = l.tables();
        for i in 0..MAX_ENTRIES {
            t.proved.insert(i.to_string(), String::new());
        }
        drop(t);
        l.record_poll("new", "MTLS".into());
        assert_eq!(l.proved("new"), None);
        l.record_poll("a", "MTLS".into());
        assert_eq!(l.proved("a").as_deref(), Some("MTLS"));
    }
}
