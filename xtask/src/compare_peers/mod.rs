//! `cargo xtask compare-peers`: agentic-nn side by side with a bare client, DSPy and TextGrad on
//! one machine, in one run, against one fake OpenAI-compatible server on 127.0.0.1 per latency
//! (`ann-fake-server --mode learn`) that every framework uses in turn.
//!
//! The workload (the peers' forward workload): per question 3 solver calls at once, an aggregator
//! call, a formatter call; 5 requests per question, the count checked against the server's.
//! Sequential and `16` questions in flight, at 0 and 50 ms latency, 3 repetitions interleaved;
//! plus one training step of agentic-nn against TextGrad's backward step. agentic-nn and the bare
//! client run in `peer-workload` (package `benches`, release build); DSPy and TextGrad in
//! `xtask/peers/workload.py` in a virtual environment under `target/peers/` with pinned versions
//! from PyPI. `--quick` (CI): 20 questions, no Python peers, the dev build. `--scale`: 2,000 and
//! 20,000 questions, 256 in flight, 50 ms. Every child is stopped by its id; each workload process
//! is killed past a deadline.

mod procs;
mod python;
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use procs::Server;
use table::{Framework, Sample, Setting};

/// Options of `cargo xtask compare-peers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The small form for CI: 20 questions, one repetition, no Python peers, the dev build.
    #[arg(long)]
    pub quick: bool,
    /// The scale run: 2,000 and 20,000 questions, 256 in flight, 50 ms (agentic-nn and the bare client).
    #[arg(long, conflicts_with = "quick")]
    pub scale: bool,
    /// Questions per forward run (default 200; 20 with --quick).
    #[arg(long)]
    pub questions: Option<usize>,
    /// Repetitions, interleaved (default 3; 1 with --quick or --scale).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Leave out DSPy and TextGrad (no Python environment is made).
    #[arg(long)]
    pub no_python: bool,
    /// Seconds any one workload process may run before it is killed.
    #[arg(long, default_value_t = 600)]
    pub deadline_s: u64,
}

/// Questions of the training step's batch.
const TRAIN_BATCH: usize = 4;

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let release = !args.quick;
    let (workload, server_bin) = build(release)?;
    let python = if args.quick || args.scale || args.no_python { None } else { Some(python::Env::ensure()?) };
    let work = tempfile::Builder::new().prefix("compare-peers-").tempdir().context("a scratch folder")?;
    let runner = Runner {
        workload,
        python,
        work: work.path().to_path_buf(),
        deadline: Duration::from_secs(args.deadline_s),
        next: std::cell::Cell::new(0),
    };
    let out = if args.scale { scale(&runner, &server_bin)? } else { compare(args, &runner, &server_bin)? };
    println!("{out}");
    println!(
        "(`cargo xtask compare-peers{}`, {} build, {} CPUs, load average at the end {}; {:.0} s)",
        if args.quick {
            " --quick"
        } else if args.scale {
            " --scale"
        } else {
            ""
        },
        if release { "release" } else { "dev" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The forward comparison (and the training step): the tables.
fn compare(args: &Args, runner: &Runner, server_bin: &Path) -> Result<String> {
    let questions = args.questions.unwrap_or(if args.quick { 20 } else { 200 });
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 });
    let latencies: &[u64] = if args.quick { &[0, 10] } else { &[0, 50] };
    let in_flights: &[usize] = if args.quick { &[1, 4] } else { &[1, 16] };
    let mut frameworks = vec![Framework::Ann, Framework::AnnNoCache, Framework::AnnNoLedger, Framework::Bare];
    if runner.python.is_some() {
        frameworks.extend([Framework::Dspy, Framework::TextGrad]);
    }
    let servers: Vec<(u64, Server)> =
        latencies.iter().map(|&l| Ok((l, Server::start(server_bin, l)?))).collect::<Result<_>>()?;
    let mut forward = Vec::new();
    let mut train = Vec::new();
    for rep in 0..reps {
        for (latency_ms, server) in &servers {
            for &in_flight in in_flights {
                for &framework in &frameworks {
                    let setting = Setting { latency_ms: *latency_ms, in_flight, framework };
                    eprintln!(
                        "[compare-peers] rep {}/{reps}: {} at {latency_ms} ms, {in_flight} in flight",
                        rep + 1,
                        framework.label()
                    );
                    forward.push(runner.sample(server, setting, questions, None)?);
                }
            }
            for framework in [Framework::Ann, Framework::TextGrad] {
                if framework == Framework::TextGrad && runner.python.is_none() {
                    continue;
                }
                let setting = Setting { latency_ms: *latency_ms, in_flight: TRAIN_BATCH, framework };
                eprintln!("[compare-peers] rep {}/{reps}: training step of {}", rep + 1, framework.label());
                train.push(runner.sample(server, setting, TRAIN_BATCH, Some(TRAIN_BATCH))?);
            }
        }
    }
    let mut out = format!(
        "Forward workload: {questions} questions x 5 requests (3 solvers at once -> aggregator -> formatter), \
         medians of {reps} interleaved repetition(s); ideal = ceil(questions / in flight) x 3 x latency.\n\n"
    );
    out.push_str(&table::render(&table::rows(&forward)));
    out.push_str(&format!(
        "\nOne training step on {TRAIN_BATCH} questions (forward, loss, backward, optimiser step; agentic-nn: \
         evaluate -> loss -> backward -> step, TextGrad: forward -> TextLoss -> backward -> TGD step):\n\n"
    ));
    out.push_str(&table::render_train(&table::rows(&train)));
    if let Some(python) = &runner.python {
        out.push_str(&format!("\nPython peers: {}\n", python.versions));
    }
    Ok(out)
}

