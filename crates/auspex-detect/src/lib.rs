//! Streaming, per-series metric anomaly detection (capability M2). Pure: no IO, no clock.
//!
//! A [`Detector`] takes `(timestamp, value)` points one at a time and returns an [`Output`]
//! for each: an anomaly score in [0, 1] and an explanation (expected value, band, deviation,
//! since when anomalous). See `ARCHITECTURE.md` for the model; in short:
//!
//! 1. **Season.** A calendar probe (hour of week) confirms daily or weekly seasonality from
//!    the data; only then is a binned profile allocated (≤ 288 daily / ≤ 336 weekly bins, f32).
//! 2. **Level.** Three exponentially weighted levels of the de-seasonalised value (slow,
//!    medium, fast); the one with the lowest recent error is the forecast, so random walks,
//!    trends and stationary noise are all predicted well.
//! 3. **Surprise.** The residual over a robust, Huber-clipped scale gives a z-score; a short
//!    run of residuals gives a shift z-score. Both become a surprise in bits.
//! 4. **Calibration.** The surprise is compared with the series' own history of surprises,
//!    so a spiky series needs a bigger jump than a smooth one for the same score.
//! 5. **Novelty.** A surprise that repeats one just seen scores less, so one episode gives one
//!    strong score, not a burst. After an alarm-level score (5 bits), a hold-down lets the
//!    next points score only if they are more than twice as surprising (the hold halves in
//!    about 23 points).
//!
//! Every step is O(1) per point (the seasonality test is O(168) once per day), state is
//! bounded (see [`Detector::heap_bytes`]), and nothing looks ahead: the output for a point
//! depends only on the points before it and itself.

pub mod season;
pub mod snapshot;

pub use snapshot::SnapshotError;

use season::{DAY_MS, Period, Probe, Profile};

/// Detector settings. One configuration serves every series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// How readily `is_anomaly` is set, in (0, 1]; higher flags more. It moves the decision
    /// threshold and the band, never the score. Default 0.5.
    pub sensitivity: f64,
    /// Points before any score other than 0 is given. Default 60.
    pub warmup: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { sensitivity: 0.5, warmup: 60 }
    }
}

impl Config {
    /// The score at or above which a point is anomalous.
    ///
    /// The score is `q / (q + 10)` for a calibrated surprise of `q` bits. Sensitivity 0.5 asks
    /// for 5 bits (score 1/3, about the best global threshold on NAB's standard profile); each
    /// 0.25 of sensitivity halves or doubles the bits: 1.0 asks for 1.25 bits, 0.0 for 20.
    pub fn score_threshold(&self) -> f64 {
        let s = self.sensitivity.clamp(0.0, 1.0);
        let bits = 5.0 * 4f64.powf(1.0 - 2.0 * s);
        bits / (bits + 10.0)
    }

    /// Half-width of the normal band, in robust standard deviations.
    pub fn band_z(&self) -> f64 {
        let s = self.sensitivity.clamp(0.0, 1.0);
        // sensitivity 0.5 -> 4; 1.0 -> 2.5; 0.0 -> 5.5.
        5.5 - 3.0 * s
    }
}

/// The result for one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Output {
    /// Anomaly score in [0, 1]; always finite.
    pub score: f64,
    /// The value the model expected.
    pub expected: f64,
    /// Lower edge of the normal band.
    pub lower: f64,
    /// Upper edge of the normal band.
    pub upper: f64,
    /// Signed deviation from `expected` in robust standard deviations.
    pub deviation: f64,
    /// Whether this point is anomalous at the configured sensitivity.
    pub is_anomaly: bool,
    /// Start of the current anomalous run, if the point is in one.
    pub anomalous_since: Option<i64>,
}

const LEVEL_ALPHAS: [f64; 3] = [0.02, 0.15, 0.6];
const ERR_ALPHA: f64 = 0.05;
const SCALE_ALPHA: f64 = 0.005;
const SHIFT_ALPHA: f64 = 0.3;
const BURST_Z: f64 = 2.0;
const BURST_ALPHA: f64 = 0.1;
const BURST_LONG_ALPHA: f64 = 0.002;
const LONG_ALPHA: f64 = 0.001;
const DRIFT_DIV: f64 = 1.0;
const HUBER_K: f64 = 10.0;
const TAIL_ALPHA: f32 = 0.02;
const TAIL_LEVELS: [f64; 8] = [2.0, 4.0, 6.0, 8.0, 11.0, 14.0, 18.0, 24.0];
const PEAK_DECAY: f64 = 0.99;
const PEAK_WEIGHT: f64 = 0.5;
/// Hold-down: after a point scores at least this many bits (the default alarm level), the
/// following points must beat `HOLD_WEIGHT` × the decaying alarm to score at all.
const HOLD_BITS: f64 = 5.0;
const HOLD_WEIGHT: f64 = 2.0;
const HOLD_DECAY: f64 = 0.97;
const SEASON_ALPHA: f32 = 0.1;
const MAD_TO_SIGMA: f64 = 1.2533;

