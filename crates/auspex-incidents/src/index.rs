//! Per-incident lookup of members by group-label value and by service, so finding the incident
//! a signal relates to costs O(labels + neighbours) per open incident instead of a scan of
//! every member (an incident holds up to `max_members`). Derived data: never stored, rebuilt
//! from the members when an incident is restored, merged or split.

use auspex_core::IncidentId;
use foldhash::{HashMap, HashSet};

use crate::Member;

/// Member starts of one incident, keyed for the relations the correlator asks about.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberIndex {
    /// The latest member start.
    pub max_start: Option<i64>,
    /// The incident's opening as registered in the [`Lookup`].
    opened: Option<i64>,
    /// Whether a service of the incident is unknown to the topology, as of (the incident's
    /// number of services, the topology's); both only grow, so equal counts mean the same sets.
    unknown: std::cell::Cell<Option<(usize, usize, bool)>>,
    /// Per group label (in `Config::group_labels` order): value → member starts.
    labels: Vec<HashMap<String, Vec<i64>>>,
    /// Service → member starts.
    services: HashMap<String, Vec<i64>>,
}

impl MemberIndex {
    /// The index of `members`.
    pub fn of<'a>(
        members: impl IntoIterator<Item = &'a Member>,
        group_labels: &[String],
        service_label: &str,
    ) -> Self {
        let mut ix = Self::default();
        for m in members {
            ix.add(m, group_labels, service_label);
        }
        ix
    }

    /// Adds one member.
    pub fn add(&mut self, m: &Member, group_labels: &[String], service_label: &str) {
        self.max_start = Some(self.max_start.map_or(m.start, |t| t.max(m.start)));
        if self.labels.len() < group_labels.len() {
            self.labels.resize_with(group_labels.len(), HashMap::default);
        }
        for (i, l) in group_labels.iter().enumerate() {
            if let Some(v) = m.labels.get(l) {
                self.labels[i].entry(v.to_string()).or_default().push(m.start);
            }
        }
        if let Some(v) = m.labels.get(service_label) {
            self.services.entry(v.to_string()).or_default().push(m.start);
        }
    }

    /// Whether one of `services` (the incident's, which only grow) is unknown to `topo`
    /// (remembered until either grows).
    pub fn has_unknown(
        &self,
        services: &std::collections::BTreeSet<String>,
        topo: &crate::Topology,
    ) -> bool {
        let key = (services.len(), topo.len());
        if let Some((n, t, v)) = self.unknown.get()
            && (n, t) == key
        {
            return v;
        }
        let v = services.iter().any(|x| !topo.contains(x));
        self.unknown.set(Some((key.0, key.1, v)));
        v
    }

    /// The latest start in `lo..=hi` of a member whose group label `i` has value `v`.
    pub fn label_latest(&self, i: usize, v: &str, lo: i64, hi: i64) -> Option<i64> {
        latest(self.labels.get(i)?.get(v)?, lo, hi)
    }

    /// The latest start in `lo..=hi` of a member of service `svc`.
    pub fn service_latest(&self, svc: &str, lo: i64, hi: i64) -> Option<i64> {
        latest(self.services.get(svc)?, lo, hi)
    }
}

fn latest(starts: &[i64], lo: i64, hi: i64) -> Option<i64> {
    starts.iter().copied().filter(|t| (lo..=hi).contains(t)).max()
}

/// Which incidents in memory a new signal could relate to at all, so finding its incident
/// costs O(candidates) instead of a look at every incident held: those opened within a burst
/// of it (co-onset), and those with a member sharing one of its group-label values or on one
/// of its neighbours' services. Derived from the member indexes; kept in step by
/// [`Lookup::add`] (a member joined, or an incident's opening moved) and [`Lookup::remove`]
/// (before an incident is reindexed or let go).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Lookup {
    /// (opened, incident), as registered.
    by_opened: std::collections::BTreeSet<(i64, IncidentId)>,
    /// Per group label: value → incidents with a member having it.
    labels: Vec<HashMap<String, HashSet<IncidentId>>>,
    /// Service → incidents with a member of it.
    services: HashMap<String, HashSet<IncidentId>>,
}

