use super::*;

const MIN: i64 = 60_000;

fn sig(name: &str, pairs: &[(&str, &str)], start: i64, score: f64) -> Signal {
    let mut l = vec![("alertname", name)];
    l.extend_from_slice(pairs);
    let labels = Labels::from_pairs(l).unwrap();
    Signal::new(
        SignalKind::Alert,
        labels,
        start,
        score,
        Explanation::Text { message: String::new() },
    )
}

fn ended(mut s: Signal, end: i64) -> Signal {
    s.end = Some(end);
    s
}

fn topo() -> Topology {
    Topology::parse("edges: [{from: web, to: api}, {from: api, to: db}, {from: web, to: search}]")
        .unwrap()
}

fn ids(c: &[Change]) -> Vec<IncidentId> {
    c.iter().map(|c| c.id()).collect()
}

#[test]
fn shared_service_and_topology_group_and_time_splits() {
    let mut c = Correlator::new(Config::default(), topo());
    let a = c.observe(&sig("HighLatency", &[("service", "api")], 0, 0.7));
    assert!(matches!(a[0], Change::Opened(_)));
    let id = a[0].id();
    assert_eq!(id.0, sig("HighLatency", &[("service", "api")], 0, 0.7).id.0, "id of the first");
    // Same service: joins.
    assert_eq!(ids(&c.observe(&sig("Errors", &[("service", "api")], 3 * MIN, 0.7))), vec![id]);
    // Topology neighbour of a member's service: joins.
    assert_eq!(ids(&c.observe(&sig("SlowQueries", &[("service", "db")], 6 * MIN, 0.7))), vec![id]);
    // Unrelated service, not at the same moment: its own incident.
    let other = c.observe(&sig("DiskFull", &[("service", "batch")], 9 * MIN, 0.7));
    assert!(matches!(other[0], Change::Opened(_)));
    // Co-onset: an unrelated service firing within the burst of a member joins it.
    assert_eq!(
        ids(&c.observe(&sig("Queue", &[("service", "mq")], 10 * MIN, 0.7))),
        vec![other[0].id()]
    );
    // Same service but long after the window: a new incident.
    let late = c.observe(&sig("Errors2", &[("service", "api")], 40 * MIN, 0.7));
    assert!(matches!(late[0], Change::Opened(_)));
    let inc = c.get(id).unwrap();
    assert_eq!(inc.signals.len(), 3);
    assert_eq!(inc.services.iter().map(String::as_str).collect::<Vec<_>>(), ["api", "db"]);
    assert_eq!(inc.timeline[0].event, "opened");
    // The timeline says why each signal joined.
    let why: Vec<&str> = inc.timeline[1..].iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(
        why,
        [
            "Errors on api (shares service=\"api\" with a recent signal)",
            "SlowQueries on db (db is linked to api in the topology)"
        ]
    );
    let queue = &c.get(other[0].id()).unwrap().timeline[1].detail;
    assert_eq!(queue, "Queue on mq (started within 120 s of the incident's first signal)");
}

#[test]
fn scope_labels_partition() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let a = c.observe(&sig("A", &[("service", "api"), ("namespace", "prod")], 0, 0.5));
    let b = c.observe(&sig("B", &[("service", "api"), ("namespace", "staging")], 0, 0.5));
    assert_ne!(a[0].id(), b[0].id());
    let d = c.observe(&sig("C", &[("service", "api"), ("namespace", "prod")], 2 * MIN, 0.5));
    assert_eq!(d[0].id(), a[0].id());
}

#[test]
fn duplicates_are_counted_not_listed() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let s = sig("A", &[("service", "api")], 0, 0.5);
    let id = c.observe(&s)[0].id();
    // Redelivery of the same occurrence changes nothing but may close it.
    assert!(c.observe(&s).is_empty());
    c.observe(&ended(s.clone(), 2 * MIN));
    assert_eq!(c.get(id).unwrap().signals[0].end, Some(2 * MIN));
    // A new occurrence of the same fingerprint is a repeat.
    c.observe(&sig("A", &[("service", "api")], 3 * MIN, 0.5));
    let inc = c.get(id).unwrap();
    assert_eq!((inc.signals.len(), inc.signal_count), (1, 2));
    assert_eq!(inc.signals[0].occurrences, 2);
    assert_eq!(inc.signals[0].end, None, "active again");
}

