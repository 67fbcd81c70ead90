//! Protocol decoders for Auspex's inputs. Pure: bytes in, validated records out; no HTTP, no IO.
//!
//! - [`remote_write`]: Prometheus remote-write 1.0 (snappy-compressed protobuf).

pub mod otlp;
pub mod remote_write;
