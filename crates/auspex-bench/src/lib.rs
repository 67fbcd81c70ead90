//! Benchmark harnesses, scorers and the batch CSV pipeline.
//!
//! - [`nab`]: a port of the independent NAB scorer and a loader for NAB-shaped corpora.
//! - [`series_csv`]: the `timestamp,value` CSV pipeline that `auspex detect` runs.
//! - [`nab_run`]: runs the detector over a NAB-shaped corpus and scores it.
//! - [`plot`]: a bounded-memory SVG plot of a detected series.
//! - [`petshop`], [`storm`]: PetShop-shaped folders and the alert-storm benchmark.
//! - [`synth`]: deterministic synthetic series for throughput and memory benchmarks.

pub mod hdfs_sessions;
pub mod incident_load;
pub mod loghub_run;
pub mod logs_pipeline;
pub mod nab;
pub mod nab_run;
pub mod petshop;
pub mod plot;
pub mod rca;
pub mod series_csv;
pub mod storm;
pub mod synth;

pub use auspex_rca::baseline::median_sorted;

/// The `p` quantile (0–1) of sorted values, nearest rank (0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
