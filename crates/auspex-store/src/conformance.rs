//! The conformance suite every [`crate::Store`] backend must pass.
//!
//! Each check is an async function taking a fresh store; [`store_conformance_tests!`] turns
//! them into `#[tokio::test]`s for a backend:
//!
//! ```ignore
//! auspex_store::store_conformance_tests!(sqlite, auspex_store::SqliteStore::memory().await.unwrap());
//! ```

#![allow(clippy::unwrap_used)] // test support: a failed step is a failed test

use auspex_core::{Explanation, Labels, SeriesId, Signal, SignalKind};

use auspex_mlflow::{Metric, RunInfo, Tag};

use crate::tracking::{NewModelVersion, RunUpdate};
use crate::{RegistryStore, SeriesRecord, Store, StoreError, TrackingStore, ViewType};

fn signal(name: &str, start: i64, score: f64) -> Signal {
    let labels = Labels::from_pairs([("__name__", name), ("job", "t")]).unwrap_or_default();
    Signal::new(
        SignalKind::Anomaly,
        labels,
        start,
        score,
        Explanation::Metric {
            value: 2.0,
            expected: 1.0,
            lower: 0.5,
            upper: 1.5,
            deviation: 5.0,
            anomalous_since: start,
        },
    )
}

fn record(name: &str, last_seen: i64, state: Option<Vec<u8>>) -> SeriesRecord {
    let labels = Labels::from_pairs([("__name__", name)]).unwrap_or_default();
    SeriesRecord {
        id: labels.series_id(),
        labels,
        first_seen: 1000,
        last_seen,
        samples: 7,
        last_score: 0.25,
        idle: false,
        state,
    }
}

/// Signals round-trip exactly, newest first, filtered by time, limited.
pub async fn signals_round_trip<S: Store>(s: S) {
    let a = signal("a", 1_000, 0.5);
    let b = signal("b", 2_000, 0.9);
    let mut c = signal("c", 500, 0.7);
    c.end = Some(600);
    s.put_signals(&[a.clone(), b.clone(), c.clone()]).await.unwrap();
    let all = s.list_signals(0, 100).await.unwrap();
    assert_eq!(all, vec![b.clone(), a.clone(), c.clone()]);
    let recent = s.list_signals(900, 100).await.unwrap();
    assert_eq!(recent, vec![b.clone(), a.clone()], "c ended before the window");
    assert_eq!(s.list_signals(0, 1).await.unwrap(), vec![b]);
}

/// Open signals stay listed whatever the window; an update sets the end and keeps the max score.
pub async fn signals_update_by_id<S: Store>(s: S) {
    let a = signal("a", 1_000, 0.9);
    s.put_signals(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(s.list_signals(5_000, 10).await.unwrap().len(), 1, "open signals always listed");
    let mut closed = a.clone();
    closed.end = Some(3_000);
    closed.score = 0.4;
    s.put_signals(&[closed]).await.unwrap();
    let got = s.list_signals(0, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].end, Some(3_000));
    assert_eq!(got[0].score, 0.9, "the higher score wins");
    assert!(s.list_signals(5_000, 10).await.unwrap().is_empty());
    // Retention counts from when a signal was written (wall clock), not from its data time.
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    assert_eq!(s.delete_signals_before(now - 60_000).await.unwrap(), 0, "written just now");
    let open = signal("open", 2_000, 0.5);
    s.put_signals(std::slice::from_ref(&open)).await.unwrap();
    assert_eq!(s.delete_signals_before(now + 60_000).await.unwrap(), 1, "only the closed one");
    assert_eq!(s.list_signals(0, 10).await.unwrap(), vec![open]);
}

