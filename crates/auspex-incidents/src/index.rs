//! Per-incident lookup of members by group-label value and by service, so finding the incident
//! a signal relates to costs O(labels + neighbours) per open incident instead of a scan of
//! every member (an incident holds up to `max_members`). Derived data: never stored, rebuilt
//! from the members when an incident is restored, merged or split.

use foldhash::HashMap;

use crate::Member;

/// Member starts of one incident, keyed for the relations the correlator asks about.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberIndex {
    /// The latest member start.
    pub max_start: Option<i64>,
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
