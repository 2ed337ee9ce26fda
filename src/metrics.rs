//! `/metrics` in the Prometheus text format (the `prometheus-client` crate: the official
//! Rust client of the Prometheus project, no global recorder or exporter thread, counters
//! are plain atomics): polls by result, uploads by kind and result, HTTP requests by route
//! and status with a duration histogram (counted by `request_log::track`), devices present
//! and missing and CSRs waiting (the status page's summary, computed at each scrape), whether
//! the configuration is good and the master reachable, and the build.
//!
//! Each server has its own registry ([`Metrics`], kept in [`crate::app::App`]), with the
//! engine's series of `ops_metrics` (connections, state engine, writer batches): two servers in
//! one process count apart. The `/metrics` endpoint (who may scrape, the gauges read at each
//! scrape) is `admin::metrics_http::endpoint`.
//!
//! The counters of polls and uploads are made once and kept in fields: counting a poll is an
//! atomic increment. Requests by route and status go through a label family (a read lock on
//! its map, no write after the first request of a route and status).

use crate::ops_metrics::{BatchTimer, ConnectionMetrics, Labels, OpsMetrics, StateGauges};
use axum::http::StatusCode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use std::time::Duration;

/// Poll results, in the order of [`Metrics::polls`].
const POLL_RESULTS: [&str; 4] = ["answered", "redirected", "refused", "error"];
/// Upload kinds (`mode=` of update.php), in the order of [`Metrics::uploads`].
const UPLOAD_KINDS: [&str; 4] = ["backup", "query", "vardump", "certificate"];
/// Upload results.
const UPLOAD_RESULTS: [&str; 3] = ["ok", "refused", "error"];

/// The registry of one server and its counters and gauges.
pub struct Metrics {
    registry: Registry,
    polls: [Counter; 4],
    uploads: [[Counter; 3]; 4],
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    config_good: Gauge,
    master_reachable: Gauge,
    devices: Family<Labels, Gauge>,
    rollout: RolloutGauges,
    csrs_waiting: Gauge,
    /// Connections, the state engine and its writer (handed to those that count).
    pub ops: OpsMetrics,
}

/// The gauges of the staged rollouts.
struct RolloutGauges {
    devices: Family<Labels, Gauge>,
    halted: Family<Labels, Gauge>,
    phase: Family<Labels, Gauge>,
    open_waves: Family<Labels, Gauge>,
    snippet_version: Family<Labels, Gauge>,
}

impl RolloutGauges {
    fn register(r: &mut Registry) -> RolloutGauges {
        RolloutGauges {
            devices: registered(
                r,
                "rollout_devices",
                "Devices of a staged rollout's wave by outcome (population, told, pending, succeeded, failed)",
                Family::default(),
            ),
            halted: registered(
                r,
                "rollout_halted",
                "1 while a staged rollout is halted by its failures",
                Family::default(),
            ),
            phase: registered(
                r,
                "rollout_phase",
                "1 for a staged rollout's current phase (idle, ready, running, waiting-for-soak, paused, halted, aborted, done, ended-with-failures), else 0",
                Family::default(),
            ),
            open_waves: registered(
                r,
                "rollout_open_waves",
                "Waves of a staged rollout that are open",
                Family::default(),
            ),
            snippet_version: registered(
                r,
                "rollout_snippet_version",
                "A snippet rollout's file versions (PHP's: modification time, unix seconds): the one its round stages (which=\"staged\", absent while idle) and the previous one held devices get (which=\"previous\")",
                Family::default(),
            ),
        }
    }
}

/// The engine's series of [`OpsMetrics`] in `r`.
fn register_ops(r: &mut Registry) -> OpsMetrics {
    let OpsMetrics {
        connections,
        state,
        batch,
    } = OpsMetrics::default();
    OpsMetrics {
        connections: ConnectionMetrics {
            open: registered(
                r,
                "connections_open",
                "Connections open, by listener (local address)",
                connections.open,
            ),
            refused: registered(
                r,
                "connections_refused",
                "Connections closed at once by a limit (per_address)",
                connections.refused,
            ),
        },
        state: StateGauges {
            devices_indexed: registered(
                r,
                "devices_indexed",
                "Devices in the state index (all status directories)",
                state.devices_indexed,
            ),
            cache_bytes: registered(
                r,
                "state_cache_bytes",
                "Bytes charged to the cache of parsed device states (its estimate)",
                state.cache_bytes,
            ),
            pending_writes: registered(
                r,
                "state_writes_pending",
                "Device states handed to the writer and not yet on disk",
                state.pending_writes,
            ),
        },
        batch: BatchTimer(registered(
            r,
            "state_batch_seconds",
            "Time the state writer takes for one batch (write, sync, rename)",
            batch.0,
        )),
    }
}

