//! Label sets with Prometheus semantics, and the stable [`SeriesId`] hash.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The label that holds a metric's name in Prometheus.
pub const METRIC_NAME: &str = "__name__";

/// Why a label set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// A name that is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {0:?}: names must match [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidName(String),
    /// The same name given twice.
    #[error("duplicate label name {0:?}: each name may appear once")]
    Duplicate(String),
}

/// A set of name/value pairs, sorted by name, with Prometheus semantics:
///
/// - names match `[a-zA-Z_][a-zA-Z0-9_]*` (`__name__` holds the metric name);
/// - each name appears once;
/// - a label with an empty value is the same as an absent label, so it is dropped.
///
/// Serialised as a JSON object whose keys are in sorted order.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// An empty label set.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds a label set from pairs in any order. Fails on a bad name or a duplicate.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, LabelError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = Vec::new();
        for (k, val) in pairs {
            let (k, val) = (k.into(), val.into());
            if !valid_name(&k) {
                return Err(LabelError::InvalidName(k));
            }
            if val.is_empty() {
                // Still a duplicate if the name is repeated with a value elsewhere.
                if v.iter().any(|(n, _)| *n == k) {
                    return Err(LabelError::Duplicate(k));
                }
                continue;
            }
            v.push((k, val));
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(LabelError::Duplicate(w[0].0.clone()));
        }
        Ok(Self(v))
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Returns a copy with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Result<Self, LabelError> {
        if !valid_name(name) {
            return Err(LabelError::InvalidName(name.to_string()));
        }
        let mut v = self.0.clone();
        match v.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                v.remove(i);
            }
            Ok(i) => v[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => v.insert(i, (name.to_string(), value.to_string())),
        }
        Ok(Self(v))
    }

    /// Iterates over the pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stable id of the series these labels name. See [`SeriesId`].
    pub fn series_id(&self) -> SeriesId {
        SeriesId::of_sorted(self.0.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
    }
}

impl SeriesId {
    /// The id of label pairs already sorted by name, without building [`Labels`] (for hot
    /// ingest paths). Pairs with an empty value are skipped, as [`Labels`] drops them, so the
    /// result equals `Labels::from_pairs(pairs)?.series_id()` for valid input.
    pub fn of_sorted<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> SeriesId {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            h.update(k);
            h.update(&[SEP]);
            h.update(v);
            h.update(&[SEP]);
        }
        SeriesId(h.digest())
    }
}

const SEP: u8 = 0xff;

fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    match b.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
        _ => return false,
    }
    b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Prometheus style: `name{a="1", b="2"}` (the name outside the braces when present).
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.metric_name() {
            f.write_str(n)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for (k, v) in self.iter().filter(|(k, _)| *k != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        Labels::from_pairs(m).map_err(serde::de::Error::custom)
    }
}

/// The stable identity of a series: **a storage format**.
///
/// Definition (fixed; changing it is a storage migration): xxHash64 with seed 0 over the
/// labels in name order, each written as `name 0xFF value 0xFF`. This is the byte stream
/// Prometheus's `labels.Hash` uses, so ids agree with Prometheus tooling. Printed and
/// serialised as 16 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesId(pub u64);

impl fmt::Debug for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeriesId({self})")
    }
}

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for SeriesId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SeriesId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex64(&s).map(SeriesId).map_err(serde::de::Error::custom)
    }
}

pub(crate) fn parse_hex64(s: &str) -> Result<u64, String> {
    if s.len() != 16 {
        return Err(format!("expected 16 hex digits, got {s:?}"));
    }
    u64::from_str_radix(s, 16).map_err(|e| format!("bad hex id {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_empty_values_dropped() {
        let l = Labels::from_pairs([("job", "api"), ("__name__", "up"), ("zone", "")]).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("__name__", "up"), ("job", "api")]);
        assert_eq!(l.to_string(), "up{job=\"api\"}");
        assert_eq!(l.get("zone"), None);
    }

    #[test]
    fn rejects_bad_names_and_duplicates() {
        assert!(matches!(Labels::from_pairs([("1a", "x")]), Err(LabelError::InvalidName(_))));
        assert!(matches!(Labels::from_pairs([("a-b", "x")]), Err(LabelError::InvalidName(_))));
        assert!(matches!(
            Labels::from_pairs([("a", "x"), ("a", "y")]),
            Err(LabelError::Duplicate(_))
        ));
    }

    #[test]
    fn series_id_is_order_independent_and_pinned() {
        let a = Labels::from_pairs([("a", "1"), ("b", "2")]).unwrap();
        let b = Labels::from_pairs([("b", "2"), ("a", "1")]).unwrap();
        assert_eq!(a.series_id(), b.series_id());
        // Pinned: the id is a storage format and must never change.
        // xxh64(seed 0) of b"a\xff1\xffb\xff2\xff".
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"a\xff1\xffb\xff2\xff");
        assert_eq!(a.series_id().0, xxhash_rust::xxh64::xxh64(&bytes, 0));
        assert_eq!(Labels::new().series_id().0, 0xef46db3751d8e999);
        assert_ne!(a.series_id(), Labels::from_pairs([("a", "1")]).unwrap().series_id());
    }

    #[test]
    fn of_sorted_matches_labels() {
        let l = Labels::from_pairs([("a", "1"), ("b", ""), ("c", "3")]).unwrap();
        let raw: [(&[u8], &[u8]); 3] = [(b"a", b"1"), (b"b", b""), (b"c", b"3")];
        assert_eq!(SeriesId::of_sorted(raw), l.series_id());
    }

    #[test]
    fn with_sets_replaces_and_removes() {
        let l = Labels::from_pairs([("a", "1")]).unwrap();
        let l2 = l.with("b", "2").unwrap().with("a", "3").unwrap();
        assert_eq!(l2.get("a"), Some("3"));
        assert_eq!(l2.get("b"), Some("2"));
        assert_eq!(l2.with("a", "").unwrap().get("a"), None);
    }

    #[test]
    fn json_round_trip() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1")]).unwrap();
        let j = serde_json::to_string(&l).unwrap();
        assert_eq!(j, r#"{"a":"1","b":"2"}"#);
        assert_eq!(serde_json::from_str::<Labels>(&j).unwrap(), l);
        assert!(serde_json::from_str::<Labels>(r#"{"1":"x"}"#).is_err());
    }
}
