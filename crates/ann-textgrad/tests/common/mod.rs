//! A synthetic environment of scripted models in which training can be seen to learn.
//!
//! The task: name a country's capital, in uppercase. The worker knows the capitals but writes
//! them in uppercase only when its prompt says `UPPERCASE`; it knows no capital of Atlantis or
//! Lemuria. The evaluator's feedback says when an answer is right but not in uppercase. The
//! optimiser reads that feedback: its local gradient proposes the `UPPERCASE` instruction (the
//! improving patch) when the feedback asks for uppercase letters, and otherwise copies the
//! training answer into the prompt (`ALWAYS SAY ...`, the harmful patch the gate must reject).
//! Every reply is a pure function of the request, so the same replies come from a
//! `ScriptedModel` in process and from the fake OpenAI server over HTTP.

#![allow(dead_code)]

use std::sync::Arc;

use ann_graph::Network;
use ann_test_support::ScriptedModel;
use ann_textgrad::{EvalError, Evaluation, Evaluator, Example, TrainData};
use async_trait::async_trait;

pub const NETWORK: &str = r#"{
  "version": 1,
  "task_description": "Name the capital city of the country in the question. Reply with that city only.",
  "layers": [
    {
      "id": "read",
      "subtask": "restate the question",
      "agents": [{"id": "a1", "role": "A careful reader.", "prompt": "Restate: {input}", "temperature": 0.0}],
      "aggregators": ["single"],
      "default_aggregator": "single",
      "routing_hint": "",
      "output_spec": "the question, restated"
    },
    {
      "id": "answer",
      "subtask": "name the capital",
      "agents": [{"id": "a1", "role": "A geographer.", "prompt": "Answer the question: {input}", "temperature": 0.0}],
      "aggregators": ["single", "concatenate"],
      "default_aggregator": "single",
      "routing_hint": "",
      "output_spec": "the capital only, in the required answer format"
    }
  ]
}"#;

pub fn network() -> Network {
    Network::from_json(NETWORK).expect("the environment's network parses")
}

/// The improving instruction.
pub const FIX: &str = "Write the answer in UPPERCASE letters.";

fn capital(country: &str) -> Option<&'static str> {
    Some(match country {
        "france" => "paris",
        "italy" => "rome",
        "spain" => "madrid",
        "germany" => "berlin",
        "japan" => "tokyo",
        "peru" => "lima",
        "egypt" => "cairo",
        _ => return None,
    })
}

fn country_in(text: &str) -> Option<&str> {
    let rest = &text[text.find("capital of ")? + "capital of ".len()..];
    rest.split(|c: char| !c.is_ascii_alphabetic()).next()
}

fn example(country: &str, reference: &str) -> Example {
    Example::new(format!("q-{country}"), format!("What is the capital of {country}?")).with_reference(reference)
}

/// Train: three known countries and Atlantis; validation: three known ones and Lemuria.
pub fn data() -> TrainData {
    TrainData {
        train: vec![
            example("france", "PARIS"),
            example("italy", "ROME"),
            example("spain", "MADRID"),
            example("atlantis", "POSEIDONIA"),
        ],
        validation: vec![
            example("germany", "BERLIN"),
            example("japan", "TOKYO"),
            example("peru", "LIMA"),
            example("lemuria", "MU"),
        ],
    }
}

/// Exact match with the reference; the feedback says what was wrong.
pub struct Capitals;

#[async_trait]
impl Evaluator for Capitals {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let reference = example.reference.as_deref().unwrap_or("");
        let got = output.trim();
        Ok(if got == reference {
            Evaluation::pass("correct")
        } else if got.to_uppercase() == reference {
            Evaluation::fail(format!("got `{got}`: right capital, but the answer must be written in uppercase letters"))
        } else {
            Evaluation::fail(format!("got `{got}`: not the capital"))
        })
    }
}

