//! Outside signals end to end: a real Prometheus evaluates an alerting rule, and sends it to a
//! real Alertmanager that delivers the webhook to `auspex serve`, or straight to `auspex serve`
//! (Alertmanager's API); both from Debian. Change events come
//! from `auspex events send`. 127.0.0.1 only.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use auspex_testkit::{Peer, find_binary, free_port, output, temp_dir};
use serde_json::Value;

mod common;
use common::agent;

fn start_auspex(data: &Path, config: &str) -> (Peer, SocketAddr) {
    common::start(data, config, &[])
}

fn signals(addr: SocketAddr) -> Vec<Value> {
    let mut r = agent().get(&format!("http://{addr}/auspex/v1/signals?since=1h")).call().unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    v.as_array().cloned().unwrap_or_default()
}

fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut r = agent()
        .post(&format!("http://{addr}{path}"))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
}

/// Debian's Prometheus with one alerting rule that fires at once (`CartOnFire`, critical, on
/// service cart), sending its alerts to the Alertmanager API on 127.0.0.1:`am_port`; ready.
fn start_prometheus(am_port: u16) -> Peer {
    let prom = find_binary("prometheus", &[], "apt-get install prometheus");
    let pdir = temp_dir("prom-rules");
    std::fs::write(
        pdir.join("rules.yml"),
        "groups:\n  - name: t\n    interval: 1s\n    rules:\n      - alert: CartOnFire\n        expr: vector(1)\n\
         \x20       labels: {severity: critical, service: cart}\n        annotations: {summary: \"cart is on fire\"}\n",
    )
    .unwrap();
    std::fs::write(
        pdir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\n\
             alerting:\n  alertmanagers:\n    - static_configs: [{{targets: [\"127.0.0.1:{am_port}\"]}}]\n",
            pdir.join("rules.yml").display()
        ),
    )
    .unwrap();
    let pport = free_port();
    let mut cmd = Command::new(prom);
    cmd.arg(format!("--config.file={}", pdir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", pdir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .arg("--rules.alert.resend-delay=1s");
    let mut peer = Peer::spawn("prometheus", cmd);
    peer.wait_http(([127, 0, 0, 1], pport).into(), "/-/ready", Duration::from_secs(30));
    peer
}

#[test]
fn prometheus_alerts_reach_auspex_through_alertmanager() {
    let (auspex, addr) = start_auspex(&temp_dir("am-auspex"), "");
    // Alertmanager: deliver at once to auspex.
    let (am_peer, am_addr) = common::start_alertmanager(&format!(
        "route:\n  receiver: auspex\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: auspex\n    webhook_configs:\n      - url: http://{addr}/auspex/v1/alertmanager\n        send_resolved: true\n"
    ));
    let amport = am_addr.port();
    let prom_peer = start_prometheus(amport);
    cart_alert_arrives_once(addr, &[&auspex, &am_peer, &prom_peer]);
}

/// Waits (90 s at most) for the `CartOnFire` alert signal, checks it is still firing with the
/// rule's labels, and that re-sends (3 s more of them) never duplicate it. `peers` are logged
/// on failure.
fn cart_alert_arrives_once(addr: SocketAddr, peers: &[&Peer]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let alert = loop {
        let found = signals(addr)
            .into_iter()
            .find(|s| s["kind"] == "alert" && s["labels"]["alertname"] == "CartOnFire");
        if let Some(a) = found {
            break a;
        }
        let logs: Vec<String> = peers.iter().map(|p| p.log()).collect();
        assert!(Instant::now() < deadline, "no alert signal after 90 s\n{}", logs.join("\n"));
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(alert["labels"]["service"], "cart");
    assert_eq!(alert["score"], 1.0);
    assert_eq!(alert["explanation"]["message"], "cart is on fire");
    assert!(alert["end"].is_null(), "still firing");
    std::thread::sleep(Duration::from_secs(3));
    let n = signals(addr).iter().filter(|s| s["labels"]["alertname"] == "CartOnFire").count();
    assert_eq!(n, 1);
}

#[test]
fn webhooks_and_events_are_checked_and_idempotent() {
    let (_peer, addr) = start_auspex(
        &temp_dir("events"),
        "[limits]\nmax_body_bytes = 4096\nmax_decoded_bytes = 65536\n",
    );
    let hook = r#"{"version":"4","status":"firing","receiver":"x","groupKey":"k","extra":{"a":1},
        "alerts":[{"status":"firing","labels":{"alertname":"A","service":"db"},"annotations":{},
        "startsAt":"2026-01-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f"}]}"#;
    assert_eq!(post(addr, "/auspex/v1/alertmanager", hook).0, 200, "unknown fields are ignored");
    assert_eq!(post(addr, "/auspex/v1/alertmanager", hook).0, 200);
    let resolved = hook
        .replace("\"status\":\"firing\",\"labels\"", "\"status\":\"resolved\",\"labels\"")
        .replace("0001-01-01T00:00:00Z", "2026-01-01T10:05:00Z");
    assert_eq!(post(addr, "/auspex/v1/alertmanager", &resolved).0, 200);
    let mut r =
        agent().get(&format!("http://{addr}/auspex/v1/signals?since=100000h")).call().unwrap();
    let all: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let a: Vec<&Value> =
        all.as_array().unwrap().iter().filter(|s| s["labels"]["alertname"] == "A").collect();
    assert_eq!(a.len(), 1, "one signal for three deliveries: {all}");
    assert_eq!(a[0]["end"], "2026-01-01T10:05:00.000Z");
    // Bad input: 4xx with a message, 413 over the limit.
    let (c, m) = post(addr, "/auspex/v1/alertmanager", "{not json");
    assert!(c == 400 && m.contains("malformed"), "{c} {m}");
    let (c, m) = post(addr, "/auspex/v1/alertmanager", r#"{"version":"3","alerts":[]}"#);
    assert!(c == 400 && m.contains("version"), "{c} {m}");
    let (c, m) =
        post(addr, "/auspex/v1/events", r#"{"kind":"deploy","service":"a","colour":"red"}"#);
    assert!(c == 400 && m.contains("colour"), "{c} {m}");
    let big = format!(r#"{{"kind":"deploy","service":"a","description":"{}"}}"#, "x".repeat(5000));
    assert_eq!(post(addr, "/auspex/v1/events", &big).0, 413);
    // The CLI.
    let out = output(Command::new(env!("CARGO_BIN_EXE_auspex")).args([
        "events",
        "send",
        "--kind",
        "deploy",
        "--service",
        "cartservice",
        "--version",
        "v42",
        "--label",
        "namespace=shop",
        "--server",
        &format!("http://{addr}"),
        "--json",
    ]))
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signal"]["kind"], "change");
    assert_eq!(v["signal"]["labels"]["version"], "v42");
    assert_eq!(v["signal"]["labels"]["namespace"], "shop");
    let out = output(Command::new(env!("CARGO_BIN_EXE_auspex")).args([
        "events",
        "send",
        "--kind",
        "deploy",
        "--service",
        "x",
        "--label",
        "nokey",
        "--server",
        &format!("http://{addr}"),
    ]))
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A webhook of one alert named `name`, padded with spaces to `len` bytes.
fn padded_webhook(name: &str, len: usize) -> String {
    let mut body = format!(
        r#"{{"version":"4","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"{name}","service":"cart"}},"annotations":{{}},"startsAt":"2026-01-01T00:00:00Z"}}]}}"#
    );
    assert!(body.len() <= len);
    body.push_str(&" ".repeat(len - body.len()));
    body
}

fn reserved(addr: SocketAddr) -> f64 {
    common::metric(addr, "auspex_http_body_bytes_reserved")
}

/// Request bodies held in memory are bounded across routes (`limits.max_inflight_body_bytes`):
/// while a slow sender holds most of the budget, a small webhook still fits, a large one is
/// answered 503 with Retry-After before its body is read, and nothing accepted is lost; once
/// the slow one finishes, the large one goes through.
#[test]
fn request_bodies_in_memory_are_bounded() {
    use std::io::{Read, Write};
    const MIB: usize = 1 << 20;
    let (_auspex, addr) = start_auspex(
        &temp_dir("body-budget"),
        "[limits]\nmax_body_bytes = 20971520\nmax_inflight_body_bytes = 26214400\n\
         [traces]\nmax_body_bytes = 1048576\n[mlflow]\nmax_request_bytes = 1048576\n",
    );
    // The slow sender: 20 MiB announced, 1 KiB sent.
    let slow = padded_webhook("Slow", 20 * MIB);
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /auspex/v1/alertmanager HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        slow.len()
    )
    .unwrap();
    conn.write_all(&slow.as_bytes()[..1024]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reserved(addr) < (20 * MIB) as f64 {
        assert!(Instant::now() < deadline, "the slow request never reserved its body");
        std::thread::sleep(Duration::from_millis(20));
    }
    let small = padded_webhook("Small", 1000);
    assert_eq!(post(addr, "/auspex/v1/alertmanager", &small).0, 200, "a small webhook fits");
    let large = padded_webhook("Large", 6 * MIB);
    let mut r = agent()
        .post(&format!("http://{addr}/auspex/v1/alertmanager"))
        .header("Content-Type", "application/json")
        .send(large.as_str())
        .unwrap();
    assert_eq!(r.status().as_u16(), 503, "the large one does not fit now");
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let msg = r.body_mut().read_to_string().unwrap();
    assert!(msg.contains("limits.max_inflight_body_bytes"), "{msg}");
    assert_eq!(common::metric(addr, "auspex_http_requests_shed_total"), 1.0);
    // An MLflow request is refused with MLflow's error body.
    let (code, body) = post(addr, "/api/2.0/mlflow/experiments/create", &" ".repeat(6 * MIB));
    assert_eq!(code, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error_code"], "TEMPORARILY_UNAVAILABLE", "{body}");
    assert_eq!(common::metric(addr, "auspex_http_requests_shed_total"), 2.0);
    // The slow sender finishes and is answered; its reservation is given back.
    conn.write_all(&slow.as_bytes()[1024..]).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..answer.len().min(200)]);
    assert_eq!(reserved(addr), 0.0);
    assert_eq!(post(addr, "/auspex/v1/alertmanager", &large).0, 200, "the retry fits");
    let mut names: Vec<String> = signals(addr)
        .iter()
        .filter_map(|s| s["labels"]["alertname"].as_str().map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(names, ["Large", "Slow", "Small"], "every accepted alert is stored");
}

#[test]
fn prometheus_sends_its_alerts_straight_to_auspex_as_to_an_alertmanager() {
    // No Alertmanager: Prometheus's `alerting.alertmanagers` points at auspex serve, which
    // takes Alertmanager's POST /api/v2/alerts.
    let (auspex, addr) = start_auspex(&temp_dir("prom-auspex"), "");
    let prom_peer = start_prometheus(addr.port());
    // Prometheus re-sends every second (resend-delay): one signal, one incident.
    cart_alert_arrives_once(addr, &[&auspex, &prom_peer]);
    let mut r = agent().get(&format!("http://{addr}/auspex/v1/incidents")).call().unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["incidents"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["incidents"][0]["severity"], "critical", "{v}");
    // Alertmanager's way of saying no: a JSON string.
    let (code, body) = post(addr, "/api/v2/alerts", r#"[{"labels": {}}]"#);
    assert_eq!(code, 400, "{body}");
    assert!(body.starts_with('"') && body.contains("no labels"), "{body}");
    let past = r#"[{"labels": {"alertname": "Old", "service": "cart"},
                    "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T01:00:00Z"}]"#;
    assert_eq!(post(addr, "/api/v2/alerts", past).0, 200);
    let mut r =
        agent().get(&format!("http://{addr}/auspex/v1/signals?since=3650d")).call().unwrap();
    let all: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let old = all.as_array().unwrap().iter().find(|s| s["labels"]["alertname"] == "Old").cloned();
    assert_eq!(old.unwrap()["end"], "2026-01-01T01:00:00.000Z", "its endsAt passed: resolved");
}

#[test]
fn an_alert_not_re_sent_before_its_ends_at_is_ended_then() {
    // As Alertmanager does: a sender (Prometheus) that stops re-sending a firing alert, say
    // because it died, lets it end at the endsAt it gave.
    let (_auspex, addr) = start_auspex(&temp_dir("expiring"), "[incidents]\ntick = \"200ms\"\n");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let rfc = |ms: u128| auspex_core::time::format_rfc3339(ms as i64);
    let (t, soon, later) =
        (now.as_millis() - 60_000, now.as_millis() + 1_000, now.as_millis() + 600_000);
    let body = |name: &str, ends: u128| {
        format!(
            r#"[{{"labels": {{"alertname": "{name}", "service": "cart"}}, "startsAt": "{}", "endsAt": "{}"}}]"#,
            rfc(t),
            rfc(ends)
        )
    };
    assert_eq!(post(addr, "/api/v2/alerts", &body("Gone", soon)).0, 200);
    assert_eq!(post(addr, "/api/v2/alerts", &body("Alive", soon)).0, 200);
    assert_eq!(post(addr, "/api/v2/alerts", &body("Alive", later)).0, 200, "re-sent in time");
    let find =
        |name: &str| signals(addr).into_iter().find(|s| s["labels"]["alertname"] == name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while find("Gone")["end"].is_null() {
        assert!(Instant::now() < deadline, "never ended");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(find("Gone")["end"], rfc(soon).as_str(), "ended at its endsAt");
    assert!(find("Alive")["end"].is_null(), "re-sent: still firing");
}
