//! The Rust NAB scorer agrees with the independent `nab_score.py` to 4 decimals, on a
//! committed synthetic corpus whose golden numbers the script produced.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use auspex_bench::nab;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nab-mini")
}

#[test]
fn port_matches_golden_numbers_from_the_script() {
    let dir = fixture();
    let golden = std::fs::read_to_string(dir.join("golden.txt")).unwrap();
    let files = nab::load_results(&dir, &dir.join("results")).unwrap();
    assert_eq!(files.len(), 4);
    let mut checked = 0;
    for line in golden.lines().filter(|l| l.starts_with("profile=")) {
        let kv: std::collections::HashMap<&str, &str> =
            line.split_whitespace().filter_map(|f| f.split_once('=')).collect();
        let p = nab::PROFILES.iter().find(|p| p.name == kv["profile"]).unwrap();
        let s = nab::score(&files, p);
        // The printed line must be identical: score and raw rounded, threshold as repr.
        assert_eq!(s.line(), line, "profile {}", p.name);
        let want: f64 = kv["score"].parse().unwrap();
        assert!((s.score - want).abs() < 5e-5, "{} vs {want}", s.score);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn duplicate_and_backwards_timestamps_map_windows_like_the_script() {
    let dir = fixture();
    let files = nab::load_results(&dir, &dir.join("results")).unwrap();
    let dupes = files.iter().find(|f| f.rel == "catB/dupes.csv").unwrap();
    assert_eq!(dupes.n, 800);
    assert_eq!(dupes.spans, vec![(500, 520)]);
    let two = files.iter().find(|f| f.rel == "catA/two.csv").unwrap();
    assert_eq!(two.spans, vec![(300, 330), (800, 860)]);
}

#[test]
fn misaligned_results_are_refused() {
    let dir = fixture();
    let tmp = std::env::temp_dir().join(format!("nab-bad-{}", std::process::id()));
    for rel in ["catA/spiky.csv", "catA/two.csv", "catB/quiet.csv", "catB/dupes.csv"] {
        let src = dir.join("results").join(rel);
        let dst = tmp.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let mut text = std::fs::read_to_string(src).unwrap();
        if rel == "catB/quiet.csv" {
            // Drop the last row.
            let cut = text.trim_end().rfind('\n').unwrap();
            text.truncate(cut + 1);
        }
        std::fs::write(dst, text).unwrap();
    }
    let err = nab::load_results(&dir, &tmp).unwrap_err().to_string();
    assert!(err.contains("699 rows, but data file"), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
}
