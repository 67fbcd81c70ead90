//! Prometheus remote-write 1.0: `POST /api/v1/write` bodies.
//!
//! A body is a snappy *block* compressed `prometheus.WriteRequest` protobuf. [`decode`] checks
//! the sizes, decompresses, decodes, and validates every series. Valid series are returned and
//! invalid ones are dropped and counted, with the first one described (as Mimir does), so the
//! caller can ingest the good part and answer 400 for the rest.
//!
//! Samples: NaN values, ±Inf and Prometheus stale markers are kept in the series (the detector
//! treats them as missing); the caller decides. Series with no samples are ignored.

use auspex_core::Labels;
use prost::Message;

/// The protobuf messages (field numbers from Prometheus's `prompb/types.proto` and
/// `remote.proto`). Exemplars, histograms and metadata are accepted and ignored.
pub mod proto {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// Field 1.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Field 1: sorted by name.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Field 2.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Field 1.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Field 2.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        /// Field 1.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Field 2: milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// The bit pattern Prometheus uses to mark a series stale (a special NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True for a Prometheus stale marker.
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest compressed body, bytes.
    pub max_body_bytes: usize,
    /// Largest decompressed body, bytes.
    pub max_decoded_bytes: usize,
    /// Most labels on one series.
    pub max_labels: usize,
    /// Longest label name, bytes.
    pub max_name_len: usize,
    /// Longest label value, bytes.
    pub max_value_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 << 20,
            max_decoded_bytes: 64 << 20,
            max_labels: 64,
            max_name_len: 256,
            max_value_len: 2048,
        }
    }
}

/// The whole request was unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Body over [`Limits::max_body_bytes`] (or decoded size over the decoded limit).
    #[error("body too large: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size seen.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not valid snappy block data.
    #[error("bad snappy: {0} (remote-write bodies are snappy block-compressed)")]
    Snappy(String),
    /// Not a valid WriteRequest.
    #[error("bad protobuf: {0} (expected a prometheus.WriteRequest)")]
    Protobuf(String),
}

/// One valid series with its samples, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels, including `__name__`.
    pub labels: Labels,
    /// `(timestamp ms, value)` in request order.
    pub samples: Vec<(i64, f64)>,
}

/// The usable part of a request and what was dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Valid series.
    pub series: Vec<Series>,
    /// Number of series dropped as invalid.
    pub rejected: usize,
    /// Samples carried by the dropped series.
    pub rejected_samples: usize,
    /// What was wrong with the first dropped series, naming it.
    pub first_error: Option<String>,
}

/// Decodes and validates a remote-write body.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    if body.len() > limits.max_body_bytes {
        return Err(DecodeError::TooLarge { size: body.len(), limit: limits.max_body_bytes });
    }
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > limits.max_decoded_bytes {
        return Err(DecodeError::TooLarge { size: len, limit: limits.max_decoded_bytes });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    let req = proto::WriteRequest::decode(raw.as_slice())
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let mut out = Decoded::default();
    for ts in req.timeseries {
        if ts.samples.is_empty() {
            continue;
        }
        match validate(&ts, limits) {
            Ok(labels) => out.series.push(Series {
                labels,
                samples: ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
            }),
            Err(why) => {
                out.rejected += 1;
                out.rejected_samples += ts.samples.len();
                if out.first_error.is_none() {
                    out.first_error = Some(format!("{why} in series {}", describe(&ts.labels)));
                }
            }
        }
    }
    Ok(out)
}

fn describe(labels: &[proto::Label]) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().take(8).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let v: String = l.value.chars().take(64).collect();
        let n: String = l.name.chars().take(64).collect();
        s.push_str(&format!("{n}={v:?}"));
    }
    if labels.len() > 8 {
        s.push_str(", ...");
    }
    s.push('}');
    s
}

