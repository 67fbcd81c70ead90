//! Seasonality: a small calendar probe that finds daily and weekly periods, and the binned
//! profiles that are allocated only once a period is confirmed.
//!
//! The probe keeps `(count, sum, sum of squares)` of the value (relative to the first value) for each hour of
//! the week (7 x 24 cells, f32). Once a day it asks two questions:
//! - daily: how much of the variance does the hour of day explain (R²)? The probe needs at
//!   least [`MIN_DAYS_DAILY`] days of data.
//! - weekly: how much more does the hour of the week explain than the hour of day? The probe
//!   needs at least [`MIN_DAYS_WEEKLY`] days.
//!
//! R² is corrected for the number of cells (adjusted R²), so noise does not look seasonal.

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// Milliseconds in a week.
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// Days of data before a daily period can be confirmed.
pub const MIN_DAYS_DAILY: i64 = 2;
/// Days of data before a weekly period can be confirmed (three of each weekday).
pub const MIN_DAYS_WEEKLY: i64 = 21;
/// Most bins of a daily profile.
pub const MAX_DAILY_BINS: usize = 288;
/// Most bins of a weekly profile.
pub const MAX_WEEKLY_BINS: usize = 336;

const DAILY_R2: f64 = 0.30;
const WEEKLY_GAIN: f64 = 0.15;

/// Hour of the week, 0..168, of a UTC timestamp (the week starts on Thursday 1970-01-01;
/// only consistency matters).
fn hour_of_week(ts: i64) -> usize {
    (ts.rem_euclid(WEEK_MS) / 3_600_000) as usize
}

/// The calendar probe (fixed size, no heap).
#[derive(Debug, Clone)]
pub struct Probe {
    n: [f32; 168],
    s: [f32; 168],
    q: [f32; 168],
    first_ts: i64,
}

impl Default for Probe {
    fn default() -> Self {
        Self { n: [0.0; 168], s: [0.0; 168], q: [0.0; 168], first_ts: i64::MIN }
    }
}

/// What the probe concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// No period found (yet).
    None,
    /// A daily period.
    Daily,
    /// A weekly period.
    Weekly,
}

impl Probe {
    /// The raw cells and the first timestamp (for snapshots).
    pub fn parts(&self) -> (&[f32; 168], &[f32; 168], &[f32; 168], i64) {
        (&self.n, &self.s, &self.q, self.first_ts)
    }

    /// Rebuilds a probe from [`Probe::parts`].
    pub fn from_parts(n: [f32; 168], s: [f32; 168], q: [f32; 168], first_ts: i64) -> Self {
        Self { n, s, q, first_ts }
    }

    /// Adds a de-levelled value `x` observed at `ts`.
    pub fn add(&mut self, ts: i64, x: f64) {
        if self.first_ts == i64::MIN {
            self.first_ts = ts;
        }
        let h = hour_of_week(ts);
        let x = x as f32;
        self.n[h] += 1.0;
        self.s[h] += x;
        self.q[h] += x * x;
    }

    /// Span of data seen, in days.
    pub fn days(&self, now: i64) -> i64 {
        if self.first_ts == i64::MIN {
            0
        } else {
            now.saturating_sub(self.first_ts).saturating_add(DAY_MS / 24) / DAY_MS
        }
    }

    /// Adjusted R² of a model with `k` groups: 1 - (SSW/(N-k)) / (SST/(N-1)).
    fn adj_r2(n: &[f64], s: &[f64], q: &[f64]) -> f64 {
        let (mut nt, mut st, mut qt, mut ssw, mut k) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..n.len() {
            if n[i] <= 0.0 {
                continue;
            }
            nt += n[i];
            st += s[i];
            qt += q[i];
            ssw += (q[i] - s[i] * s[i] / n[i]).max(0.0);
            k += 1.0;
        }
        if nt < k + 2.0 {
            return 0.0;
        }
        let sst = (qt - st * st / nt).max(0.0);
        if sst <= 1e-12 * (qt.abs() + 1e-300) || sst <= 0.0 {
            return 0.0;
        }
        1.0 - (ssw / (nt - k)) / (sst / (nt - 1.0))
    }

    fn collapse_daily(&self) -> ([f64; 24], [f64; 24], [f64; 24]) {
        let (mut n, mut s, mut q) = ([0.0; 24], [0.0; 24], [0.0; 24]);
        for h in 0..168 {
            n[h % 24] += f64::from(self.n[h]);
            s[h % 24] += f64::from(self.s[h]);
            q[h % 24] += f64::from(self.q[h]);
        }
        (n, s, q)
    }

