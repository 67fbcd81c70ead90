//! The Rust Loghub metrics agree with the independent `loghub_eval.py` to 4 decimals on a
//! committed 50-line-per-system fixture (golden numbers produced by the script).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use auspex_bench::loghub_run::read_templates;
use auspex_logs::loghub::evaluate;

#[test]
fn port_matches_the_script() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loghub-mini");
    let golden = std::fs::read_to_string(dir.join("golden.txt")).unwrap();
    let mut checked = 0;
    let mut sums = [0.0f64; 4];
    for line in golden.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[0].starts_with("average") {
            let avg: Vec<f64> = f[1..5].iter().map(|x| x.parse().unwrap()).collect();
            for (s, a) in sums.iter().zip(avg) {
                assert!((s / checked as f64 - a).abs() < 5e-5, "average {s} vs {a}");
            }
            continue;
        }
        let sys = f[0];
        let truth =
            read_templates(&dir.join(sys).join(format!("{sys}_2k.log_structured_corrected.csv")))
                .unwrap();
        let pred = read_templates(&dir.join("pred").join(format!("{sys}.csv"))).unwrap();
        let a = evaluate(&truth, &pred).unwrap();
        let mine = format!(
            "{:<12} {:>6} {:>6} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
            sys, a.lines, a.truth_templates, a.pred_templates, a.ga, a.pa, a.fga, a.fta
        );
        assert_eq!(mine, line, "{sys}");
        for (s, v) in sums.iter_mut().zip([a.ga, a.pa, a.fga, a.fta]) {
            *s += v;
        }
        checked += 1;
    }
    assert_eq!(checked, 3);
}
