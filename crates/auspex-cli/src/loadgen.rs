//! `auspex bench remote-write`: a remote-write load generator for any receiver.
//!
//! - One sample per series per round; per series, timestamps start now and rise 1 s a round.
//! - Requests carry 500 samples (Prometheus's default `max_samples_per_send`).
//! - Request `k` of every round always goes over connection `k % C`, so each series' samples
//!   arrive in order (receivers drop or refuse out-of-order samples).
//! - Bodies are encoded by a producer thread ahead of the senders, outside their timed loop.
//! - Only a 2xx counts as accepted; 429 and 503 are retried after `Retry-After` and counted.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use crate::cli::{CmdResult, Failure, RemoteWriteArgs, say};

const PER_REQUEST: usize = 500;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn field_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    varint(buf, u64::from(tag << 3 | 2));
    varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// The encoded `labels` fields of one series' `TimeSeries`.
fn series_labels(i: usize) -> Vec<u8> {
    let pairs = [
        ("__name__".to_string(), format!("bench_metric_{}", i % 100)),
        ("instance".to_string(), format!("host-{}", i / 100)),
        ("job".to_string(), "auspex-bench".to_string()),
        ("series".to_string(), i.to_string()),
    ];
    let mut out = Vec::new();
    for (n, v) in pairs {
        let mut l = Vec::new();
        field_bytes(&mut l, 1, n.as_bytes());
        field_bytes(&mut l, 2, v.as_bytes());
        field_bytes(&mut out, 1, &l);
    }
    out
}

/// One request: series `from..to` at round `r`.
fn encode_chunk(labels: &[Vec<u8>], from: usize, to: usize, r: u64, t0: i64) -> Vec<u8> {
    let mut raw = Vec::with_capacity((to - from) * 96);
    let mut ts_buf = Vec::with_capacity(128);
    for (i, l) in labels.iter().enumerate().take(to).skip(from) {
        ts_buf.clear();
        ts_buf.extend_from_slice(l);
        let mut sample = Vec::with_capacity(20);
        let v =
            100.0 + 10.0 * ((r as f64 + i as f64) / 60.0).sin() + ((r * 7 + i as u64) % 13) as f64;
        sample.push(0x09);
        sample.extend_from_slice(&v.to_le_bytes());
        sample.push(0x10);
        varint(&mut sample, (t0 + r as i64 * 1000) as u64);
        field_bytes(&mut ts_buf, 2, &sample);
        field_bytes(&mut raw, 1, &ts_buf);
    }
    auspex_ingest::remote_write::compress(&raw)
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    retried: AtomicU64,
    errors: AtomicU64,
}

fn base_url(target: &str) -> String {
    // scheme://host:port of the target.
    let after = target.find("://").map_or(0, |i| i + 3);
    match target[after..].find('/') {
        Some(j) => target[..after + j].to_string(),
        None => target.to_string(),
    }
}

fn scrape_rss(agent: &ureq::Agent, base: &str) -> Option<f64> {
    let mut r = agent.get(&format!("{base}/metrics")).call().ok()?;
    let body = r.body_mut().read_to_string().ok()?;
    body.lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn vm_hwm_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn run(a: &RemoteWriteArgs) -> CmdResult {
    if a.series == 0
        || a.load.concurrency == 0
        || a.load.duration.is_nan()
        || a.load.duration <= 0.0
    {
        return Err(Failure::input(anyhow!(
            "bench remote-write: --series, --concurrency and --duration must be positive"
        )));
    }
    let labels: Arc<Vec<Vec<u8>>> = Arc::new((0..a.series).map(series_labels).collect());
    let chunks = a.series.div_ceil(PER_REQUEST);
    let t0 = auspex_server::http::now_ms();
    let conc = a.load.concurrency.min(chunks).max(1);
    let stop = Arc::new(AtomicBool::new(false));
    // Producer: bodies in (round, chunk) order, chunk k to connection k % conc.
    let mut txs = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    for _ in 0..conc {
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(8);
        txs.push(tx);
        sources.push(Box::new(move || rx.recv().ok()));
    }
    let producer = {
        let labels = labels.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut r = 0u64;
            'outer: loop {
                for k in 0..chunks {
                    let from = k * PER_REQUEST;
                    let to = ((k + 1) * PER_REQUEST).min(labels.len());
                    let body = encode_chunk(&labels, from, to, r, t0);
                    if stop.load(Relaxed) || txs[k % conc].send((body, to - from)).is_err() {
                        break 'outer;
                    }
                }
                r += 1;
            }
        })
    };
    // Pre-fill the queues before timing starts.
    std::thread::sleep(Duration::from_millis(300));
    let load = Load {
        name: "remote-write",
        unit: "samples",
        target: a.target.clone(),
        headers: vec![
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        duration: a.load.duration,
        target_pid: a.load.target_pid,
        json: a.load.json.clone(),
        describe: vec![("series", a.series.to_string()), ("concurrency", conc.to_string())],
    };
    let out = drive(&load, sources);
    stop.store(true, Relaxed);
    let _ = producer.join();
    out
}

/// Bodies for one connection: the next request body and how many items it carries.
pub(crate) type Source = Box<dyn FnMut() -> Option<(Vec<u8>, usize)> + Send>;

