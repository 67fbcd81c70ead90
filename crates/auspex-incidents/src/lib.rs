//! Incidents: signals folded into the few things a person must look at (M6).
//!
//! [`Correlator`] is pure and deterministic: it takes signals in arrival order and a clock
//! passed in, and says which incidents changed. The server persists and notifies; the storm
//! benchmark replays alerts through the same code.
//!
//! A new signal joins an incident, in this order:
//! 1. **Dedup**: a signal whose fingerprint is in an open incident is another occurrence of
//!    the same problem (counted, not a new member) when its previous occurrence is still
//!    active or ended at most `burst` ago, or when it is *flapping* (`flap_threshold` starts
//!    within `flap_window`). A flapping signal whose incident was resolved within
//!    `flap_window` reopens it quietly. Any other repeat is a new occurrence, correlated
//!    afresh: the same alert an hour later is often a different problem. So is a repeat that
//!    starts within `burst` of *another* incident's first signal: a shared alert (the front
//!    door's latency) firing with a new problem belongs to the new problem.
//! 2. **Correlation**: among open incidents whose latest signal started at most `window`
//!    before this one and whose scope labels (`namespace`, `cluster`) do not disagree, the one
//!    holding the member most related to it. From strongest to weakest: co-onset (it started
//!    within `burst` of the incident's first signal: one cause fires many rules at once), a
//!    shared group-label value
//!    (`service`, `pod`, `instance`), a topology neighbour's service unless either end is a
//!    hub (more than `hub_factor` × the mean number of neighbours: every fault reaches the
//!    front door, so a link through it says little); the last two count only
//!    for members that started at most `window` before it. Ties go to the most recent member.
//!    Unrelated signals open a new incident. With `onset_hops` set, co-onset also needs the
//!    services to be at most that many topology links apart (for large estates).
//!
//! Each incident's members are indexed by group-label value and service (`index.rs`), so the
//! cost of a signal does not grow with the members of the open incidents.
//!
//! Lifecycle: open → acknowledged → resolved. Resolution is by hand, or automatic once every
//! signal of the incident has ended and `resolve_after` has passed since the last end.
//! Change events (deploys, config, flags) never join incidents; they are context, listed
//! beside the incident by time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use auspex_core::time::rfc3339;
use auspex_core::{Explanation, Fingerprint, IncidentId, Labels, Signal, SignalId, SignalKind};
use foldhash::HashMap;
use serde::{Deserialize, Serialize};

mod index;
pub mod silence;
pub mod topology;

use index::{Lookup, MemberIndex};

pub use topology::{Edge, Topology, TopologyError};

/// What a new signal is looked up by: its group-label values (by position in
/// `Config::group_labels`) and its service's non-hub neighbours (none if it is a hub).
struct Probe<'a> {
    labels: Vec<(usize, &'a str)>,
    neighbours: Vec<&'a str>,
}

/// The strongest relation: started within the burst of an incident's first signal.
const CO_ONSET: u8 = 3;

/// The span over which the rate of openings is measured (`Config::busy_onset_hops`).
const HOUR_MS: i64 = 3_600_000;

/// Version of the incident JSON written by this build (the `"v"` field).
pub const INCIDENT_SCHEMA_VERSION: u32 = 1;

/// Correlation settings. One configuration for all data: the defaults are round numbers a
/// team would pick, not fitted to any dataset (`hub_factor` 4 was compared with 3 and 5 on the
/// PetShop storm; see BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// A signal may join an incident whose latest signal started at most this long before.
    pub window_ms: i64,
    /// Signals that start this close to an incident's first signal join it whatever their
    /// labels (co-onset: one cause fires many rules at once), unless scope labels disagree.
    /// Also: a repeat within this long of its previous occurrence's end is a duplicate.
    pub burst_ms: i64,
    /// Co-onset relates two signals only if their services are at most this many topology
    /// links apart, not passing through a hub (`None`: any distance; signals whose service
    /// the topology does not know are never held back). For large estates, where unrelated
    /// alerts start together all the time; see `bench incidents` in BENCHMARKS.md.
    pub onset_hops: Option<usize>,
    /// While the estate is busy, co-onset is held to this many topology links as if
    /// `onset_hops` were set (the smaller applies), and a service the topology does not know
    /// (or a signal without one) relates to nothing by co-onset (`None`: never held back).
    /// Busy means unrelated problems start so often that a chance coincidence is expected:
    /// over the last hour, incidents opened at a rate of at least one per two bursts (15 an
    /// hour with the 2-minute burst), so on average another unrelated incident opens within a
    /// burst of any one. Co-onset then says little about a common cause; a nearby service
    /// still does.
    pub busy_onset_hops: Option<usize>,
    /// Labels whose shared value relates two signals (e.g. the same service or pod).
    pub group_labels: Vec<String>,
    /// Labels that partition: signals whose values differ never share an incident.
    pub scope_labels: Vec<String>,
    /// The label that names a signal's service (matched against the topology).
    pub service_label: String,
    /// Window for flap detection and for reopening a resolved incident.
    pub flap_window_ms: i64,
    /// Starts of one fingerprint within `flap_window_ms` that make it flapping.
    pub flap_threshold: usize,
    /// A topology link to or from a hub (a service with more than this many times the mean
    /// number of neighbours, such as the front door every fault reaches) does not relate two
    /// signals. 0 turns this off.
    pub hub_factor: f64,
    /// An incident whose signals have all ended is resolved this long after the last end.
    pub resolve_after_ms: i64,
    /// Most incidents held in memory (open, acknowledged, or recently resolved); the least
    /// recently active is let go beyond it (it stays in the store as it is).
    pub max_incidents: usize,
    /// Most distinct signals listed per incident; later ones are counted only.
    pub max_members: usize,
    /// Most timeline entries kept per incident (the oldest after the first are dropped).
    pub max_timeline: usize,
    /// Most fingerprints whose recent starts are kept for flap detection (in two generations:
    /// when the newer is half full it becomes the older, and the older is let go), so a flood
    /// of distinct alerts cannot grow memory without bound; at most ~100 bytes each.
    pub max_fingerprints: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_ms: 10 * 60_000,
            burst_ms: 2 * 60_000,
            onset_hops: None,
            busy_onset_hops: Some(1),
            group_labels: vec!["service".into(), "pod".into(), "instance".into()],
            scope_labels: vec!["namespace".into(), "cluster".into()],
            service_label: "service".into(),
            flap_window_ms: 30 * 60_000,
            flap_threshold: 3,
            hub_factor: 4.0,
            resolve_after_ms: 5 * 60_000,
            max_incidents: 10_000,
            max_members: 500,
            max_timeline: 200,
            max_fingerprints: 200_000,
        }
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Needs someone.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Over (by hand or automatically).
    Resolved,
}