#[test]
fn auto_resolve_waits_for_every_signal_and_the_delay() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let a = sig("A", &[("service", "api")], 0, 0.5);
    let b = sig("B", &[("service", "api")], MIN, 0.5);
    let id = c.observe(&a)[0].id();
    c.observe(&b);
    c.observe(&ended(a, 2 * MIN));
    assert!(c.tick(30 * MIN).is_empty(), "b still active");
    c.observe(&ended(b, 10 * MIN));
    assert!(c.tick(14 * MIN).is_empty(), "not yet 5 min all clear");
    assert_eq!(c.tick(15 * MIN), vec![Change::Resolved(id)]);
    let inc = c.get(id).unwrap();
    assert_eq!(inc.status, Status::Resolved);
    assert_eq!(inc.resolved, Some(15 * MIN));
    assert_eq!(inc.resolved_by.as_deref(), Some("auto"));
    // Long after the flap window it is let go from memory.
    c.tick(60 * MIN);
    assert!(c.get(id).is_none());
}

#[test]
fn repeats_after_a_pause_are_new_until_they_flap() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let mut opened = Vec::new();
    let mut reopened = Vec::new();
    for k in 0..4 {
        let t = k * 7 * MIN;
        let s = sig("Flappy", &[("service", "api")], t, 0.5);
        for ch in c.observe(&s) {
            match ch {
                Change::Opened(id) => opened.push(id),
                Change::Reopened(_, quiet) => reopened.push(quiet),
                _ => {}
            }
        }
        c.observe(&ended(s, t + MIN));
        c.tick(t + 7 * MIN - 1);
    }
    // The second firing, 6 min after the first ended, is a new incident; from the third on
    // (3 starts in 30 min) it flaps and reopens that incident quietly.
    assert_eq!(opened.len(), 2);
    assert_eq!(reopened, vec![true, true]);
    let inc = c.get(opened[1]).unwrap();
    assert!(inc.flapping);
    assert_eq!(inc.signal_count, 3);
    assert_eq!(inc.signals[0].occurrences, 3);
    // The counts behind /metrics: 4 occurrences, 2 incidents, 2 flapping repeats (the ends
    // are not occurrences).
    let st = c.stats;
    assert_eq!((st.signals, st.opened, st.flapping_repeats, st.repeats), (4, 2, 2, 0));
}

#[test]
fn lifecycle_by_hand() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let id = c.observe(&sig("A", &[("service", "api")], 0, 0.5))[0].id();
    assert_eq!(c.ack(id, 5, "ana"), Ok(Change::Updated(id)));
    assert_eq!(c.get(id).unwrap().status, Status::Acknowledged);
    assert_eq!(c.get(id).unwrap().acknowledged_by.as_deref(), Some("ana"));
    assert_eq!(c.resolve(id, 9, "ana"), Ok(Change::Resolved(id)));
    assert_eq!(c.resolve(id, 10, "bo"), Err(ActionError::AlreadyResolved(id)));
    assert_eq!(c.ack(id, 10, "bo"), Err(ActionError::AlreadyResolved(id)));
    assert_eq!(c.ack(IncidentId(1), 10, "bo"), Err(ActionError::NotFound(IncidentId(1))));
    let events: Vec<_> = c.get(id).unwrap().timeline.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["opened", "acknowledged", "resolved"]);
}

#[test]
fn escalation_changes_and_change_events_stay_out() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let id = c.observe(&sig("A", &[("service", "api")], 0, 0.5))[0].id();
    let ch = c.observe(&sig("B", &[("service", "api")], MIN, 0.95));
    assert_eq!(ch, vec![Change::Updated(id), Change::Escalated(id)]);
    assert_eq!(c.get(id).unwrap().severity, Severity::Critical);
    let deploy = Signal::new(
        SignalKind::Change,
        Labels::from_pairs([("service", "api")]).unwrap(),
        MIN,
        0.0,
        Explanation::Text { message: "deploy".into() },
    );
    assert!(c.observe(&deploy).is_empty());
}

#[test]
fn memory_is_bounded_and_restore_rebuilds() {
    let cfg = Config { max_incidents: 3, ..Config::default() };
    let mut c = Correlator::new(cfg.clone(), Topology::default());
    for k in 0..5 {
        c.observe(&sig("A", &[("service", &format!("s{k}"))], k * 3 * MIN, 0.5));
    }
    assert_eq!(c.incidents().count(), 3);
    assert_eq!(c.stats.evicted, 2);
    let kept: Vec<_> = c.incidents().cloned().collect();
    let mut d = Correlator::new(cfg, Topology::default());
    d.restore(kept, 15 * MIN);
    // A repeat of a restored fingerprint goes home; a related signal joins.
    let ch = d.observe(&sig("A", &[("service", "s4")], 16 * MIN, 0.5));
    assert!(matches!(ch[0], Change::Updated(_)));
    let ch = d.observe(&sig("Other", &[("service", "s3")], 16 * MIN, 0.5));
    assert!(matches!(ch[0], Change::Updated(_)));
}

