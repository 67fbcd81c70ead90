//! The MLflow-compatible API of `auspex serve`, driven by the official `mlflow` client
//! (mlflow-skinny 3.17.2 in the venv that `scripts/test.sh` installs), and its bad-input
//! handling, over 127.0.0.1 only.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use auspex_testkit::{Peer, free_port, output, temp_dir};
use serde_json::{Value, json};

mod common;
use common::agent;

fn start(data: &Path, config: &str) -> (Peer, SocketAddr) {
    common::start(data, config, &[])
}

fn start_env(data: &Path, config: &str, env: &[(&str, String)]) -> (Peer, SocketAddr) {
    common::start(data, config, env)
}

/// The venv Python with mlflow; fails (never skips) with the install hint when it is missing.
fn python() -> PathBuf {
    common::venv_python(
        "import mlflow, sys; sys.exit(0 if mlflow.__version__ == '3.17.2' else 1)",
        "mlflow-skinny 3.17.2",
        "python3 -m venv .venv && .venv/bin/pip install mlflow-skinny==3.17.2 numpy pandas cloudpickle",
    )
}

#[test]
fn the_official_mlflow_client_works_unchanged() {
    let py = python();
    let data = temp_dir("mlflow-client");
    let (peer, addr) = start(&data, "");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/mlflow_client.py");
    let out = output(
        Command::new(py)
            .arg(script)
            .arg(format!("http://{addr}"))
            .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "60"),
    )
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("mlflow-client: ok"),
        "client failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        peer.log()
    );
}

fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
    let url = format!("http://{addr}{path}");
    let a = agent();
    let mut r = match (method, body) {
        ("GET", _) => a.get(&url).call().unwrap(),
        ("DELETE", _) => a.delete(&url).call().unwrap(),
        ("PUT", b) => a.put(&url).send(b.unwrap_or_default()).unwrap(),
        (_, b) => a
            .post(&url)
            .header("Content-Type", "application/json")
            .send(b.unwrap_or_default())
            .unwrap(),
    };
    let code = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[test]
