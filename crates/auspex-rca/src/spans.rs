//! The service graph from spans, and RED series (rate, errors, duration) per service and per
//! call edge, in fixed buckets of span end time.
//!
//! - A span whose parent has not arrived is kept as a root; when the parent arrives it is
//!   linked under it and its call edge counted then.
//! - A link that would close a loop of parent ids is refused and counted in `cycles`.
//! - Memory is bounded: at most `max_spans` spans are remembered (oldest first out; a late
//!   child of a forgotten parent stays a root), and RED buckets older than two buckets behind
//!   the newest span are emitted and dropped (later spans for them are counted in `late`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use auspex_ingest::otlp::{Span, kind};

use crate::CallGraph;

type Key = (u128, u64);
/// One RED bucket: per service, and per (caller, callee) edge.
type Bucket = (BTreeMap<String, Red>, BTreeMap<(String, String), Red>);

#[derive(Debug, Clone)]
struct Node {
    service: String,
    parent: Option<u64>,
    linked: bool,
    end_ns: u64,
    dur_ns: u64,
    error: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Red {
    count: u64,
    errors: u64,
    dur_ns: u128,
}

impl Red {
    fn add(&mut self, dur_ns: u64, error: bool) {
        self.count += 1;
        self.errors += u64::from(error);
        self.dur_ns += u128::from(dur_ns);
    }
}

/// One point of a RED series: its labels (with `__name__`), time (ms) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct RedPoint {
    /// Labels, `__name__` first.
    pub labels: Vec<(String, String)>,
    /// Bucket start, Unix ms.
    pub time_ms: i64,
    /// The value.
    pub value: f64,
}

/// Counters of the graph builder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Spans taken.
    pub spans: u64,
    /// Spans kept as roots because their parent had not arrived (at that time).
    pub orphans: u64,
    /// Orphans linked later, when their parent arrived.
    pub relinked: u64,
    /// Links refused because they would close a loop.
    pub cycles: u64,
    /// Spans forgotten for the memory bound.
    pub evicted: u64,
    /// Spans that arrived for a bucket already emitted (not in the RED series).
    pub late: u64,
    /// Duplicate spans (same trace and span id) ignored.
    pub duplicates: u64,
    /// Spans of services beyond the service limit, ignored.
    pub over_limit: u64,
}

/// The service graph builder.
#[derive(Debug)]
pub struct ServiceGraph {
    max_spans: usize,
    max_services: usize,
    bucket_ns: u64,
    spans: HashMap<Key, Node>,
    order: VecDeque<Key>,
    waiting: HashMap<Key, Vec<u64>>,
    edges: BTreeMap<(String, String), u64>,
    services: BTreeMap<String, u64>,
    buckets: BTreeMap<u64, Bucket>,
    emitted_before: u64,
    max_end: u64,
    /// Counters.
    pub counts: Counts,
}

impl ServiceGraph {
    /// A builder remembering at most `max_spans` spans, with RED buckets of `bucket_ms`, and
    /// at most 10,000 services (see [`ServiceGraph::with_max_services`]).
    pub fn new(max_spans: usize, bucket_ms: u64) -> Self {
        Self {
            max_spans: max_spans.max(1),
            max_services: 10_000,
            bucket_ns: bucket_ms.max(1) * 1_000_000,
            spans: HashMap::new(),
            order: VecDeque::new(),
            waiting: HashMap::new(),
            edges: BTreeMap::new(),
            services: BTreeMap::new(),
            buckets: BTreeMap::new(),
            emitted_before: 0,
            max_end: 0,
            counts: Counts::default(),
        }
    }

    /// Sets the most services tracked (edges are then at most its square, RED series at most
    /// 3 per service and per edge); spans of further services are ignored and counted.
    pub fn with_max_services(mut self, n: usize) -> Self {
        self.max_services = n.max(1);
        self
    }

    /// The call graph seen so far.
    pub fn call_graph(&self) -> CallGraph {
        let mut g = CallGraph::new();
        for s in self.services.keys() {
            g.add_node(s);
        }
        for (a, b) in self.edges.keys() {
            g.add_edge(a, b);
        }
        g
    }

