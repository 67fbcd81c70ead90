//! `auspex bench loghub`: parse every system of a Loghub-shaped folder with one configuration,
//! write `PREDDIR/<System>.csv`, and score it with the [`auspex_logs::loghub`] port.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auspex_logs::MinerConfig;
use auspex_logs::loghub::{Accuracy, evaluate};

use crate::logs_pipeline::{InputFormat, parse, write_csv};

/// A system's result.
#[derive(Debug, Clone)]
pub struct SystemResult {
    /// System name.
    pub system: String,
    /// Its accuracy.
    pub accuracy: Accuracy,
}

/// Errors of the loghub bench.
#[derive(Debug, thiserror::Error)]
pub enum LoghubError {
    /// IO.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// Content.
    #[error("{0}")]
    Input(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LoghubError + '_ {
    move |source| LoghubError::Io { path: path.to_path_buf(), source }
}

/// Reads `LineId -> EventTemplate` from a CSV with those columns.
pub fn read_templates(path: &Path) -> Result<BTreeMap<u64, String>, LoghubError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(f);
    let header =
        rd.headers().map_err(|e| LoghubError::Input(format!("{}: {e}", path.display())))?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| LoghubError::Input(format!("{}: missing column {name}", path.display())))
    };
    let (i_id, i_t) = (col("LineId")?, col("EventTemplate")?);
    let mut out = BTreeMap::new();
    for (k, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| LoghubError::Input(format!("{}: {e}", path.display())))?;
        if rec.len() == 1 && rec.get(0) == Some("") {
            continue;
        }
        let id: u64 = rec.get(i_id).unwrap_or("").trim().parse().map_err(|_| {
            LoghubError::Input(format!("{}: record {}: bad LineId", path.display(), k + 2))
        })?;
        if out.insert(id, rec.get(i_t).unwrap_or("").trim().to_string()).is_some() {
            return Err(LoghubError::Input(format!("{}: duplicate LineId {id}", path.display())));
        }
    }
    Ok(out)
}

/// Runs every system listed in `formats` that has `DATA/<S>/<S>_2k.log`; returns the
/// results (sorted by system), lines parsed and the parse time.
pub fn run(
    data: &Path,
    formats: &Path,
    out: &Path,
    mut progress: impl FnMut(&str),
) -> Result<(Vec<SystemResult>, u64, Duration), LoghubError> {
    let text = std::fs::read_to_string(formats).map_err(io(formats))?;
    let fmts: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
        LoghubError::Input(format!("{}: not a formats file: {e}", formats.display()))
    })?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut results = Vec::new();
    let (mut lines, mut time) = (0u64, Duration::ZERO);
    for (system, fmt) in &fmts {
        let log = data.join(system).join(format!("{system}_2k.log"));
        if !log.is_file() {
            continue;
        }
        progress(system);
        let input = std::fs::read(&log).map_err(io(&log))?;
        let format = InputFormat::parse(fmt).map_err(|e| LoghubError::Input(e.to_string()))?;
        let t0 = Instant::now();
        let parsed = parse(&input, &format, MinerConfig::default(), 1);
        time += t0.elapsed();
        lines += parsed.line_template.len() as u64;
        let pred_path = out.join(format!("{system}.csv"));
        let f = std::fs::File::create(&pred_path).map_err(io(&pred_path))?;
        write_csv(&parsed, std::io::BufWriter::new(f)).map_err(io(&pred_path))?;
        let truth_path =
            data.join(system).join(format!("{system}_2k.log_structured_corrected.csv"));
        let truth_path = if truth_path.is_file() {
            truth_path
        } else {
            data.join(system).join(format!("{system}_2k.log_structured.csv"))
        };
        let truth = read_templates(&truth_path)?;
        let pred = read_templates(&pred_path)?;
        let accuracy =
            evaluate(&truth, &pred).map_err(|e| LoghubError::Input(format!("{system}: {e}")))?;
        results.push(SystemResult { system: system.clone(), accuracy });
    }
    if results.is_empty() {
        return Err(LoghubError::Input(format!(
            "no system of {} has DIR/<System>/<System>_2k.log under {}",
            formats.display(),
            data.display()
        )));
    }
    Ok((results, lines, time))
}
