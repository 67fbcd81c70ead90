//! Store traits (the API boundary between Auspex and its databases) and their SQLite
//! implementation. This is the only crate that knows SQL.
//!
//! Every backend runs the same conformance suite: [`store_conformance_tests!`] instantiates
//! it for a constructor expression.

use std::future::Future;

use auspex_core::{Labels, SeriesId, Signal, TimestampMs};

pub mod conformance;
mod group;
pub mod incidents;
pub mod sqlite;
mod sqlite_tracking;
pub mod tracking;

pub use group::GroupCommit;
pub use incidents::IncidentStore;
pub use sqlite::SqliteStore;
pub use tracking::{RegistryStore, TrackingStore, ViewType};

/// A store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(String),
    /// The record does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A record with that key exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is not valid for the stored state.
    #[error("{0}")]
    Invalid(String),
    /// A stored record could not be read back.
    #[error("corrupt record {id}: {why}")]
    Corrupt {
        /// The record.
        id: String,
        /// What was wrong.
        why: String,
    },
}

/// A series as the server knows it, with its model snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRecord {
    /// Its id (hash of the labels).
    pub id: SeriesId,
    /// Its labels, including `__name__`.
    pub labels: Labels,
    /// Timestamp of its first sample.
    pub first_seen: TimestampMs,
    /// Timestamp of its latest sample.
    pub last_seen: TimestampMs,
    /// Samples ingested.
    pub samples: u64,
    /// Anomaly score of the latest sample.
    pub last_score: f64,
    /// Evicted from memory for being idle.
    pub idle: bool,
    /// Detector snapshot (`None` when listed without state).
    pub state: Option<Vec<u8>>,
}

/// Where signals and series live. Implementations must make a write durable before the
/// returned future resolves: callers rely on it ("durable before visible").
pub trait Store: Clone + Send + Sync + 'static {
    /// Inserts signals, or updates them by id (a later `end` or a higher `score` wins).
    fn put_signals(
        &self,
        signals: &[Signal],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Signals that started at or after `since`, or are still open, newest first, at most
    /// `limit`.
    fn list_signals(
        &self,
        since: TimestampMs,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Signal>, StoreError>> + Send;

    /// Inserts or replaces series records (with their state when given; a `None` state keeps
    /// the stored one).
    fn put_series(
        &self,
        records: &[SeriesRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// All series, with state, for start-up.
    fn load_series(&self) -> impl Future<Output = Result<Vec<SeriesRecord>, StoreError>> + Send;

    /// Series without state, most recently seen first, at most `limit`.
    fn list_series(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SeriesRecord>, StoreError>> + Send;

    /// Deletes closed signals last written (wall clock) before `before`; returns how many.
    fn delete_signals_before(
        &self,
        before: TimestampMs,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
