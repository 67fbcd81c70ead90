//! Incidents in the server: every signal, once durable, is folded into the correlator; the
//! incidents it changed are written to the store and notified. Routes:
//!
//! | route | what |
//! |---|---|
//! | `GET /auspex/v1/incidents?status=open&limit=100` | incidents, newest first |
//! | `GET /auspex/v1/incidents/{id}` | one incident, with the change events in its window |
//! | `POST /auspex/v1/incidents/{id}/ack` | acknowledge (`{"by": "name"}` optional) |
//! | `POST /auspex/v1/incidents/{id}/resolve` | resolve by hand |
//! | `POST /auspex/v1/incidents/{id}/merge` | merge `{"from": "<id>"}` into it (resolves that one) |
//! | `POST /auspex/v1/incidents/{id}/split` | move `{"signals": ["<fingerprint>", ...]}` to a new incident |
//!
//! Incidents are derived data: if writing them fails they stay marked and the tick worker
//! writes them again; the signals they come from are already durable.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use auspex_core::{Fingerprint, IncidentId, Signal};
use auspex_incidents::silence::{self, Silence};
use auspex_incidents::{ActionError, Change, Correlator, Incident, Status, Topology};
use auspex_store::IncidentStore;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::http::{App, now_ms};
use crate::mlflow::MlflowStore;
use crate::notify::{self, Event};

/// The correlator and the incidents waiting to be written.
#[derive(Debug)]
pub struct Hub {
    corr: Mutex<Correlator>,
    dirty: Mutex<BTreeSet<IncidentId>>,
    /// Held while incidents are written (see [`persist`]).
    writing: tokio::sync::Mutex<()>,
    /// Notifications delivered, given up on after every retry, dropped (`max_pending`), and
    /// held back by a silence.
    notified: [AtomicU64; 4],
    /// Silences, active, pending, and expired within `[notify] silence_retention`
    /// (see `silences.rs`).
    pub(crate) silences: Mutex<Vec<Silence>>,
    /// Alertmanager targets: when each (by index) last had its alerts sent again, and whether
    /// a resend is running.
    resent: Mutex<HashMap<usize, i64>>,
    resending: std::sync::atomic::AtomicBool,
    /// Alerts sent again to Alertmanager targets: delivered, failed.
    resends: [AtomicU64; 2],
    /// The likely root cause last sent of active incidents, for Alertmanager resends (only
    /// while an Alertmanager target is configured; pruned to the active incidents by each
    /// resend).
    causes: Mutex<HashMap<IncidentId, String>>,
    /// Notifications waiting or being sent, in order per incident.
    outbox: Mutex<Outbox>,
}

