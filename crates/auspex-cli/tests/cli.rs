//! End-to-end tests of the `auspex` binary.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auspex"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = bin();
    c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        // The child may exit before reading (usage errors): a broken pipe is fine.
        let _ = pipe.write_all(s.as_bytes());
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn detect_on_the_shipped_example_flags_the_injected_anomalies() {
    let input = root().join("examples/cpu.csv");
    let out =
        run(&["detect", "--input", input.to_str().unwrap(), "--output", "-", "--explain"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let src = std::fs::read_to_string(&input).unwrap();
    let in_rows: Vec<&str> = src.lines().skip(1).collect();
    let out_rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(in_rows.len(), out_rows.len(), "one output row per input row");
    for (i, o) in in_rows.iter().zip(&out_rows) {
        assert!(o.starts_with(i), "timestamp and value copied: {o}");
        assert_eq!(o.split(',').count(), 8);
    }
    let flagged: Vec<&str> =
        out_rows.iter().filter(|r| r.ends_with(",1")).map(|r| &r[..19]).collect();
    assert!(flagged.contains(&"2024-03-14 12:30:00"), "the spike: {flagged:?}");
    assert!(flagged.contains(&"2024-03-16 08:20:00"), "the level shift: {flagged:?}");
    assert!(flagged.len() <= 6, "few false alarms: {flagged:?}");
}

#[test]
fn detect_reads_stdin_and_writes_a_file() {
    let dir = std::env::temp_dir().join(format!("auspex-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let outp = dir.join("out.csv");
    let input = "timestamp,value\n1700000000,1\n1700000060.5,2\n1700000120,3\n";
    let out = run(&["detect", "-i", "-", "-o", outp.to_str().unwrap()], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&outp).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score");
    assert_eq!(lines.len(), 4);
    assert!(lines[2].starts_with("1700000060.5,2,"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn detect_ms_unit() {
    let input = "timestamp,value\n1700000000000,1\n1700000060000,2\n";
    let out = run(&["detect", "-i", "-", "-o", "-", "--ts-unit", "ms", "--explain"], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().nth(1).unwrap().starts_with("1700000000000,1,0,"));
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_line() {
    let cases = [
        ("", "empty input"),
        ("time,val\n1,2\n", "line 1: missing header"),
        ("timestamp,value\n1,2\n3\n", "line 3: malformed row"),
        ("timestamp,value\n1,2\nlast tuesday,3\n", "line 3: unparsable timestamp"),
        ("timestamp,value\n1,2\n2,abc\n", "line 3: malformed row: value"),
    ];
    for (input, want) in cases {
        let out = run(&["detect", "-i", "-", "-o", "-"], Some(input));
        assert_eq!(out.status.code(), Some(2), "input {input:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(want), "{input:?}: {err}");
    }
    let out = run(&["detect", "-i", "/no/such/file.csv", "-o", "-"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot open input"));
    let out =
        run(&["detect", "-i", "-", "-o", "-", "--sensitivity", "3"], Some("timestamp,value\n"));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["detect", "--nope"], None);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn bench_nab_scores_a_corpus_and_writes_results_and_json() {
    let data = root().join("crates/auspex-bench/tests/fixtures/nab-mini");
    let dir = std::env::temp_dir().join(format!("auspex-nab-{}", std::process::id()));
    let json = dir.join("nab.json");
    let out = run(
        &[
            "bench",
            "nab",
            "--data",
            data.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].starts_with("profile=standard score="), "{s}");
    assert!(lines[1].starts_with("profile=reward_low_FP_rate score="));
    assert!(lines[2].starts_with("profile=reward_low_FN_rate score="));
    assert!(lines[3].starts_with("throughput=") && lines[3].ends_with(" points/s"));
    // Results are in the detect format, one row per data row, and score back identically.
    let files = auspex_bench_files(&data, &dir);
    assert_eq!(files, 4);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["profiles"]["standard"]["score"].is_number());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn auspex_bench_files(data: &Path, out: &Path) -> usize {
    let mut n = 0;
    for cat in ["catA", "catB"] {
        for e in std::fs::read_dir(data.join("data").join(cat)).unwrap() {
            let e = e.unwrap();
            let src = std::fs::read_to_string(e.path()).unwrap();
            let res = std::fs::read_to_string(out.join(cat).join(e.file_name())).unwrap();
            assert_eq!(src.lines().count(), res.lines().count());
            assert!(res.starts_with("timestamp,value,anomaly_score\n"));
            n += 1;
        }
    }
    n
}

#[test]
fn bench_detect_prints_key_values() {
    let out = run(&["bench", "detect", "--points", "50000", "--series", "20"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for key in ["throughput=", "heap_bytes_per_series=", "period_points="] {
        assert!(s.lines().any(|l| l.starts_with(key)), "{key} missing in {s}");
    }
    let heap: f64 =
        s.lines().find_map(|l| l.strip_prefix("heap_bytes_per_series=")).unwrap().parse().unwrap();
    assert!(heap > 0.0 && heap <= 16384.0, "{heap}");
}

#[test]
fn help_on_every_command() {
    for args in [
        vec!["--help"],
        vec!["detect", "--help"],
        vec!["bench", "--help"],
        vec!["bench", "nab", "--help"],
        vec!["bench", "detect", "--help"],
        vec!["bench", "loghub", "--help"],
        vec!["bench", "hdfs-sessions", "--help"],
        vec!["bench", "remote-write", "--help"],
        vec!["bench", "alerts", "--help"],
        vec!["bench", "storm", "--help"],
        vec!["bench", "incidents", "--help"],
        vec!["bench", "rca", "--help"],
        vec!["incidents", "--help"],
        vec!["incidents", "list", "--help"],
        vec!["incidents", "show", "--help"],
        vec!["incidents", "ack", "--help"],
        vec!["incidents", "resolve", "--help"],
        vec!["incidents", "merge", "--help"],
        vec!["incidents", "split", "--help"],
        vec!["silences", "--help"],
        vec!["silences", "add", "--help"],
        vec!["silences", "list", "--help"],
        vec!["silences", "expire", "--help"],
        vec!["serve", "--help"],
        vec!["signals", "list", "--help"],
        vec!["series", "list", "--help"],
        vec!["logs", "parse", "--help"],
        vec!["logs", "templates", "--help"],
        vec!["events", "send", "--help"],
        vec!["models", "--help"],
        vec!["models", "list", "--help"],
        vec!["models", "show", "--help"],
        vec!["models", "promote", "--help"],
        vec!["models", "lineage", "--help"],
    ] {
        let out = run(&args, None);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn a_closed_stdout_ends_quietly_without_a_panic() {
    use std::io::{BufRead, BufReader};
    let input = root().join("examples/cpu.csv");
    let mut child = bin()
        .args(["detect", "-i", input.to_str().unwrap(), "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first, "timestamp,value,anomaly_score\n");
    // The reader is dropped here: the rest of the output hits a closed pipe.
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn detect_draws_a_plot() {
    let input = root().join("examples/cpu.csv");
    let svg = std::env::temp_dir().join(format!("auspex-plot-{}.svg", std::process::id()));
    let out = run(
        &["detect", "-i", input.to_str().unwrap(), "-o", "-", "--plot", svg.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.starts_with("<svg") && s.contains("4032 points"), "{}", &s[..200]);
    assert!(s.matches("<circle").count() >= 2, "the two injected anomalies are marked");
    std::fs::remove_file(&svg).unwrap();
    let out =
        run(&["detect", "-i", input.to_str().unwrap(), "-o", "-", "--plot", "/no/dir/x.svg"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot write --plot"));
}