impl Status {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// Parses the JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "acknowledged" | "ack" => Some(Self::Acknowledged),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// Severity band of an incident, from its highest signal score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Score below 0.6.
    Info,
    /// Score from 0.6.
    Warning,
    /// Score from 0.9.
    Critical,
}

impl Severity {
    /// The band of `score`.
    pub fn of(score: f64) -> Self {
        if score >= 0.9 {
            Self::Critical
        } else if score >= 0.6 {
            Self::Warning
        } else {
            Self::Info
        }
    }

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One distinct signal (fingerprint) of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its latest occurrence.
    pub id: SignalId,
    /// What is wrong.
    pub fingerprint: Fingerprint,
    /// What raised it.
    pub kind: SignalKind,
    /// Its labels.
    pub labels: Labels,
    /// One line for people.
    pub title: String,
    /// Start of its first occurrence in this incident.
    #[serde(with = "rfc3339")]
    pub start: i64,
    /// End of its latest occurrence; `None` while active.
    #[serde(with = "rfc3339::option")]
    pub end: Option<i64>,
    /// Highest score seen.
    pub score: f64,
    /// Occurrences folded into this member (1 + duplicates and flaps).
    pub occurrences: u32,
    /// For detector signals: the deviation in robust units (for root-cause ranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation: Option<f64>,
}

/// One line of an incident's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When (signal time for signal events, wall time for actions).
    #[serde(with = "rfc3339")]
    pub time: i64,
    /// `opened`, `signal`, `repeat`, `signal_cleared`, `flapping`, `escalated`,
    /// `acknowledged`, `resolved`, `reopened`, `merged`, `split`, `notified`, `notify_failed`.
    pub event: String,
    /// Details for people.
    pub detail: String,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Schema version of this JSON.
    pub v: u32,
    /// Its id (the id of the signal that opened it).
    pub id: IncidentId,
    /// One line for people (from the first signal).
    pub title: String,
    /// Lifecycle state.
    pub status: Status,
    /// Severity band of the highest score.
    pub severity: Severity,
    /// Highest signal score.
    pub score: f64,
    /// Start of the first signal.
    #[serde(with = "rfc3339")]
    pub opened: i64,
    /// Start of the latest signal that joined.
    #[serde(with = "rfc3339")]
    pub last_signal: i64,
    /// When it was acknowledged.
    #[serde(with = "rfc3339::option")]
    pub acknowledged: Option<i64>,
    /// When it was resolved.
    #[serde(with = "rfc3339::option")]
    pub resolved: Option<i64>,
    /// `auto` or who resolved it.
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// Who acknowledged it.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// Some fingerprint of it is flapping.
    pub flapping: bool,
    /// Services of its signals.
    pub services: BTreeSet<String>,
    /// Values of the scope labels of its first signal.
    pub scope: BTreeMap<String, String>,
    /// Every occurrence folded in, duplicates included.
    pub signal_count: u64,
    /// Distinct signals (at most `max_members`). Shared, so a copy of the incident (for the
    /// writer, or a notification) does not copy every member; a change copies only that one.
    pub signals: Vec<Arc<Member>>,
    /// History (at most `max_timeline` entries).
    pub timeline: Vec<TimelineEntry>,
    /// Notifications queued for it and not yet sent (event names, oldest first). They are
    /// kept with the incident so that a restart sends them instead of losing them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsent: Vec<String>,
    /// Notifications a silence held back (event names, oldest first): sent, as one, once no
    /// silence covers the incident any more while it is still active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
}

impl Incident {
    /// Whether it is not resolved.
    pub fn is_active(&self) -> bool {
        self.status != Status::Resolved
    }

    /// The end of its last signal when all have ended.
    pub fn all_clear_since(&self) -> Option<i64> {
        let mut last = i64::MIN;
        for m in &self.signals {
            last = last.max(m.end?);
        }
        (!self.signals.is_empty()).then_some(last)
    }

    /// Appends a timeline entry (e.g. a notification outcome), keeping at most `max`: the
    /// oldest after the first ("opened") go first.
    pub fn record(&mut self, max: usize, time: i64, event: &str, detail: String) {
        if self.timeline.len() >= max.max(2) {
            self.timeline.remove(1);
        }
        self.timeline.push(TimelineEntry { time, event: event.into(), detail });
    }
}

/// What happened to an incident; the caller persists it and may notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new incident.
    Opened(IncidentId),
    /// Its severity band rose.
    Escalated(IncidentId),
    /// It was resolved (by hand or automatically).
    Resolved(IncidentId),
    /// It was reopened by a signal within the flap window; `flapping` says whether to stay
    /// quiet about it.
    Reopened(IncidentId, bool),
    /// Anything else (a signal joined, repeated or ended; acknowledged).
    Updated(IncidentId),
}

impl Change {
    /// The incident.
    pub fn id(self) -> IncidentId {
        match self {
            Self::Opened(i)
            | Self::Escalated(i)
            | Self::Resolved(i)
            | Self::Reopened(i, _)
            | Self::Updated(i) => i,
        }
    }
}

/// A manual action could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such incident in memory.
    #[error("no incident {0}")]
    NotFound(IncidentId),
    /// The incident is already resolved.
    #[error("incident {0} is already resolved")]
    AlreadyResolved(IncidentId),
    /// An incident cannot be merged into itself.
    #[error("cannot merge incident {0} into itself")]
    SameIncident(IncidentId),
    /// A split must name some, not all, of the incident's signals.
    #[error("cannot split incident {0}: {1}")]
    BadSplit(IncidentId, String),
}

