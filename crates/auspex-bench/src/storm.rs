//! The alert-storm benchmark: PetShop-shaped cases become alerts from static thresholds,
//! several cases are overlaid on one timeline with overlapping windows, flapping background
//! alerts are added, and the storm is replayed through the incident correlator. Reported:
//! compression (1 − incidents/alerts) and purity (share of each incident's alerts from its
//! majority source, weighted by alerts), beside a baseline that groups by time alone.
//!
//! How the storm is built (deterministic for a seed):
//! 1. **Rules** from `noissue`, the kind a team writes ([`Rules`]): by default latency and
//!    request series alert above 1.2 × their highest normal value, availability below its
//!    lowest normal value minus one point; `--rules p99` uses the normal 99th/1st percentiles
//!    instead. Series with fewer than 10 normal values or no variation get no rule.
//! 2. **Cases**: each case's rows are checked against the rules; a run of breaching rows is
//!    one alert (it starts up to a minute into its first row, it resolves up to a minute
//!    into the first row that no longer breaches, or at the end of the case).
//! 3. **Overlay**: cases in a seeded order, each starting 5–20 min (uniform) after the
//!    previous one, so a 25-min case overlaps the next.
//! 4. **Background**: `background` seeded series get a noisy rule (above their normal 90th
//!    percentile) evaluated on a `noissue` stretch as long as the storm: they flap.
//! 5. Alerts of one rule that overlap in time are one alert (as in Alertmanager), credited to
//!    the source that fired first.
//!
//! With [`StormConfig::eval_ms`] set, every start and end moves to the next tick of one global
//! evaluation schedule (a sensitivity check: by default each case keeps its own row phase).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use auspex_core::{Explanation, Labels, Signal, SignalKind};
use auspex_incidents::{Config, Correlator, Topology, signal_title};

use crate::petshop::{self, Key, Metrics, ReadError};
use crate::synth::SplitMix;

const STEP: i64 = 300_000;
const MIN: i64 = 60_000;

/// Storm settings.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// Seed for order, spacing, jitter and background choice.
    pub seed: u64,
    /// Cases to overlay (`0`: all).
    pub cases: usize,
    /// Background series with a noisy rule.
    pub background: usize,
    /// Which static rules turn metrics into alerts.
    pub rules: Rules,
    /// Rule evaluation interval, ms (`0`: none). When set, every alert starts and resolves
    /// at the next tick of one global evaluation schedule, as when one Prometheus rule group
    /// holds all the rules; by default each alert starts at its own instant.
    pub eval_ms: i64,
    /// Correlation settings.
    pub correlator: Config,
}

impl Default for StormConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            cases: 0,
            background: 8,
            rules: Rules::MaxPlus20,
            eval_ms: 0,
            correlator: Config::default(),
        }
    }
}

/// One alert of the storm.
#[derive(Debug, Clone)]
pub struct StormAlert {
    /// The signal (an alert; `end` set).
    pub signal: Signal,
    /// Index of its source case, or `None` for background.
    pub source: Option<usize>,
}

/// Compression and purity of one grouping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grouping {
    /// Groups made.
    pub incidents: usize,
    /// 1 − incidents/alerts.
    pub compression: f64,
    /// Σ majority-source alerts / alerts.
    pub purity: f64,
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct StormReport {
    /// Cases overlaid.
    pub cases: Vec<String>,
    /// Alerts in the storm (after merging overlaps of one rule).
    pub alerts: usize,
    /// Of which background.
    pub background_alerts: usize,
    /// Storm length, minutes.
    pub span_min: f64,
    /// The correlator.
    pub auspex: Grouping,
    /// Time-only grouping with the same window.
    pub time_only: Grouping,
    /// The highest compression any grouping can reach at purity 1: one incident per source
    /// (each case, and all background together).
    pub best_compression: f64,
    /// The same with each background rule in an incident of its own: the highest compression
    /// at purity 1 of a grouping that never puts unrelated noisy rules together (the truth
    /// calls all background one source, so `best_compression` rewards gluing them).
    pub best_compression_series_apart: f64,
    /// The highest compression any grouping reaches at purity ≥ 0.95, the target's operating
    /// point (an oracle's bound: the smallest sources folded into others; background one
    /// source).
    pub best_compression_at_purity_95: f64,
    /// The same with each background rule a source of its own.
    pub best_compression_at_purity_95_series_apart: f64,
    /// Time-only grouping with the smallest window that compresses at least as much as the
    /// correlator, and that window in minutes (`None` if no window up to 24 h does).
    pub time_only_matched: Option<(f64, Grouping)>,
    /// Time-only purity at exactly the correlator's compression, interpolated linearly between
    /// the two windows (whole seconds) whose compressions bracket it: the fair comparison when
    /// one more step of window jumps the time-only compression far past the correlator's.
    pub time_only_interpolated: Option<f64>,
    /// The most time alone can compress at purity ≥ 0.95 (windows in whole seconds up to an
    /// hour), with that window in seconds: the target's operating point for the baseline.
    pub time_only_at_purity_95: Option<(i64, Grouping)>,
    /// Alertmanager-style grouping (simulated): `group_by: [service]`, one group per service
    /// while any of its alerts fires or resolved less than `group_interval` (5 min) ago.
    pub group_by_service: Grouping,
    /// The same with `group_by: [alertname]`.
    pub group_by_alertname: Grouping,
    /// Time alone's purity at exactly `group_by_service`'s compression (windows in whole
    /// seconds up to an hour, interpolated): where Alertmanager's grouping sits against the
    /// same baseline as Auspex.
    pub time_only_at_group_by_service: Option<f64>,
    /// Every alert of the storm (sorted by start) with the correlator's incident for it
    /// (incidents numbered in order of opening).
    pub assignments: Vec<(StormAlert, usize)>,
}

