//! `auspex logs ...` and the log benches, end to end.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_auspex"));
    c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        let _ = pipe.write_all(s);
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../auspex-bench/tests/fixtures/loghub-mini")
}

#[test]
fn parse_gives_one_row_per_physical_line() {
    // CRLF, an empty line, a line that does not match, quotes and commas, no final newline.
    let input = b"081109 203615 148 INFO dfs.DataNode: PacketResponder 1 for block blk_1 terminating\r\n\
                  \r\n\
                  garbage line\n\
                  081109 203616 149 INFO dfs.DataNode: PacketResponder 2 for block blk_2 terminating\n\
                  081109 203617 150 WARN x.Y: said \"a, b\" to 10.0.0.1:80";
    let out = run(
        &[
            "logs",
            "parse",
            "-i",
            "-",
            "-o",
            "-",
            "--log-format",
            "<Date> <Time> <Pid> <Level> <Component>: <Content>",
        ],
        Some(input),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rd = csv::Reader::from_reader(&out.stdout[..]);
    assert_eq!(rd.headers().unwrap(), vec!["LineId", "EventId", "EventTemplate"]);
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 5);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], (i + 1).to_string());
    }
    assert_eq!(&rows[0][2], "PacketResponder <*> for block <*> terminating");
    assert_eq!(rows[0][1], rows[3][1]);
    assert_eq!(&rows[1][2], "");
    assert_eq!(&rows[2][2], "garbage line");
    assert_eq!(&rows[4][2], "said \"a, b\" to <*>");
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not match"));
}

#[test]
fn templates_lists_counts_examples_and_params() {
    let input = b"user 1 logged in\nuser 2 logged in\ndisk full\n";
    let out = run(&["logs", "templates", "-i", "-", "--json"], Some(input));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["template"], "user <*> logged in");
    assert_eq!(v[0]["count"], 2);
    assert_eq!(v[0]["example"], "user 1 logged in");
    assert_eq!(v[0]["example_params"][0], "1");
    let out = run(&["logs", "templates", "-i", "-"], Some(input));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 template(s), 3 line(s)"));
}

#[test]
fn bad_input_never_panics() {
    let mut junk: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    junk.extend_from_slice(&[b'x'; 100_000]);
    junk.push(b'\n');
    let out = run(&["logs", "parse", "-i", "-", "-o", "-"], Some(&junk));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8"));
    let out =
        run(&["logs", "parse", "-i", "-", "-o", "-", "--log-format", "<Date> <Nope>"], Some(b"x"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no <Content> field"));
}

#[test]
fn bench_loghub_prints_the_table_and_throughput() {
    let dir = std::env::temp_dir().join(format!("auspex-lh-{}", std::process::id()));
    let out = run(
        &["bench", "loghub", "--data", fixture().to_str().unwrap(), "--out", dir.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].starts_with("system        lines truthT  predT"));
    assert!(lines.iter().any(|l| l.starts_with("HDFS ")));
    assert!(lines.iter().any(|l| l.starts_with("average(3)")));
    assert!(
        lines.last().unwrap().starts_with("throughput=")
            && lines.last().unwrap().ends_with(" lines/s")
    );
    for sys in ["HDFS", "OpenSSH", "Android"] {
        let pred = std::fs::read_to_string(dir.join(format!("{sys}.csv"))).unwrap();
        assert_eq!(pred.lines().count(), 51, "{sys}: header + one row per line");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_hdfs_sessions_reads_only_normal_training_rows() {
    let dir = std::env::temp_dir().join(format!("auspex-hdfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Synthetic sessions. If the label-1 training rows were learned, the anomalous test
    // sessions `1 3 2 4` and `1 2 7 4` would look normal and recall would drop.
    let train = "Sequence,label\n1 2 3 4,0\n1 2 2 3 4,0\n1 3 2 4,1\n1 2 7 4,1\n1 2 3 4,0\n";
    std::fs::write(dir.join("train.csv"), train).unwrap();
    std::fs::write(
        dir.join("test.csv"),
        "Sequence,label\n1 2 3 4,0\n1 2 2 3 4,0\n1 3 2 4,1\n1 2 7 4,1\n1 2 3,1\n",
    )
    .unwrap();
    let out = run(
        &[
            "bench",
            "hdfs-sessions",
            "--train",
            dir.join("train.csv").to_str().unwrap(),
            "--test",
            dir.join("test.csv").to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        s.lines().last().unwrap(),
        "hdfs-sessions: precision=1.0000 recall=1.0000 f1=1.0000 n=5"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
