//! `cargo xtask demo`: fetch the embedded model and the data as needed, then run `ann demo` (release).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{fetch_data, fetch_model, workspace_root};

/// Fetch what the demo needs (both fetches are idempotent), then
/// `cargo run --release -p ann-cli -- demo <extra>` from the workspace root.
pub fn run(extra: &[String]) -> Result<()> {
    fetch_model::run(&fetch_model::Args::default()).context("fetching the embedded model")?;
    fetch_data::run(&fetch_data::Args::default()).context("fetching the datasets")?;
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace_root())
        .args(["run", "--release", "--quiet", "-p", "ann-cli", "--", "demo"])
        .args(extra)
        .status()
        .context("running `cargo run --release -p ann-cli -- demo`")?;
    if !status.success() {
        bail!("the demo failed ({status})");
    }
    Ok(())
}