/// What a signal is about: its `alertname`, else its metric name, else its kind.
pub fn signal_name(labels: &Labels, kind: SignalKind) -> &str {
    labels.get("alertname").or_else(|| labels.metric_name()).unwrap_or(kind.as_str())
}

/// A signal's one-line title.
pub fn signal_title(s: &Signal) -> String {
    let what = signal_name(&s.labels, s.kind).to_string();
    let on = ["service", "job", "pod", "instance"].iter().find_map(|l| s.labels.get(l));
    let mut t = match on {
        Some(on) => format!("{what} on {on}"),
        None => what,
    };
    if let Explanation::Text { message } = &s.explanation
        && !message.is_empty()
        && message != t.split(' ').next().unwrap_or("")
    {
        t.push_str(": ");
        t.push_str(message);
    }
    t
}

/// The incident engine. Deterministic: the same signals and clock give the same incidents.
#[derive(Debug)]
pub struct Correlator {
    cfg: Config,
    topo: Topology,
    incidents: BTreeMap<IncidentId, Incident>,
    home: HashMap<Fingerprint, IncidentId>,
    /// Recent starts by fingerprint, for flap detection: the newer generation and the older
    /// (see `Config::max_fingerprints`).
    starts: [HashMap<Fingerprint, VecDeque<i64>>; 2],
    /// Incidents let go for the memory bound since the caller last took them
    /// ([`take_let_go`](Self::take_let_go)): their latest state may not be written yet.
    let_go: VecDeque<Incident>,
    /// Members of each incident in memory, by label value and service.
    index: HashMap<IncidentId, MemberIndex>,
    /// Incidents by opening, label value and service (which ones a new signal could relate to).
    lookup: Lookup,
    /// When incidents opened in the last hour (signal time), for the busy test.
    opens: VecDeque<i64>,
    /// What the correlator has done so far (for `/metrics`).
    pub stats: Stats,
}

/// Counts of what the correlator did with each signal: the live measure of noise reduction
/// (compression = 1 − `opened` / `signals`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// New occurrences folded in (not counting ends or score updates of one occurrence).
    pub signals: u64,
    /// Incidents opened.
    pub opened: u64,
    /// Signals that joined an open incident by co-onset.
    pub joined_co_onset: u64,
    /// … by a shared group-label value.
    pub joined_label: u64,
    /// … by a topology link.
    pub joined_topology: u64,
    /// Repeats of a signal counted in its incident because it barely stopped.
    pub repeats: u64,
    /// Repeats counted in its incident because it is flapping (never notified).
    pub flapping_repeats: u64,
    /// Incidents let go for the memory bound.
    pub evicted: u64,
}

impl Correlator {
    /// An empty correlator.
    pub fn new(cfg: Config, topo: Topology) -> Self {
        Self {
            cfg,
            topo,
            incidents: BTreeMap::new(),
            home: HashMap::default(),
            starts: Default::default(),
            let_go: VecDeque::new(),
            index: HashMap::default(),
            lookup: Lookup::default(),
            opens: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The topology in use.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Learns a call edge (e.g. from traces); whether it is new.
    pub fn add_edge(&mut self, from: &str, to: &str) -> bool {
        self.topo.add_edge(from, to)
    }

    /// An incident held in memory.
    pub fn get(&self, id: IncidentId) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Mutable access (to record notification outcomes).
    pub fn get_mut(&mut self, id: IncidentId) -> Option<&mut Incident> {
        self.incidents.get_mut(&id)
    }

    /// Incidents held in memory.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    /// Takes back incidents loaded from the store (start-up): active ones and those resolved
    /// within the flap window of `now`; beyond `max_incidents`, the least recently active are
    /// let go again (they stay in the store).
    pub fn restore(&mut self, incidents: Vec<Incident>, now: i64) {
        self.restore_keeping(incidents, now, None);
    }

    /// Brings one incident back from the store (an action on one that was let go); beyond
    /// `max_incidents` another is let go, never this one. Resolved long ago: not taken back.
    pub fn bring_back(&mut self, inc: Incident, now: i64) {
        let id = inc.id;
        self.restore_keeping(vec![inc], now, Some(id));
    }

    fn restore_keeping(&mut self, incidents: Vec<Incident>, now: i64, keep: Option<IncidentId>) {
        for inc in incidents {
            if inc.resolved.is_some_and(|r| now.saturating_sub(r) > self.cfg.flap_window_ms) {
                continue;
            }
            for m in &inc.signals {
                self.home.insert(m.fingerprint, inc.id);
            }
            let id = inc.id;
            // (One brought back was counted when it opened, or is older than an hour.)
            if keep.is_none() && now.saturating_sub(inc.opened) < HOUR_MS {
                self.opens.push_back(inc.opened);
            }
            self.incidents.insert(id, inc);
            self.reindex(id);
        }
        self.opens.make_contiguous().sort_unstable();
        self.note_open(None, now);
        // At start-up the ones let go come straight from the store; an action's may have
        // changed since they were written.
        while self.incidents.len() > self.cfg.max_incidents.max(1) {
            self.evict_one_except(keep, keep.is_some());
        }
    }

    /// Openings in the last hour that make the estate busy (see `Config::busy_onset_hops`).
    fn busy_opens(&self) -> usize {
        let per_opening = self.cfg.burst_ms.saturating_mul(2).max(1);
        (HOUR_MS.saturating_add(per_opening - 1) / per_opening) as usize
    }

    /// Notes an incident opened at `opened` (if any), then forgets openings more than an hour
    /// before `now` and beyond the number that makes the estate busy (memory stays bounded).
    fn note_open(&mut self, opened: Option<i64>, now: i64) {
        self.opens.extend(opened);
        while self.opens.front().is_some_and(|&t| now.saturating_sub(t) >= HOUR_MS) {
            self.opens.pop_front();
        }
        while self.opens.len() > self.busy_opens() {
            self.opens.pop_front();
        }
    }

    /// Whether the estate is busy (see `Config::busy_onset_hops`).
    pub fn busy(&self) -> bool {
        self.opens.len() >= self.busy_opens()
    }

    /// Rebuilds the member index of `id` (after its members changed wholesale).
    fn reindex(&mut self, id: IncidentId) {
        if let Some(old) = self.index.remove(&id) {
            self.lookup.remove(id, &old);
        }
        let Some(inc) = self.incidents.get(&id) else { return };
        let (labels, svc) = (&self.cfg.group_labels, &self.cfg.service_label);
        let mut ix = MemberIndex::of(inc.signals.iter().map(|m| &**m), labels, svc);
        self.lookup.add_all(id, &mut ix, inc.opened);
        self.index.insert(id, ix);
    }

    /// Whether the lookup is what registering every incident in memory afresh gives (tests).
    #[cfg(test)]
    fn lookup_is_current(&self) -> bool {
        let (labels, svc) = (&self.cfg.group_labels, &self.cfg.service_label);
        let mut fresh = Lookup::default();
        for (id, inc) in &self.incidents {
            let mut ix = MemberIndex::default();
            fresh.add(*id, &mut ix, inc.opened, None, labels, svc);
            for m in &inc.signals {
                fresh.add(*id, &mut ix, inc.opened, Some(m), labels, svc);
            }
        }
        fresh.trimmed() == self.lookup.trimmed()
    }

    /// Adds the last member of `id` to its index (`pushed`), and its opening if that moved.
    fn index_last(&mut self, id: IncidentId, pushed: bool) {
        let Some(inc) = self.incidents.get(&id) else { return };
        let m = inc.signals.last().filter(|_| pushed);
        let (labels, svc) = (&self.cfg.group_labels, &self.cfg.service_label);
        let ix = self.index.entry(id).or_default();
        if let Some(m) = m {
            ix.add(m, labels, svc);
        }
        self.lookup.add(id, ix, inc.opened, m.map(|m| &**m), labels, svc);
    }

    fn service<'a>(&self, labels: &'a Labels) -> Option<&'a str> {
        labels.get(&self.cfg.service_label)
    }

