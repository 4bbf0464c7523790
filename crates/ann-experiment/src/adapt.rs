//! New teams after training (`ann adapt`): team construction for a new task whose prompt sees
//! trained networks (their layers, teams, prompts and validation scores) as a library, written with
//! its provenance: which trained networks were shown and which of their layers were reused.
//!
//! The target is a benchmark (its task description, answer format, training inputs and starting
//! network as the fallback) or a task file ([`TaskFile`]: description, answer format, example
//! inputs; the fallback is the `direct` baseline's one-agent network for it). The result passes the
//! format gate with the target's answer-format rule, so a benchmark's can be trained further with
//! `ann train --network FILE`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use ann_graph::{Layer, LibraryNetwork, Network};
use anyhow::{Context, bail};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::baselines::Baseline;
use crate::config::ExperimentConfig;
use crate::construct::{ConstructionRecord, Constructor, construct_for};
use crate::run::RunOptions;

/// A new task given as a file (TOML): what it asks, its answer-format rule, a few example inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// What is asked and in which answer format (becomes the network's `task_description`).
    pub task_description: String,
    /// The answer-format rule the last layer's `output_spec` must contain.
    pub answer_format: String,
    /// Example inputs shown to the construction prompt.
    #[serde(default)]
    pub examples: Vec<String>,
}

impl TaskFile {
    /// Read a task file; errors name the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let task: Self = toml::from_str(&text).with_context(|| format!("{}: invalid task file", path.display()))?;
        if task.task_description.trim().is_empty() || task.answer_format.trim().is_empty() {
            bail!("{}: `task_description` and `answer_format` must not be empty", path.display());
        }
        Ok(task)
    }
}

/// A task file as a benchmark without an evaluator: what construction and the format gate need.
struct TaskBenchmark {
    name: String,
    task: TaskFile,
    train: Vec<Example>,
    starting: String,
}

impl TaskBenchmark {
    fn new(name: String, task: TaskFile) -> anyhow::Result<Self> {
        let direct = Baseline::Direct
            .fixed_network(&task.task_description, &task.answer_format)
            .context("the direct baseline's network")?;
        let train = task
            .examples
            .iter()
            .enumerate()
            .map(|(i, input)| Example {
                id: format!("task/{i}"),
                input: input.clone(),
                reference: None,
                metadata: BTreeMap::new(),
            })
            .collect();
        Ok(Self { name, task, train, starting: direct.to_json() })
    }
}

#[async_trait]
impl Benchmark for TaskBenchmark {
    fn name(&self) -> &str {
        &self.name
    }
    fn task_description(&self) -> &str {
        &self.task.task_description
    }
    fn answer_format(&self) -> &str {
        &self.task.answer_format
    }
    fn examples(&self, split: Split) -> &[Example] {
        if split == Split::Train { &self.train } else { &[] }
    }
    fn extract_answer(&self, _output: &str) -> Option<String> {
        None
    }
    fn starting_network(&self) -> &str {
        &self.starting
    }
    async fn evaluate(&self, example: &Example, _output: &str) -> Result<Evaluation, EvalError> {
        Err(EvalError::Config(format!("a task file has no evaluator (example {})", example.id)))
    }
}

/// What `ann adapt` builds a network for.
#[derive(Debug, Clone, PartialEq)]
pub enum AdaptTarget {
    /// The benchmark of the config (`--benchmark NAME` sets its name).
    Benchmark,
    /// A task file.
    Task(PathBuf),
}

/// How a constructed layer relates to the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reuse {
    /// Equal to a library layer in every field.
    Identical,
    /// A library layer's id, or one of its agents' prompts verbatim, with other changes.
    Adapted,
    /// Nothing taken from the library.
    New,
}

impl Reuse {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identical => "identical",
            Self::Adapted => "adapted",
            Self::New => "new",
        }
    }
}

/// Where one layer of the adapted network came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerProvenance {
    pub layer: String,
    pub reuse: Reuse,
    /// The library network (its name) and layer it came from; `None` for a new layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_layer: Option<String>,
}

/// The provenance of an adapted network, written beside it as `<name>.provenance.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// The benchmark's name, or the task file's path.
    pub target: String,
    /// The trained networks shown: their run directories and validation scores.
    pub from: Vec<LibrarySource>,
    /// Per layer of the written network, in order.
    pub layers: Vec<LayerProvenance>,
    /// The construction itself (attempts, errors, fallback, transcript).
    pub construction: ConstructionRecord,
}

