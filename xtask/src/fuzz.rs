//! `cargo xtask fuzz`: run the property tests (`tests/fuzz.rs` of the parsing crates, proptest on
//! the stable toolchain) for a given time each, round after round with new seeds and more cases.
//! A failure is shrunk by proptest and its seed saved beside the test file
//! (`tests/fuzz.proptest-regressions`, to commit: every later run replays it first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Options of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Run only this target (repeatable); `--list` shows them.
    #[arg(long)]
    pub target: Vec<String>,
    /// Print the targets and exit.
    #[arg(long)]
    pub list: bool,
    /// Seed of the first round (each round adds one).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Every target: (property test name, package, what it fuzzes).
pub const TARGETS: [(&str, &str, &str); 17] = [
    ("network_json", "ann-graph", "network loader, JSON (round trip)"),
    ("network_yaml", "ann-graph", "network loader, YAML (round trip)"),
    ("routing_answer", "ann-graph", "routing answer parser"),
    ("patch_parser", "ann-textgrad", "patch parser (round trip)"),
    ("loss_answer", "ann-textgrad", "loss answer parser"),
    ("global_gradient", "ann-textgrad", "global gradient parser (blame within 0..=1, known layers)"),
    ("local_gradient", "ann-textgrad", "local gradient parser"),
    ("experiment_config", "ann-experiment", "experiment config loader (round trip)"),
    ("experiment_overrides", "ann-experiment", "`--set` overrides"),
    ("math_answer_extraction", "ann-bench-math", "MATH boxed/answer extraction, normalization"),
    ("math_equivalence", "ann-bench-math", "MATH equivalence (symmetric, bounded)"),
    ("math_boxed_round_trip", "ann-bench-math", "MATH boxed answer read back"),
    ("mmlu_letter", "ann-bench-mmlu-ml", "MMLU letter extraction"),
    ("humaneval_code", "ann-bench-humaneval", "HumanEval code extraction"),
    ("humaneval_fenced_function", "ann-bench-humaneval", "HumanEval fenced function found"),
    ("creative_writing", "ann-bench-creative-writing", "creative writing, judge, Trivia, DABench parsing"),
    ("creative_writing_structure", "ann-bench-creative-writing", "a well-formed passage passes"),
];

/// The most cases one round runs.
const MAX_CASES: u64 = 200_000;

/// Build the `fuzz` test binaries of `packages`; returns each package's executable.
fn build(packages: &[&str]) -> Result<BTreeMap<String, PathBuf>> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    crate::scrub_package_env(&mut command);
    command.current_dir(crate::workspace_root()).args(["test", "--no-run", "--message-format=json"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let out = command
        .args(["--test", "fuzz"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("building the property tests")?;
    if !out.status.success() {
        bail!("building the property tests failed");
    }
    let mut executables = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(id), Some(exe)) = (message["package_id"].as_str(), message["executable"].as_str()) else {
            continue;
        };
        if message["target"]["name"] != "fuzz" {
            continue;
        }
        if let Some(package) = packages.iter().find(|p| id.contains(&format!("/crates/{p}#"))) {
            executables.insert(package.to_string(), PathBuf::from(exe));
        }
    }
    for package in packages {
        if !executables.contains_key(*package) {
            bail!("no `fuzz` test binary was built for {package}");
        }
    }
    Ok(executables)
}

/// One round: the property `name` with `cases` cases from `seed`, in the package's folder (as
/// `cargo test` runs it, so that regressions are saved beside the test file).
fn round(exe: &Path, package: &str, name: &str, cases: u64, seed: u64) -> Result<std::process::Output> {
    Command::new(exe)
        .current_dir(crate::workspace_root().join("crates").join(package))
        .args(["--exact", name, "--quiet"])
        .env("PROPTEST_CASES", cases.to_string())
        .env("PROPTEST_RNG_SEED", seed.to_string())
        .output()
        .with_context(|| format!("running the property test {name}"))
}

pub fn run(args: &Args) -> Result<()> {
    if args.list {
        for (name, package, what) in TARGETS {
            println!("{name:28} {package:28} {what}");
        }
        return Ok(());
    }
    let targets: Vec<_> = if args.target.is_empty() {
        TARGETS.to_vec()
    } else {
        let mut chosen = Vec::new();
        for wanted in &args.target {
            match TARGETS.iter().find(|(name, ..)| name == wanted) {
                Some(t) => chosen.push(*t),
                None => bail!("unknown fuzz target `{wanted}` (cargo xtask fuzz --list)"),
            }
        }
        chosen
    };
    // Build every test binary once, so that the time per target is spent fuzzing.
    let mut packages: Vec<&str> = targets.iter().map(|(_, package, _)| *package).collect();
    packages.dedup();
    let executables = build(&packages)?;

    let budget = Duration::from_secs(args.seconds);
    let mut failed = Vec::new();
    println!("| target | rounds | cases | seconds | result |\n|---|---|---|---|---|");
    for (name, package, _) in targets {
        let started = Instant::now();
        let (mut rounds, mut total, mut cases, mut seed) = (0u64, 0u64, 256u64, args.seed);
        let mut result = "ok".to_string();
        while started.elapsed() < budget {
            let round_started = Instant::now();
            let out = round(&executables[package], package, name, cases, seed)?;
            rounds += 1;
            if !out.status.success() {
                eprintln!("{}", String::from_utf8_lossy(&out.stdout));
                eprintln!("{}", String::from_utf8_lossy(&out.stderr));
                result = format!("FAILED at seed {seed} (see crates/{package}/tests/fuzz.proptest-regressions)");
                failed.push(name);
                break;
            }
            total += cases;
            seed += 1;
            // Grow the rounds while they are short next to the time left.
            let left = budget.saturating_sub(started.elapsed());
            if round_started.elapsed() * 4 < left {
                cases = (cases * 2).min(MAX_CASES);
            }
        }
        println!("| {name} | {rounds} | {total} | {:.0} | {result} |", started.elapsed().as_secs_f64());
    }
    if !failed.is_empty() {
        bail!("property failures: {}", failed.join(", "));
    }
    Ok(())
}
