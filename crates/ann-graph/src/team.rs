//! Team construction: a decomposition prompt builds a network for a task, validated against the
//! schema, with bounded retries that show the model its errors and a fallback network.

use ann_llm::answer::first_json_object;
use ann_llm::{CallSettings, Message, ResponseFormat, SharedModel, Usage};
use serde::Serialize;

use crate::{AggregatorName, GraphError, Network, ValidationRules, prompts};

/// Settings of team construction.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamConfig {
    /// Model, temperature, token limit and seed of the decomposition calls.
    pub call: CallSettings,
    /// Calls before falling back (the first answer plus retries).
    pub max_attempts: u32,
}

impl Default for TeamConfig {
    fn default() -> Self {
        let call = CallSettings { temperature: 0.3, max_tokens: Some(4096), ..CallSettings::default() };
        Self { call, max_attempts: 3 }
    }
}

/// A trained network shown to team construction as an example to build on, with its name (where
/// it came from, e.g. a run directory) and its validation score (`None`: not known).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryNetwork {
    pub name: String,
    pub validation: Option<f64>,
    pub network: Network,
}

/// What team construction is asked: the task, a few example inputs of it, and a library of trained
/// networks (empty for a first construction).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TeamBrief {
    pub task_description: String,
    pub examples: Vec<String>,
    pub library: Vec<LibraryNetwork>,
}

/// Where the constructed network came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamSource {
    /// The model's network passed validation.
    Model,
    /// Every attempt failed: the given starting network.
    Fallback,
}

/// One decomposition call and why its answer was rejected (empty `errors`: accepted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamAttempt {
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    pub errors: Vec<String>,
}

/// The result of team construction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamOutcome {
    pub network: Network,
    pub source: TeamSource,
    pub attempts: Vec<TeamAttempt>,
    pub usage: Usage,
}

/// The JSON schema of a network answer, with `rules`' limits (for constrained decoding).
pub fn network_schema(rules: &ValidationRules) -> serde_json::Value {
    let names: Vec<&str> = AggregatorName::ALL.iter().map(|a| a.as_str()).collect();
    let slug = serde_json::json!({"type": "string", "pattern": "^[a-z0-9_-]+$"});
    serde_json::json!({
        "type": "object",
        "properties": {
            "version": {"type": "integer", "const": crate::SCHEMA_VERSION},
            "task_description": {"type": "string"},
            "layers": {
                "type": "array", "minItems": 1, "maxItems": rules.max_layers,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": slug,
                        "subtask": {"type": "string"},
                        "agents": {
                            "type": "array", "minItems": 1, "maxItems": rules.max_agents,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": slug,
                                    "role": {"type": "string"},
                                    "prompt": {"type": "string", "maxLength": rules.max_prompt_chars},
                                    "temperature": {"type": "number", "minimum": 0, "maximum": 2}
                                },
                                "required": ["id", "role", "prompt", "temperature"],
                                "additionalProperties": false
                            }
                        },
                        "aggregators": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}},
                        "default_aggregator": {"type": "string", "enum": names},
                        "routing_hint": {"type": "string"},
                        "output_spec": {"type": "string"}
                    },
                    "required": ["id", "subtask", "agents", "aggregators", "default_aggregator", "routing_hint", "output_spec"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["version", "task_description", "layers"],
        "additionalProperties": false
    })
}

/// Parse a decomposition reply: the first JSON object as a network, with `task_description` set
/// to the given one. Errors are the messages shown to the model on retry.
pub fn parse_network_reply(
    reply: &str,
    task_description: &str,
    rules: &ValidationRules,
) -> Result<Network, Vec<String>> {
    let object = first_json_object(reply).ok_or_else(|| vec!["the reply holds no JSON object".to_string()])?;
    let mut net: Network = serde_path_to_error::deserialize(serde_json::Value::Object(object))
        .map_err(|e| vec![format!("[schema] at `{}`: {}", e.path(), e.inner())])?;
    net.task_description = task_description.to_string();
    net.validate(rules).map_err(|v| v.iter().map(|v| v.to_string()).collect::<Vec<_>>())?;
    Ok(net)
}

