//! [`Signal`]: the one shape of "something looks wrong", whatever found it.
//!
//! Metric anomalies, forecast breaches, new log templates, drift and incoming alerts are all
//! signals; incidents are built from signals. The JSON form is versioned by
//! [`SIGNAL_SCHEMA_VERSION`] and is what every command and API prints.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::labels::{Labels, SeriesId, parse_hex64};
use crate::time::{TimestampMs, rfc3339};

/// Version of the signal JSON written by this build (the `"v"` field).
pub const SIGNAL_SCHEMA_VERSION: u32 = 1;

/// What raised a signal. New kinds are added at the end; names never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A metric series left its expected band (M2).
    Anomaly,
    /// A forecast will cross a threshold (M3).
    Forecast,
    /// A log template never seen before, or an unusual template rate (M4).
    LogTemplate,
    /// An anomalous log session or sequence (M4).
    LogSession,
    /// Data or prediction drift of a model (M13).
    Drift,
    /// An alert received from outside, e.g. Alertmanager (M1/M6).
    Alert,
    /// A deploy, config or flag change (M6/M7).
    Change,
}

impl SignalKind {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anomaly => "anomaly",
            Self::Forecast => "forecast",
            Self::LogTemplate => "log_template",
            Self::LogSession => "log_session",
            Self::Drift => "drift",
            Self::Alert => "alert",
            Self::Change => "change",
        }
    }
}

macro_rules! hex_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:016x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                parse_hex64(s).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                parse_hex64(&s).map($name).map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// The identity of *what* is wrong, stable across occurrences: signals with the same
    /// fingerprint are the same problem (used for dedup and flap suppression).
    /// xxHash64 (seed 0) of `kind 0xFF` followed by the series-id bytes (little-endian).
    Fingerprint
);
hex_id!(
    /// The identity of one occurrence: xxHash64 (seed 0) of the fingerprint and the start
    /// time, both little-endian. Deterministic, so replays produce the same ids.
    SignalId
);

hex_id!(
    /// The identity of an incident: the [`SignalId`] of the signal that opened it, so a replay
    /// of the same signals opens incidents with the same ids.
    IncidentId
);

impl Fingerprint {
    /// The fingerprint of a signal of `kind` on the series named by `labels`.
    pub fn of(kind: SignalKind, labels: &Labels) -> Self {
        Self::of_series(kind, labels.series_id())
    }

    /// The fingerprint of a signal of `kind` on series `id`.
    pub fn of_series(kind: SignalKind, id: SeriesId) -> Self {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        h.update(kind.as_str().as_bytes());
        h.update(&[0xff]);
        h.update(&id.0.to_le_bytes());
        Self(h.digest())
    }
}

impl SignalId {
    /// The id of the occurrence of `fp` that started at `start`.
    pub fn of(fp: Fingerprint, start: TimestampMs) -> Self {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&fp.0.to_le_bytes());
        b[8..].copy_from_slice(&start.to_le_bytes());
        Self(xxhash_rust::xxh64::xxh64(&b, 0))
    }
}

/// Why a signal was raised, in a form a person can read and a program can use.
/// Tagged by `"type"`; new variants are added, existing ones never change shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Explanation {
    /// A metric value against its expected band.
    Metric {
        /// The observed value.
        value: f64,
        /// What the model expected.
        expected: f64,
        /// Lower edge of the normal band.
        lower: f64,
        /// Upper edge of the normal band.
        upper: f64,
        /// Signed deviation in robust scale units (positive: above expected).
        deviation: f64,
        /// Since when the series has been anomalous.
        #[serde(with = "rfc3339")]
        anomalous_since: TimestampMs,
    },
    /// Free text, for sources that carry their own description (alerts, changes).
    Text {
        /// The description.
        message: String,
    },
}

/// One occurrence of "something looks wrong".
///
/// JSON form (version 1):
/// `{"v":1,"id":"<16 hex>","kind":"anomaly","labels":{..},"start":"<RFC 3339>",
///   "end":"<RFC 3339>"|null,"score":0.97,"explanation":{"type":..},"fingerprint":"<16 hex>"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Schema version of this JSON; always [`SIGNAL_SCHEMA_VERSION`] when written.
    #[serde(default = "schema_version")]
    pub v: u32,
    /// This occurrence.
    pub id: SignalId,
    /// What raised it.
    pub kind: SignalKind,
    /// The labels of the subject (for metrics, the series labels including `__name__`).
    pub labels: Labels,
    /// When it started.
    #[serde(with = "rfc3339")]
    pub start: TimestampMs,
    /// When it ended; `None` while still active.
    #[serde(with = "rfc3339::option")]
    pub end: Option<TimestampMs>,
    /// Severity in [0, 1].
    pub score: f64,
    /// Why.
    pub explanation: Explanation,
    /// What is wrong, stable across occurrences.
    pub fingerprint: Fingerprint,
}

fn schema_version() -> u32 {
    SIGNAL_SCHEMA_VERSION
}

impl Signal {
    /// A new, still active signal; the id and fingerprint are derived from the inputs.
    /// Non-finite scores become 0 and others are clamped into [0, 1].
    pub fn new(
        kind: SignalKind,
        labels: Labels,
        start: TimestampMs,
        score: f64,
        explanation: Explanation,
    ) -> Self {
        let fingerprint = Fingerprint::of(kind, &labels);
        let score = if score.is_finite() { score.clamp(0.0, 1.0) } else { 0.0 };
        Self {
            v: SIGNAL_SCHEMA_VERSION,
            id: SignalId::of(fingerprint, start),
            kind,
            labels,
            start,
            end: None,
            score,
            explanation,
            fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Signal {
        let labels = Labels::from_pairs([("__name__", "cpu"), ("host", "a")]).unwrap();
        Signal::new(
            SignalKind::Anomaly,
            labels,
            1_388_534_400_000,
            0.97,
            Explanation::Metric {
                value: 9.0,
                expected: 1.0,
                lower: 0.5,
                upper: 1.5,
                deviation: 12.0,
                anomalous_since: 1_388_534_400_000,
            },
        )
    }

    #[test]
    fn json_shape_is_pinned() {
        let s = sample();
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["v"], 1);
        assert_eq!(j["kind"], "anomaly");
        assert_eq!(j["start"], "2014-01-01T00:00:00.000Z");
        assert_eq!(j["end"], serde_json::Value::Null);
        assert_eq!(j["labels"]["__name__"], "cpu");
        assert_eq!(j["explanation"]["type"], "metric");
        assert_eq!(j["explanation"]["anomalous_since"], "2014-01-01T00:00:00.000Z");
        assert_eq!(j["id"].as_str().unwrap().len(), 16);
        assert_eq!(j["fingerprint"].as_str().unwrap().len(), 16);
        let back: Signal = serde_json::from_value(j).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn ids_are_deterministic_and_fingerprint_ignores_time() {
        let a = sample();
        let mut b = sample();
        assert_eq!(a.id, b.id);
        b = Signal::new(b.kind, b.labels, b.start + 1, b.score, b.explanation);
        assert_ne!(a.id, b.id);
        assert_eq!(a.fingerprint, b.fingerprint);
    }

    #[test]
    fn score_is_clamped() {
        let mut s = sample();
        s = Signal::new(s.kind, s.labels, s.start, f64::NAN, s.explanation);
        assert_eq!(s.score, 0.0);
        s = Signal::new(s.kind, s.labels, s.start, 7.0, s.explanation);
        assert_eq!(s.score, 1.0);
    }
}
