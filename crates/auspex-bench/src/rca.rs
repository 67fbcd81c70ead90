//! `bench rca`: ranks the root cause of every case of a PetShop-shaped folder and scores the
//! rankings (AC@1, AC@3, Avg@5) beside the NSigma and BARO baselines of `rca_score.py`.
//!
//! Ranking reads, per case, `metrics.csv` and `target.json`'s `target` (the symptom node and
//! time) only; `root_cause` is read afterwards, for scoring. The normal reference of a series
//! is its values at or before the symptom time in every case of the folder (none of them after
//! any symptom), or `noissue` when those are too few or flat; the window is the case's values
//! after the symptom time. Scoring: `auspex_rca::rank` with the folder's call graph.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use auspex_rca::baseline::{self, Kind, Series};
use auspex_rca::{CallGraph, Config, Observation, Worse};

use crate::petshop::{self, Key, Metrics, ReadError};

fn err(path: &Path, why: impl std::fmt::Display) -> ReadError {
    ReadError { path: path.display().to_string(), why: why.to_string() }
}

/// Reads `graph.csv` as a directed call graph.
pub fn read_call_graph(path: &Path) -> Result<CallGraph, ReadError> {
    let (names, edges) = petshop::read_graph_edges(path)?;
    let mut g = CallGraph::new();
    for n in &names {
        g.add_node(n);
    }
    for e in &edges {
        g.add_edge(&e.from, &e.to);
    }
    Ok(g)
}

/// One case: where it is, its metrics and its symptom.
#[derive(Debug, Clone)]
pub struct Case {
    /// `train/issue_0`.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Its metrics.
    pub metrics: Metrics,
    /// The symptom node.
    pub target: String,
    /// The symptom time, ms.
    pub time: i64,
}

fn read_json(path: &Path) -> Result<serde_json::Value, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
    serde_json::from_str(&text).map_err(|e| err(path, e))
}

/// Reads every case's metrics and `target` (never `root_cause`).
pub fn read_cases(dir: &Path) -> Result<Vec<Case>, ReadError> {
    let mut out = Vec::new();
    for p in petshop::cases(dir)? {
        let tj = p.join("target.json");
        let v = read_json(&tj)?;
        let target = v["target"]["node"].as_str().ok_or_else(|| err(&tj, "no target.node"))?;
        let secs =
            v["target"]["timestamp"].as_f64().ok_or_else(|| err(&tj, "no target.timestamp"))?;
        let split = p.parent().and_then(|s| s.file_name()).and_then(|s| s.to_str()).unwrap_or("");
        let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
        out.push(Case {
            name: format!("{split}/{name}"),
            metrics: petshop::read_metrics(&p.join("metrics.csv"))?,
            dir: p,
            target: target.to_string(),
            time: (secs * 1000.0).round() as i64,
        });
    }
    if out.is_empty() {
        return Err(err(
            dir,
            "no train/issue_*/ or test/issue_*/ with metrics.csv and target.json",
        ));
    }
    Ok(out)
}

fn series_name(k: &Key) -> String {
    format!("{} {}", k.metric, k.stat)
}

/// `noissue` by series.
pub type Normal<'a> = HashMap<&'a Key, &'a Vec<f64>>;

/// Indexes `noissue` by series.
pub fn normal_by_key(noissue: &Metrics) -> Normal<'_> {
    noissue.columns.iter().map(|(k, v)| (k, v)).collect()
}

