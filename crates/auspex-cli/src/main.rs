//! The `auspex` binary: argument parsing and glue. All logic lives in the library crates.

use std::process::ExitCode;

mod alertload;
mod bench;
mod cli;
mod client;
mod detect;
mod incidents;
mod loadgen;
mod logs;
mod models;
mod serve;
mod silences;

/// mimalloc: the server allocates and frees many small objects per request (parsed alerts,
/// labels, JSON), where glibc's allocator took a quarter of the intake's CPU time.
#[global_allocator]
static ALLOC: auspex_core::alloc::Counting<mimalloc::MiMalloc> =
    auspex_core::alloc::Counting(mimalloc::MiMalloc);

fn main() -> ExitCode {
    cli::main()
}
