//! Detector snapshots: a compact, versioned binary form of a [`Detector`]'s state, so a server
//! can persist models and resume them after a restart with identical behaviour.
//!
//! Format (little-endian): magic `b"AXD"`, version byte, then the fields in a fixed order.
//! A snapshot written by version N is readable by every later version (a new version adds a
//! new decoder branch); an unknown version is refused with [`SnapshotError`].

use crate::season::{Period, Probe, Profile};
use crate::{Config, Detector, TAIL_LEVELS};

const MAGIC: &[u8; 3] = b"AXD";
const VERSION: u8 = 2;

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a detector snapshot.
    #[error("not a detector snapshot (bad magic)")]
    Magic,
    /// Written by an unknown (newer) version.
    #[error("unsupported detector snapshot version {0} (this build reads versions 1 to {VERSION})")]
    Version(u8),
    /// Cut short or malformed.
    #[error("corrupt detector snapshot: {0}")]
    Corrupt(&'static str),
}

struct W(Vec<u8>);

impl W {
    fn f64(&mut self, x: f64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn f32(&mut self, x: f32) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn i64(&mut self, x: i64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn u32(&mut self, x: u32) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn u8(&mut self, x: u8) {
        self.0.push(x);
    }
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        if self.0.len() < N {
            return Err(SnapshotError::Corrupt("truncated"));
        }
        let (a, b) = self.0.split_at(N);
        self.0 = b;
        let mut out = [0u8; N];
        out.copy_from_slice(a);
        Ok(out)
    }
    fn f64(&mut self) -> Result<f64, SnapshotError> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    fn f32(&mut self) -> Result<f32, SnapshotError> {
        Ok(f32::from_le_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take::<1>()?[0])
    }
}

impl Detector {
    /// The detector's state as bytes (see the module docs). About 200 bytes plus the seasonal
    /// probe (2 KiB) and profile (9 bytes per bin) when present.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(256));
        w.0.extend_from_slice(MAGIC);
        w.u8(VERSION);
        w.u32(self.n);
        w.i64(self.last_ts);
        for x in [self.dt, self.step, self.anchor, self.last_y] {
            w.f64(x);
        }
        for x in self.lv.iter().chain(&self.err) {
            w.f64(*x);
        }
        for x in [self.scale, self.shift, self.long, self.long_dev, self.burst, self.burst_long] {
            w.f64(x);
        }
        for x in self.tail {
            w.f32(x);
        }
        w.f64(self.peak);
        w.f64(self.hold);
        w.i64(self.next_test);
        w.u8(match self.period {
            Period::None => 0,
            Period::Daily => 1,
            Period::Weekly => 2,
        });
        w.u8(u8::from(self.daily_seen));
        match self.since {
            Some(t) => {
                w.u8(1);
                w.i64(t);
            }
            None => w.u8(0),
        }
        match &self.probe {
            Some(p) => {
                w.u8(1);
                let (n, s, q, first) = p.parts();
                for a in [n, s, q] {
                    for x in a {
                        w.f32(*x);
                    }
                }
                w.i64(first);
            }
            None => w.u8(0),
        }
        match &self.profile {
            Some(p) => {
                w.u8(1);
                w.i64(p.period_ms);
                w.u32(p.mean.len() as u32);
                for x in p.mean.iter().chain(p.spread.iter()) {
                    w.f32(*x);
                }
                w.0.extend_from_slice(&p.hits);
            }
            None => w.u8(0),
        }
        w.0
    }