    /// Edges with their call counts.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.edges.iter().map(|((a, b), n)| (a.as_str(), b.as_str(), *n))
    }

    /// Services with their span counts.
    pub fn services(&self) -> impl Iterator<Item = (&str, u64)> {
        self.services.iter().map(|(s, n)| (s.as_str(), *n))
    }

    /// Spans remembered now.
    pub fn remembered(&self) -> usize {
        self.spans.len()
    }

    /// Takes spans; returns the call edges seen for the first time.
    pub fn add(&mut self, spans: &[Span]) -> Vec<(String, String)> {
        let mut new_edges = Vec::new();
        for s in spans {
            self.add_one(s, &mut new_edges);
        }
        new_edges
    }

    fn add_one(&mut self, s: &Span, new_edges: &mut Vec<(String, String)>) {
        let key = (s.trace_id, s.span_id);
        if self.spans.contains_key(&key) {
            self.counts.duplicates += 1;
            return;
        }
        if !self.services.contains_key(&s.service) && self.services.len() >= self.max_services {
            self.counts.over_limit += 1;
            return;
        }
        self.counts.spans += 1;
        *self.services.entry(s.service.clone()).or_default() += 1;
        let node = Node {
            service: s.service.clone(),
            parent: s.parent,
            linked: false,
            end_ns: s.end_ns,
            dur_ns: s.end_ns.saturating_sub(s.start_ns),
            error: s.error,
        };
        self.spans.insert(key, node);
        self.order.push_back(key);
        // Entry spans count for their service's RED series.
        let entry = matches!(s.kind, kind::SERVER | kind::CONSUMER) || s.parent.is_none();
        if entry {
            self.red_service(&s.service, s.end_ns, s.end_ns.saturating_sub(s.start_ns), s.error);
        }
        match s.parent {
            Some(p) if p == s.span_id => self.counts.cycles += 1,
            Some(p) if self.spans.contains_key(&(s.trace_id, p)) => {
                self.link(key, (s.trace_id, p), new_edges);
            }
            Some(p) => {
                self.counts.orphans += 1;
                self.waiting.entry((s.trace_id, p)).or_default().push(s.span_id);
            }
            None => {}
        }
        // Children that arrived first.
        if let Some(children) = self.waiting.remove(&key) {
            for c in children {
                let ck = (s.trace_id, c);
                if self.spans.contains_key(&ck) {
                    self.counts.relinked += 1;
                    self.link(ck, key, new_edges);
                }
            }
        }
        while self.spans.len() > self.max_spans {
            self.evict_oldest();
        }
        self.max_end = self.max_end.max(s.end_ns);
    }

    /// Whether `parent` descends from `child` (linking would close a loop).
    fn would_loop(&self, child: Key, parent: Key) -> bool {
        let mut cur = Some(parent);
        for _ in 0..1024 {
            let Some(k) = cur else { return false };
            if k == child {
                return true;
            }
            cur = self.spans.get(&k).filter(|n| n.linked).and_then(|n| n.parent.map(|p| (k.0, p)));
        }
        true
    }

    fn link(&mut self, child: Key, parent: Key, new_edges: &mut Vec<(String, String)>) {
        if self.would_loop(child, parent) {
            self.counts.cycles += 1;
            return;
        }
        let (ps, (cs, end, dur, err)) = match (self.spans.get(&parent), self.spans.get(&child)) {
            (Some(p), Some(c)) => {
                (p.service.clone(), (c.service.clone(), c.end_ns, c.dur_ns, c.error))
            }
            _ => return,
        };
        if let Some(c) = self.spans.get_mut(&child) {
            c.linked = true;
        }
        if ps != cs {
            let e = self.edges.entry((ps.clone(), cs.clone())).or_default();
            if *e == 0 {
                new_edges.push((ps.clone(), cs.clone()));
            }
            *e += 1;
            self.red_edge(&ps, &cs, end, dur, err);
        }
    }

    fn evict_oldest(&mut self) {
        let Some(k) = self.order.pop_front() else { return };
        if let Some(n) = self.spans.remove(&k)
            && !n.linked
            && let Some(p) = n.parent
            && let Some(w) = self.waiting.get_mut(&(k.0, p))
        {
            w.retain(|&c| c != k.1);
            if w.is_empty() {
                self.waiting.remove(&(k.0, p));
            }
        }
        self.counts.evicted += 1;
    }

    fn bucket(&mut self, end_ns: u64) -> Option<u64> {
        let b = end_ns - end_ns % self.bucket_ns;
        if b < self.emitted_before {
            self.counts.late += 1;
            return None;
        }
        Some(b)
    }

    fn red_service(&mut self, svc: &str, end_ns: u64, dur: u64, err: bool) {
        if let Some(b) = self.bucket(end_ns) {
            self.buckets.entry(b).or_default().0.entry(svc.to_string()).or_default().add(dur, err);
        }
    }

    fn red_edge(&mut self, a: &str, b: &str, end_ns: u64, dur: u64, err: bool) {
        if let Some(k) = self.bucket(end_ns) {
            let e = &mut self.buckets.entry(k).or_default().1;
            e.entry((a.to_string(), b.to_string())).or_default().add(dur, err);
        }
    }

    /// Emits the RED points of buckets that ended two buckets before the newest span (or all,
    /// with `all`), and forgets them.
    pub fn take_red(&mut self, all: bool) -> Vec<RedPoint> {
        let horizon = if all { u64::MAX } else { self.max_end.saturating_sub(2 * self.bucket_ns) };
        self.take_red_until(horizon)
    }

    /// Emits the RED points of buckets ending at or before `horizon` ns (e.g. wall clock minus
    /// two buckets, so quiet services still get their last points), and forgets them.
    pub fn take_red_until(&mut self, horizon: u64) -> Vec<RedPoint> {
        let mut out = Vec::new();
        let secs = self.bucket_ns as f64 / 1e9;
        while let Some((&b, _)) = self.buckets.first_key_value() {
            if b + self.bucket_ns > horizon {
                break;
            }
            let Some((_, (svcs, edges))) = self.buckets.pop_first() else { break };
            let t = (b / 1_000_000) as i64;
            let mut push = |name: &str, labels: &[(&str, &str)], v: f64| {
                let mut l = vec![("__name__".to_string(), name.to_string())];
                l.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                out.push(RedPoint { labels: l, time_ms: t, value: v });
            };
            for (s, r) in &svcs {
                let l = [("service", s.as_str())];
                push("auspex_service_rate", &l, r.count as f64 / secs);
                push("auspex_service_error_ratio", &l, r.errors as f64 / r.count.max(1) as f64);
                push(
                    "auspex_service_duration_ms",
                    &l,
                    r.dur_ns as f64 / r.count.max(1) as f64 / 1e6,
                );
            }
            for ((a, c), r) in &edges {
                let l = [("caller", a.as_str()), ("service", c.as_str())];
                push("auspex_edge_rate", &l, r.count as f64 / secs);
                push("auspex_edge_error_ratio", &l, r.errors as f64 / r.count.max(1) as f64);
                push("auspex_edge_duration_ms", &l, r.dur_ns as f64 / r.count.max(1) as f64 / 1e6);
            }
            self.emitted_before = b + self.bucket_ns;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u128 = 0xabc;
    const S: u64 = 1_000_000_000;

    fn span(id: u64, parent: Option<u64>, svc: &str, end_s: u64) -> Span {
        Span {
            trace_id: T,
            span_id: id,
            parent,
            service: svc.into(),
            name: "op".into(),
            kind: kind::SERVER,
            start_ns: end_s * S - S / 10,
            end_ns: end_s * S,
            error: svc == "db",
        }
    }

    #[test]
    fn out_of_order_spans_are_relinked() {
        let mut g = ServiceGraph::new(100, 10_000);
        // Grandchild first, then child, then root.
        assert!(g.add(&[span(3, Some(2), "db", 100)]).is_empty());
        assert_eq!(g.counts.orphans, 1);
        let e = g.add(&[span(2, Some(1), "api", 100)]);
        assert_eq!(e, vec![("api".to_string(), "db".to_string())]);
        let e = g.add(&[span(1, None, "web", 100)]);
        assert_eq!(e, vec![("web".to_string(), "api".to_string())]);
        assert_eq!(g.counts.relinked, 2);
        let cg = g.call_graph();
        assert_eq!(cg.edges().collect::<Vec<_>>(), vec![("api", "db"), ("web", "api")]);
        // The same span again is a duplicate, not a second call.
        g.add(&[span(2, Some(1), "api", 100)]);
        assert_eq!(g.counts.duplicates, 1);
        assert_eq!(g.edges().find(|e| e.0 == "web").unwrap().2, 1);
    }

    #[test]
    fn loops_are_refused_and_counted() {
        let mut g = ServiceGraph::new(100, 10_000);
        g.add(&[span(1, Some(1), "a", 1)]);
        assert_eq!(g.counts.cycles, 1, "its own parent");
        // 10 -> 11 -> 12 -> 10.
        g.add(&[
            span(10, Some(12), "a", 1),
            span(11, Some(10), "b", 1),
            span(12, Some(11), "c", 1),
        ]);
        assert_eq!(g.counts.cycles, 2);
        assert_eq!(g.edges().count(), 2, "two of the three links stand");
    }

    #[test]
    fn red_series_per_service_and_edge_and_memory_bound() {
        let mut g = ServiceGraph::new(3, 10_000);
        g.add(&[span(1, None, "web", 5), span(2, Some(1), "db", 6), span(3, Some(1), "db", 7)]);
        g.add(&[span(4, None, "web", 45)]); // moves time on: the first bucket closes
        assert_eq!(g.remembered(), 3, "bounded");
        assert_eq!(g.counts.evicted, 1);
        let pts = g.take_red(false);
        let get = |name: &str, svc: &str| {
            pts.iter()
                .find(|p| {
                    p.labels[0].1 == name
                        && p.labels.iter().any(|(k, v)| k == "service" && v == svc)
                })
                .map(|p| p.value)
        };
        assert_eq!(get("auspex_service_rate", "web"), Some(0.1), "1 span / 10 s");
        assert_eq!(get("auspex_service_error_ratio", "db"), Some(1.0));
        assert_eq!(get("auspex_edge_rate", "db"), Some(0.2));
        assert!((get("auspex_service_duration_ms", "web").unwrap() - 100.0).abs() < 1e-9);
        assert!(pts.iter().all(|p| p.time_ms == 0));
        // Services beyond the limit are ignored and counted.
        let mut small = ServiceGraph::new(10, 10_000).with_max_services(2);
        small.add(&[span(1, None, "a", 1), span(2, None, "b", 1), span(3, None, "c", 1)]);
        assert_eq!((small.services().count(), small.counts.over_limit), (2, 1));
        // A span for an emitted bucket is late.
        g.add(&[span(9, None, "web", 2)]);
        assert_eq!(g.counts.late, 1);
        assert_eq!(g.take_red(true).len(), 3, "the rest on demand");
    }
}