/// Per incident, its notifications in the order its changes happened: one worker per
/// incident sends them one after another, so a receiver never sees an incident resolved
/// before it saw it opened (a retried `opened` holds back the `resolved` behind it).
#[derive(Debug, Default)]
struct Outbox {
    /// The incident as it was at each change (shared: the sender takes it without a copy).
    queues: HashMap<IncidentId, VecDeque<(Event, Arc<Incident>)>>,
    /// Notifications in all queues (bounded by `[notify] max_pending`).
    pending: usize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// The incident metrics in the Prometheus text format: what the correlator did with each
    /// signal (so `1 - rate(auspex_incidents_opened_total) / rate(auspex_incident_signals_total)`
    /// is the live compression), incidents in memory by status, and notification outcomes.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let (st, by_status, busy) = {
            let c = lock(&self.corr);
            let mut n = [0u64; 3];
            for i in c.incidents() {
                n[i.status as usize] += 1;
            }
            (c.stats, n, c.busy() && c.config().busy_onset_hops.is_some())
        };
        let counter = |out: &mut String, name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            out,
            "auspex_incident_signals_total",
            "Signal occurrences folded into incidents.",
            &[("", st.signals)],
        );
        counter(
            out,
            "auspex_incidents_opened_total",
            "Incidents opened by the correlator.",
            &[("", st.opened)],
        );
        counter(
            out,
            "auspex_incident_joins_total",
            "Signals that joined an open incident, by relation.",
            &[
                ("{relation=\"co_onset\"}", st.joined_co_onset),
                ("{relation=\"label\"}", st.joined_label),
                ("{relation=\"topology\"}", st.joined_topology),
            ],
        );
        counter(
            out,
            "auspex_incident_repeats_total",
            "Repeats counted in their incident instead of a new signal.",
            &[("{kind=\"duplicate\"}", st.repeats), ("{kind=\"flapping\"}", st.flapping_repeats)],
        );
        counter(
            out,
            "auspex_incidents_evicted_total",
            "Incidents let go from memory (max_incidents).",
            &[("", st.evicted)],
        );
        counter(
            out,
            "auspex_notifications_total",
            "Incident notifications, by outcome (failed: after every retry; dropped: over notify.max_pending; silenced: held back by a silence).",
            &[
                ("{outcome=\"delivered\"}", self.notified[0].load(Relaxed)),
                ("{outcome=\"failed\"}", self.notified[1].load(Relaxed)),
                ("{outcome=\"dropped\"}", self.notified[2].load(Relaxed)),
                ("{outcome=\"silenced\"}", self.notified[3].load(Relaxed)),
            ],
        );
        counter(
            out,
            "auspex_alertmanager_resent_total",
            "Alerts of active incidents sent again to alertmanager targets, by outcome.",
            &[
                ("{outcome=\"delivered\"}", self.resends[0].load(Relaxed)),
                ("{outcome=\"failed\"}", self.resends[1].load(Relaxed)),
            ],
        );
        let (now, mut n) = (now_ms(), [0usize; 3]);
        for s in lock(&self.silences).iter() {
            n[s.state(now) as usize] += 1;
        }
        let _ = writeln!(
            out,
            "# HELP auspex_silences Silences, by state (expired: kept for notify.silence_retention).\n# TYPE auspex_silences gauge"
        );
        for (i, st) in ["pending", "active", "expired"].iter().enumerate() {
            let _ = writeln!(out, "auspex_silences{{state=\"{st}\"}} {}", n[i]);
        }
        let _ = writeln!(
            out,
            "# HELP auspex_incidents Incidents held in memory, by status.\n# TYPE auspex_incidents gauge"
        );
        for (i, s) in [Status::Open, Status::Acknowledged, Status::Resolved].iter().enumerate() {
            let _ = writeln!(out, "auspex_incidents{{status=\"{}\"}} {}", s.as_str(), by_status[i]);
        }
        let _ = writeln!(
            out,
            "# HELP auspex_incident_co_onset_limited 1 while incidents open so often that co-onset is held to busy_onset_hops.\n# TYPE auspex_incident_co_onset_limited gauge\nauspex_incident_co_onset_limited {}",
            u8::from(busy)
        );
    }

    /// A hub for the configuration; the topology file is read here.
    pub fn new(cfg: &crate::Config) -> Result<Self, String> {
        let topo = if cfg.incidents.topology.is_empty() {
            Topology::default()
        } else {
            Topology::load(std::path::Path::new(&cfg.incidents.topology))
                .map_err(|e| e.to_string())?
        };
        Ok(Self {
            corr: Mutex::new(Correlator::new(cfg.incidents.correlator(), topo)),
            dirty: Mutex::new(BTreeSet::new()),
            writing: tokio::sync::Mutex::new(()),
            notified: Default::default(),
            outbox: Mutex::new(Outbox::default()),
            resent: Mutex::new(HashMap::new()),
            resending: Default::default(),
            resends: Default::default(),
            causes: Mutex::new(HashMap::new()),
            silences: Mutex::new(Vec::new()),
        })
    }

    /// Takes back stored silences (start-up).
    pub fn restore_silences(&self, silences: Vec<Silence>) {
        *lock(&self.silences) = silences;
    }

    /// Takes back stored incidents (start-up).
    pub fn restore(&self, incidents: Vec<Incident>) {
        lock(&self.corr).restore(incidents, now_ms());
    }

    /// The flap window, for start-up loading.
    pub fn flap_window_ms(&self) -> i64 {
        lock(&self.corr).config().flap_window_ms
    }

    /// Learns call edges from traces (they relate signals of neighbouring services).
    pub fn learn_edges(&self, edges: &[(String, String)]) {
        let mut c = lock(&self.corr);
        for (a, b) in edges {
            c.add_edge(a, b);
        }
    }

    fn mark(&self, ids: impl IntoIterator<Item = IncidentId>) {
        lock(&self.dirty).extend(ids);
    }
}

fn event_of(c: Change) -> Option<Event> {
    match c {
        Change::Opened(_) => Some(Event::Opened),
        Change::Escalated(_) => Some(Event::Escalated),
        Change::Resolved(_) => Some(Event::Resolved),
        Change::Reopened(_, false) => Some(Event::Reopened),
        Change::Reopened(_, true) | Change::Updated(_) => None,
    }
}

/// The change events (deploys, config, flags) from an hour before the incident opened to its
/// end (or now).
pub(crate) async fn changes_around<S: MlflowStore>(app: &App<S>, inc: &Incident) -> Vec<Signal> {
    let to = inc.resolved.unwrap_or_else(now_ms).max(inc.last_signal);
    app.store.list_changes(inc.opened.saturating_sub(3_600_000), to, 1000).await.unwrap_or_default()
}

