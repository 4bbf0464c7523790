//! `ann runs [DIR]`: the run directories under DIR (default `runs/` of the home folder) as a
//! table, oldest first: benchmark, status, scores, what each paid, date; `--json` for the same rows.

use std::path::{Path, PathBuf};

use ann_experiment::Report;
use ann_experiment::reexports::Checkpoint;
use anyhow::Context;
use clap::Args;
use serde::Serialize;

/// `ann runs`' arguments.
#[derive(Args)]
pub struct RunsArgs {
    /// The folder holding run directories (default: `runs/` in the home folder).
    pub dir: Option<PathBuf>,
}

/// The file `ann` writes in a run directory when the run stops before its report (why it
/// stopped); removed when the run finishes.
pub const STATUS_FILE: &str = "status.json";

/// A run's state, as `ann runs` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `report.json` is written.
    Finished,
    /// Stopped by Ctrl-C; `ann resume` continues it.
    Interrupted,
    /// Stopped by a hard budget limit; `ann resume` continues it once the budget is raised.
    Budget,
    /// Stopped by a failure (an endpoint down, bad input met during the run).
    Failed,
    /// No report and no recorded stop: still running, or its process was killed.
    Incomplete,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Finished => "finished",
            Status::Interrupted => "interrupted",
            Status::Budget => "budget",
            Status::Failed => "failed",
            Status::Incomplete => "incomplete",
        }
    }
}

/// One row of `ann runs` (`--json`: `{"runs_dir": ..., "runs": [Row, ...]}`).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The run directory's name (`<name>-<UTC time>`) and path.
    pub run: String,
    pub path: PathBuf,
    /// The benchmark (`null` when neither report nor config says).
    pub benchmark: Option<String>,
    pub status: Status,
    /// Mean test scores of the starting and the trained network (finished runs).
    pub test_initial: Option<f64>,
    pub test_trained: Option<f64>,
    /// The best validation score so far (the checkpoint's, or the report's trained one).
    pub validation: Option<f64>,
    /// What the run paid (every process of it): billable calls and dollars.
    pub calls: Option<u64>,
    pub dollars: Option<f64>,
    /// Calls answered by the response cache (finished runs).
    pub cache_hits: Option<u64>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: Option<String>,
}

/// Read one run directory (`None`: the folder is no run: it has no `config.toml`).
pub fn read_row(dir: &Path) -> anyhow::Result<Option<Row>> {
    if !dir.join(ann_experiment::run::CONFIG_FILE).is_file() {
        return Ok(None);
    }
    let run = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut row = Row {
        started_at: started_of(&run),
        run,
        path: dir.to_path_buf(),
        benchmark: None,
        status: Status::Incomplete,
        test_initial: None,
        test_trained: None,
        validation: None,
        calls: None,
        dollars: None,
        cache_hits: None,
    };
    let read = |name: &str| -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", dir.join(name).display())),
        }
    };
    if let Some(text) = read(ann_experiment::run::REPORT_JSON)? {
        let report: Report = serde_json::from_str(&text)
            .with_context(|| format!("reading {}", dir.join(ann_experiment::run::REPORT_JSON).display()))?;
        row.status = Status::Finished;
        row.benchmark = Some(report.benchmark);
        row.test_initial = report.test.initial.map(|s| s.mean);
        row.test_trained = report.test.trained.map(|s| s.mean);
        row.validation = report.validation.trained.map(|s| s.mean);
        row.calls = Some(report.budget_spent.calls);
        row.dollars = Some(report.budget_spent.dollars);
        row.cache_hits = Some(report.cost.cache_hits);
        row.started_at = Some(report.started_at);
        return Ok(Some(row));
    }
    if let Ok(config) = ann_experiment::ExperimentConfig::load(&dir.join(ann_experiment::run::CONFIG_FILE)) {
        row.benchmark = Some(config.benchmark.name);
    }
    if let Some(text) = read("checkpoint.json")?
        && let Ok(checkpoint) = serde_json::from_str::<Checkpoint>(&text)
    {
        row.validation = Some(checkpoint.val_best);
        row.calls = Some(checkpoint.cost.calls);
        row.dollars = Some(checkpoint.cost.dollars);
    }
    // The ledger counts every call the run paid, the final evaluation's too (its log while the
    // run is going, else the snapshot written when it stopped).
    if let Ok(Some(ledger)) = ann_experiment::read_ledger(dir) {
        row.calls = Some(ledger.spent.calls);
        row.dollars = Some(ledger.spent.dollars);
    }
    if let Some(text) = read(STATUS_FILE)?
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
    {
        row.status = match value["status"].as_str() {
            Some("interrupted") => Status::Interrupted,
            Some("budget") => Status::Budget,
            Some("ok") => Status::Incomplete,
            Some(_) => Status::Failed,
            None => Status::Incomplete,
        };
    }
    Ok(Some(row))
}

/// Write why the run in `dir` stopped (`status.json`: `status`, `exit_code`, `error`).
pub fn record_stop(dir: &Path, exit: crate::exit::Exit, error: &anyhow::Error) -> anyhow::Result<()> {
    if !dir.join(ann_experiment::run::CONFIG_FILE).is_file() {
        return Ok(());
    }
    let status = serde_json::json!({ "status": exit.name(), "exit_code": exit.code(), "error": format!("{error:#}") });
    let path = dir.join(STATUS_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&status)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Remove a finished run's `status.json` (left by an earlier stop).
pub fn clear_stop(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(dir.join(STATUS_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.join(STATUS_FILE).display()))
        }
        _ => Ok(()),
    }
}

/// `<name>-YYYYMMDDTHHMMSSZ` → `YYYY-MM-DDTHH:MM:SSZ`.
fn started_of(run: &str) -> Option<String> {
    let stamp = run.rsplit('-').next()?;
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !stamp[..8].bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    ))
}

/// Every run directory directly under `dir`, oldest first (then by name).
pub fn read_rows(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading the runs folder {}", dir.display()))?;
    let mut rows = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        if path.is_dir()
            && let Some(row) = read_row(&path)?
        {
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| (&a.started_at, &a.run).cmp(&(&b.started_at, &b.run)));
    Ok(rows)
}

fn score(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

/// The rows as an aligned text table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "RUN",
        "BENCHMARK",
        "STATUS",
        "TEST START",
        "TEST TRAINED",
        "VALIDATION",
        "COST",
        "CALLS",
        "CACHED",
        "STARTED",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        cells.push(vec![
            r.run.clone(),
            r.benchmark.clone().unwrap_or_else(|| "-".into()),
            r.status.word().into(),
            score(r.test_initial),
            score(r.test_trained),
            score(r.validation),
            r.dollars.map_or("-".into(), |d| format!("${d:.4}")),
            r.calls.map_or("-".into(), |c| c.to_string()),
            r.cache_hits.map_or("-".into(), |c| c.to_string()),
            r.started_at.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|i| cells.iter().map(|row| row[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `ann runs`.
pub fn run(args: &RunsArgs, home: &Path, json: bool) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => home.join("runs"),
    };
    let rows = read_rows(&dir).map_err(crate::exit::bad_input)?;
    if json {
        let out = serde_json::json!({ "runs_dir": dir, "runs": rows });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if rows.is_empty() {
        println!("no runs in {}", dir.display());
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_stamp_is_a_date() {
        assert_eq!(started_of("demo-20261125T215500Z").as_deref(), Some("2026-11-25T21:55:00Z"));
        assert_eq!(started_of("demo"), None);
        assert_eq!(started_of("x-2026112XT215500Z"), None);
    }
}
