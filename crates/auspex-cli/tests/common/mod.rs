//! Helpers shared by the integration tests that run `auspex serve`.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use auspex_testkit::{Peer, free_port};

/// An HTTP client that returns 4xx/5xx as responses, not errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The value of the unlabelled metric `name` at `addr`'s `/metrics` (panics if absent).
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    let mut r = agent().get(&format!("http://{addr}/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// Starts `auspex serve` on a free port with `config` (TOML) and extra environment.
pub fn start(data: &Path, config: &str, env: &[(&str, String)]) -> (Peer, SocketAddr) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    std::fs::create_dir_all(data).unwrap();
    let cfg = data.join("auspex.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auspex"));
    cmd.args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(&cfg);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut peer = Peer::spawn("auspex", cmd);
    peer.wait_http(addr, "/health", Duration::from_secs(30));
    (peer, addr)
}

/// Writes a PetShop-shaped `metrics.csv` (3-line header, an index line, Unix seconds 300 s
/// apart from 1681855200) for `nodes` × {latency Average, availability Average}.
pub fn petshop_metrics(
    path: &Path,
    nodes: &[&str],
    rows: usize,
    value: impl Fn(usize, &str, &str) -> f64,
) {
    use std::fmt::Write as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let cols: Vec<(&str, &str, &str)> = nodes
        .iter()
        .flat_map(|n| [(*n, "latency", "Average"), (*n, "availability", "Average")])
        .collect();
    let mut s = String::from("microservice");
    for c in &cols {
        write!(s, ",{}", c.0).unwrap();
    }
    s.push_str("\nmetric");
    for c in &cols {
        write!(s, ",{}", c.1).unwrap();
    }
    s.push_str("\nstatistic");
    for c in &cols {
        write!(s, ",{}", c.2).unwrap();
    }
    s.push_str("\nunix_timestamp");
    s.push_str(&",".repeat(cols.len()));
    s.push('\n');
    for r in 0..rows {
        write!(s, "{}.0", 1_681_855_200 + r * 300).unwrap();
        for c in &cols {
            write!(s, ",{}", value(r, c.0, c.1)).unwrap();
        }
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Runs `cmd` with `--json FILE` appended; the exit code, stderr and the JSON it wrote
/// (`Null` when it wrote none).
pub fn run_json(cmd: &mut Command, dir: &Path) -> (Option<i32>, String, serde_json::Value) {
    let json = dir.join("out.json");
    let _ = std::fs::remove_file(&json);
    let out = auspex_testkit::output(cmd.arg("--json").arg(&json)).unwrap();
    let v = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), v)
}

/// Starts Debian's prometheus-alertmanager on a free port of 127.0.0.1 with `config` (YAML),
/// ready; fails when it is not installed.
pub fn start_alertmanager(config: &str) -> (Peer, SocketAddr) {
    let am = auspex_testkit::find_binary(
        "prometheus-alertmanager",
        &["alertmanager"],
        "apt-get install prometheus-alertmanager",
    );
    let dir = auspex_testkit::temp_dir("am");
    std::fs::write(dir.join("am.yml"), config).unwrap();
    let port = free_port();
    let mut cmd = Command::new(am);
    cmd.arg(format!("--config.file={}", dir.join("am.yml").display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=");
    let mut peer = Peer::spawn("alertmanager", cmd);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    peer.wait_http(addr, "/-/ready", Duration::from_secs(30));
    (peer, addr)
}

/// The venv Python (`$AUSPEX_PYTHON`, else `<repo>/.venv/bin/python`) on which `check` (Python
/// code) succeeds; fails, never skips, with `what` and the install hint when it does not.
pub fn venv_python(check: &str, what: &str, install: &str) -> PathBuf {
    let p = std::env::var_os("AUSPEX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&p).args(["-c", check]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} with {what} is needed: run `bash scripts/test.sh` (it creates .venv) or `{install}`",
        p.display()
    );
    p
}
