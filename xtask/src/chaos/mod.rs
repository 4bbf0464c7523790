//! `cargo xtask chaos`: the reliability campaign as a command. It builds `ann` and the fake
//! OpenAI-compatible server (`ann-fake-server`), runs an uninterrupted baseline on 127.0.0.1 with
//! replies on which training learns, then injects faults and hangs, SIGKILLs at seeded moments
//! with resumes, a budget stop and a raised-budget resume, two processes on one cache, a full disk
//! (RLIMIT_FSIZE on the child) and a hostile server, and prints what held. Exit non-zero when
//! something did not hold.

mod experiment;
mod kills;
mod procs;
mod scenarios;
mod table;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use experiment::Settings;
use procs::{Ann, Logged, Server, ServerSpec};
use table::Row;

/// Options of `cargo xtask chaos`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The small form for CI: 3 SIGKILL cycles and one fault rate (about a minute).
    #[arg(long)]
    pub quick: bool,
    /// SIGKILL/resume cycles (default 31; 3 with --quick).
    #[arg(long)]
    pub cycles: Option<usize>,
    /// Seed of the kill moments, fault draws and hostile replies.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fault rates to inject (with hangs), comma-separated (default 0.3,0.5; 0.3 with --quick).
    #[arg(long, value_delimiter = ',')]
    pub fault_rates: Vec<f64>,
    /// Keep the campaign's folder (homes, run directories, server logs) and print its path.
    #[arg(long)]
    pub keep: bool,
}

/// What the scenarios share: the binaries, a scratch folder, the baseline.
pub struct Campaign {
    pub ann: PathBuf,
    pub server: PathBuf,
    pub work: tempfile::TempDir,
    pub seed: u64,
    next: std::cell::Cell<usize>,
}

/// The uninterrupted run every other run is compared with.
pub struct Baseline {
    pub paid: u64,
    pub files: std::collections::BTreeMap<&'static str, Vec<u8>>,
    pub scores: std::collections::BTreeMap<String, f64>,
    pub log: Vec<Logged>,
}

impl Campaign {
    /// A fresh folder `NAME-N` in the campaign's scratch folder.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let n = self.next.get();
        self.next.set(n + 1);
        let dir = self.work.path().join(format!("{n:02}-{name}"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Default experiment settings with the cache in `dir`.
    pub fn settings(&self, dir: &std::path::Path) -> Settings {
        Settings { cache: dir.join("responses.sqlite"), max_calls: None, timeout_ms: 1000 }
    }

    pub fn start_server(&self, spec: &ServerSpec, dir: &std::path::Path) -> Result<Server> {
        Server::start(&self.server, spec, &dir.join("server.jsonl"))
    }

    pub fn ann(&self, home: &std::path::Path, url: &str) -> Ann {
        Ann { bin: self.ann.clone(), home: home.to_path_buf(), url: url.to_string(), file_size_blocks: None }
    }
}

/// Build both binaries (debug profile) and return their paths.
fn build() -> Result<(PathBuf, PathBuf)> {
    crate::cargo(&["build", "--quiet", "-p", "ann-cli", "-p", "ann-test-support", "--bins"], &[])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    let debug = target.join("debug");
    let (ann, server) = (debug.join("ann"), debug.join("ann-fake-server"));
    for bin in [&ann, &server] {
        if !bin.is_file() {
            bail!("{} was not built", bin.display());
        }
    }
    Ok((ann, server))
}

pub fn run(args: &Args) -> Result<()> {
    let cycles = args.cycles.unwrap_or(if args.quick { 3 } else { 31 });
    let rates = if !args.fault_rates.is_empty() {
        args.fault_rates.clone()
    } else if args.quick {
        vec![0.3]
    } else {
        vec![0.3, 0.5]
    };
    if let Some(bad) = rates.iter().find(|r| !(0.0..=1.0).contains(*r)) {
        bail!("--fault-rates: {bad} is not within 0..=1");
    }
    let (ann, server) = build()?;
    let started = Instant::now();
    let work = tempfile::Builder::new().prefix("ann-chaos-").tempdir().context("a scratch folder")?;
    let campaign = Campaign { ann, server, work, seed: args.seed, next: std::cell::Cell::new(0) };

    let mut rows = Vec::new();
    let mut clock = Instant::now();
    let mut done = |rows: &mut Vec<Row>, row: Row| {
        eprintln!("chaos: {} done in {:.1} s (held: {})", row.scenario, clock.elapsed().as_secs_f64(), row.held());
        clock = Instant::now();
        rows.push(row);
    };
    let (baseline, row) = scenarios::baseline(&campaign)?;
    done(&mut rows, row);
    let Some(baseline) = baseline else {
        print!("{}", table::render(&rows));
        bail!("the baseline run failed: nothing to compare with");
    };
    done(&mut rows, scenarios::repeat(&campaign, &baseline)?);
    for rate in rates {
        done(&mut rows, scenarios::faults(&campaign, &baseline, rate)?);
    }
    done(&mut rows, kills::cycles(&campaign, &baseline, cycles)?);
    done(&mut rows, scenarios::budget(&campaign, &baseline)?);
    done(&mut rows, scenarios::two_processes(&campaign, &baseline)?);
    done(&mut rows, scenarios::full_disk(&campaign, &baseline)?);
    done(&mut rows, scenarios::hostile(&campaign, if args.quick { 0.3 } else { 0.5 })?);

    println!("\n## Chaos campaign (seed {}, {:.0} s)\n", args.seed, started.elapsed().as_secs_f64());
    print!("{}", table::render(&rows));
    if args.keep {
        let kept = campaign.work.keep();
        println!("\ncampaign folder kept: {}", kept.display());
    }
    let failed: Vec<&str> = rows.iter().filter(|r| !r.held()).map(|r| r.scenario.as_str()).collect();
    if !failed.is_empty() {
        bail!("did not hold: {}", failed.join(", "));
    }
    println!("\nEverything held.");
    Ok(())
}

/// Count the runs of `outcomes` into `row` (exits, panics).
fn record(row: &mut Row, outcome: &procs::Outcome) {
    row.exits.push(match (outcome.code, outcome.killed) {
        (_, true) => "kill".into(),
        (Some(code), false) => code.to_string(),
        (None, false) => "sig".into(),
    });
    if outcome.panicked() {
        row.panics += 1;
        let line = outcome.stderr.lines().find(|l| l.contains("panicked at")).unwrap_or("ended by a signal");
        row.problem(format!("panic: {line}"));
    }
}

/// Fill `row`'s request counts and duplicates from a server log; `kills` are the log lengths at
/// each SIGKILL (answers paid within [`experiment::IN_FLIGHT`] requests before one may be re-paid).
fn count_requests(row: &mut Row, log: &[Logged], kills: &[usize]) {
    row.sent += log.len() as u64;
    let mut first_paid: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (position, l) in log.iter().enumerate() {
        if !l.paid() {
            continue;
        }
        row.paid += 1;
        match first_paid.get(l.sha256.as_str()) {
            None => {
                first_paid.insert(&l.sha256, position);
            }
            Some(&first) => {
                let in_flight = kills.iter().any(|&k| first < k && first + experiment::IN_FLIGHT >= k && position >= k);
                if in_flight {
                    row.in_flight_repaid += 1;
                } else {
                    row.duplicates += 1;
                }
                first_paid.insert(&l.sha256, position);
            }
        }
    }
}
