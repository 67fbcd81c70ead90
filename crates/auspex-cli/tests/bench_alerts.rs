//! `auspex bench alerts` against both receivers it compares, on 127.0.0.1: `auspex serve`'s
//! Alertmanager webhook and a real Alertmanager's `/api/v2/alerts` (Debian's
//! prometheus-alertmanager). Figures are not asserted (speed is for BENCHMARKS.md); what is
//! asserted is that every alert is accepted and really lands in the receiver.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use auspex_testkit::temp_dir;
use serde_json::Value;

mod common;
use common::agent;

/// Runs `auspex bench alerts` with `args`; exit code, stderr and the JSON it wrote.
fn bench(args: &[&str]) -> (Option<i32>, String, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auspex"));
    cmd.args(["bench", "alerts", "--duration", "1", "--alerts", "500", "--per-request", "50"])
        .args(args);
    common::run_json(&mut cmd, &temp_dir("bench-alerts"))
}

#[test]
fn alert_load_reaches_auspex_and_alertmanager() {
    // Auspex: new occurrences are stored and folded; redeliveries are accepted too.
    let (_auspex, addr) = common::start(&temp_dir("bench-alerts-auspex"), "", &[]);
    let target = format!("http://{addr}/auspex/v1/alertmanager");
    let (code, err, v) = bench(&["--target", &target]);
    assert_eq!(code, Some(0), "{err}");
    let accepted = v["accepted_alerts"].as_f64().unwrap();
    assert!(accepted >= 500.0, "{v}");
    assert_eq!((v["rejected_alerts"].as_f64(), v["api"].as_str()), (Some(0.0), Some("webhook")));
    assert_eq!(
        common::metric(addr, "auspex_incident_signals_total"),
        accepted,
        "every one folded in"
    );
    let (code, err, v) = bench(&["--target", &target, "--mode", "redeliver"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(v["accepted_alerts"].as_f64().unwrap() >= 500.0, "{v}");
    // The 500 alerts of the redelivery run are new once (a fresh startsAt), then unchanged.
    assert_eq!(common::metric(addr, "auspex_incident_signals_total"), accepted + 500.0);

    // A real Alertmanager: the same alerts through its API.
    let (peer, am_addr) =
        common::start_alertmanager("route:\n  receiver: none\nreceivers:\n  - name: none\n");
    let target = format!("http://{am_addr}/api/v2/alerts");
    let (code, err, v) = bench(&["--target", &target, "--api", "alertmanager"]);
    assert_eq!(code, Some(0), "{err}\n{}", peer.log());
    assert_eq!(v["rejected_alerts"].as_f64(), Some(0.0), "{v}");
    let mut r = agent().get(&format!("http://{am_addr}/api/v2/alerts")).call().unwrap();
    let held: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(held.as_array().map(Vec::len), Some(500), "Alertmanager holds the 500 alerts");

    // Bad settings: a clear error and exit 2.
    for bad in [["--api", "carrier-pigeon"], ["--mode", "sometimes"], ["--concurrency", "0"]] {
        let (code, err, _) = bench(&[&["--target", &target][..], &bad[..]].concat());
        assert_eq!(code, Some(2), "{bad:?}: {err}");
        assert!(err.contains("error: bench alerts"), "{err}");
    }
}