/// Streaming detector state for one series.
#[derive(Debug, Clone)]
pub struct Detector {
    cfg: Config,
    n: u32,
    last_ts: i64,
    dt: f64,
    step: f64,
    anchor: f64,
    last_y: f64,
    lv: [f64; 3],
    err: [f64; 3],
    scale: f64,
    shift: f64,
    long: f64,
    long_dev: f64,
    burst: f64,
    burst_long: f64,
    tail: [f32; TAIL_LEVELS.len()],
    peak: f64,
    hold: f64,
    next_test: i64,
    probe: Option<Box<Probe>>,
    profile: Option<Box<Profile>>,
    period: Period,
    daily_seen: bool,
    since: Option<i64>,
}

impl Default for Detector {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

/// Bits of surprise in seeing a rate `r` over about `1/BURST_ALPHA` points when the long-run
/// rate is `p` (binomial large deviations: n KL(r || p)).
fn burst_bits(r: f64, p: f64) -> f64 {
    if r <= p {
        return 0.0;
    }
    let r = r.min(0.999);
    let kl = r * (r / p).ln() + (1.0 - r) * ((1.0 - r) / (1.0 - p)).ln();
    kl / BURST_ALPHA / std::f64::consts::LN_2
}

fn surprise_bits(z: f64) -> f64 {
    // -log2 of a two-sided Laplace-like tail, gentle near 0 and linear in |z| in the tail.
    let a = z.abs();
    if a <= 1.0 { 0.0 } else { (a - 1.0) * std::f64::consts::LOG2_E }
}

impl Detector {
    /// A fresh detector.
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            n: 0,
            last_ts: i64::MIN,
            dt: 0.0,
            step: 0.0,
            anchor: 0.0,
            last_y: 0.0,
            lv: [0.0; 3],
            err: [0.0; 3],
            scale: 0.0,
            shift: 0.0,
            long: 0.0,
            long_dev: 0.0,
            burst: 0.0,
            burst_long: 0.05,
            tail: [0.0; TAIL_LEVELS.len()],
            peak: 0.0,
            hold: 0.0,
            next_test: i64::MIN,
            probe: None,
            profile: None,
            period: Period::None,
            daily_seen: false,
            since: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Finite points learned so far.
    pub fn points(&self) -> u32 {
        self.n
    }

    /// The seasonal period in use, in points at the current sample interval.
    pub fn period_points(&self) -> Option<usize> {
        self.profile.as_ref().map(|p| p.period_points(self.dt))
    }

    /// Every period confirmed so far, in points at the current sample interval, shortest
    /// first: e.g. `[288, 2016]` for 5-minute data with daily and weekly cycles.
    pub fn periods(&self) -> Vec<usize> {
        let pts = |ms: i64| (ms as f64 / self.dt.max(1.0)).round() as usize;
        let mut v = Vec::new();
        if self.daily_seen {
            v.push(pts(DAY_MS));
        }
        if self.period == Period::Weekly {
            v.push(pts(season::WEEK_MS));
        }
        v
    }

    /// Which period was confirmed.
    pub fn period(&self) -> Period {
        self.period
    }

    /// Heap bytes held by this detector (excluding `size_of::<Detector>()` itself).
    pub fn heap_bytes(&self) -> usize {
        self.probe.as_ref().map_or(0, |_| std::mem::size_of::<Probe>())
            + self.profile.as_ref().map_or(0, |p| std::mem::size_of::<Profile>() + p.heap_bytes())
    }

    #[doc(hidden)]
    pub fn debug_internals(&self) -> String {
        format!(
            "best={} scale={:.3} shift={:.2} tail={:?} peak={:.2} hold={:.2} period={:?}",
            self.best(),
            self.scale,
            self.shift,
            self.tail,
            self.peak,
            self.hold,
            self.period
        )
    }

    fn seasonal(&self, ts: i64) -> (f64, f64) {
        match &self.profile {
            Some(p) => {
                let b = p.bin(ts);
                (f64::from(p.mean[b]), f64::from(p.spread[b]))
            }
            None => (0.0, f64::NAN),
        }
    }

    fn best(&self) -> usize {
        let mut k = 0;
        for i in 1..3 {
            if self.err[i] < self.err[k] {
                k = i;
            }
        }
        k
    }

    fn scale_floor(&self) -> f64 {
        (self.long_dev * 0.01).max(self.step * 0.25).max(self.long.abs() * 1e-6).max(1e-9)
    }

