//! Behavioural tests of the streaming detector: each can fail for the reason it names.

#![allow(clippy::unwrap_used)]

use auspex_detect::{Config, Detector, Output};

const STEP: i64 = 300_000; // 5 minutes
const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z, a Monday
const DAY: i64 = 86_400_000;

/// SplitMix64-based standard normal noise, deterministic.
struct Rng(u64);
impl Rng {
    fn u(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn n(&mut self) -> f64 {
        let (u, v) = (self.u().max(1e-300), self.u());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Weekday 100 ± 20 daily swing; weekend 50 ± 5.
fn seasonal(t: i64) -> f64 {
    let days = (t - T0).div_euclid(DAY);
    let phase = (t - T0).rem_euclid(DAY) as f64 / DAY as f64;
    let swing = (std::f64::consts::TAU * phase).sin();
    if days.rem_euclid(7) >= 5 { 50.0 + 5.0 * swing } else { 100.0 + 20.0 * swing }
}

fn feed(d: &mut Detector, pts: impl IntoIterator<Item = (i64, f64)>) -> Vec<Output> {
    pts.into_iter().map(|(t, v)| d.update(t, v)).collect()
}

fn noise(n: usize, seed: u64, level: f64) -> Vec<(i64, f64)> {
    let mut r = Rng(seed);
    (0..n).map(|i| (T0 + i as i64 * STEP, level + r.n())).collect()
}

#[test]
fn no_lookahead_prefix_scores_do_not_depend_on_the_future() {
    let pts = noise(3000, 1, 10.0);
    let full: Vec<f64> =
        feed(&mut Detector::default(), pts.clone()).iter().map(|o| o.score).collect();
    let mut alt = pts[..1500].to_vec();
    alt.extend(noise(1500, 99, 500.0).into_iter().map(|(t, v)| (t + 1500 * STEP, v)));
    let other: Vec<f64> = feed(&mut Detector::default(), alt).iter().map(|o| o.score).collect();
    assert_eq!(full[..1500], other[..1500]);
    assert_ne!(full[1500..], other[1500..], "the continuation must matter after the prefix");
}

#[test]
fn deterministic() {
    let pts = noise(5000, 3, 0.0);
    let a = feed(&mut Detector::default(), pts.clone());
    let b = feed(&mut Detector::default(), pts);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn seasonality_daily_and_weekly_found_and_weekday_level_on_sunday_flagged() {
    let mut r = Rng(5);
    let mut d = Detector::default();
    let weeks4 = 4 * 7 * 288;
    for i in 0..weeks4 {
        let t = T0 + i as i64 * STEP;
        d.update(t, seasonal(t) + r.n());
    }
    assert_eq!(d.periods(), vec![288, 2016], "daily and weekly periods in points");
    // Continue normally up to Sunday noon of week 5 (day 34), and to Monday noon (day 35).
    let sunday_noon = T0 + 34 * DAY + DAY / 2;
    let monday_noon = T0 + 35 * DAY + DAY / 2;
    let mut t = T0 + weeks4 as i64 * STEP;
    while t < sunday_noon {
        let o = d.update(t, seasonal(t) + r.n());
        assert!(o.score < 0.5, "normal weekend data must not score high at {t}: {o:?}");
        t += STEP;
    }
    let weekday_level = 100.0 + 20.0 * (std::f64::consts::TAU * 0.5).sin();
    let mut sunday = d.clone();
    let o = sunday.update(sunday_noon, weekday_level);
    assert!(o.is_anomaly, "weekday level on a Sunday must be flagged: {o:?}");
    assert!(o.expected < 60.0, "expected a weekend level: {o:?}");
    while t < monday_noon {
        d.update(t, seasonal(t) + r.n());
        t += STEP;
    }
    let o = d.update(monday_noon, weekday_level);
    assert!(!o.is_anomaly, "weekday level on a Monday is normal: {o:?}");
    assert!(o.score < 0.2, "{o:?}");
}

#[test]
fn ten_sigma_spike_scores_higher_than_anything_before() {
    let mut d = Detector::default();
    let pts = noise(2000, 11, 50.0);
    let before = feed(&mut d, pts);
    let max_before = before[60..].iter().map(|o| o.score).fold(0.0, f64::max);
    let o = d.update(T0 + 2000 * STEP, 50.0 + 10.0);
    assert!(o.score > max_before, "spike {} vs max before {max_before}", o.score);
    assert!(o.is_anomaly && o.deviation > 5.0, "{o:?}");
}

#[test]
fn an_alarm_holds_down_a_repeat_but_not_a_bigger_spike() {
    let threshold = Config::default().score_threshold();
    let run = |second: f64| {
        let mut d = Detector::default();
        feed(&mut d, noise(2000, 15, 50.0));
        let first = d.update(T0 + 2000 * STEP, 50.0 + 12.0);
        feed(&mut d, noise(5, 16, 50.0).into_iter().map(|(t, v)| (t + 2001 * STEP, v)));
        let again = d.update(T0 + 2006 * STEP, 50.0 + second);
        (first.score, again.score)
    };
    // Without the hold-down, a second spike of 20 scores about 0.46, over the threshold.
    let (first, repeat) = run(20.0);
    assert!(first >= threshold, "the first spike is an alarm: {first}");
    assert!(repeat < threshold, "a somewhat bigger spike 6 points later is held down: {repeat}");
    let (_, bigger) = run(200.0);
    assert!(bigger >= threshold, "a far bigger spike still raises an alarm: {bigger}");
}

#[test]
fn level_shift_is_flagged_then_adopted() {
    let mut d = Detector::default();
    feed(&mut d, noise(1000, 12, 10.0));
    let after: Vec<Output> =
        feed(&mut d, noise(1000, 13, 30.0).into_iter().map(|(t, v)| (t + 1000 * STEP, v)));
    assert!(after[..5].iter().any(|o| o.is_anomaly), "the shift must be flagged");
    let since = after[0].anomalous_since;
    assert_eq!(since, Some(T0 + 1000 * STEP), "anomalous since the first shifted point");
    assert!(after[500..].iter().all(|o| !o.is_anomaly), "the new level becomes normal");
    assert!((after[999].expected - 30.0).abs() < 2.0, "{:?}", after[999]);
}

#[test]
fn nan_and_inf_are_missing_values() {
    let mut d = Detector::default();
    feed(&mut d, noise(500, 14, 5.0));
    let mut c = d.clone();
    for (k, v) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY].into_iter().enumerate() {
        let o = d.update(T0 + (500 + k as i64) * STEP, v);
        assert_eq!(o.score, 0.0);
        assert!(!o.is_anomaly);
        assert!(o.expected.is_finite());
    }
    // Not learned: the detector behaves as if they were absent.
    let a = d.update(T0 + 503 * STEP, 5.0);
    let b = c.update(T0 + 503 * STEP, 5.0);
    assert_eq!(a.expected, b.expected);
    assert_eq!(d.points(), c.points());
}

#[test]
fn gaps_and_irregular_timestamps_do_not_raise_alarms() {
    let mut r = Rng(15);
    let mut d = Detector::default();
    let mut t = T0;
    let mut flagged = 0;
    for i in 0..3000 {
        // Irregular: 1 to 9 minutes apart, with a two-day hole in the middle.
        t += 60_000 * (1 + (r.u() * 9.0) as i64);
        if i == 1500 {
            t += 2 * DAY;
        }
        let o = d.update(t, 20.0 + r.n());
        flagged += usize::from(o.is_anomaly);
        assert!(o.score.is_finite());
    }
    assert!(flagged <= 3, "{flagged} alarms on plain noise with a gap");
}

#[test]
fn constant_input_scores_zero_and_a_change_is_flagged() {
    let mut d = Detector::default();
    let out = feed(&mut d, (0..1000).map(|i| (T0 + i * STEP, 7.0)));
    assert!(out.iter().all(|o| o.score == 0.0 && !o.is_anomaly));
    let o = d.update(T0 + 1000 * STEP, 8.0);
    assert!(o.is_anomaly, "{o:?}");
}

#[test]
fn backwards_timestamps_are_scored_at_the_latest_time() {
    let mut d = Detector::default();
    feed(&mut d, noise(500, 16, 1.0));
    let o = d.update(T0, 1.0); // far in the past
    assert!(o.score.is_finite() && !o.is_anomaly);
}

#[test]
fn bands_contain_every_point_not_flagged_and_exclude_flagged_ones() {
    let mut r = Rng(17);
    let mut d = Detector::default();
    let mut flagged = 0;
    for i in 0..20_000i64 {
        let t = T0 + i * STEP;
        let mut v = seasonal(t) + r.n();
        if i % 997 == 0 {
            v += 15.0 * if r.u() < 0.5 { -1.0 } else { 1.0 };
        }
        let o = d.update(t, v);
        assert!(o.lower <= o.expected && o.expected <= o.upper, "{o:?}");
        if o.is_anomaly {
            flagged += 1;
            assert!(v < o.lower || v > o.upper, "flagged inside the band: {v} {o:?}");
        }
    }
    assert!(flagged >= 10, "the injected spikes must be flagged ({flagged})");
}

#[test]
fn sensitivity_moves_the_decision_not_the_score() {
    let pts = noise(3000, 18, 0.0);
    let mut pts2 = pts.clone();
    pts2[2000].1 += 6.0;
    let lo =
        feed(&mut Detector::new(Config { sensitivity: 0.1, ..Config::default() }), pts2.clone());
    let hi = feed(&mut Detector::new(Config { sensitivity: 0.9, ..Config::default() }), pts2);
    for (a, b) in lo.iter().zip(&hi) {
        assert_eq!(a.score, b.score);
    }
    let count = |v: &[Output]| v.iter().filter(|o| o.is_anomaly).count();
    assert!(count(&hi) > count(&lo), "{} vs {}", count(&hi), count(&lo));
}

#[test]
fn warm_up_is_at_most_sixty_points() {
    let mut d = Detector::default();
    let out = feed(&mut d, noise(61, 19, 0.0));
    assert!(out[..60].iter().all(|o| o.score == 0.0));
    let o = d.update(T0 + 61 * STEP, 100.0);
    assert!(o.score > 0.5 && o.is_anomaly, "{o:?}");
}
