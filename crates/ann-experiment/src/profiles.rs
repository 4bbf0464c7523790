//! `[optimizer]` and `[models.NAME]` tables of an experiment config: another model of the run, each key
//! it sets replacing the worker's (`[model]`), resolved into a full [`ModelSection`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Backend, ModelSection};

/// Another model of the run (`[optimizer]`, `[models.NAME]`): each key set here replaces the
/// worker's (`[model]`); HTTP timeouts, retries and prices stay `[model]`'s.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelOverride {
    /// `local` (or `embedded`) or `openai`; a backend other than the worker's needs `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// The model id put in the requests (and, for `openai`, asked of the endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The embedded model file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_path: Option<PathBuf>,
    /// Names (never values) of the environment variables of this model's endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// `[optimizer]` only: the temperature of its calls (default `[model] optimizer_temperature`);
    /// an agent's temperature is its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// `max_tokens` of each call (default: `[model] optimizer_max_tokens` for the optimiser,
    /// `[model] max_tokens` for a profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Seed of each call (default `[model] seed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A model of the run with every setting resolved: which backend, under which name.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    /// The worker's section with this model's keys in place (`max_tokens`, `seed` are its calls').
    pub section: ModelSection,
    /// The model id to ask the endpoint for, when this model sets its own `name`.
    pub endpoint_model: Option<String>,
    /// Temperature of the optimiser's calls.
    pub temperature: f32,
}

impl ModelOverride {
    /// This model over the worker's `base`, with `max_tokens` defaulting to `default_max_tokens`.
    pub(crate) fn resolve(
        &self,
        base: &ModelSection,
        default_max_tokens: Option<u32>,
        temperature: f32,
    ) -> ResolvedModel {
        let mut section = base.clone();
        section.backend = self.backend.unwrap_or(base.backend);
        let set = |target: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                target.clone_from(v);
            }
        };
        set(&mut section.name, &self.name);
        set(&mut section.base_url_env, &self.base_url_env);
        set(&mut section.model_env, &self.model_env);
        set(&mut section.api_key_env, &self.api_key_env);
        if self.local_path.is_some() {
            section.local_path.clone_from(&self.local_path);
        }
        section.max_tokens = self.max_tokens.or(default_max_tokens);
        section.seed = self.seed.or(base.seed);
        ResolvedModel {
            section,
            endpoint_model: self.name.clone(),
            temperature: self.temperature.unwrap_or(temperature),
        }
    }

    /// The keys this model cannot hold; `at` names its table in the error.
    pub(crate) fn check(&self, at: &str, worker: Backend, profile: bool) -> anyhow::Result<()> {
        if self.backend.is_some_and(|b| b != worker) && self.name.is_none() {
            anyhow::bail!("`{at}`: a backend other than `[model]`'s needs `name` (the model id to ask for)");
        }
        if profile && self.temperature.is_some() {
            anyhow::bail!("`{at}.temperature`: a model profile sets no temperature (each agent has its own)");
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            anyhow::bail!("`{at}.temperature` must be in 0..=2");
        }
        Ok(())
    }
}

/// Names the run's models are reported under; a profile may not take them.
pub const RESERVED_MODEL_NAMES: [&str; 2] = ["worker", "optimizer"];
