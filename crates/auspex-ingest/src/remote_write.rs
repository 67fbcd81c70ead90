//! Prometheus remote-write 1.0: `POST /api/v1/write` bodies.
//!
//! A body is a snappy *block* compressed `prometheus.WriteRequest` protobuf. The messages are
//! declared with prost (used to encode, and by the tests to cross-check); [`decode`] parses the
//! wire format itself, borrowing label bytes from the buffer, because per-label allocation was
//! the largest cost of ingestion. [`decode`] checks the sizes, decompresses and parses. Series are validated one by one with [`validate`] the
//! first time they are seen and identified with [`series_id`] (no allocation) every time, so a
//! caller can ingest the valid part of a request, drop the invalid series and name the first
//! one in a 400 reply (as Mimir does).
//!
//! Samples: NaN values, ±Inf and Prometheus stale markers are kept in the series (the detector
//! treats them as missing); the caller decides. Series with no samples are ignored.

use auspex_core::{Labels, SeriesId};
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

/// A decoded request: the decompressed buffer and, for every series, the byte ranges of its
/// labels and its samples. Parsing borrows label bytes from the buffer instead of allocating
/// per label or per series, which is what makes ingestion cheap.
#[derive(Debug, Clone, Default)]
pub struct Request {
    buf: Vec<u8>,
    /// `(name_start, name_end, value_start, value_end)` offsets into `buf`.
    labels: Vec<[u32; 4]>,
    samples: Vec<(i64, f64)>,
    /// `(labels range, samples range)` per series with at least one sample.
    series: Vec<([u32; 2], [u32; 2])>,
}

/// One series of a [`Request`].
#[derive(Debug, Clone, Copy)]
pub struct SeriesRef<'a> {
    req: &'a Request,
    labels: [u32; 2],
    samples: [u32; 2],
}

impl<'a> SeriesRef<'a> {
    /// Label pairs as sent (normally sorted by name), as raw bytes.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone + 'a {
        let req = self.req;
        req.labels[self.labels[0] as usize..self.labels[1] as usize].iter().map(move |l| {
            (&req.buf[l[0] as usize..l[1] as usize], &req.buf[l[2] as usize..l[3] as usize])
        })
    }

    /// `(timestamp ms, value)` in request order.
    pub fn samples(&self) -> &'a [(i64, f64)] {
        &self.req.samples[self.samples[0] as usize..self.samples[1] as usize]
    }

    /// The series id: the same as `validate(..)?.series_id()` for valid labels.
    pub fn id(&self) -> SeriesId {
        let sorted = self.labels().zip(self.labels().skip(1)).all(|(a, b)| a.0 <= b.0);
        if sorted {
            SeriesId::of_sorted(self.labels())
        } else {
            let mut v: Vec<(&[u8], &[u8])> = self.labels().collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            SeriesId::of_sorted(v)
        }
    }

    /// Validates the labels (see [`validate`]).
    pub fn validate(&self, limits: &Limits) -> Result<Labels, String> {
        validate(self.labels(), limits)
    }
}

impl Request {
    /// The series with at least one sample, in request order.
    pub fn series(&self) -> impl ExactSizeIterator<Item = SeriesRef<'_>> {
        self.series.iter().map(move |&(labels, samples)| SeriesRef { req: self, labels, samples })
    }

    /// Number of series with samples.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series has samples.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Total samples.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }
}

/// Decodes a remote-write body (size limits, snappy, protobuf). Label validation is per
/// series: see [`validate`].
pub fn decode(body: &[u8], limits: &Limits) -> Result<Request, DecodeError> {
    if body.len() > limits.max_body_bytes {
        return Err(DecodeError::TooLarge { size: body.len(), limit: limits.max_body_bytes });
    }
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > limits.max_decoded_bytes {
        return Err(DecodeError::TooLarge { size: len, limit: limits.max_decoded_bytes });
    }
    let buf = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    let mut req =
        Request { buf: Vec::new(), labels: Vec::new(), samples: Vec::new(), series: Vec::new() };
    parse_write_request(&buf, &mut req).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    req.buf = buf;
    Ok(req)
}