/// The reply of every model of the environment to a conversation (system first, user last).
pub fn reply(messages: &[(String, String)]) -> String {
    let system = messages.first().map(|m| m.1.as_str()).unwrap_or("");
    let user = messages.last().map(|m| m.1.as_str()).unwrap_or("");
    // Forward phase.
    if system.contains("You route one layer") {
        return r#"{"aggregator": "single", "reason": "one agent is enough"}"#.into();
    }
    if system.contains("of the team `read`") {
        let country = country_in(user).unwrap_or("nowhere");
        return format!("Question: what is the capital of {country}?");
    }
    if system.contains("of the team `answer`") {
        if let Some(i) = user.find("ALWAYS SAY ") {
            return user[i + "ALWAYS SAY ".len()..].split('.').next().unwrap_or("").to_string();
        }
        let answer = country_in(user).and_then(capital).unwrap_or("unknown");
        return if user.contains("UPPERCASE") { answer.to_uppercase() } else { answer.to_string() };
    }
    // Backward phase.
    if system.contains("loss function") {
        return if user.contains("uppercase letters") {
            "<critique>The capital is right but written in lowercase.</critique>\n<requirement>The final answer must be the capital in uppercase letters.</requirement>".into()
        } else {
            "<critique>The system does not know this capital.</critique>\n<requirement>The correct capital.</requirement>".into()
        };
    }
    if system.contains("critic of a multi-layer") {
        return r#"{"diagnosis": "the answer layer writes the capital in the wrong form", "layers": [{"layer": "read", "blame": 0.0, "issue": "", "direction": ""}, {"layer": "answer", "blame": 0.9, "issue": "wrong letter case", "direction": "state the answer format"}], "structural": [{"kind": "none", "why": ""}]}"#.into();
    }
    if system.contains("optimiser of one layer") {
        if !user.contains("Layer `answer`") {
            return "<gradient>This layer is fine.</gradient><requirement_for_previous>the question</requirement_for_previous><patch>[]</patch>".into();
        }
        if user.contains("uppercase letters") && !user.contains("UPPERCASE") {
            return format!(
                "<gradient>The answers are right but lowercase; the prompt must ask for uppercase letters.</gradient>\n<requirement_for_previous>The question with the country named.</requirement_for_previous>\n<patch>[{{\"op\": \"set_prompt\", \"layer\": \"answer\", \"agent\": \"a1\", \"value\": \"Answer the question: {{input}}\\n{FIX}\"}}]</patch>"
            );
        }
        // Nothing general to learn: copy the training answer into the prompt (harmful).
        return format!(
            "<gradient>The layer does not know the capital.</gradient>\n<requirement_for_previous>The question.</requirement_for_previous>\n<patch>[{{\"op\": \"set_prompt\", \"layer\": \"answer\", \"agent\": \"a1\", \"value\": \"ALWAYS SAY POSEIDONIA. {{input}} {FIX}\"}}]</patch>"
        );
    }
    format!("unexpected request: {system}")
}

/// A scripted model answering with [`reply`].
pub fn scripted(name: &str) -> ScriptedModel {
    ScriptedModel::new(name).fallback(|request| {
        let messages: Vec<(String, String)> =
            request.messages.iter().map(|m| (format!("{:?}", m.role), m.content.clone())).collect();
        Ok(reply(&messages))
    })
}

pub fn objective() -> Arc<dyn Evaluator> {
    Arc::new(Capitals)
}

/// The fake OpenAI-compatible server answering with this environment's replies (the same replies
/// as [`scripted`], over HTTP).
pub async fn server() -> ann_test_support::server::FakeServer {
    use ann_test_support::server::{FakeServer, FakeServerConfig};
    let config = FakeServerConfig::default().with_reply(|body| {
        let messages: Vec<(String, String)> = body["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
                        (text("role"), text("content"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        reply(&messages)
    });
    FakeServer::start(config).await.expect("the fake server starts")
}

/// A run file's text, or a panic naming the file.
pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