/// Series records round-trip with state; a missing state keeps the stored one.
pub async fn series_round_trip<S: Store>(s: S) {
    let a = record("a", 5_000, Some(vec![1, 2, 3]));
    let b = record("b", 9_000, None);
    s.put_series(&[a.clone(), b.clone()]).await.unwrap();
    let mut loaded = s.load_series().await.unwrap();
    loaded.sort_by_key(|r| r.labels.metric_name().map(str::to_string));
    assert_eq!(loaded, vec![a.clone(), b.clone()]);
    let mut a2 = a.clone();
    a2.state = None;
    a2.samples = 99;
    a2.idle = true;
    s.put_series(&[a2]).await.unwrap();
    let loaded = s.load_series().await.unwrap();
    let got = loaded.iter().find(|r| r.id == a.id).unwrap();
    assert_eq!(got.state, Some(vec![1, 2, 3]), "state kept");
    assert_eq!((got.samples, got.idle), (99, true));
    let listed = s.list_series(10).await.unwrap();
    assert_eq!(listed[0].labels, b.labels, "most recently seen first");
    assert!(listed.iter().all(|r| r.state.is_none()));
    assert_eq!(s.list_series(1).await.unwrap().len(), 1);
    assert_ne!(a.id, SeriesId(0));
}

/// Many writes in one call are atomic and all visible.
pub async fn bulk_writes<S: Store>(s: S) {
    let sigs: Vec<Signal> = (0..500).map(|i| signal(&format!("m{i}"), i, 0.5)).collect();
    s.put_signals(&sigs).await.unwrap();
    assert_eq!(s.list_signals(0, 1000).await.unwrap().len(), 500);
    let recs: Vec<SeriesRecord> =
        (0..500).map(|i| record(&format!("m{i}"), i, Some(vec![i as u8; 100]))).collect();
    s.put_series(&recs).await.unwrap();
    assert_eq!(s.load_series().await.unwrap().len(), 500);
    // One id twice in one call (and past a batch boundary): the later updates the earlier,
    // as two calls would.
    let x = signal("dup", 10_000, 0.2);
    let mut y = x.clone();
    y.end = Some(11_000);
    y.score = 0.8;
    let mut batch: Vec<Signal> = (0..150).map(|i| signal(&format!("n{i}"), i, 0.5)).collect();
    batch.insert(10, x.clone());
    batch.push(y);
    s.put_signals(&batch).await.unwrap();
    let all = s.list_signals(0, 2000).await.unwrap();
    assert_eq!(all.len(), 651);
    let got = all.iter().find(|g| g.id == x.id).unwrap();
    assert_eq!((got.end, got.score), (Some(11_000), 0.8));
}

/// Instantiates the conformance suite for a backend: `store_conformance_tests!(name, expr)`,
/// where `expr` (evaluated inside an async test) yields a fresh, empty store.
fn run_info(id: &str, exp: &str, start: i64) -> RunInfo {
    RunInfo {
        run_id: id.into(),
        run_uuid: id.into(),
        run_name: format!("name-{id}"),
        experiment_id: exp.into(),
        user_id: "alice".into(),
        status: "RUNNING".into(),
        start_time: start,
        end_time: None,
        artifact_uri: format!("mlflow-artifacts:/{exp}/{id}/artifacts"),
        lifecycle_stage: "active".into(),
    }
}

fn metric(key: &str, value: f64, step: i64, ts: i64) -> Metric {
    Metric { key: key.into(), value, step, timestamp: ts }
}

