//! `auspex bench storm` on a generated PetShop-shaped folder (no shared data needed): two
//! unrelated faults on services with no edge between them, five or more minutes apart, must
//! stay two incidents, while grouping by time alone merges them.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use auspex_testkit::{output, temp_dir};
use serde_json::{Value, json};

mod common;

const NODES: [&str; 3] = ["a", "b", "c"];

fn metrics(path: &Path, rows: usize, value: impl Fn(usize, &str, &str) -> f64) {
    common::petshop_metrics(path, &NODES, rows, value);
}

fn normal(r: usize, _n: &str, m: &str) -> f64 {
    if m == "availability" { 100.0 - (r % 3) as f64 } else { 0.1 + (r % 5) as f64 * 0.01 }
}

/// Runs `auspex bench storm --background 0 --data DIR --json JSON ARGS...`, which must
/// succeed; its stdout and the JSON figures.
fn storm(dir: &Path, json: &Path, args: &[&str]) -> (String, Value) {
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "storm", "--background", "0", "--data"])
            .arg(dir)
            .arg("--json")
            .arg(json)
            .args(args),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), v)
}

/// A bad duration for `flag` exits 2 naming the flag and the value.
fn refuses_duration(dir: &Path, flag: &str, value: &str) {
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "storm", flag, value, "--data"])
            .arg(dir),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{flag} \"{value}\"")), "{err}");
}

