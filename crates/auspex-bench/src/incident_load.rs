//! Correlator load: a synthetic alert storm far bigger than PetShop's, replayed through the
//! incident correlator to measure its speed (alerts/s, per-alert latency) and its memory
//! bound at scale, with compression and purity against the generator's truth.
//!
//! The generator (deterministic for a seed):
//! - `services` services; service `i` calls 1–3 services with higher numbers, so faults
//!   propagate from a callee to its callers (towards service 0, the front door);
//! - `faults` faults at uniform times over `span`: each picks a root service, then walks up
//!   to 3 caller hops; the fault reaches each hop 0–3 minutes after the one before, and every
//!   service on the walk raises 1–4 alerts (alert names × pods) starting within 2 minutes of
//!   being reached and lasting 5–30 minutes;
//! - `background` lone alerts at uniform times on random services and pods, each its own
//!   source (unrelated to anything: the right incident for it is its own).
//!
//! The replay feeds starts and ends in time order and ticks the correlator every `tick`
//! (the server's default is 5 s).

use std::collections::BTreeSet;

use auspex_core::{Explanation, Labels, Signal, SignalKind};
use auspex_incidents::{Config, Correlator, Edge, Topology};

use crate::storm::{
    Grouping, StormAlert, best_compression, merge_overlaps, replay, score, time_only,
    time_only_matched,
};
use crate::synth::SplitMix;

const MIN: i64 = 60_000;
const NAMES: [&str; 4] = ["HighLatency", "HighErrorRate", "PodRestarting", "LowAvailability"];

/// Load settings.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Seed.
    pub seed: u64,
    /// Services in the generated topology.
    pub services: usize,
    /// Faults.
    pub faults: usize,
    /// Lone background alerts.
    pub background: usize,
    /// Time the faults and background are spread over, ms.
    pub span_ms: i64,
    /// Correlator tick, ms.
    pub tick_ms: i64,
    /// Whether the correlator is given the generated topology (a team may have none).
    pub with_topology: bool,
    /// Correlation settings.
    pub correlator: Config,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            services: 2_000,
            faults: 5_000,
            background: 20_000,
            span_ms: 24 * 60 * MIN,
            tick_ms: 5_000,
            with_topology: true,
            correlator: Config::default(),
        }
    }
}

/// What the replay measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Alerts generated.
    pub alerts: usize,
    /// Seconds spent in the correlator (observe and tick).
    pub seconds: f64,
    /// Alerts per second through the correlator.
    pub alerts_per_s: f64,
    /// Median and 99th percentile of one `observe` of a new alert, µs.
    pub observe_p50_us: f64,
    /// 99th percentile, µs.
    pub observe_p99_us: f64,
    /// Slowest, µs.
    pub observe_max_us: f64,
    /// Most incidents held in memory at once (sampled at every 1 % of the replay).
    pub peak_incidents: usize,
    /// Incidents let go for the memory bound.
    pub evicted: u64,
    /// Compression and purity against the truth (each fault, and each background alert).
    pub grouping: Grouping,
    /// Grouping by time alone with the correlator's window.
    pub time_only: Grouping,
    /// Time alone's purity at exactly the correlator's compression (windows in whole
    /// seconds up to an hour, interpolated), if any window compresses that much.
    pub time_only_interpolated: Option<f64>,
    /// The highest compression at purity 1: one incident per source.
    pub best_compression: f64,
}

