//! The campaign's scenarios but the SIGKILL cycles (`kills.rs`): baseline, repeat, faults with
//! hangs, budget stop and raised resume, two processes on one cache, full disk, hostile server.

use std::path::Path;

use anyhow::{Context, Result};

use super::experiment::{self, Home};
use super::procs::{Ann, Outcome, ServerSpec};
use super::table::Row;
use super::{Baseline, Campaign, count_requests, record};

/// Resumes after a stop before a scenario gives up.
const MAX_RESUMES: usize = 8;

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `ann train`, then `ann resume` while the run stops cleanly (non-zero exit, no panic).
pub fn train_to_the_end(ann: &Ann, home: &Home, row: &mut Row) -> Result<Outcome> {
    let mut outcome = ann.run(&args(&home.train_args()))?;
    record(row, &outcome);
    for _ in 0..MAX_RESUMES {
        if outcome.ok() || outcome.panicked() {
            break;
        }
        outcome = resume(ann, home, row)?;
    }
    Ok(outcome)
}

/// `ann resume` of the home's run.
pub fn resume(ann: &Ann, home: &Home, row: &mut Row) -> Result<Outcome> {
    let dir = home.run_dir().context("no run directory to resume")?;
    let outcome = ann.run(&["resume", dir.to_str().context("a UTF-8 path")?])?;
    record(row, &outcome);
    Ok(outcome)
}

/// Compare a finished run with the reference: files, scores (a change with exit 0 is silent).
pub fn compare(row: &mut Row, reference: &Baseline, home: &Home, outcome: &Outcome) {
    if !outcome.ok() {
        let last = outcome.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        row.problem(format!("the run did not finish (last exit {:?}): {last}", outcome.code));
    }
    let Some(dir) = home.run_dir() else {
        row.problem("no run directory");
        return;
    };
    let differ = experiment::differing(&reference.files, &dir);
    let equal = differ.is_empty();
    row.files_equal = Some(row.files_equal.unwrap_or(true) && equal);
    if !equal {
        row.problem(format!("differs from the reference: {}", differ.join(", ")));
    }
    if outcome.ok() {
        match experiment::scores(&dir) {
            Ok(scores) if scores == reference.scores => {}
            Ok(scores) => {
                row.silent_score_changes += 1;
                row.problem(format!("exit 0 with scores {scores:?}, reference {:?}", reference.scores));
            }
            Err(e) => {
                row.silent_score_changes += 1;
                row.problem(format!("exit 0 without scores: {e:#}"));
            }
        }
    }
}

/// One run with a well-behaved server, from `dir`; `None` when it did not finish.
fn reference_run(campaign: &Campaign, row: &mut Row, spec: &ServerSpec) -> Result<Option<Baseline>> {
    let dir = campaign.dir(&row.scenario)?;
    let home = experiment::home(&dir, &campaign.settings(&dir))?;
    let server = campaign.start_server(spec, &dir)?;
    let outcome = campaign.ann(&dir, &server.url).run(&args(&home.train_args()))?;
    let log = server.stop()?;
    record(row, &outcome);
    count_requests(row, &log, &[]);
    if !outcome.ok() {
        row.problem(format!("exit {:?}: {}", outcome.code, outcome.stderr.trim()));
        return Ok(None);
    }
    let run_dir = home.run_dir().context("the baseline's run directory")?;
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json"))?)?;
    if report["steps"]["accepted"].as_u64().unwrap_or(0) == 0 {
        row.problem("no step was accepted: the validation gate's acceptance is not exercised");
    }
    Ok(Some(Baseline {
        paid: row.paid,
        files: experiment::snapshot(&run_dir),
        scores: experiment::scores(&run_dir)?,
        log,
    }))
}

pub fn baseline(campaign: &Campaign) -> Result<(Option<Baseline>, Row)> {
    let mut row = Row::new("baseline", "none (learn mode: valid gradients and patches)");
    let baseline = reference_run(campaign, &mut row, &ServerSpec::learn(0))?;
    Ok((baseline, row))
}

/// The same run again: identical files and calls (what every comparison relies on).
pub fn repeat(campaign: &Campaign, baseline: &Baseline) -> Result<Row> {
    let mut row = Row::new("repeat", "none (a second uninterrupted run)");
    row.baseline = Some(baseline.paid);
    if let Some(again) = reference_run(campaign, &mut row, &ServerSpec::learn(0))? {
        let equal = again.files == baseline.files;
        row.files_equal = Some(equal);
        if again.scores != baseline.scores {
            row.silent_score_changes += 1;
        }
        if !equal {
            row.problem("two uninterrupted runs differ");
        }
    }
    if row.paid != baseline.paid {
        row.problem(format!("paid {} calls, the baseline {}", row.paid, baseline.paid));
    }
    Ok(row)
}