#[test]
fn storm_separates_unrelated_faults_that_time_alone_merges() {
    let dir = temp_dir("storm");
    std::fs::write(dir.join("graph.csv"), ",a,b,c\na,0.0,1.0,0.0\nb,0.0,0.0,0.0\nc,0.0,0.0,0.0\n")
        .unwrap();
    metrics(&dir.join("noissue/metrics.csv"), 40, normal);
    // Fault 1: a's latency x10 in rows 1-3. Fault 2: c's availability drops in rows 1-2.
    metrics(&dir.join("test/issue_0/metrics.csv"), 5, |r, n, m| {
        if n == "a" && m == "latency" && (1..=3).contains(&r) { 5.0 } else { normal(r, n, m) }
    });
    metrics(&dir.join("test/issue_1/metrics.csv"), 5, |r, n, m| {
        if n == "c" && m == "availability" && (1..=2).contains(&r) { 50.0 } else { normal(r, n, m) }
    });
    let json = dir.join("storm.json");
    let mut merged_by_time = 0;
    for seed in ["1", "2", "3", "4", "5", "6"] {
        let (stdout, v) = storm(&dir, &json, &["--seed", seed]);
        assert!(stdout.contains("auspex incidents=2"), "{stdout}");
        assert_eq!(v["alerts"], 2);
        // Two sources, no background: no grouping compresses at purity 1.
        assert_eq!(
            (v["best_compression"].as_f64(), v["best_compression_series_apart"].as_f64()),
            (Some(0.0), Some(0.0)),
            "{v}"
        );
        assert!(
            stdout.contains("best_possible_compression_background_rules_apart=0.000"),
            "{stdout}"
        );
        // At purity 0.95 neither of two alerts may be impure: still nothing to fold.
        assert_eq!(v["best_compression_at_purity_95"], 0.0, "{v}");
        assert!(
            stdout.contains(
                "best_possible_compression_at_purity_0.95=0.000 background_rules_apart=0.000"
            ),
            "{stdout}"
        );
        // Alertmanager-style group_by [service]: two services, two groups.
        assert_eq!(v["alertmanager_group_by_service"]["incidents"], 2, "{v}");
        assert!(stdout.contains("alertmanager_group_by_alertname incidents="), "{stdout}");
        assert_eq!(
            (v["auspex"]["incidents"].as_u64(), v["auspex"]["purity"].as_f64()),
            (Some(2), Some(1.0))
        );
        if v["time_only_matched"].is_object() {
            // Time alone at the correlator's exact compression (2 alerts, 2 incidents: 0).
            assert_eq!(v["time_only_interpolated"]["compression"], 0.0, "{v}");
            let p = v["time_only_interpolated"]["purity"].as_f64().unwrap();
            assert!((0.5..=1.0).contains(&p), "{v}");
        }
        if v["time_only"]["incidents"] == 1 {
            assert_eq!(v["time_only"]["purity"], 0.5);
            merged_by_time += 1;
        }
    }
    assert!(merged_by_time > 0, "cases 5-20 min apart: a 10-minute window merges some");
    // The assignments file lists each alert with its source and incident.
    let csv = dir.join("assign.csv");
    let svg = dir.join("storm.svg");
    let (stdout, _) = storm(
        &dir,
        &json,
        &["--seed", "1", "--assignments", csv.to_str().unwrap(), "--plot", svg.to_str().unwrap()],
    );
    assert!(stdout.contains("plot="), "{stdout}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.matches("<rect x=").count() == 2, "{picture}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "start_min,end_min,service,metric,statistic,source,incident");
    let mut rows: Vec<(String, String, String)> = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].to_string(), f[5].to_string(), f[6].to_string())
        })
        .collect();
    rows.sort();
    let (a, c) = (&rows[0], &rows[1]);
    assert_eq!((a.0.as_str(), c.0.as_str()), ("a", "c"), "{text}");
    assert_ne!(a.1, c.1, "two sources: {text}");
    assert_ne!(a.2, c.2, "two incidents: {text}");
    // Several seeds: a line each, then the medians (every seed keeps the faults apart).
    let (stdout, v) = storm(&dir, &json, &["--seeds", "3"]);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("seed=")).count(), 3, "{stdout}");
    assert!(
        stdout.contains("median seeds=3 auspex_compression=0.000 auspex_purity=1.000"),
        "{stdout}"
    );
    assert_eq!(v["seeds"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["median"]["auspex_purity"], 1.0);
    // The target (0.90 at purity 0.95) is out of reach of any grouping here.
    assert!(stdout.contains("target_0.90_at_0.95_met=0/3 reachable_by_an_oracle=0/3"), "{stdout}");
    assert_eq!(v["median"]["target_reachable_by_an_oracle"], 0);
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "storm", "--seeds", "2", "--plot", "x.svg", "--data"])
            .arg(&dir),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one seed"));
    // Eager rules (normal 99th percentile) raise at least as many alerts.
    let (_, v) = storm(&dir, &json, &["--rules", "p99"]);
    assert_eq!(v["rules"], "p99");
    assert!(v["alerts"].as_u64().unwrap() >= 2);

    // Not a PetShop folder: a clear error and a non-zero exit.
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "storm", "--data"])
            .arg(dir.join("test")),
    )
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("graph.csv"));

    // Correlator settings from the command line; time alone at purity >= 0.95 is reported.
    // A 1-second window with a 1-second burst cannot join the two faults.
    let (_, v) = storm(&dir, &json, &["--window", "1s", "--burst", "1s"]);
    assert_eq!((v["window_s"].as_i64(), v["burst_s"].as_i64()), (Some(1), Some(1)));
    assert_eq!(v["auspex"]["incidents"], 2);
    assert_eq!(v["time_only_at_purity_95"]["purity"], 1.0, "{v}");
    refuses_duration(&dir, "--window", "soon");

    // One global evaluation schedule: every alert starts and ends on a whole minute.
    let (_, v) = storm(
        &dir,
        &json,
        &["--seed", "2", "--eval-interval", "1m", "--assignments", csv.to_str().unwrap()],
    );
    assert_eq!(v["eval_interval_s"], 60);
    assert_eq!(v["auspex"]["incidents"], 2, "{v}");
    let text = std::fs::read_to_string(&csv).unwrap();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        assert!(f[0].ends_with(".00") && f[1].ends_with(".00"), "not on a tick: {l}");
    }
    refuses_duration(&dir, "--eval-interval", "often");
    refuses_duration(&dir, "--flap-window", "never");
    let (_, v) = storm(&dir, &json, &["--flap-threshold", "4", "--flap-window", "10m"]);
    assert_eq!((v["flap_threshold"].as_u64(), v["flap_window_s"].as_u64()), (Some(4), Some(600)));
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "storm", "--flap-threshold", "1", "--data"])
            .arg(&dir),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "a signal cannot flap alone");
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "storm", "--eval-interval", "2h", "--data"])
            .arg(&dir),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 1h"));
}

