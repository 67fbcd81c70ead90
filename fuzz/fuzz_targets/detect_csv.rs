//! The `detect` CSV pipeline never panics; on success it writes one row per data row and
//! every score is in [0, 1].
#![no_main]
use auspex_bench::series_csv::{Options, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let opts = Options { explain: true, ..Options::default() };
    if let Ok(stats) = run(data, &mut out, &opts, |_| {}) {
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.lines().count() as u64, stats.rows + 1);
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.rsplitn(7, ',').collect();
            let score: f64 = f[5].parse().expect("score is a number");
            assert!((0.0..=1.0).contains(&score), "{line}");
        }
    }
});