/// Faults at `rate` (429, 500, 503, malformed and cut-off bodies, hangs past the 1 s timeout).
pub fn faults(campaign: &Campaign, baseline: &Baseline, rate: f64) -> Result<Row> {
    let kinds = "429:0,500,503,malformed,cutoff,hang";
    let mut row = Row::new(&format!("faults {rate}"), format!("{rate} of requests: {kinds}; timeout 1 s"));
    row.baseline = Some(baseline.paid);
    let dir = campaign.dir("faults")?;
    let home = experiment::home(&dir, &campaign.settings(&dir))?;
    let spec = ServerSpec { fault_rate: rate, fault_kinds: kinds, seed: campaign.seed, ..ServerSpec::learn(0) };
    let server = campaign.start_server(&spec, &dir)?;
    let ann = campaign.ann(&dir, &server.url);
    let outcome = train_to_the_end(&ann, &home, &mut row)?;
    let log = server.stop()?;
    count_requests(&mut row, &log, &[]);
    compare(&mut row, baseline, &home, &outcome);
    paid_as_baseline(&mut row, baseline);
    Ok(row)
}

fn paid_as_baseline(row: &mut Row, baseline: &Baseline) {
    if row.paid != baseline.paid && row.duplicates == 0 && row.in_flight_repaid == 0 {
        row.problem(format!("paid {} calls, the baseline {}", row.paid, baseline.paid));
    }
}

/// A budget of half the baseline's calls: the run stops with a checkpoint; a resume with the
/// budget raised finishes it as the baseline.
pub fn budget(campaign: &Campaign, baseline: &Baseline) -> Result<Row> {
    let limit = (baseline.paid / 2).max(1);
    let mut row = Row::new("budget", format!("max_calls = {limit}, then raised"));
    row.baseline = Some(baseline.paid);
    let dir = campaign.dir("budget")?;
    let settings = experiment::Settings { max_calls: Some(limit), ..campaign.settings(&dir) };
    let home = experiment::home(&dir, &settings)?;
    let server = campaign.start_server(&ServerSpec::learn(0), &dir)?;
    let ann = campaign.ann(&dir, &server.url);
    let stopped = ann.run(&args(&home.train_args()))?;
    record(&mut row, &stopped);
    let run_dir = home.run_dir().context("the budget run's directory")?;
    if stopped.ok() {
        row.silent_score_changes += 1;
        row.problem("exit 0 under a budget of half the calls");
    } else if run_dir.join("report.json").exists() {
        row.problem("a report after a budget stop");
    }
    if !stopped.stderr.contains("ann resume") {
        row.problem("the budget stop gives no `ann resume` hint");
    }
    let paid_before = server.logged()?.iter().filter(|l| l.paid()).count() as u64;
    if paid_before > limit {
        row.problem(format!("{paid_before} calls paid under max_calls = {limit}"));
    }
    experiment::set_max_calls(&run_dir, None)?;
    let outcome = resume(&ann, &home, &mut row)?;
    let log = server.stop()?;
    count_requests(&mut row, &log, &[]);
    compare(&mut row, baseline, &home, &outcome);
    paid_as_baseline(&mut row, baseline);
    Ok(row)
}

/// Two `ann train` processes at once on one response cache: the calls are paid once between them.
pub fn two_processes(campaign: &Campaign, baseline: &Baseline) -> Result<Row> {
    let mut row = Row::new("two processes", "2 runs at once on one cache file");
    row.baseline = Some(baseline.paid);
    let dir = campaign.dir("two")?;
    let settings = campaign.settings(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a)?;
    std::fs::create_dir_all(&b)?;
    let (home_a, home_b) = (experiment::home(&a, &settings)?, experiment::home(&b, &settings)?);
    let server = campaign.start_server(&ServerSpec::learn(5), &dir)?;
    let (ann_a, ann_b) = (campaign.ann(&a, &server.url), campaign.ann(&b, &server.url));
    let child_a = ann_a.spawn(&args(&home_a.train_args()))?;
    let child_b = ann_b.spawn(&args(&home_b.train_args()))?;
    let waiter = std::thread::spawn(move || super::procs::finish(child_b, |_| false));
    let out_a = super::procs::finish(child_a, |_| false)?;
    let out_b = waiter.join().map_err(|_| anyhow::anyhow!("the waiting thread panicked"))??;
    let log = server.stop()?;
    for (home, outcome) in [(&home_a, &out_a), (&home_b, &out_b)] {
        record(&mut row, outcome);
        compare(&mut row, baseline, home, outcome);
    }
    count_requests(&mut row, &log, &[]);
    paid_as_baseline(&mut row, baseline);
    Ok(row)
}

