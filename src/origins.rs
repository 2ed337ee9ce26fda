//! Which device polled from which address: a firmware request carries no serial, so its log
//! line takes the serial of the last poll from the same device address (the address PHP
//! records: the first `X-Forwarded-For` entry, else the peer). A bounded table ([`Origins`]),
//! one per server (kept in [`crate::app::App`]).

use std::collections::HashMap;
use std::sync::Mutex;

/// Device addresses remembered at most (the table starts over when full).
pub const MAX_ORIGINS: usize = 65_536;

/// The serial of the last poll from each device address, bounded by [`MAX_ORIGINS`].
#[derive(Debug, Default)]
pub struct Origins(Mutex<HashMap<String, String>>);

impl Origins {
    /// Remembers that `sn` polled from `ip`.
    pub fn seen(&self, ip: &str, sn: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(ip).is_some_and(|s| s == sn) {
            return;
        }
        if map.len() >= MAX_ORIGINS {
            map.clear();
        }
        map.insert(ip.to_string(), sn.to_string());
    }

    /// The serial that last polled from `ip`.
    pub fn serial(&self, ip: &str) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(ip).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_remember_the_last_serial_of_an_address_and_stay_bounded() {
        let o = Origins::default();
        assert_eq!(o.serial("1.2.3.4"), None);
        o.seen("1.2.3.4", "00-90-33-00-00-01");
        o.seen("1.2.3.4", "00-90-33-00-00-02");
        assert_eq!(o.serial("1.2.3.4").as_deref(), Some("00-90-33-00-00-02"));
        for i in 0..MAX_ORIGINS + 1 {
            o.seen(&format!("ip{i}"), "x");
        }
        let len = o.0.lock().expect("lock").len();
        assert!(len <= MAX_ORIGINS, "{len}");
    }
}