/// The incident's likely root causes, best first (at most `n`): its signals as evidence
/// (a detector signal's deviation is a robust z already; an alert counts as 3 + 3 × score),
/// the call graph from the topology file and from traces around its services, and `changes`
/// (from [`changes_around`]).
pub fn root_causes<S: MlflowStore>(
    app: &App<S>,
    inc: &Incident,
    changes: &[Signal],
    n: usize,
) -> Vec<auspex_rca::Candidate> {
    use auspex_rca::{CallGraph, ChangeEvent, Evidence};
    let service_label = &app.cfg.incidents.service_label;
    let mut evidence: std::collections::BTreeMap<String, Vec<Evidence>> = Default::default();
    for m in &inc.signals {
        let Some(svc) = m.labels.get(service_label).or_else(|| m.labels.get("job")) else {
            continue;
        };
        let series = auspex_incidents::signal_name(&m.labels, m.kind).to_string();
        let z = m.deviation.map_or(3.0 + 3.0 * m.score, f64::abs);
        evidence.entry(svc.to_string()).or_default().push(Evidence { series, z, time: m.start });
    }
    // Candidates: the incident's services and their neighbours, with the edges among them.
    let mut graph = CallGraph::new();
    {
        let c = lock(&app.incidents.corr);
        let mut near: BTreeSet<&str> = evidence.keys().map(String::as_str).collect();
        for (a, b) in c.topology().edges() {
            if evidence.contains_key(a) || evidence.contains_key(b) {
                near.extend([a, b]);
            }
        }
        for s in &near {
            graph.add_node(s);
        }
        for (a, b) in c.topology().edges() {
            if near.contains(a) && near.contains(b) {
                graph.add_edge(a, b);
            }
        }
    }
    let changes: Vec<ChangeEvent> = changes
        .iter()
        .filter_map(|c| {
            let svc = c.labels.get("service")?.to_string();
            let kind = c.labels.get("change_kind").unwrap_or("change");
            let what = match c.labels.get("version") {
                Some(v) => format!("{kind} {v}"),
                None => kind.to_string(),
            };
            Some(ChangeEvent { time: c.start, service: svc, what })
        })
        .collect();
    let symptom = inc.signals.first().and_then(|m| Some((m.labels.get(service_label)?, m.start)));
    let mut r = auspex_rca::rank_evidence(
        evidence,
        &graph,
        &changes,
        symptom,
        inc.opened,
        &auspex_rca::Config::default(),
    );
    r.truncate(n);
    r
}

/// Folds durable signals into incidents, writes what changed, and notifies.
pub async fn fold<S: MlflowStore>(app: &Arc<App<S>>, signals: &[Signal]) {
    if signals.is_empty() {
        return;
    }
    let changes: Vec<Change> = {
        let mut c = lock(&app.incidents.corr);
        let changes: Vec<Change> = signals.iter().flat_map(|s| c.observe(s)).collect();
        enqueue(app, &mut c, &changes);
        changes
    };
    apply(app, changes).await;
}

/// Writes the incidents `changes` touched.
async fn apply<S: MlflowStore>(app: &Arc<App<S>>, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    app.incidents.mark(changes.iter().map(|c| c.id()));
    persist(app).await;
}

/// Queues the notifications of `changes`, just made on `c`. The caller still holds the
/// correlator's lock, so the notifications of one incident queue in the order of its changes
/// whoever made them.
fn enqueue<S: MlflowStore>(app: &Arc<App<S>>, c: &mut Correlator, changes: &[Change]) {
    if app.cfg.notify.targets.is_empty() {
        return;
    }
    for &ch in changes {
        let Some(ev) = event_of(ch) else { continue };
        queue(app, c, ch.id(), ev, false);
    }
}

/// Queues notification `ev` of incident `id` if some target wants it, and notes it in the
/// incident's `unsent` (already there when `resumed`), which is written with the incident, so
/// a restart resends it. One over `[notify] max_pending` is dropped, counted and recorded in
/// the incident's timeline.
fn queue<S: MlflowStore>(
    app: &Arc<App<S>>,
    c: &mut Correlator,
    id: IncidentId,
    ev: Event,
    resumed: bool,
) {
    let max = app.cfg.notify.max_pending;
    let max_t = c.config().max_timeline;
    let Some(inc) = c.get_mut(id) else { return };
    if !app.cfg.notify.targets.iter().any(|t| notify::wants(t, ev, inc)) {
        if resumed {
            unsent_done(inc, ev);
        }
        return;
    }
    // A resumed notification (owed since before a restart) meets the silences made since.
    let ev = match unsilenced(app, inc, ev, max_t) {
        Some(sent) => {
            if resumed && sent != ev {
                // In its place, so a later restart resumes them in the same order.
                if let Some(u) = inc.unsent.iter_mut().find(|u| *u == ev.as_str()) {
                    *u = sent.as_str().to_string();
                }
            }
            sent
        }
        None => {
            if resumed {
                unsent_done(inc, ev);
            }
            return;
        }
    };
    let start_worker = {
        let mut ob = lock(&app.incidents.outbox);
        if ob.pending < max {
            ob.pending += 1;
            let mut snap = inc.clone();
            snap.unsent.clear();
            let q = ob.queues.entry(id).or_default();
            q.push_back((ev, Arc::new(snap)));
            Some(q.len() == 1)
        } else {
            None
        }
    };
    match start_worker {
        Some(started) => {
            if !resumed {
                inc.unsent.push(ev.as_str().to_string());
            }
            if started {
                let app = app.clone();
                tokio::spawn(async move { drain(&app, id).await });
            }
        }
        None => {
            app.incidents.notified[2].fetch_add(1, Relaxed);
            let d = format!(
                "{} dropped: {max} notifications pending (notify.max_pending)",
                ev.as_str()
            );
            eprintln!("auspex: incident {id}: {d}");
            if resumed {
                unsent_done(inc, ev);
            }
            inc.record(max_t, now_ms(), "notify_failed", d);
        }
    }
}

