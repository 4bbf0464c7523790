//! The model stack of a run: Metered(Cached(Budgeted(backend))), and opening the configured backend;
//! every model of a run (worker, optimiser, profiles) has its own stack over one budget and cache.

use std::path::PathBuf;
use std::sync::Arc;

use ann_llm::{Budget, Meter, MeteredModel, PriceTable, SharedModel};
use ann_llm_cache::{CacheConfig, CacheMode, CachedModel, ResponseCache};
use ann_llm_local::{LocalConfig, LocalModel};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use anyhow::{Context, bail};

use crate::config::{Backend, ExperimentConfig, ModelSection, resolve};

/// Where the backend of a run comes from. The library never reads the environment: a binary
/// passes what it found there.
#[derive(Clone)]
pub enum BackendSource {
    /// Per model of the run (`optimizer`, a profile name) its own source; a model not named here
    /// (and the worker) comes from `worker`.
    Named { worker: Box<BackendSource>, named: std::collections::BTreeMap<String, BackendSource> },
    /// A ready model (tests, embedding applications).
    Model(SharedModel),
    /// Open the configured backend.
    Open {
        /// The embedded model file used when the config names none (the pinned file in the cache).
        local_model: PathBuf,
        /// The OpenAI-compatible endpoint read from the environment by the binary, if any.
        openai: Option<OpenAiConfig>,
    },
}

impl BackendSource {
    /// The same sources with every endpoint serving `max_parallel_calls` requests at once: one
    /// setting (`forward.max_parallel_calls`) governs the forward pass and the HTTP backend, so
    /// the backend's own default never caps the pass silently.
    pub fn governed_by(&self, max_parallel_calls: usize) -> BackendSource {
        let n = max_parallel_calls.max(1);
        match self {
            BackendSource::Named { worker, named } => BackendSource::Named {
                worker: Box::new(worker.governed_by(n)),
                named: named.iter().map(|(k, v)| (k.clone(), v.governed_by(n))).collect(),
            },
            BackendSource::Model(model) => BackendSource::Model(model.clone()),
            BackendSource::Open { local_model, openai } => BackendSource::Open {
                local_model: local_model.clone(),
                openai: openai.as_ref().map(|o| OpenAiConfig { max_concurrency: n, ..o.clone() }),
            },
        }
    }
}

/// The stacked model of a run and its meter and budget.
#[derive(Clone)]
pub struct ModelStack {
    /// Metered(Metered(Cached(Budgeted(backend)))): the run's meter, then this model's own.
    pub model: SharedModel,
    /// The run's meter, which every model of the run records in.
    pub meter: Arc<Meter>,
    /// This model's own meter (its cost in the report's per-model table).
    pub own_meter: Arc<Meter>,
    /// The run's budget, shared by every model of the run.
    pub budget: Arc<Budget>,
    /// The backend's identity (cache key part, shown in the report).
    pub identity: String,
    /// The response cache (`None` when it is off): its answers that could not be stored are
    /// written to the run directory when a run stops ([`crate::unsaved`]).
    pub cache: Option<ResponseCache>,
}

/// Open the backend `config.model` asks for (the worker's).
pub fn open_backend(
    config: &ExperimentConfig,
    source: &BackendSource,
    base: &std::path::Path,
) -> anyhow::Result<SharedModel> {
    open_model(&config.model, None, None, &source.governed_by(config.forward.max_parallel_calls), base)
}

