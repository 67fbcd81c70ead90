use super::*;

const MIN: i64 = 60_000;

fn obs(service: &str, series: &str, worse: Worse, base: f64, after: &[(i64, f64)]) -> Observation {
    let reference: Vec<f64> =
        (0..30).map(|i| base + (i % 5) as f64 * 0.1 * base.max(1.0)).collect();
    Observation {
        service: service.into(),
        series: series.into(),
        worse,
        reference,
        window: after.to_vec(),
    }
}

fn graph() -> CallGraph {
    let mut g = CallGraph::new();
    g.add_edge("frontend", "cart");
    g.add_edge("cart", "redis");
    g.add_edge("frontend", "catalog");
    g
}

#[test]
fn the_upstream_cause_ranks_above_its_victims() {
    // redis slows at 10:03; cart (its caller) and frontend follow.
    let t = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000 + 3 * MIN;
    let o = vec![
        obs("redis", "latency p99", Worse::Up, 1.0, &[(t, 9.0), (t + MIN, 9.5)]),
        obs("cart", "latency p99", Worse::Up, 10.0, &[(t + MIN, 60.0)]),
        obs("frontend", "latency p99", Worse::Up, 20.0, &[(t + 2 * MIN, 140.0)]),
        obs("catalog", "latency p99", Worse::Up, 5.0, &[(t, 5.1)]),
    ];
    let r = rank(&o, &graph(), &[], Some(("frontend", t + 2 * MIN)), t, &Config::default());
    let names: Vec<&str> = r.iter().map(|c| c.service.as_str()).collect();
    assert_eq!(&names[..2], ["redis", "cart"], "{r:#?}");
    assert!(r[0].explains == ["cart"], "{:?}", r[0].explains);
    assert!(r[0].explanation.contains("redis latency p99 rose"), "{}", r[0].explanation);
    assert!(r[0].explanation.contains("2 min before frontend"), "{}", r[0].explanation);
    assert!(r[0].explanation.contains("explains anomalous caller cart"), "{}", r[0].explanation);
    assert_eq!(r.last().unwrap().own, 0.0, "catalog hardly moved");
}

#[test]
fn a_change_event_lifts_its_service_and_is_explained() {
    let t = 1_700_000_000_000;
    // cart and catalog both moved the same; a deploy of catalog just before breaks the tie.
    let o = vec![
        obs("cart", "errors", Worse::Up, 1.0, &[(t, 8.0)]),
        obs("catalog", "errors", Worse::Up, 1.0, &[(t, 8.0)]),
    ];
    let deploy =
        ChangeEvent { time: t - 2 * MIN, service: "catalog".into(), what: "deploy v42".into() };
    let old =
        ChangeEvent { time: t - 5 * 3_600_000, service: "cart".into(), what: "deploy v1".into() };
    let r = rank(&o, &CallGraph::new(), &[deploy, old], None, t, &Config::default());
    assert_eq!(r[0].service, "catalog");
    assert_eq!(r[0].changes.len(), 1);
    assert!(r[0].explanation.contains("deploy v42 at"), "{}", r[0].explanation);
    assert!(r[1].changes.is_empty(), "a deploy 5 h earlier does not count");
}

#[test]
fn availability_counts_downwards_and_bad_values_are_ignored() {
    let t = 0;
    let avail = Observation {
        service: "api".into(),
        series: "availability".into(),
        worse: Worse::Down,
        reference: vec![99.5, 99.8, 100.0, 99.9, 99.7, 100.0, 99.6],
        window: vec![(t, 60.0), (t + MIN, f64::NAN)],
    };
    let o = vec![
        avail,
        obs("db", "latency", Worse::Up, 1.0, &[(t, f64::INFINITY)]),
        Observation {
            service: "tiny".into(),
            series: "x".into(),
            worse: Worse::Up,
            reference: vec![1.0, 1.0],
            window: vec![(t, 9.0)],
        },
    ];
    let r = rank(&o, &CallGraph::new(), &[], None, t, &Config::default());
    assert_eq!(r[0].service, "api");
    assert!(r[0].own > 3.0);
    assert!(r.iter().all(|c| c.score.is_finite()));
    assert_eq!(r.iter().find(|c| c.service == "tiny").unwrap().own, 0.0, "no usable reference");
}

#[test]
fn python_statistics_semantics() {
    use baseline::*;
    // statistics.quantiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], n=4) == [2.75, 5.5, 8.25]
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(quartiles(&v), (2.75, 5.5, 8.25));
    // statistics.quantiles([1, 2, 3], n=4) == [1.0, 2.0, 3.0]
    assert_eq!(quartiles(&[1.0, 2.0, 3.0]), (1.0, 2.0, 3.0));
    assert_eq!(median_sorted(&[1.0, 2.0, 3.0, 10.0]), 2.5);
    assert!((pstdev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) - 2.0).abs() < 1e-12);
}

#[test]
fn baselines_rank_like_the_script() {
    use baseline::*;
    let normal = [1.0, 2.0, 3.0, 4.0];
    let s = [
        Series { node: "a", normal: &normal, abnormal: &[3.0, f64::NAN] },
        Series { node: "b", normal: &normal, abnormal: &[9.0] },
        Series { node: "c", normal: &[1.0, 1.0, 1.0], abnormal: &[99.0] }, // constant: skipped
        Series { node: "a", normal: &normal, abnormal: &[5.0] },
        Series { node: "d", normal: &normal, abnormal: &[5.0] },
    ];
    assert_eq!(rank(&s, Kind::NSigma), ["b", "a", "d"], "ties keep first-seen order");
    assert_eq!(rank(&s, Kind::Baro), ["b", "a", "d"]);
    let truths = vec!["a".to_string(), "b".to_string()];
    let r = vec![vec!["b".to_string(), "a".to_string()], vec!["b".to_string()]];
    assert_eq!(ac_at(&r, &truths, 1), 0.5);
    assert_eq!(ac_at(&r, &truths, 2), 1.0);
    assert!((avg_at_5(&r, &truths) - 0.9).abs() < 1e-12);
}
