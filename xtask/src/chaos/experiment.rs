//! The campaign's experiment: synthetic MMLU rows (right answer B, no download), the demo network,
//! a response cache, short timeouts; and the comparison of a run directory with the baseline's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The files of a finished run that must equal an uninterrupted run's, byte for byte.
pub const COMPARED: [&str; 7] = [
    "network-initial.json",
    "network-trained.json",
    "evaluations/validation-initial.jsonl",
    "evaluations/validation-trained.jsonl",
    "evaluations/test-initial.jsonl",
    "evaluations/test-trained.jsonl",
    "journal.jsonl",
];

/// MMLU's seeded split needs this many rows.
const ROWS: usize = 112;

/// A campaign home: synthetic data, the experiment file, `runs/`.
pub struct Home {
    pub dir: PathBuf,
    pub config: PathBuf,
}

/// Settings of one experiment file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The response cache (absolute: two processes may share one).
    pub cache: PathBuf,
    pub max_calls: Option<u64>,
    pub timeout_ms: u64,
}

/// Write the data and the experiment into `dir`.
pub fn home(dir: &Path, settings: &Settings) -> Result<Home> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let rows: String = (0..ROWS)
        .map(|i| {
            serde_json::json!({
                "question": format!("Synthetic question {i}: which choice is right?"),
                "type": "machine_learning",
                "choices": ["wrong", "right", "wrong too", "also wrong"],
                "answer": 1,
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(data.join("mmlu-ml.jsonl"), rows)?;
    let network = crate::workspace_root().join("experiments/demo-network.json");
    let budget = settings.max_calls.map(|n| format!("[budget]\nmax_calls = {n}\n")).unwrap_or_default();
    let config = dir.join("chaos.toml");
    let text = format!(
        "# Written by `cargo xtask chaos`.\nname = \"chaos\"\n\n[benchmark]\nname = \"mmlu-ml\"\ntrain = 6\n\
         validation = 4\ntest = 4\ndata_dir = {data:?}\nnetwork = {network:?}\n\n[model]\ntimeout_ms = {timeout}\n\
         connect_timeout_ms = 1000\n\n[model.retry]\nmax_attempts = 6\nbase_backoff_ms = 5\nmax_backoff_ms = 50\n\n\
         [cache]\npath = {cache:?}\nclaim_lease_ms = 1500\n\n{budget}\n[train]\nepochs = 2\nbatch_size = 2\nseed = 0\n\n\
         [forward]\nmax_parallel_calls = 4\nmax_parallel_inputs = 2\n",
        data = data.to_str().context("a UTF-8 path")?,
        network = network.to_str().context("a UTF-8 path")?,
        timeout = settings.timeout_ms,
        cache = settings.cache.to_str().context("a UTF-8 path")?,
    );
    std::fs::write(&config, text)?;
    Ok(Home { dir: dir.to_path_buf(), config })
}

/// The most calls in flight at once for this experiment (forward: calls × inputs), the window
/// of answers a SIGKILL can catch paid but not yet stored.
pub const IN_FLIGHT: usize = 8;

impl Home {
    /// The one run directory under `runs/`.
    pub fn run_dir(&self) -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.dir.join("runs"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs.pop()
    }

    pub fn train_args(&self) -> Vec<String> {
        vec!["train".into(), "--openai".into(), "--config".into(), self.config.display().to_string()]
    }
}

/// The phase a run directory shows: before the trainer's first checkpoint (initial validation and
/// the first batch), in training, or in the final evaluation (evaluation files written).
pub fn phase(run_dir: Option<&Path>) -> &'static str {
    let Some(dir) = run_dir else { return "setup" };
    if dir.join("report.json").is_file() {
        "report"
    } else if dir.join("evaluations").is_dir() {
        "final-evaluation"
    } else if dir.join("checkpoint.json").is_file() {
        "training"
    } else {
        "before-first-checkpoint"
    }
}

/// The compared files of a finished run, by name (a missing file is absent).
pub fn snapshot(run_dir: &Path) -> BTreeMap<&'static str, Vec<u8>> {
    COMPARED.iter().filter_map(|name| std::fs::read(run_dir.join(name)).ok().map(|bytes| (*name, bytes))).collect()
}

/// The names of the compared files that differ from the baseline's (missing ones included).
pub fn differing(baseline: &BTreeMap<&'static str, Vec<u8>>, run_dir: &Path) -> Vec<&'static str> {
    let got = snapshot(run_dir);
    COMPARED.iter().copied().filter(|name| baseline.get(name) != got.get(name)).collect()
}

/// Test and validation means of a finished run's `report.json`.
pub fn scores(run_dir: &Path) -> Result<BTreeMap<String, f64>> {
    let path = run_dir.join("report.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let mut scores = BTreeMap::new();
    for split in ["validation", "test"] {
        for which in ["initial", "trained"] {
            if let Some(mean) = report[split][which]["mean"].as_f64() {
                scores.insert(format!("{split}.{which}"), mean);
            }
        }
    }
    if scores.is_empty() {
        bail!("{} holds no scores", path.display());
    }
    Ok(scores)
}

/// Raise (or remove, with `None`) `[budget] max_calls` in a run directory's `config.toml`.
pub fn set_max_calls(run_dir: &Path, max_calls: Option<u64>) -> Result<()> {
    let path = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: toml::Table = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let budget = value.entry("budget").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let table = budget.as_table_mut().context("[budget] is a table")?;
    match max_calls {
        Some(n) => {
            table.insert("max_calls".into(), toml::Value::Integer(n as i64));
        }
        None => {
            table.remove("max_calls");
        }
    }
    std::fs::write(&path, toml::to_string(&value)?).with_context(|| format!("writing {}", path.display()))
}
