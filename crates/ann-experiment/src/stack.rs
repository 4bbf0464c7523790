//! The model stack of a run: Metered(Cached(Budgeted(backend))), and opening the configured backend.

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

/// The stacked model of a run and its meter and budget.
pub struct ModelStack {
    /// Metered(Cached(Budgeted(backend))).
    pub model: SharedModel,
    pub meter: Arc<Meter>,
    pub budget: Arc<Budget>,
    /// The backend's identity (cache key part, shown in the report).
    pub identity: String,
}

/// Open the backend `config.model` asks for.
pub fn open_backend(
    config: &ExperimentConfig,
    source: &BackendSource,
    base: &std::path::Path,
) -> anyhow::Result<SharedModel> {
    match source {
        BackendSource::Model(model) => Ok(model.clone()),
        BackendSource::Open { local_model, openai } => match config.model.backend {
            Backend::Local => {
                let path = config.model.local_path.as_deref().map(|p| resolve(base, p)).unwrap_or(local_model.clone());
                if !path.is_file() {
                    bail!("the embedded model file {} is missing: run `cargo xtask fetch-model` first", path.display());
                }
                let local = LocalConfig {
                    default_max_tokens: config.model.max_tokens.unwrap_or(512),
                    default_seed: config.model.seed.unwrap_or(0),
                    ..LocalConfig::default()
                };
                let opened = if config.model.local_path.is_some() {
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
                        "model.backend = \"openai\" needs an endpoint: set {} and {} (and {} for a key)",
                        config.model.base_url_env,
                        config.model.model_env,
                        config.model.api_key_env
                    );
                };
                let openai = with_http_policy(openai, &config.model);
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
    let identity = backend.identity();
    let budget = Budget::new(config.budget.limits(), prices.clone());
    let budgeted: SharedModel = Arc::new(ann_llm::BudgetedModel::new(backend, budget.clone()));
    // With the cache off no SQLite file is made, or even opened.
    let cached: SharedModel = if config.cache.mode == CacheMode::Off {
        budgeted
    } else {
        let cache_path = resolve(base, &config.cache.path);
        if let Some(parent) = cache_path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let cache_config = CacheConfig {
            claim_lease: std::time::Duration::from_millis(config.cache.claim_lease_ms.max(1)),
            ..CacheConfig::default()
        };
        let cache = ResponseCache::open_with(&cache_path, &cache_config)
            .with_context(|| format!("opening the response cache {}", cache_path.display()))?;
        Arc::new(CachedModel::new(budgeted, cache).with_mode(config.cache.mode))
    };
    let meter = Meter::new(prices);
    let model: SharedModel = Arc::new(MeteredModel::new(cached, meter.clone()));
    Ok(ModelStack { model, meter, budget, identity })
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
}
