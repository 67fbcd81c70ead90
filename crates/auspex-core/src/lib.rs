//! Auspex's data model, shared by every other crate.
//!
//! This crate does no IO and knows nothing about HTTP, SQL or async runtimes. Every type here
//! that derives `Serialize` is a wire or storage format: changing its shape is a versioned
//! change (see [`signal::SIGNAL_SCHEMA_VERSION`]).

pub mod alloc;
pub mod labels;
pub mod signal;
pub mod text;
pub mod time;

pub use labels::{LabelError, Labels, SeriesId};
pub use signal::{Explanation, Fingerprint, IncidentId, Signal, SignalId, SignalKind};
pub use time::{TimeError, TimestampMs};