/// The storm's generator: [`SplitMix`] with a seed-scrambled start, plus ranges and shuffles.
#[derive(Debug, Clone)]
pub struct Rng(SplitMix);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(SplitMix(seed ^ 0x9e37_79b9_7f4a_7c15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo).max(0) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    Above(f64),
    Below(f64),
}

impl Rule {
    fn breached(self, v: f64) -> bool {
        match self {
            Self::Above(t) => v > t,
            Self::Below(t) => v < t,
        }
    }
}

fn normal_values(col: &[f64]) -> Option<Vec<f64>> {
    let mut v: Vec<f64> = col.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let varies = v.first().zip(v.last()).is_some_and(|(a, b)| b > a);
    (v.len() >= 10 && varies).then_some(v)
}

/// The static rules a team would write from normal operation.
/// The static rules of the storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Latency and requests above 1.2 × their normal maximum; availability below its normal
    /// minimum − 1 point (the default: conservative rules).
    MaxPlus20,
    /// Above the normal 99th percentile; availability below the normal 1st percentile
    /// (eager rules: more alerts per fault).
    P99,
}

fn team_rules(noissue: &Metrics, which: Rules) -> HashMap<Key, Rule> {
    let mut rules = HashMap::new();
    for (k, col) in &noissue.columns {
        let Some(v) = normal_values(col) else { continue };
        let (lo, hi) = (v[0], v[v.len() - 1]);
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        let rule = match (k.metric.as_str(), which) {
            ("availability", Rules::P99) => Rule::Below(q(0.01)),
            ("availability", Rules::MaxPlus20) if lo > 1.0 => Rule::Below(lo - 1.0),
            ("availability", Rules::MaxPlus20) => continue,
            (_, Rules::P99) => Rule::Above(q(0.99)),
            (_, Rules::MaxPlus20) => Rule::Above(hi * 1.2),
        };
        rules.insert(k.clone(), rule);
    }
    rules
}

fn alert_labels(k: &Key) -> Labels {
    let name = match k.metric.as_str() {
        "latency" => "HighLatency",
        "requests" => "HighRequestRate",
        "availability" => "LowAvailability",
        _ => "Threshold",
    };
    Labels::from_pairs([
        ("alertname", name),
        ("service", k.node.as_str()),
        ("metric", k.metric.as_str()),
        ("statistic", k.stat.as_str()),
    ])
    .unwrap_or_default()
}

