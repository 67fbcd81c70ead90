//! Property tests: no panic on any input, every score in [0, 1], outputs finite.

#![allow(clippy::unwrap_used)]

use auspex_detect::Detector;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e3f64..1e3,
        1 => prop::num::f64::ANY,
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => prop_oneof![Just(1e300), Just(-1e300), Just(f64::MIN_POSITIVE)],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn scores_in_unit_interval_and_never_panic(
        steps in prop::collection::vec((-1_000_000i64..100_000_000, value()), 1..400),
        start in -10_000_000_000_000i64..10_000_000_000_000,
    ) {
        let mut d = Detector::default();
        let mut t = start;
        for (dt, v) in steps {
            t = t.saturating_add(dt);
            let o = d.update(t, v);
            prop_assert!(o.score.is_finite() && (0.0..=1.0).contains(&o.score), "{:?}", o);
            prop_assert!(!o.deviation.is_nan());
        }
    }

    #[test]
    fn extreme_timestamps(ts in prop::collection::vec(any::<i64>(), 1..100)) {
        let mut d = Detector::default();
        for (i, t) in ts.into_iter().enumerate() {
            let o = d.update(t, i as f64);
            prop_assert!((0.0..=1.0).contains(&o.score));
        }
    }
}
