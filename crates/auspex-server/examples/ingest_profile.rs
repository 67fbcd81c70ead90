//! Development aid: time decode and ingest of remote-write bodies in-process.
//! `cargo run --release -p auspex-server --example ingest_profile`

use std::time::Instant;

use auspex_ingest::remote_write::{Limits, decode, encode};

fn main() {
    let series = 10_000;
    let names: Vec<(String, String, String)> = (0..series)
        .map(|i| (format!("bench_metric_{}", i % 100), format!("host-{}", i / 100), i.to_string()))
        .collect();
    let mut bodies = Vec::new();
    for r in 0..20i64 {
        for k in 0..series / 500 {
            let chunk: Vec<_> = (k * 500..(k + 1) * 500)
                .map(|i| {
                    let (n, h, s) = &names[i];
                    (
                        vec![
                            ("__name__", n.as_str()),
                            ("instance", h.as_str()),
                            ("job", "b"),
                            ("series", s.as_str()),
                        ],
                        vec![(1_700_000_000_000 + r * 1000, (i % 13) as f64)],
                    )
                })
                .collect();
            bodies.push(encode(&chunk));
        }
    }
    let limits = Limits::default();
    let t = Instant::now();
    let mut decoded = Vec::new();
    for b in &bodies {
        decoded.push(decode(b, &limits).unwrap_or_default());
    }
    let n = (bodies.len() * 500) as f64;
    println!("decode: {:.0} ns/sample", t.elapsed().as_nanos() as f64 / n);
    let e = auspex_server::engine::Engine::new(
        1_000_000,
        auspex_detect::Config::default(),
        Limits::default(),
    );
    let first = series / 500;
    let mut it = decoded.into_iter();
    for d in it.by_ref().take(first) {
        e.ingest(&d);
    }
    let t = Instant::now();
    for d in it {
        e.ingest(&d);
    }
    let steady = n - (first * 500) as f64;
    println!("ingest (steady state): {:.0} ns/sample", t.elapsed().as_nanos() as f64 / steady);
    let mut det = auspex_detect::Detector::default();
    let t = Instant::now();
    for i in 0..1_000_000i64 {
        det.update(i * 1000, (i % 13) as f64);
    }
    println!("detector alone (hot): {:.0} ns/point", t.elapsed().as_nanos() as f64 / 1e6);
}
