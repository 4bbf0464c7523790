//! `manifest.json` (what produced a run: commit, data and model hashes, versions, models, host) and
//! `metrics.json` (per method: score, interval, cost, tokens, calls), written in every run directory.
//!
//! `metrics.json` holds only what the run's answers determine, so a run replayed from its response
//! cache writes it byte for byte again. Cache hits are not in it: how many calls the cache answers
//! depends on what it held before the run (a replay is all hits); they are in `report.json`
//! (`cost`, `cost_by_tag`, `cost_by_model`) and `report.html`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ann_eval::Example;
use ann_eval::stats::Summary;
use ann_textgrad::Cost;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Report;

/// File names in the run directory.
pub const MANIFEST_JSON: &str = "manifest.json";
pub const METRICS_JSON: &str = "metrics.json";

/// Format versions of the two files.
pub const MANIFEST_FORMAT: u32 = 1;
pub const METRICS_FORMAT: u32 = 1;

/// The crates of this workspace whose code made the run (all at the workspace's version).
const CRATES: [&str; 12] = [
    "ann-bench-creative-writing",
    "ann-bench-humaneval",
    "ann-bench-math",
    "ann-bench-mmlu-ml",
    "ann-eval",
    "ann-experiment",
    "ann-graph",
    "ann-llm",
    "ann-llm-cache",
    "ann-llm-local",
    "ann-llm-openai",
    "ann-textgrad",
];

/// A file and its sha256.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// One model the run used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelEntry {
    /// What the run used it for (`worker and optimizer`, or a role a config names).
    pub role: String,
    pub name: String,
    /// The backend's identity (kind, file or endpoint, model); never a secret.
    pub backend: String,
    /// The embedded model's weights file, hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileHash>,
}

/// Host facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub os: String,
    pub arch: String,
    pub cores: usize,
}

/// Everything `manifest.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub format: u32,
    pub run: String,
    /// `git rev-parse HEAD` of the folder the run was started from, when it is a checkout.
    pub git_commit: Option<String>,
    /// Whether that checkout had uncommitted changes.
    pub git_dirty: Option<bool>,
    pub crates: BTreeMap<String, String>,
    pub models: Vec<ModelEntry>,
    /// The benchmark's data files, hashed (empty when the caller gave the examples in process).
    pub data_files: Vec<FileHash>,
    /// Per split, the sha256 of its examples (one JSON line each, in order): what was run on.
    pub examples_sha256: BTreeMap<String, String>,
    /// The starting network's file, hashed.
    pub network_initial_sha256: String,
    pub host: Host,
}

/// The sha256 of a file, read in chunks.
pub fn hash_file(path: &Path) -> std::io::Result<FileHash> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(FileHash { path: path.display().to_string(), sha256: hex::encode(hasher.finalize()), bytes })
}

/// The sha256 of `examples` as JSON lines.
pub fn hash_examples(examples: &[Example]) -> String {
    let mut hasher = Sha256::new();
    for e in examples {
        hasher.update(serde_json::to_string(e).expect("an example always serializes").as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The data files of `benchmark` in `data_dir` (files whose name starts with the benchmark's name,
/// their `.sha256` companions left out), in name order.
pub fn data_files(data_dir: &Path, benchmark: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(data_dir) else { return vec![] };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with(benchmark) && !name.ends_with(".sha256")
        })
        .collect();
    files.sort();
    files
}

/// What the manifest is built from.
pub struct ManifestInputs<'a> {
    pub run: &'a str,
    /// Where the run was started (its git checkout, if any).
    pub base_dir: &'a Path,
    pub models: Vec<ModelEntry>,
    pub data_files: Vec<PathBuf>,
    pub splits: [(&'a str, &'a [Example]); 3],
    pub network_initial: &'a Path,
}

impl Manifest {
    /// Gather the manifest (hashes files, asks git; a file that cannot be read is an error).
    pub fn gather(inputs: ManifestInputs) -> anyhow::Result<Self> {
        use anyhow::Context;
        let commit = git(inputs.base_dir, &["rev-parse", "HEAD"]);
        let dirty =
            commit.as_ref().and_then(|_| git(inputs.base_dir, &["status", "--porcelain"]).map(|s| !s.is_empty()));
        let data_files = inputs
            .data_files
            .iter()
            .map(|p| hash_file(p).with_context(|| format!("hashing {}", p.display())))
            .collect::<anyhow::Result<_>>()?;
        let network = hash_file(inputs.network_initial)
            .with_context(|| format!("hashing {}", inputs.network_initial.display()))?;
        Ok(Self {
            format: MANIFEST_FORMAT,
            run: inputs.run.to_string(),
            git_commit: commit,
            git_dirty: dirty,
            crates: CRATES.iter().map(|c| (c.to_string(), env!("CARGO_PKG_VERSION").to_string())).collect(),
            models: inputs.models,
            data_files,
            examples_sha256: inputs.splits.iter().map(|(k, v)| (k.to_string(), hash_examples(v))).collect(),
            network_initial_sha256: network.sha256,
            host: Host {
                os: std::env::consts::OS.to_string(),
                arch: std::env::consts::ARCH.to_string(),
                cores: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            },
        })
    }
}

/// One method's line of `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodMetrics {
    /// `initial`, `trained`, or `baseline:<name>`.
    pub method: String,
    /// Test score: mean, interval, examples (absent for an empty split).
    pub score: Option<Summary>,
    /// Test examples left out (infrastructure failures under the `exclude` policy).
    pub excluded: usize,
    /// The method's test forwards, as the responses report them (a cache hit counted like the
    /// call it replays).
    pub calls: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub tokens: u64,
    pub dollars: f64,
}

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub format: u32,
    pub name: String,
    pub benchmark: String,
    pub model: String,
    pub examples: BTreeMap<String, usize>,
    pub steps: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub validation_initial: Option<Summary>,
    pub validation_trained: Option<Summary>,
    /// The training's calls (initial validation, forwards, backward, gates), counted like `calls`.
    pub training: MethodMetrics,
    pub methods: Vec<MethodMetrics>,
}