/// Runs `auspex bench incidents ARGS... --json FILE`; the exit code, stderr and the figures.
fn load(dir: &Path, args: &[&str]) -> (Option<i32>, String, Value) {
    common::run_json(
        Command::new(env!("CARGO_BIN_EXE_auspex")).args(["bench", "incidents"]).args(args),
        dir,
    )
}

#[test]
fn incident_load_reports_speed_quality_and_keeps_its_memory_bound() {
    let dir = temp_dir("incident-load");
    let small = ["--services", "300", "--faults", "60", "--background", "300", "--span", "6h"];
    let (code, err, v) = load(&dir, &small);
    assert_eq!(code, Some(0), "{err}");
    let alerts = v["alerts"].as_u64().unwrap();
    assert!(alerts > 300, "{v}");
    assert!(v["alerts_per_s"].as_f64().unwrap() > 0.0 && v["observe_p50_us"].as_f64().is_some());
    // Each background alert is its own source: a perfect grouping compresses little.
    let best = v["best_compression"].as_f64().unwrap();
    assert!((0.0..0.6).contains(&best), "{v}");
    let default = v["auspex"]["purity"].as_f64().unwrap();
    assert!(v["time_only"]["purity"].as_f64().is_some());
    assert_eq!((&v["busy_onset_hops"], &v["topology"]), (&json!(1), &json!(true)), "{v}");
    // Co-onset never held back: this load (about 60 unrelated alerts an hour) snowballs.
    let off = ["--busy-onset-hops", "off"];
    let (code, err, any) = load(&dir, &[&small[..], &off].concat());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(any["busy_onset_hops"], Value::Null);
    assert_eq!(any["alerts"].as_u64(), Some(alerts), "same load");
    let loose = any["auspex"]["purity"].as_f64().unwrap();
    assert!(default > loose + 0.1, "purity {default} by default, {loose} never held back");
    // Co-onset always limited to neighbours: alerts that merely start together stay apart.
    let (code, err, near) = load(&dir, &[&small[..], &off, &["--onset-hops", "1"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(near["onset_hops"], 1);
    let hops = near["auspex"]["purity"].as_f64().unwrap();
    assert!(hops > loose, "purity {hops} with onset_hops 1, {loose} without");
    assert!(near["auspex"]["incidents"].as_u64() > any["auspex"]["incidents"].as_u64());
    // Without a topology, a busy estate's co-onset relates nothing.
    let (code, err, bare) = load(&dir, &[&small[..], &["--no-topology"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(bare["topology"], false);
    let (_, _, bare_any) = load(&dir, &[&small[..], &["--no-topology"], &off].concat());
    let p = bare["auspex"]["purity"].as_f64().unwrap();
    let q = bare_any["auspex"]["purity"].as_f64().unwrap();
    assert!(p > q + 0.1, "purity {p} without topology, {q} never held back");
    // The memory bound holds: at most 3 incidents in memory, the least recent let go.
    let (code, err, few) = load(&dir, &[&small[..], &["--max-incidents", "3"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(few["peak_incidents"].as_u64().unwrap() <= 3, "{few}");
    assert!(few["evicted"].as_u64().unwrap() > 0, "{few}");
    // Bad input: a clear error, exit 2.
    for (args, says) in [
        (&["--services", "1"][..], "--services"),
        (&["--span", "soon"][..], "--span \"soon\""),
        (&["--max-incidents", "0"][..], "--max-incidents"),
        (&["--background", "20000000"][..], "at most"),
    ] {
        let (code, err, _) = load(&dir, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
