//! The `auspex` binary: argument parsing and glue. All logic lives in the library crates.

use std::process::ExitCode;

mod bench;
mod cli;
mod client;
mod detect;
mod loadgen;
mod logs;
mod serve;

#[global_allocator]
static ALLOC: auspex_core::alloc::Counting = auspex_core::alloc::Counting;

/// Milliseconds since the epoch (the load generator's start time).
pub fn serve_time_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn main() -> ExitCode {
    cli::main()
}
