//! `cargo xtask fetch-model`: the embedded SmolLM2 GGUF from its pinned wheel (filled in by issue 3).

use anyhow::Result;

#[derive(clap::Args, Default)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<()> {
    Ok(())
}