/// Files past a size limit cannot be written (RLIMIT_FSIZE on the `ann` child through `ulimit -f`,
/// SIGXFSZ ignored, so writes fail with EFBIG as on a full disk): the run must stop with a
/// checkpoint and a message, never score; a resume without the limit finishes it.
pub fn full_disk(campaign: &Campaign, baseline: &Baseline) -> Result<Row> {
    let blocks = 128; // 64 KiB: the response cache outgrows it mid-run
    let mut row = Row::new("full disk", format!("RLIMIT_FSIZE {} KiB on ann (ulimit -f)", blocks / 2));
    row.baseline = Some(baseline.paid);
    let dir = campaign.dir("disk")?;
    let home = experiment::home(&dir, &campaign.settings(&dir))?;
    let server = campaign.start_server(&ServerSpec::learn(0), &dir)?;
    let mut ann = campaign.ann(&dir, &server.url);
    ann.file_size_blocks = Some(blocks);
    let stopped = ann.run(&args(&home.train_args()))?;
    record(&mut row, &stopped);
    if stopped.ok() {
        row.problem("exit 0 although files could not grow past 64 KiB");
    }
    if let Some(run_dir) = home.run_dir() {
        no_zeros(&mut row, baseline, &run_dir);
    }
    ann.file_size_blocks = None;
    let outcome = resume(&ann, &home, &mut row)?;
    let log = server.stop()?;
    count_requests(&mut row, &log, &[]);
    compare(&mut row, baseline, &home, &outcome);
    paid_as_baseline(&mut row, baseline);
    Ok(row)
}

/// A stopped run's report and evaluations, if any, are the baseline's (no zeros were scored).
fn no_zeros(row: &mut Row, baseline: &Baseline, run_dir: &Path) {
    if run_dir.join("report.json").exists() && row.exits.last().is_none_or(|e| e != "0") {
        row.problem("a report although the run failed");
    }
    for (name, bytes) in experiment::snapshot(run_dir) {
        if name.starts_with("evaluations/") && baseline.files.get(name) != Some(&bytes) {
            row.silent_score_changes += 1;
            row.problem(format!("{name} written by the stopped run differs from the baseline's"));
        }
    }
}

/// A hostile server: no panic, every stop clean, and two runs against it give the same files.
pub fn hostile(campaign: &Campaign, rate: f64) -> Result<Row> {
    let mut row = Row::new(
        "hostile",
        format!(
            "{rate} of replies: huge, nested, almost-JSON, unknown ids, over limits, empty/null, no choices, absurd usage, oversize"
        ),
    );
    let spec = ServerSpec { mode: "hostile", hostile_rate: rate, seed: campaign.seed, ..ServerSpec::learn(0) };
    let mut finished = Vec::new();
    for name in ["hostile-a", "hostile-b"] {
        let dir = campaign.dir(name)?;
        let home = experiment::home(&dir, &campaign.settings(&dir))?;
        let server = campaign.start_server(&spec, &dir)?;
        let outcome = train_to_the_end(&campaign.ann(&dir, &server.url), &home, &mut row)?;
        let log = server.stop()?;
        count_requests(&mut row, &log, &[]);
        let hostile = log.iter().filter(|l| l.hostility.is_some()).count();
        if hostile == 0 {
            row.problem("no hostile reply was sent");
        }
        if !outcome.ok() {
            row.problem(format!("{name} did not finish: {}", outcome.stderr.lines().last().unwrap_or("")));
        }
        finished.push(home);
    }
    if let (Some(a), Some(b)) = (finished[0].run_dir(), finished[1].run_dir()) {
        let reference = experiment::snapshot(&a);
        let mut differ = experiment::differing(&reference, &b);
        // Absurd usage saturates the cost totals, so the journal's per-step costs depend on where a
        // run stopped and resumed; the rest of the journal must still be equal.
        if differ == ["journal.jsonl"] && journal_without_costs(&a)? == journal_without_costs(&b)? {
            differ.clear();
            row.notes.push("the journals differ only in per-step costs (absurd usage saturates the totals)".into());
        }
        row.files_equal = Some(differ.is_empty());
        if !differ.is_empty() {
            row.problem(format!("two hostile runs differ: {}", differ.join(", ")));
        }
        if let (Ok(sa), Ok(sb)) = (experiment::scores(&a), experiment::scores(&b))
            && sa != sb
        {
            row.silent_score_changes += 1;
        }
    }
    Ok(row)
}

/// A run's journal lines with every `cost` field removed.
fn journal_without_costs(run_dir: &Path) -> Result<Vec<serde_json::Value>> {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("cost");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(run_dir.join("journal.jsonl")).context("reading a journal")?;
    text.lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).context("a journal line")?;
            strip(&mut value);
            Ok(value)
        })
        .collect()
}
