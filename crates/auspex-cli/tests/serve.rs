//! `auspex serve` end to end: the binary against real peers (Prometheus from Debian, and our
//! own remote-write client), over 127.0.0.1 only.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use auspex_detect::Detector;
use auspex_ingest::remote_write::encode;
use auspex_testkit::{Peer, find_binary, free_port, http_get, temp_dir};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_auspex")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

struct Server {
    peer: Peer,
    addr: SocketAddr,
}

fn start_server(data: &Path, config: &str) -> Server {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let cfg = data.join("auspex.toml");
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(&cfg);
    let mut peer = Peer::spawn("auspex", cmd);
    peer.wait_http(addr, "/health", Duration::from_secs(30));
    Server { peer, addr }
}

fn write(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let mut r = agent()
        .post(&format!("http://{addr}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .send(body)
        .unwrap();
    let code = r.status().as_u16();
    (code, r.body_mut().read_to_string().unwrap_or_default())
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = http_get(addr, path).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with(' ') || l[name.len()..].starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn series_point(i: i64) -> (i64, f64) {
    let t = 1_700_000_000_000 + i * 10_000;
    let v = if (400..430).contains(&i) { 80.0 } else { 20.0 + ((i * 37) % 11) as f64 * 0.5 };
    (t, v)
}

/// Feed N points, kill -9, restart, feed M more: every signal listed before the kill is still
/// listed, and scores after the snapshot window match a run that never restarted.
#[test]
fn crash_and_restart_keeps_signals_and_models() {
    let data = temp_dir("crash");
    let config = "[series]\nsnapshot_interval = \"500ms\"\nidle_timeout = \"1h\"\n";
    let name = vec![("__name__", "crash_test"), ("job", "t")];
    let feed = |addr: SocketAddr, from: i64, to: i64| {
        for chunk in (from..to).collect::<Vec<_>>().chunks(25) {
            let pts: Vec<(i64, f64)> = chunk.iter().map(|&i| series_point(i)).collect();
            let (code, body) = write(addr, &encode(&[(name.clone(), pts)]));
            assert_eq!(code, 204, "{body}");
        }
    };
    let (n, m) = (500, 300);
    let server = start_server(&data, config);
    feed(server.addr, 0, n);
    let before = get_json(server.addr, "/auspex/v1/signals?since=100000d");
    let ids: Vec<String> =
        before.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert!(!ids.is_empty(), "the level shift at 400 raised a signal: {before}");
    // The documented window: a snapshot interval (plus margin) after the last acknowledged write.
    std::thread::sleep(Duration::from_millis(1500));
    let Server { mut peer, .. } = server;
    peer.kill_hard();
    drop(peer);

    let server = start_server(&data, config);
    let after = get_json(server.addr, "/auspex/v1/signals?since=100000d");
    let after_ids: Vec<&str> =
        after.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    for id in &ids {
        assert!(after_ids.contains(&id.as_str()), "signal {id} lost across kill -9: {after}");
    }
    // The client commands see the same, with --server and --json.
    let url = format!("http://{}", server.addr);
    let out = auspex_testkit::output(
        Command::new(bin())
            .args(["signals", "list", "--server", &url, "--json", "--since", "100000d"]),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, after, "signals list --json prints the API's Signal JSON");
    let out = auspex_testkit::output(
        Command::new(bin()).args(["series", "list", "--json"]).env("AUSPEX_SERVER", &url),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let series: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &series.as_array().unwrap()[0];
    assert_eq!(s["labels"]["__name__"], "crash_test");
    assert_eq!(s["samples"].as_u64(), Some(n as u64));
    assert_eq!(s["state"], "active");
    assert!(s["first_seen"].as_str().unwrap().ends_with('Z'));
    let out = auspex_testkit::output(Command::new(bin()).args([
        "signals",
        "list",
        "--server",
        "http://127.0.0.1:9",
    ]))
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach http://127.0.0.1:9"));
    // Reference: a detector that never restarted.
    let mut reference = Detector::default();
    let mut last = 0.0;
    for i in 0..n + m {
        let (t, v) = series_point(i);
        last = reference.update(t, v).score;
        if i >= n && (i - n) % 100 == 99 {
            feed(server.addr, i - 99, i + 1);
            let series = get_json(server.addr, "/auspex/v1/series");
            let s = series
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["labels"]["__name__"] == "crash_test")
                .unwrap();
            assert_eq!(s["samples"].as_u64(), Some((i + 1) as u64));
            assert_eq!(s["last_score"].as_f64(), Some(last), "score after restart at point {i}");
        }
    }
    assert!(last.is_finite());
}

/// Bad input gets a 4xx naming the problem; the valid part of a request is still ingested.
#[test]
fn bad_input_is_refused_with_a_message() {
    let data = temp_dir("badinput");
    let server = start_server(&data, "[limits]\nmax_body_bytes = 4096\n");
    let a = server.addr;
    let (code, body) = write(a, b"not snappy at all");
    assert_eq!(code, 400);
    assert!(body.contains("bad snappy"), "{body}");
    let (code, body) = write(a, &auspex_ingest::remote_write::compress(b"\xff\xff\xff\xff"));
    assert_eq!(code, 400);
    assert!(body.contains("bad protobuf"), "{body}");
    let big = vec![0u8; 10_000];
    let (code, _) = write(a, &big);
    assert_eq!(code, 413, "oversize body");
    let long = "v".repeat(5000);
    let names: Vec<String> = (0..80).map(|i| format!("l{i}")).collect();
    let mut many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    many.push(("__name__", "many"));
    let cases = [
        (vec![("__name__", "bad"), ("0bad", "x")], "invalid label name"),
        (vec![("__name__", "long"), ("a", long.as_str())], "label value too long"),
        (many, "too many labels"),
    ];
    for (k, (labels, want)) in cases.into_iter().enumerate() {
        let t = 1000 * (k as i64 + 1);
        let body =
            encode(&[(vec![("__name__", "good_one")], vec![(t, 1.0)]), (labels, vec![(t, 1.0)])]);
        let (code, msg) = write(a, &body);
        assert_eq!(code, 400, "{msg}");
        assert!(msg.contains(want) && msg.contains("1 series rejected"), "{msg}");
    }
    let series = get_json(a, "/auspex/v1/series");
    let good: Vec<&Value> = series
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["labels"]["__name__"] == "good_one")
        .collect();
    assert_eq!(good.len(), 1, "the valid series of the rejected requests was ingested");
    // NaN, Inf, stale markers, out-of-order and duplicate series are accepted or dropped.
    let body = encode(&[
        (vec![("__name__", "odd")], vec![(5000, f64::NAN), (6000, f64::INFINITY), (4000, 1.0)]),
        (
            vec![("__name__", "odd")],
            vec![(7000, f64::from_bits(0x7ff0_0000_0000_0002)), (8000, 2.0)],
        ),
    ]);
    assert_eq!(write(a, &body).0, 204);
    let (_, text) = http_get(a, "/metrics").unwrap();
    assert_eq!(
        metric(&text, "auspex_samples_dropped_total{reason=\"out_of_order\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "auspex_samples_dropped_total{reason=\"stale_marker\"}"), 1.0);
    // Bad queries.
    let (code, body) = http_get(a, "/auspex/v1/signals?since=soon").unwrap();
    assert_eq!(code, 400, "{body}");
}

/// The series limit refuses new series visibly; existing ones keep flowing.
#[test]
fn series_limit_refuses_and_counts() {
    let data = temp_dir("limit");
    let server = start_server(
        &data,
        "[limits]\nmax_active_series = 2\n[metrics]\nanomaly_score_min = 0.0\nanomaly_score_max_series = 1\n",
    );
    let a = server.addr;
    let body = encode(&[
        (vec![("__name__", "s1")], vec![(1000, 1.0)]),
        (vec![("__name__", "s2")], vec![(1000, 1.0)]),
    ]);
    assert_eq!(write(a, &body).0, 204);
    let body = encode(&[
        (vec![("__name__", "s1")], vec![(2000, 1.0)]),
        (vec![("__name__", "s3")], vec![(2000, 1.0)]),
    ]);
    let (code, msg) = write(a, &body);
    assert_eq!(code, 400);
    assert!(msg.contains("limit of 2 active series"), "{msg}");
    let (_, text) = http_get(a, "/metrics").unwrap();
    assert_eq!(metric(&text, "auspex_series_refused_total"), 1.0);
    assert_eq!(metric(&text, "auspex_active_series"), 2.0);
    assert_eq!(metric(&text, "auspex_samples_ingested_total"), 3.0);
    // The anomaly-score gauge is bounded by metrics.anomaly_score_max_series.
    let mut t = 3000;
    for i in 0..100 {
        t += 1000;
        let v = if i == 99 { 500.0 } else { (i % 5) as f64 };
        let body = encode(&[
            (vec![("__name__", "s1")], vec![(t, v)]),
            (vec![("__name__", "s2")], vec![(t, v * 2.0)]),
        ]);
        assert_eq!(write(a, &body).0, 204);
    }
    let (_, text) = http_get(a, "/metrics").unwrap();
    let gauges: Vec<&str> =
        text.lines().filter(|l| l.starts_with("auspex_anomaly_score{")).collect();
    assert_eq!(gauges.len(), 1, "both series spiked; one gauge allowed: {gauges:?}");
}

struct Scraped {
    dir: PathBuf,
}

impl Scraped {
    fn set(&self, value: f64, noise: u64) {
        let v = value + (noise % 7) as f64 * 0.3;
        let text = format!("# TYPE e2e_gauge gauge\ne2e_gauge{{case=\"shift\"}} {v}\n");
        let tmp = self.dir.join("metrics.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.join("metrics")).unwrap();
    }
}

fn prometheus_metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics").map(|(_, b)| b).unwrap_or_default()
}

/// A real Prometheus scrapes a target and remote-writes to Auspex: the series arrive, an
/// injected level shift becomes a signal, and under shed load nothing Prometheus reports as
/// sent is lost.
#[test]
fn real_prometheus_remote_writes_to_auspex() {
    let prom_bin = find_binary("prometheus", &[], "apt-get install prometheus");
    let py = find_binary("python3", &[], "apt-get install python3");
    let data = temp_dir("e2e");
    let server = start_server(&data, "[series]\nsnapshot_interval = \"1s\"\n");
    // The scrape target: a file served by python's http.server, rewritten by the test.
    let target = Scraped { dir: temp_dir("target") };
    target.set(10.0, 0);
    let tport = free_port();
    let mut cmd = Command::new(py);
    cmd.args(["-m", "http.server", "--bind", "127.0.0.1", &tport.to_string()])
        .current_dir(&target.dir);
    let mut target_peer = Peer::spawn("target", cmd);
    let taddr: SocketAddr = ([127, 0, 0, 1], tport).into();
    target_peer.wait_http(taddr, "/metrics", Duration::from_secs(20));

    let pport = free_port();
    let paddr: SocketAddr = ([127, 0, 0, 1], pport).into();
    let pdir = temp_dir("prom");
    let config = format!(
        "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n\
         scrape_configs:\n  - job_name: e2e\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['127.0.0.1:{tport}']\n\
         remote_write:\n  - url: http://{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 200ms\n      min_backoff: 50ms\n      max_backoff: 500ms\n      retry_on_http_429: true\n",
        server.addr
    );
    std::fs::write(pdir.join("prometheus.yml"), config).unwrap();
    let mut cmd = Command::new(prom_bin);
    cmd.arg(format!("--config.file={}", pdir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", pdir.join("data").display()))
        .arg(format!("--web.listen-address={paddr}"));
    let mut prom = Peer::spawn("prometheus", cmd);
    prom.wait_http(paddr, "/-/ready", Duration::from_secs(60));

    // 1. The series arrive and warm up.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut k = 0u64;
    loop {
        k += 1;
        target.set(10.0, k);
        std::thread::sleep(Duration::from_millis(100));
        let series = get_json(server.addr, "/auspex/v1/series");
        let s = series
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["labels"]["__name__"] == "e2e_gauge")
            .cloned();
        if let Some(s) = s {
            assert_eq!(s["labels"]["job"], "e2e");
            if s["samples"].as_u64().unwrap_or(0) >= 80 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "series did not arrive: {}", prom.log());
    }
    // 2. A level shift becomes a signal within the documented time (scrape interval +
    //    batch_send_deadline, then durable before acknowledged): we allow 20 s on a busy CI.
    let shifted = Instant::now();
    let mut found = None;
    while shifted.elapsed() < Duration::from_secs(20) {
        k += 1;
        target.set(60.0, k);
        std::thread::sleep(Duration::from_millis(100));
        let sigs = get_json(server.addr, "/auspex/v1/signals");
        if let Some(s) =
            sigs.as_array().unwrap().iter().find(|s| s["labels"]["__name__"] == "e2e_gauge")
        {
            found = Some(s.clone());
            break;
        }
    }
    let sig = found.expect("the level shift became a signal");
    assert_eq!(sig["kind"], "anomaly");
    assert_eq!(sig["v"], 1);
    assert!(sig["explanation"]["value"].as_f64().unwrap() > 50.0, "{sig}");
    eprintln!("signal after {:?}", shifted.elapsed());

    // 3. Overload: Auspex sheds every write (503 + Retry-After) for 3 s; Prometheus retries.
    let mut r = agent()
        .post(&format!("http://{}/auspex/v1/admin/pause-ingest?seconds=3", server.addr))
        .send(&[][..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.body_mut().read_to_string().unwrap_or_default());
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        k += 1;
        target.set(60.0, k);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stop the target's changes and let Prometheus drain its queue.
    target_peer.kill_hard();
    // Prometheus counts every attempt in samples_total (retries included), so what it sent is
    // samples_total - samples_retried_total. Compare with what Auspex received when Prometheus
    // had nothing pending and sent nothing between two reads around Auspex's.
    let settle = Instant::now() + Duration::from_secs(60);
    let delivered = |pm: &str| {
        metric(pm, "prometheus_remote_storage_samples_total")
            - metric(pm, "prometheus_remote_storage_samples_retried_total")
    };
    let (sent, received, shed, failed, retried);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let pm1 = prometheus_metrics(paddr);
        let am = http_get(server.addr, "/metrics").unwrap().1;
        let pm2 = prometheus_metrics(paddr);
        let pending = metric(&pm2, "prometheus_remote_storage_samples_pending");
        if delivered(&pm1) == delivered(&pm2) && pending == 0.0 {
            sent = delivered(&pm2);
            received = metric(&am, "auspex_samples_received_total");
            shed = metric(&am, "auspex_remote_write_requests_total{code=\"503\"}");
            failed = metric(&pm2, "prometheus_remote_storage_samples_failed_total")
                + metric(&pm2, "prometheus_remote_storage_samples_dropped_total");
            retried = metric(&pm2, "prometheus_remote_storage_samples_retried_total");
            break;
        }
        assert!(Instant::now() < settle, "Prometheus never settled");
    }
    assert!(shed > 0.0, "Auspex shed load");
    assert!(retried > 0.0, "Prometheus retried");
    assert_eq!(failed, 0.0, "no sample failed");
    assert_eq!(sent, received, "every sample Prometheus sent arrived");
}

fn gauge(addr: SocketAddr, name: &str) -> f64 {
    metric(&http_get(addr, "/metrics").unwrap().1, name)
}

/// Artifact uploads stream, at most `mlflow.max_inflight_uploads` at once: one more waits its
/// turn with its body unread, then goes through; both are stored whole.
#[test]
fn artifact_uploads_beyond_the_limit_wait_their_turn() {
    use std::io::{Read, Write};
    let data = temp_dir("uploads");
    let server = start_server(&data, "[mlflow]\nmax_inflight_uploads = 1\n");
    let a = server.addr;
    let url = |name: &str| format!("/api/2.0/mlflow-artifacts/artifacts/0/run/{name}");
    let first: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut conn = std::net::TcpStream::connect(a).unwrap();
    write!(
        conn,
        "PUT {} HTTP/1.1\r\nHost: {a}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url("first.bin"),
        first.len()
    )
    .unwrap();
    conn.write_all(&first[..1000]).unwrap();
    let until = |what: &str, name: &str, want: f64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while gauge(a, name) != want {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until("the first upload never streamed", "auspex_artifact_uploads{state=\"streaming\"}", 1.0);
    let second = vec![7u8; 100_000];
    let put = {
        let (second, path) = (second.clone(), url("second.bin"));
        std::thread::spawn(move || {
            agent().put(&format!("http://{a}{path}")).send(&second[..]).unwrap().status().as_u16()
        })
    };
    until("the second upload never waited", "auspex_artifact_uploads{state=\"waiting\"}", 1.0);
    conn.write_all(&first[1000..]).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(put.join().unwrap(), 200, "the waiting upload went through");
    for (name, want) in [("first.bin", &first), ("second.bin", &second)] {
        let mut r = agent().get(&format!("http://{a}{}", url(name))).call().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let got = r.body_mut().with_config().limit(10 << 20).read_to_vec().unwrap();
        assert!(got == *want, "{name} stored whole");
    }
    assert_eq!(gauge(a, "auspex_artifact_uploads{state=\"waiting\"}"), 0.0);
    assert_eq!(gauge(a, "auspex_artifact_uploads{state=\"streaming\"}"), 0.0);
}

/// Sends `GET path` on `conn` (kept alive) and reads the answer's status line.
fn get_on(conn: &mut std::net::TcpStream, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    write!(conn, "GET {path} HTTP/1.1\r\nHost: auspex\r\n\r\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The answers here are small: read until the body's end (headers + Content-Length).
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:")?.trim().parse().ok()
                })
                .unwrap_or(0usize);
            if got.len() >= end + 4 + len {
                return Ok(text.lines().next().unwrap_or("").to_string());
            }
        }
    }
}

/// At most `limits.max_connections` connections are open at once: one more waits, unanswered,
/// until another closes. A kept-alive connection idle for `limits.connection_idle_timeout` is
/// closed and counted.
#[test]
fn connections_are_limited_and_idle_ones_closed() {
    use std::io::Read;
    use std::net::TcpStream;
    let data = temp_dir("conns");
    let server = start_server(&data, "[limits]\nmax_connections = 3\n");
    let a = server.addr;
    let idle_a = TcpStream::connect(a).unwrap();
    let idle_b = TcpStream::connect(a).unwrap();
    let mut third = TcpStream::connect(a).unwrap();
    assert_eq!(get_on(&mut third, "/health").unwrap(), "HTTP/1.1 200 OK", "the third fits");
    let mut fourth = TcpStream::connect(a).unwrap(); // the kernel's backlog takes it
    fourth.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let e = get_on(&mut fourth, "/health").unwrap_err();
    assert!(
        matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        "the fourth is not served while three are open: {e}"
    );
    drop(idle_a);
    fourth.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = [0u8; 64];
    let n = fourth.read(&mut rest).unwrap();
    assert!(
        String::from_utf8_lossy(&rest[..n]).starts_with("HTTP/1.1 200"),
        "served once one closed"
    );
    drop((idle_b, third, fourth));

    let data = temp_dir("conns-idle");
    let server = start_server(&data, "[limits]\nconnection_idle_timeout = \"1s\"\n");
    let mut kept = TcpStream::connect(server.addr).unwrap();
    assert_eq!(get_on(&mut kept, "/health").unwrap(), "HTTP/1.1 200 OK");
    kept.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(kept.read(&mut rest).unwrap(), 0, "closed by the server after idling");
    assert_eq!(gauge(server.addr, "auspex_http_connections_idle_closed_total"), 1.0);
}

/// One address holds at most `limits.max_connections_per_address` connections: one more is
/// answered 429 and closed at once (not left waiting), and counted; once one of its
/// connections closes, the address is served again.
#[test]
fn one_address_cannot_take_every_connection() {
    use std::io::Read;
    use std::net::TcpStream;
    let data = temp_dir("conns-per-address");
    let cfg = "[limits]\nmax_connections = 10\nmax_connections_per_address = 2\n";
    let server = start_server(&data, cfg);
    let a = server.addr;
    let idle = TcpStream::connect(a).unwrap();
    let mut second = TcpStream::connect(a).unwrap();
    assert_eq!(get_on(&mut second, "/health").unwrap(), "HTTP/1.1 200 OK");
    let mut third = TcpStream::connect(a).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = String::new();
    let _ = third.read_to_string(&mut got); // until the server closes it
    assert!(got.starts_with("HTTP/1.1 429"), "{got:?}");
    assert!(got.contains("limits.max_connections_per_address"), "{got:?}");
    // Once one of its connections closes (the server sees it a moment later), the address is
    // served again.
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        match http_get(a, "/metrics") {
            Ok((200, text)) => break text,
            other => assert!(Instant::now() < deadline, "never served again: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(metric(&metrics, "auspex_http_connections_over_address_limit_total") >= 1.0);
    drop(idle);
}

/// Reads from `conn` until the server closes it or `within` passes, sending one more byte of
/// `trickle` every 200 ms meanwhile. What was read, and whether the server closed.
fn trickle(conn: &mut std::net::TcpStream, trickle: &[u8], within: Duration) -> (String, bool) {
    use std::io::{Read, Write};
    conn.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let (mut got, mut buf, mut sent) = (Vec::new(), [0u8; 4096], 0);
    while start.elapsed() < within {
        match conn.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
        if sent < trickle.len() && conn.write_all(&trickle[sent..=sent]).is_ok() {
            sent += 1;
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// A client that trickles its headers is closed after `limits.header_read_timeout`; one that
/// trickles its body gets 408 (in MLflow's format on MLflow's routes) after
/// `limits.request_body_timeout`; a body that keeps to `limits.request_body_min_rate` is served.
#[test]
fn slow_clients_are_cut_off() {
    use std::io::Write;
    use std::net::TcpStream;
    let data = temp_dir("slow-clients");
    let server = start_server(
        &data,
        "[limits]\nheader_read_timeout = \"1s\"\nrequest_body_timeout = \"1s\"\n\
         request_body_min_rate = 1000\n",
    );
    let a = server.addr;
    let long = Duration::from_secs(20);

    let mut c = TcpStream::connect(a).unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    let (_, closed) = trickle(&mut c, &b"X-Slow: 1\r\n".repeat(100), long);
    assert!(closed, "a connection trickling its headers is closed");
    // Counted just after the socket closes: give the server's task a moment.
    let mut counted = gauge(a, "auspex_http_header_timeouts_total");
    for _ in 0..50 {
        if counted != 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        counted = gauge(a, "auspex_http_header_timeouts_total");
    }
    assert_eq!(counted, 1.0);

    for (path, expect) in [
        ("/auspex/v1/events", "request body too slow"),
        ("/api/2.0/mlflow/experiments/create", "\"error_code\":\"BAD_REQUEST\""),
        ("/api/2.0/mlflow-artifacts/artifacts/slow/file.bin", "\"error_code\":\"BAD_REQUEST\""),
    ] {
        let method = if path.contains("artifacts/") { "PUT" } else { "POST" };
        let mut c = TcpStream::connect(a).unwrap();
        write!(c, "{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n").unwrap();
        let (got, closed) = trickle(&mut c, &[b' '; 100], long);
        assert!(got.starts_with("HTTP/1.1 408"), "{path}: {got}");
        assert!(got.contains(expect), "{path}: {got}");
        assert!(closed, "{path}: closed after the 408");
    }
    assert_eq!(gauge(a, "auspex_http_slow_bodies_total"), 3.0);

    // 3,000 bytes, the second half 1.5 s after the first: the first half earned that time.
    let event =
        format!(r#"{{"kind":"deploy","service":"checkout","description":"{}"}}"#, "d".repeat(2950));
    let (head, tail) = event.as_bytes().split_at(event.len() / 2);
    let mut c = TcpStream::connect(a).unwrap();
    write!(
        c,
        "POST /auspex/v1/events HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        event.len()
    )
    .unwrap();
    c.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    c.write_all(tail).unwrap();
    let (got, _) = trickle(&mut c, b"", Duration::from_secs(2));
    assert!(got.starts_with("HTTP/1.1 2"), "a body at the minimum rate is served: {got}");
    assert_eq!(gauge(a, "auspex_http_slow_bodies_total"), 3.0);
}
