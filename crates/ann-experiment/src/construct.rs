//! Team construction in the workflow: `[benchmark] network = "construct"`, the `[construct]`
//! settings, the run's `construction.json`, and `ann construct` (a constructed network to a file).
//!
//! A run whose starting network is `"construct"` asks the model for one ([`ann_graph::construct_team`]):
//! the benchmark's task description and its first `k` training inputs (`[construct] examples`), the
//! network schema as the response format, the format gate on the answer (with the benchmark's
//! answer-format rule), bounded retries that show the model its errors, and the benchmark's own
//! starting network as the fallback. What happened is kept in the run directory as
//! `construction.json` ([`ConstructionRecord`]); a resumed run reads its network from there and
//! constructs nothing again.

use std::path::{Path, PathBuf};

use ann_eval::{Benchmark, Split};
use ann_graph::{
    LibraryNetwork, Network, TeamAttempt, TeamBrief, TeamConfig, TeamSource, ValidationRules, construct_team,
};
use ann_llm::{CallSettings, SharedModel, Usage};
use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::baselines::Baseline;
use crate::config::ExperimentConfig;
use crate::run::{Prepared, RunOptions, check_network_with};

/// The record of a run's team construction, in its run directory.
pub const CONSTRUCTION_FILE: &str = "construction.json";

/// Where a run's starting network comes from (`[benchmark] network`): a file (JSON or YAML), or
/// `"construct"`: team construction at the start of the run. (A file named `construct` is
/// written `./construct`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartNetwork {
    Construct,
    File(PathBuf),
}

/// The word that asks for team construction.
const CONSTRUCT: &str = "construct";

impl Serialize for StartNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Construct => serializer.serialize_str(CONSTRUCT),
            Self::File(path) => path.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for StartNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(if text == CONSTRUCT { Self::Construct } else { Self::File(PathBuf::from(text)) })
    }
}

/// `[construct]`: the settings of team construction (used when `network = "construct"`, by
/// `ann construct` and by `ann adapt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConstructSection {
    /// Training inputs shown to the decomposition prompt: the first `k` of the train split.
    pub examples: usize,
    /// Decomposition calls before falling back (the first answer plus retries), at least 1.
    pub max_attempts: u32,
    /// Temperature of the decomposition calls.
    pub temperature: f32,
    /// `max_tokens` of each decomposition call.
    pub max_tokens: Option<u32>,
}

impl Default for ConstructSection {
    fn default() -> Self {
        let team = TeamConfig::default();
        Self {
            examples: 3,
            max_attempts: team.max_attempts,
            temperature: team.call.temperature,
            max_tokens: team.call.max_tokens,
        }
    }
}

impl ConstructSection {
    /// The construction settings with the optimiser's model name and seed (`[optimizer]` over
    /// `[model]`): construction is the optimiser's work, as the backward phase is.
    pub fn team_config(&self, config: &ExperimentConfig) -> TeamConfig {
        let optimizer = config.optimizer_model();
        TeamConfig {
            call: CallSettings {
                model: optimizer.section.name,
                temperature: self.temperature,
                max_tokens: self.max_tokens,
                seed: optimizer.section.seed,
            },
            max_attempts: self.max_attempts,
        }
    }
}

/// A library network as the record names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryRef {
    pub name: String,
    pub validation: Option<f64>,
}

/// What team construction did: `construction.json` of a run, or the record beside a file written by
/// `ann construct` / `ann adapt`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConstructionRecord {
    pub benchmark: String,
    pub task_description: String,
    /// Ids of the training examples whose inputs the prompt showed.
    pub examples: Vec<String>,
    /// The trained networks shown as a library (empty for a first construction).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub library: Vec<LibraryRef>,
    /// Decomposition calls made.
    pub attempts: usize,
    /// Per attempt, why its answer was rejected (empty: accepted).
    pub errors: Vec<Vec<String>>,
    /// Every attempt failed: `network` is the fallback (the benchmark's starting network).
    pub fallback_used: bool,
    /// The network the run starts from.
    pub network: Network,
    pub usage: Usage,
    /// The whole conversation: each attempt's messages and reply.
    pub transcript: Vec<TeamAttempt>,
}

/// The part of a record a resumed run reads back.
#[derive(Deserialize)]
struct SavedRecord {
    network: Network,
}

/// How a network is constructed: the model asked (the optimiser's), its call settings and the
/// format gate's rules (the experiment's: [`ExperimentConfig::validation_rules`], so agents may
/// name the configured model profiles).
pub struct Constructor<'a> {
    pub model: &'a SharedModel,
    pub team: TeamConfig,
    pub rules: ValidationRules,
    /// Training inputs shown: the first `examples` of the train split.
    pub examples: usize,
}

impl<'a> Constructor<'a> {
    /// The constructor of an experiment: its optimiser stack, `[construct]` settings and rules.
    pub fn of(config: &ExperimentConfig, prepared: &'a Prepared) -> Self {
        Self {
            model: &prepared.models.optimizer().model,
            team: config.construct.team_config(config),
            rules: config.validation_rules(prepared.benchmark.answer_format()),
            examples: config.construct.examples,
        }
    }
}

