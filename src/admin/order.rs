//! The order of the device rows (`sort=` of the status page, its `cmd=rows` requests and the
//! API), pure over [`Fields`]: one key of `sn, type, name, ip, seen, backup, phase, fw, boot,
//! env, cert`, a leading `-` for descending (`sort=-seen`: newest poll first). The sort is
//! stable and ties go by state file name, so paging through a sorted list never repeats or
//! skips a device that did not change.
//!
//! Texts compare case-insensitively, builds and addresses as numbers; empty values (no
//! name, never backed up, …) come last in both directions. `cert` orders by what needs an
//! administrator: certificate errors, then waiting CSRs, then signed certificates waiting for
//! the device, then the rest by the device's certificate status text.

use super::query::{DeviceFields, Fields};
use std::cmp::Ordering;
use std::net::IpAddr;
use thiserror::Error;

/// A sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Sn,
    Type,
    Name,
    Ip,
    Seen,
    Backup,
    Phase,
    Fw,
    Boot,
    Env,
    Cert,
}

/// The keys in the order the documentation lists them.
pub const SORT_KEYS: &str = "sn, type, name, ip, seen, backup, phase, fw, boot, env, cert";

/// A `sort=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("unknown sort key '{0}' (known: {SORT_KEYS}, with a leading - for descending)")]
pub struct SortError(pub String);

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Sn => "sn",
            SortKey::Type => "type",
            SortKey::Name => "name",
            SortKey::Ip => "ip",
            SortKey::Seen => "seen",
            SortKey::Backup => "backup",
            SortKey::Phase => "phase",
            SortKey::Fw => "fw",
            SortKey::Boot => "boot",
            SortKey::Env => "env",
            SortKey::Cert => "cert",
        }
    }

    const ALL: [SortKey; 11] = [
        SortKey::Sn,
        SortKey::Type,
        SortKey::Name,
        SortKey::Ip,
        SortKey::Seen,
        SortKey::Backup,
        SortKey::Phase,
        SortKey::Fw,
        SortKey::Boot,
        SortKey::Env,
        SortKey::Cert,
    ];
}

impl Sort {
    /// Parses `key` or `-key`; empty is the default order (by serial number).
    pub fn parse(s: &str) -> Result<Sort, SortError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Sort::default());
        }
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let key = SortKey::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| SortError(s.chars().take(40).collect()))?;
        Ok(Sort { key, descending })
    }

    /// The `sort=` value (empty for the default).
    pub fn param(self) -> String {
        if self == Sort::default() {
            return String::new();
        }
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.key.name()
        )
    }

    /// Orders two devices.
    pub fn compare(self, a: &Fields<'_>, b: &Fields<'_>) -> Ordering {
        let primary = compare_key(self.key, a, b);
        let primary = match primary {
            Keyed::Value(o) if self.descending => o.reverse(),
            Keyed::Value(o) | Keyed::Empty(o) => o,
        };
        primary.then_with(|| a.key.cmp(b.key))
    }

    /// Sorts `rows` in place. Ties go by file name, so rows of distinct files have one order
    /// only and an unstable sort gives the stable order without the buffer of half the rows
    /// a stable sort allocates.
    pub fn apply<T: DeviceFields>(self, rows: &mut [T]) {
        if self == Sort::default() {
            // the state store lists by file name already; keep that cheap
            rows.sort_unstable_by(|a, b| a.fields().key.cmp(b.fields().key));
            return;
        }
        rows.sort_unstable_by(|a, b| self.compare(&a.fields(), &b.fields()));
    }
}

/// A comparison of values, or of emptiness only (which does not turn with the direction).
enum Keyed {
    Value(Ordering),
    Empty(Ordering),
}

/// Empty values last, else `cmp` of the values.
fn with_empty<T>(a: Option<T>, b: Option<T>, cmp: impl FnOnce(T, T) -> Ordering) -> Keyed {
    match (a, b) {
        (Some(a), Some(b)) => Keyed::Value(cmp(a, b)),
        (Some(_), None) => Keyed::Empty(Ordering::Less),
        (None, Some(_)) => Keyed::Empty(Ordering::Greater),
        (None, None) => Keyed::Empty(Ordering::Equal),
    }
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn text(a: &str, b: &str) -> Keyed {
    with_empty(nonempty(a), nonempty(b), |a, b| {
        a.to_lowercase()
            .cmp(&b.to_lowercase())
            .then_with(|| a.cmp(b))
    })
}

/// Builds as numbers (`130160` after `99999`), other texts after them.
fn build(a: &str, b: &str) -> Keyed {
    with_empty(nonempty(a), nonempty(b), |a, b| {
        match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => a.cmp(b),
        }
    })
}

/// The reported address, else the request's, as an address (texts that are none after them).
fn address<'a>(f: &Fields<'a>) -> Option<&'a str> {
    nonempty(f.realip).or_else(|| nonempty(f.ip))
}

fn ip(a: &Fields<'_>, b: &Fields<'_>) -> Keyed {
    with_empty(address(a), address(b), |a, b| {
        match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => a.cmp(b),
        }
    })
}

/// What needs an administrator first.
fn cert_rank(f: &Fields<'_>) -> u8 {
    if f.cert_error {
        0
    } else if f.csr_waiting {
        1
    } else if f.signed_waiting {
        2
    } else {
        3
    }
}