    /// Folds one signal in (a new one, a repeat, or the same one ended/updated).
    pub fn observe(&mut self, s: &Signal) -> Vec<Change> {
        if s.kind == SignalKind::Change {
            return Vec::new();
        }
        let mut out = Vec::new();
        // The same occurrence again (an end, a higher score, a redelivery).
        if let Some(&hid) = self.home.get(&s.fingerprint)
            && let Some(inc) = self.incidents.get_mut(&hid)
            && let Some(m) = inc.signals.iter_mut().find(|m| m.id == s.id)
        {
            let m = Arc::make_mut(m);
            let before = Severity::of(inc.score);
            m.score = m.score.max(s.score);
            inc.score = inc.score.max(s.score);
            if m.end.is_none()
                && let Some(end) = s.end
            {
                m.end = Some(end);
                let d = format!("{} cleared", m.title);
                inc.record(self.cfg.max_timeline, end, "signal_cleared", d);
                out.push(Change::Updated(hid));
            }
            self.escalation(hid, before, &mut out);
            return out;
        }
        let flapping = self.note_start(s);
        self.stats.signals += 1;
        self.note_open(None, s.start);
        let best = self.best_incident(s);
        if let Some(&hid) = self.home.get(&s.fingerprint)
            && let Some(inc) = self.incidents.get(&hid)
        {
            // The same problem again only if it barely stopped (within the burst) or flaps;
            // otherwise it is a new occurrence, correlated afresh like any other signal.
            let prev_end = inc
                .signals
                .iter()
                .find(|m| m.fingerprint == s.fingerprint)
                .map(|m| m.end.unwrap_or(i64::MAX));
            let recent = prev_end.is_some_and(|e| s.start.saturating_sub(e) <= self.cfg.burst_ms);
            let reopen = match inc.resolved {
                None if recent || flapping => Some(false),
                Some(r) if flapping && s.start.saturating_sub(r) <= self.cfg.flap_window_ms => {
                    Some(true)
                }
                _ => None,
            };
            // A repeat that starts together with another incident's first signal belongs to
            // that new problem, not to its old one: it is correlated afresh below.
            let onset_elsewhere = best.is_some_and(|(a, id)| a == CO_ONSET && id != hid);
            if let Some(reopen) = reopen
                && !onset_elsewhere
            {
                if flapping && !recent {
                    self.stats.flapping_repeats += 1;
                } else {
                    self.stats.repeats += 1;
                }
                self.repeat(hid, s, flapping, reopen, &mut out);
                return out;
            }
        }
        let (id, member) = match best {
            Some((a, id)) => {
                match a {
                    CO_ONSET => self.stats.joined_co_onset += 1,
                    2 => self.stats.joined_label += 1,
                    _ => self.stats.joined_topology += 1,
                }
                let why = self.why(s, id, a);
                (id, self.join(id, s, why, &mut out))
            }
            None => {
                self.stats.opened += 1;
                self.note_open(Some(s.start), s.start);
                (self.open(s, &mut out), true)
            }
        };
        if flapping && let Some(inc) = self.incidents.get_mut(&id) {
            inc.flapping = true;
        }
        // Only a member is a fingerprint's home: one only counted (beyond `max_members`)
        // would stay homed after its incident is let go, and memory would grow without bound.
        if member {
            self.home.insert(s.fingerprint, id);
        }
        out
    }

    /// Records a start of `s`'s fingerprint; whether it is now flapping.
    fn note_start(&mut self, s: &Signal) -> bool {
        let half = (self.cfg.max_fingerprints / 2).max(1);
        let [newer, older] = &mut self.starts;
        if !newer.contains_key(&s.fingerprint) {
            let q = older.remove(&s.fingerprint).unwrap_or_default();
            if newer.len() >= half {
                *older = std::mem::take(newer);
            }
            newer.insert(s.fingerprint, q);
        }
        let q = newer.entry(s.fingerprint).or_default();
        q.push_back(s.start);
        while q.front().is_some_and(|&t| s.start.saturating_sub(t) > self.cfg.flap_window_ms) {
            q.pop_front();
        }
        while q.len() > self.cfg.flap_threshold.max(1) {
            q.pop_front();
        }
        q.len() >= self.cfg.flap_threshold.max(2)
    }

