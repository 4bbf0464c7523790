//! `ann-fake-server`: run the fake OpenAI-compatible server on 127.0.0.1 for manual checks,
//! benchmarks and fault-injection runs.
//!
//! Prints `listening on http://127.0.0.1:PORT/v1` on its first line, then serves until Ctrl-C.
//! `--mode learn` answers so that training learns (`ann_test_support::learning`), `--mode hostile`
//! adds hostile replies (`ann_test_support::hostile`); `--log FILE` appends one JSON line per
//! request (index, call kind, fault, hostility, sha256 of the body), as `cargo xtask chaos` reads.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ann_test_support::server::{FakeServer, FakeServerConfig, Fault, RecordedRequest};
use ann_test_support::{hostile, learning};
use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use sha2::{Digest, Sha256};

/// How replies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `echo: <hash> <excerpt>` (the default reply).
    Echo,
    /// Valid routing answers, losses, gradients and patches on which training learns.
    Learn,
    /// The `learn` replies with `--hostile-rate` of them hostile.
    Hostile,
}

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
    /// How replies are written.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    mode: Mode,
    /// `--mode hostile`: fraction (0..=1) of replies that are hostile (drawn with --seed).
    #[arg(long, default_value_t = 0.3)]
    hostile_rate: f64,
    /// Append one JSON line per request to this file.
    #[arg(long)]
    log: Option<PathBuf>,
}

/// One line of `--log`.
fn log_line(request: &RecordedRequest, cli: &Cli) -> String {
    let hostility = match cli.mode {
        Mode::Hostile if request.fault == Fault::None => {
            hostile::draw(cli.hostile_rate, cli.seed, &request.body, request.index).map(|h| h.name())
        }
        _ => None,
    };
    serde_json::json!({
        "index": request.index,
        "kind": learning::call_kind(&request.body).name(),
        "fault": request.fault.to_string(),
        "hostility": hostility,
        "sha256": hex::encode(Sha256::digest(request.raw_body.as_bytes())),
    })
    .to_string()
}

/// Append the log lines of the requests after the first `written`; returns the new count.
fn write_log(server: &FakeServer, cli: &Cli, out: &mut std::fs::File, written: usize) -> Result<usize> {
    if server.request_count() as usize == written {
        return Ok(written);
    }
    let requests = server.requests();
    for request in &requests[written.min(requests.len())..] {
        writeln!(out, "{}", log_line(request, cli))?;
    }
    out.flush()?;
    Ok(requests.len())
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
    anyhow::ensure!((0.0..=1.0).contains(&cli.hostile_rate), "--hostile-rate must be within 0..=1");
    let script = match &cli.script {
        Some(path) => read_script(path)?,
        None => Vec::new(),
    };
    let config = FakeServerConfig {
        port: cli.port,
        latency: Duration::from_millis(cli.latency_ms),
        fault_rate: cli.fault_rate,
        rate_faults: cli.fault_kinds.clone(),
        seed: cli.seed,
        script,
        reply: match cli.mode {
            Mode::Echo => None,
            Mode::Learn | Mode::Hostile => Some(Arc::new(learning::learning_reply)),
        },
        omit_usage: cli.no_usage,
        model: cli.model.clone(),
        reshape: (cli.mode == Mode::Hostile).then(|| hostile::hostile(cli.hostile_rate, cli.seed)),
    };
    let server = FakeServer::start(config).await.context("binding 127.0.0.1")?;
    // Listen for SIGINT before saying where the server listens: a client that reads that line and
    // stops the server at once must find the handler in place (else SIGINT would kill it unlogged).
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", server.url())?;
    out.flush()?;
    drop(out);
    match &cli.log {
        None => {
            interrupt.recv().await;
        }
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            let mut written = 0;
            loop {
                tokio::select! {
                    _ = interrupt.recv() => break,
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {
                        written = write_log(&server, &cli, &mut file, written)?;
                    }
                }
            }
            write_log(&server, &cli, &mut file, written)?;
        }
    }
    eprintln!("served {} requests", server.request_count());
    server.shutdown().await;
    Ok(())
}