/// The Auspex ranking of every case (in order), with the top explanations.
pub fn rank_cases(
    cases: &[Case],
    normal: &Normal<'_>,
    graph: &CallGraph,
) -> Vec<(Vec<String>, Vec<String>)> {
    // Reference: values at or before each case's symptom time, pooled over the folder.
    let mut pooled: HashMap<&Key, Vec<f64>> = HashMap::new();
    for c in cases {
        for (k, col) in &c.metrics.columns {
            let e = pooled.entry(k).or_default();
            for (t, v) in c.metrics.times.iter().zip(col) {
                if *t <= c.time {
                    e.push(*v);
                }
            }
        }
    }
    let cfg = Config::default();
    cases
        .iter()
        .map(|c| {
            let obs: Vec<Observation> = c
                .metrics
                .columns
                .iter()
                .map(|(k, col)| {
                    let mut reference = pooled.get(k).cloned().unwrap_or_default();
                    if auspex_rca::robust(&reference).is_none() {
                        reference = normal.get(k).map(|v| v.to_vec()).unwrap_or_default();
                    }
                    let window = c
                        .metrics
                        .times
                        .iter()
                        .zip(col)
                        .filter(|(t, _)| **t > c.time)
                        .map(|(t, v)| (*t, *v))
                        .collect();
                    let worse = if k.metric == "availability" { Worse::Down } else { Worse::Up };
                    Observation {
                        service: k.node.clone(),
                        series: series_name(k),
                        worse,
                        reference,
                        window,
                    }
                })
                .collect();
            let r = auspex_rca::rank(&obs, graph, &[], Some((&c.target, c.time)), c.time, &cfg);
            let names = r.iter().map(|x| x.service.clone()).collect();
            let why = r.iter().take(3).map(|x| x.explanation.clone()).collect();
            (names, why)
        })
        .collect()
}

/// The baselines' ranking of one case (all rows of the case are the abnormal window).
pub fn baseline_ranking(case: &Metrics, normal: &Normal<'_>, kind: Kind) -> Vec<String> {
    let empty = Vec::new();
    let series: Vec<Series<'_>> = case
        .columns
        .iter()
        .map(|(k, col)| Series {
            node: &k.node,
            normal: normal.get(k).map_or(&empty, |v| v),
            abnormal: col,
        })
        .collect();
    baseline::rank(&series, kind)
}

/// AC@1, AC@3, Avg@5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// AC@1.
    pub ac1: f64,
    /// AC@3.
    pub ac3: f64,
    /// Avg@5.
    pub avg5: f64,
}

fn scores(r: &[Vec<String>], truths: &[String]) -> Scores {
    Scores {
        ac1: baseline::ac_at(r, truths, 1),
        ac3: baseline::ac_at(r, truths, 3),
        avg5: baseline::avg_at_5(r, truths),
    }
}

/// The bench's result.
#[derive(Debug, Clone)]
pub struct RcaReport {
    /// Cases.
    pub cases: usize,
    /// Auspex.
    pub auspex: Scores,
    /// NSigma.
    pub nsigma: Scores,
    /// BARO.
    pub baro: Scores,
}

/// Ranks every case, writes the JSON lines to `out`, and scores.
pub fn run(dir: &Path, out: &Path) -> Result<RcaReport, ReadError> {
    let graph = read_call_graph(&dir.join("graph.csv"))?;
    let noissue = petshop::read_metrics(&dir.join("noissue/metrics.csv"))?;
    let cases = read_cases(dir)?;
    let normal = normal_by_key(&noissue);
    let ranked = rank_cases(&cases, &normal, &graph);
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).map_err(|e| err(out, e))?);
    for (c, (r, why)) in cases.iter().zip(&ranked) {
        let line = serde_json::json!({"case": c.name, "ranking": r, "explanations": why});
        writeln!(f, "{line}").map_err(|e| err(out, e))?;
    }
    f.flush().map_err(|e| err(out, e))?;
    // Scoring: only now is root_cause read.
    let mut truths = Vec::with_capacity(cases.len());
    for c in &cases {
        let tj = c.dir.join("target.json");
        let v = read_json(&tj)?;
        truths.push(v["root_cause"]["node"].as_str().unwrap_or("").to_string());
    }
    let mine: Vec<Vec<String>> = ranked.into_iter().map(|(r, _)| r).collect();
    let ns: Vec<Vec<String>> =
        cases.iter().map(|c| baseline_ranking(&c.metrics, &normal, Kind::NSigma)).collect();
    let baro: Vec<Vec<String>> =
        cases.iter().map(|c| baseline_ranking(&c.metrics, &normal, Kind::Baro)).collect();
    Ok(RcaReport {
        cases: cases.len(),
        auspex: scores(&mine, &truths),
        nsigma: scores(&ns, &truths),
        baro: scores(&baro, &truths),
    })
}
