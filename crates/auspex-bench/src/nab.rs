//! NAB scoring: a Rust port of `nab_score.py` (the independent scorer in `shared/tools`).
//!
//! Rules (from the published NAB description):
//! - probation: the first `min(floor(0.15 n), 750)` rows of a file are not scored;
//! - scaled sigmoid `s(x) = 2/(1+exp(5x)) - 1`, and `-1` for `x > 3`;
//! - a row inside window `[L,R]` (width `w`) weighs `s(-(R-i+1)/w)/s(-1) * A_TP`; a row before
//!   the first window weighs `-A_FP`; a row after window `[L',R']` weighs
//!   `s(|R'-i|/max(w'-1,1)) * A_FP`;
//! - at threshold `t`, rows with score `>= t` are detections; each window counts its best
//!   detection or `-A_FN`; detections outside windows add their weight;
//! - one global threshold per profile, by exhaustive sweep over all distinct scores (and "no
//!   detection", printed as `inf`);
//! - normalised `100 (S - S_null) / (S_perfect - S_null)`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use auspex_core::time::{NumericUnit, parse_timestamp};

/// A scoring profile: the weights of true positives, false positives and false negatives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Name as NAB writes it.
    pub name: &'static str,
    /// Weight of a true positive.
    pub a_tp: f64,
    /// Weight of a false positive.
    pub a_fp: f64,
    /// Weight of a false negative.
    pub a_fn: f64,
}

/// NAB's three profiles, in the order they are printed.
pub const PROFILES: [Profile; 3] = [
    Profile { name: "standard", a_tp: 1.0, a_fp: 0.11, a_fn: 1.0 },
    Profile { name: "reward_low_FP_rate", a_tp: 1.0, a_fp: 0.22, a_fn: 1.0 },
    Profile { name: "reward_low_FN_rate", a_tp: 1.0, a_fp: 0.11, a_fn: 2.0 },
];

const PROBATION_FRACTION: f64 = 0.15;
const PROBATION_CAP: usize = 750;

/// Errors while loading or scoring a NAB-shaped corpus.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything wrong with the content.
    #[error("{0}")]
    Input(String),
}

fn input<T>(msg: String) -> Result<T, NabError> {
    Err(NabError::Input(msg))
}

/// One scored file: its row count, its windows as sorted row ranges, and the scores.
#[derive(Debug, Clone)]
pub struct ScoredFile {
    /// `<category>/<file>.csv`.
    pub rel: String,
    /// Number of data rows.
    pub n: usize,
    /// Windows as inclusive `(L, R)` row ranges, sorted, not overlapping.
    pub spans: Vec<(usize, usize)>,
    /// One anomaly score per row.
    pub scores: Vec<f64>,
}

/// The result of one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileScore {
    /// Profile name.
    pub profile: &'static str,
    /// Normalised score (null detector 0, perfect 100).
    pub score: f64,
    /// Best threshold; `None` means "no detection at all".
    pub threshold: Option<f64>,
    /// Raw (unnormalised) score.
    pub raw: f64,
    /// Number of windows in the corpus.
    pub windows: usize,
    /// Number of files.
    pub files: usize,
}

impl ProfileScore {
    /// The line `nab_score.py` prints.
    pub fn line(&self) -> String {
        format!(
            "profile={} score={:.4} threshold={} raw={:.6} windows={} files={}",
            self.profile,
            self.score,
            self.threshold.map_or_else(|| "inf".to_string(), py_repr),
            self.raw,
            self.windows,
            self.files
        )
    }
}

/// Python's `repr` of a float for the values a threshold takes (`1.0`, `0.25`, `1e-05`).
fn py_repr(x: f64) -> String {
    let s = format!("{x}");
    if s.contains(['.', 'e', 'E']) || !x.is_finite() { s } else { format!("{s}.0") }
}

fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 { -1.0 } else { 2.0 / (1.0 + (5.0 * x).exp()) - 1.0 }
}

