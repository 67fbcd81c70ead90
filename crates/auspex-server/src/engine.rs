//! The ingest engine: one detector per series, sharded behind mutexes, and the signals they
//! raise. Pure in-memory work; the HTTP layer persists signals and the snapshot worker persists
//! models through the store.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use auspex_core::{Explanation, Labels, SeriesId, Signal, SignalKind};
use auspex_detect::{Config as DetectorConfig, Detector};
use auspex_ingest::remote_write::{Limits as LabelLimits, Request, SeriesRef, is_stale_marker};
use auspex_store::SeriesRecord;

use crate::metrics::Metrics;

const SHARDS: usize = 32;

/// In-memory state of one series.
#[derive(Debug)]
pub struct SeriesState {
    labels: Labels,
    det: Detector,
    first_seen: i64,
    last_seen: i64,
    samples: u64,
    last_score: f64,
    dirty: bool,
    open: Option<Signal>,
    touched: Instant,
}

/// Series ids are already xxHash64 values: hash them by identity.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap<V> = HashMap<SeriesId, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default)]
struct Shard {
    map: IdMap<SeriesState>,
}

/// What one write did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Samples fed to detectors.
    pub ingested: u64,
    /// Series refused by the active-series limit.
    pub refused_series: u64,
    /// Samples of refused series.
    pub refused_samples: u64,
    /// Signals opened or closed by this write; they must be stored before the write is
    /// acknowledged.
    pub signals: Vec<Signal>,
    /// New series dropped as invalid.
    pub invalid_series: u64,
    /// Their samples.
    pub invalid_samples: u64,
    /// What was wrong with the first invalid series.
    pub first_invalid: Option<String>,
    /// Samples dropped for a timestamp outside years 0000–9999 (a signal there could not be
    /// written as RFC 3339 and read back).
    pub out_of_range_samples: u64,
}

/// A series as listed by the API.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesView {
    /// Labels.
    pub labels: Labels,
    /// First sample time.
    pub first_seen: i64,
    /// Last sample time.
    pub last_seen: i64,
    /// Samples ingested.
    pub samples: u64,
    /// `warming`, `active` or `idle`.
    pub state: &'static str,
    /// Score of the latest sample.
    pub last_score: f64,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    shards: Vec<Mutex<Shard>>,
    active: AtomicUsize,
    max_active: usize,
    det_cfg: DetectorConfig,
    label_limits: LabelLimits,
    /// Counters.
    pub metrics: Metrics,
}