/// What to send for notification `ev` of `inc`, given the silences; `None` holds it back
/// (recorded in its timeline and in its `withheld`):
/// - while every signal of `inc` matches an active silence, `opened`, `escalated` and
///   `reopened` are held back;
/// - `resolved` is held back only if the incident's opening was, as no one was told of it;
///   otherwise it goes out even when silenced (a receiver that was told it opened, say
///   PagerDuty, must hear that it ended);
/// - once no silence covers it, the next notification is the opening held back, if any (a
///   receiver never told of the incident hears of it as opened), else `ev`.
fn unsilenced<S: MlflowStore>(
    app: &App<S>,
    inc: &mut Incident,
    ev: Event,
    max_t: usize,
) -> Option<Event> {
    let opening = inc
        .withheld
        .iter()
        .filter_map(|w| Event::parse(w))
        .find(|e| matches!(e, Event::Opened | Event::Reopened));
    if ev == Event::Resolved {
        inc.withheld.clear();
        if opening.is_some() {
            app.incidents.notified[3].fetch_add(1, Relaxed);
            let d = "resolved not sent: its opening was silenced, so no one was told of it";
            inc.record(max_t, now_ms(), "silenced", d.into());
            return None;
        }
        return Some(ev);
    }
    let cover = silence::covering(&lock(&app.incidents.silences), inc, now_ms());
    if let Some(ids) = cover {
        if !inc.withheld.iter().any(|w| w == ev.as_str()) {
            inc.withheld.push(ev.as_str().to_string());
        }
        app.incidents.notified[3].fetch_add(1, Relaxed);
        let d =
            format!("{} not sent: every signal matches silence {}", ev.as_str(), ids.join(", "));
        inc.record(max_t, now_ms(), "silenced", d);
        return None;
    }
    inc.withheld.clear();
    Some(opening.unwrap_or(ev))
}

/// Sends what silences held back of incidents no silence covers any more (one expired, was
/// expired by hand, or a new signal outside it joined), and forgets it for resolved ones.
/// Run by the tick and after a silence is expired.
pub(crate) async fn release_withheld<S: MlflowStore>(app: &Arc<App<S>>) {
    let touched = {
        let mut c = lock(&app.incidents.corr);
        let ids: Vec<IncidentId> =
            c.incidents().filter(|i| !i.withheld.is_empty()).map(|i| i.id).collect();
        let (now, max_t) = (now_ms(), c.config().max_timeline);
        let mut touched = Vec::new();
        for id in ids {
            let Some(inc) = c.get_mut(id) else { continue };
            if inc.status != Status::Resolved {
                if silence::covering(&lock(&app.incidents.silences), inc, now).is_some() {
                    continue;
                }
                let first = inc.withheld.first().and_then(|w| Event::parse(w));
                inc.record(max_t, now, "unsilenced", "no silence covers it any more".into());
                if let Some(ev) = first {
                    queue(app, &mut c, id, ev, false);
                }
            }
            if let Some(inc) = c.get_mut(id) {
                inc.withheld.clear();
            }
            touched.push(id);
        }
        touched
    };
    if !touched.is_empty() {
        app.incidents.mark(touched);
        persist(app).await;
    }
}

/// Whether receivers were told of `inc`: no silence holds back its opening.
pub(crate) fn announced(inc: &Incident) -> bool {
    !inc.withheld.iter().any(|w| matches!(w.as_str(), "opened" | "reopened"))
}

/// Copies of the active incidents, without their timelines (members are shared `Arc`s).
pub(crate) fn active_copies(c: &mut Correlator) -> Vec<Incident> {
    let ids: Vec<IncidentId> =
        c.incidents().filter(|i| i.status != Status::Resolved).map(|i| i.id).collect();
    ids.into_iter()
        .filter_map(|id| {
            let inc = c.get_mut(id)?;
            let timeline = std::mem::take(&mut inc.timeline);
            let copy = inc.clone();
            inc.timeline = timeline;
            Some(copy)
        })
        .collect()
}

/// Alerts per request to Alertmanager.
const ALERTMANAGER_BATCH: usize = 256;