/// A protobuf parsing problem.
#[derive(Debug)]
struct Bad(&'static str);

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl Cur<'_> {
    fn done(&self) -> bool {
        self.pos >= self.end
    }

    fn varint(&mut self) -> Result<u64, Bad> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            if self.pos >= self.end {
                return Err(Bad("truncated varint"));
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Bad("varint too long"))
    }

    fn fixed64(&mut self) -> Result<u64, Bad> {
        if self.end - self.pos < 8 {
            return Err(Bad("truncated fixed64"));
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        Ok(u64::from_le_bytes(b))
    }

    /// A length-delimited field: returns its `[start, end)` and moves past it.
    fn len_delimited(&mut self) -> Result<(usize, usize), Bad> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| Bad("length overflow"))?;
        if n > self.end - self.pos {
            return Err(Bad("length past the end of the message"));
        }
        let start = self.pos;
        self.pos += n;
        Ok((start, self.pos))
    }

    fn skip(&mut self, wire: u64) -> Result<(), Bad> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.fixed64().map(|_| ()),
            2 => self.len_delimited().map(|_| ()),
            5 => {
                if self.end - self.pos < 4 {
                    return Err(Bad("truncated fixed32"));
                }
                self.pos += 4;
                Ok(())
            }
            _ => Err(Bad("unsupported wire type")),
        }
    }

    fn key(&mut self) -> Result<(u64, u64), Bad> {
        let k = self.varint()?;
        if k >> 3 == 0 {
            return Err(Bad("field number 0"));
        }
        Ok((k >> 3, k & 7))
    }
}

fn offset(x: usize) -> Result<u32, Bad> {
    u32::try_from(x).map_err(|_| Bad("message too large"))
}

fn parse_write_request(buf: &[u8], req: &mut Request) -> Result<(), Bad> {
    let mut c = Cur { buf, pos: 0, end: buf.len() };
    while !c.done() {
        match c.key()? {
            (1, 2) => {
                let (s, e) = c.len_delimited()?;
                parse_timeseries(buf, s, e, req)?;
            }
            (1, _) => return Err(Bad("timeseries must be length-delimited")),
            (_, w) => c.skip(w)?,
        }
    }
    Ok(())
}

fn parse_timeseries(buf: &[u8], start: usize, end: usize, req: &mut Request) -> Result<(), Bad> {
    let l0 = req.labels.len();
    let s0 = req.samples.len();
    let mut c = Cur { buf, pos: start, end };
    while !c.done() {
        match c.key()? {
            (1, 2) => {
                let (s, e) = c.len_delimited()?;
                let mut lc = Cur { buf, pos: s, end: e };
                let (mut name, mut value) = ((s, s), (s, s));
                while !lc.done() {
                    match lc.key()? {
                        (1, 2) => name = lc.len_delimited()?,
                        (2, 2) => value = lc.len_delimited()?,
                        (1 | 2, _) => return Err(Bad("label fields must be length-delimited")),
                        (_, w) => lc.skip(w)?,
                    }
                }
                req.labels.push([
                    offset(name.0)?,
                    offset(name.1)?,
                    offset(value.0)?,
                    offset(value.1)?,
                ]);
            }
            (2, 2) => {
                let (s, e) = c.len_delimited()?;
                let mut sc = Cur { buf, pos: s, end: e };
                let (mut value, mut ts) = (0.0f64, 0i64);
                while !sc.done() {
                    match sc.key()? {
                        (1, 1) => value = f64::from_bits(sc.fixed64()?),
                        (2, 0) => ts = sc.varint()? as i64,
                        (1 | 2, _) => return Err(Bad("bad sample field type")),
                        (_, w) => sc.skip(w)?,
                    }
                }
                req.samples.push((ts, value));
            }
            (1 | 2, _) => return Err(Bad("labels and samples must be length-delimited")),
            (_, w) => c.skip(w)?,
        }
    }
    if req.samples.len() > s0 {
        req.series.push((
            [offset(l0)?, offset(req.labels.len())?],
            [offset(s0)?, offset(req.samples.len())?],
        ));
    } else {
        req.labels.truncate(l0);
    }
    Ok(())
}