fn bad_input_gets_mlflow_errors() {
    let data = temp_dir("mlflow-bad");
    let (_peer, addr) = start(&data, "[mlflow]\nmax_artifact_bytes = 1000\n");
    let api = "/api/2.0/mlflow";
    // Invalid JSON, unknown run, duplicate experiment, bad filter.
    let (c, v) = call(addr, "POST", &format!("{api}/runs/create"), Some(b"{not json"));
    assert_eq!((c, v["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{v}");
    let (c, v) = call(addr, "GET", &format!("{api}/runs/get?run_id=abc"), None);
    assert_eq!((c, v["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")), "{v}");
    let body = json!({"name": "e"}).to_string();
    assert_eq!(
        call(addr, "POST", &format!("{api}/experiments/create"), Some(body.as_bytes())).0,
        200
    );
    let (c, v) = call(addr, "POST", &format!("{api}/experiments/create"), Some(body.as_bytes()));
    assert_eq!((c, v["error_code"].as_str()), (400, Some("RESOURCE_ALREADY_EXISTS")), "{v}");
    let s = json!({"experiment_ids": ["0"], "filter": "metrics.a < 'x'"}).to_string();
    let (c, v) = call(addr, "POST", &format!("{api}/runs/search"), Some(s.as_bytes()));
    assert_eq!((c, v["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{v}");
    // log-batch over MLflow's limit of 1000 metrics.
    let run = call(addr, "POST", &format!("{api}/runs/create"), Some(b"{}")).1;
    let rid = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let metrics: Vec<Value> =
        (0..1001).map(|i| json!({"key": "m", "value": 1.0, "timestamp": 0, "step": i})).collect();
    let b = json!({"run_id": rid, "metrics": metrics}).to_string();
    let (c, v) = call(addr, "POST", &format!("{api}/runs/log-batch"), Some(b.as_bytes()));
    assert_eq!(c, 400, "{v}");
    // Artifact paths: `..`, absolute, through a symlink; and an upload over the limit.
    let art = "/api/2.0/mlflow-artifacts/artifacts";
    let (c, v) = call(addr, "PUT", &format!("{art}/0/a/../../../etc/x"), Some(b"x"));
    assert!(c == 400 || c == 404, "{c} {v}"); // the HTTP layer may normalise `..` away first
    let (c, v) = call(addr, "PUT", &format!("{art}/0/a/%2E%2E/%2E%2E/x"), Some(b"x"));
    assert_eq!((c, v["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{v}");
    let (c, _) = call(addr, "GET", &format!("{art}?path=%2Fetc"), None);
    assert_eq!(c, 400, "absolute path");
    std::os::unix::fs::symlink("/etc", data.join("artifacts/escape")).unwrap();
    let (c, v) = call(addr, "GET", &format!("{art}/escape/hostname"), None);
    assert_eq!((c, v["error_code"].as_str()), (403, Some("PERMISSION_DENIED")), "{v}");
    let (c, v) = call(addr, "PUT", &format!("{art}/0/big.bin"), Some(&[7u8; 5000]));
    assert_eq!(c, 413, "{v}");
    assert!(!data.join("artifacts/0/big.bin").exists(), "a refused upload leaves no file");
    let (c, _) = call(addr, "PUT", &format!("{art}/0/ok.bin"), Some(&[7u8; 500]));
    assert_eq!(c, 200);
    let (c, v) = call(addr, "GET", &format!("{art}?path=0"), None);
    assert_eq!((c, v["files"][0]["path"].as_str()), (200, Some("ok.bin")), "{v}");
    // Server info and health.
    let (c, v) = call(addr, "GET", "/api/3.0/mlflow/server-info", None);
    assert_eq!(c, 200, "{v}");
}

fn auspex(args: &[&str]) -> (i32, String, String) {
    let out = output(Command::new(env!("CARGO_BIN_EXE_auspex")).args(args)).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn models_cli_gates_promotes_and_shows_lineage() {
    let data = temp_dir("mlflow-models");
    let (_peer, addr) = start(&data, "");
    let api = "/api/2.0/mlflow";
    let post = |path: &str, body: Value| {
        let (c, v) =
            call(addr, "POST", &format!("{api}/{path}"), Some(body.to_string().as_bytes()));
        assert_eq!(c, 200, "{path}: {v}");
        v
    };
    // Two runs: v1 (accuracy 0.91) and v2 (accuracy 0.95), with a dataset and a git commit.
    let mut runs = Vec::new();
    for acc in [0.91, 0.95] {
        let r = post(
            "runs/create",
            json!({"experiment_id": "0", "user_id": "alice",
            "tags": [{"key": "mlflow.source.git.commit", "value": "abc123"}]}),
        );
        let id = r["run"]["info"]["run_id"].as_str().unwrap().to_string();
        post(
            "runs/log-batch",
            json!({"run_id": id, "metrics": [
            {"key": "accuracy", "value": acc, "timestamp": 1, "step": 0},
            {"key": "latency_ms", "value": 20.0, "timestamp": 1, "step": 0}]}),
        );
        post(
            "runs/log-inputs",
            json!({"run_id": id, "datasets": [{"dataset":
            {"name": "train", "digest": "d1g3st", "source_type": "local", "source": "{}"}}]}),
        );
        runs.push(id);
    }
    for id in &runs {
        post("model-versions/create", json!({"name": "clf", "source": "s3://m", "run_id": id}));
    }
    let server = format!("http://{addr}");
    let s = server.as_str();
    let promote = |version: &str, alias: &str, extra: &[&str]| {
        let mut args = vec!["models", "promote", "clf", version, "--alias", alias];
        args.extend_from_slice(extra);
        args.extend(["--server", s]);
        auspex(&args)
    };
    // Usage error: a gate that does not parse (exit 2).
    let (code, _, err) = promote("1", "champion", &["--require", "metrics.accuracy >= 'high'"]);
    assert_eq!(code, 2, "{err}");
    // A failing gate (exit 1) says why and moves nothing.
    let (code, _, err) = promote("1", "champion", &["--require", "metrics.accuracy >= 0.93"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("metrics.accuracy = 0.91"), "{err}");
    // Passing gates promote v1, then v2 beats the champion, then v1 cannot go back.
    let (code, out, err) = promote("1", "champion", &["--require", "metrics.accuracy >= 0.9"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) =
        promote("2", "champion", &["--require", "metrics.accuracy >= 0.9", "--vs", "champion"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) =
        promote("1", "champion", &["--require", "metrics.accuracy >= 0.9", "--vs", "champion"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("champion (v2) has 0.95"), "{err}");
    // Lower is better, per metric: an equal latency passes.
    let (code, _, err) = promote(
        "2",
        "fast",
        &[
            "--require",
            "metrics.latency_ms <= 25",
            "--vs",
            "champion",
            "--lower-is-better",
            "latency_ms",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // Lineage: run, dataset digest, git commit, who registered, and the alias history.
    let (code, out, err) = auspex(&["models", "lineage", "clf", "2", "--server", s]);
    assert_eq!(code, 0, "{err}");
    for want in
        [runs[1].as_str(), "d1g3st", "abc123", "registered by alice", "champion=1 -> champion=2"]
    {
        assert!(out.contains(want), "lineage lacks {want:?}:\n{out}");
    }
    let (code, out, _) = auspex(&["models", "lineage", "clf", "2", "--json", "--server", s]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["lineage"]["datasets"][0]["digest"], "d1g3st");
    // list and show.
    let (code, out, _) = auspex(&["models", "list", "--server", s]);
    assert!(code == 0 && out.contains("clf") && out.contains("champion=v2"), "{out}");
    let (code, out, _) = auspex(&["models", "show", "clf", "--json", "--server", s]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model_versions"].as_array().unwrap().len(), 2);
    // An unknown model is an input error with the server's message.
    let (code, _, err) = auspex(&["models", "show", "nope", "--server", s]);
    assert!(code == 2 && err.contains("RESOURCE_DOES_NOT_EXIST"), "{err}");
}

/// Peak resident memory of a process (`VmHWM`), bytes.
fn peak_rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// A reader of `n` pseudo-random bytes, made on the fly (nothing held in memory).
struct Gen {
    left: u64,
    x: u64,
}

impl std::io::Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in &mut buf[..n] {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            *b = self.x as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn a_512_mib_artifact_streams_both_ways_in_bounded_memory() {
    let data = temp_dir("mlflow-big");
    let (peer, addr) = start(&data, "");
    let size: u64 = 512 << 20;
    let before = peak_rss(peer.pid());
    let url = format!("http://{addr}/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/big.bin");
    let mut body = Gen { left: size, x: 0x9E37_79B9_7F4A_7C15 };
    let r = agent().put(&url).send(ureq::SendBody::from_reader(&mut body)).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        std::fs::metadata(data.join("artifacts/0/run/artifacts/big.bin")).unwrap().len(),
        size
    );
    // Download and compare with the same generator, chunk by chunk.
    let mut resp = agent().get(&url).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut got = resp.body_mut().with_config().limit(u64::MAX).reader();
    let mut want = Gen { left: size, x: 0x9E37_79B9_7F4A_7C15 };
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut total = 0u64;
    loop {
        let n = std::io::Read::read(&mut got, &mut a).unwrap();
        if n == 0 {
            break;
        }
        std::io::Read::read_exact(&mut want, &mut b[..n]).unwrap();
        assert_eq!(a[..n], b[..n], "bytes differ near offset {total}");
        total += n as u64;
    }
    assert_eq!(total, size);
    let grew = peak_rss(peer.pid()).saturating_sub(before);
    assert!(grew < 64 << 20, "peak RSS grew by {} MiB for a 512 MiB round trip", grew >> 20);
}

#[test]
fn artifacts_on_an_s3_compatible_store() {
    let py = python();
    let moto = py.with_file_name("moto_server");
    assert!(
        moto.exists(),
        "{} is needed (an S3-compatible server on loopback): run `bash scripts/test.sh` or \
         `.venv/bin/pip install 'moto[server]==5.2.5'`",
        moto.display()
    );
    let s3: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = Command::new(&moto);
    cmd.args(["-H", "127.0.0.1", "-p", &s3.port().to_string()]);
    let mut s3peer = Peer::spawn("moto", cmd);
    s3peer.wait_tcp(s3, Duration::from_secs(60));
    let r = agent().put(&format!("http://{s3}/models")).send(&[][..]).unwrap();
    assert_eq!(r.status().as_u16(), 200, "create bucket");
    let data = temp_dir("mlflow-s3");
    let env = [
        ("AWS_ENDPOINT", format!("http://{s3}")),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let (peer, addr) =
        start_env(&data, "[mlflow]\nartifacts_destination = \"s3://models/team-a\"\n", &env);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/mlflow_client.py");
    let out = output(Command::new(py).arg(script).arg(format!("http://{addr}"))).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("mlflow-client: ok"),
        "client failed:\n{stdout}\n{}\nserver log:\n{}\ns3 log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        peer.log(),
        s3peer.log()
    );
    // The files are in the bucket under the prefix, not on local disk.
    let mut r =
        agent().get(&format!("http://{s3}/models?list-type=2&prefix=team-a/")).call().unwrap();
    let listing = r.body_mut().read_to_string().unwrap();
    assert!(listing.contains("team-a/1/") && listing.contains("blob.bin"), "{listing}");
    assert!(!data.join("artifacts").exists(), "nothing stored locally");
}
