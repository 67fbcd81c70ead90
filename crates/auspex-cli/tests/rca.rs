//! `auspex bench rca` on a generated PetShop-shaped folder (no shared data needed): the cause
//! is upstream of the symptom (a callee), and the bench writes one JSON line per case.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use auspex_testkit::{output, temp_dir};
use serde_json::Value;

mod common;

const NODES: [&str; 4] = ["front", "mid", "leaf", "other"];

fn normal(r: usize, n: &str, m: &str) -> f64 {
    let wobble = ((r * 7 + n.len()) % 5) as f64;
    if m == "availability" { 99.0 + wobble * 0.2 } else { 0.1 + wobble * 0.01 }
}

#[test]
fn rca_ranks_the_upstream_cause_first_and_writes_json_lines() {
    let dir = temp_dir("rca");
    // front calls mid and other; mid calls leaf.
    std::fs::write(
        dir.join("graph.csv"),
        ",front,mid,leaf,other\nfront,0.0,1.0,0.0,1.0\nmid,0.0,0.0,1.0,0.0\nleaf,0.0,0.0,0.0,0.0\nother,0.0,0.0,0.0,0.0\n",
    )
    .unwrap();
    common::petshop_metrics(&dir.join("noissue/metrics.csv"), &NODES, 40, normal);
    // Case 0: leaf slows from row 2; mid and front (its callers) follow, the symptom is front.
    common::petshop_metrics(&dir.join("test/issue_0/metrics.csv"), &NODES, 5, |r, n, m| {
        let slow = match n {
            "leaf" => 5.0,
            "mid" => 3.0,
            "front" => 2.0,
            _ => 0.0,
        };
        if m == "latency" && r >= 2 && slow > 0.0 { slow } else { normal(r, n, m) }
    });
    // Case 1: other fails (availability drops); front's latency rises.
    common::petshop_metrics(&dir.join("test/issue_1/metrics.csv"), &NODES, 5, |r, n, m| {
        match (n, m) {
            ("other", "availability") if r >= 2 => 40.0,
            ("front", "latency") if r >= 2 => 1.5,
            _ => normal(r, n, m),
        }
    });
    for (i, root) in ["leaf", "other"].iter().enumerate() {
        std::fs::write(
            dir.join(format!("test/issue_{i}/target.json")),
            format!(
                r#"{{"target": {{"node": "front", "metric": "latency", "agg": "Average", "timestamp": {}}}, "root_cause": {{"node": "{root}", "metric": null}}}}"#,
                1_681_855_200 + 300 + 60
            ),
        )
        .unwrap();
    }
    let ranks = dir.join("ranks.jsonl");
    let json = dir.join("rca.json");
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "rca", "--data"])
            .arg(&dir)
            .arg("--output")
            .arg(&ranks)
            .arg("--json")
            .arg(&json),
    )
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("auspex cases=2 AC@1=1.000 AC@3=1.000 Avg@5=1.000"), "{stdout}");
    assert!(stdout.contains("nsigma cases=2") && stdout.contains("baro cases=2"), "{stdout}");
    let lines: Vec<Value> = std::fs::read_to_string(&ranks)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["case"], "test/issue_0");
    assert_eq!(lines[0]["ranking"][0], "leaf");
    assert_eq!(lines[0]["ranking"].as_array().unwrap().len(), 4, "every node ranked");
    assert_eq!(lines[1]["ranking"][0], "other");
    let why = lines[0]["explanations"][0].as_str().unwrap();
    assert!(
        why.starts_with("leaf latency Average rose")
            && why.contains("explains anomalous caller mid"),
        "{why}"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["auspex"]["ac1"], 1.0);

    // A folder without cases: a clear error, exit 2.
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_auspex"))
            .args(["bench", "rca", "--data"])
            .arg(dir.join("noissue"))
            .arg("--output")
            .arg(dir.join("x.jsonl")),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("graph.csv"));
}
