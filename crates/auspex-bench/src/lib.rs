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