/// Alerts of `m` under `rules`, with row 0 placed at `t0`; with `eval > 0` every start and
/// end moves to the next multiple of `eval`.
fn alerts_of(
    m: &Metrics,
    rules: &HashMap<Key, Rule>,
    (t0, eval): (i64, i64),
    rng: &mut Rng,
    source: Option<usize>,
    out: &mut Vec<StormAlert>,
) {
    let n = m.times.len() as i64;
    let tick = |t: i64| {
        if eval > 0 {
            t.div_euclid(eval) * eval + eval * i64::from(t.rem_euclid(eval) > 0)
        } else {
            t
        }
    };
    for (k, col) in &m.columns {
        let Some(&rule) = rules.get(k) else { continue };
        let mut start: Option<i64> = None;
        for (i, &v) in col.iter().enumerate() {
            let row_t = t0 + i as i64 * STEP;
            let breach = v.is_finite() && rule.breached(v);
            match (start, breach) {
                (None, true) => start = Some(tick(row_t + rng.range(0, MIN))),
                (Some(s), false) => {
                    out.push(alert(k, s, tick(row_t + rng.range(0, MIN)), source));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push(alert(k, s, tick(t0 + n * STEP), source));
        }
    }
}

fn alert(k: &Key, start: i64, end: i64, source: Option<usize>) -> StormAlert {
    let score = if k.metric == "availability" { 1.0 } else { 0.7 };
    let msg = format!("{} {} {} crossed its threshold", k.node, k.metric, k.stat);
    let mut signal = Signal::new(
        SignalKind::Alert,
        alert_labels(k),
        start,
        score,
        Explanation::Text { message: msg },
    );
    signal.end = Some(end.max(start + 1));
    StormAlert { signal, source }
}

/// Merges alerts of one rule that overlap in time (the first source keeps the credit).
pub(crate) fn merge_overlaps(mut v: Vec<StormAlert>) -> Vec<StormAlert> {
    v.sort_by_key(|a| (a.signal.fingerprint, a.signal.start));
    let mut out: Vec<StormAlert> = Vec::with_capacity(v.len());
    for a in v {
        if let Some(last) = out.last_mut()
            && last.signal.fingerprint == a.signal.fingerprint
            && a.signal.start <= last.signal.end.unwrap_or(i64::MAX)
        {
            last.signal.end = last.signal.end.max(a.signal.end);
            continue;
        }
        out.push(a);
    }
    out.sort_by_key(|a| (a.signal.start, a.signal.fingerprint));
    out
}

/// Builds the storm. Returns the alerts (sorted by start), the case names and the topology.
pub fn build(
    dir: &Path,
    cfg: &StormConfig,
) -> Result<(Vec<StormAlert>, Vec<String>, Topology), ReadError> {
    let topo = petshop::read_graph(&dir.join("graph.csv"))?;
    let noissue = petshop::read_metrics(&dir.join("noissue/metrics.csv"))?;
    let rules = team_rules(&noissue, cfg.rules);
    let mut paths = petshop::cases(dir)?;
    if paths.is_empty() {
        return Err(ReadError {
            path: dir.display().to_string(),
            why: "no train/issue_*/metrics.csv or test/issue_*/metrics.csv".into(),
        });
    }
    let mut rng = Rng::new(cfg.seed);
    rng.shuffle(&mut paths);
    if cfg.cases > 0 {
        paths.truncate(cfg.cases);
    }
    let mut alerts = Vec::new();
    let mut names = Vec::new();
    let mut t0 = 0i64;
    let mut end = 0i64;
    for (i, p) in paths.iter().enumerate() {
        let m = petshop::read_metrics(&p.join("metrics.csv"))?;
        alerts_of(&m, &rules, (t0, cfg.eval_ms), &mut rng, Some(i), &mut alerts);
        end = end.max(t0 + m.times.len() as i64 * STEP);
        let split = p.parent().and_then(|s| s.file_name()).and_then(|s| s.to_str()).unwrap_or("");
        let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
        names.push(format!("{split}/{name}"));
        t0 += rng.range(5 * MIN, 20 * MIN);
    }
    // Background: noisy rules on a noissue stretch as long as the storm.
    let rows = ((end / STEP) as usize + 1).min(noissue.times.len());
    let offset = rng.range(0, (noissue.times.len() - rows) as i64) as usize;
    let stretch = Metrics {
        times: noissue.times[offset..offset + rows].to_vec(),
        columns: noissue
            .columns
            .iter()
            .map(|(k, c)| (k.clone(), c[offset..offset + rows].to_vec()))
            .collect(),
    };
    let mut candidates: Vec<(Key, f64)> = noissue
        .columns
        .iter()
        .filter(|(k, _)| k.metric == "latency")
        .filter_map(|(k, c)| normal_values(c).map(|v| (k.clone(), v[v.len() * 9 / 10])))
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    rng.shuffle(&mut candidates);
    let noisy: HashMap<Key, Rule> =
        candidates.into_iter().take(cfg.background).map(|(k, p90)| (k, Rule::Above(p90))).collect();
    alerts_of(&stretch, &noisy, (0, cfg.eval_ms), &mut rng, None, &mut alerts);
    Ok((merge_overlaps(alerts), names, topo))
}

pub(crate) fn score(assign: &[usize], alerts: &[StormAlert]) -> Grouping {
    let mut by: BTreeMap<usize, HashMap<Option<usize>, usize>> = BTreeMap::new();
    for (a, &g) in alerts.iter().zip(assign) {
        *by.entry(g).or_default().entry(a.source).or_default() += 1;
    }
    let n = alerts.len().max(1) as f64;
    let majority: usize = by.values().map(|m| m.values().copied().max().unwrap_or(0)).sum();
    Grouping {
        incidents: by.len(),
        compression: 1.0 - by.len() as f64 / n,
        purity: majority as f64 / n,
    }
}

/// The highest compression any grouping of `alerts` reaches at purity 1: one group per source.
pub(crate) fn best_compression(alerts: &[StormAlert]) -> f64 {
    best_compression_at(alerts, 1.0)
}

/// [`best_compression`] with each background rule (fingerprint) its own source.
pub(crate) fn best_compression_series_apart(alerts: &[StormAlert]) -> f64 {
    best_compression_series_apart_at(alerts, 1.0)
}

/// [`best_compression`] at purity ≥ `min_purity` (background one source, as the truth has it).
pub(crate) fn best_compression_at(alerts: &[StormAlert], min_purity: f64) -> f64 {
    ceiling_at_purity(alerts, |a| (a.source, 0), min_purity)
}

/// [`best_compression_series_apart`] at purity ≥ `min_purity`.
pub(crate) fn best_compression_series_apart_at(alerts: &[StormAlert], min_purity: f64) -> f64 {
    let key =
        |a: &StormAlert| (a.source, if a.source.is_none() { a.signal.fingerprint.0 } else { 0 });
    ceiling_at_purity(alerts, key, min_purity)
}

/// The highest compression any grouping of `alerts` reaches at purity ≥ `min_purity`, with
/// each distinct `key` a source: an oracle's bound (it knows every alert's source).
///
/// Exact: in a grouping of `g` groups at most `g` sources are a majority somewhere, so every
/// alert of the other sources is impure, at least the `s − g` smallest sources together. The
/// bound is reached by one group per source with the smallest sources folded into a large one
/// for as long as their alerts fit in the `(1 − min_purity) × alerts` that may be impure.
fn ceiling_at_purity(
    alerts: &[StormAlert],
    key: impl Fn(&StormAlert) -> (Option<usize>, u64),
    min_purity: f64,
) -> f64 {
    let mut keys: Vec<(Option<usize>, u64)> = alerts.iter().map(key).collect();
    keys.sort_unstable();
    let mut sizes: Vec<usize> = keys.chunk_by(|a, b| a == b).map(<[_]>::len).collect();
    sizes.sort_unstable();
    let n = alerts.len();
    // Impure alerts allowed (a hair of slack so that 0.95 × 20 counts as 19, not 18.999…).
    let budget = ((1.0 - min_purity) * n as f64 + 1e-9).floor().max(0.0) as usize;
    let (mut groups, mut impure) = (sizes.len(), 0);
    for &s in sizes.iter().take(sizes.len().saturating_sub(1)) {
        if impure + s > budget {
            break;
        }
        impure += s;
        groups -= 1;
    }
    1.0 - groups as f64 / n.max(1) as f64
}

/// What a replay measured besides the grouping.
#[derive(Debug, Clone, Default)]
pub(crate) struct Replay {
    /// Each alert's incident (numbered in order of opening; `usize::MAX` if none changed).
    pub assign: Vec<usize>,
    /// Seconds spent in the correlator (observe and tick).
    pub busy_s: f64,
    /// Time of each `observe` of a new alert, µs, in replay order.
    pub observe_us: Vec<f64>,
}

/// Replays `alerts` through `c` in time order: each start as an active signal, each end as
/// the same signal ended (ends first at the same instant). The correlator is ticked before an
/// event once `tick_ms` has passed since the last tick (0: before every event).
/// `each(done, total, c)` is called after every event.
pub(crate) fn replay(
    alerts: &[StormAlert],
    c: &mut Correlator,
    tick_ms: i64,
    mut each: impl FnMut(usize, usize, &Correlator),
) -> Replay {
    let mut events: Vec<(i64, u8, usize)> = Vec::with_capacity(alerts.len() * 2);
    for (i, a) in alerts.iter().enumerate() {
        events.push((a.signal.start, 1, i));
        if let Some(e) = a.signal.end {
            events.push((e, 0, i));
        }
    }
    events.sort_unstable();
    let mut ids: HashMap<u64, usize> = HashMap::new();
    let mut out = Replay { assign: vec![usize::MAX; alerts.len()], ..Replay::default() };
    let mut next_tick = i64::MIN;
    for (n, &(t, kind, i)) in events.iter().enumerate() {
        let mut s = alerts[i].signal.clone();
        let t0 = Instant::now();
        if t >= next_tick {
            c.tick(t);
            next_tick = t.saturating_add(tick_ms.max(0));
        }
        if kind == 1 {
            s.end = None;
            let o = Instant::now();
            let changes = c.observe(&s);
            out.observe_us.push(o.elapsed().as_secs_f64() * 1e6);
            if let Some(ch) = changes.first() {
                let k = ids.len();
                out.assign[i] = *ids.entry(ch.id().0).or_insert(k);
            }
        } else {
            c.observe(&s);
        }
        out.busy_s += t0.elapsed().as_secs_f64();
        // Nothing is stored here: incidents let go for the memory bound are dropped.
        drop(c.take_let_go());
        each(n + 1, events.len(), c);
    }
    out
}

/// Replays the storm through the correlator, ticking it before every event: each alert's
/// incident (by index).
pub fn correlate(alerts: &[StormAlert], cfg: Config, topo: Topology) -> Vec<usize> {
    replay(alerts, &mut Correlator::new(cfg, topo), 0, |_, _, _| {}).assign
}

/// Groups by time alone: a new group when an alert starts more than `window` after the
/// previous one.
pub fn time_only(alerts: &[StormAlert], window: i64) -> Vec<usize> {
    let mut g = 0;
    let mut last = i64::MIN;
    alerts
        .iter()
        .map(|a| {
            if last != i64::MIN && a.signal.start - last > window {
                g += 1;
            }
            last = a.signal.start;
            g
        })
        .collect()
}

/// Groups as Alertmanager's `group_by: [label]` does: alerts with the same value share a
/// group while the group is alive, that is while one of its alerts fires or ended less than
/// `linger` ago (Alertmanager keeps a resolved alert for its group interval); a start after
/// that opens a new group. Alerts without the label share one group per episode.
pub fn group_by(alerts: &[StormAlert], label: &str, linger: i64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..alerts.len()).collect();
    let key = |i: usize| alerts[i].signal.labels.get(label).unwrap_or("");
    order.sort_by(|&a, &b| {
        key(a).cmp(key(b)).then(alerts[a].signal.start.cmp(&alerts[b].signal.start))
    });
    let mut assign = vec![0; alerts.len()];
    let mut g = 0;
    let mut alive: Option<(&str, i64)> = None;
    for i in order {
        let s = &alerts[i].signal;
        let until = s.end.unwrap_or(i64::MAX).saturating_add(linger);
        match &mut alive {
            Some((k, u)) if *k == key(i) && s.start <= *u => *u = (*u).max(until),
            _ => {
                g += 1;
                alive = Some((key(i), until));
            }
        }
        assign[i] = g;
    }
    assign
}

/// Writes `start_min,end_min,service,metric,statistic,source,incident` rows (RFC 4180; minutes
/// from the storm's origin; source `-1` is background).
pub fn write_assignments<W: std::io::Write>(
    rows: &[(StormAlert, usize)],
    out: W,
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "start_min",
        "end_min",
        "service",
        "metric",
        "statistic",
        "source",
        "incident",
    ])?;
    let minutes = |t: i64| format!("{:.2}", t as f64 / MIN as f64);
    for (a, inc) in rows {
        let s = &a.signal;
        let l = |k: &str| s.labels.get(k).unwrap_or("").to_string();
        w.write_record([
            minutes(s.start),
            minutes(s.end.unwrap_or(s.start)),
            l("service"),
            l("metric"),
            l("statistic"),
            a.source.map_or(-1, |c| c as i64).to_string(),
            inc.to_string(),
        ])?;
    }
    w.flush()
}