fn histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers `metric` under `name` and hands it back for the server to update.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// A registry with every series of the server, counting from zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("update_server");
        let polls = Family::<Labels, Counter>::default();
        let uploads = Family::<Labels, Counter>::default();
        let lbl = |pairs: &[(&'static str, &str)]| -> Labels {
            pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
        };
        let poll_counters =
            POLL_RESULTS.map(|r| polls.get_or_create(&lbl(&[("result", r)])).clone());
        let upload_counters = UPLOAD_KINDS.map(|k| {
            UPLOAD_RESULTS.map(|r| {
                uploads
                    .get_or_create(&lbl(&[("kind", k), ("result", r)]))
                    .clone()
            })
        });
        registry.register("polls", "Device polls of update.php by result", polls);
        registry.register(
            "uploads",
            "Device uploads (backup, query, vardump = CSR, certificate) by result",
            uploads,
        );
        let r = &mut registry;
        let requests = registered(
            r,
            "http_requests",
            "HTTP requests by route and status",
            Family::default(),
        );
        let duration = registered(
            r,
            "http_request_duration_seconds",
            "Time to the response headers, by route",
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(histogram),
        );
        let config_good = registered(
            r,
            "config_good",
            "1 when the configuration files on disk are good",
            Gauge::default(),
        );
        let master_reachable = registered(
            r,
            "master_reachable",
            "1 when the master device answered the last time it was asked, 0 when not, -1 not asked yet",
            Gauge::default(),
        );
        let devices = registered(
            r,
            "devices",
            "Devices with a state file: present, or missing (not seen within <status missing>)",
            Family::default(),
        );
        let csrs_waiting = registered(
            r,
            "csrs_waiting",
            "Devices whose certificate request waits for an administrator",
            Gauge::default(),
        );
        let rollout = RolloutGauges::register(r);
        let build = Family::<Labels, Gauge>::default();
        build
            .get_or_create(&lbl(&[("version", env!("CARGO_PKG_VERSION"))]))
            .set(1);
        registry.register("build_info", "The running version", build);
        Metrics {
            ops: register_ops(&mut registry),
            registry,
            polls: poll_counters,
            uploads: upload_counters,
            requests,
            duration,
            config_good,
            master_reachable,
            devices,
            csrs_waiting,
            rollout,
        }
    }

    /// Counts one HTTP request by route and status, and its time to the response headers.
    pub fn count_request(&self, route: &str, status: StatusCode, took: Duration) {
        let m = self;
        m.requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("status", status.as_u16().to_string()),
            ])
            .inc();
        m.duration
            .get_or_create(&vec![("route", route.to_string())])
            .observe(took.as_secs_f64());
    }

    /// Counts a request of update.php: a poll (no `mode`) or an upload (`mode`, raw).
    pub fn count_device(&self, mode: Option<&str>, status: StatusCode) {
        let m = self;
        let kind = match mode {
            None => {
                let i = match status.as_u16() {
                    200..=299 => 0,
                    300..=399 => 1,
                    400..=499 => 2,
                    _ => 3,
                };
                m.polls[i].inc();
                return;
            }
            Some("backup") => 0,
            Some("query") => 1,
            Some("vardump") => 2,
            Some("upload") => 3,
            Some(_) => return,
        };
        // a signed certificate uploaded from the admin page answers 303 to the page
        let r = match status.as_u16() {
            200..=399 => 0,
            400..=499 => 1,
            _ => 2,
        };
        m.uploads[kind][r].inc();
    }

    /// Sets the gauges read at each scrape: configuration good, master reachable, the fleet
    /// and the waves of the configured rollouts (series of removed rollouts go).
    pub fn refresh(&self, g: &Gauges<'_>) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.config_good.set(i64::from(g.config_good));
        self.master_reachable
            .set(g.master_reachable.map_or(-1, i64::from));
        let Some(f) = &g.fleet else {
            return;
        };
        let state = |s: &str| vec![("state", s.to_string())];
        self.devices
            .get_or_create(&state("present"))
            .set(count(f.devices - f.missing));
        self.devices
            .get_or_create(&state("missing"))
            .set(count(f.missing));
        self.csrs_waiting.set(count(f.csrs_waiting));
        self.rollout.devices.clear();
        self.rollout.halted.clear();
        self.rollout.phase.clear();
        self.rollout.open_waves.clear();
        self.rollout.snippet_version.clear();
        for r in g.rollouts {
            for f in &r.snippets {
                for (which, v) in [("staged", f.version), ("previous", f.previous)] {
                    let labels = vec![
                        ("rollout", r.id.clone()),
                        ("file", f.name.clone()),
                        ("which", which.to_string()),
                    ];
                    if let Some(v) = v {
                        self.rollout.snippet_version.get_or_create(&labels).set(v);
                    }
                }
            }
            let id = vec![("rollout", r.id.clone())];
            self.rollout
                .halted
                .get_or_create(&id)
                .set(i64::from(r.halted.is_some()));
            let open = r.waves.iter().filter(|w| w.opened.is_some()).count();
            self.rollout.open_waves.get_or_create(&id).set(count(open));
            for p in crate::rollout::Phase::ALL {
                let labels = vec![("rollout", r.id.clone()), ("phase", p.key())];
                self.rollout
                    .phase
                    .get_or_create(&labels)
                    .set(i64::from(p == r.phase));
            }
            for w in &r.waves {
                for (outcome, n) in [
                    ("population", w.population),
                    ("told", w.told),
                    ("pending", w.pending),
                    ("succeeded", w.succeeded),
                    ("failed", w.failed),
                ] {
                    let labels = vec![
                        ("rollout", r.id.clone()),
                        ("wave", w.wave.to_string()),
                        ("outcome", outcome.to_string()),
                    ];
                    self.rollout.devices.get_or_create(&labels).set(count(n));
                }
            }
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        encode_registry(&mut out, &self.registry)?;
        encode_registry(&mut out, &crate::ops_metrics::process_registry())?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

/// The devices of the fleet as the status page counts them.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetCounts {
    pub devices: usize,
    pub missing: usize,
    pub csrs_waiting: usize,
}

/// What the gauges are set to at a scrape.
pub struct Gauges<'a> {
    pub config_good: bool,
    pub master_reachable: Option<bool>,
    /// `None` when the configuration cannot be read (the fleet and rollout gauges keep their
    /// values).
    pub fleet: Option<FleetCounts>,
    pub rollouts: &'a [crate::rollout::RolloutSummary],
}
