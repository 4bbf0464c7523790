//! The typed experiment config (TOML): benchmark, model (the worker), optimizer, model profiles, cache,
//! budget, training, forward, report.
//!
//! Every section rejects unknown keys (the error names the key and its line). Secrets never appear:
//! an OpenAI-compatible endpoint is named by the *names* of environment variables only.
//! [`ExperimentConfig::load_with_overrides`] applies `KEY=VALUE` overrides (dotted keys, TOML
//! values) to a file before it is checked, so an override is held to the same rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ann_graph::{ForwardConfig, InfrastructurePolicy, RoutingMode, ValidationRules};
use ann_llm::{BudgetLimits, PriceTable};
use ann_llm_cache::CacheMode;
use ann_llm_openai::{OpenAiConfig, RetryPolicy};
use ann_textgrad::{Ablations, Acceptance, GateMode, LocalForm, PatchLimits, Selection, TrainConfig};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::baselines::Baseline;
pub use crate::overrides::apply_override;
pub use crate::profiles::{ModelOverride, RESERVED_MODEL_NAMES, ResolvedModel};

/// A whole experiment: what to train on, with which model, under which limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Short slug naming the run directory `runs/<name>-<UTC time>/`.
    pub name: String,
    /// Baselines evaluated on the test split after training, in this order:
    /// `direct`, `cot`, `self_consistency`, `debate`, `start`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<Baseline>,
    pub benchmark: BenchmarkSection,
    #[serde(default)]
    pub model: ModelSection,
    /// `[optimizer]`: the optimiser's own model (loss, gradients, patches); every key it leaves
    /// out is the worker's (`[model]`). Absent: the worker's model answers the optimiser's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<ModelOverride>,
    /// `[models.NAME]`: the model profiles an agent of the network may name (`"model": {"profile":
    /// "NAME"}`); every key a profile leaves out is the worker's (`[model]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelOverride>,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub budget: BudgetSection,
    #[serde(default)]
    pub train: TrainSection,
    #[serde(default)]
    pub forward: ForwardSection,
    #[serde(default)]
    pub report: ReportSection,
    /// Team construction (`network = "construct"`, `ann construct`, `ann adapt`).
    #[serde(default)]
    pub construct: crate::construct::ConstructSection,
}

/// Which benchmark, how much of each split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchmarkSection {
    /// `mmlu-ml`, `math`, `humaneval`, `creative-writing`, or one read from `data_path`: `trivia-cw`, `dabench`.
    pub name: String,
    /// Training examples used (the first ones of the benchmark's seeded train split); `None`: all.
    pub train: Option<usize>,
    /// Validation examples (the gate's fixed set V); `None`: all.
    pub validation: Option<usize>,
    /// Test examples; `None`: all.
    pub test: Option<usize>,
    /// Seed of the benchmark's split; `None`: the benchmark's own pinned seed.
    pub seed: Option<u64>,
    /// The fetched-data folder; relative paths resolve against the run's base folder.
    pub data_dir: PathBuf,
    /// The user's own data of `trivia-cw` (the JSONL file) or `dabench` (the folder); relative
    /// paths resolve against the base folder. `ann` fills it from `ANN_TRIVIA_CW_PATH` /
    /// `ANN_DABENCH_DIR` when unset.
    pub data_path: Option<PathBuf>,
    /// Another starting network (JSON or YAML) instead of the benchmark's own, or `"construct"`:
    /// team construction at the start of the run (settings in `[construct]`).
    pub network: Option<crate::construct::StartNetwork>,
    /// Whether the starting network's agents call tools. Absent: the benchmark's own network
    /// (DABench's analyst runs Python; the others only talk). `true`: the benchmark's network with
    /// tools (HumanEval's verifier runs the docstring examples with `python`, MATH's solvers and
    /// verifier compute with `calculator`, DABench's own); an error for a benchmark without one.
    /// `false`: the benchmark's network with every agent's tools taken away.
    pub tools: Option<bool>,
}

impl Default for BenchmarkSection {
    fn default() -> Self {
        Self {
            name: "mmlu-ml".into(),
            train: None,
            validation: None,
            test: None,
            seed: None,
            data_dir: PathBuf::from(".cache/data"),
            data_path: None,
            network: None,
            tools: None,
        }
    }
}

/// Which backend answers, and with which sampling defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The embedded SmolLM2 model (offline, no key); `"embedded"` is accepted too.
    #[default]
    #[serde(alias = "embedded")]
    Local,
    /// An OpenAI-compatible endpoint named by environment variables.
    Openai,
}