/// Sends again, to each `alertmanager` target whose `resend` is due, the alerts of the active
/// incidents in memory it wants, so they stay firing there; not those whose opening a silence
/// held back (Alertmanager never heard of them), but those it did hear of even while a silence
/// now covers them (stopping would end the alert there, a false "resolved");
/// batched, not retried (the next round is). Runs in a task of its own, one at a time, so a
/// slow Alertmanager never holds up the tick. Run by the tick.
pub(crate) fn resend_alertmanager<S: MlflowStore>(app: &Arc<App<S>>) {
    let targets = &app.cfg.notify.targets;
    if !targets.iter().any(|t| t.kind == "alertmanager") {
        return;
    }
    if app.incidents.resending.swap(true, Relaxed) {
        return;
    }
    let now = now_ms();
    let due: Vec<usize> = {
        let mut last = lock(&app.incidents.resent);
        let every = |i: usize| i64::try_from(targets[i].resend.as_millis()).unwrap_or(i64::MAX);
        (0..targets.len())
            .filter(|&i| targets[i].kind == "alertmanager")
            .filter(|&i| {
                let at = last.entry(i).or_insert(i64::MIN);
                let due = now.saturating_sub(*at) >= every(i);
                if due {
                    *at = now;
                }
                due
            })
            .collect()
    };
    if due.is_empty() {
        app.incidents.resending.store(false, Relaxed);
        return;
    }
    // Under the lock only copies (without their timelines: members are shared `Arc`s); the
    // alerts are made on a blocking thread.
    let active = active_copies(&mut lock(&app.incidents.corr));
    let causes = {
        let mut causes = lock(&app.incidents.causes);
        let ids: std::collections::HashSet<IncidentId> = active.iter().map(|i| i.id).collect();
        causes.retain(|id, _| ids.contains(id));
        causes.clone()
    };
    let app = app.clone();
    tokio::spawn(async move {
        let build = {
            let app = app.clone();
            move || -> Vec<(usize, Vec<serde_json::Value>)> {
                let targets = &app.cfg.notify.targets;
                let active: Vec<&Incident> = active.iter().filter(|i| announced(i)).collect();
                due.iter()
                    .map(|&k| {
                        let t = &targets[k];
                        let alerts = active
                            .iter()
                            .filter(|i| notify::wants(t, Event::Opened, i))
                            .flat_map(|i| {
                                let cause = causes.get(&i.id).map(String::as_str);
                                let link = notify::incident_link(&app.cfg.notify, i);
                                let about = (cause, link.as_deref());
                                notify::alertmanager_alerts(t, None, i, about, now)
                            })
                            .collect();
                        (k, alerts)
                    })
                    .collect()
            }
        };
        let batches = tokio::task::spawn_blocking(build).await.unwrap_or_default();
        for (k, alerts) in batches {
            let t = &app.cfg.notify.targets[k];
            if !notify::allowed(&app.cfg.notify.allow, &t.url) {
                continue;
            }
            let mut sent = 0;
            for chunk in alerts.chunks(ALERTMANAGER_BATCH) {
                let body = serde_json::to_vec(chunk).unwrap_or_default();
                let (url, to) = (t.url.clone(), app.cfg.notify.timeout);
                let r =
                    tokio::task::spawn_blocking(move || notify::post_once(&url, &body, None, to))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r);
                if let Err(e) = r {
                    let left = (alerts.len() - sent) as u64;
                    app.incidents.resends[1].fetch_add(left, Relaxed);
                    eprintln!("auspex: resending {left} alert(s) to {}: {e}", t.url);
                    break;
                }
                sent += chunk.len();
                app.incidents.resends[0].fetch_add(chunk.len() as u64, Relaxed);
            }
        }
        app.incidents.resending.store(false, Relaxed);
    });
}

/// Takes `ev` off `inc`'s unsent notifications (the oldest of that name).
fn unsent_done(inc: &mut Incident, ev: Event) {
    if let Some(i) = inc.unsent.iter().position(|u| u == ev.as_str()) {
        inc.unsent.remove(i);
    }
}

/// Queues again the notifications that incidents in memory still hold as unsent (start-up:
/// they were queued before a stop or crash and not sent).
pub async fn resume_notifications<S: MlflowStore>(app: &Arc<App<S>>) {
    let touched = {
        let mut c = lock(&app.incidents.corr);
        let ids: Vec<IncidentId> =
            c.incidents().filter(|i| !i.unsent.is_empty()).map(|i| i.id).collect();
        requeue_unsent(app, &mut c, ids)
    };
    if !touched.is_empty() {
        app.incidents.mark(touched);
        persist(app).await;
    }
}

/// Queues again the unsent notifications of incidents `ids` in memory, except for an incident
/// whose queue still holds them (let go from memory and brought back while its sender runs:
/// the sender takes them off as it goes). Returns the incidents whose `unsent` changed or
/// were queued.
fn requeue_unsent<S: MlflowStore>(
    app: &Arc<App<S>>,
    c: &mut Correlator,
    ids: Vec<IncidentId>,
) -> Vec<IncidentId> {
    let mut touched = Vec::new();
    for id in ids {
        if lock(&app.incidents.outbox).queues.contains_key(&id) {
            continue;
        }
        let unsent = c.get(id).map(|i| i.unsent.clone()).unwrap_or_default();
        if unsent.is_empty() {
            continue;
        }
        for name in unsent {
            match Event::parse(&name) {
                Some(ev) => queue(app, c, id, ev, true),
                None => {
                    if let Some(inc) = c.get_mut(id) {
                        inc.unsent.retain(|u| *u != name);
                    }
                }
            }
        }
        touched.push(id);
    }
    touched
}