/// Ask `model` for a network for the brief's task, given its example inputs and library; retry with
/// the validation errors up to `config.max_attempts` calls; fall back to `fallback` (which must
/// itself be valid). A failed call falls back at once (the model already retried); an exhausted
/// budget or an infrastructure failure is an error.
pub async fn construct_team(
    model: &SharedModel,
    brief: &TeamBrief,
    rules: &ValidationRules,
    fallback: &Network,
    config: &TeamConfig,
) -> Result<TeamOutcome, GraphError> {
    fallback.validate(rules).map_err(GraphError::Invalid)?;
    let task_description = brief.task_description.as_str();
    let examples: Vec<&str> = brief.examples.iter().map(String::as_str).collect();
    let mut messages = prompts::decomposition(task_description, &examples, &brief.library, rules);
    let format = ResponseFormat::JsonSchema { name: "network".into(), schema: network_schema(rules), strict: false };
    let mut attempts = Vec::new();
    let mut usage = Usage::default();
    for _ in 0..config.max_attempts {
        let request =
            config.call.request(messages.clone()).with_response_format(format.clone()).with_tag("phase", "team");
        let reply = match model.complete(&request).await {
            Ok(response) => {
                usage += response.usage;
                response.text
            }
            Err(e) if e.budget_exhausted().is_some() => {
                return Err(GraphError::BudgetExhausted { stage: "team construction".into(), source: e, trace: None });
            }
            // Never a fallback network for an unreachable endpoint: the caller sees the failure.
            Err(e) if e.is_infrastructure() => {
                let stage = "team construction".into();
                return Err(GraphError::InfrastructureFailure { stage, source: e, trace: None });
            }
            Err(e) => {
                attempts.push(TeamAttempt { messages, reply: None, errors: vec![format!("call failed: {e}")] });
                break;
            }
        };
        match parse_network_reply(&reply, task_description, rules) {
            Ok(network) => {
                attempts.push(TeamAttempt { messages, reply: Some(reply), errors: Vec::new() });
                return Ok(TeamOutcome { network, source: TeamSource::Model, attempts, usage });
            }
            Err(errors) => {
                let retry = prompts::decomposition_retry(&errors);
                attempts.push(TeamAttempt { messages: messages.clone(), reply: Some(reply.clone()), errors });
                messages.push(Message::assistant(reply));
                messages.push(Message::user(retry));
            }
        }
    }
    Ok(TeamOutcome { network: fallback.clone(), source: TeamSource::Fallback, attempts, usage })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_llm::LlmError;
    use ann_test_support::ScriptedModel;

    use super::*;
    use crate::testing::{SAMPLE_NETWORK, sample_network};

    fn rules() -> ValidationRules {
        ValidationRules::with_answer_format("\\boxed{}")
    }

    async fn construct(model: &Arc<ScriptedModel>) -> Result<TeamOutcome, GraphError> {
        let shared: SharedModel = model.clone();
        let fallback = sample_network();
        let brief = TeamBrief {
            task_description: "Solve maths problems.".into(),
            examples: vec!["What is 2+2?".into()],
            library: Vec::new(),
        };
        construct_team(&shared, &brief, &rules(), &fallback, &TeamConfig::default()).await
    }

    #[tokio::test]
    async fn a_valid_answer_is_taken_after_a_retry_that_shows_the_errors() {
        let bad = SAMPLE_NETWORK.replace("Solve: {input}", "Solve it");
        let good = SAMPLE_NETWORK.replace("A careful reader.", "A patient reader.");
        let model = Arc::new(ScriptedModel::default());
        model.push_reply(format!("Here it is:\n```json\n{bad}\n```"));
        model.push_reply(good);
        let outcome = construct(&model).await.unwrap();
        assert_eq!(outcome.source, TeamSource::Model);
        assert_eq!(outcome.network.layers[0].agents[0].role, "A patient reader.");
        assert_eq!(outcome.network.task_description, "Solve maths problems.");
        assert_eq!(outcome.attempts.len(), 2);
        assert_eq!(
            outcome.attempts[0].errors,
            ["[placeholder] agent `a1` in layer `solve`: the prompt lacks `{input}`"]
        );
        let second = &model.requests()[1];
        assert_eq!(second.messages.len(), 4, "system, user, the bad answer, the errors");
        assert!(second.messages[3].content.contains("the prompt lacks `{input}`"));
        assert_eq!(second.tags.get("phase").map(String::as_str), Some("team"));
        assert!(matches!(second.response_format, ResponseFormat::JsonSchema { .. }));
        assert!(outcome.usage.completion_tokens > 0);
    }

    #[tokio::test]
    async fn falls_back_after_bounded_attempts_or_a_failed_call() {
        let model = Arc::new(ScriptedModel::default().fallback(|_| Ok(r#"{"layers": "none"}"#.into())));
        let outcome = construct(&model).await.unwrap();
        assert_eq!((outcome.source, outcome.attempts.len(), model.calls()), (TeamSource::Fallback, 3, 3));
        assert_eq!(outcome.network, sample_network());
        assert!(outcome.attempts[0].errors[0].starts_with("[schema] at `layers`"), "{:?}", outcome.attempts[0].errors);

        let overflow = || LlmError::ContextOverflow { prompt_tokens: 9000, context: 8192 };
        let model = Arc::new(ScriptedModel::default().fallback(move |_| Err(overflow())));
        let outcome = construct(&model).await.unwrap();
        assert_eq!((outcome.source, outcome.attempts.len()), (TeamSource::Fallback, 1));

        let model =
            Arc::new(ScriptedModel::default().fallback(|_| Err(LlmError::Timeout(std::time::Duration::from_secs(9)))));
        assert!(construct(&model).await.unwrap_err().is_infrastructure_failure());

        let model = Arc::new(ScriptedModel::default().fallback(|_| Err(LlmError::BudgetExhausted("cap".into()))));
        assert!(construct(&model).await.unwrap_err().is_budget_exhausted());
    }

    #[tokio::test]
    async fn an_invalid_fallback_is_a_configuration_error() {
        let model = Arc::new(ScriptedModel::default());
        let shared: SharedModel = model.clone();
        let mut fallback = sample_network();
        fallback.layers[2].output_spec = "anything".into();
        let brief = TeamBrief { task_description: "t".into(), ..TeamBrief::default() };
        let e = construct_team(&shared, &brief, &rules(), &fallback, &TeamConfig::default()).await.unwrap_err();
        assert!(matches!(&e, GraphError::Invalid(v) if v[0].rule() == "answer_format"), "{e}");
        assert_eq!(model.calls(), 0);
    }

    #[test]
    fn the_schema_names_every_field_of_the_types() {
        let schema = network_schema(&rules());
        let keys =
            |v: &serde_json::Value| -> Vec<String> { v["properties"].as_object().unwrap().keys().cloned().collect() };
        let net = serde_json::to_value(sample_network()).unwrap();
        let fields = |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let layer_schema = &schema["properties"]["layers"]["items"];
        assert_eq!(keys(&schema), fields(&net));
        assert_eq!(keys(layer_schema), fields(&net["layers"][0]));
        assert_eq!(keys(&layer_schema["properties"]["agents"]["items"]), fields(&net["layers"][0]["agents"][0]));
        insta::assert_json_snapshot!(schema);
    }
}