fn lock(m: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    // A panic while holding the lock cannot leave a shard half-updated in a way that matters
    // more than losing it; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// An empty engine.
    pub fn new(max_active: usize, det_cfg: DetectorConfig, label_limits: LabelLimits) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            active: AtomicUsize::new(0),
            max_active,
            det_cfg,
            label_limits,
            metrics: Metrics::default(),
        }
    }

    /// Series held in memory.
    pub fn active(&self) -> usize {
        self.active.load(Relaxed)
    }

    fn shard_of(id: SeriesId) -> usize {
        (id.0 >> 59) as usize % SHARDS
    }

    /// Restores series from stored records (start-up). Idle records and unreadable states
    /// are skipped; returns how many were restored.
    pub fn restore(&self, records: Vec<SeriesRecord>) -> usize {
        let mut n = 0;
        for r in records {
            if r.idle || self.active() >= self.max_active {
                continue;
            }
            let Some(state) = r.state.as_deref() else { continue };
            let Ok(det) = Detector::restore(self.det_cfg, state) else { continue };
            let mut shard = lock(&self.shards[Self::shard_of(r.id)]);
            shard.map.insert(
                r.id,
                SeriesState {
                    labels: r.labels,
                    det,
                    first_seen: r.first_seen,
                    last_seen: r.last_seen,
                    samples: r.samples,
                    last_score: r.last_score,
                    dirty: false,
                    open: None,
                    touched: Instant::now(),
                },
            );
            self.active.fetch_add(1, Relaxed);
            n += 1;
        }
        n
    }

    /// Reopens signals that were open when the server stopped, so they close normally.
    pub fn restore_open(&self, open: Vec<Signal>) {
        for s in open.into_iter().filter(|s| s.kind == auspex_core::SignalKind::Anomaly) {
            let id = s.labels.series_id();
            let mut shard = lock(&self.shards[Self::shard_of(id)]);
            if let Some(st) = shard.map.get_mut(&id) {
                st.open = Some(s);
            }
        }
    }

    /// Feeds a decoded request to the detectors. Labels are validated only when a series is
    /// first seen; afterwards it is found by id without allocating.
    pub fn ingest(&self, req: &Request) -> Outcome {
        let t0 = Instant::now();
        let mut out = Outcome::default();
        // Group by shard so each shard is locked once per request.
        let mut by_shard: Vec<Vec<(SeriesId, SeriesRef<'_>)>> =
            (0..SHARDS).map(|_| Vec::new()).collect();
        for s in req.series() {
            let id = s.id();
            by_shard[Self::shard_of(id)].push((id, s));
        }
        let now = Instant::now();
        for (k, group) in by_shard.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let mut shard = lock(&self.shards[k]);
            for (id, s) in group {
                let st = match shard.map.entry(id) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(slot) => {
                        let labels = match s.validate(&self.label_limits) {
                            Ok(l) => l,
                            Err(why) => {
                                out.invalid_series += 1;
                                out.invalid_samples += s.samples().len() as u64;
                                out.first_invalid.get_or_insert(why);
                                continue;
                            }
                        };
                        if self.active.fetch_add(1, Relaxed) >= self.max_active {
                            self.active.fetch_sub(1, Relaxed);
                            out.refused_series += 1;
                            out.refused_samples += s.samples().len() as u64;
                            continue;
                        }
                        self.metrics.series_created.fetch_add(1, Relaxed);
                        slot.insert(SeriesState {
                            labels,
                            det: Detector::new(self.det_cfg),
                            first_seen: (s.samples().iter().map(|p| p.0))
                                .find(|t| auspex_core::time::representable(*t))
                                .unwrap_or(0),
                            last_seen: i64::MIN,
                            samples: 0,
                            last_score: 0.0,
                            dirty: true,
                            open: None,
                            touched: now,
                        })
                    }
                };
                st.touched = now;
                for &(ts, v) in s.samples() {
                    if !auspex_core::time::representable(ts) {
                        out.out_of_range_samples += 1;
                        continue;
                    }
                    if ts <= st.last_seen {
                        self.metrics.samples_out_of_order.fetch_add(1, Relaxed);
                        continue;
                    }
                    if is_stale_marker(v) {
                        self.metrics.samples_stale.fetch_add(1, Relaxed);
                        continue;
                    }
                    let o = st.det.update(ts, v);
                    st.last_seen = ts;
                    st.samples += 1;
                    st.last_score = o.score;
                    st.dirty = true;
                    out.ingested += 1;
                    match (&mut st.open, o.is_anomaly) {
                        (None, true) => {
                            let since = o.anomalous_since.unwrap_or(ts);
                            let sig = Signal::new(
                                SignalKind::Anomaly,
                                st.labels.clone(),
                                since,
                                o.score,
                                Explanation::Metric {
                                    value: v,
                                    expected: o.expected,
                                    lower: o.lower,
                                    upper: o.upper,
                                    deviation: o.deviation,
                                    anomalous_since: since,
                                },
                            );
                            self.metrics.signals_opened.fetch_add(1, Relaxed);
                            out.signals.push(sig.clone());
                            st.open = Some(sig);
                        }
                        (Some(open), true) => {
                            open.score = open.score.max(o.score);
                        }
                        (Some(_), false) => {
                            if let Some(mut sig) = st.open.take() {
                                sig.end = Some(ts);
                                out.signals.push(sig);
                            }
                        }
                        (None, false) => {}
                    }
                }
            }
        }
        self.metrics.samples_ingested.fetch_add(out.ingested, Relaxed);
        self.metrics.samples_invalid.fetch_add(out.invalid_samples, Relaxed);
        self.metrics.series_refused.fetch_add(out.refused_series, Relaxed);
        self.metrics.samples_series_limit.fetch_add(out.refused_samples, Relaxed);
        self.metrics.observe_latency(t0.elapsed().as_secs_f64());
        out
    }

    /// Collects the series changed since the last call, with their model state, and clears
    /// their dirty flags. Series idle for longer than `idle` are evicted (returned with
    /// `idle = true`).
    pub fn take_dirty(&self, idle: std::time::Duration) -> Vec<SeriesRecord> {
        (0..SHARDS).flat_map(|k| self.take_dirty_shard(k, idle)).collect()
    }

    /// Number of shards (snapshots are written shard by shard, bounding their memory).
    pub fn shard_count(&self) -> usize {
        SHARDS
    }

    /// [`Engine::take_dirty`] for one shard.
    pub fn take_dirty_shard(&self, k: usize, idle: std::time::Duration) -> Vec<SeriesRecord> {
        let now = Instant::now();
        let mut out = Vec::new();
        if let Some(shard) = self.shards.get(k) {
            let mut shard = lock(shard);
            let mut evict = Vec::new();
            for (id, st) in shard.map.iter_mut() {
                let is_idle = now.duration_since(st.touched) > idle;
                if st.dirty || is_idle {
                    out.push(record(*id, st, is_idle));
                    st.dirty = false;
                }
                if is_idle {
                    evict.push(*id);
                }
            }
            for id in evict {
                shard.map.remove(&id);
                self.active.fetch_sub(1, Relaxed);
                self.metrics.series_evicted.fetch_add(1, Relaxed);
            }
        }
        out
    }

    /// Marks series dirty again (their snapshot failed to be written).
    pub fn mark_dirty(&self, ids: &[SeriesId]) {
        for id in ids {
            if let Some(st) = lock(&self.shards[Self::shard_of(*id)]).map.get_mut(id) {
                st.dirty = true;
            }
        }
    }

    /// Series in memory, for listing.
    pub fn views(&self) -> Vec<SeriesView> {
        let warmup = u64::from(self.det_cfg.warmup);
        let mut v = Vec::with_capacity(self.active());
        for shard in &self.shards {
            for st in lock(shard).map.values() {
                v.push(SeriesView {
                    labels: st.labels.clone(),
                    first_seen: st.first_seen,
                    last_seen: st.last_seen,
                    samples: st.samples,
                    state: if st.samples < warmup { "warming" } else { "active" },
                    last_score: st.last_score,
                });
            }
        }
        v
    }

    /// The `limit` highest last scores at or above `min`, for the `/metrics` gauge.
    pub fn top_scores(&self, min: f64, limit: usize) -> Vec<(Labels, f64)> {
        let mut v: Vec<(Labels, f64)> = Vec::new();
        for shard in &self.shards {
            for st in lock(shard).map.values() {
                if st.last_score >= min && st.last_score > 0.0 {
                    v.push((st.labels.clone(), st.last_score));
                }
            }
        }
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(limit);
        v
    }
}

