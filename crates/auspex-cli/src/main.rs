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

#[global_allocator]
static ALLOC: auspex_core::alloc::Counting = auspex_core::alloc::Counting;

fn main() -> ExitCode {
    cli::main()
}