fn compare_key(key: SortKey, a: &Fields<'_>, b: &Fields<'_>) -> Keyed {
    if a.unreadable || b.unreadable {
        // broken state files last, among themselves by name
        return Keyed::Empty(a.unreadable.cmp(&b.unreadable));
    }
    match key {
        SortKey::Sn => text(a.sn, b.sn),
        SortKey::Type => text(a.device_type, b.device_type),
        SortKey::Name => text(a.name, b.name),
        SortKey::Ip => ip(a, b),
        SortKey::Seen => Keyed::Value(a.seen.cmp(&b.seen)),
        SortKey::Backup => with_empty(a.backup, b.backup, |x, y| x.cmp(&y)),
        SortKey::Phase => text(a.phase, b.phase),
        SortKey::Fw => build(a.firmware, b.firmware),
        SortKey::Boot => build(a.bootcode, b.bootcode),
        SortKey::Env => text(a.environments, b.environments),
        SortKey::Cert => Keyed::Value(cert_rank(a).cmp(&cert_rank(b)).then_with(|| {
            a.certstat
                .unwrap_or_default()
                .cmp(b.certstat.unwrap_or_default())
        })),
    }
}

/// Where the page after the device `after` starts in sorted `rows`: just after it, or (when
/// it is gone) at `offset`, else at the start.
pub fn start_after<T: DeviceFields>(rows: &[T], after: Option<&str>, offset: usize) -> usize {
    match after {
        Some(a) => rows
            .iter()
            .position(|r| r.fields().key == a)
            .map_or(offset.min(rows.len()), |i| i + 1),
        None => offset.min(rows.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct D(Fields<'static>);

    impl DeviceFields for D {
        fn fields(&self) -> Fields<'_> {
            self.0.clone()
        }
    }

    fn d(
        key: &'static str,
        name: &'static str,
        ip: &'static str,
        seen: i64,
        fw: &'static str,
    ) -> D {
        D(Fields {
            key,
            sn: key,
            name,
            realip: ip,
            seen,
            firmware: fw,
            ..Fields::default()
        })
    }

    fn keys(rows: &[D]) -> Vec<&'static str> {
        rows.iter().map(|r| r.0.key).collect()
    }

    fn sorted(s: &str) -> Vec<&'static str> {
        let mut rows = vec![
            d("a", "bravo", "10.0.0.10", 50, "130160"),
            d("b", "", "10.0.0.9", 70, "99999"),
            d("c", "Alpha", "", 70, ""),
            d("d", "charlie", "9.1.1.1", 10, "130160"),
        ];
        Sort::parse(s).expect(s).apply(&mut rows);
        keys(&rows)
    }

    #[test]
    fn sorts_by_every_kind_of_value() {
        assert_eq!(sorted(""), ["a", "b", "c", "d"]);
        assert_eq!(sorted("-sn"), ["d", "c", "b", "a"]);
        assert_eq!(
            sorted("name"),
            ["c", "a", "d", "b"],
            "case-insensitive, empty last"
        );
        assert_eq!(
            sorted("-name"),
            ["d", "a", "c", "b"],
            "empty last descending too"
        );
        assert_eq!(sorted("ip"), ["d", "b", "a", "c"], "as addresses");
        assert_eq!(
            sorted("-seen"),
            ["b", "c", "a", "d"],
            "newest first, ties by key"
        );
        assert_eq!(sorted("seen"), ["d", "a", "b", "c"]);
        assert_eq!(sorted("fw"), ["b", "a", "d", "c"], "builds as numbers");
    }

    #[test]
    fn ties_go_by_key_whatever_order_the_rows_come_in() {
        // many equal values: the order must still be the one of a stable sort by key
        let names: Vec<&'static str> = (0..300)
            .map(|i| &*Box::leak(format!("k{:03}", (i * 7919) % 300).into_boxed_str()))
            .collect();
        for s in ["seen", "-seen", "name", "-fw", "ip", "cert"] {
            let rows: Vec<D> = names
                .iter()
                .enumerate()
                .map(|(i, k)| d(k, ["", "x", "X"][i % 3], "", (i % 4) as i64, ""))
                .collect();
            let sort = Sort::parse(s).expect(s);
            let mut expected = rows.clone();
            expected.sort_by(|a, b| a.0.key.cmp(b.0.key));
            expected.sort_by(|a, b| sort.compare(&a.0, &b.0));
            let mut got = rows;
            sort.apply(&mut got);
            assert_eq!(keys(&got), keys(&expected), "{s}");
        }
    }

    #[test]
    fn cert_order_puts_work_first() {
        let mut rows = vec![
            d("a", "", "", 0, ""),
            d("b", "", "", 0, ""),
            d("c", "", "", 0, ""),
        ];
        rows[1].0.csr_waiting = true;
        rows[2].0.cert_error = true;
        Sort::parse("cert").expect("cert").apply(&mut rows);
        assert_eq!(keys(&rows), ["c", "b", "a"]);
    }

    #[test]
    fn parse_and_param_round_trip() {
        for s in ["-seen", "name", "cert", "-ip"] {
            assert_eq!(Sort::parse(s).expect(s).param(), s);
        }
        assert_eq!(Sort::parse("").expect("default").param(), "");
        assert_eq!(Sort::parse("SEEN").expect("case").key, SortKey::Seen);
        assert!(Sort::parse("colour").is_err());
        assert!(Sort::parse("--seen").is_err());
    }

    #[test]
    fn paging_continues_after_a_key_or_at_an_offset() {
        let rows = vec![
            d("a", "", "", 3, ""),
            d("b", "", "", 1, ""),
            d("c", "", "", 2, ""),
        ];
        assert_eq!(start_after(&rows, Some("b"), 0), 2);
        assert_eq!(start_after(&rows, Some("gone"), 1), 1);
        assert_eq!(start_after(&rows, None, 9), 3);
    }
}
