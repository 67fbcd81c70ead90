//! Log intelligence (capability M4). Pure: no IO.
//!
//! - [`format`]: header formats in logparser's `log_format` syntax.
//! - [`miner`]: an online, deterministic template miner (Drain family) with generic masks.
//! - [`loghub`]: the Loghub parsing metrics (GA, PA, FGA, FTA), a port of `loghub_eval.py`.
//! - [`sessions`]: session (sequence) anomaly detection learned from normal sessions.

pub mod format;
pub mod loghub;
pub mod miner;
pub mod sessions;

pub use format::LogFormat;
pub use miner::{Match, Miner, MinerConfig};