    fn repeat(
        &mut self,
        hid: IncidentId,
        s: &Signal,
        flapping: bool,
        reopen: bool,
        out: &mut Vec<Change>,
    ) {
        let max_t = self.cfg.max_timeline;
        let Some(inc) = self.incidents.get_mut(&hid) else { return };
        let before = Severity::of(inc.score);
        inc.signal_count += 1;
        inc.score = inc.score.max(s.score);
        inc.last_signal = inc.last_signal.max(s.start);
        let title = signal_title(s);
        let room = inc.signals.len() < self.cfg.max_members;
        let mut pushed = false;
        match inc.signals.iter_mut().find(|m| m.fingerprint == s.fingerprint) {
            Some(m) => {
                let m = Arc::make_mut(m);
                m.id = s.id;
                m.end = s.end;
                m.score = m.score.max(s.score);
                m.occurrences = m.occurrences.saturating_add(1);
                if let Explanation::Metric { deviation, .. } = &s.explanation
                    && deviation.is_finite()
                    && m.deviation.is_none_or(|d| deviation.abs() > d.abs())
                {
                    m.deviation = Some(*deviation);
                }
            }
            None if room => {
                inc.signals.push(Arc::new(member(s, title.clone())));
                inc.opened = inc.opened.min(s.start);
                pushed = true;
            }
            None => {}
        }
        if flapping && !inc.flapping {
            inc.flapping = true;
            inc.record(max_t, s.start, "flapping", format!("{title} is flapping"));
        }
        if reopen {
            inc.status = Status::Open;
            inc.resolved = None;
            inc.resolved_by = None;
            inc.acknowledged = None;
            inc.acknowledged_by = None;
            inc.record(max_t, s.start, "reopened", format!("{title} fired again"));
            out.push(Change::Reopened(hid, inc.flapping));
        } else {
            inc.record(max_t, s.start, "repeat", title);
            out.push(Change::Updated(hid));
        }
        self.index_last(hid, pushed);
        self.escalation(hid, before, out);
    }

    fn escalation(&mut self, hid: IncidentId, before: Severity, out: &mut Vec<Change>) {
        let max_t = self.cfg.max_timeline;
        if let Some(inc) = self.incidents.get_mut(&hid) {
            let now = Severity::of(inc.score);
            inc.severity = now;
            if now > before && inc.is_active() {
                let t = inc.last_signal;
                inc.record(
                    max_t,
                    t,
                    "escalated",
                    format!("{} → {}", before.as_str(), now.as_str()),
                );
                out.push(Change::Escalated(hid));
            }
        }
    }

    fn scope_of(&self, labels: &Labels) -> BTreeMap<String, String> {
        self.cfg
            .scope_labels
            .iter()
            .filter_map(|l| labels.get(l).map(|v| (l.clone(), v.to_string())))
            .collect()
    }

    /// How strongly a signal starting at `start` with keys `p` belongs with incident `inc`
    /// (`None`: not at all), and the start of the closest member so related: co-onset (3: it
    /// started within the burst of the incident's opening, if `near()`; the latest member), a
    /// shared group-label value (2), a topology neighbour's service, neither end a hub (1);
    /// the last two only for members that started at most `window` before it.
    fn relation(
        &self,
        start: i64,
        p: &Probe<'_>,
        inc: &Incident,
        ix: &MemberIndex,
        near: impl FnOnce() -> bool,
    ) -> Option<(u8, i64)> {
        if start.saturating_sub(inc.opened).saturating_abs() <= self.cfg.burst_ms && near() {
            return ix.max_start.map(|t| (CO_ONSET, t));
        }
        let (lo, hi) = (start.saturating_sub(self.cfg.window_ms), start);
        let shared = p.labels.iter().filter_map(|&(i, v)| ix.label_latest(i, v, lo, hi)).max();
        if let Some(t) = shared {
            return Some((2, t));
        }
        p.neighbours.iter().filter_map(|b| ix.service_latest(b, lo, hi)).max().map(|t| (1, t))
    }

    /// The open incident `s` is most related to, and how (see [`relation`](Self::relation));
    /// ties go to the most recent related member, then to the first incident in id order.
    fn best_incident(&self, s: &Signal) -> Option<(u8, IncidentId)> {
        let scope = self.scope_of(&s.labels);
        let svc = self.service(&s.labels);
        let hub = |x: &str| self.topo.is_hub(x, self.cfg.hub_factor);
        let probe = Probe {
            labels: (self.cfg.group_labels.iter().enumerate())
                .filter_map(|(i, l)| Some((i, s.labels.get(l)?)))
                .collect(),
            neighbours: (svc.filter(|a| !hub(a)).into_iter())
                .flat_map(|a| self.topo.neighbours(a))
                .filter(|b| !hub(b))
                .collect(),
        };
        // Services close enough for co-onset (`None`: any). With `onset_hops`, those the
        // topology knows are held to it (the others never are). While busy, co-onset needs
        // services at most `busy_onset_hops` links apart, both known to the topology: with
        // unrelated problems starting together all the time, co-onset alone is no evidence.
        let ball = self.cfg.onset_hops.zip(svc).and_then(|(h, v)| self.topo.within(v, h, hub));
        let busy_ball = (self.cfg.busy_onset_hops.filter(|_| self.busy()))
            .map(|h| svc.and_then(|v| self.topo.within(v, h, hub)));
        // (relation, start of the closest related member, incident)
        let mut best: Option<(u8, i64, IncidentId)> = None;
        let candidates =
            self.lookup.candidates(s.start, self.cfg.burst_ms, &probe.labels, &probe.neighbours);
        for id in &candidates {
            let Some(inc) = self.incidents.get(id) else { continue };
            if !inc.is_active() || s.start.saturating_sub(inc.last_signal) > self.cfg.window_ms {
                continue;
            }
            if scope.iter().any(|(l, v)| inc.scope.get(l).is_some_and(|w| w != v)) {
                continue;
            }
            let Some(ix) = self.index.get(id) else { continue };
            // (The ball is a few services; an incident may hold thousands.)
            let near = || {
                let held = ball.as_ref().is_none_or(|b| {
                    inc.services.is_empty()
                        || b.iter().any(|x| inc.services.contains(*x))
                        || ix.has_unknown(&inc.services, &self.topo)
                });
                let busy = busy_ball.as_ref().is_none_or(|b| {
                    b.as_ref().is_some_and(|b| b.iter().any(|x| inc.services.contains(*x)))
                });
                held && busy
            };
            let Some((a, t)) = self.relation(s.start, &probe, inc, ix, near) else { continue };
            if best.is_none_or(|b| (a, t) > (b.0, b.1)) {
                best = Some((a, t, *id));
            }
        }
        best.map(|b| (b.0, b.2))
    }

