//! Readers for PetShop-shaped scenario folders: `graph.csv` (square adjacency matrix,
//! `A,B = 1.0` means A calls B), `noissue/metrics.csv` and `train|test/issue_*/metrics.csv`
//! (pandas CSV with a 3-line column header `microservice`/`metric`/`statistic`, an index-name
//! line, then Unix seconds and values; empty cells are missing).

use std::path::{Path, PathBuf};

use auspex_incidents::{Edge, Topology};

/// A scenario folder could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct ReadError {
    /// The file.
    pub path: String,
    /// What was wrong.
    pub why: String,
}

fn err(path: &Path, why: impl std::fmt::Display) -> ReadError {
    ReadError { path: path.display().to_string(), why: why.to_string() }
}

/// One series' identity: (node, metric, statistic).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The graph node (service).
    pub node: String,
    /// `latency`, `requests` or `availability`.
    pub metric: String,
    /// `Average`, `p50`, ..., `Sum`.
    pub stat: String,
}

/// A metrics table: row times (Unix ms) and one column per series (NaN = missing).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Row times, Unix milliseconds.
    pub times: Vec<i64>,
    /// Series and their values, one per row.
    pub columns: Vec<(Key, Vec<f64>)>,
}

fn read_rows(path: &Path) -> Result<Vec<csv::StringRecord>, ReadError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| err(path, e))?;
    let mut rows = Vec::new();
    for rec in r.records() {
        rows.push(rec.map_err(|e| err(path, e))?);
    }
    Ok(rows)
}

/// Reads a `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Metrics, ReadError> {
    let rows = read_rows(path)?;
    if rows.len() < 4 {
        return Err(err(path, "expected 3 header lines, an index line and rows"));
    }
    let (nodes, metric, stat) = (&rows[0], &rows[1], &rows[2]);
    if nodes.get(0) != Some("microservice") || metric.get(0) != Some("metric") {
        return Err(err(path, "the first cells must be `microservice` and `metric`"));
    }
    let n = nodes.len().saturating_sub(1);
    let mut columns: Vec<(Key, Vec<f64>)> = (1..=n)
        .map(|j| {
            let key = Key {
                node: nodes.get(j).unwrap_or("").to_string(),
                metric: metric.get(j).unwrap_or("").to_string(),
                stat: stat.get(j).unwrap_or("").to_string(),
            };
            (key, Vec::new())
        })
        .collect();
    let mut times = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(4) {
        let Some(t) = row.get(0).filter(|t| !t.is_empty()) else { continue };
        let secs: f64 = t.parse().map_err(|_| err(path, format!("line {}: time {t:?}", i + 1)))?;
        times.push((secs * 1000.0).round() as i64);
        for (j, col) in columns.iter_mut().enumerate() {
            let cell = row.get(j + 1).unwrap_or("");
            col.1.push(cell.parse::<f64>().ok().filter(|v| v.is_finite()).unwrap_or(f64::NAN));
        }
    }
    Ok(Metrics { times, columns })
}

/// Reads `graph.csv`: the node names and the call edges (`A,B = 1.0`: A calls B).
pub fn read_graph_edges(path: &Path) -> Result<(Vec<String>, Vec<Edge>), ReadError> {
    let rows = read_rows(path)?;
    let header = rows.first().ok_or_else(|| err(path, "empty file"))?;
    let names: Vec<String> = header.iter().skip(1).map(str::to_string).collect();
    let mut edges = Vec::new();
    for row in rows.iter().skip(1) {
        let from = row.get(0).unwrap_or("").to_string();
        for (j, cell) in row.iter().skip(1).enumerate() {
            let v: f64 = cell.trim().parse().unwrap_or(0.0);
            if v != 0.0
                && let Some(to) = names.get(j)
            {
                edges.push(Edge { from: from.clone(), to: to.clone() });
            }
        }
    }
    Ok((names, edges))
}

/// Reads `graph.csv` into a topology.
pub fn read_graph(path: &Path) -> Result<Topology, ReadError> {
    let (names, edges) = read_graph_edges(path)?;
    Ok(Topology::new(names, &edges))
}

/// The issue folders (`train/issue_*`, `test/issue_*`) of a scenario, sorted.
pub fn cases(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    for split in ["train", "test"] {
        let d = dir.join(split);
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.map_err(|e| err(&d, e))?.path();
            if p.join("metrics.csv").is_file() {
                out.push(p);
            }
        }
    }
    // Natural order: issue_2 before issue_10.
    out.sort_by_key(|p| {
        let split = p.parent().and_then(|s| s.file_name()).map(|s| s.to_os_string());
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let num: u64 = name.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (split, num, name)
    });
    Ok(out)
}