/// Open the backend `section` asks for: the model `name` of the run (None: the worker) from its
/// source in `source`; `endpoint_model`, when set, is the model id asked of an endpoint.
pub fn open_model(
    section: &ModelSection,
    name: Option<&str>,
    endpoint_model: Option<&str>,
    source: &BackendSource,
    base: &std::path::Path,
) -> anyhow::Result<SharedModel> {
    match source {
        BackendSource::Named { worker, named } => {
            let source = name.and_then(|n| named.get(n)).unwrap_or(worker);
            open_model(section, name, endpoint_model, source, base)
        }
        BackendSource::Model(model) => Ok(model.clone()),
        BackendSource::Open { local_model, openai } => match section.backend {
            Backend::Local => {
                let path = section.local_path.as_deref().map(|p| resolve(base, p)).unwrap_or(local_model.clone());
                if !path.is_file() {
                    bail!(
                        "the embedded model file {} is missing: run `cargo xtask fetch-model` in the agentic-nn \
                         checkout, or set ANN_CACHE_DIR to the folder holding `models/` (a checkout's `.cache`), \
                         or ANN_LOCAL_MODEL to a GGUF file",
                        path.display()
                    );
                }
                let local = LocalConfig {
                    default_max_tokens: section.max_tokens.unwrap_or(512),
                    default_seed: section.seed.unwrap_or(0),
                    ..LocalConfig::default()
                };
                let opened = if section.local_path.is_some() {
                    LocalModel::open(&path, local)
                } else {
                    LocalModel::open_pinned(&path, local)
                };
                let model = opened.with_context(|| format!("opening the embedded model {}", path.display()))?;
                Ok(Arc::new(model))
            }
            Backend::Openai => {
                let Some(openai) = openai else {
                    bail!(
                        "{}.backend = \"openai\" needs an endpoint: set {} and {} (and {} for a key)",
                        name.map_or("model".to_string(), |n| if n == "optimizer" {
                            n.into()
                        } else {
                            format!("models.{n}")
                        }),
                        section.base_url_env,
                        section.model_env,
                        section.api_key_env
                    );
                };
                let mut openai = with_http_policy(openai, section);
                if let Some(model) = endpoint_model {
                    openai.model = model.to_string();
                }
                let model = OpenAiModel::from_env(openai).context("opening the OpenAI-compatible backend")?;
                Ok(Arc::new(model))
            }
        },
    }
}

/// The endpoint with the config's timeouts, retry policy and response-size limit (`[model]`
/// `timeout_ms`, `connect_timeout_ms`, `max_response_bytes`, `[model.retry]`).
fn with_http_policy(openai: &OpenAiConfig, model: &ModelSection) -> OpenAiConfig {
    OpenAiConfig {
        timeout_ms: model.timeout_ms,
        connect_timeout_ms: model.connect_timeout_ms,
        retry: model.retry.clone(),
        max_response_bytes: model.max_response_bytes,
        ..openai.clone()
    }
}

/// Stack the decorators around `backend`: the meter outermost (it sees cache hits), the cache,
/// then the budget (below the cache, so hits are free).
pub fn build_stack(
    config: &ExperimentConfig,
    backend: SharedModel,
    base: &std::path::Path,
    prices: PriceTable,
) -> anyhow::Result<ModelStack> {
    Ok(StackParts::open(config, base, prices)?.stack(backend))
}

/// What every model stack of a run shares: one budget, one response cache, one meter.
#[derive(Clone)]
pub struct StackParts {
    pub budget: Arc<Budget>,
    /// None when the cache is off.
    cache: Option<(ResponseCache, CacheMode)>,
    pub meter: Arc<Meter>,
    prices: PriceTable,
}

impl StackParts {
    /// The run's budget and meter, and its response cache (opened, its folder made, unless off).
    pub fn open(config: &ExperimentConfig, base: &std::path::Path, prices: PriceTable) -> anyhow::Result<Self> {
        let budget = Budget::new(config.budget.limits(), prices.clone());
        // With the cache off no SQLite file is made, or even opened.
        let cache = if config.cache.mode == CacheMode::Off {
            None
        } else {
            let cache_path = resolve(base, &config.cache.path);
            if let Some(parent) = cache_path.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let cache_config = CacheConfig {
                busy_timeout: std::time::Duration::from_millis(config.cache.busy_timeout_ms),
                claim_lease: std::time::Duration::from_millis(config.cache.claim_lease_ms.max(1)),
                ..CacheConfig::default()
            };
            let cache = ResponseCache::open_with(&cache_path, &cache_config)
                .with_context(|| format!("opening the response cache {}", cache_path.display()))?;
            Some((cache, config.cache.mode))
        };
        Ok(Self { budget, cache, meter: Meter::new(prices.clone()), prices })
    }

