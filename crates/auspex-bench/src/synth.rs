//! Deterministic synthetic series for benchmarks and tests.

/// SplitMix64: a tiny, well-known deterministic generator.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Start of the synthetic series: 2024-01-01T00:00:00Z (a Monday).
pub const T0: i64 = 1_704_067_200_000;
/// Five minutes in milliseconds.
pub const STEP_5M: i64 = 300_000;

/// A 5-minute series with a daily cycle, lower weekends, and Gaussian noise:
/// `(timestamp ms, value)` for `n` points.
pub fn seasonal(n: usize, seed: u64) -> Vec<(i64, f64)> {
    let mut rng = SplitMix(seed);
    (0..n)
        .map(|i| {
            let t = T0 + i as i64 * STEP_5M;
            (t, seasonal_value(t) + rng.normal())
        })
        .collect()
}

/// The noiseless value of [`seasonal`] at `t`: 100 on weekdays with a daily swing of ±20,
/// and 50 on weekends with a swing of ±5.
pub fn seasonal_value(t: i64) -> f64 {
    let day_ms = 86_400_000i64;
    let days = (t - T0).div_euclid(day_ms);
    let weekend = days.rem_euclid(7) >= 5; // T0 is a Monday
    let phase = (t - T0).rem_euclid(day_ms) as f64 / day_ms as f64;
    let swing = (std::f64::consts::TAU * phase).sin();
    if weekend { 50.0 + 5.0 * swing } else { 100.0 + 20.0 * swing }
}
