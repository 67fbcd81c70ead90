//! The NSigma and BARO baselines exactly as `rca_score.py` defines them, and the statistics
//! they need (Python's `statistics` semantics).
//!
//! For each series with at least 3 normal values that are not all equal: centre and scale are
//! mean and population standard deviation (NSigma) or median and IQR (BARO; quartiles by
//! `statistics.quantiles(n=4)`, exclusive method); a zero scale becomes 1. The series' score is
//! the largest `(value − centre) / scale` over the abnormal window; a node's score is the
//! largest of its series. Nodes are ranked by score, ties in first-seen order.

/// Median of sorted values (mean of the middle two for an even count).
pub fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// `statistics.quantiles(v, n=4)` (exclusive method) of sorted values, `len >= 2`.
pub fn quartiles(v: &[f64]) -> (f64, f64, f64) {
    let ld = v.len() as i64;
    let m = ld + 1;
    let n = 4i64;
    let q = |i: i64| {
        let j = (i * m / n).clamp(1, (ld - 1).max(1));
        let delta = i * m - j * n;
        let (a, b) = (v[(j - 1) as usize], v[(j as usize).min(v.len() - 1)]);
        (a * (n - delta) as f64 + b * delta as f64) / n as f64
    };
    (q(1), q(2), q(3))
}

/// Mean.
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Population standard deviation.
pub fn pstdev(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Mean and standard deviation.
    NSigma,
    /// Median and IQR.
    Baro,
}

/// A series for the baselines: its node, normal values and abnormal values (NaN = missing).
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// The node.
    pub node: &'a str,
    /// Normal values.
    pub normal: &'a [f64],
    /// Abnormal values.
    pub abnormal: &'a [f64],
}

/// Ranks nodes like `rca_score.py`'s `baseline()`; `series` in the file's column order.
pub fn rank(series: &[Series<'_>], kind: Kind) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut score: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    for s in series {
        let mut nv: Vec<f64> = s.normal.iter().copied().filter(|x| !x.is_nan()).collect();
        let av: Vec<f64> = s.abnormal.iter().copied().filter(|x| !x.is_nan()).collect();
        if nv.len() < 3 || av.is_empty() {
            continue;
        }
        nv.sort_by(f64::total_cmp);
        if nv[0] == nv[nv.len() - 1] {
            continue;
        }
        let (c, sc) = match kind {
            Kind::NSigma => (mean(&nv), pstdev(&nv)),
            Kind::Baro => {
                let (q1, _, q3) = quartiles(&nv);
                (median_sorted(&nv), q3 - q1)
            }
        };
        let sc = if sc == 0.0 { 1.0 } else { sc };
        let z = av.iter().map(|v| (v - c) / sc).fold(f64::NEG_INFINITY, f64::max);
        match score.get_mut(s.node) {
            Some(old) => *old = old.max(z),
            None => {
                order.push(s.node.to_string());
                score.insert(s.node.to_string(), z);
            }
        }
    }
    let mut ranked: Vec<(usize, f64)> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (i, score.get(n).copied().unwrap_or(f64::NAN)))
        .collect();
    // Python's sort by -score is stable; NaN never occurs for finite inputs.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().map(|(i, _)| order[i].clone()).collect()
}

/// AC@k: the share of cases whose truth is in the first `k` of its ranking.
pub fn ac_at(rankings: &[Vec<String>], truths: &[String], k: usize) -> f64 {
    if truths.is_empty() {
        return 0.0;
    }
    let hit =
        rankings.iter().zip(truths).filter(|(r, t)| r.iter().take(k).any(|x| x == *t)).count();
    hit as f64 / truths.len() as f64
}

/// Avg@5: the mean of AC@1..AC@5.
pub fn avg_at_5(rankings: &[Vec<String>], truths: &[String]) -> f64 {
    (1..=5).map(|k| ac_at(rankings, truths, k)).sum::<f64>() / 5.0
}
