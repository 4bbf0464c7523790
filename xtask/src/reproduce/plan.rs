//! The paper experiments as `cargo xtask reproduce` sees them: their TOML files (with the
//! command line's overrides), what each would run and spend, and the paper's reference numbers.
//!
//! xtask stays free of the framework's crates: an experiment is read as a plain TOML table here,
//! for display and selection only; `ann train` parses and checks it for real.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The override rule of `ann train --set`, compiled from ann-experiment's own file so that the dry
/// run shows exactly the values a run will use.
#[path = "../../../crates/ann-experiment/src/overrides.rs"]
mod overrides;
pub use overrides::apply_override;
use serde::Deserialize;

/// The file of reference numbers beside the experiment files.
pub const REFERENCE_FILE: &str = "reference.toml";

/// The folder of ablation files beside the experiment files.
pub const ABLATIONS_DIR: &str = "ablations";

/// What an ablation changes in the experiment it is run on.
#[derive(Debug, Clone, PartialEq)]
pub struct Ablation {
    /// What the ablation removes (`no momentum`): the table's method is `ANN (<label>)`.
    pub label: String,
    /// The switches it sets (`train.ablations.no_momentum=true`).
    pub switches: Vec<String>,
    /// The `--set` overrides `ann train` gets before the command line's: the ablation's name, no
    /// baselines, the switches.
    pub sets: Vec<String>,
}

/// An ablation file: a label, the experiment it ablates and the switches it sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AblationFile {
    ablation: String,
    /// The experiment file, relative to the ablation file.
    experiment: PathBuf,
    set: Vec<String>,
}

/// One experiment file.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub file: PathBuf,
    /// The file name without `.toml` (for the paper experiments, the benchmark name).
    pub stem: String,
    /// The experiment's `name` (its run directory is `<name>-<UTC time>`).
    pub name: String,
    pub benchmark: String,
    /// The file's table with the overrides applied.
    pub table: toml::Table,
    /// Set when this is an ablation of the experiment in `file`.
    pub ablation: Option<Ablation>,
}

/// The hard limits of an experiment's `[budget]` (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    pub max_dollars: Option<f64>,
    pub max_calls: Option<i64>,
    pub max_tokens: Option<i64>,
}

impl Experiment {
    /// Read `file` and apply `overrides` (`KEY=VALUE`, see [`apply_override`]).
    pub fn load(file: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}: invalid TOML", file.display()))?;
        for o in overrides {
            apply_override(&mut table, o).with_context(|| format!("override `{o}`"))?;
        }
        let text_of = |value: Option<&toml::Value>, key: &str| -> Result<String> {
            value
                .and_then(toml::Value::as_str)
                .map(String::from)
                .with_context(|| format!("{}: `{key}` must be a string", file.display()))
        };
        let name = text_of(table.get("name"), "name")?;
        let benchmark = text_of(table.get("benchmark").and_then(|b| b.get("name")), "benchmark.name")?;
        let stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        Ok(Self { file: file.to_path_buf(), stem, name, benchmark, table, ablation: None })
    }

    /// Read the ablation file `file`: its experiment with the ablation's switches, under the name
    /// `<experiment name>-<label as a slug>`, without baselines (the table compares the ablated
    /// method with the full one), then `overrides`.
    pub fn load_ablation(file: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let spec: AblationFile =
            toml::from_str(&text).with_context(|| format!("{}: invalid ablation file", file.display()))?;
        let joined = file.parent().unwrap_or(Path::new(".")).join(&spec.experiment);
        // `ablations/../mmlu-ml.toml` is shown (and run) as the experiment's own path.
        let base_file = std::fs::canonicalize(&joined).unwrap_or(joined);
        let base = Self::load(&base_file, &[]).with_context(|| format!("the experiment of {}", file.display()))?;
        let slug: String = spec.ablation.split_whitespace().collect::<Vec<_>>().join("-");
        let mut sets = vec![format!("name={}-{slug}", base.name), "baselines=[]".to_string()];
        sets.extend(spec.set.iter().cloned());
        let all: Vec<String> = sets.iter().chain(overrides).cloned().collect();
        let mut e = Self::load(&base_file, &all).with_context(|| format!("applying {}", file.display()))?;
        e.stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        e.ablation = Some(Ablation { label: spec.ablation, switches: spec.set, sets });
        Ok(e)
    }

    /// The `--set` overrides of `ann train` that this experiment adds to the command line's.
    pub fn sets(&self) -> &[String] {
        self.ablation.as_ref().map(|a| a.sets.as_slice()).unwrap_or_default()
    }

    fn get(&self, section: &str, key: &str) -> Option<&toml::Value> {
        self.table.get(section).and_then(|s| s.get(key))
    }

    /// Whether `--only NAME` selects this experiment (by file stem, name or benchmark).
    pub fn matches(&self, only: &str) -> bool {
        [&self.stem, &self.name, &self.benchmark].iter().any(|n| n.as_str() == only)
    }

    /// Train, validation and test sizes after `limit` (`None`: the whole split).
    pub fn sizes(&self, limit: Option<usize>) -> [Option<i64>; 3] {
        ["train", "validation", "test"].map(|key| {
            let size = self.get("benchmark", key).and_then(toml::Value::as_integer);
            match (size, limit) {
                (Some(s), Some(n)) => Some(s.min(n as i64)),
                (None, Some(n)) => Some(n as i64),
                (size, None) => size,
            }
        })
    }

    /// `[budget]`.
    pub fn budget(&self) -> Budget {
        let float =
            |key| self.get("budget", key).and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)));
        let int = |key| self.get("budget", key).and_then(toml::Value::as_integer);
        Budget { max_dollars: float("max_dollars"), max_calls: int("max_calls"), max_tokens: int("max_tokens") }
    }

    /// The `baselines` list, in order.
    pub fn baselines(&self) -> Vec<String> {
        let list = self.table.get("baselines").and_then(toml::Value::as_array);
        list.map(|l| l.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
    }

    /// `train.epochs` and `train.batch_size`, when the file sets them.
    pub fn epochs_and_batch(&self) -> (Option<i64>, Option<i64>) {
        let int = |key| self.get("train", key).and_then(toml::Value::as_integer);
        (int("epochs"), int("batch_size"))
    }

    /// `model.name`.
    pub fn model(&self) -> Option<&str> {
        self.get("model", "name").and_then(toml::Value::as_str)
    }
}

