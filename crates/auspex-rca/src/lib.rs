//! Root-cause ranking (M5/M7), pure and deterministic.
//!
//! Given, per service, the series observed around an incident (a reference of normal values
//! and the values since the onset), the call graph, and change events, [`rank`] orders the
//! services by how likely each is the cause, with its evidence and a sentence for people.
//!
//! The score of a service `s` (one configuration for all data):
//!
//! ```text
//! own(s)       = max over its series of the robust change z = (value − median) / IQR of the
//!                reference, over the values since the onset, in the "worse" direction
//!                (up for latency, errors, load; down for availability), floored at 0
//! score(s)     = ln(1 + own(s))                    its own anomaly
//!              + Σ over its direct callers c: ln(1 + own(c))   the symptoms it explains
//!              + 1 if a change event hit s in the hour before the onset
//! ```
//!
//! Faults travel against the call direction (a slow callee makes its callers slow), so a
//! service whose callers are anomalous too explains them, and ranks above them. Services are
//! ranked first; within each, its series by z ([`Candidate::evidence`]).

use std::collections::{BTreeMap, BTreeSet};

use auspex_core::time::format_rfc3339;

pub mod baseline;
pub mod spans;

/// A directed call graph: `calls[a]` holds the services `a` calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallGraph {
    calls: BTreeMap<String, BTreeSet<String>>,
    callers: BTreeMap<String, BTreeSet<String>>,
}

impl CallGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service.
    pub fn add_node(&mut self, n: &str) {
        self.calls.entry(n.to_string()).or_default();
        self.callers.entry(n.to_string()).or_default();
    }

    /// Adds the edge `from` calls `to` (self-calls are ignored).
    pub fn add_edge(&mut self, from: &str, to: &str) {
        self.add_node(from);
        self.add_node(to);
        if from != to {
            self.calls.entry(from.to_string()).or_default().insert(to.to_string());
            self.callers.entry(to.to_string()).or_default().insert(from.to_string());
        }
    }

    /// The services `n` calls.
    pub fn callees(&self, n: &str) -> impl Iterator<Item = &str> {
        self.calls.get(n).into_iter().flat_map(|s| s.iter().map(String::as_str))
    }

    /// The services that call `n`.
    pub fn callers(&self, n: &str) -> impl Iterator<Item = &str> {
        self.callers.get(n).into_iter().flat_map(|s| s.iter().map(String::as_str))
    }

    /// Every service, sorted.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.calls.keys().map(String::as_str)
    }

    /// Every edge `(from, to)`, sorted.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.calls.iter().flat_map(|(a, bs)| bs.iter().map(move |b| (a.as_str(), b.as_str())))
    }
}

/// Which way is bad for a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    /// Higher is worse (latency, errors, load).
    Up,
    /// Lower is worse (availability, throughput of a sink).
    Down,
}

/// One series of one service around an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The service.
    pub service: String,
    /// The series, for people (e.g. `latency p99`).
    pub series: String,
    /// Which way is bad.
    pub worse: Worse,
    /// Normal values (before the onset); NaNs are ignored.
    pub reference: Vec<f64>,
    /// `(time ms, value)` since the onset; NaNs are ignored.
    pub window: Vec<(i64, f64)>,
}

/// A change event (deploy, config, flag) on a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// When, ms.
    pub time: i64,
    /// The service.
    pub service: String,
    /// For people: `deploy v42`.
    pub what: String,
}

/// One piece of evidence: a series that moved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    /// The series.
    pub series: String,
    /// Robust change, in IQRs of the reference, in the worse direction.
    pub z: f64,
    /// When it moved: first at or above `Config::anomalous_z`, else when it was worst (ms).
    pub time: i64,
}

/// A ranked candidate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// The service.
    pub service: String,
    /// Its score (higher: more likely the cause).
    pub score: f64,
    /// Its own anomaly, `max z` (0 when nothing moved).
    pub own: f64,
    /// Anomalous callers it explains.
    pub explains: Vec<String>,
    /// Change events on it before the onset.
    pub changes: Vec<String>,
    /// Its series, most changed first (only those with z > 0).
    pub evidence: Vec<Evidence>,
    /// One sentence for people.
    pub explanation: String,
}

/// Ranking settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// A change event this long before the onset (or after it) counts.
    pub change_lookback_ms: i64,
    /// Score added for such a change event.
    pub change_bonus: f64,
    /// A service counts as anomalous (for explanations) from this z.
    pub anomalous_z: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self { change_lookback_ms: 3_600_000, change_bonus: 1.0, anomalous_z: 3.0 }
    }
}

/// Median and IQR (Python's `statistics.quantiles(n=4)`, exclusive method) of the finite
/// values; `None` for fewer than 3 values or no variation. A zero IQR falls back to the
/// population standard deviation.
pub fn robust(values: &[f64]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 3 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    if v[0] == v[v.len() - 1] {
        return None;
    }
    let q = baseline::quartiles(&v);
    let median = baseline::median_sorted(&v);
    let mut scale = q.2 - q.0;
    if scale <= 0.0 {
        scale = baseline::pstdev(&v);
    }
    (scale > 0.0).then_some((median, scale))
}

