//! The shell part of `identity`: how each device last proved itself and which identity
//! uploaded its CSR, kept in memory for the admin pages (since the server started; the state
//! files stay as PHP writes them). Bounded: at most [`MAX_ENTRIES`] serials per table, a
//! serial beyond that is not recorded. A text equal to the one recorded last is shared, not
//! copied (most of a fleet proves itself the same way, e.g. `not at all (no client
//! certificate)`): an entry costs its serial and a pointer, about 70 bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most serials recorded per table.
pub const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
struct Table {
    map: HashMap<Box<str>, Arc<str>>,
    /// The text recorded last, shared by the entries with the same text.
    last: Option<Arc<str>>,
}

#[derive(Default)]
struct Tables {
    proved: Table,
    csr_by: Table,
}

/// See the module documentation.
#[derive(Default)]
pub struct Ledger(Mutex<Tables>);

fn put(table: &mut Table, sn: &str, text: String) {
    // a device polls the same way every few minutes: nothing to allocate then
    if table.map.get(sn).is_some_and(|old| **old == *text) {
        return;
    }
    if !table.map.contains_key(sn) && table.map.len() >= MAX_ENTRIES {
        return;
    }
    let shared = match &table.last {
        Some(last) if **last == *text => last.clone(),
        _ => {
            let fresh: Arc<str> = text.into();
            table.last = Some(fresh.clone());
            fresh
        }
    };
    table.map.insert(sn.into(), shared);
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
        self.tables().proved.map.get(sn).map(|t| t.to_string())
    }

    /// Whether `sn`'s last recorded poll proved the serial with a client certificate (see
    /// `identity::proof_text`: an unproved one reads `not …`).
    pub fn proved_by_certificate(&self, sn: &str) -> bool {
        self.tables()
            .proved
            .map
            .get(sn)
            .is_some_and(|t| !t.starts_with("not "))
    }

    /// The identity that uploaded `sn`'s CSR, if one did since the start.
    pub fn csr_by(&self, sn: &str) -> Option<String> {
        self.tables().csr_by.map.get(sn).map(|t| t.to_string())
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
            t.proved.map.insert(i.to_string().into(), "".into());
        }
        drop(t);
        l.record_poll("new", "MTLS".into());
        assert_eq!(l.proved("new"), None);
        l.record_poll("a", "MTLS".into());
        assert_eq!(l.proved("a").as_deref(), Some("MTLS"));
    }

    #[test]
    fn devices_that_prove_themselves_alike_share_one_text() {
        let l = Ledger::default();
        for sn in ["a", "b", "c"] {
            l.record_poll(sn, "not at all (no client certificate)".into());
        }
        l.record_poll("d", "MTLS, CN 'd'".into());
        let t = l.tables();
        let (a, c) = (&t.proved.map["a"], &t.proved.map["c"]);
        assert!(Arc::ptr_eq(a, c));
        assert!(!Arc::ptr_eq(a, &t.proved.map["d"]));
    }
}
