//! The reproduction table: one row per benchmark and method from the runs' `report.json`, with
//! the paper's number where one exists, as Markdown (`table.md`) and JSON (`table.json`).
//!
//! A report is read as JSON values (xtask does not link the framework): the fields used are
//! `benchmark`, `model`, `test.{initial,trained,paired}`, `baselines[]` and `costs`, as
//! `ann_experiment::Report` writes them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::plan::{Experiment, Reference};

/// How one experiment ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub experiment: Experiment,
    /// Its run directory, if `ann` got as far as creating one.
    pub run_dir: Option<PathBuf>,
    /// `None` when it finished; else why not (exit status or error).
    pub failure: Option<String>,
}

/// What the table says about the reproduction as a whole.
#[derive(Debug, Clone)]
pub struct Meta {
    /// UTC time the reproduction started (RFC 3339).
    pub started_at: String,
    /// `openai` (the endpoint of the environment) or `local` (the embedded model).
    pub backend: String,
    /// `live`, `record` or `replay`.
    pub mode: String,
    /// The cassette recorded or replayed.
    pub cassette: Option<PathBuf>,
    pub limit: Option<usize>,
    pub overrides: Vec<String>,
    pub experiments_dir: PathBuf,
}

/// The method name of the trained network's row.
pub const TRAINED: &str = "ANN (trained)";

/// Build the table (as JSON) from the outcomes' reports and the reference numbers.
pub fn build(outcomes: &[Outcome], reference: &Reference, meta: &Meta) -> Result<Value> {
    let mut rows = Vec::new();
    let mut experiments = Vec::new();
    let mut benchmarks = Vec::new();
    for outcome in outcomes {
        let e = &outcome.experiment;
        let report = match (&outcome.failure, &outcome.run_dir) {
            (None, Some(dir)) => Some(read_report(dir)?),
            _ => None,
        };
        experiments.push(json!({
            "name": e.name,
            "benchmark": e.benchmark,
            "config": e.file,
            "run_dir": outcome.run_dir,
            "status": if report.is_some() { "finished" } else { "failed" },
            "failure": outcome.failure,
        }));
        if !benchmarks.contains(&e.benchmark) {
            benchmarks.push(e.benchmark.clone());
        }
        if let Some(report) = report {
            rows.extend(rows_of(e, &report, reference));
        }
    }
    let notes: serde_json::Map<String, Value> = benchmarks
        .iter()
        .map(|b| {
            let note = match reference.benchmarks.get(b) {
                Some(r) => json!({
                    "paper_name": r.paper_name,
                    "metric": r.metric,
                    "mapping": r.mapping,
                    "best_prior_baseline": r.best_prior_baseline,
                    "ann": r.ann,
                }),
                None => json!({ "mapping": "not in reference.toml: no paper number" }),
            };
            (b.clone(), note)
        })
        .collect();
    let p = &reference.paper;
    Ok(json!({
        "started_at": meta.started_at,
        "backend": meta.backend,
        "mode": meta.mode,
        "cassette": meta.cassette,
        "limit": meta.limit,
        "overrides": meta.overrides,
        "experiments_dir": meta.experiments_dir,
        "paper": {
            "title": p.title,
            "authors": p.authors,
            "arxiv": p.arxiv,
            "year": p.year,
            "provenance": p.provenance,
            "model": p.model,
            "unit": p.unit,
        },
        "rows": rows,
        "paper_numbers": notes,
        "experiments": experiments,
    }))
}

