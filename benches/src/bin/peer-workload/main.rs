//! `peer-workload`: one framework's side of `cargo xtask compare-peers`, in its own process.
//!
//! The peers' forward workload: per question, 3 solver calls at once, then an aggregator call
//! over their answers, then a formatter call (5 requests, 3 in a row); `--in-flight` questions at
//! once. `--stack ann` builds the model stack the way `ann` does (through `ann-experiment`: the
//! response cache on, the run's budget ledger recorded in `--dir`), `ann-no-cache` the same with
//! `cache.mode = "off"`, `ann-no-ledger` the same without the run's budget ledger (`ann eval`
//! records none: it has no run directory), `bare` is a plain tokio + reqwest client; each on the runtime `ann`
//! runs on (tokio's current-thread runtime). `--train-step B` runs one training step instead
//! (forward of B questions, loss, backward, step; `ann` only).
//!
//! Prints `ready` once set up and warmed up by one question outside the workload (the caller
//! times the startup to that line), then one JSON line: requests sent, workload wall time, this
//! process's CPU time during the workload (getrusage), its peak RSS and the warm-up's requests.

mod ann;
mod bare;

use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

/// Which client runs the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stack {
    /// agentic-nn as `ann` stacks it: cache on, budget ledger on.
    Ann,
    /// agentic-nn with the response cache off (ledger still on).
    AnnNoCache,
    /// agentic-nn with the response cache off and no budget ledger (as `ann eval` runs).
    AnnNoLedger,
    /// A bare tokio + reqwest client.
    Bare,
}

#[derive(Debug, Parser)]
#[command(name = "peer-workload")]
struct Cli {
    #[arg(long, value_enum)]
    stack: Stack,
    /// The endpoint's base URL (`http://127.0.0.1:PORT/v1`).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 200)]
    questions: usize,
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// A fresh folder for the cache file and the budget ledger.
    #[arg(long)]
    dir: std::path::PathBuf,
    /// Run one training step on this many questions instead of the forward workload.
    #[arg(long)]
    train_step: Option<usize>,
    /// Also write each question's evaluation line and trace under `--dir` (`evaluations/test.jsonl`,
    /// `traces/test.jsonl`), as a run's test evaluation does (`ann` stacks only; `ann eval`, and so
    /// the comparison, writes none).
    #[arg(long)]
    record: bool,
}

/// The warm-up question's index (before `ready`: lazy set-up and first connections), outside
/// every workload's range.
pub const WARM_UP: usize = 1_000_000_000;

/// The `i`th question of the workload (every question distinct, so no request repeats).
pub fn question(i: usize) -> String {
    format!(
        "Question {i}: which choice is the sum of {i} and {}?\nA) {}\nB) {}\nC) {}\nD) {}",
        i % 7,
        i + i % 7,
        i + i % 7 + 1,
        i + i % 7 + 2,
        i + i % 7 + 3
    )
}

/// This process's user + system CPU seconds and peak RSS in KiB (getrusage).
fn rusage() -> (f64, i64) {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::time::TimeValLike;
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else { return (f64::NAN, 0) };
    let secs = |t: nix::sys::time::TimeVal| t.num_microseconds() as f64 / 1e6;
    (secs(usage.user_time()) + secs(usage.system_time()), usage.max_rss())
}

/// What the workload did, as the caller reads it.
#[derive(serde::Serialize)]
struct Outcome {
    requests: u64,
    /// Requests of the warm-up question before `ready`.
    warmup_requests: u64,
    wall_s: f64,
    cpu_s: f64,
    max_rss_kb: i64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.in_flight == 0 || cli.questions == 0 {
        bail!("--questions and --in-flight must be at least 1");
    }
    // The runtime `ann` runs on (one thread, `crates/ann-cli/src/main.rs`), for every stack: the
    // bare client is measured on the same runtime, so the comparison holds only what the framework adds.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let requests = match (cli.stack, cli.train_step) {
            (Stack::Bare, None) => {
                let client = bare::Client::new(&cli.url)?;
                bare::forward_one(&client, WARM_UP).await?;
                say_ready();
                let (started, cpu) = (Instant::now(), rusage().0);
                let n = bare::forward(&client, cli.questions, cli.in_flight).await?;
                (n, started.elapsed().as_secs_f64(), rusage().0 - cpu)
            }
            (Stack::Bare, Some(_)) => bail!("--train-step runs on --stack ann"),
            (stack, train_step) => {
                let (cache, ledger) = (stack == Stack::Ann, stack != Stack::AnnNoLedger);
                let setup = ann::Setup::open(&cli.url, &cli.dir, cache, ledger, cli.questions, cli.in_flight).await?;
                setup.warm_up().await?;
                say_ready();
                let (started, cpu) = (Instant::now(), rusage().0);
                let n = match train_step {
                    None => setup.forward(cli.record.then_some(cli.dir.as_path())).await?,
                    Some(batch) => setup.train_step(batch).await?,
                };
                (n, started.elapsed().as_secs_f64(), rusage().0 - cpu)
            }
        };
        let (requests, wall_s, cpu_s) = requests;
        let outcome = Outcome { requests, warmup_requests: 5, wall_s, cpu_s, max_rss_kb: rusage().1 };
        println!("{}", serde_json::to_string(&outcome)?);
        Ok(())
    })
}

fn say_ready() {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}
