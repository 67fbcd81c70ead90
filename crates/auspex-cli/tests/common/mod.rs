//! Helpers shared by the integration tests that run `auspex serve`.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
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