fn read_report(run_dir: &Path) -> Result<Value> {
    let path = run_dir.join("report.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The rows of one finished experiment: its baselines in the config's order, the starting network
/// (when not among them), then the trained network.
fn rows_of(e: &Experiment, report: &Value, reference: &Reference) -> Vec<Value> {
    let model = report["model"].as_str().unwrap_or_default();
    let row = |method: &str, test: &Value, versus: &Value, cost: &Value, training: &Value, paper: Value| {
        json!({
            "benchmark": e.benchmark,
            "experiment": e.name,
            "method": method,
            "model": model,
            "test": test,
            "trained_minus_method": versus,
            "cost": cost,
            "training_cost": training,
            "paper": paper,
        })
    };
    let mut rows = Vec::new();
    let costs = &report["costs"];
    if let Some(a) = &e.ablation {
        let method = format!("ANN ({})", a.label);
        let (test, cost) = (&report["test"]["trained"], &costs["test_trained"]);
        rows.push(row(&method, test, &Value::Null, cost, &costs["training"], Value::Null));
        return rows;
    }
    let baselines = report["baselines"].as_array().cloned().unwrap_or_default();
    for b in &baselines {
        let name = b["baseline"].as_str().unwrap_or("?");
        rows.push(row(name, &b["test"], &b["trained_vs_baseline"], &b["cost"], &Value::Null, Value::Null));
    }
    if !baselines.iter().any(|b| b["baseline"] == "start") {
        let t = &report["test"];
        rows.push(row(
            "start",
            &t["initial"],
            &t["paired"],
            &report["costs"]["test_initial"],
            &Value::Null,
            Value::Null,
        ));
    }
    let paper = reference.benchmarks.get(&e.benchmark).and_then(|r| {
        r.ann_for(model)
            .or_else(|| r.ann_for(&reference.paper.model))
            .map(|(paper_model, value)| json!({ "value": value, "model": paper_model }))
    });
    rows.push(row(
        TRAINED,
        &report["test"]["trained"],
        &Value::Null,
        &costs["test_trained"],
        &costs["training"],
        paper.unwrap_or(Value::Null),
    ));
    rows
}

fn percent(summary: &Value) -> String {
    match (summary["mean"].as_f64(), summary["ci_low"].as_f64(), summary["ci_high"].as_f64()) {
        (Some(m), Some(lo), Some(hi)) => format!("{:.1} [{:.1}, {:.1}]", 100.0 * m, 100.0 * lo, 100.0 * hi),
        _ => "n/a".into(),
    }
}

fn points(paired: &Value) -> String {
    match (paired["difference"].as_f64(), paired["ci_low"].as_f64(), paired["ci_high"].as_f64()) {
        (Some(d), Some(lo), Some(hi)) => format!("{:+.1} [{:+.1}, {:+.1}]", 100.0 * d, 100.0 * lo, 100.0 * hi),
        _ => "-".into(),
    }
}

fn tokens(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

fn cost(c: &Value) -> String {
    if c.is_null() {
        return "-".into();
    }
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    format!(
        "{} calls, {} tokens, ${:.4}",
        n("calls"),
        tokens(n("prompt_tokens") + n("completion_tokens")),
        c["dollars"].as_f64().unwrap_or(0.0)
    )
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The table as one self-contained HTML page: ours beside the paper's numbers.
pub fn html(table: &Value) -> String {
    let text = |v: &Value| escape(v.as_str().unwrap_or(""));
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reproduction</title><style>\
         body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}th{background:#eee}\
         td.num{text-align:right}tr.ann{font-weight:bold}</style></head><body>\n",
    );
    let _ = writeln!(h, "<h1>Reproduction of the paper's experiments</h1>");
    let _ = writeln!(
        h,
        "<p>Started {}; backend {}; mode {}{}.</p>",
        text(&table["started_at"]),
        text(&table["backend"]),
        text(&table["mode"]),
        match table["limit"].as_u64() {
            Some(n) => format!("; at most {n} examples per split (not comparable to the paper's numbers)"),
            None => String::new(),
        }
    );
    h.push_str(
        "<table><tr><th>benchmark</th><th>method</th><th>test score % [CI]</th><th>n</th>\
         <th>ANN - method (points)</th><th>test cost</th><th>training cost</th><th>paper</th></tr>\n",
    );
    for row in table["rows"].as_array().into_iter().flatten() {
        let method = row["method"].as_str().unwrap_or("");
        let paper = match (row["paper"]["value"].as_f64(), row["paper"]["model"].as_str()) {
            (Some(v), Some(m)) => format!("{v:.1} ({})", escape(m)),
            _ => "-".into(),
        };
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{paper}</td></tr>",
            if method.starts_with("ANN") { " class=\"ann\"" } else { "" },
            text(&row["benchmark"]),
            escape(method),
            percent(&row["test"]),
            row["test"]["n"].as_u64().unwrap_or(0),
            points(&row["trained_minus_method"]),
            escape(&cost(&row["cost"])),
            escape(&cost(&row["training_cost"])),
        );
    }
    h.push_str("</table>\n");
    let paper = &table["paper"];
    let _ = writeln!(
        h,
        "<p>Paper: {}, “{}” (arXiv {}, {}). Its numbers are {}; treat them as approximate.</p>",
        text(&paper["authors"]),
        text(&paper["title"]),
        text(&paper["arxiv"]),
        paper["year"],
        text(&paper["provenance"])
    );
    h.push_str("</body></html>\n");
    h
}

/// The table as Markdown.
pub fn markdown(table: &Value) -> String {
    let mut md = String::new();
    let _ =
        writeln!(md, "# Reproduction of the paper's experiments ({})\n", table["started_at"].as_str().unwrap_or(""));
    let limit = match table["limit"].as_u64() {
        Some(n) => format!("at most {n} examples per split (a quick check: not comparable to the paper's numbers)"),
        None => "the experiments' full splits".into(),
    };
    let backend = match table["backend"].as_str() {
        Some("local") => "the embedded offline model (a smoke check: the scores mean nothing)",
        _ => "the OpenAI-compatible endpoint of the environment",
    };
    let _ = writeln!(md, "- backend: {backend}; {limit}");
    if table["mode"] == "replay" {
        let _ = writeln!(
            md,
            "- replayed from the cassette `{}`: every answer came from it, no call was made",
            table["cassette"].as_str().unwrap_or("")
        );
    }
    if let Some(o) = table["overrides"].as_array().filter(|o| !o.is_empty()) {
        let list: Vec<String> = o.iter().filter_map(Value::as_str).map(|s| format!("`{s}`")).collect();
        let _ = writeln!(md, "- overrides: {}", list.join(", "));
    }
    let _ = writeln!(
        md,
        "- test scores in percent, mean [bootstrap interval] (seeded); `ANN - method`: paired bootstrap of the \
         trained network against the method on the same test examples, in points"
    );
    let _ = writeln!(
        md,
        "- cost: what the method spent answering the test split, and for the trained network what its training \
         spent, as the responses report it (a cache hit counts like the call it replays)\n"
    );
    let rows = table["rows"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut levels: Vec<String> =
        rows.iter().filter_map(|r| r["test"]["confidence"].as_f64()).map(|c| format!("{:.0}%", 100.0 * c)).collect();
    levels.sort();
    levels.dedup();
    let level = match levels.as_slice() {
        [] => "95%",
        [one] => one.as_str(),
        _ => "varying",
    };
    let _ = writeln!(
        md,
        "| benchmark | method | test score % [{level} CI] | n | ANN - method | test cost | training cost | paper |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for row in rows {
        let n = row["test"]["n"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "0".into());
        let paper = match (row["paper"]["value"].as_f64(), row["paper"]["model"].as_str()) {
            (Some(v), Some(m)) => format!("{v:.1} ({m})"),
            _ => "-".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(row["benchmark"].as_str().unwrap_or("")),
            cell(row["method"].as_str().unwrap_or("")),
            percent(&row["test"]),
            n,
            points(&row["trained_minus_method"]),
            cost(&row["cost"]),
            cost(&row["training_cost"]),
            paper
        );
    }
    let failed: Vec<&Value> =
        table["experiments"].as_array().into_iter().flatten().filter(|e| e["status"] == "failed").collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "\nNot finished (no rows above):");
        for e in failed {
            let _ = write!(md, "- `{}`: {}", e["name"].as_str().unwrap_or(""), e["failure"].as_str().unwrap_or(""));
            match e["run_dir"].as_str() {
                Some(dir) => {
                    let _ = writeln!(md, "; its run directory `{dir}` resumes with `ann resume {dir}`");
                }
                None => {
                    let _ = writeln!(md, "; no run directory was created");
                }
            }
        }
    }
    let paper = &table["paper"];
    let _ = writeln!(
        md,
        "\nPaper: {}, \"{}\" (arXiv {}, {}). Its numbers are {}; treat them as approximate.",
        paper["authors"].as_str().unwrap_or(""),
        paper["title"].as_str().unwrap_or(""),
        paper["arxiv"].as_str().unwrap_or(""),
        paper["year"],
        paper["provenance"].as_str().unwrap_or("")
    );
    for (benchmark, note) in table["paper_numbers"].as_object().into_iter().flatten() {
        let mut line = format!("- {benchmark}");
        if let Some(name) = note["paper_name"].as_str() {
            let _ = write!(line, " (paper: {name}, {})", note["metric"].as_str().unwrap_or(""));
        }
        let ann: Vec<String> = note["ann"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(model, v)| v.as_f64().map(|v| format!("{model} {v:.1}")))
            .collect();
        let mapping = note["mapping"].as_str().unwrap_or("");
        if ann.is_empty() {
            let _ = writeln!(md, "{line}: {mapping}.");
            continue;
        }
        let _ = write!(line, ": ANN {}", ann.join(", "));
        if let Some(best) = note["best_prior_baseline"].as_f64() {
            let _ = write!(line, "; best prior baseline {best:.1}");
        }
        let mut chars = mapping.chars();
        let mapping: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
        let _ = writeln!(md, "{line}. {mapping}.");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(mean: f64) -> Value {
        json!({ "n": 4, "mean": mean, "ci_low": mean - 0.25, "ci_high": mean + 0.25, "confidence": 0.95 })
    }

    fn reference() -> Reference {
        toml::from_str(
            &std::fs::read_to_string(crate::workspace_root().join("experiments/paper/reference.toml")).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn rows_follow_the_report_and_the_paper() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("humaneval.toml");
        std::fs::write(&file, "name = \"paper-humaneval\"\n[benchmark]\nname = \"humaneval\"\n").unwrap();
        let experiment = Experiment::load(&file, &[]).unwrap();
        let cost =
            json!({ "calls": 8, "errors": 0, "prompt_tokens": 1500, "completion_tokens": 500, "dollars": 0.0012 });
        let report = json!({
            "benchmark": "humaneval",
            "model": "gpt-4o-mini-2024-07-18",
            "test": { "initial": summary(0.5), "trained": summary(0.75), "paired": { "difference": 0.25, "ci_low": 0.0, "ci_high": 0.5 } },
            "baselines": [{ "baseline": "cot", "test": summary(0.25), "trained_vs_baseline": { "difference": 0.5, "ci_low": 0.25, "ci_high": 0.75 }, "cost": cost }],
            "costs": { "training": cost, "test_initial": cost, "test_trained": cost },
        });
        let run_dir = dir.path().join("paper-humaneval-20270101T000000Z");
        std::fs::create_dir(&run_dir).unwrap();
        std::fs::write(run_dir.join("report.json"), report.to_string()).unwrap();
        let failed = Experiment { name: "paper-math".into(), benchmark: "math".into(), ..experiment.clone() };
        let outcomes = [
            Outcome { experiment, run_dir: Some(run_dir), failure: None },
            Outcome { experiment: failed, run_dir: None, failure: Some("ann exited with status 1".into()) },
        ];
        let meta = Meta {
            started_at: "2027-01-01T00:00:00Z".into(),
            backend: "openai".into(),
            mode: "live".into(),
            cassette: None,
            limit: None,
            overrides: vec![],
            experiments_dir: dir.path().to_path_buf(),
        };
        let table = build(&outcomes, &reference(), &meta).unwrap();
        let methods: Vec<&str> =
            table["rows"].as_array().unwrap().iter().map(|r| r["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["cot", "start", TRAINED]);
        let trained = &table["rows"][2];
        assert_eq!(trained["paper"], json!({ "value": 93.9, "model": "gpt-4o-mini" }));
        assert_eq!(trained["training_cost"]["calls"], 8);
        assert_eq!(table["experiments"][1]["status"], "failed");

        let md = markdown(&table);
        assert!(md.contains("| humaneval | cot | 25.0 [0.0, 50.0] | 4 | +50.0 [+25.0, +75.0] | 8 calls, 2.0k tokens, $0.0012 | - | - |"), "{md}");
        assert!(md.contains("| humaneval | ANN (trained) | 75.0 [50.0, 100.0] | 4 | - |"), "{md}");
        assert!(md.contains("| 93.9 (gpt-4o-mini) |"), "{md}");
        assert!(md.contains("`paper-math`: ann exited with status 1; no run directory was created"), "{md}");
        assert!(md.contains("recovered from public summaries"), "{md}");
        assert!(md.contains("| test score % [95% CI] |"), "{md}");
        assert!(md.contains("- humaneval (paper: HumanEval, pass@1): ANN gpt-3.5 72.7, gpt-4 87.8, gpt-4o-mini 93.9; best prior baseline 85.8. Same benchmark"), "{md}");
        assert!(md.contains("- math (paper: MATH, accuracy): ANN gpt-4 80.0, gpt-4o-mini 82.5; best prior baseline 77.6. Same benchmark"), "{md}");

        let html = html(&table);
        assert!(
            html.contains(
                "<tr class=\"ann\"><td>humaneval</td><td>ANN (trained)</td><td class=\"num\">75.0 [50.0, 100.0]</td>"
            ),
            "{html}"
        );
        assert!(html.contains("<td class=\"num\">93.9 (gpt-4o-mini)</td></tr>"), "{html}");
        assert!(!html.contains("<script") && html.ends_with("</html>\n"));
    }
}