/// Row weights of one file for a profile: `(score, weight, window index or None)` for every
/// scored (post-probation) row. `window_base` offsets window indices across files.
fn file_points(f: &ScoredFile, p: &Profile, window_base: usize, out: &mut Vec<(f64, f64, i64)>) {
    let n = f.n;
    let probation = ((PROBATION_FRACTION * n as f64).floor() as usize).min(PROBATION_CAP);
    let tp_norm = scaled_sigmoid(-1.0);
    let mut w = 0;
    let mut prev: Option<(usize, usize)> = None; // (R, width) of the last window passed
    for i in 0..n {
        while w < f.spans.len() && f.spans[w].1 < i {
            prev = Some((f.spans[w].1, f.spans[w].1 - f.spans[w].0 + 1));
            w += 1;
        }
        let (weight, wid) = if w < f.spans.len() && f.spans[w].0 <= i {
            let (l, r) = f.spans[w];
            let width = (r - l + 1) as f64;
            let x = -((r - i + 1) as f64) / width;
            (scaled_sigmoid(x) / tp_norm * p.a_tp, (window_base + w) as i64)
        } else if let Some((pr, pw)) = prev {
            let d = (pr as f64 - i as f64).abs() / (pw.saturating_sub(1).max(1)) as f64;
            (scaled_sigmoid(d) * p.a_fp, -1)
        } else {
            (-p.a_fp, -1)
        };
        if i >= probation {
            out.push((f.scores[i], weight, wid));
        }
    }
}

/// Scores a corpus under one profile with the exhaustive threshold sweep.
pub fn score(files: &[ScoredFile], p: &Profile) -> ProfileScore {
    let n_windows: usize = files.iter().map(|f| f.spans.len()).sum();
    let mut points = Vec::with_capacity(files.iter().map(|f| f.n).sum());
    let mut base = 0;
    for f in files {
        file_points(f, p, base, &mut points);
        base += f.spans.len();
    }
    // Stable sort by descending score, as Python's `sort(key=-score)`.
    points.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best_in_window: Vec<Option<f64>> = vec![None; n_windows];
    let (mut tp_sum, mut fp_sum, mut detected) = (0.0f64, 0.0f64, 0usize);
    let mut best_raw = -p.a_fn * n_windows as f64;
    let mut best_thr = None;
    let mut i = 0;
    while i < points.len() {
        let thr = points[i].0;
        while i < points.len() && points[i].0 == thr {
            let (_, weight, wid) = points[i];
            if wid < 0 {
                fp_sum += weight;
            } else {
                let slot = &mut best_in_window[wid as usize];
                match *slot {
                    None => {
                        *slot = Some(weight);
                        tp_sum += weight;
                        detected += 1;
                    }
                    Some(old) if weight > old => {
                        *slot = Some(weight);
                        tp_sum += weight - old;
                    }
                    Some(_) => {}
                }
            }
            i += 1;
        }
        let total = tp_sum + fp_sum - p.a_fn * (n_windows - detected) as f64;
        if total > best_raw {
            best_raw = total;
            best_thr = Some(thr);
        }
    }
    let s_perfect = n_windows as f64 * p.a_tp;
    let s_null = -(n_windows as f64) * p.a_fn;
    let norm =
        if n_windows > 0 { 100.0 * (best_raw - s_null) / (s_perfect - s_null) } else { f64::NAN };
    ProfileScore {
        profile: p.name,
        score: norm,
        threshold: best_thr,
        raw: best_raw,
        windows: n_windows,
        files: files.len(),
    }
}

/// The labels file: `{"<category>/<file>.csv": [[start, end], ...]}`, sorted by file.
pub type Labels = BTreeMap<String, Vec<(String, String)>>;

/// Reads `DIR/labels/combined_windows.json` (or `labels`).
pub fn read_labels(path: &Path) -> Result<Labels, NabError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| NabError::Io { path: path.to_path_buf(), source })?;
    let labels: Labels = serde_json::from_str(&text)
        .map_err(|e| NabError::Input(format!("{}: not a NAB windows file: {e}", path.display())))?;
    if labels.is_empty() {
        return input(format!("{}: expected a non-empty JSON object", path.display()));
    }
    Ok(labels)
}

/// Normalises a timestamp the way the scorer does before comparing (`T`, `Z`, zero fraction).
fn norm_ts(s: &str) -> String {
    let mut s = s.trim().replace('T', " ");
    if s.ends_with('Z') {
        s.pop();
    }
    if let Some((head, frac)) = s.rsplit_once('.')
        && !frac.is_empty()
        && frac.bytes().all(|c| c.is_ascii_digit())
        && frac.bytes().all(|c| c == b'0')
    {
        s = head.to_string();
    }
    s
}

fn parse_ts(s: &str) -> Result<i64, NabError> {
    parse_timestamp(&norm_ts(s), NumericUnit::Seconds)
        .map_err(|_| NabError::Input(format!("cannot parse timestamp {s:?}")))
}