/// The time-only window (whole seconds, up to an hour) with the highest compression at
/// purity ≥ `p`, and its grouping.
fn at_purity(alerts: &[StormAlert], p: f64) -> Option<(i64, Grouping)> {
    let mut best: Option<(i64, Grouping)> = None;
    for w in 0..=3600 {
        let g = score(&time_only(alerts, w * 1000), alerts);
        if g.purity >= p && best.is_none_or(|(_, b)| g.compression > b.compression) {
            best = Some((w, g));
        }
    }
    best
}

/// Purity at compression `c` on the line from `lo` to `hi` (`hi.compression >= c`).
/// Time alone with the smallest window (in whole `step_ms`, up to `steps` of them) that
/// compresses at least `c`, as (window in steps, grouping); and its purity interpolated to
/// exactly `c` between that window and the one before.
pub(crate) fn time_only_matched(
    alerts: &[StormAlert],
    c: f64,
    step_ms: i64,
    steps: i64,
) -> (Option<(f64, Grouping)>, Option<f64>) {
    let mut below: Option<Grouping> = None;
    let matched = (0..=steps).find_map(|w| {
        let g = score(&time_only(alerts, w * step_ms), alerts);
        if g.compression >= c {
            Some((w as f64, g))
        } else {
            below = Some(g);
            None
        }
    });
    (matched, matched.map(|(_, hi)| interpolate(below, hi, c)))
}