/// `--scale`: 256 in flight at 50 ms, 2,000 and 20,000 questions; wall time against the ideal
/// and peak RSS.
fn scale(runner: &Runner, server_bin: &Path) -> Result<String> {
    let mut samples = Vec::new();
    for questions in [2_000, 20_000] {
        for framework in [Framework::Ann, Framework::AnnNoCache, Framework::AnnNoLedger, Framework::Bare] {
            // A fresh server per run: the server's memory is not the client's.
            let server = Server::start(server_bin, 50)?;
            let setting = Setting { latency_ms: 50, in_flight: 256, framework };
            eprintln!("[compare-peers] scale: {} with {questions} questions", framework.label());
            samples.push(runner.sample(&server, setting, questions, None)?);
        }
    }
    let rows = table::rows(&samples);
    let mut out = String::from("Scale: 256 questions in flight, 50 ms latency, 5 requests per question.\n\n");
    out.push_str(
        "| framework | questions | requests | wall s | ideal s | wall / ideal | peak RSS MiB | client CPU ms/req |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for framework in [Framework::Ann, Framework::AnnNoCache, Framework::AnnNoLedger, Framework::Bare] {
        for r in rows.iter().filter(|r| r.setting.framework == framework) {
            out.push_str(&format!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.3} | {:.0} | {:.3} |\n",
                framework.label(),
                r.questions,
                r.requests,
                r.wall_s,
                r.ideal_s,
                r.wall_s / r.ideal_s,
                r.max_rss_mib,
                r.cpu_per_request_ms
            ));
        }
    }
    Ok(out)
}

/// How workload processes are started.
struct Runner {
    workload: PathBuf,
    python: Option<python::Env>,
    work: PathBuf,
    deadline: Duration,
    next: std::cell::Cell<usize>,
}

impl Runner {
    /// Run one workload process against `server` and check its request count against the server's.
    fn sample(&self, server: &Server, setting: Setting, questions: usize, train: Option<usize>) -> Result<Sample> {
        let n = self.next.get();
        self.next.set(n + 1);
        let dir = self.work.join(format!("{n:03}"));
        std::fs::create_dir_all(&dir)?;
        let mut command = match setting.framework {
            Framework::Ann | Framework::AnnNoCache | Framework::AnnNoLedger | Framework::Bare => {
                let mut c = Command::new(&self.workload);
                let stack = match setting.framework {
                    Framework::Ann => "ann",
                    Framework::AnnNoCache => "ann-no-cache",
                    Framework::AnnNoLedger => "ann-no-ledger",
                    _ => "bare",
                };
                c.args(["--stack", stack]);
                c
            }
            Framework::Dspy | Framework::TextGrad => {
                let python = self.python.as_ref().context("the Python peers need their environment")?;
                python.command(if setting.framework == Framework::Dspy { "dspy" } else { "textgrad" })
            }
        };
        command
            .args(["--url", &server.url, "--questions", &questions.to_string()])
            .args(["--in-flight", &setting.in_flight.to_string()])
            .arg("--dir")
            .arg(&dir)
            .current_dir(&dir)
            .env("ANN_OPENAI_BASE_URL", &server.url)
            .env("ANN_OPENAI_MODEL", "peer-model")
            .env("ANN_OPENAI_API_KEY", "sk-peers-0000")
            .env("OPENAI_API_KEY", "sk-peers-0000")
            .env("RUST_LOG", "warn")
            // Loopback only: no proxy, no downloads at import (litellm's price list), caches in `dir`.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("HOME", &dir)
            .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
            .env("DSPY_CACHEDIR", dir.join("dspy-cache"));
        if let Some(batch) = train {
            command.args(["--train-step", &batch.to_string()]);
        }
        let before = server.count()?;
        let measured = procs::measure(command, self.deadline).with_context(|| {
            format!("{} at {} ms, {} in flight", setting.framework.label(), setting.latency_ms, setting.in_flight)
        })?;
        let served = server.count()? - before;
        let r = &measured.reported;
        if served != r.requests + r.warmup_requests || (train.is_none() && r.requests != 5 * questions as u64) {
            bail!(
                "{}: the server answered {served} requests, the client reports {} + {} for its warm-up ({} + 5 expected)",
                setting.framework.label(),
                r.requests,
                r.warmup_requests,
                5 * questions
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(Sample { setting, questions, startup_s: measured.startup_s, reported: measured.reported })
    }
}

/// Build the workload and the fake server (one cargo invocation: one feature resolution, so
/// repeated runs rebuild nothing); their paths.
fn build(release: bool) -> Result<(PathBuf, PathBuf)> {
    let mut args = vec!["build", "--quiet", "-p", "benches", "-p", "ann-test-support"];
    args.extend(["--bin", "peer-workload", "--bin", "ann-fake-server"]);
    if release {
        args.push("--release");
    }
    crate::cargo(&args, &[])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
        .join(if release { "release" } else { "debug" });
    Ok((target.join("peer-workload"), target.join("ann-fake-server")))
}
