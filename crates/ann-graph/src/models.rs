//! Heterogeneous teams: the model profiles an agent may name, and the resolver that turns an
//! agent's model settings into the model and call settings of its calls.
//!
//! The forward pass is given one default model (the worker) and, in [`ForwardConfig::models`]
//! (`crate::ForwardConfig`), a set of named [`ModelProfile`]s. An agent whose [`AgentModel`] names
//! no profile calls the worker with the pass's settings; one that names a profile calls that
//! profile's model with the profile's model id, token limit and seed; the agent's own `max_tokens`
//! overrides either, and its own `temperature` always applies. Calls made by no agent (routing, the
//! built-in judges) go to the worker. The format gate refuses a profile the caller does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ann_llm::{CallSettings, SharedModel};
use serde::{Deserialize, Serialize};

/// An agent's own model settings (absent fields: the network's default, the worker's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentModel {
    /// A model profile of the experiment (`[models.NAME]`); absent: the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `max_tokens` of this agent's calls, over the profile's (or the worker's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

impl AgentModel {
    /// Whether nothing is set (the agent uses the network's default; not written to files).
    pub fn is_default(&self) -> bool {
        self.profile.is_none() && self.max_tokens.is_none()
    }
}

/// A named model an agent can use: the (stacked) model and the settings its calls carry.
#[derive(Clone)]
pub struct ModelProfile {
    /// The model that answers (usually metered, cached and budgeted like the worker).
    pub model: SharedModel,
    /// The model id put in the requests.
    pub name: String,
    /// `max_tokens` of the calls (None: the pass's).
    pub max_tokens: Option<u32>,
    /// `seed` of the calls (None: the pass's).
    pub seed: Option<u64>,
}

impl fmt::Debug for ModelProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelProfile")
            .field("backend", &self.model.identity())
            .field("name", &self.name)
            .field("max_tokens", &self.max_tokens)
            .field("seed", &self.seed)
            .finish()
    }
}

impl PartialEq for ModelProfile {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.model, &other.model)
            && (&self.name, self.max_tokens, self.seed) == (&other.name, other.max_tokens, other.seed)
    }
}

/// The resolver: profile name → model and settings. Empty by default (every agent on the worker).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelProfiles {
    profiles: BTreeMap<String, ModelProfile>,
}

/// What an agent's call goes to: the model, its settings, and the profile's name (None: the worker).
pub(crate) struct Resolved<'a> {
    pub(crate) model: &'a SharedModel,
    pub(crate) settings: CallSettings,
    pub(crate) profile: Option<String>,
}

impl ModelProfiles {
    /// Add (or replace) the profile `name`.
    pub fn insert(&mut self, name: impl Into<String>, profile: ModelProfile) {
        self.profiles.insert(name.into(), profile);
    }

    /// The profile `name`.
    pub fn get(&self, name: &str) -> Option<&ModelProfile> {
        self.profiles.get(name)
    }

    /// The names of the profiles, sorted (what [`crate::ValidationRules::profiles`] should hold).
    pub fn names(&self) -> BTreeSet<String> {
        self.profiles.keys().cloned().collect()
    }

