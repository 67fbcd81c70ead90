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

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn start(data: &Path, config: &str) -> (Peer, SocketAddr) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    std::fs::create_dir_all(data).unwrap();
    let cfg = data.join("auspex.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auspex"));
    cmd.args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(&cfg);
    let mut peer = Peer::spawn("auspex", cmd);
    peer.wait_http(addr, "/health", Duration::from_secs(30));
    (peer, addr)
}

/// The venv Python with mlflow: `$AUSPEX_PYTHON`, else `<repo>/.venv/bin/python`. Fails (never
/// skips) with the install hint when it is missing.
fn python() -> PathBuf {
    let p = std::env::var_os("AUSPEX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import mlflow, sys; sys.exit(0 if mlflow.__version__ == '3.17.2' else 1)"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} with mlflow-skinny 3.17.2 is needed: run `bash scripts/test.sh` (it creates .venv) or \
         `python3 -m venv .venv && .venv/bin/pip install mlflow-skinny==3.17.2 numpy pandas cloudpickle`",
        p.display()
    );
    p
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
