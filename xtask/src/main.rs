//! `cargo xtask`: fetch the pinned model and data, run the whole test suite, reproduce experiments,
//! run the reliability campaign (`chaos`), the property-test fuzzers (`fuzz`) and the comparison
//! with other frameworks (`compare-peers`).

mod chaos;
mod compare_peers;
mod fetch_data;
mod fetch_model;
mod fuzz;
mod pip;
mod reproduce;
mod scrub;
mod vs_llama_cpp;

pub use scrub::scrub_package_env;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "agentic-nn project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fetch the embedded model and the datasets as needed, then run the whole test suite.
    Test {
        /// Extra arguments passed to `cargo test`.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Fetch the model and data as needed, then run the demo (`ann demo`, release build).
    Demo {
        /// Extra arguments passed to `ann demo`.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Fetch the embedded model as needed, then print its prefill and generation speed (release build).
    LocalSpeed {
        /// Side by side with llama.cpp on the same 8-bit file (builds llama.cpp: needs cmake, a C++
        /// compiler and libclang).
        #[arg(long)]
        vs_llama_cpp: bool,
        /// Threads each engine uses (with --vs-llama-cpp).
        #[arg(long, default_value_t = 2)]
        threads: u32,
        /// Extra arguments passed to the `speed` example (a GGUF path other than the pinned model).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Run the paper experiments (experiments/paper/) on an OpenAI-compatible endpoint and
    /// tabulate test scores, intervals and costs beside the paper's numbers.
    Reproduce(reproduce::Args),
    /// Fetch the embedded offline model (SmolLM2-135M-Instruct GGUF) into the cache.
    FetchModel(fetch_model::Args),
    /// Fetch the benchmark datasets into the cache as the project's JSONL.
    FetchData(fetch_data::Args),
    /// Run the reliability campaign against the fake OpenAI-compatible server on 127.0.0.1 and
    /// print what held (faults, SIGKILL/resume cycles, budget, shared cache, full disk, hostile
    /// replies); exit non-zero when something did not.
    Chaos(chaos::Args),
    /// Compare agentic-nn with a bare client, DSPy and TextGrad on one machine against one fake
    /// server on 127.0.0.1 (forward workload, one training step), or at scale (`--scale`); print
    /// the tables.
    ComparePeers(compare_peers::Args),
    /// Run the property tests (proptest, stable toolchain) of the parsers and loaders for a given
    /// time each, with new seeds and growing case counts; failures are saved as regressions.
    Fuzz(fuzz::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Test { args } => test(&args),
        Cmd::Demo { args } => demo(&args),
        Cmd::LocalSpeed { vs_llama_cpp: true, threads, args } => {
            vs_llama_cpp::run(threads, args.first().map(Path::new))
        }
        Cmd::LocalSpeed { args, .. } => local_speed(&args),
        Cmd::Reproduce(args) => reproduce::run(&args),
        Cmd::FetchModel(args) => fetch_model::run(&args),
        Cmd::FetchData(args) => fetch_data::run(&args),
        Cmd::Chaos(args) => chaos::run(&args),
        Cmd::Fuzz(args) => fuzz::run(&args),
        Cmd::ComparePeers(args) => compare_peers::run(&args),
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one folder below the workspace root")
        .to_path_buf()
}

/// The git-ignored download cache: `$ANN_CACHE_DIR`, else `<workspace>/.cache`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("ANN_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".cache"))
}

/// Run `cargo ARGS... EXTRA...` in the workspace root, failing unless it succeeds.
pub fn cargo(args: &[&str], extra: &[String]) -> Result<()> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    scrub_package_env(&mut command);
    let status = command
        .current_dir(workspace_root())
        .args(args)
        .args(extra)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Fetch the embedded model and the datasets as needed (both fetches are idempotent).
fn fetch_all() -> Result<()> {
    fetch_model::run(&fetch_model::Args::default()).context("fetching the embedded model")?;
    fetch_data::run(&fetch_data::Args::default()).context("fetching the datasets")
}

fn test(extra: &[String]) -> Result<()> {
    fetch_all()?;
    cargo(&["test", "--workspace", "--all-targets"], extra)?;
    // `--all-targets` leaves out doc tests: the examples in the docs are tests too.
    cargo(&["test", "--workspace", "--doc"], extra)
}

fn demo(extra: &[String]) -> Result<()> {
    fetch_all()?;
    // No --quiet: the first release build takes minutes, and cargo's progress is what shows it.
    eprintln!("building `ann` (release; the first build compiles for several minutes), then running `ann demo`");
    cargo(&["run", "--release", "-p", "ann-cli", "--", "demo"], extra)
}

fn local_speed(extra: &[String]) -> Result<()> {
    fetch_model::run(&fetch_model::Args::default()).context("fetching the embedded model")?;
    eprintln!("building the `speed` example (release), then running it");
    cargo(&["run", "--release", "-p", "ann-llm-local", "--example", "speed", "--"], extra)
}
