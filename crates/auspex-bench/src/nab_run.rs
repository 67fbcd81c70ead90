//! `auspex bench nab`: run the detector over a NAB-shaped corpus, write the results in the
//! `detect` format, and score them with the [`crate::nab`] port.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auspex_detect::Config;

use crate::nab::{self, NabError, ProfileScore, ScoredFile};

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct NabRun {
    /// One score per profile, in NAB's order.
    pub profiles: Vec<ProfileScore>,
    /// Data rows processed.
    pub points: u64,
    /// Time spent inside the detector only.
    pub detect_time: Duration,
    /// Per-file scored data, for further analysis.
    pub files: Vec<ScoredFile>,
}

impl NabRun {
    /// Detector throughput, points per second on one thread.
    pub fn throughput(&self) -> f64 {
        self.points as f64 / self.detect_time.as_secs_f64().max(1e-9)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NabError + '_ {
    move |source| NabError::Io { path: path.to_path_buf(), source }
}

/// Runs and scores. `progress(done, total, file)` is called before each file.
pub fn run(
    data_dir: &Path,
    out_dir: &Path,
    config: Config,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<NabRun, NabError> {
    let labels = nab::read_labels(&data_dir.join("labels").join("combined_windows.json"))?;
    let mut files = Vec::new();
    let mut points = 0u64;
    let mut detect_time = Duration::ZERO;
    for (k, (rel, windows)) in labels.iter().enumerate() {
        progress(k, labels.len(), rel);
        let data_path = data_dir.join("data").join(rel);
        let cols = nab::read_columns(&data_path, &["timestamp", "value"])?;
        let (raw_ts, raw_val) = (&cols[0], &cols[1]);
        let ts = nab::parse_timestamps(raw_ts)?;
        let mut rows = Vec::with_capacity(ts.len());
        for (i, (t, v)) in ts.iter().zip(raw_val).enumerate() {
            let v: f64 = v.trim().parse().map_err(|_| {
                NabError::Input(format!("{}:{}: bad value {v:?}", data_path.display(), i + 2))
            })?;
            rows.push((*t, v));
        }
        let t0 = Instant::now();
        let scores = crate::series_csv::scores(config, &rows);
        detect_time += t0.elapsed();
        points += rows.len() as u64;

        let out_path: PathBuf = out_dir.join(rel);
        if let Some(parent) = out_path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut text = String::with_capacity(rows.len() * 48);
        text.push_str("timestamp,value,anomaly_score\n");
        for ((t, v), s) in raw_ts.iter().zip(raw_val).zip(&scores) {
            text.push_str(t);
            text.push(',');
            text.push_str(v);
            text.push(',');
            text.push_str(&format!("{s}"));
            text.push('\n');
        }
        std::fs::write(&out_path, text).map_err(io(&out_path))?;
        let spans = nab::window_spans(rel, &ts, windows)?;
        files.push(ScoredFile { rel: rel.clone(), n: rows.len(), spans, scores });
    }
    progress(labels.len(), labels.len(), "");
    let profiles = nab::PROFILES.iter().map(|p| nab::score(&files, p)).collect();
    Ok(NabRun { profiles, points, detect_time, files })
}