/// Sends incident `id`'s queued notifications in order until its queue is empty; each one
/// sent (or given up on) leaves the incident's `unsent`.
async fn drain<S: MlflowStore>(app: &Arc<App<S>>, id: IncidentId) {
    loop {
        let next = lock(&app.incidents.outbox).queues.get(&id).and_then(|q| q.front().cloned());
        let Some((ev, inc)) = next else { return };
        notify_all(app, ev, &inc).await;
        record_on(app, id, |i| unsent_done(i, ev)).await;
        persist(app).await;
        let mut ob = lock(&app.incidents.outbox);
        ob.pending = ob.pending.saturating_sub(1);
        let Some(q) = ob.queues.get_mut(&id) else { return };
        q.pop_front();
        if q.is_empty() {
            ob.queues.remove(&id);
            return;
        }
    }
}

/// Sends `ev` to every target that wants it and records each outcome in the incident's
/// timeline; the caller ([`drain`]) writes them, together with the incident's `unsent`.
async fn notify_all<S: MlflowStore>(app: &Arc<App<S>>, ev: Event, inc: &Incident) {
    let targets: Vec<_> =
        app.cfg.notify.targets.iter().filter(|t| notify::wants(t, ev, inc)).collect();
    if targets.is_empty() {
        return;
    }
    let causes = if ev == Event::Resolved {
        Vec::new()
    } else {
        root_causes(app, inc, &changes_around(app, inc).await, 3)
    };
    if let Some(c) = causes.first().filter(|_| targets.iter().any(|t| t.kind == "alertmanager")) {
        lock(&app.incidents.causes).insert(inc.id, c.explanation.clone());
    }
    for t in targets {
        let name = if t.name.is_empty() { t.kind.as_str() } else { t.name.as_str() };
        let (what, detail) = match notify::deliver(&app.cfg.notify, t, ev, inc, &causes).await {
            Ok(n) => ("notified", format!("{name}: {} delivered ({n} attempt(s))", ev.as_str())),
            Err(e) => ("notify_failed", format!("{name}: {} not delivered: {e}", ev.as_str())),
        };
        let failed = what == "notify_failed";
        app.incidents.notified[usize::from(failed)].fetch_add(1, Relaxed);
        if failed {
            eprintln!("auspex: incident {}: {detail}", inc.id);
        }
        let max = lock(&app.incidents.corr).config().max_timeline;
        record_on(app, inc.id, |i| i.record(max, now_ms(), what, detail)).await;
    }
}

/// Applies `f` (a notification outcome) to incident `id` where its latest state is, under the
/// incident writer's lock (no incident write or bring-back runs meanwhile): in memory (marked
/// under the correlator's lock, so the tick cannot let it go unwritten), among those let go
/// and waiting to be written, or else in the store, read, changed and written back. So an
/// outcome is recorded, and a notification sent is not resent, however memory's bound moved it.
async fn record_on<S: MlflowStore>(
    app: &Arc<App<S>>,
    id: IncidentId,
    f: impl FnOnce(&mut Incident),
) {
    let _writer = app.incidents.writing.lock().await;
    {
        let mut c = lock(&app.incidents.corr);
        if let Some(i) = c.get_mut(id) {
            f(i);
            app.incidents.mark([id]);
            return;
        }
        if let Some(i) = c.let_go_copy_mut(id) {
            f(i);
            return;
        }
    }
    let Ok(Some(mut inc)) = app.store.get_incident(id).await else { return };
    f(&mut inc);
    if app.store.put_incidents(&[inc]).await.is_err() {
        app.engine.metrics.store_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Writes the incidents marked as changed; on failure they stay marked.
pub async fn persist<S: IncidentStore>(app: &App<S>) {
    // One writer at a time: snapshots are taken and written in order (two concurrent writers
    // could commit an older snapshot last), and callers that marked incidents while another
    // was writing find them written together by the next one (group commit).
    let _writer = app.incidents.writing.lock().await;
    // Incidents let go from memory since the last write (its bound, or the tick): their last
    // changes may not be written yet, and only this copy is left of them. They go first: one
    // brought back since is written after, as it is now. (The correlator's lock is taken
    // before the dirty set's, here and in the tick, so an incident is always in one of them.)
    let (snap, gone) = {
        let mut c = lock(&app.incidents.corr);
        let ids = std::mem::take(&mut *lock(&app.incidents.dirty));
        let mut snap = c.take_let_go();
        let gone = snap.len();
        snap.extend(ids.iter().filter_map(|id| c.get(*id).cloned()));
        (snap, gone)
    };
    if snap.is_empty() {
        return;
    }
    if app.store.put_incidents(&snap).await.is_err() {
        app.engine.metrics.store_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Written next time: those still in memory as they will be then, the others (let go,
        // also since the snapshot) as they were.
        let mut c = lock(&app.incidents.corr);
        let (mut kept, mut marked) = (Vec::new(), Vec::new());
        for (i, inc) in snap.into_iter().enumerate() {
            if i >= gone && c.get(inc.id).is_some() {
                marked.push(inc.id);
            } else {
                kept.push(inc);
            }
        }
        c.keep_let_go(kept);
        app.incidents.mark(marked);
    }
}

/// The auto-resolution worker.
pub async fn tick_loop<S: MlflowStore>(app: Arc<App<S>>) {
    let mut t = tokio::time::interval(app.cfg.incidents.tick);
    loop {
        t.tick().await;
        let changes = {
            let mut c = lock(&app.incidents.corr);
            let changes = {
                let dirty = lock(&app.incidents.dirty);
                c.tick_keeping(now_ms(), |id| dirty.contains(&id))
            };
            enqueue(&app, &mut c, &changes);
            changes
        };
        apply(&app, changes).await;
        crate::events::expire_alerts(&app).await;
        release_withheld(&app).await;
        crate::silences::tidy(&app).await;
        resend_alertmanager(&app);
        crate::traces::flush(&app, now_ms()).await;
        persist(&app).await;
    }
}

/// A JSON error: `{"error": msg}`.
pub(crate) fn reply(code: StatusCode, msg: String) -> Response {
    (code, axum::Json(json!({"error": msg}))).into_response()
}

pub(crate) type Refusal = (StatusCode, String);

fn refuse((code, msg): Refusal) -> Response {
    reply(code, msg)
}

pub(crate) fn parse_id(id: &str) -> Result<IncidentId, Refusal> {
    id.parse::<IncidentId>()
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("incident id {id:?}: {e}")))
}

/// Query of `GET /auspex/v1/incidents` (and of the page `GET /ui/incidents`).
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
}