fn validate(ts: &proto::TimeSeries, limits: &Limits) -> Result<Labels, String> {
    if ts.labels.len() > limits.max_labels {
        return Err(format!("too many labels ({} > {})", ts.labels.len(), limits.max_labels));
    }
    for l in &ts.labels {
        if l.name.len() > limits.max_name_len {
            return Err(format!(
                "label name too long ({} > {} bytes)",
                l.name.len(),
                limits.max_name_len
            ));
        }
        if l.value.len() > limits.max_value_len {
            return Err(format!(
                "label value too long ({} > {} bytes) for {:?}",
                l.value.len(),
                limits.max_value_len,
                l.name
            ));
        }
    }
    let labels = Labels::from_pairs(ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
        .map_err(|e| e.to_string())?;
    if labels.metric_name().is_none() {
        return Err("missing metric name (__name__)".to_string());
    }
    Ok(labels)
}

/// A series to encode: label pairs and `(timestamp ms, value)` samples.
pub type RawSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// Encodes a request (for tests, fuzzing seeds and the load generator).
pub fn encode(series: &[RawSeries<'_>]) -> Vec<u8> {
    let req = proto::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| proto::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| proto::Label { name: n.to_string(), value: v.to_string() })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| proto::Sample { value, timestamp })
                    .collect(),
            })
            .collect(),
    };
    compress(&req.encode_to_vec())
}

/// Snappy block compression.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let body = encode(&[
            (vec![("__name__", "up"), ("job", "a")], vec![(1000, 1.0), (2000, 0.0)]),
            (vec![("__name__", "cpu")], vec![(1000, f64::from_bits(STALE_NAN_BITS))]),
        ]);
        let d = decode(&body, &Limits::default()).unwrap();
        assert_eq!(d.rejected, 0);
        assert_eq!(d.series.len(), 2);
        assert_eq!(d.series[0].labels.get("job"), Some("a"));
        assert_eq!(d.series[0].samples, vec![(1000, 1.0), (2000, 0.0)]);
        assert!(is_stale_marker(d.series[1].samples[0].1));
    }

    #[test]
    fn invalid_series_are_dropped_and_the_first_is_named() {
        let long = "x".repeat(3000);
        let body = encode(&[
            (vec![("__name__", "ok")], vec![(1, 1.0)]),
            (vec![("__name__", "bad"), ("0abc", "v")], vec![(1, 1.0), (2, 2.0)]),
            (vec![("__name__", "long"), ("a", long.as_str())], vec![(1, 1.0)]),
            (vec![("job", "noname")], vec![(1, 1.0)]),
        ]);
        let d = decode(&body, &Limits::default()).unwrap();
        assert_eq!(d.series.len(), 1);
        assert_eq!(d.rejected, 3);
        assert_eq!(d.rejected_samples, 4);
        let e = d.first_error.unwrap();
        assert!(e.contains("invalid label name \"0abc\"") && e.contains("__name__=\"bad\""), "{e}");
    }

    #[test]
    fn too_many_labels() {
        let names: Vec<String> = (0..70).map(|i| format!("l{i}")).collect();
        let mut labels: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        labels.push(("__name__", "m"));
        let d = decode(&encode(&[(labels, vec![(1, 1.0)])]), &Limits::default()).unwrap();
        assert_eq!(d.rejected, 1);
        assert!(d.first_error.unwrap().starts_with("too many labels (71 > 64)"));
    }

    #[test]
    fn whole_request_errors() {
        let l = Limits::default();
        assert!(matches!(decode(b"definitely not snappy", &l), Err(DecodeError::Snappy(_))));
        assert!(matches!(decode(&compress(b"\xff\xff\xff"), &l), Err(DecodeError::Protobuf(_))));
        let small = Limits { max_body_bytes: 10, ..l };
        assert!(matches!(
            decode(&encode(&[(vec![("__name__", "x")], vec![(1, 1.0)])]), &small),
            Err(DecodeError::TooLarge { .. })
        ));
        let small = Limits { max_decoded_bytes: 10, ..l };
        let body = encode(&[(vec![("__name__", "xxxxxxxxxxxxxxxx")], vec![(1, 1.0)])]);
        assert!(matches!(decode(&body, &small), Err(DecodeError::TooLarge { .. })));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode(&data, &Limits::default());
            let _ = decode(&compress(&data), &Limits::default());
        }
    }
}