/// One trained network of the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibrarySource {
    pub name: String,
    pub run_dir: PathBuf,
    pub validation: Option<f64>,
}

/// How each layer of `network` relates to the library's layers: identical to one, adapted from
/// one (same id, or an agent prompt copied verbatim), or new. The first match in library order
/// wins; an identical layer anywhere beats an adapted one.
pub fn layer_provenance(network: &Network, library: &[LibraryNetwork]) -> Vec<LayerProvenance> {
    let layers = || library.iter().flat_map(|n| n.network.layers.iter().map(move |l| (n.name.as_str(), l)));
    let shares_prompt = |a: &Layer, b: &Layer| a.agents.iter().any(|x| b.agents.iter().any(|y| x.prompt == y.prompt));
    network
        .layers
        .iter()
        .map(|layer| {
            let found = layers().find(|(_, l)| *l == layer).map(|(n, l)| (Reuse::Identical, n, l)).or_else(|| {
                layers().find(|(_, l)| l.id == layer.id || shares_prompt(l, layer)).map(|(n, l)| (Reuse::Adapted, n, l))
            });
            match found {
                Some((reuse, name, from)) => LayerProvenance {
                    layer: layer.id.clone(),
                    reuse,
                    from_network: Some(name.to_string()),
                    from_layer: Some(from.id.clone()),
                },
                None => {
                    LayerProvenance { layer: layer.id.clone(), reuse: Reuse::New, from_network: None, from_layer: None }
                }
            }
        })
        .collect()
}

/// `ann adapt`: construct a network for `target` with the trained networks of `from` as the
/// library, write it to `out` and its [`Provenance`] beside it ([`provenance_path`]).
pub async fn adapt_to_file(
    config: &ExperimentConfig,
    from: &[PathBuf],
    target: &AdaptTarget,
    out: &Path,
    options: &RunOptions,
) -> anyhow::Result<Provenance> {
    if from.is_empty() {
        bail!("`ann adapt` needs at least one trained run directory (--from RUN_DIR)");
    }
    let library = crate::library::load_library(from)?;
    let mut config = config.clone();
    config.benchmark.network = None;
    config.baselines.clear();
    let mut options = options.clone();
    let target_name = match target {
        AdaptTarget::Benchmark => config.benchmark.name.clone(),
        AdaptTarget::Task(path) => {
            let task = TaskFile::load(path)?;
            let name = format!("task {}", path.display());
            options.benchmark = Some(Arc::new(TaskBenchmark::new(name.clone(), task)?));
            (config.benchmark.train, config.benchmark.validation, config.benchmark.test) = (None, None, None);
            name
        }
    };
    let prepared = crate::run::prepare(&config, &options).await?;
    options.say(&format!(
        "adapting: constructing a network for {target_name} with {} trained networks as a library",
        library.len()
    ));
    let sources = from
        .iter()
        .zip(&library)
        .map(|(dir, l)| LibrarySource { name: l.name.clone(), run_dir: dir.clone(), validation: l.validation })
        .collect();
    let constructor = Constructor::of(&config, &prepared);
    let construction = construct_for(prepared.benchmark.as_ref(), library.clone(), None, &constructor).await?;
    let layers = layer_provenance(&construction.network, &library);
    construction.network.save(out).with_context(|| format!("writing {}", out.display()))?;
    let provenance = Provenance { target: target_name, from: sources, layers, construction };
    let text = serde_json::to_string_pretty(&provenance)? + "\n";
    let path = provenance_path(out);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(provenance)
}

/// The provenance beside a written network: `net.json` → `net.provenance.json`.
pub fn provenance_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "network".into());
    out.with_file_name(format!("{stem}.provenance.json"))
}

impl Provenance {
    /// One line per layer for the user, after the construction's summary.
    pub fn summary(&self) -> String {
        let mut lines = vec![self.construction.summary()];
        for l in &self.layers {
            lines.push(match (&l.from_network, &l.from_layer) {
                (Some(n), Some(from)) => format!("  layer {}: {} from {n} layer {from}", l.layer, l.reuse.as_str()),
                _ => format!("  layer {}: new", l.layer),
            });
        }
        lines.join("\n")
    }
}
