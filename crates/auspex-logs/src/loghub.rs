//! Log-parsing accuracy as `loghub_eval.py` defines it (a port; it agrees to 4 decimals).
//!
//! With N lines, truth groups (lines sharing a truth template) and predicted groups:
//! - GA: lines in truth groups that are predicted as exactly one group of the same lines, / N;
//! - PA: lines whose predicted template string equals the truth string, / N;
//! - FGA: F1 of correct groups / predicted groups and correct groups / truth groups;
//! - FTA: F1 over templates that are a correct group *and* have the right string.
//!
//! Template strings are compared after trimming whitespace.

use std::collections::{BTreeMap, HashMap, HashSet};

/// The figures for one system.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Accuracy {
    /// Lines.
    pub lines: usize,
    /// Distinct truth templates.
    pub truth_templates: usize,
    /// Distinct predicted templates.
    pub pred_templates: usize,
    /// Grouping accuracy.
    pub ga: f64,
    /// Parsing accuracy.
    pub pa: f64,
    /// F1 grouping accuracy.
    pub fga: f64,
    /// F1 template accuracy.
    pub fta: f64,
}

/// Line ids that do not line up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

/// Scores predictions against truth, both `LineId -> template`.
pub fn evaluate(
    truth: &BTreeMap<u64, String>,
    pred: &BTreeMap<u64, String>,
) -> Result<Accuracy, Mismatch> {
    let missing: Vec<u64> = truth.keys().filter(|k| !pred.contains_key(k)).copied().collect();
    let extra: Vec<u64> = pred.keys().filter(|k| !truth.contains_key(k)).copied().collect();
    if !missing.is_empty() || !extra.is_empty() || truth.is_empty() {
        return Err(Mismatch(format!(
            "{} truth LineIds without prediction, {} predicted LineIds not in truth",
            missing.len(),
            extra.len()
        )));
    }
    let t: HashMap<u64, &str> = truth.iter().map(|(k, v)| (*k, v.trim())).collect();
    let p: HashMap<u64, &str> = pred.iter().map(|(k, v)| (*k, v.trim())).collect();
    let mut tg: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut pg: HashMap<&str, Vec<u64>> = HashMap::new();
    for (&id, &s) in &t {
        tg.entry(s).or_default().push(id);
    }
    for (&id, &s) in &p {
        pg.entry(s).or_default().push(id);
    }
    let n = t.len();
    let (mut correct_groups, mut ga_lines) = (0usize, 0usize);
    for lids in tg.values() {
        let ps: HashSet<&str> = lids.iter().map(|i| p[i]).collect();
        if ps.len() == 1 {
            let one = *ps.iter().next().unwrap_or(&"");
            if pg[one].len() == lids.len() {
                correct_groups += 1;
                ga_lines += lids.len();
            }
        }
    }
    let mut correct_templates = 0usize;
    for (&ps, lids) in &pg {
        let ts: HashSet<&str> = lids.iter().map(|i| t[i]).collect();
        if ts.len() == 1 {
            let one = *ts.iter().next().unwrap_or(&"");
            if one == ps && tg[one].len() == lids.len() {
                correct_templates += 1;
            }
        }
    }
    let pa_lines = t.iter().filter(|(id, s)| p[*id] == **s).count();
    let (np, nt) = (pg.len() as f64, tg.len() as f64);
    Ok(Accuracy {
        lines: n,
        truth_templates: tg.len(),
        pred_templates: pg.len(),
        ga: ga_lines as f64 / n as f64,
        pa: pa_lines as f64 / n as f64,
        fga: f1(correct_groups as f64 / np, correct_groups as f64 / nt),
        fta: f1(correct_templates as f64 / np, correct_templates as f64 / nt),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &[(u64, &str)]) -> BTreeMap<u64, String> {
        v.iter().map(|(k, s)| (*k, s.to_string())).collect()
    }

    #[test]
    fn hand_computed() {
        let truth = m(&[(1, "a <*>"), (2, "a <*>"), (3, "b"), (4, "c <*>")]);
        // a-group split across two predictions; b right; c grouped right, wrong string.
        let pred = m(&[(1, "a <*>"), (2, "a x"), (3, " b "), (4, "c d")]);
        let a = evaluate(&truth, &pred).unwrap();
        assert_eq!(a.ga, 0.5); // b and c groups
        assert_eq!(a.pa, 0.5); // lines 1 and 3
        // correct groups 2 of 4 predicted, 2 of 3 truth.
        assert!((a.fga - f1(0.5, 2.0 / 3.0)).abs() < 1e-12);
        // correct templates: "b" only.
        assert!((a.fta - f1(0.25, 1.0 / 3.0)).abs() < 1e-12);
        assert!(evaluate(&truth, &m(&[(1, "x")])).is_err());
    }
}
