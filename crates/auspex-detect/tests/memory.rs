//! Heap per series, measured by a counting global allocator.

#![allow(clippy::unwrap_used)]

use auspex_detect::Detector;

#[global_allocator]
static A: auspex_core::alloc::Counting = auspex_core::alloc::Counting(std::alloc::System);

const LIMIT: isize = 16 * 1024;

#[test]
fn ten_thousand_detectors_fed_a_week_stay_within_the_limit() {
    let n = 10_000;
    let step = 300_000i64;
    let t0 = 1_704_067_200_000i64;
    let week = 7 * 288;
    let before = auspex_core::alloc::allocated();
    let mut dets: Vec<Detector> = Vec::with_capacity(n);
    let vec_bytes = auspex_core::alloc::allocated() - before;
    for s in 0..n {
        let mut d = Detector::default();
        for i in 0..week {
            let t = t0 + i as i64 * step;
            let phase = (i % 288) as f64 / 288.0;
            let v =
                100.0 + 20.0 * (std::f64::consts::TAU * phase).sin() + ((i * 7 + s) % 13) as f64;
            d.update(t, v);
        }
        dets.push(d);
    }
    let heap = auspex_core::alloc::allocated() - before - vec_bytes;
    let inline = (std::mem::size_of::<Detector>() * n) as isize;
    assert!(dets.iter().all(|d| d.periods() == vec![288]), "a daily cycle is confirmed");
    assert!(heap <= n as isize * LIMIT, "heap {heap} > {} x {LIMIT}", n);
    assert!(heap + inline <= n as isize * LIMIT, "heap+inline {} too big", heap + inline);
    // The detector's own account agrees with the allocator.
    let own: usize = dets.iter().map(Detector::heap_bytes).sum();
    assert!((own as isize - heap).abs() <= heap / 20, "own {own} vs counted {heap}");
}