/// The robust change of one observation: its largest z (floored at 0) and when it moved:
/// the first time z reached `from`, else the time of the largest z.
pub fn change(o: &Observation, from: f64) -> Option<(f64, i64)> {
    let (c, s) = robust(&o.reference)?;
    let mut best: Option<(f64, i64)> = None;
    let mut first: Option<i64> = None;
    for &(t, v) in &o.window {
        if !v.is_finite() {
            continue;
        }
        let z = match o.worse {
            Worse::Up => (v - c) / s,
            Worse::Down => (c - v) / s,
        };
        if z >= from && first.is_none_or(|f| t < f) {
            first = Some(t);
        }
        if best.is_none_or(|b| z > b.0) {
            best = Some((z, t));
        }
    }
    best.map(|(z, t)| (z.max(0.0), first.unwrap_or(t)))
}

fn fmt_z(z: f64) -> String {
    if z >= 100.0 { format!("{z:.0}") } else { format!("{z:.1}") }
}

fn hhmm(ms: i64) -> String {
    let s = format_rfc3339(ms);
    s.get(11..16).unwrap_or(&s).to_string()
}

/// Ranks the services of `graph` and those observed. `symptom` (service, time) is what the
/// incident is about, used in explanations; `onset` is when it started.
pub fn rank(
    obs: &[Observation],
    graph: &CallGraph,
    changes: &[ChangeEvent],
    symptom: Option<(&str, i64)>,
    onset: i64,
    cfg: &Config,
) -> Vec<Candidate> {
    let mut evidence: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
    for o in obs {
        let e = evidence.entry(o.service.clone()).or_default();
        if let Some((z, time)) = change(o, cfg.anomalous_z) {
            e.push(Evidence { series: o.series.clone(), z, time });
        }
    }
    // rank_evidence drops the series that did not move (z = 0).
    rank_evidence(evidence, graph, changes, symptom, onset, cfg)
}

/// [`rank`] from evidence already scored (e.g. the signals of an incident, whose detector
/// deviations are robust z already): service → its moved series.
pub fn rank_evidence(
    mut evidence: BTreeMap<String, Vec<Evidence>>,
    graph: &CallGraph,
    changes: &[ChangeEvent],
    symptom: Option<(&str, i64)>,
    onset: i64,
    cfg: &Config,
) -> Vec<Candidate> {
    for ev in evidence.values_mut() {
        ev.retain(|e| e.z.is_finite() && e.z > 0.0);
        ev.sort_by(|a, b| b.z.total_cmp(&a.z).then_with(|| a.series.cmp(&b.series)));
    }
    let own = |s: &str| evidence.get(s).and_then(|e| e.first()).map_or(0.0, |e| e.z);
    let mut services: BTreeSet<&str> = graph.nodes().collect();
    services.extend(evidence.keys().map(String::as_str));
    let mut out: Vec<Candidate> = services
        .iter()
        .map(|&s| {
            let mine = own(s);
            let mut score = mine.ln_1p();
            let mut explains = Vec::new();
            for c in graph.callers(s) {
                let z = own(c);
                score += z.ln_1p();
                if z >= cfg.anomalous_z {
                    explains.push(c.to_string());
                }
            }
            let hits: Vec<&ChangeEvent> = changes
                .iter()
                .filter(|e| {
                    e.service == s
                        && e.time <= onset + cfg.change_lookback_ms / 12
                        && onset - e.time <= cfg.change_lookback_ms
                })
                .collect();
            if !hits.is_empty() {
                score += cfg.change_bonus;
            }
            let ev = evidence.get(s).cloned().unwrap_or_default();
            let explanation = explain(s, &ev, &explains, &hits, symptom);
            Candidate {
                service: s.to_string(),
                score,
                own: mine,
                explains,
                changes: hits.iter().map(|e| format!("{} at {}", e.what, hhmm(e.time))).collect(),
                evidence: ev,
                explanation,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| b.own.total_cmp(&a.own))
            .then_with(|| a.service.cmp(&b.service))
    });
    out
}

fn explain(
    s: &str,
    ev: &[Evidence],
    explains: &[String],
    hits: &[&ChangeEvent],
    symptom: Option<(&str, i64)>,
) -> String {
    let mut parts = Vec::new();
    match ev.first() {
        Some(e) => {
            let mut p = format!("{s} {} rose {} IQR at {}", e.series, fmt_z(e.z), hhmm(e.time));
            if let Some((sym, t)) = symptom
                && sym != s
            {
                let lead = (t - e.time) / 60_000;
                if lead > 0 {
                    p.push_str(&format!(", {lead} min before {sym}"));
                } else if lead < 0 {
                    p.push_str(&format!(", {} min after {sym}", -lead));
                } else {
                    p.push_str(&format!(", with {sym}"));
                }
            }
            parts.push(p);
        }
        None => parts.push(format!("{s}: no series moved")),
    }
    if !explains.is_empty() {
        let n = explains.len();
        let list = explains.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = if n > 3 { format!(" and {} more", n - 3) } else { String::new() };
        parts.push(format!(
            "explains anomalous caller{} {list}{more}",
            if n == 1 { "" } else { "s" }
        ));
    }
    for h in hits {
        parts.push(format!("{} at {}", h.what, hhmm(h.time)));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests;