/// Describes a series for error messages: `{__name__="x", job="y"}`, truncated.
pub fn describe<'a>(labels: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>) -> String {
    let total = labels.len();
    let mut s = String::from("{");
    for (i, (n, v)) in labels.take(8).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let n: String = String::from_utf8_lossy(n).chars().take(64).collect();
        let v: String = String::from_utf8_lossy(v).chars().take(64).collect();
        s.push_str(&format!("{n}={v:?}"));
    }
    if total > 8 {
        s.push_str(", ...");
    }
    s.push('}');
    s
}

/// Validates a series' labels against the limits and Prometheus rules and builds [`Labels`].
/// The error names the problem and the series.
pub fn validate<'a, I>(labels: I, limits: &Limits) -> Result<Labels, String>
where
    I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    validate_inner(labels.clone(), limits)
        .map_err(|w| format!("{w} in series {}", describe(labels)))
}

fn validate_inner<'a>(
    labels: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    limits: &Limits,
) -> Result<Labels, String> {
    if labels.len() > limits.max_labels {
        return Err(format!("too many labels ({} > {})", labels.len(), limits.max_labels));
    }
    let mut pairs = Vec::with_capacity(labels.len());
    for (n, v) in labels {
        if n.len() > limits.max_name_len {
            return Err(format!(
                "label name too long ({} > {} bytes)",
                n.len(),
                limits.max_name_len
            ));
        }
        let name = std::str::from_utf8(n).map_err(|_| "label name is not UTF-8".to_string())?;
        if v.len() > limits.max_value_len {
            return Err(format!(
                "label value too long ({} > {} bytes) for {name:?}",
                v.len(),
                limits.max_value_len
            ));
        }
        let value =
            std::str::from_utf8(v).map_err(|_| format!("label value of {name:?} is not UTF-8"))?;
        pairs.push((name, value));
    }
    let labels = Labels::from_pairs(pairs).map_err(|e| e.to_string())?;
    if labels.metric_name().is_none() {
        return Err("missing metric name (__name__)".to_string());
    }
    Ok(labels)
}

