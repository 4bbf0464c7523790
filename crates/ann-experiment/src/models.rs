//! The models of a run: the worker (`[model]`), the optimiser (`[optimizer]`) and the model profiles
//! agents may name (`[models.NAME]`), each with its own stack over the run's one budget, cache and
//! meter, and what each cost.
//!
//! Without `[optimizer]` the worker's stack answers the optimiser's calls (one model, as before).
//! Models whose backend is opened the same way share one backend (the embedded model is loaded
//! once), each still with its own meter.

use std::collections::BTreeMap;

use ann_graph::{ModelProfile, ModelProfiles};
use ann_llm::{SharedModel, Totals};
use serde::{Deserialize, Serialize};

use crate::config::{ExperimentConfig, ResolvedModel, resolve};
use crate::stack::{BackendSource, ModelStack, StackParts, open_model};

/// The stacks of a run's models.
pub struct RunModels {
    /// The worker: forward calls of agents on no profile, routing, judges.
    pub worker: ModelStack,
    /// The optimiser's own stack (`[optimizer]`); None: the worker's answers its calls.
    pub optimizer: Option<ModelStack>,
    /// One stack per model profile, by name.
    pub profiles: BTreeMap<String, ModelStack>,
}

/// What one model of the run cost (this process's calls, cache hits included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCost {
    /// The model id of its requests.
    pub model: String,
    /// The backend's identity (never a secret).
    pub backend: String,
    pub cost: Totals,
}

impl RunModels {
    /// Open every model `config` names from `source` and stack each over `parts`. A setup error
    /// names the model (`optimizer`, `models.NAME`).
    pub fn open(
        config: &ExperimentConfig,
        source: &BackendSource,
        base: &std::path::Path,
        parts: &StackParts,
    ) -> anyhow::Result<Self> {
        let mut opened: BTreeMap<String, SharedModel> = BTreeMap::new();
        let worker_vars = endpoint_vars(&config.model);
        let mut open = |name: Option<&str>, resolved: &ResolvedModel| -> anyhow::Result<SharedModel> {
            let own_source =
                matches!(source, BackendSource::Named { named, .. } if name.is_some_and(|n| named.contains_key(n)));
            if let (BackendSource::Open { .. } | BackendSource::Named { .. }, false) = (source, own_source)
                && resolved.section.backend == crate::Backend::Openai
                && endpoint_vars(&resolved.section) != worker_vars
            {
                let s = &resolved.section;
                anyhow::bail!(
                    "no endpoint was given for the variables {}, {} (and {}): set them",
                    s.base_url_env,
                    s.model_env,
                    s.api_key_env
                );
            }
            let key = backend_key(name, resolved, source, base);
            if let Some(model) = opened.get(&key) {
                return Ok(model.clone());
            }
            let model = open_model(&resolved.section, name, resolved.endpoint_model.as_deref(), source, base)?;
            opened.insert(key, model.clone());
            Ok(model)
        };
        let worker = ResolvedModel { section: config.model.clone(), endpoint_model: None, temperature: 0.0 };
        let worker = parts.stack(open(None, &worker)?);
        let optimizer = match &config.optimizer {
            None => None,
            Some(_) => {
                let resolved = config.optimizer_model();
                let backend = open(Some("optimizer"), &resolved)
                    .map_err(|e| e.context("opening the optimiser's model ([optimizer])"))?;
                Some(parts.stack(backend))
            }
        };
        let mut profiles = BTreeMap::new();
        for name in config.models.keys() {
            let resolved = config.profile_model(name).expect("a configured profile");
            let backend = open(Some(name), &resolved)
                .map_err(|e| e.context(format!("opening the model of profile `{name}` ([models.{name}])")))?;
            profiles.insert(name.clone(), parts.stack(backend));
        }
        Ok(Self { worker, optimizer, profiles })
    }

    /// The stack answering the optimiser's calls.
    pub fn optimizer(&self) -> &ModelStack {
        self.optimizer.as_ref().unwrap_or(&self.worker)
    }

    /// The resolver the forward pass takes: each profile's stacked model and call settings.
    pub fn profiles(&self, config: &ExperimentConfig) -> ModelProfiles {
        let mut out = ModelProfiles::default();
        for (name, stack) in &self.profiles {
            let section = config.profile_model(name).expect("a configured profile").section;
            out.insert(
                name.clone(),
                ModelProfile {
                    model: stack.model.clone(),
                    name: section.name,
                    max_tokens: section.max_tokens,
                    seed: section.seed,
                },
            );
        }
        out
    }

    /// What each model cost, by the name the report uses: `worker`, `optimizer` (when it has its
    /// own model) and each profile's name.
    pub fn costs(&self, config: &ExperimentConfig) -> BTreeMap<String, ModelCost> {
        let cost = |model: String, stack: &ModelStack| ModelCost {
            model,
            backend: stack.identity.clone(),
            cost: stack.own_meter.report().total,
        };
        let mut out = BTreeMap::new();
        out.insert("worker".to_string(), cost(config.model.name.clone(), &self.worker));
        if let Some(stack) = &self.optimizer {
            out.insert("optimizer".to_string(), cost(config.optimizer_model().section.name, stack));
        }
        for (name, stack) in &self.profiles {
            let model = config.profile_model(name).expect("a configured profile").section.name;
            out.insert(name.clone(), cost(model, stack));
        }
        out
    }
}

/// The names of the environment variables of a model's endpoint.
fn endpoint_vars(s: &crate::config::ModelSection) -> [&str; 3] {
    [&s.base_url_env, &s.model_env, &s.api_key_env]
}

/// Models with equal keys are opened once: the same source and the same way of opening it.
fn backend_key(name: Option<&str>, resolved: &ResolvedModel, source: &BackendSource, base: &std::path::Path) -> String {
    let source_name = match (source, name) {
        (BackendSource::Named { named, .. }, Some(n)) if named.contains_key(n) => n,
        _ => "worker",
    };
    let s = &resolved.section;
    let local_path = s.local_path.as_deref().map(|p| resolve(base, p));
    format!(
        "{source_name}|{:?}|{local_path:?}|{}|{}|{}|{:?}",
        s.backend, s.base_url_env, s.model_env, s.api_key_env, resolved.endpoint_model
    )
}