fn record(id: SeriesId, st: &SeriesState, idle: bool) -> SeriesRecord {
    SeriesRecord {
        id,
        labels: st.labels.clone(),
        first_seen: st.first_seen,
        last_seen: st.last_seen,
        samples: st.samples,
        last_score: st.last_score,
        idle,
        state: Some(st.det.snapshot()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auspex_ingest::remote_write::{decode, encode};

    fn req(series: &[(&str, &[(i64, f64)])]) -> Request {
        let enc: Vec<_> =
            series.iter().map(|(n, pts)| (vec![("__name__", *n)], pts.to_vec())).collect();
        decode(&encode(&enc), &LabelLimits::default()).unwrap()
    }

    fn engine(max: usize) -> Engine {
        Engine::new(max, DetectorConfig::default(), LabelLimits::default())
    }

    #[test]
    fn level_shift_opens_then_closes_a_signal() {
        let e = engine(10);
        let mut opened = Vec::new();
        for i in 0..400i64 {
            let v = if (300..320).contains(&i) { 100.0 } else { (i % 7) as f64 };
            let o = e.ingest(&req(&[("m", &[(i * 1000, v)])]));
            opened.extend(o.signals);
        }
        assert!(!opened.is_empty());
        assert_eq!(opened[0].start, 300_000);
        assert_eq!(opened[0].end, None);
        assert!(opened.iter().any(|s| s.end.is_some()), "closed when back to normal");
    }

    #[test]
    fn limit_out_of_order_stale_and_duplicates() {
        let e = engine(2);
        let o = e.ingest(&req(&[("a", &[(1, 1.0), (2, 2.0)]), ("b", &[(1, 1.0)])]));
        assert_eq!((o.ingested, o.refused_series), (3, 0));
        // Within one request, the duplicate series `a` is processed in order.
        let o = e.ingest(&req(&[
            ("c", &[(1, 1.0)]),
            ("a", &[(2, 5.0), (3, f64::from_bits(0x7ff0_0000_0000_0002)), (4, 1.0)]),
            ("a", &[(5, 1.0)]),
        ]));
        assert_eq!(o.refused_series, 1);
        assert_eq!(o.refused_samples, 1);
        assert_eq!(o.ingested, 2, "a:4 and a:5");
        assert_eq!(e.metrics.samples_out_of_order.load(Relaxed), 1);
        assert_eq!(e.metrics.samples_stale.load(Relaxed), 1);
        assert_eq!(e.active(), 2);
        // A timestamp RFC 3339 cannot write (beyond year 9999) is dropped and counted; it does
        // not make the series' later samples look out of order.
        let o = e.ingest(&req(&[("a", &[(i64::MAX, 1.0), (6, 1.0)])]));
        assert_eq!((o.out_of_range_samples, o.ingested), (1, 1));
    }

    #[test]
    fn snapshots_restore_and_eviction() {
        let e = engine(10);
        for i in 0..100 {
            e.ingest(&req(&[("a", &[(i, i as f64)])]));
        }
        let recs = e.take_dirty(std::time::Duration::from_secs(3600));
        assert_eq!(recs.len(), 1);
        assert!(e.take_dirty(std::time::Duration::from_secs(3600)).is_empty(), "clean now");
        let e2 = engine(10);
        assert_eq!(e2.restore(recs), 1);
        assert_eq!(e2.views()[0].samples, 100);
        let evicted = e2.take_dirty(std::time::Duration::ZERO);
        assert!(evicted[0].idle);
        assert_eq!(e2.active(), 0);
    }
}