/// Construct a network for `benchmark` with `constructor`: its task description, its first
/// `constructor.examples` training inputs and `library`; validated with `constructor.rules` and
/// the benchmark's answer-format rule; the fallback is `fallback`, else the benchmark's starting
/// network.
pub async fn construct_for(
    benchmark: &dyn Benchmark,
    library: Vec<LibraryNetwork>,
    fallback: Option<Network>,
    constructor: &Constructor<'_>,
) -> anyhow::Result<ConstructionRecord> {
    let Constructor { model, team, examples, .. } = constructor;
    let examples = *examples;
    let shown: Vec<_> = benchmark.examples(Split::Train).iter().take(examples).collect();
    let fallback = match fallback {
        Some(net) => net,
        None => Network::from_json(benchmark.starting_network())
            .with_context(|| format!("the starting network of benchmark {}", benchmark.name()))?,
    };
    let rules =
        ValidationRules { answer_format: Some(benchmark.answer_format().to_string()), ..constructor.rules.clone() };
    let library_refs = library.iter().map(|l| LibraryRef { name: l.name.clone(), validation: l.validation }).collect();
    let brief = TeamBrief {
        task_description: benchmark.task_description().to_string(),
        examples: shown.iter().map(|e| e.input.clone()).collect(),
        library,
    };
    let outcome = construct_team(model, &brief, &rules, &fallback, team)
        .await
        .with_context(|| format!("constructing a network for benchmark {}", benchmark.name()))?;
    Ok(ConstructionRecord {
        benchmark: benchmark.name().to_string(),
        task_description: brief.task_description,
        examples: shown.iter().map(|e| e.id.clone()).collect(),
        library: library_refs,
        attempts: outcome.attempts.len(),
        errors: outcome.attempts.iter().map(|a| a.errors.clone()).collect(),
        fallback_used: outcome.source == TeamSource::Fallback,
        network: outcome.network,
        usage: outcome.usage,
        transcript: outcome.attempts,
    })
}

impl ConstructionRecord {
    /// One line for the user: what construction gave.
    pub fn summary(&self) -> String {
        if self.fallback_used {
            format!(
                "team construction fell back to the starting network of {} after {} attempt(s); last errors: {}",
                self.benchmark,
                self.attempts,
                self.errors.last().map(|e| e.join("; ")).unwrap_or_default()
            )
        } else {
            format!(
                "team construction gave a {}-layer network for {} after {} attempt(s)",
                self.network.layers.len(),
                self.benchmark,
                self.attempts
            )
        }
    }

    /// Write the record as pretty JSON.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// When the config asks for construction, give the run its starting network: the one recorded in
/// `run_dir/construction.json` (a resumed run), else construct it now with the run's model stack
/// and record it. The `start` baseline follows the starting network.
pub async fn settle_start(
    config: &ExperimentConfig,
    prepared: &mut Prepared,
    run_dir: &Path,
    options: &RunOptions,
) -> anyhow::Result<()> {
    if config.benchmark.network != Some(StartNetwork::Construct) {
        return Ok(());
    }
    let path = run_dir.join(CONSTRUCTION_FILE);
    let network = if path.is_file() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let saved: SavedRecord = serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        saved.network
    } else {
        options.say(&format!("constructing the starting network from {} training inputs", config.construct.examples));
        let constructor = Constructor::of(config, prepared);
        let record = construct_for(prepared.benchmark.as_ref(), Vec::new(), Some(prepared.start.clone()), &constructor)
            .await
            .with_context(|| {
                format!(
                    "team construction stopped (the calls answered so far are in the response cache, its spend in \
                 budget.json): once the cause is fixed (an exhausted budget is raised in its config.toml), run \
                 `ann resume {}`",
                    run_dir.display()
                )
            })?;
        record.save(&path)?;
        options.say(&record.summary());
        record.network
    };
    let rules = config.validation_rules(prepared.benchmark.answer_format());
    check_network_with(&network, prepared.benchmark.as_ref(), &rules)
        .with_context(|| format!("the network of {}", path.display()))?;
    for (baseline, net) in &mut prepared.baselines {
        if *baseline == Baseline::Start {
            *net = network.clone();
        }
    }
    prepared.start = network;
    Ok(())
}

/// `ann construct`: prepare the experiment (model stack, benchmark), construct a network with the
/// trained networks of `from` as a library, write it to `out` and its record beside it
/// ([`record_path`]).
pub async fn construct_to_file(
    config: &ExperimentConfig,
    from: &[PathBuf],
    out: &Path,
    options: &RunOptions,
) -> anyhow::Result<ConstructionRecord> {
    let library = crate::library::load_library(from)?;
    let mut config = config.clone();
    config.benchmark.network = None;
    let prepared = crate::run::prepare(&config, options).await?;
    options.say(&format!(
        "constructing a network for {} from {} training inputs{}",
        prepared.benchmark.name(),
        config.construct.examples,
        if library.is_empty() { String::new() } else { format!(" and {} trained networks", library.len()) }
    ));
    let constructor = Constructor::of(&config, &prepared);
    let record =
        construct_for(prepared.benchmark.as_ref(), library, Some(prepared.start.clone()), &constructor).await?;
    record.network.save(out).with_context(|| format!("writing {}", out.display()))?;
    record.save(&record_path(out))?;
    Ok(record)
}

/// The record beside a written network: `net.json` → `net.construction.json`.
pub fn record_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "network".into());
    out.with_file_name(format!("{stem}.construction.json"))
}