    /// One model's stack over the shared parts: Metered(run meter, Metered(own meter,
    /// Cached(Budgeted(backend)))).
    pub fn stack(&self, backend: SharedModel) -> ModelStack {
        let identity = backend.identity();
        let budgeted: SharedModel = Arc::new(ann_llm::BudgetedModel::new(backend, self.budget.clone()));
        let cached: SharedModel = match &self.cache {
            None => budgeted,
            Some((cache, mode)) => Arc::new(CachedModel::new(budgeted, cache.clone()).with_mode(*mode)),
        };
        let own_meter = Meter::new(self.prices.clone());
        let own: SharedModel = Arc::new(MeteredModel::new(cached, own_meter.clone()));
        let model: SharedModel = Arc::new(MeteredModel::new(own, self.meter.clone()));
        let cache = self.cache.as_ref().map(|(cache, _)| cache.clone());
        ModelStack { model, meter: self.meter.clone(), own_meter, budget: self.budget.clone(), identity, cache }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cache_file_exists_only_when_the_cache_is_on() {
        let base = tempfile::tempdir().unwrap();
        let mut config = ExperimentConfig::default();
        config.cache.path = "cache/responses.sqlite".into();
        let stack = |config: &ExperimentConfig| {
            let backend: SharedModel =
                Arc::new(ann_test_support::ScriptedModel::new("scripted").on_contains("hi", "hello"));
            build_stack(config, backend, base.path(), PriceTable::empty()).unwrap()
        };
        config.cache.mode = CacheMode::Off;
        let request = ann_llm::ChatRequest::new("m", vec![ann_llm::Message::user("hi")]);
        stack(&config).model.complete(&request).await.unwrap();
        assert!(!base.path().join("cache").exists(), "cache off: no folder, no SQLite file");
        config.cache.mode = CacheMode::ReadWrite;
        stack(&config).model.complete(&request).await.unwrap();
        assert!(base.path().join("cache/responses.sqlite").is_file());
    }

    /// `[model] timeout_ms`, `connect_timeout_ms` and `[model.retry]` reach the HTTP client.
    #[tokio::test]
    async fn the_retry_policy_of_the_config_reaches_the_endpoint() {
        use ann_test_support::server::{FakeServer, FakeServerConfig, Fault};
        let base = tempfile::tempdir().unwrap();
        let request = ann_llm::ChatRequest::new("m", vec![ann_llm::Message::user("hi")]);
        for (max_attempts, sent) in [(1, 1), (3, 3)] {
            let server =
                FakeServer::start(FakeServerConfig::default().with_script([Fault::Status(500); 8])).await.unwrap();
            let mut config = ExperimentConfig::default();
            config.model.backend = Backend::Openai;
            config.model.api_key_env = "ANN_TEST_NO_SUCH_KEY".into();
            config.model.retry.max_attempts = max_attempts;
            config.model.retry.base_backoff_ms = 1;
            config.model.timeout_ms = 5_000;
            let source =
                BackendSource::Open { local_model: PathBuf::new(), openai: Some(OpenAiConfig::new(server.url(), "m")) };
            let backend = open_backend(&config, &source, base.path()).unwrap();
            assert!(backend.complete(&request).await.is_err());
            assert_eq!(server.request_count(), sent, "max_attempts = {max_attempts}");
        }
    }

    /// `forward.max_parallel_calls` is the one concurrency setting: the endpoint's stack serves
    /// as many calls at once as the forward pass runs (the backend's default would cap it at 16).
    #[tokio::test]
    async fn the_forward_passs_parallel_calls_set_the_backends_concurrency() {
        let base = tempfile::tempdir().unwrap();
        let source = BackendSource::Open {
            local_model: PathBuf::new(),
            openai: Some(OpenAiConfig::new("http://127.0.0.1:9/v1", "m")),
        };
        for parallel in [4, 64] {
            let mut config = ExperimentConfig::default();
            config.model.backend = Backend::Openai;
            config.cache.mode = CacheMode::Off;
            config.forward.max_parallel_calls = parallel;
            let parts = StackParts::open(&config, base.path(), PriceTable::empty()).unwrap();
            let models = crate::RunModels::open(&config, &source, base.path(), &parts).unwrap();
            assert_eq!(models.worker.model.concurrency_limit(), Some(parallel));
        }
    }
}