/// A load to drive: where, with which headers, for how long.
pub(crate) struct Load {
    /// Command name for the output lines (`remote-write: accepted=...`).
    pub name: &'static str,
    /// What the bodies carry (`samples`, `alerts`).
    pub unit: &'static str,
    pub target: String,
    pub headers: Vec<(&'static str, &'static str)>,
    pub duration: f64,
    pub target_pid: Option<u32>,
    pub json: Option<std::path::PathBuf>,
    /// Settings echoed in the output and the JSON.
    pub describe: Vec<(&'static str, String)>,
}

/// Posts the bodies of each source over its own connection until the duration is over: only
/// a 2xx counts as accepted; 429 and 503 are retried after `Retry-After`. Prints accepted
/// items/s, latency and the target's peak RSS; exits 1 when more than 0.1 % were rejected.
pub(crate) fn drive(load: &Load, sources: Vec<Source>) -> CmdResult {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(load.duration);
    let mut senders = Vec::new();
    for mut next in sources {
        let agent = agent.clone();
        let target = load.target.clone();
        let headers = load.headers.clone();
        let counters = counters.clone();
        senders.push(std::thread::spawn(move || {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let Some((body, n)) = next() else { break };
                loop {
                    let t = Instant::now();
                    let mut req = agent.post(&target);
                    for (k, v) in &headers {
                        req = req.header(*k, *v);
                    }
                    let res = req.send(&body[..]);
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    match res {
                        Ok(mut resp) => {
                            let code = resp.status().as_u16();
                            let _ = resp.body_mut().read_to_vec();
                            if (200..300).contains(&code) {
                                counters.accepted.fetch_add(n as u64, Relaxed);
                                lat.push(ms);
                                break;
                            } else if code == 429 || code == 503 {
                                counters.retried.fetch_add(1, Relaxed);
                                let wait = resp
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse::<f64>().ok())
                                    .unwrap_or(1.0);
                                std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.0, 10.0)));
                                if Instant::now() >= deadline {
                                    counters.rejected.fetch_add(n as u64, Relaxed);
                                    break;
                                }
                            } else {
                                counters.rejected.fetch_add(n as u64, Relaxed);
                                break;
                            }
                        }
                        Err(_) => {
                            counters.errors.fetch_add(1, Relaxed);
                            counters.rejected.fetch_add(n as u64, Relaxed);
                            break;
                        }
                    }
                }
            }
            lat
        }));
    }
    // RSS sampling by scraping, when no PID is given.
    let base = base_url(&load.target);
    let mut peak_scraped: f64 = 0.0;
    while Instant::now() < deadline {
        if load.target_pid.is_none()
            && let Some(b) = scrape_rss(&agent, &base)
        {
            peak_scraped = peak_scraped.max(b);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(500)));
        let done = counters.accepted.load(Relaxed);
        eprint!(
            "\r{}: {:.0}s accepted {done} {} ",
            load.name,
            start.elapsed().as_secs_f64(),
            load.unit
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let mut lat: Vec<f64> = Vec::new();
    for s in senders {
        lat.extend(s.join().unwrap_or_default());
    }
    let elapsed = start.elapsed().as_secs_f64();
    if load.target_pid.is_none()
        && let Some(b) = scrape_rss(&agent, &base)
    {
        peak_scraped = peak_scraped.max(b);
    }
    lat.sort_by(f64::total_cmp);
    let accepted = counters.accepted.load(Relaxed);
    let rejected = counters.rejected.load(Relaxed);
    let rate = accepted as f64 / elapsed.max(1e-9);
    let rss_mib = match load.target_pid {
        Some(pid) => vm_hwm_mib(pid).unwrap_or(0.0),
        None => peak_scraped / (1024.0 * 1024.0),
    };
    let (p50, p99) = (auspex_bench::percentile(&lat, 0.5), auspex_bench::percentile(&lat, 0.99));
    let (name, unit) = (load.name, load.unit);
    say(&format!(
        "{name}: accepted={rate:.0} {unit}/s rejected={rejected} p50_ms={p50:.3} p99_ms={p99:.3} target_peak_rss_mib={rss_mib:.1}"
    ))?;
    say(&format!("accepted_{unit}={accepted}"))?;
    say(&format!("retried_requests={}", counters.retried.load(Relaxed)))?;
    say(&format!("transport_errors={}", counters.errors.load(Relaxed)))?;
    say(&format!("elapsed_s={elapsed:.3}"))?;
    let described: Vec<String> = load.describe.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say(&described.join(" "))?;
    if let Some(p) = &load.json {
        let mut v = serde_json::json!({
            "bench": name, "target": load.target,
            format!("accepted_{unit}_per_s"): rate, format!("accepted_{unit}"): accepted,
            format!("rejected_{unit}"): rejected, "retried_requests": counters.retried.load(Relaxed),
            "transport_errors": counters.errors.load(Relaxed),
            "p50_ms": p50, "p99_ms": p99, "target_peak_rss_mib": rss_mib, "elapsed_s": elapsed,
        });
        for (k, val) in &load.describe {
            // Counts stay whole numbers in the JSON; other settings are strings.
            v[*k] = val
                .parse::<u64>()
                .map_or_else(|_| serde_json::json!(val), |x| serde_json::json!(x));
        }
        std::fs::write(p, serde_json::to_string_pretty(&v).unwrap_or_default() + "\n")
            .with_context(|| format!("cannot write --json {}", p.display()))?;
    }
    let total = accepted + rejected;
    if total > 0 && rejected as f64 > 0.001 * total as f64 {
        eprintln!("error: bench {name}: {rejected} of {total} {unit} rejected (more than 0.1%)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