    /// Whether the hour of day alone explains enough variance (a daily cycle).
    pub fn daily(&self, now: i64) -> bool {
        if self.days(now) < MIN_DAYS_DAILY {
            return false;
        }
        let (dn, ds, dq) = self.collapse_daily();
        dn.iter().all(|&c| c >= 2.0) && Self::adj_r2(&dn, &ds, &dq) > DAILY_R2
    }

    /// Tests for a period with the data so far (O(168); call about once a day).
    pub fn test(&self, now: i64) -> Period {
        let days = self.days(now);
        if days < MIN_DAYS_DAILY {
            return Period::None;
        }
        let (dn, ds, dq) = self.collapse_daily();
        // Every hour of the day must be covered at least twice.
        if dn.iter().any(|&c| c < 2.0) {
            return Period::None;
        }
        let r2_day = Self::adj_r2(&dn, &ds, &dq);
        if days >= MIN_DAYS_WEEKLY {
            let w = |a: &[f32; 168]| a.map(f64::from);
            let (wn, ws, wq) = (w(&self.n), w(&self.s), w(&self.q));
            if wn.iter().all(|&c| c >= 2.0) {
                let r2_week = Self::adj_r2(&wn, &ws, &wq);
                if r2_week - r2_day.max(0.0) > WEEKLY_GAIN && r2_week > DAILY_R2 {
                    return Period::Weekly;
                }
            }
        }
        if r2_day > DAILY_R2 { Period::Daily } else { Period::None }
    }

    /// The mean offset from the grand mean of the probe cell covering `ts` (hour of week for a
    /// weekly period, hour of day for a daily one), for seeding a profile.
    pub fn seed(&self, period: Period, ts: i64) -> f64 {
        let h = hour_of_week(ts);
        let tn: f64 = self.n.iter().map(|&x| f64::from(x)).sum();
        let tsum: f64 = self.s.iter().map(|&x| f64::from(x)).sum();
        let grand = if tn > 0.0 { tsum / tn } else { 0.0 };
        let cell = match period {
            Period::Weekly if self.n[h] > 0.0 => f64::from(self.s[h] / self.n[h]),
            _ => {
                let (mut n, mut s) = (0.0f64, 0.0f64);
                for d in 0..7 {
                    let c = d * 24 + h % 24;
                    n += f64::from(self.n[c]);
                    s += f64::from(self.s[c]);
                }
                if n > 0.0 { s / n } else { grand }
            }
        };
        // Offsets are relative to the grand mean: the level carries the rest.
        cell - grand
    }
}

/// A binned seasonal profile: for each phase bin, the expected offset from the level and the
/// typical absolute residual. Allocated once a period is confirmed.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Period length in milliseconds.
    pub period_ms: i64,
    /// Expected offset per bin.
    pub mean: Box<[f32]>,
    /// Mean absolute residual per bin.
    pub spread: Box<[f32]>,
    /// Updates per bin (saturating), to weight early learning.
    pub hits: Box<[u8]>,
}

impl Profile {
    /// A profile for `period` with at most `max_bins` bins and at most one bin per sample
    /// interval `dt_ms`, seeded from the probe.
    pub fn new(period: Period, dt_ms: f64, probe: &Probe) -> Self {
        let (period_ms, max_bins) = match period {
            Period::Weekly => (WEEK_MS, MAX_WEEKLY_BINS),
            _ => (DAY_MS, MAX_DAILY_BINS),
        };
        let by_rate = (period_ms as f64 / dt_ms.max(1.0)).round() as usize;
        let bins = by_rate.clamp(24, max_bins);
        let bin_ms = period_ms / bins as i64;
        let mean: Box<[f32]> =
            (0..bins).map(|b| probe.seed(period, b as i64 * bin_ms + bin_ms / 2) as f32).collect();
        Self {
            period_ms,
            mean,
            spread: vec![f32::NAN; bins].into_boxed_slice(),
            hits: vec![0; bins].into_boxed_slice(),
        }
    }

    /// Number of points in one period at interval `dt_ms`.
    pub fn period_points(&self, dt_ms: f64) -> usize {
        (self.period_ms as f64 / dt_ms.max(1.0)).round() as usize
    }

    /// The bin of a timestamp.
    pub fn bin(&self, ts: i64) -> usize {
        let b = (ts.rem_euclid(self.period_ms) as i128 * self.mean.len() as i128
            / self.period_ms as i128) as usize;
        b.min(self.mean.len() - 1)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.mean.len() * 9
    }
}