/// Experiments, runs, params (immutable), metrics (history and latest), tags, lifecycle.
pub async fn tracking_round_trip<S: TrackingStore>(s: S) {
    let d = s.get_experiment("0").await.unwrap().unwrap();
    assert_eq!(d.name, "Default", "experiment 0 exists from the start");
    let id = s.create_experiment("e1", None, "mlflow-artifacts:", &[]).await.unwrap();
    assert!(matches!(
        s.create_experiment("e1", None, "mlflow-artifacts:", &[]).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(s.get_experiment_by_name("e1").await.unwrap().unwrap().experiment_id, id);
    assert_eq!(
        s.get_experiment(&id).await.unwrap().unwrap().artifact_location,
        format!("mlflow-artifacts:/{id}")
    );
    s.create_run(&run_info("r1", &id, 10), &[Tag { key: "t".into(), value: "v".into() }])
        .await
        .unwrap();
    s.create_run(&run_info("r2", &id, 20), &[]).await.unwrap();
    s.log_batch(
        "r1",
        &[
            metric("loss", 3.0, 0, 1),
            metric("loss", 1.0, 2, 2),
            metric("loss", 2.0, 1, 3),
            metric("nan", f64::NAN, 0, 1),
        ],
        &[Tag { key: "lr".into(), value: "0.1".into() }],
        &[],
    )
    .await
    .unwrap();
    // The same param value again is fine; another value is refused and nothing is written.
    s.log_batch("r1", &[], &[Tag { key: "lr".into(), value: "0.1".into() }], &[]).await.unwrap();
    let bad = s
        .log_batch(
            "r1",
            &[metric("other", 1.0, 0, 0)],
            &[Tag { key: "lr".into(), value: "0.2".into() }],
            &[],
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    let r = s.get_run("r1").await.unwrap().unwrap();
    assert_eq!(r.metric("loss"), Some(1.0), "latest = highest step");
    assert!(r.metric("nan").unwrap().is_nan(), "NaN survives");
    assert_eq!(r.metric("other"), None, "a refused batch writes nothing");
    assert_eq!(r.param("lr"), Some("0.1"));
    assert_eq!(r.tag("t"), Some("v"));
    let h = s.metric_history("r1", "loss").await.unwrap();
    assert_eq!(h.iter().map(|m| m.step).collect::<Vec<_>>(), [0, 1, 2]);
    let info = s
        .update_run(
            "r1",
            &RunUpdate { status: Some("FINISHED".into()), end_time: Some(99), run_name: None },
        )
        .await
        .unwrap();
    assert_eq!((info.status.as_str(), info.end_time), ("FINISHED", Some(99)));
    s.set_run_lifecycle("r2", "deleted").await.unwrap();
    let exact = 0.1 + 0.2; // 0.30000000000000004: needs all 17 digits
    s.log_batch("r1", &[metric("exact", exact, 0, 0)], &[], &[]).await.unwrap();
    let active = s.list_runs(std::slice::from_ref(&id), ViewType::ActiveOnly).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].metric("exact"), Some(exact), "listed metric values are exact");
    assert_eq!(active[0].param("lr"), Some("0.1"), "listed runs carry their data");
    let keys = crate::tracking::RunKeys { metrics: vec!["loss".into()], ..Default::default() };
    let slim = s.list_runs_keys(std::slice::from_ref(&id), ViewType::All, &keys).await.unwrap();
    let r1 = slim.iter().find(|r| r.info.run_id == "r1").unwrap();
    assert_eq!((r1.metric("loss"), r1.param("lr"), r1.metric("exact")), (Some(1.0), None, None));
    let full = s.get_runs(&["r2".into(), "nope".into(), "r1".into()]).await.unwrap();
    let order: Vec<_> = full.iter().map(|r| r.info.run_id.as_str()).collect();
    assert_eq!(order, ["r2", "r1"], "get_runs keeps the order given and skips unknown ids");
    assert_eq!(full[1].param("lr"), Some("0.1"));
    assert_eq!(s.list_runs(&[id], ViewType::All).await.unwrap().len(), 2);
    assert!(matches!(s.get_run("nope").await, Ok(None)));
    assert!(matches!(s.metric_history("nope", "x").await, Err(StoreError::NotFound(_))));
}

/// The database-side search agrees with `Filter::matches` and `sort_runs` (the reference).
pub async fn search_in_the_database_agrees_with_the_filter<S: TrackingStore>(s: S) {
    use auspex_mlflow::filter::{Filter, OrderBy, sort_runs};
    let id = s.create_experiment("search", None, "mlflow-artifacts:", &[]).await.unwrap();
    for i in 0..12i64 {
        let rid = format!("r{i:02}");
        let mut info = run_info(&rid, &id, 100 - i % 4);
        info.status = if i % 3 == 0 { "FINISHED".into() } else { "RUNNING".into() };
        s.create_run(&info, &[]).await.unwrap();
        let mut metrics = vec![metric("nanny", if i % 5 == 0 { f64::NAN } else { i as f64 }, 0, 0)];
        if i % 4 != 0 {
            metrics.push(metric("m", (i * 7 % 10) as f64 / 10.0, 0, 0));
        }
        let p = ["a", "b", "c"][i as usize % 3];
        let tags = if i % 2 == 0 {
            vec![Tag { key: "t".into(), value: format!("x{}", i % 3) }]
        } else {
            vec![]
        };
        s.log_batch(&rid, &metrics, &[Tag { key: "p".into(), value: p.into() }], &tags)
            .await
            .unwrap();
    }
    let all = s.list_runs(std::slice::from_ref(&id), ViewType::ActiveOnly).await.unwrap();
    for f in [
        "",
        "metrics.m > 0.5",
        "metrics.m <= 0.3 and params.p = 'a'",
        "metrics.m != 0.3",
        "metrics.nanny != 5",
        "metrics.nanny >= 3",
        "params.p IN ('a', 'c')",
        "params.p NOT IN ('a')",
        "tags.t != 'x1'",
        "tags.t = 'x0'",
        "attributes.status = 'FINISHED'",
        "attributes.start_time >= 98",
        "attributes.run_name != 'name-r03'",
    ] {
        for o in [
            vec![],
            vec!["metrics.m DESC"],
            vec!["params.p ASC", "metrics.m ASC"],
            vec!["attributes.start_time ASC"],
            vec!["tags.t DESC"],
        ] {
            let filter = Filter::parse(f).unwrap();
            let order: Vec<OrderBy> = o.iter().map(|x| OrderBy::parse(x).unwrap()).collect();
            let mut want: Vec<_> = all.iter().filter(|r| filter.matches(r)).cloned().collect();
            sort_runs(&mut want, &order);
            let want: Vec<String> = want.into_iter().map(|r| r.info.run_id).collect();
            let Some((got, more)) = s
                .search_run_ids(
                    std::slice::from_ref(&id),
                    ViewType::ActiveOnly,
                    &filter,
                    &order,
                    0,
                    100,
                )
                .await
                .unwrap()
            else {
                panic!("{f}: not translated");
            };
            assert_eq!(got, want, "filter {f:?} order {o:?}");
            assert!(!more);
            // Paging: two runs from offset 1.
            let (page, more) = s
                .search_run_ids(
                    std::slice::from_ref(&id),
                    ViewType::ActiveOnly,
                    &filter,
                    &order,
                    1,
                    2,
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                page,
                want.iter().skip(1).take(2).cloned().collect::<Vec<_>>(),
                "page of {f:?}"
            );
            assert_eq!(more, want.len() > 3);
        }
    }
    let like = Filter::parse("params.p LIKE 'a%'").unwrap();
    assert!(s.search_run_ids(&[id], ViewType::All, &like, &[], 0, 10).await.unwrap().is_none());
}

/// Versions are numbered per model, aliases move, stages archive, and all of it is audited.
pub async fn registry_round_trip<S: RegistryStore>(s: S) {
    s.create_registered_model("m", "desc", &[]).await.unwrap();
    assert!(matches!(
        s.create_registered_model("m", "", &[]).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let nv = |src: &str| NewModelVersion {
        name: "m".into(),
        source: src.into(),
        run_id: "r1".into(),
        user_id: "alice".into(),
        lineage: "{}".into(),
        ..NewModelVersion::default()
    };
    let v1 = s.create_model_version(&nv("s1")).await.unwrap();
    let v2 = s.create_model_version(&nv("s2")).await.unwrap();
    assert_eq!((v1.version.as_str(), v2.version.as_str(), v1.status.as_str()), ("1", "2", "READY"));
    s.set_alias("m", "champion", Some(1), "bob").await.unwrap();
    s.set_alias("m", "champion", Some(2), "carol").await.unwrap();
    assert_eq!(s.get_by_alias("m", "champion").await.unwrap().unwrap().version, "2");
    assert!(matches!(s.set_alias("m", "x", Some(9), "bob").await, Err(StoreError::NotFound(_))));
    s.transition_stage("m", 1, "Production", false, "bob").await.unwrap();
    s.transition_stage("m", 2, "Production", true, "carol").await.unwrap();
    assert_eq!(s.get_model_version("m", 1).await.unwrap().unwrap().current_stage, "Archived");
    let rm = s.get_registered_model("m").await.unwrap().unwrap();
    assert_eq!(rm.aliases.len(), 1);
    let trail = s.audit("m", None).await.unwrap();
    let actions: Vec<_> = trail.iter().map(|a| (a.action.as_str(), a.who.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("register", "alice"),
            ("register", "alice"),
            ("set_alias", "bob"),
            ("set_alias", "carol"),
            ("transition_stage", "bob"),
            ("transition_stage", "carol"),
            ("transition_stage", "carol"),
        ]
    );
    assert_eq!(trail[3].from.as_deref(), Some("champion=1"));
    assert_eq!(trail[3].to.as_deref(), Some("champion=2"));
    s.delete_model_version("m", 2).await.unwrap();
    assert!(
        s.get_by_alias("m", "champion").await.unwrap().is_none(),
        "alias goes with its version"
    );
    s.delete_registered_model("m").await.unwrap();
    assert!(s.get_registered_model("m").await.unwrap().is_none());
}

/// The incident rows follow every kind of change: a seeded stream of joins, repeats, ends,
/// scores, acks, resolutions, merges, splits and auto-resolution, with few members and a short
/// timeline (so both overflow and let entries go), each step written and read back. `reopen`
/// gives a store on the same database with nothing remembered (for stores that remember what
/// they wrote; in memory it may return the same store).
pub async fn incidents_follow_every_change<S, F, Fut>(s: S, reopen: F)
where
    S: crate::IncidentStore,
    F: Fn(S) -> Fut,
    Fut: std::future::Future<Output = S>,
{
    use auspex_incidents::{Config, Correlator, Topology};
    let cfg = Config { max_members: 5, max_timeline: 6, ..Config::default() };
    let mut c = Correlator::new(cfg, Topology::default());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut s = s;
    let mut t = 1_000_000i64;
    let mut live: Vec<Signal> = Vec::new();
    let mut written = 0;
    for step in 0..400 {
        t += next(90_000) as i64;
        let ids: Vec<_> = c.incidents().map(|i| i.id).collect();
        let pick = |k: u64| ids.get(k as usize % ids.len().max(1)).copied();
        match next(12) {
            0..=5 => {
                let svc = format!("svc{}", next(4));
                let name = format!("Alert{}", next(6));
                let labels =
                    Labels::from_pairs([("alertname", name.as_str()), ("service", &svc)]).unwrap();
                let sig = Signal::new(
                    SignalKind::Alert,
                    labels,
                    t,
                    0.5 + next(50) as f64 / 100.0,
                    Explanation::Text { message: format!("{name} on {svc}") },
                );
                c.observe(&sig);
                live.push(sig);
            }
            6 | 7 if !live.is_empty() => {
                let k = next(live.len() as u64) as usize;
                let mut sig = live.swap_remove(k);
                if next(3) == 0 {
                    sig.score = 1.0; // a higher score, still firing
                    c.observe(&sig);
                    live.push(sig);
                } else {
                    sig.end = Some(t);
                    c.observe(&sig);
                }
            }
            8 => {
                if let Some(id) = pick(next(1 << 20)) {
                    let _ = if next(2) == 0 { c.ack(id, t, "ana") } else { c.resolve(id, t, "bo") };
                }
            }
            9 => {
                if let (Some(a), Some(b)) = (pick(next(1 << 20)), pick(next(1 << 20))) {
                    let _ = c.merge(a, b, t, "cy");
                }
            }
            10 => {
                if let Some(inc) = pick(next(1 << 20)).and_then(|id| c.get(id)) {
                    let take: Vec<_> =
                        inc.signals.iter().step_by(2).map(|m| m.fingerprint).collect();
                    let id = inc.id;
                    let _ = c.split(id, &take, t, "di");
                }
            }
            _ => {
                c.tick(t);
            }
        }
        // Write a random half of the incidents (the rest catch up later), or all of them.
        let all: Vec<_> = c.incidents().cloned().collect();
        let some: Vec<_> = all.iter().filter(|_| next(2) == 0).cloned().collect();
        s.put_incidents(if step % 5 == 0 { &all } else { &some }).await.unwrap();
        written += some.len();
        if step % 100 == 99 {
            s = reopen(s).await;
        }
        if step % 5 == 0 {
            for inc in &all {
                let got = s.get_incident(inc.id).await.unwrap();
                assert_eq!(got.as_ref(), Some(inc), "step {step}: incident {}", inc.id);
            }
        }
    }
    assert!(written > 300, "the stream wrote incidents often: {written}");
    let all: Vec<_> = c.incidents().cloned().collect();
    s.put_incidents(&all).await.unwrap();
    assert!(all.iter().any(|i| i.timeline.len() == 6), "some timeline was full");
    assert!(all.iter().any(|i| i.signals.len() == 5), "some incident had the most members");
    // The listing holds every incident in memory as it is, and those let go as last written.
    let listed = s.list_incidents(None, 10_000).await.unwrap();
    assert!(listed.len() > all.len(), "some were let go: {} {}", listed.len(), all.len());
    for inc in &all {
        assert_eq!(listed.iter().find(|l| l.id == inc.id), Some(inc));
    }
}

/// Concurrent writes of different versions of one incident leave exactly one version stored,
/// never a mix of their rows, and what the store remembers of it stays true: a later write
/// of another version is read back exactly.
pub async fn concurrent_incident_writes_never_mix<S: crate::IncidentStore>(s: S) {
    use auspex_incidents::{Config, Correlator, Incident, Topology};
    let mut c = Correlator::new(Config::default(), Topology::default());
    for k in 0..24 {
        let mut a = signal(&format!("alert{k}"), 1_000 + k, 0.5);
        a.kind = SignalKind::Alert;
        c.observe(&a);
    }
    let base = c.incidents().next().unwrap().clone();
    assert_eq!(base.signals.len(), 24, "one incident holds every alert");
    s.put_incidents(std::slice::from_ref(&base)).await.unwrap();
    // Version v ends member v and notes it in the timeline: each changes other rows.
    let version = |v: usize| {
        let mut inc: Incident = base.clone();
        std::sync::Arc::make_mut(&mut inc.signals[v]).end = Some(5_000 + v as i64);
        inc.record(100, 5_000, "signal_cleared", format!("member {v} cleared"));
        inc
    };
    let versions: Vec<Incident> = (0..8).map(version).collect();
    let writers: Vec<_> = versions
        .iter()
        .map(|v| {
            let (s, v) = (s.clone(), v.clone());
            tokio::spawn(async move { s.put_incidents(&[v]).await })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let got = s.get_incident(base.id).await.unwrap().unwrap();
    assert!(versions.contains(&got), "the stored incident is one of the versions written");
    let last = version(20);
    s.put_incidents(std::slice::from_ref(&last)).await.unwrap();
    assert_eq!(s.get_incident(base.id).await.unwrap().unwrap(), last);
}

/// Incidents round-trip through the store, by id, by status and for start-up; change signals
/// are found by time.
pub async fn incidents_round_trip<S: Store + crate::IncidentStore>(s: S) {
    use auspex_incidents::{Config, Correlator, Status, Topology};
    let mut c = Correlator::new(Config::default(), Topology::default());
    let mut a = signal("cpu", 1_000, 0.95);
    a.kind = SignalKind::Alert;
    let a_id = c.observe(&a)[0].id();
    let b = signal("disk", 10_000_000, 0.5);
    let b_id = c.observe(&b)[0].id();
    assert_ne!(a_id, b_id);
    c.ack(a_id, 2_000, "ana").unwrap();
    let all: Vec<_> = c.incidents().cloned().collect();
    s.put_incidents(&all).await.unwrap();
    s.put_incidents(&all).await.unwrap(); // idempotent
    let got = s.get_incident(a_id).await.unwrap().unwrap();
    assert_eq!(&got, c.get(a_id).unwrap(), "byte-for-byte the same incident");
    assert!(s.get_incident(auspex_core::IncidentId(7)).await.unwrap().is_none());
    let listed = s.list_incidents(None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), vec![b_id, a_id], "newest first");
    let acked = s.list_incidents(Some(Status::Acknowledged), 10).await.unwrap();
    assert_eq!(acked.len(), 1);
    assert_eq!(s.list_incidents(None, 1).await.unwrap().len(), 1);
    c.resolve(b_id, 50_000, "bo").unwrap();
    s.put_incidents(&[c.get(b_id).unwrap().clone()]).await.unwrap();
    assert_eq!(s.list_incidents(Some(Status::Resolved), 10).await.unwrap()[0].id, b_id);
    // Start-up: active ones, and resolved ones only when recent enough.
    assert_eq!(s.load_incidents(60_000).await.unwrap().len(), 1);
    assert_eq!(s.load_incidents(40_000).await.unwrap().len(), 2);
    // Change events by time.
    let labels = Labels::from_pairs([("service", "api")]).unwrap();
    let mk = |t| {
        Signal::new(
            SignalKind::Change,
            labels.clone(),
            t,
            0.0,
            Explanation::Text { message: "deploy".into() },
        )
    };
    s.put_signals(&[mk(100), mk(200), mk(900), signal("cpu", 150, 0.5)]).await.unwrap();
    let ch = s.list_changes(100, 500, 10).await.unwrap();
    assert_eq!(ch.iter().map(|c| c.start).collect::<Vec<_>>(), vec![100, 200]);
    assert_eq!(s.list_changes(0, 1_000, 1).await.unwrap().len(), 1);
}

/// Silences round-trip: replaced by id, loaded by end, deleted by id.
pub async fn silences_round_trip<S: crate::IncidentStore>(s: S) {
    use auspex_incidents::silence::{Matcher, Silence};
    let mk = |id: &str, m: &str, ends: i64| {
        let m = vec![Matcher::parse(m).unwrap()];
        Silence::new(id.into(), m, (0, ends), 0, "ana".into(), "maintenance".into()).unwrap()
    };
    let (a, mut b) = (mk("a", "service=db", 1_000), mk("b", "alertname=~\"Disk.*\"", 5_000));
    s.put_silence(&a).await.unwrap();
    s.put_silence(&b).await.unwrap();
    assert_eq!(s.load_silences(0).await.unwrap(), vec![a.clone(), b.clone()], "oldest end first");
    b.expire(500);
    s.put_silence(&b).await.unwrap(); // replaced
    assert_eq!(s.load_silences(0).await.unwrap(), vec![b.clone(), a.clone()]);
    assert_eq!(s.load_silences(600).await.unwrap(), vec![a.clone()], "ended before 600: gone");
    assert_eq!(s.delete_silences(&["b".into(), "zz".into()]).await.unwrap(), 1);
    assert_eq!(s.load_silences(0).await.unwrap(), vec![a]);
}

#[macro_export]
macro_rules! store_conformance_tests {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn signals_round_trip() {
                $crate::conformance::signals_round_trip($make).await;
            }
            #[tokio::test]
            async fn signals_update_by_id() {
                $crate::conformance::signals_update_by_id($make).await;
            }
            #[tokio::test]
            async fn series_round_trip() {
                $crate::conformance::series_round_trip($make).await;
            }
            #[tokio::test]
            async fn bulk_writes() {
                $crate::conformance::bulk_writes($make).await;
            }
            #[tokio::test]
            async fn tracking_round_trip() {
                $crate::conformance::tracking_round_trip($make).await;
            }
            #[tokio::test]
            async fn search_in_the_database_agrees_with_the_filter() {
                $crate::conformance::search_in_the_database_agrees_with_the_filter($make).await;
            }
            #[tokio::test]
            async fn incidents_follow_every_change() {
                $crate::conformance::incidents_follow_every_change($make, |s| async { s }).await;
            }
            #[tokio::test]
            async fn concurrent_incident_writes_never_mix() {
                $crate::conformance::concurrent_incident_writes_never_mix($make).await;
            }
            #[tokio::test]
            async fn incidents_round_trip() {
                $crate::conformance::incidents_round_trip($make).await;
            }
            #[tokio::test]
            async fn silences_round_trip() {
                $crate::conformance::silences_round_trip($make).await;
            }
            #[tokio::test]
            async fn registry_round_trip() {
                $crate::conformance::registry_round_trip($make).await;
            }
        }
    };
}