impl Lookup {
    /// Registers incident `id` (opened at `opened`) under `m`'s keys; `ix` is its member index
    /// (whose `opened` is moved to `opened`).
    pub fn add(
        &mut self,
        id: IncidentId,
        ix: &mut MemberIndex,
        opened: i64,
        m: Option<&Member>,
        group_labels: &[String],
        service_label: &str,
    ) {
        self.set_opened(id, ix, opened);
        let Some(m) = m else { return };
        if self.labels.len() < group_labels.len() {
            self.labels.resize_with(group_labels.len(), HashMap::default);
        }
        for (i, l) in group_labels.iter().enumerate() {
            if let Some(v) = m.labels.get(l) {
                set(&mut self.labels[i], v, id);
            }
        }
        if let Some(v) = m.labels.get(service_label) {
            set(&mut self.services, v, id);
        }
    }

    /// Registers incident `id` (opened at `opened`) under every key of its member index `ix`
    /// (which holds exactly its members' keys).
    pub fn add_all(&mut self, id: IncidentId, ix: &mut MemberIndex, opened: i64) {
        self.set_opened(id, ix, opened);
        if self.labels.len() < ix.labels.len() {
            self.labels.resize_with(ix.labels.len(), HashMap::default);
        }
        for (i, vals) in ix.labels.iter().enumerate() {
            for v in vals.keys() {
                set(&mut self.labels[i], v, id);
            }
        }
        for v in ix.services.keys() {
            set(&mut self.services, v, id);
        }
    }

    /// Moves incident `id`'s registered opening to `opened`.
    fn set_opened(&mut self, id: IncidentId, ix: &mut MemberIndex, opened: i64) {
        if ix.opened != Some(opened) {
            if let Some(o) = ix.opened {
                self.by_opened.remove(&(o, id));
            }
            self.by_opened.insert((opened, id));
            ix.opened = Some(opened);
        }
    }

    /// Unregisters incident `id`, whose member index is `ix`.
    pub fn remove(&mut self, id: IncidentId, ix: &MemberIndex) {
        if let Some(o) = ix.opened {
            self.by_opened.remove(&(o, id));
        }
        for (i, vals) in ix.labels.iter().enumerate() {
            for v in vals.keys() {
                if let Some(map) = self.labels.get_mut(i) {
                    unset(map, v, id);
                }
            }
        }
        for v in ix.services.keys() {
            unset(&mut self.services, v, id);
        }
    }

    /// The lookup without trailing empty label maps (for comparisons in tests).
    #[cfg(test)]
    pub fn trimmed(&self) -> Self {
        let n = self.labels.iter().rposition(|m| !m.is_empty()).map_or(0, |i| i + 1);
        Self {
            by_opened: self.by_opened.clone(),
            labels: self.labels[..n].to_vec(),
            services: self.services.clone(),
        }
    }

    /// The incidents a signal starting at `start` could relate to, in id order: opened within
    /// `burst` of it, or holding a member with one of `labels` ((group label position, value))
    /// or on one of the `services`.
    pub fn candidates(
        &self,
        start: i64,
        burst: i64,
        labels: &[(usize, &str)],
        services: &[&str],
    ) -> Vec<IncidentId> {
        let lo = (start.saturating_sub(burst), IncidentId(0));
        let hi = (start.saturating_add(burst), IncidentId(u64::MAX));
        let mut out: Vec<IncidentId> = self.by_opened.range(lo..=hi).map(|&(_, id)| id).collect();
        for &(i, v) in labels {
            if let Some(set) = self.labels.get(i).and_then(|m| m.get(v)) {
                out.extend(set);
            }
        }
        for &v in services {
            if let Some(set) = self.services.get(v) {
                out.extend(set);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn set(map: &mut HashMap<String, HashSet<IncidentId>>, v: &str, id: IncidentId) {
    if let Some(set) = map.get_mut(v) {
        set.insert(id);
    } else {
        map.insert(v.to_string(), HashSet::from_iter([id]));
    }
}

fn unset(map: &mut HashMap<String, HashSet<IncidentId>>, v: &str, id: IncidentId) {
    if let Some(set) = map.get_mut(v) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(v);
        }
    }
}
