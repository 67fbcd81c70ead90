//! `auspex bench hdfs-sessions`: learn normal sessions from the label-0 rows of a training
//! file, flag the sessions of a test file, and score against the test labels.
//!
//! The training file's label-1 rows are never read (their label is checked first and the row
//! skipped), and no threshold is tuned on the test file: a session is anomalous when it has
//! an n-gram no normal training session had.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use auspex_logs::sessions::SequenceModel;

/// Counts and figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SessionResult {
    /// True positives (anomalous, flagged).
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// True negatives.
    pub tn: u64,
    /// The same counts on test sequences that never occur among the normal training rows.
    pub unseen: [u64; 4],
    /// Normal training sessions learned.
    pub trained: u64,
}

fn prf(tp: u64, fp: u64, fn_: u64) -> (f64, f64, f64) {
    let p = if tp + fp == 0 { 0.0 } else { tp as f64 / (tp + fp) as f64 };
    let r = if tp + fn_ == 0 { 0.0 } else { tp as f64 / (tp + fn_) as f64 };
    let f = if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) };
    (p, r, f)
}

impl SessionResult {
    /// Precision, recall, F1 of the anomalous class.
    pub fn prf(&self) -> (f64, f64, f64) {
        prf(self.tp, self.fp, self.fn_)
    }

    /// The same on unseen sequences.
    pub fn unseen_prf(&self) -> (f64, f64, f64) {
        prf(self.unseen[0], self.unseen[1], self.unseen[2])
    }

    /// Test sessions.
    pub fn n(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }
}

/// Reads `Sequence,label` rows, calling `f(sequence, label)` only for rows `keep(label)`.
fn rows(
    path: &Path,
    keep: impl Fn(&str) -> bool,
    mut f: impl FnMut(&str, &str),
) -> Result<(), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut rd = csv::Reader::from_reader(file);
    let h = rd.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
    let find = |n: &str| {
        h.iter().position(|x| x.trim() == n).ok_or_else(|| {
            format!("{}: missing column {n} (expected Sequence,label)", path.display())
        })
    };
    let (is, il) = (find("Sequence")?, find("label")?);
    for (k, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let label = rec.get(il).unwrap_or("").trim();
        if !keep(label) {
            continue;
        }
        if label != "0" && label != "1" {
            return Err(format!(
                "{}: record {}: label must be 0 or 1, got {label:?}",
                path.display(),
                k + 2
            ));
        }
        f(rec.get(is).unwrap_or(""), label);
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(train: &Path, test: &Path) -> Result<SessionResult, String> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut intern = |s: &str| -> Vec<u32> {
        s.split_whitespace()
            .map(|t| {
                let n = ids.len() as u32;
                *ids.entry(t.to_string()).or_insert(n)
            })
            .collect()
    };
    let mut model = SequenceModel::default();
    let mut seen: HashSet<Vec<u32>> = HashSet::new();
    rows(
        train,
        |l| l == "0",
        |seq, _| {
            let s = intern(seq);
            model.learn(&s);
            seen.insert(s);
        },
    )?;
    if model.sessions() == 0 {
        return Err(format!("{}: no label-0 rows to learn from", train.display()));
    }
    let mut r = SessionResult { trained: model.sessions(), ..SessionResult::default() };
    rows(
        test,
        |_| true,
        |seq, label| {
            let s = intern(seq);
            let flagged = model.score(&s).is_anomalous();
            let k = match (label == "1", flagged) {
                (true, true) => 0,
                (false, true) => 1,
                (true, false) => 2,
                (false, false) => 3,
            };
            match k {
                0 => r.tp += 1,
                1 => r.fp += 1,
                2 => r.fn_ += 1,
                _ => r.tn += 1,
            }
            if !seen.contains(&s) {
                r.unseen[k] += 1;
            }
        },
    )?;
    Ok(r)
}