    /// Why `s` joins incident `id` by relation `a`, for people (the timeline).
    fn why(&self, s: &Signal, id: IncidentId, a: u8) -> String {
        if a == CO_ONSET {
            let secs = self.cfg.burst_ms / 1000;
            let mut why = format!("started within {secs} s of the incident's first signal");
            if let Some(h) = self.cfg.busy_onset_hops.filter(|_| self.busy()) {
                why.push_str(&format!(", at most {h} topology link(s) away (busy estate)"));
            }
            return why;
        }
        let Some(ix) = self.index.get(&id) else { return String::new() };
        let (lo, hi) = (s.start.saturating_sub(self.cfg.window_ms), s.start);
        if a == 2 {
            for (i, l) in self.cfg.group_labels.iter().enumerate() {
                if let Some(v) = s.labels.get(l)
                    && ix.label_latest(i, v, lo, hi).is_some()
                {
                    return format!("shares {l}=\"{v}\" with a recent signal");
                }
            }
            return String::new();
        }
        let hub = |x: &str| self.topo.is_hub(x, self.cfg.hub_factor);
        let svc = self.service(&s.labels).unwrap_or_default();
        (self.topo.neighbours(svc))
            .find(|b| !hub(b) && ix.service_latest(b, lo, hi).is_some())
            .map(|b| format!("{svc} is linked to {b} in the topology"))
            .unwrap_or_default()
    }

    /// Adds `s` to incident `id`; whether it became a member (beyond `max_members` it is
    /// only counted).
    fn join(&mut self, id: IncidentId, s: &Signal, why: String, out: &mut Vec<Change>) -> bool {
        let title = signal_title(s);
        let svc = self.service(&s.labels).map(str::to_string);
        let (max_m, max_t) = (self.cfg.max_members, self.cfg.max_timeline);
        let Some(inc) = self.incidents.get_mut(&id) else { return false };
        let before = Severity::of(inc.score);
        inc.signal_count += 1;
        inc.score = inc.score.max(s.score);
        inc.last_signal = inc.last_signal.max(s.start);
        // A late-delivered signal may have started before the incident's first one.
        inc.opened = inc.opened.min(s.start);
        if let Some(svc) = svc {
            inc.services.insert(svc);
        }
        let pushed = inc.signals.len() < max_m;
        if pushed {
            inc.signals.push(Arc::new(member(s, title.clone())));
        }
        let detail = if why.is_empty() { title } else { format!("{title} ({why})") };
        inc.record(max_t, s.start, "signal", detail);
        out.push(Change::Updated(id));
        self.index_last(id, pushed);
        self.escalation(id, before, out);
        pushed
    }

    fn open(&mut self, s: &Signal, out: &mut Vec<Change>) -> IncidentId {
        if self.incidents.len() >= self.cfg.max_incidents.max(1) {
            self.evict_one();
        }
        let id = IncidentId(s.id.0);
        let title = signal_title(s);
        let mut inc = Incident {
            v: INCIDENT_SCHEMA_VERSION,
            id,
            title: title.clone(),
            status: Status::Open,
            severity: Severity::of(s.score),
            score: s.score,
            opened: s.start,
            last_signal: s.start,
            acknowledged: None,
            resolved: None,
            resolved_by: None,
            acknowledged_by: None,
            flapping: false,
            services: self.service(&s.labels).map(str::to_string).into_iter().collect(),
            scope: self.scope_of(&s.labels),
            signal_count: 1,
            signals: vec![Arc::new(member(s, title.clone()))],
            timeline: Vec::new(),
            unsent: Vec::new(),
            withheld: Vec::new(),
        };
        inc.record(self.cfg.max_timeline, s.start, "opened", title);
        self.incidents.insert(id, inc);
        self.reindex(id);
        out.push(Change::Opened(id));
        id
    }

    fn evict_one(&mut self) {
        self.evict_one_except(None, true);
    }

    /// Lets go of the least recently active incident other than `keep`; with `record`, keeps
    /// it for [`take_let_go`](Self::take_let_go) (at most `max_incidents` wait there).
    fn evict_one_except(&mut self, keep: Option<IncidentId>, record: bool) {
        let victim = self
            .incidents
            .values()
            .filter(|i| Some(i.id) != keep)
            .min_by_key(|i| (i.is_active(), i.last_signal))
            .map(|i| i.id);
        if let Some(v) = victim {
            let gone = self.forget(v);
            self.stats.evicted += 1;
            if record && let Some(inc) = gone {
                self.hand_over(inc);
            }
        }
    }

    /// The incidents let go from memory for its bound since the last call, as they were then:
    /// a caller that stores incidents writes them, since their last changes may be unwritten.
    pub fn take_let_go(&mut self) -> Vec<Incident> {
        std::mem::take(&mut self.let_go).into()
    }