#[test]
fn incident_json_round_trips() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let id = c.observe(&sig("A", &[("service", "api")], 0, 0.5))[0].id();
    let inc = c.get(id).unwrap().clone();
    let j = serde_json::to_value(&inc).unwrap();
    assert_eq!(j["status"], "open");
    assert_eq!(j["severity"], "info");
    assert_eq!(j["opened"], "1970-01-01T00:00:00.000Z");
    assert_eq!(j["id"].as_str().unwrap().len(), 16);
    let back: Incident = serde_json::from_value(j).unwrap();
    assert_eq!(back, inc);
}

#[test]
fn a_flapping_alert_that_fires_with_a_new_incident_joins_it() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    // `Edge` flaps: starts at 0, 4 and 8 min, each lasting a minute.
    let mut home = None;
    for k in 0..3 {
        let s = sig("Edge", &[("service", "front")], k * 4 * MIN, 0.5);
        let ch = c.observe(&s);
        home.get_or_insert(ch[0].id());
        c.observe(&ended(s, k * 4 * MIN + MIN));
    }
    let home = home.unwrap();
    assert!(c.get(home).unwrap().flapping);
    // A new problem opens at 12 min, and `Edge` fires again 30 s later: it is part of the
    // new problem, not one more flap of the old one.
    let new = c.observe(&sig("DbDown", &[("service", "db")], 12 * MIN, 0.9))[0].id();
    assert_ne!(new, home);
    let again = c.observe(&sig("Edge", &[("service", "front")], 12 * MIN + 30_000, 0.5));
    assert_eq!(ids(&again), vec![new]);
    // With no new incident around, a flap still goes home quietly.
    c.observe(&ended(sig("Edge", &[("service", "front")], 12 * MIN + 30_000, 0.5), 13 * MIN));
    let later = c.observe(&sig("Edge", &[("service", "front")], 16 * MIN, 0.5));
    assert_eq!(ids(&later), vec![new], "its latest home is now the new incident");
}

#[test]
fn links_through_a_hub_do_not_relate() {
    // `front` calls eight services; each calls its own store.
    let t = topology::front_door(8);
    let mut c = Correlator::new(Config::default(), t.clone());
    let a = c.observe(&sig("Slow", &[("service", "svc1")], 0, 0.7))[0].id();
    // A neighbour that is not a hub relates.
    assert_eq!(ids(&c.observe(&sig("SlowDb", &[("service", "db1")], 3 * MIN, 0.7))), vec![a]);
    // The hub `front` neighbours svc1 but relates nothing: its own incident.
    let f = c.observe(&sig("Errors", &[("service", "front")], 5 * MIN, 0.7))[0].id();
    assert_ne!(f, a);
    // With hub damping off, the same link relates.
    let mut off = Correlator::new(Config { hub_factor: 0.0, ..Config::default() }, t);
    let a = off.observe(&sig("Slow", &[("service", "svc1")], 0, 0.7))[0].id();
    assert_eq!(ids(&off.observe(&sig("Errors", &[("service", "front")], 5 * MIN, 0.7))), vec![a]);
}

#[test]
fn merging_moves_signals_and_resolves_the_source() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let a = c.observe(&sig("Slow", &[("service", "web")], 0, 0.7))[0].id();
    let dup = sig("Full", &[("service", "disk")], 5 * MIN, 0.95);
    let b = c.observe(&dup)[0].id();
    assert_ne!(a, b);
    assert_eq!(c.merge(a, a, 6 * MIN, "ana").unwrap_err(), ActionError::SameIncident(a));
    let missing = IncidentId(7);
    assert_eq!(c.merge(a, missing, 6 * MIN, "ana").unwrap_err(), ActionError::NotFound(missing));
    let changes = c.merge(a, b, 6 * MIN, "ana").unwrap();
    assert!(changes.contains(&Change::Resolved(b)) && changes.contains(&Change::Escalated(a)));
    let into = c.get(a).unwrap();
    assert_eq!((into.signals.len(), into.signal_count), (2, 2));
    assert_eq!(into.severity, Severity::Critical, "the merged signal's score counts");
    assert_eq!(into.services.iter().map(String::as_str).collect::<Vec<_>>(), ["disk", "web"]);
    assert!(into.timeline.iter().any(|e| e.event == "merged" && e.detail.contains("by ana")));
    let from = c.get(b).unwrap();
    assert_eq!((from.status, from.resolved_by.as_deref()), (Status::Resolved, Some("ana")));
    assert!(from.timeline.last().unwrap().detail.contains(&a.to_string()));
    // A repeat of the merged signal right after it ended goes to the incident it joined.
    c.observe(&ended(dup, 7 * MIN));
    let again = c.observe(&sig("Full", &[("service", "disk")], 8 * MIN, 0.95));
    assert_eq!(ids(&again), vec![a]);
    assert_eq!(c.merge(b, a, 9 * MIN, "ana").unwrap_err(), ActionError::AlreadyResolved(b));
}

