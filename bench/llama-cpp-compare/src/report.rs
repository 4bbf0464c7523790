//! The measurement report both engines print (one JSON line), child processes, and the table.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The prompts, as our engine rendered them, and how many tokens each engine generates after them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workload {
    pub prompts: Vec<PromptCase>,
    /// Tokens generated after each prompt for the generation rate.
    pub generate: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptCase {
    /// `short` or `long`.
    pub name: String,
    /// The rendered chat prompt (special tokens written out).
    pub text: String,
    /// Prompt tokens as our engine counts them.
    pub tokens: usize,
}

/// One prompt's figures: the best of three rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rates {
    pub name: String,
    pub prompt_tokens: usize,
    pub prefill_tok_s: f64,
    pub generated_tokens: usize,
    pub generation_tok_s: f64,
}

/// Concurrent requests decoded together against the same requests one after another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Concurrency {
    pub requests: usize,
    pub tokens_each: usize,
    pub sequential_s: f64,
    pub concurrent_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub engine: String,
    pub load_s: f64,
    pub workload: Workload,
    pub rates: Vec<Rates>,
    pub concurrency: Option<Concurrency>,
}

/// Run `cmd` to the end, its stderr passed through; returns its stdout and its peak RSS in bytes
/// (`ru_maxrss` of this very child, from `wait4`).
pub fn run_child(mut cmd: Command) -> Result<(String, u64)> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().with_context(|| format!("starting {shown}"))?;
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("piped"), &mut stdout)?;
    let mut status = 0;
    // SAFETY: plain libc call on our own child's pid; rusage is a zeroed out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        bail!("waiting for {shown}: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{shown} failed (wait status {status})");
    }
    // The child is reaped: keep std from waiting on it again.
    std::mem::forget(child);
    Ok((stdout, usage.ru_maxrss as u64 * 1024))
}

/// The last line of `stdout` that parses as a report.
pub fn last_json(stdout: &str) -> Result<Measured> {
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).context("no JSON report line")?;
    serde_json::from_str(line).with_context(|| format!("parsing the report {line:?}"))
}

/// Same prompt token counts and as many generated tokens on both sides.
pub fn check_counts(ours: &Measured, theirs: &Measured) -> Result<()> {
    for (a, b) in ours.rates.iter().zip(&theirs.rates) {
        if a.name != b.name || a.prompt_tokens != b.prompt_tokens || a.generated_tokens != b.generated_tokens {
            bail!(
                "the engines did not run the same work: {} prompt {} tokens / {} generated (ours) against {} \
                 prompt {} tokens / {} generated (llama.cpp)",
                a.name,
                a.prompt_tokens,
                a.generated_tokens,
                b.name,
                b.prompt_tokens,
                b.generated_tokens
            );
        }
    }
    if ours.rates.len() != theirs.rates.len() {
        bail!("the engines measured {} and {} prompts", ours.rates.len(), theirs.rates.len());
    }
    Ok(())
}

/// Columns: ours before (VNNI padding and batched decoding off), ours, llama.cpp; ratios of ours to
/// llama.cpp (above 1 = ours better).
pub fn print_table(runs: [(&Measured, u64); 3], threads: i32) {
    let [(before, before_rss), (ours, ours_rss), (theirs, theirs_rss)] = runs;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("\nembedded engine against llama.cpp: same Q8_0 file, same prompts, {threads} threads, best of 3");
    println!("{:<34} {:>13} {:>13} {:>13} {:>7} {:>7}", "", "ours before", "ours", "llama.cpp", "before", "now");
    let row = |label: String, b: f64, o: f64, t: f64, unit: &str, higher_is_better: bool| {
        let ratio = |x: f64| if higher_is_better { x / t } else { t / x };
        println!(
            "{label:<34} {b:>9.1} {unit:<3} {o:>9.1} {unit:<3} {t:>9.1} {unit:<3} {:>6.2}x {:>6.2}x",
            ratio(b),
            ratio(o)
        );
    };
    let rates = before.rates.iter().zip(&ours.rates).zip(&theirs.rates);
    for ((b, o), t) in rates.clone() {
        let label = format!("prefill, {} prompt ({} tok)", o.name, o.prompt_tokens);
        row(label, b.prefill_tok_s, o.prefill_tok_s, t.prefill_tok_s, "t/s", true);
    }
    for ((b, o), t) in rates {
        let label = format!("generation after {} ({} tok)", o.name, o.generated_tokens);
        row(label, b.generation_tok_s, o.generation_tok_s, t.generation_tok_s, "t/s", true);
    }
    row("load".into(), before.load_s * 1e3, ours.load_s * 1e3, theirs.load_s * 1e3, "ms", false);
    row("peak memory (RSS)".into(), mib(before_rss), mib(ours_rss), mib(theirs_rss), "MiB", false);
    for (label, m) in [("before", before), ("now", ours)] {
        if let Some(c) = &m.concurrency {
            println!(
                "ours {label}: {} concurrent requests of {} tokens: {:.2} s together, {:.2} s one after another ({:.2}x)",
                c.requests,
                c.tokens_each,
                c.concurrent_s,
                c.sequential_s,
                c.sequential_s / c.concurrent_s
            );
        }
    }
    println!("(ratios: ours before / ours now relative to llama.cpp, above 1 = ours better)");
}
