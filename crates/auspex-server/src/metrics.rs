//! Internal metrics, rendered in the Prometheus text format at `/metrics`. Each metric is a
//! named field, so names cannot drift.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Detector-latency histogram bucket bounds, seconds (per write request's detection work).
pub const LATENCY_BUCKETS: [f64; 10] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

/// Counters and gauges of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Write requests by outcome.
    pub writes_ok: AtomicU64,
    /// Writes answered 400 (some or all series invalid, or undecodable).
    pub writes_bad: AtomicU64,
    /// Writes answered 413.
    pub writes_too_large: AtomicU64,
    /// Writes shed with 503.
    pub writes_shed: AtomicU64,
    /// Samples ingested into detectors.
    pub samples_ingested: AtomicU64,
    /// Samples in every write that was processed (not shed): ingested or dropped.
    pub samples_received: AtomicU64,
    /// Samples dropped with invalid series.
    pub samples_invalid: AtomicU64,
    /// Samples dropped as out of order or duplicate timestamps.
    pub samples_out_of_order: AtomicU64,
    /// Samples dropped because their series was refused by the series limit.
    pub samples_series_limit: AtomicU64,
    /// Stale markers seen (not learned).
    pub samples_stale: AtomicU64,
    /// New series refused by the active-series limit.
    pub series_refused: AtomicU64,
    /// Series evicted for being idle.
    pub series_evicted: AtomicU64,
    /// Series created.
    pub series_created: AtomicU64,
    /// Signals opened.
    pub signals_opened: AtomicU64,
    /// Snapshot rounds written.
    pub snapshots: AtomicU64,
    /// Series states written by snapshots.
    pub snapshot_series: AtomicU64,
    /// Store write failures.
    pub store_errors: AtomicU64,
    /// Requests of any route answered 503 before their body was read (body budget in use).
    pub bodies_shed: AtomicU64,
    /// Detector latency histogram: counts per bucket (+Inf last), sum in nanoseconds.
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum of detector latency, nanoseconds.
    pub latency_sum_ns: AtomicU64,
}

impl Metrics {
    /// Records one request's detection time.
    pub fn observe_latency(&self, secs: f64) {
        let i = LATENCY_BUCKETS.iter().position(|&b| secs <= b).unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[i].fetch_add(1, Relaxed);
        self.latency_sum_ns.fetch_add((secs * 1e9) as u64, Relaxed);
    }

    /// Renders the counters; `extra` is appended (gauges computed by the caller).
    pub fn render(&self, active_series: usize, extra: &str) -> String {
        let mut s = String::with_capacity(4096);
        let c = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let _ = writeln!(
            s,
            "# HELP auspex_remote_write_requests_total Remote-write requests by HTTP status.\n\
             # TYPE auspex_remote_write_requests_total counter"
        );
        for (code, v) in [
            ("204", &self.writes_ok),
            ("400", &self.writes_bad),
            ("413", &self.writes_too_large),
            ("503", &self.writes_shed),
        ] {
            let _ = writeln!(
                s,
                "auspex_remote_write_requests_total{{code=\"{code}\"}} {}",
                v.load(Relaxed)
            );
        }
        c(
            &mut s,
            "auspex_samples_received_total",
            "Samples in writes that were processed (not shed).",
            self.samples_received.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_samples_ingested_total",
            "Samples fed to detectors.",
            self.samples_ingested.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP auspex_samples_dropped_total Samples not ingested, by reason.\n\
             # TYPE auspex_samples_dropped_total counter"
        );
        for (reason, v) in [
            ("invalid_series", &self.samples_invalid),
            ("out_of_order", &self.samples_out_of_order),
            ("series_limit", &self.samples_series_limit),
            ("stale_marker", &self.samples_stale),
        ] {
            let _ = writeln!(
                s,
                "auspex_samples_dropped_total{{reason=\"{reason}\"}} {}",
                v.load(Relaxed)
            );
        }
        c(
            &mut s,
            "auspex_series_refused_total",
            "New series refused by limits.max_active_series.",
            self.series_refused.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_series_created_total",
            "Series created.",
            self.series_created.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_series_evicted_total",
            "Series evicted from memory for being idle.",
            self.series_evicted.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_signals_opened_total",
            "Anomaly signals opened.",
            self.signals_opened.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_snapshots_total",
            "Snapshot rounds written.",
            self.snapshots.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_snapshot_series_total",
            "Series states written by snapshots.",
            self.snapshot_series.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_store_errors_total",
            "Failed store writes (retried).",
            self.store_errors.load(Relaxed),
        );
        c(
            &mut s,
            "auspex_http_requests_shed_total",
            "Requests of any route answered 503 before their body was read: \
             limits.max_inflight_body_bytes was in use.",
            self.bodies_shed.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP auspex_active_series Series held in memory.\n# TYPE auspex_active_series gauge\nauspex_active_series {active_series}"
        );
        let _ = writeln!(
            s,
            "# HELP auspex_detector_latency_seconds Detection time per write request.\n\
             # TYPE auspex_detector_latency_seconds histogram"
        );
        let mut cum = 0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cum += self.latency_buckets[i].load(Relaxed);
            let _ = writeln!(s, "auspex_detector_latency_seconds_bucket{{le=\"{b}\"}} {cum}");
        }
        cum += self.latency_buckets[LATENCY_BUCKETS.len()].load(Relaxed);
        let _ = writeln!(s, "auspex_detector_latency_seconds_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(
            s,
            "auspex_detector_latency_seconds_sum {}\nauspex_detector_latency_seconds_count {cum}",
            self.latency_sum_ns.load(Relaxed) as f64 / 1e9
        );
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(
                s,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                 # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
            );
        }
        s.push_str(extra);
        s
    }
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Escapes a label value for the text format.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