    /// The newest copy of incident `id` among those let go and not yet taken (a caller reading
    /// an incident that is not in memory looks here before its store, which may hold an older
    /// state).
    pub fn let_go_copy(&self, id: IncidentId) -> Option<&Incident> {
        self.let_go.iter().rev().find(|i| i.id == id)
    }

    /// Mutable access to the newest copy of incident `id` among those let go and not yet taken
    /// (to record a notification outcome in the state that will be written).
    pub fn let_go_copy_mut(&mut self, id: IncidentId) -> Option<&mut Incident> {
        self.let_go.iter_mut().rev().find(|i| i.id == id)
    }

    /// Gives back incidents from [`take_let_go`](Self::take_let_go) whose write failed: they
    /// are handed over again, before any let go since.
    pub fn keep_let_go(&mut self, incidents: Vec<Incident>) {
        for inc in incidents.into_iter().rev() {
            self.let_go.push_front(inc);
        }
        self.bound_let_go();
    }

    /// Keeps `inc`, just let go, for [`take_let_go`](Self::take_let_go).
    fn hand_over(&mut self, inc: Incident) {
        self.let_go.push_back(inc);
        self.bound_let_go();
    }

    /// At most `max_incidents` wait to be taken (the oldest go first).
    fn bound_let_go(&mut self) {
        while self.let_go.len() > self.cfg.max_incidents.max(1) {
            self.let_go.pop_front();
        }
    }

    fn forget(&mut self, id: IncidentId) -> Option<Incident> {
        if let Some(ix) = self.index.remove(&id) {
            self.lookup.remove(id, &ix);
        }
        let inc = self.incidents.remove(&id)?;
        for m in &inc.signals {
            if self.home.get(&m.fingerprint) == Some(&id) {
                self.home.remove(&m.fingerprint);
            }
        }
        Some(inc)
    }

    /// Time passes: resolves incidents all clear for `resolve_after`, and lets go of those
    /// resolved longer than the flap window ago (they stay in the store).
    pub fn tick(&mut self, now: i64) -> Vec<Change> {
        self.tick_keeping(now, |_| false)
    }

    /// [`tick`](Self::tick) for a caller that stores incidents: one it lets go whose last
    /// changes are `unwritten` is handed over with [`take_let_go`](Self::take_let_go), like one
    /// let go for the memory bound (a notification outcome may have been recorded in it just
    /// before).
    pub fn tick_keeping(
        &mut self,
        now: i64,
        unwritten: impl Fn(IncidentId) -> bool,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for inc in self.incidents.values_mut() {
            match inc.resolved {
                Some(r) if now.saturating_sub(r) > self.cfg.flap_window_ms => gone.push(inc.id),
                Some(_) => {}
                None => {
                    if let Some(clear) = inc.all_clear_since()
                        && now.saturating_sub(clear) >= self.cfg.resolve_after_ms
                    {
                        let at = clear.saturating_add(self.cfg.resolve_after_ms);
                        inc.status = Status::Resolved;
                        inc.resolved = Some(at);
                        inc.resolved_by = Some("auto".into());
                        let d = "every signal cleared".to_string();
                        inc.record(self.cfg.max_timeline, at, "resolved", d);
                        out.push(Change::Resolved(inc.id));
                    }
                }
            }
        }
        for id in gone {
            if let Some(inc) = self.forget(id)
                && unwritten(id)
            {
                self.hand_over(inc);
            }
        }
        let w = self.cfg.flap_window_ms;
        for g in &mut self.starts {
            g.retain(|_, q| q.back().is_some_and(|&t| now.saturating_sub(t) <= w));
        }
        self.note_open(None, now);
        out
    }

    /// Acknowledges an incident.
    pub fn ack(&mut self, id: IncidentId, now: i64, by: &str) -> Result<Change, ActionError> {
        let max_t = self.cfg.max_timeline;
        let inc = self.incidents.get_mut(&id).ok_or(ActionError::NotFound(id))?;
        if inc.status == Status::Resolved {
            return Err(ActionError::AlreadyResolved(id));
        }
        if inc.status == Status::Open {
            inc.status = Status::Acknowledged;
            inc.acknowledged = Some(now);
            inc.acknowledged_by = Some(by.to_string());
            inc.record(max_t, now, "acknowledged", format!("by {by}"));
        }
        Ok(Change::Updated(id))
    }

    /// Merges incident `from` into `into` by hand (they turned out to be one problem): every
    /// signal of `from` joins `into` (up to `max_members`; all are counted), and from now on
    /// repeats of those signals go to `into`. `from` is resolved, with a `merged` entry in
    /// both timelines. Neither may be resolved already.
    pub fn merge(
        &mut self,
        into: IncidentId,
        from: IncidentId,
        now: i64,
        by: &str,
    ) -> Result<Vec<Change>, ActionError> {
        if into == from {
            return Err(ActionError::SameIncident(into));
        }
        for id in [into, from] {
            let inc = self.incidents.get(&id).ok_or(ActionError::NotFound(id))?;
            if inc.status == Status::Resolved {
                return Err(ActionError::AlreadyResolved(id));
            }
        }
        let (max_m, max_t) = (self.cfg.max_members, self.cfg.max_timeline);
        // Out of the map while `into` is changed, so both can be used at once.
        let Some(mut src) = self.incidents.remove(&from) else { return Ok(Vec::new()) };
        src.status = Status::Resolved;
        src.resolved = Some(now);
        src.resolved_by = Some(by.to_string());
        src.record(max_t, now, "merged", format!("into {into} by {by}"));
        let Some(dst) = self.incidents.get_mut(&into) else {
            self.incidents.insert(from, src);
            return Ok(Vec::new());
        };
        let before = Severity::of(dst.score);
        for m in &src.signals {
            let room = dst.signals.len() < max_m;
            match dst.signals.iter_mut().find(|d| d.fingerprint == m.fingerprint) {
                Some(d) => {
                    let d = Arc::make_mut(d);
                    d.occurrences = d.occurrences.saturating_add(m.occurrences);
                    d.score = d.score.max(m.score);
                    if d.start < m.start {
                        d.id = m.id;
                        d.start = m.start;
                        d.end = m.end;
                    }
                }
                None if room => dst.signals.push(m.clone()),
                None => {}
            }
        }
        dst.signal_count += src.signal_count;
        dst.score = dst.score.max(src.score);
        dst.opened = dst.opened.min(src.opened);
        dst.last_signal = dst.last_signal.max(src.last_signal);
        dst.flapping |= src.flapping;
        dst.services.extend(src.services.iter().cloned());
        let n = src.signals.len();
        dst.record(max_t, now, "merged", format!("{from} ({n} signal(s)) by {by}"));
        for m in &src.signals {
            if self.home.get(&m.fingerprint) == Some(&from) {
                self.home.insert(m.fingerprint, into);
            }
        }
        self.incidents.insert(from, src);
        self.reindex(into);
        let mut out = vec![Change::Updated(into), Change::Resolved(from)];
        self.escalation(into, before, &mut out);
        Ok(out)
    }