/// Reads the named columns of a CSV file, skipping empty rows, as the scorer does.
pub fn read_columns(path: &Path, want: &[&str]) -> Result<Vec<Vec<String>>, NabError> {
    let file =
        std::fs::File::open(path).map_err(|source| NabError::Io { path: path.into(), source })?;
    let mut rd = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
    let mut records = rd.records();
    let header = match records.next() {
        None => return input(format!("{}: empty file", path.display())),
        Some(r) => r.map_err(|e| NabError::Input(format!("{}: {e}", path.display())))?,
    };
    let header: Vec<&str> = header.iter().map(str::trim).collect();
    let mut idx = Vec::new();
    for c in want {
        match header.iter().position(|h| h == c) {
            Some(i) => idx.push(i),
            None => {
                return input(format!(
                    "{}: missing column {c:?} (header: {})",
                    path.display(),
                    header.join(",")
                ));
            }
        }
    }
    let mut out = vec![Vec::new(); want.len()];
    for (k, rec) in records.enumerate() {
        let rec = rec.map_err(|e| NabError::Input(format!("{}: {e}", path.display())))?;
        if rec.len() == 1 && rec.get(0) == Some("") {
            continue;
        }
        for (c, &j) in idx.iter().enumerate() {
            match rec.get(j) {
                Some(v) => out[c].push(v.to_string()),
                None => return input(format!("{}:{}: too few fields", path.display(), k + 2)),
            }
        }
    }
    Ok(out)
}

/// Maps each window of a file onto row indices: first row equal to the start, last row equal
/// to the end; a boundary absent from the data falls back to the first row `>= start` / the
/// last row `<= end`.
pub fn window_spans(
    rel: &str,
    data_ts: &[i64],
    windows: &[(String, String)],
) -> Result<Vec<(usize, usize)>, NabError> {
    let n = data_ts.len();
    let mut first_at = HashMap::new();
    let mut last_at = HashMap::new();
    for (i, &t) in data_ts.iter().enumerate() {
        first_at.entry(t).or_insert(i);
        last_at.insert(t, i);
    }
    let mut spans = Vec::new();
    for (a, b) in windows {
        let (start, end) = (parse_ts(a)?, parse_ts(b)?);
        let l = first_at
            .get(&start)
            .copied()
            .unwrap_or_else(|| data_ts.iter().position(|&t| t >= start).unwrap_or(n));
        let r = match last_at.get(&end) {
            Some(&r) => Some(r),
            None => data_ts.iter().rposition(|&t| t <= end),
        };
        match r {
            Some(r) if l <= r => spans.push((l, r)),
            _ => return input(format!("{rel}: window {a}..{b} contains no data rows")),
        }
    }
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[1].0 <= w[0].1) {
        return input(format!("{rel}: overlapping windows"));
    }
    Ok(spans)
}

/// Reads the timestamps of a data file as strings and as parsed milliseconds.
pub fn read_data_timestamps(path: &Path) -> Result<(Vec<String>, Vec<i64>), NabError> {
    let raw = read_columns(path, &["timestamp"])?.swap_remove(0);
    let ts = parse_timestamps(&raw)?;
    Ok((raw, ts))
}

/// Parses timestamp strings the way the scorer does.
pub fn parse_timestamps(raw: &[String]) -> Result<Vec<i64>, NabError> {
    raw.iter().map(|s| parse_ts(s)).collect()
}

