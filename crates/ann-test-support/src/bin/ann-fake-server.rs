//! `ann-fake-server`: run the fake OpenAI-compatible server on 127.0.0.1 for manual checks,
//! benchmarks and fault-injection runs.
//!
//! Prints `listening on http://127.0.0.1:PORT/v1` on its first line, then serves until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use ann_test_support::server::{FakeServer, FakeServerConfig, Fault};
use anyhow::{Context, Result};
use clap::Parser;

/// A fake OpenAI-compatible chat completions server with deterministic replies and fault injection.
#[derive(Debug, Parser)]
#[command(name = "ann-fake-server", version)]
struct Cli {
    /// Port on 127.0.0.1 (0 picks a free one; the chosen URL is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction (0..=1) of requests that get a fault drawn from --fault-kinds.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Faults drawn by --fault-rate, comma-separated (default: 429:1,500,503,malformed,cutoff).
    #[arg(long, value_delimiter = ',')]
    fault_kinds: Vec<Fault>,
    /// Seed of the fault draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// File of scripted answers for the first requests, one per line (ok, 429, 429:SECS,
    /// 429:date+SECS, 500, 503, hang, malformed, cutoff; `#` starts a comment).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Model name the replies report (default: the requested one).
    #[arg(long)]
    model: Option<String>,
    /// Leave `usage` out of replies.
    #[arg(long)]
    no_usage: bool,
    /// Answers to the first requests that offer tools, comma-separated (call, text, bad-arguments,
    /// not-an-object, unknown-tool); later ones get a well-formed call.
    #[arg(long, value_delimiter = ',')]
    tool_script: Vec<ann_test_support::tool_calls::ToolReply>,
}

fn read_script(path: &PathBuf) -> Result<Vec<Fault>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading script {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| line.parse::<Fault>().map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!((0.0..=1.0).contains(&cli.fault_rate), "--fault-rate must be within 0..=1");
    let script = match &cli.script {
        Some(path) => read_script(path)?,
        None => Vec::new(),
    };
    let config = FakeServerConfig {
        port: cli.port,
        latency: Duration::from_millis(cli.latency_ms),
        fault_rate: cli.fault_rate,
        rate_faults: cli.fault_kinds,
        seed: cli.seed,
        script,
        reply: None,
        omit_usage: cli.no_usage,
        model: cli.model,
        tool_script: cli.tool_script,
    };
    let server = FakeServer::start(config).await.context("binding 127.0.0.1")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", server.url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("served {} requests", server.request_count());
    server.shutdown().await;
    Ok(())
}