fn method(name: &str, score: Option<Summary>, excluded: usize, cost: &Cost) -> MethodMetrics {
    MethodMetrics {
        method: name.to_string(),
        score,
        excluded,
        calls: cost.calls,
        errors: cost.errors,
        prompt_tokens: cost.prompt_tokens,
        completion_tokens: cost.completion_tokens,
        tokens: cost.prompt_tokens.saturating_add(cost.completion_tokens),
        dollars: cost.dollars,
    }
}

impl Metrics {
    /// The replay-stable part of `report`.
    pub fn of(report: &Report) -> Self {
        let mut methods = vec![
            method("initial", report.test.initial.clone(), report.test.excluded.initial, &report.costs.test_initial),
            method("trained", report.test.trained.clone(), report.test.excluded.trained, &report.costs.test_trained),
        ];
        methods.extend(
            report
                .baselines
                .iter()
                .map(|b| method(&format!("baseline:{}", b.baseline), b.test.clone(), b.excluded, &b.cost)),
        );
        Self {
            format: METRICS_FORMAT,
            name: report.name.clone(),
            benchmark: report.benchmark.clone(),
            model: report.model.clone(),
            examples: report.examples.clone(),
            steps: report.steps.steps,
            accepted: report.steps.accepted,
            rejected: report.steps.rejected,
            skipped: report.steps.skipped,
            validation_initial: report.validation.initial.clone(),
            validation_trained: report.validation.trained.clone(),
            training: method("training", None, 0, &report.costs.training),
            methods,
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("metrics always serialize") + "\n"
    }
}

/// Write `manifest.json` and `metrics.json` of a finished run into `run_dir`.
pub fn write(
    config: &crate::ExperimentConfig,
    prepared: &crate::run::Prepared,
    options: &crate::RunOptions,
    run_dir: &Path,
    report: &Report,
    [train, validation, test]: [&[Example]; 3],
) -> anyhow::Result<()> {
    use anyhow::Context;
    let base = &options.base_dir;
    let file = match (&config.model.backend, &options.backend) {
        (crate::Backend::Local, crate::BackendSource::Open { local_model, .. }) => {
            let path = config
                .model
                .local_path
                .as_deref()
                .map(|p| crate::config::resolve(base, p))
                .unwrap_or(local_model.clone());
            Some(hash_file(&path).with_context(|| format!("hashing the model file {}", path.display()))?)
        }
        _ => None,
    };
    let mut models = vec![ModelEntry {
        role: "worker and optimizer".into(),
        name: config.model.name.clone(),
        backend: prepared.stack.identity.clone(),
        file,
    }];
    // Any other model that answered calls (a request naming another model, an endpoint's alias).
    for name in report.cost_by_model.keys().filter(|m| **m != config.model.name) {
        models.push(ModelEntry {
            role: "answered calls".into(),
            name: name.clone(),
            backend: prepared.stack.identity.clone(),
            file: None,
        });
    }
    let data = match options.benchmark {
        Some(_) => vec![],
        None => data_files(&crate::config::resolve(base, &config.benchmark.data_dir), &config.benchmark.name),
    };
    let manifest = Manifest::gather(ManifestInputs {
        run: &run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        base_dir: base,
        models,
        data_files: data,
        splits: [("train", train), ("validation", validation), ("test", test)],
        network_initial: &run_dir.join(super::view::NETWORK_INITIAL),
    })?;
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    std::fs::write(run_dir.join(MANIFEST_JSON), text).context("writing manifest.json")?;
    std::fs::write(run_dir.join(METRICS_JSON), Metrics::of(report).to_json()).context("writing metrics.json")
}