    /// Scores one point and learns from it.
    ///
    /// Non-finite values (NaN, ±Inf) are treated as missing: they score 0 and are not learned.
    /// A timestamp earlier than one already seen is scored at the latest time seen (its
    /// seasonal phase is that of the latest point), and does not move time backwards.
    pub fn update(&mut self, ts: i64, value: f64) -> Output {
        let ts = if self.last_ts == i64::MIN { ts } else { ts.max(self.last_ts) };
        if !value.is_finite() {
            let (season, _) = self.seasonal(ts);
            let expected = self.lv[self.best()] + season;
            return Output {
                score: 0.0,
                expected,
                lower: expected,
                upper: expected,
                deviation: 0.0,
                is_anomaly: false,
                anomalous_since: self.since,
            };
        }
        if self.n == 0 {
            self.first(ts, value);
            return Output {
                score: 0.0,
                expected: value,
                lower: value,
                upper: value,
                deviation: 0.0,
                is_anomaly: false,
                anomalous_since: None,
            };
        }
        // Sampling interval.
        let gap = ts.saturating_sub(self.last_ts) as f64;
        if gap > 0.0 {
            self.dt = if self.dt <= 0.0 { gap } else { self.dt + 0.05 * (gap - self.dt) };
        }
        self.last_ts = ts;

        let (season, spread) = self.seasonal(ts);
        let y = value - season;
        let k = self.best();
        let pred = self.lv[k];
        let r = y - pred;
        let mut sc = self.scale.max(self.scale_floor());
        if spread.is_finite() && spread > 0.0 {
            // Blend in the per-bin spread so that quiet hours are judged by quiet standards.
            sc = (0.5 * sc + 0.5 * spread.max(self.scale_floor())).max(self.scale_floor());
        }
        let sigma = sc * MAD_TO_SIGMA;
        let z = r / sigma;
        self.shift += SHIFT_ALPHA * (z.clamp(-3.0 * HUBER_K, 3.0 * HUBER_K) - self.shift);

        let warm = self.n >= self.cfg.warmup;
        // A point is only as surprising as the least surprised of the three levels: a return
        // to the old level after a dip is expected by the slow level, the continuation of a
        // level shift by the fast one.
        let zmin = self.lv.iter().map(|l| ((y - l) / sigma).abs()).fold(z.abs(), f64::min);
        // Burst: how many recent points were moderately off, against the long-run rate.
        let hit = if zmin > BURST_Z { 1.0 } else { 0.0 };
        self.burst += BURST_ALPHA * (hit - self.burst);
        self.burst_long += BURST_LONG_ALPHA * (hit - self.burst_long);
        let burst = burst_bits(self.burst, self.burst_long.max(0.01));
        // Drift: the short-term level against the long-run range of the series.
        let zd = if self.long_dev > 0.0 {
            (self.lv[1] - self.long) / (self.long_dev * MAD_TO_SIGMA)
        } else {
            0.0
        };
        let drift = surprise_bits(zd / DRIFT_DIV);
        let raw = surprise_bits(zmin).max(surprise_bits(self.shift * 2.0)).max(burst).max(drift);
        let c = self.calibrated(raw);
        self.learn_tail(raw);
        let score = if warm {
            let q0 = (c - PEAK_WEIGHT * self.peak).max(0.0);
            self.peak = (self.peak * PEAK_DECAY).max(c);
            // Hold-down after an alarm: one episode raises one alarm, a bigger one a second.
            let q =
                if self.hold >= HOLD_BITS { (q0 - HOLD_WEIGHT * self.hold).max(0.0) } else { q0 };
            self.hold = (self.hold * HOLD_DECAY).max(q0);
            q / (q + 10.0)
        } else {
            0.0
        };

        let band = self.cfg.band_z() * sigma;
        let expected = pred + season;
        // Outside the band, and not explained by any of the levels either (after a spike has
        // pulled the fast level up, a normal point is explained by the slow one).
        let outside = r.abs() > band && zmin > self.cfg.band_z();
        // An episode starts with a point that scores above the threshold outside the band, and
        // lasts while the following points stay outside the band.
        let starts = warm && outside && score >= self.cfg.score_threshold();
        if warm && outside && (starts || self.since.is_some()) {
            self.since.get_or_insert(ts);
        } else {
            self.since = None;
        }
        let is_anomaly = self.since.is_some();

        self.learn(ts, value, y, r, sc);
        Output {
            score: if score.is_finite() { score.clamp(0.0, 1.0) } else { 0.0 },
            expected,
            lower: expected - band,
            upper: expected + band,
            deviation: if z.is_finite() { z } else { 0.0 },
            is_anomaly,
            anomalous_since: self.since,
        }
    }