fn interpolate(lo: Option<Grouping>, hi: Grouping, c: f64) -> f64 {
    match lo {
        Some(lo) if hi.compression > lo.compression && c > lo.compression => {
            let f = (c - lo.compression) / (hi.compression - lo.compression);
            lo.purity + f.min(1.0) * (hi.purity - lo.purity)
        }
        _ => hi.purity,
    }
}

/// An SVG timeline of the storm: one row per alert (a bar from start to end), rows grouped by
/// the correlator's incident (grey separators, incidents in order of opening), each bar
/// coloured by its true source case (grey for background). An incident whose bars share one
/// colour is pure; mixed colours show what was merged wrongly.
pub fn svg(rows: &[(StormAlert, usize)], title: &str) -> String {
    use std::fmt::Write as _;
    let esc = auspex_core::text::escape_markup;
    let (w, pad, left, row) = (1100.0, 40.0, 70.0, 3.0_f64);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].1, rows[i].0.signal.start));
    let incidents = order.windows(2).filter(|p| rows[p[0]].1 != rows[p[1]].1).count() + 1;
    let gap = 2.0;
    let h = rows.len() as f64 * row + incidents as f64 * gap;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/><text x="{pad}" y="20">{}</text>"##,
        left + w + pad,
        h + 2.0 * pad + 20.0,
        esc(title)
    );
    let t0 = rows.iter().map(|r| r.0.signal.start).min().unwrap_or(0);
    let t1 = rows.iter().filter_map(|r| r.0.signal.end).max().unwrap_or(t0).max(t0 + 1);
    let x = |t: i64| left + (t - t0) as f64 / (t1 - t0) as f64 * w;
    let mut y = pad;
    let mut last: Option<usize> = None;
    for &i in &order {
        let (a, inc) = &rows[i];
        if last != Some(*inc) {
            if last.is_some() {
                y += gap;
            }
            let _ = write!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="4" y="{:.1}" font-size="9">#{inc}</text>"##,
                left + w,
                y + 8.0
            );
            last = Some(*inc);
        }
        let colour = match a.source {
            None => "#aaaaaa".to_string(),
            Some(c) => format!("hsl({:.0},70%,45%)", (c as f64 * 137.508) % 360.0),
        };
        let (x0, x1) = (x(a.signal.start), x(a.signal.end.unwrap_or(a.signal.start)));
        let _ = write!(
            s,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{} (source {}, incident {inc})</title></rect>"#,
            (x1 - x0).max(1.0),
            row - 0.5,
            esc(&signal_title(&a.signal)),
            a.source.map_or("background".to_string(), |c| c.to_string()),
        );
        y += row;
    }
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#888"/><text x="{left}" y="{2:.1}">0 min</text><text x="{1:.1}" y="{2:.1}" text-anchor="end">{3:.0} min</text><text x="{left}" y="{4:.1}">one row per alert, grouped by incident; colour = true source case (grey: background)</text></svg>"##,
        y + 4.0,
        left + w,
        y + 18.0,
        (t1 - t0) as f64 / MIN as f64,
        y + 34.0
    );
    s.push('\n');
    s
}