impl ListQuery {
    /// The status asked for (`None`: all), or why it is not one.
    fn status(&self) -> Result<Option<Status>, String> {
        match self.status.as_deref() {
            None | Some("") | Some("all") => Ok(None),
            Some(s) => Status::parse(s)
                .map(Some)
                .ok_or_else(|| format!("status {s:?}: use open, acknowledged, resolved or all")),
        }
    }

    /// How many to list (default 100, at most 10,000).
    fn limit(&self) -> usize {
        self.limit.unwrap_or(100).min(10_000)
    }
}

/// `GET /auspex/v1/incidents`.
pub async fn list<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Query(q): Query<ListQuery>,
) -> Response {
    match listed(&app, &q).await {
        Ok(v) => axum::Json(json!({"incidents": v})).into_response(),
        Err(r) => refuse(r),
    }
}

/// The incidents `q` asks for, newest first, after writing those waiting to be written (the
/// JSON list and the page for people).
pub(crate) async fn listed<S: MlflowStore>(
    app: &App<S>,
    q: &ListQuery,
) -> Result<Vec<Incident>, Refusal> {
    let status = q.status().map_err(|msg| (StatusCode::BAD_REQUEST, msg))?;
    persist(app).await;
    (app.store.list_incidents(status, q.limit()).await)
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")))
}

pub(crate) async fn load<S: MlflowStore>(
    app: &App<S>,
    id: IncidentId,
) -> Result<Incident, Refusal> {
    if let Some(i) = lock(&app.incidents.corr).get(id).cloned() {
        return Ok(i);
    }
    // Let go from memory: the store may hold an older state than the copy waiting to be
    // written, or than the one being written now (hence the writer's lock: that write is
    // over, and no other starts before the store is read).
    let _writer = app.incidents.writing.lock().await;
    if let Some(i) = {
        let c = lock(&app.incidents.corr);
        c.get(id).or_else(|| c.let_go_copy(id)).cloned()
    } {
        return Ok(i);
    }
    match app.store.get_incident(id).await {
        Ok(Some(i)) => Ok(i),
        Ok(None) => Err((StatusCode::NOT_FOUND, format!("no incident {id}"))),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}"))),
    }
}

/// `GET /auspex/v1/incidents/{id}`: the incident and the change events from an hour before
/// it opened to its end (or now).
pub async fn show<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return refuse(r),
    };
    let inc = match load(&app, id).await {
        Ok(i) => i,
        Err(r) => return refuse(r),
    };
    let changes = changes_around(&app, &inc).await;
    let causes = root_causes(&app, &inc, &changes, 5);
    axum::Json(json!({"incident": inc, "changes": changes, "root_causes": causes})).into_response()
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default)]
    by: Option<String>,
    /// Merge only: the incident to merge into this one.
    #[serde(default)]
    from: Option<String>,
    /// Split only: fingerprints of the signals to move to a new incident.
    #[serde(default)]
    signals: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ack,
    Resolve,
    Merge,
    Split,
}