/// Loads a results folder (`RESULTS/<category>/<file>.csv`) against a NAB-shaped corpus.
pub fn load_results(data_dir: &Path, results_dir: &Path) -> Result<Vec<ScoredFile>, NabError> {
    let labels = read_labels(&data_dir.join("labels").join("combined_windows.json"))?;
    let mut files = Vec::new();
    for (rel, windows) in &labels {
        let data_path = data_dir.join("data").join(rel);
        if !data_path.is_file() {
            return input(format!("data file listed in labels not found: {}", data_path.display()));
        }
        let (raw, ts) = read_data_timestamps(&data_path)?;
        let res_path = results_dir.join(rel);
        if !res_path.is_file() {
            return input(format!("missing results file for {rel}: {}", res_path.display()));
        }
        let cols = read_columns(&res_path, &["timestamp", "anomaly_score"])?;
        if cols[0].len() != raw.len() {
            return input(format!(
                "{}: {} rows, but data file {} has {} rows",
                res_path.display(),
                cols[0].len(),
                data_path.display(),
                raw.len()
            ));
        }
        let mut scores = Vec::with_capacity(raw.len());
        for (i, (t, s)) in cols[0].iter().zip(&cols[1]).enumerate() {
            if norm_ts(t) != norm_ts(&raw[i]) && parse_ts(t).ok() != Some(ts[i]) {
                return input(format!(
                    "{}:{}: timestamp {t:?} does not match data row {:?}",
                    res_path.display(),
                    i + 2,
                    raw[i]
                ));
            }
            let v: f64 = s.trim().parse().map_err(|_| {
                NabError::Input(format!(
                    "{}:{}: bad anomaly_score {s:?}",
                    res_path.display(),
                    i + 2
                ))
            })?;
            if !v.is_finite() {
                return input(format!(
                    "{}:{}: non-finite anomaly_score {s:?}",
                    res_path.display(),
                    i + 2
                ));
            }
            scores.push(v);
        }
        let spans = window_spans(rel, &ts, windows)?;
        files.push(ScoredFile { rel: rel.clone(), n: raw.len(), spans, scores });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: usize, spans: Vec<(usize, usize)>, scores: Vec<f64>) -> ScoredFile {
        ScoredFile { rel: "x/y.csv".into(), n, spans, scores }
    }

    #[test]
    fn null_detector_scores_zero_and_perfect_early_detection_is_near_100() {
        let n = 100;
        let null = f(n, vec![(50, 59)], vec![0.0; n]);
        let s = score(&[null], &PROFILES[0]);
        assert_eq!(s.score, 0.0);
        assert_eq!(s.threshold, None);
        let mut sc = vec![0.0; n];
        sc[50] = 1.0; // the first row of the window: weight s(-1)/s(-1) = 1
        let s = score(&[f(n, vec![(50, 59)], sc)], &PROFILES[0]);
        assert!((s.score - 100.0).abs() < 1e-9, "{}", s.score);
        assert_eq!(s.threshold, Some(1.0));
    }

    #[test]
    fn hand_computed_fp_and_late_detection() {
        // n = 100, probation 15; window rows 50..=59 (w = 10).
        let n = 100;
        let mut sc = vec![0.0; n];
        sc[59] = 1.0; // last row of the window: s(-1/10)/s(-1)
        sc[20] = 1.0; // before the first window: -A_FP
        let s = score(&[f(n, vec![(50, 59)], sc)], &PROFILES[0]);
        let sig = |x: f64| 2.0 / (1.0 + (5.0 * x).exp()) - 1.0;
        let tp = sig(-0.1) / sig(-1.0);
        let raw = tp - 0.11;
        assert!((s.raw - raw).abs() < 1e-12);
        assert!((s.score - 100.0 * (raw + 1.0) / 2.0).abs() < 1e-9);
        // A detection inside probation does not count.
        let mut sc = vec![0.0; n];
        sc[3] = 1.0;
        assert_eq!(score(&[f(n, vec![(50, 59)], sc)], &PROFILES[0]).raw, -1.0);
    }

    #[test]
    fn after_window_fp_weight_decays_with_distance() {
        let n = 200;
        let mut near = vec![0.0; n];
        near[50] = 1.0;
        near[61] = 0.9;
        let mut far = vec![0.0; n];
        far[50] = 1.0;
        far[150] = 0.9;
        let p = PROFILES[0];
        // Near: s(2/9) * 0.11 ~= -0.055 * 0.11; far is clamped to -0.11. Both lose to t=1.0 only
        // when the FP costs; compare the raw at the lower threshold through the sweep's choice.
        let a = score(&[f(n, vec![(50, 59)], near)], &p);
        let b = score(&[f(n, vec![(50, 59)], far)], &p);
        assert_eq!(a.threshold, Some(1.0));
        assert_eq!(b.threshold, Some(1.0));
        assert!((a.raw - 1.0).abs() < 1e-12 && (b.raw - 1.0).abs() < 1e-12);
    }

    #[test]
    fn py_repr_matches_python() {
        assert_eq!(py_repr(1.0), "1.0");
        assert_eq!(py_repr(0.25), "0.25");
        assert_eq!(py_repr(0.0), "0.0");
    }

    #[test]
    fn norm_ts_matches_scorer() {
        assert_eq!(norm_ts("2014-01-01T00:00:00Z"), "2014-01-01 00:00:00");
        assert_eq!(norm_ts("2014-01-01 00:00:00.000000"), "2014-01-01 00:00:00");
        assert_eq!(norm_ts("2014-01-01 00:00:00.5"), "2014-01-01 00:00:00.5");
    }
}