    /// Whether there is no profile.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The model and call settings of a call by an agent with `agent` settings; `worker` and
    /// `settings` are the pass's default. `None` when the agent names a profile that is not here
    /// (the format gate refuses such a network before any call).
    pub(crate) fn resolve<'a>(
        &'a self,
        worker: &'a SharedModel,
        settings: &CallSettings,
        agent: &AgentModel,
    ) -> Option<Resolved<'a>> {
        let mut resolved = match &agent.profile {
            None => Resolved { model: worker, settings: settings.clone(), profile: None },
            Some(name) => {
                let p = self.profiles.get(name)?;
                let settings = CallSettings {
                    model: p.name.clone(),
                    temperature: settings.temperature,
                    max_tokens: p.max_tokens.or(settings.max_tokens),
                    seed: p.seed.or(settings.seed),
                };
                Resolved { model: &p.model, settings, profile: Some(name.clone()) }
            }
        };
        if let Some(max) = agent.max_tokens {
            resolved.settings.max_tokens = Some(max);
        }
        Some(resolved)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_test_support::ScriptedModel;

    use super::*;

    fn profiles() -> (SharedModel, ModelProfiles) {
        let worker: SharedModel = Arc::new(ScriptedModel::new("worker"));
        let mut profiles = ModelProfiles::default();
        let big: SharedModel = Arc::new(ScriptedModel::new("big"));
        profiles
            .insert("big", ModelProfile { model: big, name: "big-model".into(), max_tokens: Some(900), seed: None });
        (worker, profiles)
    }

    #[test]
    fn an_agent_resolves_to_its_profile_or_the_worker() {
        let (worker, profiles) = profiles();
        let settings = CallSettings { model: "w".into(), temperature: 0.5, max_tokens: Some(100), seed: Some(3) };
        let default = profiles.resolve(&worker, &settings, &AgentModel::default()).unwrap();
        assert_eq!(
            (default.model.identity(), default.settings.clone(), default.profile),
            (worker.identity(), settings.clone(), None)
        );
        let big = AgentModel { profile: Some("big".into()), max_tokens: None };
        let r = profiles.resolve(&worker, &settings, &big).unwrap();
        assert_eq!(r.model.identity(), "scripted:big");
        assert_eq!(r.settings, CallSettings { model: "big-model".into(), max_tokens: Some(900), ..settings.clone() });
        assert_eq!(r.profile.as_deref(), Some("big"));
        let own = AgentModel { profile: Some("big".into()), max_tokens: Some(7) };
        assert_eq!(profiles.resolve(&worker, &settings, &own).unwrap().settings.max_tokens, Some(7));
        let own = AgentModel { profile: None, max_tokens: Some(7) };
        assert_eq!(profiles.resolve(&worker, &settings, &own).unwrap().settings.max_tokens, Some(7));
        let unknown = AgentModel { profile: Some("small".into()), max_tokens: None };
        assert!(profiles.resolve(&worker, &settings, &unknown).is_none());
        assert_eq!(profiles.names().into_iter().collect::<Vec<_>>(), ["big"]);
    }

    /// One layer whose agents use two backends: `a1` the worker, `a2` the profile `big`; each model
    /// gets its own agent's calls, and the trace names each call's model and profile.
    #[tokio::test]
    async fn one_layer_of_two_backends() {
        use crate::testing::{is_agent, one_layer};
        use crate::{AggregatorName, ForwardConfig, GraphError, RoutingMode};
        let worker = Arc::new(ScriptedModel::new("worker").fallback(|_| Ok("from the worker".into())));
        let big = Arc::new(ScriptedModel::new("big").fallback(|_| Ok("from big".into())));
        let mut net = one_layer(2, &[AggregatorName::Concatenate]);
        net.layers[0].agents[1].model = AgentModel { profile: Some("big".into()), max_tokens: Some(77) };
        let mut models = ModelProfiles::default();
        models
            .insert("big", ModelProfile { model: big.clone(), name: "big-model".into(), max_tokens: None, seed: None });
        let config = ForwardConfig {
            model: "w".into(),
            max_tokens: Some(10),
            routing: RoutingMode::Fixed,
            models,
            ..Default::default()
        };
        let shared: SharedModel = worker.clone();
        let result = crate::forward(&shared, &net, "2+2?", None, &config).await.unwrap();
        let [w] = worker.requests().try_into().unwrap();
        assert!(is_agent(&w, "solve", "a1") && w.model == "w" && w.max_tokens == Some(10), "{w:?}");
        let [b] = big.requests().try_into().unwrap();
        assert!(is_agent(&b, "solve", "a2") && b.model == "big-model" && b.max_tokens == Some(77), "{b:?}");
        let calls: Vec<_> = result.trace.layers[0]
            .calls
            .iter()
            .map(|c| (c.agent.as_deref().unwrap(), c.model.as_str(), c.profile.as_deref()))
            .collect();
        assert_eq!(calls, [("a1", "worker", None), ("a2", "big", Some("big"))]);
        assert!(result.output.contains("from the worker") && result.output.contains("from big"));
        let json = serde_json::to_string(&result.trace).unwrap();
        assert_eq!(json.matches("\"profile\":\"big\"").count(), 1, "written only for the profile's call");

        // Without the profile the pass refuses the network before any call.
        let config = ForwardConfig { models: ModelProfiles::default(), ..config };
        let err = crate::forward(&shared, &net, "2+2?", None, &config).await.unwrap_err();
        let GraphError::Invalid(violations) = &err else { panic!("{err}") };
        assert_eq!(violations[0].rule(), "model_profile", "{err}");
        assert_eq!((violations[0].layer(), violations[0].agent()), (Some("solve"), Some("a2")));
        assert!(err.to_string().contains("model profile `big` is not configured (known: none)"), "{err}");
        assert_eq!(worker.calls() + big.calls(), 2, "no further call");
    }

    #[test]
    fn unset_agent_settings_are_not_written() {
        assert!(AgentModel::default().is_default());
        assert_eq!(serde_json::to_string(&AgentModel::default()).unwrap(), "{}");
        let e = serde_json::from_str::<AgentModel>(r#"{"profil": "x"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `profil`"), "{e}");
    }
}