/// Brings incident `id` into memory if it is only in the store (let go, or from before a
/// restart), with the notifications it still owes queued again; a resolved one is refused
/// with 409.
async fn in_memory<S: MlflowStore>(app: &Arc<App<S>>, id: IncidentId) -> Result<(), Refusal> {
    if lock(&app.incidents.corr).get(id).is_some() {
        return Ok(());
    }
    match load(app, id).await {
        Ok(inc) if inc.status == Status::Resolved => {
            Err((StatusCode::CONFLICT, ActionError::AlreadyResolved(id).to_string()))
        }
        Ok(inc) => {
            let touched = {
                let mut c = lock(&app.incidents.corr);
                if c.get(id).is_some() {
                    return Ok(()); // brought back meanwhile (by a concurrent action)
                }
                c.bring_back(inc, now_ms());
                requeue_unsent(app, &mut c, vec![id])
            };
            app.incidents.mark(touched);
            Ok(())
        }
        Err(r) => Err(r),
    }
}

async fn act<S: MlflowStore>(app: Arc<App<S>>, id: String, body: Bytes, what: Action) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return refuse(r),
    };
    let b: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return reply(StatusCode::BAD_REQUEST, format!("malformed body: {e}")),
        }
    };
    let from = match (what, b.from.as_deref()) {
        (Action::Merge, Some(f)) => match parse_id(f) {
            Ok(f) => Some(f),
            Err(r) => return refuse(r),
        },
        (Action::Merge, None) => {
            return reply(
                StatusCode::BAD_REQUEST,
                "merge needs {\"from\": \"<incident id>\"}".into(),
            );
        }
        (_, Some(_)) => return reply(StatusCode::BAD_REQUEST, "\"from\" is only for merge".into()),
        (_, None) => None,
    };
    let take: Vec<Fingerprint> = match (what, &b.signals) {
        (Action::Split, Some(list)) => {
            match list.iter().map(|f| f.parse::<Fingerprint>()).collect::<Result<_, _>>() {
                Ok(v) => v,
                Err(_) => {
                    let why = "signals must be fingerprints of 16 hex digits (see incidents show)";
                    return reply(StatusCode::BAD_REQUEST, why.into());
                }
            }
        }
        (Action::Split, None) => {
            let why = "split needs {\"signals\": [\"<fingerprint>\", ...]}";
            return reply(StatusCode::BAD_REQUEST, why.into());
        }
        (_, Some(_)) => {
            return reply(StatusCode::BAD_REQUEST, "\"signals\" is only for split".into());
        }
        (_, None) => Vec::new(),
    };
    let by = b.by.filter(|s| !s.is_empty()).unwrap_or_else(|| "api".into());
    for i in std::iter::once(id).chain(from) {
        if let Err(r) = in_memory(&app, i).await {
            return refuse(r);
        }
    }
    let mut split_into = None;
    let r = {
        let mut c = lock(&app.incidents.corr);
        let r = match (what, from) {
            (Action::Ack, _) => c.ack(id, now_ms(), &by).map(|ch| vec![ch]),
            (Action::Resolve, _) => c.resolve(id, now_ms(), &by).map(|ch| vec![ch]),
            (Action::Merge, Some(f)) => c.merge(id, f, now_ms(), &by),
            (Action::Merge, None) => Ok(Vec::new()),
            (Action::Split, _) => c.split(id, &take, now_ms(), &by).map(|(new, ch)| {
                split_into = Some(new);
                ch
            }),
        };
        if let Ok(changes) = &r {
            enqueue(&app, &mut c, changes);
        }
        r
    };
    match r {
        Ok(changes) => {
            apply(&app, changes).await;
            let c = lock(&app.incidents.corr);
            let inc = c.get(id).cloned();
            let new = split_into.and_then(|n| c.get(n).cloned());
            let mut v = json!({"incident": inc});
            if split_into.is_some() {
                v["split"] = json!(new);
            }
            axum::Json(v).into_response()
        }
        Err(e @ ActionError::NotFound(_)) => reply(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ ActionError::AlreadyResolved(_)) => reply(StatusCode::CONFLICT, e.to_string()),
        Err(e @ (ActionError::SameIncident(_) | ActionError::BadSplit(..))) => {
            reply(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

/// `POST /auspex/v1/incidents/{id}/{action}`: `ack`, `resolve`, `merge` (body
/// `{"from": "<id>"}`: the other incident's signals join this one and it is resolved as
/// merged) or `split` (body `{"signals": ["<fingerprint>", ...]}`: those signals leave for a
/// new incident, returned in `split`). An unknown action is a 404.
pub async fn action<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let what = match action.as_str() {
        "ack" => Action::Ack,
        "resolve" => Action::Resolve,
        "merge" => Action::Merge,
        "split" => Action::Split,
        _ => {
            let why = format!("no action {action:?} (use ack, resolve, merge or split)");
            return reply(StatusCode::NOT_FOUND, why);
        }
    };
    act(app, id, body, what).await
}