#[test]
fn splitting_moves_signals_to_a_new_incident() {
    let mut c = Correlator::new(Config::default(), topo());
    let web = sig("Slow", &[("service", "web")], 0, 0.7);
    let a = c.observe(&web)[0].id();
    let disk = sig("Full", &[("service", "disk")], 30_000, 0.95);
    assert!(ids(&c.observe(&disk)).iter().all(|i| *i == a), "co-onset puts both together");
    let (fw, fd) = (web.fingerprint, disk.fingerprint);
    // Bad splits are refused and change nothing.
    let bad = |r: Result<_, ActionError>| matches!(r, Err(ActionError::BadSplit(..)));
    assert!(bad(c.split(a, &[], MIN, "ana")));
    assert!(bad(c.split(a, &[fw, fd], MIN, "ana")), "something must stay");
    let stranger = sig("X", &[("service", "x")], 0, 0.5).fingerprint;
    assert!(bad(c.split(a, &[stranger], MIN, "ana")));
    assert_eq!(c.get(a).unwrap().signals.len(), 2);
    // Taking `disk` out.
    let (b, changes) = c.split(a, &[fd], MIN, "ana").unwrap();
    assert_eq!(changes, vec![Change::Updated(a), Change::Opened(b)]);
    let (old, new) = (c.get(a).unwrap(), c.get(b).unwrap());
    assert_eq!(old.signals.iter().map(|m| m.fingerprint).collect::<Vec<_>>(), [fw]);
    assert_eq!((old.severity, old.signal_count), (Severity::Warning, 1));
    assert_eq!(new.signals.iter().map(|m| m.fingerprint).collect::<Vec<_>>(), [fd]);
    assert_eq!((new.severity, new.status, new.opened), (Severity::Critical, Status::Open, 30_000));
    assert!(old.timeline.last().unwrap().detail.contains(&b.to_string()));
    // A repeat of `disk` right after it ends goes to the new incident.
    c.observe(&ended(disk, 2 * MIN));
    assert_eq!(ids(&c.observe(&sig("Full", &[("service", "disk")], 3 * MIN, 0.95))), vec![b]);
    assert_eq!(
        c.split(IncidentId(9), &[fd], MIN, "ana").unwrap_err(),
        ActionError::NotFound(IncidentId(9))
    );
    // Taking out the first signal: what stays opened with its own first signal.
    let mut c = Correlator::new(Config::default(), topo());
    let web = sig("Slow", &[("service", "web")], 0, 0.7);
    let a = c.observe(&web)[0].id();
    c.observe(&sig("Full", &[("service", "disk")], 30_000, 0.95));
    let (b, _) = c.split(a, &[web.fingerprint], MIN, "ana").unwrap();
    assert_eq!((c.get(a).unwrap().opened, c.get(b).unwrap().opened), (30_000, 0));
}

#[test]
fn a_late_delivered_signal_can_move_the_opening_earlier() {
    let mut c = Correlator::new(Config::default(), topo());
    let a = c.observe(&sig("Slow", &[("service", "web")], 10 * MIN, 0.7))[0].id();
    // Delivered now, but it started a minute before the incident's first signal.
    assert_eq!(ids(&c.observe(&sig("Errors", &[("service", "web")], 9 * MIN, 0.7))), vec![a]);
    let inc = c.get(a).unwrap();
    assert_eq!(inc.opened, 9 * MIN, "opened is the start of the first signal");
    assert!(inc.signals.iter().all(|m| m.start >= inc.opened));
}