/// The model section: the worker (forward) and optimiser (backward) settings of one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub backend: Backend,
    /// Model name put in every request (for `openai`, empty means the endpoint's configured model).
    pub name: String,
    /// The embedded model file; `None`: the pinned file in the cache (`.cache/models/...`).
    pub local_path: Option<PathBuf>,
    /// Names (never values) of the environment variables of an OpenAI-compatible endpoint.
    pub base_url_env: String,
    pub model_env: String,
    pub api_key_env: String,
    /// `max_tokens` of each forward call.
    pub max_tokens: Option<u32>,
    /// Seed of each forward call (the agents' own temperatures apply).
    pub seed: Option<u64>,
    /// Temperature of the optimiser's calls (loss, gradients, patches).
    pub optimizer_temperature: f32,
    /// `max_tokens` of the optimiser's calls.
    pub optimizer_max_tokens: Option<u32>,
    /// Prices in USD per million tokens added to the built-in table (model name → price).
    pub prices: PriceTable,
    /// An OpenAI-compatible endpoint: time allowed for one attempt, from connecting to the end of
    /// the body, in milliseconds (default 120 000).
    pub timeout_ms: u64,
    /// An OpenAI-compatible endpoint: time allowed to connect, in milliseconds (default 10 000).
    pub connect_timeout_ms: u64,
    /// An OpenAI-compatible endpoint: retries of failed attempts, `[model.retry]` with
    /// `max_attempts` (default 5, the first included), `base_backoff_ms`, `max_backoff_ms`,
    /// `jitter`, `seed` and `max_total_ms` (default 600 000: give up rather than wait past it).
    pub retry: RetryPolicy,
    /// An OpenAI-compatible endpoint: the largest response body accepted, in bytes (default 1 MiB);
    /// a larger one stops the run as an infrastructure failure, stored nowhere.
    pub max_response_bytes: usize,
}

impl Default for ModelSection {
    fn default() -> Self {
        let optimizer = TrainConfig::default().optimizer;
        let http = OpenAiConfig::default();
        Self {
            backend: Backend::Local,
            name: "smollm2-135m-instruct".into(),
            local_path: None,
            base_url_env: "ANN_OPENAI_BASE_URL".into(),
            model_env: "ANN_OPENAI_MODEL".into(),
            api_key_env: "ANN_OPENAI_API_KEY".into(),
            max_tokens: Some(512),
            seed: Some(0),
            optimizer_temperature: optimizer.temperature,
            optimizer_max_tokens: Some(1024),
            prices: PriceTable::empty(),
            timeout_ms: http.timeout_ms,
            connect_timeout_ms: http.connect_timeout_ms,
            retry: http.retry,
            max_response_bytes: http.max_response_bytes,
        }
    }
}

/// The response cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// The SQLite file (relative paths resolve against the base folder).
    pub path: PathBuf,
    pub mode: CacheMode,
    /// How long a write waits for another connection or process holding the file's write lock,
    /// in milliseconds; past it the answer cannot be stored and the run stops (the answer is kept).
    pub busy_timeout_ms: u64,
    /// The longest pause between two looks at a request another process is fetching, in
    /// milliseconds (default 30 000, used up to 250): claims are locks that vanish with a killed
    /// process, so nothing waits out a lease (the key keeps its old name).
    pub claim_lease_ms: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        Self {
            path: PathBuf::from(".cache/responses.sqlite"),
            mode: CacheMode::ReadWrite,
            busy_timeout_ms: 30_000,
            claim_lease_ms: 30_000,
        }
    }
}

/// Hard limits of the run (`None`: unlimited); cache hits are free.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSection {
    pub max_tokens: Option<u64>,
    pub max_dollars: Option<f64>,
    pub max_calls: Option<u64>,
}

impl BudgetSection {
    pub fn limits(&self) -> BudgetLimits {
        BudgetLimits {
            max_tokens: self.max_tokens,
            max_dollars: self.max_dollars,
            max_calls: self.max_calls,
            ..BudgetLimits::default()
        }
    }
}

/// Training settings, mapped onto [`TrainConfig`] (its defaults unless set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Stop after this many rejected steps in a row (0: never).
    pub patience: u64,
    pub target_val: f64,
    pub max_failures: usize,
    pub max_successes: usize,
    pub blame_threshold: f64,
    pub max_local_layers: usize,
    pub local_form: LocalForm,
    pub structural: bool,
    pub patch_retries: u32,
    pub max_patch_ops: usize,
    pub max_structural_ops: usize,
    pub momentum_window: usize,
    pub acceptance: Acceptance,
    /// The margin ε a candidate's validation score must clear (written only when not 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub epsilon: f64,
    pub gate: GateMode,
    /// Write the traces of every forward (training, validation, gate, test) to `traces/`.
    pub write_traces: bool,
    /// Keep traces of at most this many examples per set of forwards (0, the default: all).
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub trace_examples: usize,
    pub ablations: Ablations,
}