/// Every experiment file in `dir` (all `*.toml` but [`REFERENCE_FILE`]), sorted by file name.
pub fn load_experiments(dir: &Path, overrides: &[String]) -> Result<Vec<Experiment>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading the experiments folder {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    files.retain(|f| f.extension().is_some_and(|e| e == "toml") && !f.ends_with(REFERENCE_FILE));
    files.sort();
    if files.is_empty() {
        bail!("{} holds no experiment file (*.toml)", dir.display());
    }
    files.iter().map(|f| Experiment::load(f, overrides)).collect()
}

/// Every ablation file in `dir/ablations/` (sorted by file name), none when the folder is absent.
pub fn load_ablations(dir: &Path, overrides: &[String]) -> Result<Vec<Experiment>> {
    let dir = dir.join(ABLATIONS_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    files.retain(|f| f.extension().is_some_and(|e| e == "toml"));
    files.sort();
    files.iter().map(|f| Experiment::load_ablation(f, overrides)).collect()
}

/// The experiments `only` selects (all when empty), in file order; an unknown name is an error
/// listing the known ones.
pub fn select(all: &[Experiment], only: &[String]) -> Result<Vec<Experiment>> {
    for name in only {
        if !all.iter().any(|e| e.matches(name)) {
            let known: Vec<&str> = all.iter().map(|e| e.stem.as_str()).collect();
            bail!("no experiment `{name}`; known: {}", known.join(", "));
        }
    }
    Ok(all.iter().filter(|e| only.is_empty() || only.iter().any(|n| e.matches(n))).cloned().collect())
}

/// `reference.toml`: the paper's numbers and where they come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub paper: Paper,
    /// By this project's benchmark name.
    pub benchmarks: BTreeMap<String, BenchmarkReference>,
}

/// The paper and the provenance of its numbers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paper {
    pub title: String,
    pub authors: String,
    pub arxiv: String,
    pub year: u32,
    /// Where the numbers come from (they were recovered from public summaries).
    pub provenance: String,
    /// The paper's main model; its numbers stand in when a run used a model the paper did not.
    pub model: String,
    pub training_epochs: u32,
    /// The unit of every number (`percent`).
    pub unit: String,
}

/// One benchmark's numbers in the paper.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkReference {
    pub paper_name: String,
    pub metric: String,
    /// How the paper's benchmark relates to ours (or why there is no number).
    pub mapping: String,
    #[serde(default)]
    pub best_prior_baseline: Option<f64>,
    /// ANN's number by the model the paper ran it with (empty: no paper number).
    #[serde(default)]
    pub ann: BTreeMap<String, f64>,
}

impl Reference {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: invalid reference numbers", path.display()))
    }
}

impl BenchmarkReference {
    /// The paper's ANN number for `model`: an exact entry, or the longest entry the model's name
    /// extends with a `-` suffix (`gpt-4o-mini-2024-07-18` is `gpt-4o-mini`, `gpt-4o` is not `gpt-4`).
    pub fn ann_for(&self, model: &str) -> Option<(&str, f64)> {
        self.ann
            .iter()
            .filter(|(key, _)| model == key.as_str() || model.starts_with(&format!("{key}-")))
            .max_by_key(|(key, _)| key.len())
            .map(|(key, value)| (key.as_str(), *value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_number_follows_the_model_name() {
        let reference = BenchmarkReference {
            paper_name: "HumanEval".into(),
            metric: "pass@1".into(),
            mapping: String::new(),
            best_prior_baseline: None,
            ann: [("gpt-4", 87.8), ("gpt-4o-mini", 93.9)].map(|(k, v)| (k.to_string(), v)).into(),
        };
        assert_eq!(reference.ann_for("gpt-4o-mini"), Some(("gpt-4o-mini", 93.9)));
        assert_eq!(reference.ann_for("gpt-4o-mini-2024-07-18"), Some(("gpt-4o-mini", 93.9)));
        assert_eq!(reference.ann_for("gpt-4-0613"), Some(("gpt-4", 87.8)));
        assert_eq!(reference.ann_for("gpt-4o"), None);
        assert_eq!(reference.ann_for("llama-3"), None);
    }
}