    /// Rebuilds a detector from [`Detector::snapshot`] bytes, with configuration `cfg` (the
    /// configuration is not part of the snapshot, so a changed sensitivity applies at once).
    pub fn restore(cfg: Config, bytes: &[u8]) -> Result<Detector, SnapshotError> {
        if bytes.len() < 4 || &bytes[..3] != MAGIC {
            return Err(SnapshotError::Magic);
        }
        let version = bytes[3];
        if version == 0 || version > VERSION {
            return Err(SnapshotError::Version(version));
        }
        let mut r = R(&bytes[4..]);
        let mut d = Detector::new(cfg);
        d.n = r.u32()?;
        d.last_ts = r.i64()?;
        d.dt = r.f64()?;
        d.step = r.f64()?;
        d.anchor = r.f64()?;
        d.last_y = r.f64()?;
        for i in 0..3 {
            d.lv[i] = r.f64()?;
        }
        for i in 0..3 {
            d.err[i] = r.f64()?;
        }
        d.scale = r.f64()?;
        d.shift = r.f64()?;
        d.long = r.f64()?;
        d.long_dev = r.f64()?;
        d.burst = r.f64()?;
        d.burst_long = r.f64()?;
        for i in 0..TAIL_LEVELS.len() {
            d.tail[i] = r.f32()?;
        }
        d.peak = r.f64()?;
        // Version 1 had no hold-down state: it starts released.
        d.hold = if version >= 2 { r.f64()? } else { 0.0 };
        d.next_test = r.i64()?;
        d.period = match r.u8()? {
            0 => Period::None,
            1 => Period::Daily,
            2 => Period::Weekly,
            _ => return Err(SnapshotError::Corrupt("bad period")),
        };
        d.daily_seen = r.u8()? != 0;
        d.since = match r.u8()? {
            0 => None,
            _ => Some(r.i64()?),
        };
        if r.u8()? != 0 {
            let mut a = [[0f32; 168]; 3];
            for arr in &mut a {
                for x in arr.iter_mut() {
                    *x = r.f32()?;
                }
            }
            let first = r.i64()?;
            d.probe = Some(Box::new(Probe::from_parts(a[0], a[1], a[2], first)));
        }
        if r.u8()? != 0 {
            let period_ms = r.i64()?;
            let bins = r.u32()? as usize;
            if bins == 0 || bins > crate::season::MAX_WEEKLY_BINS || period_ms <= 0 {
                return Err(SnapshotError::Corrupt("bad profile"));
            }
            let mut mean = vec![0f32; bins];
            let mut spread = vec![0f32; bins];
            for x in mean.iter_mut().chain(spread.iter_mut()) {
                *x = r.f32()?;
            }
            let mut hits = vec![0u8; bins];
            for h in &mut hits {
                *h = r.u8()?;
            }
            d.profile = Some(Box::new(Profile {
                period_ms,
                mean: mean.into(),
                spread: spread.into(),
                hits: hits.into(),
            }));
        }
        if !r.0.is_empty() {
            return Err(SnapshotError::Corrupt("trailing bytes"));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Detector, from: usize, to: usize) -> Vec<crate::Output> {
        (from..to)
            .map(|i| {
                let t = 1_704_067_200_000 + i as i64 * 300_000;
                let phase = (i % 288) as f64 / 288.0;
                let v =
                    50.0 + 10.0 * (std::f64::consts::TAU * phase).sin() + ((i * 37) % 11) as f64;
                d.update(t, if i == 7000 { 500.0 } else { v })
            })
            .collect()
    }

    #[test]
    fn restored_detector_continues_identically() {
        for cut in [0, 1, 30, 700, 3 * 2016, 4 * 2016 + 5] {
            let mut a = Detector::default();
            feed(&mut a, 0, cut);
            let bytes = a.snapshot();
            let mut b = Detector::restore(Config::default(), &bytes).unwrap();
            assert_eq!(b.snapshot(), bytes, "round trip at {cut}");
            let oa = feed(&mut a, cut, cut + 3000);
            let ob = feed(&mut b, cut, cut + 3000);
            assert_eq!(oa, ob, "outputs after restoring at {cut}");
        }
    }

    #[test]
    fn version_1_snapshots_still_restore() {
        let mut a = Detector::default();
        feed(&mut a, 0, 5000);
        let v2 = a.snapshot();
        // Version 1 is version 2 without the 8-byte hold after the peak.
        let at = 4 + 4 + 8 + 4 * 8 + 6 * 8 + 6 * 8 + TAIL_LEVELS.len() * 4 + 8;
        let mut v1 = v2[..at].to_vec();
        v1.extend_from_slice(&v2[at + 8..]);
        v1[3] = 1;
        let b = Detector::restore(Config::default(), &v1).unwrap();
        assert_eq!(b.hold, 0.0);
        assert_eq!(b.points(), a.points());
        assert_eq!(b.snapshot().len(), v2.len());
    }

    #[test]
    fn bad_snapshots_are_refused_not_panicked() {
        let mut a = Detector::default();
        feed(&mut a, 0, 5000);
        let bytes = a.snapshot();
        assert_eq!(Detector::restore(Config::default(), b"xx").unwrap_err(), SnapshotError::Magic);
        let mut v = bytes.clone();
        v[3] = 99;
        assert_eq!(
            Detector::restore(Config::default(), &v).unwrap_err(),
            SnapshotError::Version(99)
        );
        for cut in (0..bytes.len()).step_by(97) {
            assert!(Detector::restore(Config::default(), &bytes[..cut]).is_err());
        }
        let mut v = bytes.clone();
        v.push(0);
        assert!(Detector::restore(Config::default(), &v).is_err());
    }
}