impl Default for TrainSection {
    fn default() -> Self {
        let t = TrainConfig::default();
        Self {
            epochs: t.epochs,
            batch_size: t.batch_size,
            seed: t.seed,
            patience: t.patience,
            target_val: t.target_val,
            max_failures: t.selection.max_failures,
            max_successes: t.selection.max_successes,
            blame_threshold: t.blame_threshold,
            max_local_layers: t.max_local_layers,
            local_form: t.local_form,
            structural: t.structural,
            patch_retries: t.patch_retries,
            max_patch_ops: t.limits.max_ops,
            max_structural_ops: t.limits.max_structural,
            momentum_window: t.momentum_window,
            acceptance: t.acceptance,
            epsilon: t.epsilon,
            gate: t.gate,
            write_traces: t.write_traces,
            trace_examples: t.trace_examples,
            ablations: Ablations::default(),
        }
    }
}

/// Forward-phase settings, mapped onto [`ForwardConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardSection {
    /// At most this many model calls in flight at once; also the HTTP backend's `max_concurrency`
    /// (one setting for both, so neither caps the other unseen).
    pub max_parallel_calls: usize,
    /// At most this many examples of a batch in progress at once.
    pub max_parallel_inputs: usize,
    pub routing: RoutingMode,
    pub debate_rounds: u32,
    pub routing_input_chars: usize,
    /// What a call that fails for a reason outside the network (endpoint unreachable, retries
    /// exhausted, the response cache unable to store an answer) does: `"stop"` (default: the run
    /// stops with its last checkpoint, `ann resume` finishes it) or `"exclude"` (the example is
    /// left out of the scores, with a visible count). Never a score of 0.
    pub on_infrastructure_failure: InfrastructurePolicy,
    /// Show the routing call each candidate's record in this run (uses and mean score, from the
    /// traces of training and validation). Default off.
    #[serde(skip_serializing_if = "is_false")]
    pub routing_statistics: bool,
}

impl Default for ForwardSection {
    fn default() -> Self {
        let f = ForwardConfig::default();
        Self {
            max_parallel_calls: f.max_parallel_calls,
            max_parallel_inputs: f.max_parallel_inputs,
            routing: f.routing,
            debate_rounds: f.debate_rounds,
            routing_input_chars: f.routing_input_chars,
            on_infrastructure_failure: f.on_infrastructure_failure,
            routing_statistics: f.routing_statistics,
        }
    }
}

/// Statistics of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSection {
    pub bootstrap_resamples: usize,
    pub confidence: f64,
    pub seed: u64,
}

impl Default for ReportSection {
    fn default() -> Self {
        let b = ann_eval::stats::BootstrapConfig::default();
        Self { bootstrap_resamples: b.resamples, confidence: b.confidence, seed: b.seed }
    }
}

impl ReportSection {
    pub fn bootstrap(&self) -> ann_eval::stats::BootstrapConfig {
        ann_eval::stats::BootstrapConfig {
            resamples: self.bootstrap_resamples,
            confidence: self.confidence,
            seed: self.seed,
        }
    }
}