    /// Splits the signals with fingerprints `take` out of incident `id` into a new open
    /// incident (the grouping was wrong): their later repeats go to the new one. Each must be
    /// a signal of `id`, and at least one must stay. Returns the new incident's id, derived
    /// from `id`, the fingerprints taken and `now` (so a replay gives the same id).
    pub fn split(
        &mut self,
        id: IncidentId,
        take: &[Fingerprint],
        now: i64,
        by: &str,
    ) -> Result<(IncidentId, Vec<Change>), ActionError> {
        let max_t = self.cfg.max_timeline;
        let service_label = self.cfg.service_label.clone();
        {
            let inc = self.incidents.get(&id).ok_or(ActionError::NotFound(id))?;
            if inc.status == Status::Resolved {
                return Err(ActionError::AlreadyResolved(id));
            }
            let bad = |why: String| Err(ActionError::BadSplit(id, why));
            if take.is_empty() {
                return bad("name at least one signal".into());
            }
            if let Some(f) = take.iter().find(|f| !inc.signals.iter().any(|m| m.fingerprint == **f))
            {
                return bad(format!("{f} is not one of its signals"));
            }
            if inc.signals.iter().all(|m| take.contains(&m.fingerprint)) {
                return bad("at least one signal must stay".into());
            }
        }
        if self.incidents.len() >= self.cfg.max_incidents.max(1) {
            self.evict_one_except(Some(id), true);
        }
        let mut new_id = IncidentId(take.iter().fold(id.0 ^ (now as u64), |h, f| {
            h.rotate_left(17) ^ f.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }));
        while self.incidents.contains_key(&new_id) {
            new_id = IncidentId(new_id.0.wrapping_add(1));
        }
        let inc = self.incidents.get_mut(&id).ok_or(ActionError::NotFound(id))?;
        let (moved, kept): (Vec<Arc<Member>>, Vec<Arc<Member>>) =
            inc.signals.drain(..).partition(|m| take.contains(&m.fingerprint));
        inc.signals = kept;
        let services = |ms: &[Arc<Member>]| -> BTreeSet<String> {
            ms.iter().filter_map(|m| m.labels.get(&service_label).map(str::to_string)).collect()
        };
        let count: u64 = moved.iter().map(|m| u64::from(m.occurrences)).sum();
        inc.signal_count = inc.signal_count.saturating_sub(count).max(inc.signals.len() as u64);
        inc.services = services(&inc.signals);
        inc.score = inc.signals.iter().map(|m| m.score).fold(0.0, f64::max);
        inc.severity = Severity::of(inc.score);
        inc.last_signal = inc.signals.iter().map(|m| m.start).max().unwrap_or(inc.last_signal);
        inc.opened = inc.signals.iter().map(|m| m.start).min().unwrap_or(inc.opened);
        let (first, scope) = (&moved[0], inc.scope.clone());
        let n = moved.len();
        inc.record(max_t, now, "split", format!("{n} signal(s) into {new_id} by {by}"));
        let score = moved.iter().map(|m| m.score).fold(0.0, f64::max);
        let mut new = Incident {
            v: INCIDENT_SCHEMA_VERSION,
            id: new_id,
            title: first.title.clone(),
            status: Status::Open,
            severity: Severity::of(score),
            score,
            opened: moved.iter().map(|m| m.start).min().unwrap_or(now),
            last_signal: moved.iter().map(|m| m.start).max().unwrap_or(now),
            acknowledged: None,
            resolved: None,
            resolved_by: None,
            acknowledged_by: None,
            flapping: false,
            services: services(&moved),
            scope,
            signal_count: count.max(n as u64),
            signals: moved,
            timeline: Vec::new(),
            unsent: Vec::new(),
            withheld: Vec::new(),
        };
        new.record(max_t, now, "opened", format!("split from {id} by {by}"));
        for m in &new.signals {
            self.home.insert(m.fingerprint, new_id);
        }
        self.incidents.insert(new_id, new);
        self.reindex(id);
        self.reindex(new_id);
        Ok((new_id, vec![Change::Updated(id), Change::Opened(new_id)]))
    }

    /// Resolves an incident by hand.
    pub fn resolve(&mut self, id: IncidentId, now: i64, by: &str) -> Result<Change, ActionError> {
        let max_t = self.cfg.max_timeline;
        let inc = self.incidents.get_mut(&id).ok_or(ActionError::NotFound(id))?;
        if inc.status == Status::Resolved {
            return Err(ActionError::AlreadyResolved(id));
        }
        inc.status = Status::Resolved;
        inc.resolved = Some(now);
        inc.resolved_by = Some(by.to_string());
        inc.record(max_t, now, "resolved", format!("by {by}"));
        Ok(Change::Resolved(id))
    }
}

fn member(s: &Signal, title: String) -> Member {
    Member {
        id: s.id,
        fingerprint: s.fingerprint,
        kind: s.kind,
        labels: s.labels.clone(),
        title,
        start: s.start,
        end: s.end,
        score: s.score,
        occurrences: 1,
        deviation: match &s.explanation {
            Explanation::Metric { deviation, .. } if deviation.is_finite() => Some(*deviation),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests;