/// The generated topology and alerts (sorted by start).
pub fn generate(cfg: &LoadConfig) -> (Topology, Vec<StormAlert>) {
    let mut rng = SplitMix(cfg.seed ^ 0x5151_7a7a_0f0f_3c3c);
    let n = cfg.services.max(2);
    let name = |i: usize| format!("svc-{i}");
    let mut edges = Vec::new();
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n - 1 {
        let k = 1 + (rng.next_u64() % 3) as usize;
        let mut callees = BTreeSet::new();
        for _ in 0..k {
            callees.insert(i + 1 + (rng.next_u64() % (n - i - 1) as u64) as usize);
        }
        for j in callees {
            edges.push(Edge { from: name(i), to: name(j) });
            callers[j].push(i);
        }
    }
    let topo = Topology::new((0..n).map(name), &edges);
    let span = cfg.span_ms.max(1) as u64;
    let mut alerts = Vec::new();
    let mut push = |rng: &mut SplitMix, svc: usize, start: i64, source: Option<usize>| {
        let alertname = NAMES[(rng.next_u64() % NAMES.len() as u64) as usize];
        let pod = format!("{}-{}", name(svc), rng.next_u64() % 3);
        let labels = Labels::from_pairs([
            ("alertname", alertname),
            ("service", name(svc).as_str()),
            ("pod", pod.as_str()),
        ])
        .unwrap_or_default();
        let score = if alertname == "LowAvailability" { 1.0 } else { 0.7 };
        let msg = format!("{alertname} on {pod}");
        let mut signal = Signal::new(
            SignalKind::Alert,
            labels,
            start,
            score,
            Explanation::Text { message: msg },
        );
        signal.end = Some(start + 5 * MIN + (rng.next_u64() % (25 * MIN as u64)) as i64);
        alerts.push(StormAlert { signal, source });
    };
    for f in 0..cfg.faults {
        let t = (rng.next_u64() % span) as i64;
        let mut svc = (rng.next_u64() % n as u64) as usize;
        let mut reached = t;
        for _hop in 0..=3 {
            for _ in 0..1 + rng.next_u64() % 4 {
                let start = reached + (rng.next_u64() % (2 * MIN as u64)) as i64;
                push(&mut rng, svc, start, Some(f));
            }
            reached += (rng.next_u64() % (3 * MIN as u64)) as i64;
            let up = &callers[svc];
            if up.is_empty() {
                break;
            }
            svc = up[(rng.next_u64() % up.len() as u64) as usize];
        }
    }
    for b in 0..cfg.background {
        let t = (rng.next_u64() % span) as i64;
        let svc = (rng.next_u64() % n as u64) as usize;
        push(&mut rng, svc, t, Some(cfg.faults + b));
    }
    // One firing per fingerprint at a time (as in Alertmanager): overlapping firings of the
    // same alert are one, credited to the source that fired first.
    (topo, merge_overlaps(alerts))
}

/// Generates the load and replays it; `progress` is called with the share done (0–1).
pub fn run(cfg: &LoadConfig, mut progress: impl FnMut(f64)) -> LoadReport {
    let (topo, alerts) = generate(cfg);
    let topo = if cfg.with_topology { topo } else { Topology::default() };
    let mut c = Correlator::new(cfg.correlator.clone(), topo);
    let mut peak = 0usize;
    let r = replay(&alerts, &mut c, cfg.tick_ms.max(1), |n, total, c| {
        if n % (total / 100).max(1) == 0 {
            peak = peak.max(c.incidents().count());
            progress(n as f64 / total as f64);
        }
    });
    let mut lat = r.observe_us;
    lat.sort_by(f64::total_cmp);
    let grouping = score(&r.assign, &alerts);
    LoadReport {
        alerts: alerts.len(),
        seconds: r.busy_s,
        alerts_per_s: alerts.len() as f64 / r.busy_s.max(1e-9),
        observe_p50_us: crate::percentile(&lat, 0.5),
        observe_p99_us: crate::percentile(&lat, 0.99),
        observe_max_us: lat.last().copied().unwrap_or(0.0),
        peak_incidents: peak,
        evicted: c.stats.evicted,
        grouping,
        time_only: score(&time_only(&alerts, cfg.correlator.window_ms), &alerts),
        time_only_interpolated: time_only_matched(&alerts, grouping.compression, 1_000, 3_600).1,
        best_compression: best_compression(&alerts),
    }
}
