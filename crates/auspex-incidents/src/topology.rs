//! The service topology: which services call which. Read from a YAML (or JSON) file
//! `{services: [...], edges: [{from, to}]}`; later also derived from traces.
//!
//! Correlation treats an edge as undirected: a slow callee makes its callers slow, and a
//! failing caller can overload its callees, so either end may show the symptom first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

/// A topology file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("topology {path}: {why}")]
pub struct TopologyError {
    /// The file.
    pub path: String,
    /// What was wrong.
    pub why: String,
}

/// One call edge: `from` calls `to`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// The caller.
    pub from: String,
    /// The callee.
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    edges: Vec<Edge>,
}

/// Services and their neighbours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    adj: BTreeMap<String, BTreeSet<String>>,
    calls: BTreeSet<(String, String)>,
    /// Undirected neighbour pairs (an edge both ways counts once).
    links: usize,
}

impl Topology {
    /// A topology from a service list and call edges (services named only by edges are
    /// added).
    pub fn new(services: impl IntoIterator<Item = String>, edges: &[Edge]) -> Self {
        let mut t = Self::default();
        for s in services {
            t.adj.entry(s).or_default();
        }
        for e in edges {
            t.add_edge(&e.from, &e.to);
        }
        t
    }

    /// Adds the call edge `from` → `to` (e.g. learnt from traces); whether it is new.
    pub fn add_edge(&mut self, from: &str, to: &str) -> bool {
        if from == to {
            self.adj.entry(from.to_string()).or_default();
            return false;
        }
        if self.adj.entry(from.to_string()).or_default().insert(to.to_string()) {
            self.links += 1;
        }
        self.adj.entry(to.to_string()).or_default().insert(from.to_string());
        self.calls.insert((from.to_string(), to.to_string()))
    }

    /// The call edges `(from, to)`, sorted.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.calls.iter().map(|(a, b)| (a.as_str(), b.as_str()))
    }

    /// Every service, sorted.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.adj.keys().map(String::as_str)
    }

    /// Parses the YAML (JSON is YAML too) text of a topology file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let f: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        for (i, e) in f.edges.iter().enumerate() {
            if e.from.is_empty() || e.to.is_empty() {
                return Err(format!("edges[{i}]: `from` and `to` must be non-empty"));
            }
        }
        Ok(Self::new(f.services, &f.edges))
    }

    /// Reads a topology file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let err = |why: String| TopologyError { path: path.display().to_string(), why };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::parse(&text).map_err(err)
    }

    /// How many services `service` neighbours.
    pub fn degree(&self, service: &str) -> usize {
        self.adj.get(service).map_or(0, BTreeSet::len)
    }

    /// Whether `service` neighbours more than `factor` × the mean number of neighbours: a hub
    /// (a front door or a shared database) that many unrelated faults reach. `factor` ≤ 0:
    /// never.
    pub fn is_hub(&self, service: &str, factor: f64) -> bool {
        if factor <= 0.0 || self.adj.is_empty() {
            return false;
        }
        let mean = 2.0 * self.links as f64 / self.adj.len() as f64;
        self.degree(service) as f64 > factor * mean
    }

    /// The services `service` is directly connected to (in either direction).
    pub fn neighbours(&self, service: &str) -> impl Iterator<Item = &str> {
        self.adj.get(service).into_iter().flatten().map(String::as_str)
    }

    /// Whether `a` and `b` are directly connected (in either direction).
    pub fn adjacent(&self, a: &str, b: &str) -> bool {
        self.adj.get(a).is_some_and(|n| n.contains(b))
    }

    /// The services at most `hops` links from `service` (itself included), not passing
    /// through a service for which `hub` holds (a hub can be reached, not crossed), or `None`
    /// when the topology does not know `service`.
    pub fn within(
        &self,
        service: &str,
        hops: usize,
        hub: impl Fn(&str) -> bool,
    ) -> Option<BTreeSet<&str>> {
        let (start, _) = self.adj.get_key_value(service)?;
        let mut seen: BTreeSet<&str> = BTreeSet::from([start.as_str()]);
        let mut frontier = vec![start.as_str()];
        for _ in 0..hops {
            if frontier.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for s in frontier {
                for n in self.neighbours(s) {
                    if seen.insert(n) && !hub(n) {
                        next.push(n);
                    }
                }
            }
            frontier = next;
        }
        Some(seen)
    }

    /// Whether the topology knows `service`.
    pub fn contains(&self, service: &str) -> bool {
        self.adj.contains_key(service)
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// Whether there are no services.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }
}

/// Test fixture: `front` calls `svc0..svc{n-1}`, each of which calls its own `db{i}`.
#[cfg(test)]
pub(crate) fn front_door(n: usize) -> Topology {
    let mut t = Topology::default();
    for i in 0..n {
        t.add_edge("front", &format!("svc{i}"));
        t.add_edge(&format!("svc{i}"), &format!("db{i}"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_parse_and_edges_are_undirected() {
        let t = Topology::parse(
            "services: [web, api, db, cache]\nedges:\n  - {from: web, to: api}\n  - from: api\n    to: db\n",
        )
        .unwrap();
        assert!(t.adjacent("web", "api") && t.adjacent("api", "web"));
        assert!(t.adjacent("db", "api"));
        assert!(!t.adjacent("web", "db"));
        assert!(!t.adjacent("cache", "web"));
        assert_eq!((t.degree("api"), t.degree("cache"), t.degree("nope")), (2, 0, 0));
        assert_eq!(t.len(), 4);
        let j = Topology::parse(r#"{"edges":[{"from":"a","to":"b"}]}"#).unwrap();
        assert!(j.adjacent("b", "a"));
    }

    #[test]
    fn a_hub_has_far_more_neighbours_than_the_mean() {
        // A front door calling 8 services, each calling its own store: 16 links, 17 services.
        let mut t = front_door(8);
        t.add_edge("svc0", "front"); // the same link the other way: not a new one
        assert_eq!(t.degree("front"), 8);
        // Mean degree 32 / 17 ≈ 1.9: front (8) is a hub at factor 4, svc0 (2) is not.
        assert!(t.is_hub("front", 4.0));
        assert!(!t.is_hub("svc0", 4.0) && !t.is_hub("db0", 4.0));
        assert!(!t.is_hub("front", 5.0) && !t.is_hub("front", 0.0));
        // A small chain has no hub.
        let c = Topology::parse("edges: [{from: web, to: api}, {from: api, to: db}]").unwrap();
        assert!(!c.is_hub("api", 4.0));
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        assert!(Topology::parse("edges: [{from: a}]").unwrap_err().contains("to"));
        assert!(Topology::parse("edges: [{from: a, to: b, weight: 3}]").is_err());
        assert!(Topology::parse("edges: [{from: '', to: b}]").unwrap_err().contains("non-empty"));
        assert!(Topology::parse("services: 7").is_err());
    }
}