impl ExperimentConfig {
    /// Parse TOML text; `origin` names the file in errors. Unknown keys are errors naming the key.
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text).with_context(|| format!("{origin}: invalid experiment config"))?;
        config.check().with_context(|| format!("{origin}: invalid experiment config"))?;
        Ok(config)
    }

    /// Read and parse a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The config as TOML (what the run directory keeps).
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string_pretty(self).context("serializing the experiment config")
    }

    /// Checks beyond the types.
    pub fn check(&self) -> anyhow::Result<()> {
        if !ann_graph::is_slug(&self.name) {
            anyhow::bail!("`name` must be a slug of [a-z0-9_-]+, got {:?}", self.name);
        }
        if let (Some(tools), Some(crate::construct::StartNetwork::File(path))) =
            (self.benchmark.tools, &self.benchmark.network)
        {
            anyhow::bail!(
                "`benchmark.tools = {tools}` chooses between the benchmark's own starting networks, and \
                 `benchmark.network` replaces them with {}: set one of the two",
                path.display()
            );
        }
        if self.construct.max_attempts == 0 {
            anyhow::bail!("`construct.max_attempts` must be at least 1");
        }
        if self.train.batch_size == 0 {
            anyhow::bail!("`train.batch_size` must be at least 1");
        }
        if !(0.0..1.0).contains(&self.report.confidence) {
            anyhow::bail!("`report.confidence` must be in [0, 1), got {}", self.report.confidence);
        }
        if let Some(optimizer) = &self.optimizer {
            optimizer.check("optimizer", self.model.backend, false)?;
        }
        for (name, profile) in &self.models {
            if !ann_graph::is_slug(name) || RESERVED_MODEL_NAMES.contains(&name.as_str()) {
                anyhow::bail!(
                    "`models.{name}`: a profile name must be a slug of [a-z0-9_-]+ other than {}",
                    RESERVED_MODEL_NAMES.join(" and ")
                );
            }
            profile.check(&format!("models.{name}"), self.model.backend, true)?;
        }
        for (i, b) in self.baselines.iter().enumerate() {
            if self.baselines[..i].contains(b) {
                anyhow::bail!("`baselines` lists `{b}` more than once");
            }
        }
        Ok(())
    }

    /// Read a TOML file, apply `KEY=VALUE` overrides ([`apply_override`]), then parse and check
    /// the result; errors name the file, and an unknown key given in an override is named too.
    pub fn load_with_overrides(path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        if overrides.is_empty() {
            return Self::load(path);
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let origin = path.display().to_string();
        let mut table: toml::Table = toml::from_str(&text).with_context(|| format!("{origin}: invalid TOML"))?;
        for o in overrides {
            apply_override(&mut table, o).with_context(|| format!("override `{o}`"))?;
        }
        let text = toml::to_string(&table).context("serializing the overridden config")?;
        Self::from_toml(&text, &format!("{origin} (with overrides {})", overrides.join(", ")))
    }

    /// Cap the train, validation and test sizes at `n` examples each (a quick check).
    pub fn limit(&mut self, n: usize) {
        for size in [&mut self.benchmark.train, &mut self.benchmark.validation, &mut self.benchmark.test] {
            *size = Some(size.map_or(n, |s| s.min(n)));
        }
    }

    /// The training loop's config, with the benchmark's answer-format rule in the format gate.
    pub fn train_config(&self, answer_format: &str, prices: PriceTable) -> TrainConfig {
        let t = &self.train;
        TrainConfig {
            epochs: t.epochs,
            batch_size: t.batch_size,
            seed: t.seed,
            patience: t.patience,
            target_val: t.target_val,
            selection: Selection { max_failures: t.max_failures, max_successes: t.max_successes },
            blame_threshold: t.blame_threshold,
            max_local_layers: t.max_local_layers,
            local_form: t.local_form,
            structural: t.structural,
            patch_retries: t.patch_retries,
            limits: PatchLimits { max_ops: t.max_patch_ops, max_structural: t.max_structural_ops },
            rules: self.validation_rules(answer_format),
            momentum_window: t.momentum_window,
            acceptance: t.acceptance,
            epsilon: t.epsilon,
            gate: t.gate,
            ablations: t.ablations,
            forward: self.forward_config(),
            optimizer: {
                let o = self.optimizer_model();
                ann_llm::CallSettings {
                    model: o.section.name,
                    temperature: o.temperature,
                    max_tokens: o.section.max_tokens,
                    seed: o.section.seed,
                }
            },
            prompt_limits: Default::default(),
            prices,
            write_traces: t.write_traces,
            trace_examples: t.trace_examples,
        }
    }

    /// The format gate's rules: the default limits, `answer_format` for the last layer, and the
    /// configured model profiles as the ones an agent may name.
    pub fn validation_rules(&self, answer_format: &str) -> ValidationRules {
        ValidationRules::with_answer_format(answer_format).with_profiles(self.models.keys().cloned())
    }

    /// The optimiser's model: `[optimizer]` over `[model]` (with `[model]`'s optimiser settings
    /// as the defaults of its temperature and token limit).
    pub fn optimizer_model(&self) -> ResolvedModel {
        let m = &self.model;
        self.optimizer.clone().unwrap_or_default().resolve(m, m.optimizer_max_tokens, m.optimizer_temperature)
    }

    /// The model profile `name` (`[models.NAME]` over `[model]`).
    pub fn profile_model(&self, name: &str) -> Option<ResolvedModel> {
        let m = &self.model;
        self.models.get(name).map(|p| p.resolve(m, m.max_tokens, 0.0))
    }

    /// The worker's forward config.
    pub fn forward_config(&self) -> ForwardConfig {
        let f = &self.forward;
        ForwardConfig {
            model: self.model.name.clone(),
            max_tokens: self.model.max_tokens,
            seed: self.model.seed,
            routing: f.routing,
            routing_input_chars: f.routing_input_chars,
            debate_rounds: f.debate_rounds,
            max_parallel_calls: f.max_parallel_calls,
            max_parallel_inputs: f.max_parallel_inputs,
            on_infrastructure_failure: f.on_infrastructure_failure,
            routing_statistics: f.routing_statistics,
            ..ForwardConfig::default()
        }
    }

    /// The price table: the built-in list prices extended by the config's.
    pub fn prices(&self) -> PriceTable {
        let mut prices = PriceTable::default();
        prices.extend(&self.model.prices);
        prices
    }
}

/// `path` if absolute, else `base/path`.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_zero_usize(x: &usize) -> bool {
    *x == 0
}

fn is_false(x: &bool) -> bool {
    !*x
}