#[test]
fn onset_hops_keeps_distant_simultaneous_alerts_apart() {
    // web - api - db, web - search: db and search are 3 links apart.
    let run = |hops: Option<usize>| {
        let mut c = Correlator::new(Config { onset_hops: hops, ..Config::default() }, topo());
        let a = c.observe(&sig("SlowQueries", &[("service", "db")], 0, 0.7))[0].id();
        let b = c.observe(&sig("Errors", &[("service", "search")], 30_000, 0.7))[0].id();
        // A service the topology does not know is never held back.
        let d = c.observe(&sig("Queue", &[("service", "mq")], 40_000, 0.7))[0].id();
        (a, b, d)
    };
    let (a, b, d) = run(None);
    assert!(a == b && b == d, "any distance: one incident");
    let (a, b, d) = run(Some(3));
    assert!(a == b && b == d, "3 links: one incident");
    let (a, b, d) = run(Some(2));
    assert_ne!(a, b, "2 links: apart");
    assert!(d == a || d == b, "unknown service joins by co-onset");
}

#[test]
fn a_busy_estate_holds_co_onset_to_nearby_services() {
    // 15 unrelated incidents opened within an hour (one per 3 min, more than a burst apart):
    // with the 2-minute burst, a chance coincidence is then expected for any opening.
    let busy_hour = |c: &mut Correlator| {
        for i in 0..14 {
            let svc = format!("n{i}");
            c.observe(&sig("Down", &[("service", &svc)], i * 3 * MIN, 0.7));
        }
        assert!(!c.busy(), "14 openings in the last hour are not yet busy");
        for i in 14..15 {
            let svc = format!("n{i}");
            let ch = c.observe(&sig("Down", &[("service", &svc)], i * 3 * MIN, 0.7));
            assert!(matches!(ch[0], Change::Opened(_)), "opening {i}");
        }
    };
    // db and search are 3 links apart; do they share an incident when they start together?
    // (New alert names each time, so nothing is a repeat of an earlier one.)
    let together = |c: &mut Correlator, t: i64| {
        let (x, y) = (format!("SlowQueries{t}"), format!("Errors{t}"));
        let a = c.observe(&sig(&x, &[("service", "db")], t, 0.7))[0].id();
        let b = c.observe(&sig(&y, &[("service", "search")], t + 30_000, 0.7))[0].id();
        a == b
    };
    let mut c = Correlator::new(Config::default(), topo());
    assert!(together(&mut c, 0), "a quiet estate: co-onset at any distance");

    let mut c = Correlator::new(Config::default(), topo());
    busy_hour(&mut c);
    assert!(c.busy());
    let t = 45 * MIN;
    assert!(!together(&mut c, t), "busy: 3 links apart is too far for co-onset");
    // One link apart still joins by co-onset, and the timeline says why.
    let a = c.observe(&sig("Slow", &[("service", "web")], t + 11 * MIN, 0.7));
    assert!(matches!(a[0], Change::Opened(_)));
    let b = c.observe(&sig("Fail", &[("service", "api")], t + 11 * MIN + 20_000, 0.7));
    assert_eq!(b[0].id(), a[0].id());
    let last = &c.get(a[0].id()).unwrap().timeline.last().unwrap().detail;
    assert_eq!(
        last,
        "Fail on api (started within 120 s of the incident's first signal, at most 1 \
         topology link(s) away (busy estate))"
    );
    assert!(c.busy());
    // Services the topology does not know relate to nothing by co-onset while busy.
    let unknown = |c: &mut Correlator, t: i64| {
        let a = c.observe(&sig(&format!("X{t}"), &[("service", "u1")], t, 0.7))[0].id();
        let b = c.observe(&sig(&format!("Y{t}"), &[("service", "u2")], t + 30_000, 0.7))[0].id();
        a == b
    };
    assert!(!unknown(&mut c, t + 12 * MIN), "busy: unknown services apart");
    // The next hour is quiet: co-onset relates any distance again, and unknown services.
    assert!(together(&mut c, t + 2 * 60 * MIN));
    assert!(!c.busy());
    assert!(unknown(&mut c, t + 3 * 60 * MIN));

    let off = Config { busy_onset_hops: None, ..Config::default() };
    let mut c = Correlator::new(off, topo());
    busy_hour(&mut c);
    assert!(together(&mut c, 45 * MIN), "busy_onset_hops off: never held back");

    // Time passing without signals ends it too.
    let mut c = Correlator::new(Config::default(), topo());
    busy_hour(&mut c);
    c.tick(45 * MIN);
    assert!(c.busy());
    c.tick(42 * MIN + 61 * MIN);
    assert!(!c.busy(), "an hour after the 15th opening");

    // Openings survive a restart: incidents restored from the last hour count.
    let mut c = Correlator::new(Config::default(), topo());
    busy_hour(&mut c);
    assert!(c.busy());
    let held: Vec<Incident> = c.incidents().cloned().collect();
    let mut r = Correlator::new(Config::default(), topo());
    r.restore(held.clone(), 45 * MIN);
    assert!(r.busy(), "restored openings count");
    let mut r = Correlator::new(Config::default(), topo());
    r.restore(held, 42 * MIN + 61 * MIN);
    assert!(!r.busy(), "openings over an hour old do not");
}

