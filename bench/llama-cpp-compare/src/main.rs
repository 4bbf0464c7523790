//! Benchmark only: llama.cpp against the embedded engine on one GGUF file, each in its own process.
//!
//! `cargo xtask local-speed --vs-llama-cpp` builds this package (not a workspace member: the library
//! and CI never compile llama.cpp) and runs `llama-cpp-compare table`. That command
//! 1. converts the embedded model's file to 8-bit (Q8_0) weights with llama.cpp's quantizer, so both
//!    engines read the very same 8-bit file;
//! 2. runs our engine's measuring program (the `speed` example of `ann-llm-local`, `--json`) and this
//!    program's `llama` mode, each as a child process whose peak RSS comes from `wait4`'s rusage;
//! 3. checks that both saw the same prompts (token counts) and generated as many tokens, and prints
//!    the side-by-side table.

mod llama;
mod report;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

fn usage() -> ! {
    eprintln!(
        "usage:\n  llama-cpp-compare table --ours SPEED_BIN --model IN.gguf --work DIR [--threads N]\n  \
         llama-cpp-compare llama --model Q8.gguf --prompts FILE.json --threads N\n  \
         llama-cpp-compare quantize IN.gguf OUT.gguf"
    );
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else { usage() };
    let threads: i32 = flag(&args, "--threads").map(|t| t.parse()).transpose()?.unwrap_or(2);
    match mode.as_str() {
        "quantize" => {
            let (Some(input), Some(output)) = (args.get(1), args.get(2)) else { usage() };
            llama::quantize_q8(input.as_ref(), output.as_ref())
        }
        "llama" => {
            let model = flag(&args, "--model").unwrap_or_else(|| usage());
            let prompts = flag(&args, "--prompts").unwrap_or_else(|| usage());
            let text = std::fs::read_to_string(&prompts).with_context(|| format!("reading {prompts}"))?;
            let workload: report::Workload =
                serde_json::from_str(&text).with_context(|| format!("parsing {prompts}"))?;
            let measured = llama::measure(model.as_ref(), &workload, threads)?;
            println!("{}", serde_json::to_string(&measured)?);
            Ok(())
        }
        "table" => {
            let ours_bin = PathBuf::from(flag(&args, "--ours").unwrap_or_else(|| usage()));
            let input = PathBuf::from(flag(&args, "--model").unwrap_or_else(|| usage()));
            let work = PathBuf::from(flag(&args, "--work").unwrap_or_else(|| usage()));
            table(&ours_bin, &input, &work, threads)
        }
        _ => usage(),
    }
}

fn table(ours_bin: &std::path::Path, input: &std::path::Path, work: &std::path::Path, threads: i32) -> Result<()> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let stem = input.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let base = stem.split('.').next().unwrap_or(stem);
    let q8 = work.join(format!("{base}.Q8_0.gguf"));
    if !q8.is_file() {
        let me = std::env::current_exe()?;
        let status = Command::new(me).arg("quantize").arg(input).arg(&q8).status()?;
        if !status.success() {
            bail!("quantizing {} to {} failed ({status})", input.display(), q8.display());
        }
    }
    eprintln!("both engines read {}", q8.display());

    // Ours first: it renders the prompts (its chat template) and says how many tokens it saw. Its
    // settings before VNNI padding and batched decoding run too, for the before/after columns.
    let ours_run = |extra: Option<&str>| -> Result<(report::Measured, u64)> {
        let mut cmd = Command::new(ours_bin);
        cmd.arg("--json").args(extra).arg(&q8);
        cmd.env("CANDLE_NUM_THREADS", threads.to_string()).env("RAYON_NUM_THREADS", threads.to_string());
        let (stdout, rss) = report::run_child(cmd)?;
        Ok((report::last_json(&stdout).context("our engine's report")?, rss))
    };
    let (before, before_rss) = ours_run(Some("--baseline"))?;
    let (ours, ours_rss) = ours_run(None)?;

    let prompts = work.join("prompts.json");
    std::fs::write(&prompts, serde_json::to_string_pretty(&ours.workload)?)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("llama").arg("--model").arg(&q8).arg("--prompts").arg(&prompts).arg("--threads").arg(threads.to_string());
    let (stdout, llama_rss) = report::run_child(cmd)?;
    let theirs: report::Measured = report::last_json(&stdout).context("llama.cpp's report")?;

    report::check_counts(&ours, &theirs)?;
    report::check_counts(&before, &theirs)?;
    report::print_table([(&before, before_rss), (&ours, ours_rss), (&theirs, llama_rss)], threads);
    Ok(())
}