/// Builds and scores the storm.
pub fn run(dir: &Path, cfg: &StormConfig) -> Result<StormReport, ReadError> {
    let (alerts, cases, topo) = build(dir, cfg)?;
    let assign = correlate(&alerts, cfg.correlator.clone(), topo);
    let auspex = score(&assign, &alerts);
    let time_only_same = score(&time_only(&alerts, cfg.correlator.window_ms), &alerts);
    let (matched, _) = time_only_matched(&alerts, auspex.compression, MIN, 24 * 60);
    // Interpolated between whole seconds: between whole minutes the line runs below time
    // alone's curve where its windows are seconds wide (high purity), flattering Auspex.
    let interpolated = time_only_matched(&alerts, auspex.compression, 1_000, 24 * 3_600).1;
    let by_service = score(&group_by(&alerts, "service", 5 * MIN), &alerts);
    let span = alerts.iter().filter_map(|a| a.signal.end).max().unwrap_or(0)
        - alerts.first().map_or(0, |a| a.signal.start);
    Ok(StormReport {
        cases,
        alerts: alerts.len(),
        background_alerts: alerts.iter().filter(|a| a.source.is_none()).count(),
        span_min: span as f64 / MIN as f64,
        auspex,
        time_only: time_only_same,
        time_only_matched: matched,
        time_only_interpolated: interpolated,
        time_only_at_purity_95: at_purity(&alerts, 0.95),
        group_by_service: by_service,
        time_only_at_group_by_service: time_only_matched(
            &alerts,
            by_service.compression,
            1_000,
            3_600,
        )
        .1,
        group_by_alertname: score(&group_by(&alerts, "alertname", 5 * MIN), &alerts),
        best_compression: best_compression(&alerts),
        best_compression_series_apart: best_compression_series_apart(&alerts),
        best_compression_at_purity_95: best_compression_at(&alerts, 0.95),
        best_compression_at_purity_95_series_apart: best_compression_series_apart_at(&alerts, 0.95),
        assignments: alerts.into_iter().zip(assign).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(fp_name: &str, start: i64, end: i64, source: Option<usize>) -> StormAlert {
        let k = Key { node: fp_name.into(), metric: "latency".into(), stat: "p99".into() };
        alert(&k, start, end, source)
    }

    #[test]
    fn scoring_counts_majorities() {
        let alerts = vec![a("x", 0, 1, Some(0)), a("y", 0, 1, Some(0)), a("z", 0, 1, Some(1))];
        let g = score(&[0, 0, 0], &alerts);
        assert_eq!(g.incidents, 1);
        assert!((g.compression - 2.0 / 3.0).abs() < 1e-12);
        assert!((g.purity - 2.0 / 3.0).abs() < 1e-12);
        let g = score(&[0, 0, 1], &alerts);
        assert_eq!((g.incidents, g.purity), (2, 1.0));
    }

    #[test]
    fn group_by_keeps_a_group_while_it_fires_or_lingers() {
        // x fires 0-5, again at 8 (within 5 of its end: same group) and at 20 (a new group);
        // y is its own group.
        let v = vec![
            a("x", 0, 5, Some(0)),
            a("y", 1, 2, None),
            a("x", 8, 9, Some(1)),
            a("x", 20, 21, Some(1)),
        ];
        let g = group_by(&v, "service", 5);
        assert_eq!(g[0], g[2]);
        assert_ne!(g[0], g[1]);
        assert_ne!(g[2], g[3]);
        assert_eq!(score(&g, &v).incidents, 3);
        // Every storm alert has the same alertname per metric: one group for all that overlap.
        assert_eq!(score(&group_by(&v, "alertname", 5), &v).incidents, 2);
    }

    #[test]
    fn overlaps_of_one_rule_merge_and_time_only_splits_on_gaps() {
        let v = merge_overlaps(vec![
            a("x", 0, 10, Some(0)),
            a("x", 5, 20, Some(1)),
            a("x", 30, 40, Some(1)),
            a("y", 6, 9, None),
        ]);
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].signal.end, v[0].source), (Some(20), Some(0)));
        assert_eq!(time_only(&v, 6), vec![0, 0, 1]);
        assert_eq!(time_only(&v, 5), vec![0, 1, 2]);
        assert_eq!(time_only(&v, 100), vec![0, 0, 0]);
    }

    #[test]
    fn interpolation_is_linear_in_compression() {
        let g = |c: f64, p: f64| Grouping { incidents: 0, compression: c, purity: p };
        let hi = g(0.9, 0.5);
        assert!((interpolate(Some(g(0.8, 0.7)), hi, 0.85) - 0.6).abs() < 1e-12);
        assert!((interpolate(Some(g(0.8, 0.7)), hi, 0.9) - 0.5).abs() < 1e-12);
        assert_eq!(interpolate(None, hi, 0.85), 0.5);
    }

    #[test]
    fn the_timeline_has_a_bar_per_alert_grouped_by_incident() {
        let rows = vec![
            (a("x", 0, 10 * MIN, Some(0)), 0),
            (a("y", MIN, 5 * MIN, None), 1),
            (a("z", 2 * MIN, 8 * MIN, Some(0)), 0),
        ];
        let svg = svg(&rows, "storm <seed 1>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect x=").count(), 3);
        assert_eq!(svg.matches(">#").count(), 2, "one label per incident");
        assert!(svg.contains("storm &lt;seed 1&gt;") && svg.contains("#aaaaaa"));
        // Rows of incident 0 (x, z) come before incident 1 (y).
        let (px, pz, py) = (
            svg.find("x latency").unwrap(),
            svg.find("z latency").unwrap(),
            svg.find("y latency").unwrap(),
        );
        assert!(px < pz && pz < py, "{svg}");
    }

    #[test]
    fn the_ceilings_count_sources_and_background_rules() {
        let alerts = vec![
            a("x", 0, 1, Some(0)),
            a("y", 0, 1, Some(0)),
            a("z", 0, 1, Some(1)),
            a("n1", 0, 1, None),
            a("n1", 5, 6, None),
            a("n2", 0, 1, None),
        ];
        // Sources 0, 1 and background: 3 incidents for 6 alerts.
        assert!((best_compression(&alerts) - 0.5).abs() < 1e-12);
        // Background rules n1 and n2 apart: 4 incidents.
        assert!((best_compression_series_apart(&alerts) - (1.0 - 4.0 / 6.0)).abs() < 1e-12);
    }

    #[test]
    fn the_ceiling_at_a_purity_folds_the_smallest_sources_first() {
        // Sources: 0 × 10, 1 × 6, 2 × 3, 3 × 1; background: n1 × 2 (one rule).
        let mut alerts = Vec::new();
        for (src, k) in [(0, 10), (1, 6), (2, 3), (3, 1)] {
            for i in 0..k {
                alerts.push(a(&format!("s{src}-{i}"), 0, 1, Some(src)));
            }
        }
        alerts.push(a("n1", 0, 1, None));
        alerts.push(a("n1", 5, 6, None));
        let n = alerts.len() as f64; // 22
        // At purity 1 nothing may be folded: 5 groups.
        assert!((best_compression_at(&alerts, 1.0) - (1.0 - 5.0 / n)).abs() < 1e-12);
        assert!((best_compression_at(&alerts, 1.0) - best_compression(&alerts)).abs() < 1e-12);
        // 0.85 × 22 = 18.7: 3 alerts may be impure. Source 3 (1) and background (2) fold in,
        // source 2 (3 more) does not fit: 3 groups.
        assert!((best_compression_at(&alerts, 0.85) - (1.0 - 3.0 / n)).abs() < 1e-12);
        // 0.95 × 22 = 20.9: one impure alert, so only source 3 folds: 4 groups.
        assert!((best_compression_at(&alerts, 0.95) - (1.0 - 4.0 / n)).abs() < 1e-12);
        // Any purity: everything in one group.
        assert!((best_compression_at(&alerts, 0.0) - (1.0 - 1.0 / n)).abs() < 1e-12);
        // Exact budgets count: purity 20/22 allows two impure alerts (source 3 folds, the
        // background's two more do not fit: 4 groups), 19/22 allows three (3 groups).
        assert!((best_compression_at(&alerts, 20.0 / n) - (1.0 - 4.0 / n)).abs() < 1e-12);
        assert!((best_compression_at(&alerts, 19.0 / n) - (1.0 - 3.0 / n)).abs() < 1e-12);
        // The bound is reached: fold source 3 and the background into source 0 and score it.
        let assign: Vec<usize> = alerts
            .iter()
            .map(|x| match x.source {
                Some(3) | None => 0,
                Some(s) => s,
            })
            .collect();
        let g = score(&assign, &alerts);
        assert_eq!(g.incidents, 3);
        assert!(
            g.purity >= 0.85 && (g.compression - best_compression_at(&alerts, 0.85)).abs() < 1e-12
        );
        // Background rules apart: n1 is still one rule here, so the same figures.
        assert!(
            (best_compression_series_apart_at(&alerts, 0.85) - best_compression_at(&alerts, 0.85))
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut r = Rng::new(7);
        let xs: Vec<i64> = (0..100).map(|_| r.range(5, 9)).collect();
        assert!(xs.iter().all(|x| (5..=9).contains(x)));
        assert_eq!(
            xs,
            (0..100)
                .map({
                    let mut r = Rng::new(7);
                    move |_| r.range(5, 9)
                })
                .collect::<Vec<_>>()
        );
    }
}
