//! Session anomaly detection: learn the event sequences of normal sessions without labels,
//! then flag sessions that do something normal sessions never did.
//!
//! A session is a sequence of event ids (template ids). [`SequenceModel`] keeps every n-gram
//! (n = 1..=4 by default, with start and end markers) seen in normal sessions; a session with
//! an n-gram never seen is anomalous, and its score says how much of it was unseen.
//! [`Sessionizer`] groups records into sessions by a key taken from the message with a regex
//! (for HDFS, the block id `blk_-?\d+`).

use std::collections::{HashMap, HashSet};

use regex::Regex;

const START: u32 = u32::MAX;
const END: u32 = u32::MAX - 1;

/// Learns normal sequences; flags sessions with unseen n-grams.
#[derive(Debug, Clone)]
pub struct SequenceModel {
    n: usize,
    grams: HashSet<Vec<u32>>,
    max_grams: usize,
    sessions: u64,
}

/// How unusual a session is.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionScore {
    /// n-grams never seen in normal sessions.
    pub unseen: usize,
    /// n-grams in the session.
    pub total: usize,
    /// The first unseen n-gram (event ids; the markers are dropped).
    pub first_unseen: Option<Vec<u32>>,
}

impl SessionScore {
    /// Anomalous when any n-gram is unseen.
    pub fn is_anomalous(&self) -> bool {
        self.unseen > 0
    }

    /// Share of unseen n-grams, in [0, 1].
    pub fn score(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.unseen as f64 / self.total as f64 }
    }
}

impl Default for SequenceModel {
    fn default() -> Self {
        Self::new(4, 1_000_000)
    }
}

impl SequenceModel {
    /// A model of n-grams up to `n`, keeping at most `max_grams` of them.
    pub fn new(n: usize, max_grams: usize) -> Self {
        Self { n: n.max(1), grams: HashSet::new(), max_grams, sessions: 0 }
    }

    fn each_gram(&self, seq: &[u32], mut f: impl FnMut(&[u32])) {
        let mut s = Vec::with_capacity(seq.len() + 2);
        s.push(START);
        s.extend_from_slice(seq);
        s.push(END);
        for n in 1..=self.n {
            for w in s.windows(n) {
                if n == 1 && (w[0] == START || w[0] == END) {
                    continue;
                }
                f(w);
            }
        }
    }

    /// Learns a normal session. Beyond `max_grams`, new n-grams are not added.
    pub fn learn(&mut self, seq: &[u32]) {
        self.sessions += 1;
        let mut new = Vec::new();
        self.each_gram(seq, |g| {
            if !self.grams.contains(g) {
                new.push(g.to_vec());
            }
        });
        for g in new {
            if self.grams.len() >= self.max_grams {
                break;
            }
            self.grams.insert(g);
        }
    }

    /// Scores a session.
    pub fn score(&self, seq: &[u32]) -> SessionScore {
        let (mut unseen, mut total, mut first) = (0, 0, None);
        self.each_gram(seq, |g| {
            total += 1;
            if !self.grams.contains(g) {
                unseen += 1;
                if first.is_none() {
                    first = Some(g.iter().copied().filter(|&x| x != START && x != END).collect());
                }
            }
        });
        SessionScore { unseen, total, first_unseen: first }
    }

    /// Normal sessions learned.
    pub fn sessions(&self) -> u64 {
        self.sessions
    }

    /// Distinct n-grams kept.
    pub fn len(&self) -> usize {
        self.grams.len()
    }

    /// True before anything was learned.
    pub fn is_empty(&self) -> bool {
        self.grams.is_empty()
    }
}

/// Groups `(message, event id)` records into sessions by a key found in the message.
#[derive(Debug, Clone)]
pub struct Sessionizer {
    key: Regex,
    sessions: HashMap<String, Vec<u32>>,
    order: Vec<String>,
    max_sessions: usize,
    max_len: usize,
}

impl Sessionizer {
    /// Sessions keyed by the first match of `key` (or its first capture group). At most
    /// `max_sessions` are open (the oldest is closed and returned), each at most `max_len`
    /// events long.
    pub fn new(key: Regex, max_sessions: usize, max_len: usize) -> Self {
        Self { key, sessions: HashMap::new(), order: Vec::new(), max_sessions, max_len }
    }

    /// Adds a record; returns a session closed to make room, if any.
    pub fn add(&mut self, message: &str, event: u32) -> Option<(String, Vec<u32>)> {
        let caps = self.key.captures(message)?;
        let k = caps.get(1).or_else(|| caps.get(0))?.as_str().to_string();
        let mut closed = None;
        if !self.sessions.contains_key(&k) {
            if self.sessions.len() >= self.max_sessions && !self.order.is_empty() {
                let old = self.order.remove(0);
                closed = self.sessions.remove(&old).map(|s| (old, s));
            }
            self.order.push(k.clone());
        }
        let s = self.sessions.entry(k).or_default();
        if s.len() < self.max_len {
            s.push(event);
        }
        closed
    }

    /// Closes every open session, in order of first appearance.
    pub fn finish(&mut self) -> Vec<(String, Vec<u32>)> {
        let order = std::mem::take(&mut self.order);
        order.into_iter().filter_map(|k| self.sessions.remove(&k).map(|s| (k, s))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_transitions_are_flagged() {
        let mut m = SequenceModel::default();
        for _ in 0..3 {
            m.learn(&[5, 5, 22, 11, 9, 26, 23, 21]);
            m.learn(&[5, 22, 11, 9, 11, 9, 26, 23]);
        }
        assert!(!m.score(&[5, 5, 22, 11, 9, 26, 23, 21]).is_anomalous());
        let s = m.score(&[5, 22, 11, 9, 4, 26]);
        assert!(s.is_anomalous() && s.score() > 0.0);
        assert_eq!(s.first_unseen, Some(vec![4]));
        // Same events, new order: an unseen bigram.
        assert!(m.score(&[22, 5, 11, 9, 26, 23]).is_anomalous());
        // A session that ends early: the end marker follows an event it never followed.
        assert!(m.score(&[5, 5, 22]).is_anomalous());
    }

    #[test]
    fn bounded() {
        let mut m = SequenceModel::new(3, 10);
        m.learn(&(0..100).collect::<Vec<u32>>());
        assert_eq!(m.len(), 10);
    }

    #[test]
    fn sessionizer_groups_by_key_and_bounds() {
        let mut s = Sessionizer::new(Regex::new(r"blk_-?\d+").unwrap(), 2, 3);
        assert!(s.add("Receiving block blk_1 src", 1).is_none());
        assert!(s.add("Receiving block blk_2 src", 1).is_none());
        s.add("Received block blk_1 of size", 2);
        let closed = s.add("block blk_3 x", 7).unwrap();
        assert_eq!(closed, ("blk_1".to_string(), vec![1, 2]));
        assert!(s.add("no key here", 9).is_none());
        for _ in 0..5 {
            s.add("blk_2", 3);
        }
        let rest = s.finish();
        assert_eq!(rest[0], ("blk_2".to_string(), vec![1, 3, 3]));
        assert_eq!(rest[1].0, "blk_3");
    }
}
