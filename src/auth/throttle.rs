//! The slow-down of failed logins and failed API tokens, built so that it cannot lock the
//! administrator out.
//!
//! - **Answered at once.** A refused attempt is not held: it gets HTTP 429 with
//!   `Retry-After` and is not checked (nor counted) at all.
//! - **Per address.** The first [`Rules::free`] failures from an address cost nothing; then
//!   each failure blocks the address for a delay that doubles (1 s, 2 s, 4 s …) up to
//!   [`Rules::max_wait`] (15 s). So the right password works again at most 15 s after any
//!   burst from the same address; a success forgets the address's failures.
//! - **Per account.** More than [`Rules::account_limit`] failures within [`Rules::window`]
//!   (all addresses together) block logins for the rest of that window — except from
//!   addresses that logged in successfully before ([`Rules::known_for`]), which are never
//!   blocked by the failures of others.
//! - Login failures and API-token failures are kept in two separate throttles (see
//!   `AdminState`), so bad bearer tokens do not block the login page.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The numbers of a [`Throttle`].
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub free: u32,
    pub max_wait: Duration,
    pub account_limit: u32,
    pub window: Duration,
    pub known_for: Duration,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            free: 3,
            max_wait: Duration::from_secs(15),
            account_limit: 30,
            window: Duration::from_secs(60),
            known_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Most addresses remembered (failures or known good); the oldest are dropped beyond.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Address {
    failures: u32,
    blocked_until: Instant,
    last: Instant,
}

#[derive(Default)]
struct Inner {
    addresses: HashMap<IpAddr, Address>,
    known: HashMap<IpAddr, Instant>,
    window_start: Option<Instant>,
    window_failures: u32,
}

/// Failed-attempt bookkeeping per address and for the account.
#[derive(Default)]
pub struct Throttle {
    rules: Rules,
    inner: Mutex<Inner>,
}

impl Throttle {
    pub fn new(rules: Rules) -> Throttle {
        Throttle {
            rules,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(wait)` when an attempt from `ip` must be refused now (answer 429, retry after
    /// `wait`); `Ok` when it may be checked.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    pub fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let inner = self.lock();
        if let Some(a) = inner.addresses.get(&ip)
            && a.blocked_until > now
        {
            return Err(a.blocked_until - now);
        }
        let known = inner
            .known
            .get(&ip)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.rules.known_for);
        if let Some(start) = inner.window_start
            && !known
            && inner.window_failures >= self.rules.account_limit
        {
            let end = start + self.rules.window;
            if end > now {
                return Err(end - now);
            }
        }
        Ok(())
    }

    /// Records a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        self.failed_at(ip, Instant::now());
    }

    pub fn failed_at(&self, ip: IpAddr, now: Instant) {
        let rules = self.rules;
        let mut inner = self.lock();
        if inner.addresses.len() >= MAX_ENTRIES {
            inner
                .addresses
                .retain(|_, a| now.saturating_duration_since(a.last) < rules.window);
        }
        let a = inner.addresses.entry(ip).or_insert(Address {
            failures: 0,
            blocked_until: now,
            last: now,
        });
        if now.saturating_duration_since(a.last) > Duration::from_secs(3600) {
            a.failures = 0;
        }
        a.failures = a.failures.saturating_add(1);
        a.last = now;
        if a.failures > rules.free {
            let doublings = (a.failures - rules.free - 1).min(20);
            let wait = Duration::from_secs(1u64 << doublings).min(rules.max_wait);
            a.blocked_until = now + wait;
        }
        match inner.window_start {
            Some(s) if now.saturating_duration_since(s) < rules.window => {
                inner.window_failures = inner.window_failures.saturating_add(1);
            }
            _ => {
                inner.window_start = Some(now);
                inner.window_failures = 1;
            }
        }
    }

    /// Records a success from `ip`: its failures are forgotten and it becomes a known address.
    pub fn succeeded(&self, ip: IpAddr) {
        self.succeeded_at(ip, Instant::now());
    }

    pub fn succeeded_at(&self, ip: IpAddr, now: Instant) {
        let mut inner = self.lock();
        inner.addresses.remove(&ip);
        if inner.known.len() >= MAX_ENTRIES {
            let known_for = self.rules.known_for;
            inner
                .known
                .retain(|_, t| now.saturating_duration_since(*t) < known_for);
        }
        if inner.known.len() < MAX_ENTRIES {
            inner.known.insert(ip, now);
        }
    }

    /// Failed attempts recorded for `ip`.
    pub fn failures(&self, ip: IpAddr) -> u32 {
        self.lock().addresses.get(&ip).map_or(0, |a| a.failures)
    }
}

/// Seconds for `Retry-After` (rounded up, at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_millis().div_ceil(1000) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn a_burst_blocks_the_address_for_at_most_max_wait() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.check_at(ip(1), t0), Ok(()));
            t.failed_at(ip(1), t0);
        }
        assert_eq!(t.check_at(ip(1), t0), Ok(()));
        t.failed_at(ip(1), t0);
        assert_eq!(t.check_at(ip(1), t0), Err(Duration::from_secs(1)));
        // keep failing whenever allowed: the block never exceeds 15 s
        let mut now = t0;
        for _ in 0..30 {
            match t.check_at(ip(1), now) {
                Ok(()) => t.failed_at(ip(1), now),
                Err(w) => {
                    assert!(w <= Duration::from_secs(15), "{w:?}");
                    now += w;
                }
            }
        }
        let Err(w) = t.check_at(ip(1), now) else {
            panic!("still blocked after a burst")
        };
        assert_eq!(w, Duration::from_secs(15));
        // the right password is checked again after the wait, and forgets the failures
        assert_eq!(t.check_at(ip(1), now + w), Ok(()));
        t.succeeded_at(ip(1), now + w);
        assert_eq!(t.failures(ip(1)), 0);
        // other addresses are not affected by one address's burst
        assert_eq!(t.check_at(ip(2), t0), Ok(()));
    }

    #[test]
    fn many_addresses_hit_the_account_limit_but_known_addresses_do_not() {
        let t = Throttle::default();
        let t0 = Instant::now();
        t.succeeded_at(ip(200), t0);
        for n in 0..30 {
            assert_eq!(t.check_at(ip(n), t0), Ok(()), "address {n}");
            t.failed_at(ip(n), t0);
        }
        let Err(w) = t.check_at(ip(100), t0 + Duration::from_secs(10)) else {
            panic!("account limit not reached")
        };
        assert_eq!(w, Duration::from_secs(50));
        assert_eq!(t.check_at(ip(200), t0), Ok(()), "known address blocked");
        assert_eq!(t.check_at(ip(100), t0 + Duration::from_secs(60)), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