#[test]
fn within_counts_links_and_does_not_cross_hubs() {
    let t = topology::front_door(3);
    let names = |s: Option<std::collections::BTreeSet<&str>>| {
        s.map(|s| s.into_iter().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(names(t.within("db0", 1, |_| false)).as_deref(), Some("db0 svc0"));
    assert_eq!(names(t.within("db0", 3, |_| false)).as_deref(), Some("db0 front svc0 svc1 svc2"));
    assert_eq!(
        names(t.within("db0", 4, |_| false)).as_deref(),
        Some("db0 db1 db2 front svc0 svc1 svc2")
    );
    // The front door can be reached but not crossed.
    assert_eq!(names(t.within("db0", 4, |x| x == "front")).as_deref(), Some("db0 front svc0"));
    assert_eq!(t.within("nowhere", 2, |_| false), None);
    // Any number of hops ends once nothing new is reachable.
    assert_eq!(t.within("db0", usize::MAX, |_| false).map(|b| b.len()), Some(7));
    assert_eq!(t.neighbours("svc1").collect::<Vec<_>>(), ["db1", "front"]);
}

/// The member index and the incident lookup give the same answer as scanning every member of
/// every incident, through joins, repeats, late signals, merges, splits, auto-resolution and
/// eviction (random streams, fixed seeds).
#[test]
fn the_member_index_agrees_with_a_scan_of_every_member() {
    fn scan(c: &Correlator, s: &Signal) -> Option<(u8, IncidentId)> {
        let svc = c.service(&s.labels);
        let scope = c.scope_of(&s.labels);
        let hub = |x: &str| c.topo.is_hub(x, c.cfg.hub_factor);
        let mut best: Option<(u8, i64, IncidentId)> = None;
        for (id, inc) in &c.incidents {
            if !inc.is_active() || s.start - inc.last_signal > c.cfg.window_ms {
                continue;
            }
            if scope.iter().any(|(l, v)| inc.scope.get(l).is_some_and(|w| w != v)) {
                continue;
            }
            for m in &inc.signals {
                let dt = s.start - m.start;
                let a = if (s.start - inc.opened).abs() <= c.cfg.burst_ms {
                    CO_ONSET
                } else if !(0..=c.cfg.window_ms).contains(&dt) {
                    0
                } else if c
                    .cfg
                    .group_labels
                    .iter()
                    .any(|l| s.labels.get(l).is_some_and(|v| m.labels.get(l) == Some(v)))
                {
                    2
                } else {
                    match (svc, c.service(&m.labels)) {
                        (Some(a), Some(b)) if c.topo.adjacent(a, b) && !hub(a) && !hub(b) => 1,
                        _ => 0,
                    }
                };
                if a > 0 && best.is_none_or(|b| (a, m.start) > (b.0, b.1)) {
                    best = Some((a, m.start, *id));
                }
            }
        }
        best.map(|b| (b.0, b.2))
    }
    let svcs = ["web", "api", "db", "search", "mq", "front", "svc0", "svc1", "db0"];
    let mut t = topo();
    for (a, b) in [("front", "svc0"), ("front", "svc1"), ("svc0", "db0"), ("front", "web")] {
        t.add_edge(a, b);
    }
    for seed in 1..=20u64 {
        let mut x = seed;
        let mut rnd = |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        // The scan relates co-onset at any distance, as the correlator does while not busy.
        let cfg =
            Config { max_incidents: 6, max_members: 5, busy_onset_hops: None, ..Config::default() };
        let mut c = Correlator::new(cfg, t.clone());
        let mut now = 0i64;
        let mut live: Vec<Signal> = Vec::new();
        for step in 0..400 {
            now += rnd(90_000) as i64;
            c.tick(now);
            if !live.is_empty() && rnd(3) == 0 {
                let s = live.swap_remove(rnd(live.len() as u64) as usize);
                c.observe(&ended(s, now));
                continue;
            }
            let svc = svcs[rnd(svcs.len() as u64) as usize];
            let pod = format!("p{}", rnd(4));
            let name = ["A", "B", "C"][rnd(3) as usize];
            let mut pairs = vec![("service", svc), ("pod", pod.as_str())];
            if rnd(5) == 0 {
                pairs.push(("namespace", "ns1"));
            }
            // Now and then a signal delivered late (it may move an incident's opening back).
            let late = if rnd(8) == 0 { rnd(300_000) as i64 } else { 0 };
            let s = sig(name, &pairs, now - late, 0.5 + rnd(5) as f64 / 10.0);
            assert_eq!(c.best_incident(&s), scan(&c, &s), "seed {seed}, step {step}");
            assert!(c.lookup_is_current(), "seed {seed}, step {step}");
            if let Some(ch) = c.observe(&s).first() {
                let id = ch.id();
                // Now and then a person merges or splits.
                let others: Vec<IncidentId> = c
                    .incidents()
                    .filter(|i| i.id != id && i.status != Status::Resolved)
                    .map(|i| i.id)
                    .collect();
                if rnd(25) == 0 && !others.is_empty() {
                    let from = others[rnd(others.len() as u64) as usize];
                    c.merge(id, from, now, "test").ok();
                } else if rnd(25) == 0
                    && let Some(inc) = c.get(id)
                    && inc.signals.len() > 1
                {
                    let f = inc.signals[0].fingerprint;
                    c.split(id, &[f], now, "test").ok();
                }
            }
            live.push(s);
        }
    }
}

#[test]
fn extreme_times_never_overflow() {
    // Times come from clients (remote-write timestamps, Alertmanager's startsAt); absurd ones
    // must not overflow any arithmetic (a panic in debug builds, a wrong grouping in release).
    let mut c = Correlator::new(Config::default(), topo());
    for &t in &[i64::MAX, i64::MIN, 0, i64::MAX - 1, i64::MIN + 1, -5 * MIN] {
        for svc in ["api", "db", "search", "mq"] {
            let s = sig("Edge", &[("service", svc)], t, 0.9);
            c.observe(&s);
            c.observe(&ended(s, t.saturating_add(MIN)));
            c.observe(&sig("Edge", &[("service", svc)], t, 0.9));
        }
        c.tick(t);
        let _ = c.busy();
    }
    c.tick(i64::MAX);
    c.tick(i64::MIN);
    assert!(c.incidents().count() > 0);
}

#[test]
fn restore_keeps_the_memory_bound() {
    // More incidents in the store than max_incidents: the most recently active are held.
    let mut c = Correlator::new(Config::default(), topo());
    for i in 0..10 {
        let svc = format!("s{i}");
        c.observe(&sig("Down", &[("service", &svc)], i * 20 * MIN, 0.7));
    }
    let stored: Vec<Incident> = c.incidents().cloned().collect();
    assert_eq!(stored.len(), 10);
    let mut r = Correlator::new(Config { max_incidents: 3, ..Config::default() }, topo());
    r.restore(stored, 200 * MIN);
    let mut held: Vec<i64> = r.incidents().map(|i| i.last_signal).collect();
    held.sort_unstable();
    assert_eq!(held, [140 * MIN, 160 * MIN, 180 * MIN]);
    assert_eq!(r.stats.evicted, 7);
    // An old one brought back by an action stays; another is let go instead.
    let old = c.incidents().min_by_key(|i| i.last_signal).unwrap().clone();
    r.bring_back(old.clone(), 200 * MIN);
    assert!(r.get(old.id).is_some());
    assert_eq!(r.incidents().count(), 3);
}

/// Signals counted beyond `max_members` are let go with their incident: memory stays bounded
/// when giant incidents come and go.
#[test]
fn counted_only_signals_are_forgotten_with_their_incident() {
    let cfg = Config { max_members: 5, ..Config::default() };
    let mut c = Correlator::new(cfg, Topology::default());
    for round in 0..4i64 {
        let t0 = round * 3 * 3_600_000;
        for k in 0..50 {
            let name = format!("A{round}-{k}");
            let s = sig(&name, &[("service", "api")], t0 + k, 0.5);
            c.observe(&ended(s, t0 + MIN));
        }
        c.tick(t0 + 3_600_000); // resolved
        c.tick(t0 + 2 * 3_600_000); // let go
        assert_eq!(c.incidents().count(), 0, "round {round}: resolved and let go");
        assert!(c.home.is_empty(), "round {round}: {} fingerprints still homed", c.home.len());
    }
}

/// Flap detection keeps at most `max_fingerprints` fingerprints, newest first: a flood of
/// distinct alerts does not grow it, and one flapping among a few others is still caught.
#[test]
fn flap_tracking_is_bounded() {
    let cfg = Config { max_fingerprints: 10, busy_onset_hops: None, ..Config::default() };
    let mut c = Correlator::new(cfg, Topology::default());
    let tracked = |c: &Correlator| c.starts.iter().map(HashMap::len).sum::<usize>();
    for k in 0..1_000 {
        let s = sig(&format!("Flood{k}"), &[("service", "api")], k, 0.5);
        c.observe(&ended(s, k + 1));
        assert!(tracked(&c) <= 10, "after {k}: {} tracked", tracked(&c));
    }
    // One alert firing three times within the flap window, two others between each time.
    let mut t = 10 * MIN;
    let mut flapping = false;
    for round in 0..3 {
        let s = sig("Flappy", &[("service", "db")], t, 0.5);
        let out = c.observe(&ended(s, t + 1_000));
        flapping = out.iter().any(|ch| matches!(ch, Change::Reopened(..)))
            || c.incidents().any(|i| i.flapping);
        for k in 0..2 {
            let s = sig(&format!("Other{round}-{k}"), &[("service", "web")], t + 2_000, 0.5);
            c.observe(&ended(s, t + 3_000));
        }
        t += 4 * MIN;
    }
    assert!(flapping, "three starts in the flap window make it flapping");
    assert!(tracked(&c) <= 10);
}

/// An incident let go for the memory bound is handed to the caller as it was, once, so that
/// its last changes can be written; one let go at start-up (it came from the store) is not.
#[test]
fn incidents_let_go_for_the_memory_bound_are_handed_over() {
    let cfg = Config { max_incidents: 1, ..Config::default() };
    let mut c = Correlator::new(cfg.clone(), Topology::default());
    let first = c.observe(&sig("QueueStuck", &[("service", "worker")], 0, 0.5))[0].id();
    c.observe(&sig("Retries", &[("service", "worker")], MIN, 0.5)); // joins: one more member
    let second = c.observe(&sig("DiskFull", &[("service", "billing")], 30 * MIN, 0.5))[0].id();
    assert!(c.get(first).is_none() && c.get(second).is_some());
    let gone = c.take_let_go();
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].id, gone[0].signals.len()), (first, 2), "its latest state");
    assert!(c.take_let_go().is_empty(), "handed over once");
    c.keep_let_go(gone.clone()); // a failed write gives them back
    assert_eq!(c.let_go_copy(first), Some(&gone[0]), "readable while it waits");
    assert_eq!(c.take_let_go(), gone, "handed over again");
    assert!(c.let_go_copy(first).is_none());
    // Start-up: two stored incidents, room for one; the one let go is not handed over.
    let mut r = Correlator::new(cfg, Topology::default());
    let stored = gone.into_iter().chain(c.incidents().cloned()).collect();
    r.restore(stored, 31 * MIN);
    assert_eq!(r.incidents().count(), 1);
    assert!(r.take_let_go().is_empty());
}

#[test]
fn the_tick_hands_over_an_incident_it_lets_go_with_unwritten_changes() {
    let mut c = Correlator::new(Config::default(), Topology::default());
    let mut a = sig("QueueStuck", &[("service", "worker")], 0, 0.5);
    let written = c.observe(&a)[0].id();
    let mut b = sig("DiskFull", &[("service", "billing")], 30 * MIN, 0.5);
    let unwritten = c.observe(&b)[0].id();
    a.end = Some(MIN);
    b.end = Some(31 * MIN);
    c.observe(&a);
    c.observe(&b);
    assert_eq!(c.tick(40 * MIN).len(), 2, "both resolve");
    // Far past the flap window both are let go; only the one not yet written is handed over.
    let changes = c.tick_keeping(3 * 60 * MIN, |id| id == unwritten);
    assert!(changes.is_empty());
    assert!(c.get(written).is_none() && c.get(unwritten).is_none(), "both let go");
    let gone = c.take_let_go();
    assert_eq!(gone.iter().map(|i| i.id).collect::<Vec<_>>(), vec![unwritten]);
    assert_eq!(gone[0].status, Status::Resolved, "as it was");
}
