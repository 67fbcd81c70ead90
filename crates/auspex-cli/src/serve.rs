//! `auspex serve`.

use std::process::ExitCode;

use anyhow::anyhow;
use auspex_server::Config;

use crate::cli::{CmdResult, Failure, ServeArgs};

pub fn run(a: &ServeArgs) -> CmdResult {
    let cfg = match &a.config {
        Some(p) => Config::load(p).map_err(|e| Failure::input(anyhow!("serve: {e}")))?,
        None => Config::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::input(anyhow!("serve: cannot start the runtime: {e}")))?;
    rt.block_on(auspex_server::serve(&a.listen, &a.data_dir, cfg))
        .map_err(|e| Failure::input(anyhow!("serve: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
