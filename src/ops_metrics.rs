//! The operator's view of the process and the server's engine in `/metrics`: the standard
//! process metrics (`process_resident_memory_bytes`, `process_open_fds`,
//! `process_cpu_seconds_total`, `process_start_time_seconds`, read from `/proc/self` at each
//! scrape on Linux and absent elsewhere), connections open per listener and refused by the
//! limits ([`ConnectionMetrics`]), the state engine's gauges ([`StateGauges`]) and a histogram
//! of the state writer's batch time ([`BatchTimer`]).
//!
//! The handles are atomics shared by clones. Each server makes its own ([`OpsMetrics`],
//! registered into its registry by `metrics::Metrics`) and hands them to the parts that count:
//! the connection limits, the state stores' writers, the `/metrics` endpoint. Two servers in
//! one process count apart. A handle made with `Default` and never registered counts for no
//! one (tests, tools). The process metrics are a collector of their own, outside the server's
//! `update_server_` prefix ([`process_registry`]).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub type Labels = Vec<(&'static str, String)>;

/// One server's engine series (registered by `metrics::Metrics::new`).
#[derive(Debug, Clone, Default)]
pub struct OpsMetrics {
    pub connections: ConnectionMetrics,
    pub state: StateGauges,
    pub batch: BatchTimer,
}

/// Connections open per listener and refused by the limits.
#[derive(Debug, Clone, Default)]
pub struct ConnectionMetrics {
    pub open: Family<Labels, Gauge>,
    pub refused: Family<Labels, Counter>,
}

impl ConnectionMetrics {
    /// A connection closed at once by the limit `reason`.
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// A connection on `listener` opened; closed when the returned guard is dropped.
    pub fn opened(&self, listener: &str) -> OpenConnection {
        let gauge = self
            .open
            .get_or_create(&vec![("listener", listener.to_string())])
            .clone();
        gauge.inc();
        OpenConnection(gauge)
    }
}

/// Counts one open connection until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The state engine's gauges, set at each scrape.
#[derive(Debug, Clone, Default)]
pub struct StateGauges {
    pub devices_indexed: Gauge,
    pub cache_bytes: Gauge,
    pub pending_writes: Gauge,
}

impl StateGauges {
    /// Devices indexed, bytes charged to the state caches, state writes pending.
    pub fn set(&self, indexed: usize, cache_bytes: usize, pending: usize) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.devices_indexed.set(n(indexed));
        self.cache_bytes.set(n(cache_bytes));
        self.pending_writes.set(n(pending));
    }
}

/// The histogram of the state writer's batch time (1 ms .. ~16 s).
#[derive(Debug, Clone)]
pub struct BatchTimer(pub Histogram);

impl Default for BatchTimer {
    fn default() -> Self {
        BatchTimer(Histogram::new(exponential_buckets(0.001, 2.0, 15)))
    }
}

impl BatchTimer {
    /// One batch of the state writer took `secs`.
    pub fn observe(&self, secs: f64) {
        self.0.observe(secs);
    }
}

/// A registry (no prefix) with the standard process metrics.
pub fn process_registry() -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(ProcessCollector));
    r
}

/// Reads `/proc/self` at each scrape.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = process::read() else {
            return Ok(());
        };
        let gauge = |e: &mut DescriptorEncoder, name: &str, help: &str, v: f64| {
            let g = ConstGauge::new(v);
            let m = e.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)
        };
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            p.rss_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors",
            p.open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            p.start_time,
        )?;
        let cpu = ConstCounter::new(p.cpu_seconds);
        let m = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?;
        cpu.encode(m)
    }
}

/// What `/proc/self` tells about the process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub rss_bytes: f64,
    pub open_fds: f64,
    pub cpu_seconds: f64,
    pub start_time: f64,
}

#[cfg(target_os = "linux")]
mod process {
    use super::ProcessStats;

    /// Clock ticks per second of `/proc/self/stat` (`USER_HZ`, 100 on every Linux port).
    const TICKS: f64 = 100.0;

    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // the fields after the command name (which may hold spaces) in parentheses
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        // rest[0] is field 3 (state): utime 14, stime 15, starttime 22
        let num = |field: usize| f.get(field - 3)?.parse::<f64>().ok();
        let cpu_seconds = (num(14)? + num(15)?) / TICKS;
        let rss_bytes = rss()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        let start_time = boot_time()? + num(22)? / TICKS;
        Some(ProcessStats {
            rss_bytes,
            open_fds,
            cpu_seconds,
            start_time,
        })
    }

    /// `VmRSS` of `/proc/self/status`, in bytes.
    fn rss() -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
        let kb = kb
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<f64>()
            .ok()?;
        Some(kb * 1024.0)
    }

    fn boot_time() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    }
}

#[cfg(not(target_os = "linux"))]
mod process {
    pub fn read() -> Option<super::ProcessStats> {
        None
    }
}

/// The process's figures now (`None` where `/proc/self` is not there).
pub fn process_stats() -> Option<ProcessStats> {
    process::read()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_metrics_have_the_standard_names() {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &process_registry()).expect("encode");
        if cfg!(target_os = "linux") {
            for name in [
                "process_resident_memory_bytes ",
                "process_open_fds ",
                "process_cpu_seconds_total ",
                "process_start_time_seconds ",
            ] {
                assert!(out.contains(name), "{name} missing:\n{out}");
            }
            let p = process_stats().expect("stats");
            assert!(p.rss_bytes > 1e6 && p.open_fds >= 3.0, "{p:?}");
            assert!(p.start_time > 1.6e9, "{p:?}");
        } else {
            assert!(!out.contains("process_"));
        }
    }

    #[test]
    fn open_connections_are_counted_until_dropped() {
        let m = ConnectionMetrics::default();
        let a = m.opened("test:1");
        let b = m.opened("test:1");
        let open = || {
            m.open
                .get_or_create(&vec![("listener", "test:1".to_string())])
                .get()
        };
        assert_eq!(open(), 2);
        drop(a);
        assert_eq!(open(), 1);
        drop(b);
        assert_eq!(open(), 0);
    }

    #[test]
    fn two_handles_count_apart_and_clones_count_together() {
        let (a, b) = (ConnectionMetrics::default(), ConnectionMetrics::default());
        let refused = |m: &ConnectionMetrics| {
            m.refused
                .get_or_create(&vec![("reason", "per_address".to_string())])
                .get()
        };
        a.refused("per_address");
        a.clone().refused("per_address");
        assert_eq!((refused(&a), refused(&b)), (2, 0));
    }
}