    /// Surprise in bits, corrected by how often the series has produced that much surprise:
    /// `min(raw, -log2 P_hist(S >= raw))`, with the tail frequencies tracked at fixed levels.
    fn calibrated(&self, raw: f64) -> f64 {
        let mut c = raw;
        for (k, &lvl) in TAIL_LEVELS.iter().enumerate() {
            if raw < lvl {
                break;
            }
            let f = f64::from(self.tail[k]);
            if f > 0.0 {
                // Frequent at this level: surprise is at most what its frequency says, plus the
                // extra bits above the level.
                c = c.min(-f.log2() + (raw - lvl));
            }
        }
        c.max(0.0)
    }

    fn learn_tail(&mut self, raw: f64) {
        let a = (1.0 / self.n as f32).max(TAIL_ALPHA);
        for (k, &lvl) in TAIL_LEVELS.iter().enumerate() {
            let hit = if raw >= lvl { 1.0 } else { 0.0 };
            self.tail[k] += a * (hit - self.tail[k]);
        }
    }

    fn first(&mut self, ts: i64, value: f64) {
        self.n = 1;
        self.last_ts = ts;
        self.long = value;
        self.anchor = value;
        self.last_y = value;
        self.lv = [value; 3];
        self.next_test = ts.saturating_add(DAY_MS);
    }

    /// Learns from `value` (de-seasonalised: `y`, residual `r` at scale `sc`).
    fn learn(&mut self, ts: i64, value: f64, y: f64, r: f64, sc: f64) {
        self.n = self.n.saturating_add(1);
        let clip = HUBER_K * sc;
        // Scale: EW mean absolute residual, Huber-clipped so one spike cannot blow it up.
        let ra = r.abs().min(clip);
        let a = (1.0 / f64::from(self.n)).max(SCALE_ALPHA);
        self.scale += a * (ra - self.scale);
        // Predictor errors, then levels (fed a clipped value so spikes barely move them).
        let yc = self.lv[self.best()] + r.clamp(-clip, clip);
        for (i, ((lv, err), alpha)) in
            self.lv.iter_mut().zip(self.err.iter_mut()).zip(LEVEL_ALPHAS).enumerate()
        {
            let e = (y - *lv).abs().min(2.0 * clip);
            *err += ERR_ALPHA * (e - *err);
            // The fast level follows the raw value so a true level shift is adopted quickly.
            let target = if i == 2 { y } else { yc };
            *lv += alpha * (target - *lv);
        }
        let la = if self.n < 1000 { 1.0 / f64::from(self.n) } else { LONG_ALPHA };
        self.long += la * (y - self.long);
        self.long_dev += la * ((y - self.long).abs() - self.long_dev);
        // Typical size of a non-zero step: the resolution of the series.
        let d = (y - self.last_y).abs();
        if d > 0.0 {
            self.step = if self.step == 0.0 { d } else { self.step + 0.02 * (d - self.step) };
        }
        self.last_y = y;
        // Seasonal profile.
        if let Some(p) = self.profile.as_mut() {
            let b = p.bin(ts);
            let resid = (y - self.lv[0]) as f32; // offset the slow level did not explain
            let h = p.hits[b];
            let a = if h < 4 { 1.0 / (f32::from(h) + 2.0) } else { SEASON_ALPHA };
            p.mean[b] += a * resid.clamp(-(4.0 * sc) as f32, (4.0 * sc) as f32);
            let ar = (r.abs().min(clip)) as f32;
            p.spread[b] =
                if p.spread[b].is_nan() { ar } else { p.spread[b] + a * (ar - p.spread[b]) };
            p.hits[b] = h.saturating_add(1);
        }
        // Season probe: until weekly is confirmed.
        if self.period != Period::Weekly {
            let probe = self.probe.get_or_insert_with(Box::default);
            probe.add(ts, value - self.anchor);
            if ts >= self.next_test {
                self.next_test = ts.saturating_add(DAY_MS);
                let found = probe.test(ts);
                self.daily_seen |= found == Period::Daily || probe.daily(ts);
                if found != Period::None && found != self.period {
                    self.adopt(found, ts, value);
                }
            }
        }
    }

    fn adopt(&mut self, period: Period, ts: i64, value: f64) {
        let Some(probe) = self.probe.as_deref() else { return };
        let profile = Profile::new(period, self.dt, probe);
        self.profile = Some(Box::new(profile));
        self.period = period;
        self.daily_seen |= period == Period::Daily;
        if period == Period::Weekly {
            self.probe = None;
        }
        // The levels were tracking the seasonal swing; restart them de-seasonalised.
        let y = value - self.seasonal(ts).0;
        self.lv = [y; 3];
    }
}