/// A series to encode: label pairs and `(timestamp ms, value)` samples.
pub type SeriesToEncode<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// Encodes a request (for tests, fuzzing seeds and the load generator).
pub fn encode(series: &[SeriesToEncode<'_>]) -> Vec<u8> {
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

    fn all_valid(r: &Request) -> Vec<Result<Labels, String>> {
        r.series().map(|s| s.validate(&Limits::default())).collect()
    }

    #[test]
    fn round_trip_ids_and_order() {
        let body = encode(&[
            (vec![("__name__", "up"), ("job", "a")], vec![(1000, 1.0), (-2000, 0.0)]),
            (vec![("job", "b"), ("__name__", "cpu")], vec![(1000, f64::from_bits(STALE_NAN_BITS))]),
            (vec![("__name__", "empty")], vec![]),
        ]);
        let r = decode(&body, &Limits::default()).unwrap();
        assert_eq!(r.len(), 2, "series without samples are ignored");
        let v = all_valid(&r);
        let up = v[0].as_ref().unwrap();
        assert_eq!(up.get("job"), Some("a"));
        let series: Vec<SeriesRef<'_>> = r.series().collect();
        assert_eq!(series[0].samples(), &[(1000, 1.0), (-2000, 0.0)]);
        assert!(is_stale_marker(series[1].samples()[0].1));
        for (s, l) in series.iter().zip(&v) {
            assert_eq!(s.id(), l.as_ref().unwrap().series_id(), "unsorted too");
        }
    }

    /// The hand-written parser agrees with prost on what prost encodes, including unknown
    /// fields (exemplars, metadata) that must be skipped.
    #[test]
    fn parser_agrees_with_prost() {
        let mut req = proto::WriteRequest { timeseries: Vec::new() };
        for i in 0..50 {
            req.timeseries.push(proto::TimeSeries {
                labels: vec![
                    proto::Label { name: "__name__".into(), value: format!("m{i}") },
                    proto::Label { name: "i".into(), value: "x".repeat(i) },
                ],
                samples: (0..i % 4)
                    .map(|k| proto::Sample { value: k as f64 / 3.0, timestamp: i as i64 * 7 - 100 })
                    .collect(),
            });
        }
        let mut raw = req.encode_to_vec();
        // An unknown field (metadata, 3) after the series.
        raw.extend_from_slice(&[0x1a, 0x02, 0x08, 0x01]);
        let r = decode(&compress(&raw), &Limits::default()).unwrap();
        let expect: Vec<&proto::TimeSeries> =
            req.timeseries.iter().filter(|t| !t.samples.is_empty()).collect();
        assert_eq!(r.len(), expect.len());
        for (s, t) in r.series().zip(expect) {
            let labels: Vec<(String, String)> = s
                .labels()
                .map(|(n, v)| {
                    (String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap())
                })
                .collect();
            let want: Vec<(String, String)> =
                t.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            assert_eq!(labels, want);
            let samples: Vec<(i64, f64)> =
                t.samples.iter().map(|p| (p.timestamp, p.value)).collect();
            assert_eq!(s.samples(), samples.as_slice());
        }
    }

    #[test]
    fn invalid_series_name_the_problem_and_the_series() {
        let long = "x".repeat(3000);
        let body = encode(&[
            (vec![("__name__", "ok")], vec![(1, 1.0)]),
            (vec![("__name__", "bad"), ("0abc", "v")], vec![(1, 1.0), (2, 2.0)]),
            (vec![("__name__", "long"), ("a", long.as_str())], vec![(1, 1.0)]),
            (vec![("job", "noname")], vec![(1, 1.0)]),
        ]);
        let r = decode(&body, &Limits::default()).unwrap();
        let v = all_valid(&r);
        assert!(v[0].is_ok());
        let e = v[1].as_ref().unwrap_err();
        assert!(e.contains("invalid label name \"0abc\"") && e.contains("__name__=\"bad\""), "{e}");
        assert!(v[2].as_ref().unwrap_err().starts_with("label value too long (3000 > 2048 bytes)"));
        assert!(v[3].as_ref().unwrap_err().starts_with("missing metric name"));
    }

    #[test]
    fn too_many_labels() {
        let names: Vec<String> = (0..70).map(|i| format!("l{i}")).collect();
        let mut labels: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        labels.push(("__name__", "m"));
        let r = decode(&encode(&[(labels, vec![(1, 1.0)])]), &Limits::default()).unwrap();
        assert!(all_valid(&r)[0].as_ref().unwrap_err().starts_with("too many labels (71 > 64)"));
    }

    #[test]
    fn whole_request_errors() {
        let l = Limits::default();
        assert!(matches!(decode(b"definitely not snappy", &l), Err(DecodeError::Snappy(_))));
        assert!(matches!(decode(&compress(b"\xff\xff\xff"), &l), Err(DecodeError::Protobuf(_))));
        assert!(matches!(decode(&compress(b"\x0a\x05\x01"), &l), Err(DecodeError::Protobuf(_))));
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
            for body in [data.clone(), compress(&data)] {
                if let Ok(r) = decode(&body, &Limits::default()) {
                    for s in r.series() {
                        let _ = s.id();
                        let _ = s.validate(&Limits::default());
                    }
                }
            }
        }
    }
}
