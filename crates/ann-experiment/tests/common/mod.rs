//! A benchmark in which training visibly learns, for report tests: name a country's capital in
//! UPPERCASE. The worker knows the capitals but writes them in uppercase only when its prompt says
//! `UPPERCASE`; the optimiser proposes that instruction when the feedback asks for uppercase
//! letters (the improving patch) and otherwise copies an answer into the prompt (a harmful patch
//! the validation gate rejects). The `read` layer's output carries hostile markup, as model
//! output may. Every reply is a pure function of the request, in process or over HTTP.

#![allow(dead_code)]

use std::sync::Arc;

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use ann_test_support::ScriptedModel;
use ann_test_support::server::{FakeServer, FakeServerConfig};

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

/// The improving instruction.
pub const FIX: &str = "Write the answer in UPPERCASE letters.";
/// Markup a hostile model writes; a report must show it as text.
pub const HOSTILE: &str = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>";

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

/// The capitals benchmark: 4 train, 4 validation, 3 test examples.
pub struct Capitals {
    splits: [Vec<Example>; 3],
}

impl Capitals {
    pub fn shared() -> Arc<dyn Benchmark> {
        Arc::new(Self {
            splits: [
                vec![
                    example("france", "PARIS"),
                    example("italy", "ROME"),
                    example("spain", "MADRID"),
                    example("atlantis", "POSEIDONIA"),
                ],
                vec![
                    example("germany", "BERLIN"),
                    example("japan", "TOKYO"),
                    example("peru", "LIMA"),
                    example("lemuria", "MU"),
                ],
                vec![example("egypt", "CAIRO"), example("japan", "TOKYO"), example("lemuria", "MU")],
            ],
        })
    }
}

#[async_trait::async_trait]
impl Benchmark for Capitals {
    fn name(&self) -> &str {
        "capitals"
    }
    fn task_description(&self) -> &str {
        "Name the capital city of the country in the question. Reply with that city only."
    }
    fn answer_format(&self) -> &str {
        "the capital only"
    }
    fn examples(&self, split: Split) -> &[Example] {
        match split {
            Split::Train => &self.splits[0],
            Split::Validation => &self.splits[1],
            Split::Test => &self.splits[2],
        }
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        Some(output.trim().to_string())
    }
    fn starting_network(&self) -> &str {
        NETWORK
    }
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
pub fn reply(system: &str, user: &str) -> String {
    if system.contains("You route one layer") {
        return r#"{"aggregator": "single", "reason": "one agent is enough"}"#.into();
    }
    if system.contains("of the team `read`") {
        let country = country_in(user).unwrap_or("nowhere");
        return format!("Question: what is the capital of {country}? {HOSTILE}");
    }
    if system.contains("of the team `answer`") {
        if let Some(i) = user.find("ALWAYS SAY ") {
            return user[i + "ALWAYS SAY ".len()..].split('.').next().unwrap_or("").to_string();
        }
        let answer = country_in(user).and_then(capital).unwrap_or("unknown");
        return if user.contains("UPPERCASE") { answer.to_uppercase() } else { answer.to_string() };
    }
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
                "<gradient>The answers are right but lowercase; the prompt must ask for uppercase letters.</gradient>\n<requirement_for_previous>The question with the country named.</requirement_for_previous>\n<patch>[{{\"op\": \"set_prompt\", \"layer\": \"answer\", \"agent\": \"a1\", \"value\": \"Answer the question: {{input}}\\n{FIX}\"}}, {{\"op\": \"set_role\", \"layer\": \"answer\", \"agent\": \"a1\", \"value\": \"A precise geographer.\"}}]</patch>"
            );
        }
        return format!(
            "<gradient>The layer does not know the capital.</gradient>\n<requirement_for_previous>The question.</requirement_for_previous>\n<patch>[{{\"op\": \"set_prompt\", \"layer\": \"answer\", \"agent\": \"a1\", \"value\": \"ALWAYS SAY POSEIDONIA. {{input}} {FIX}\"}}]</patch>"
        );
    }
    format!("unexpected request: {}", system.chars().take(80).collect::<String>())
}

/// A scripted model answering with [`reply`].
pub fn scripted() -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new("scripted").fallback(|request| {
        let text = |i: usize| request.messages.get(i).map(|m| m.content.clone()).unwrap_or_default();
        Ok(reply(&text(0), &text(request.messages.len().saturating_sub(1))))
    }))
}

/// The fake OpenAI-compatible server answering with [`reply`] over HTTP.
pub async fn server() -> FakeServer {
    let config = FakeServerConfig::default().with_reply(|body| {
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let text = |i: usize| messages.get(i).and_then(|m| m["content"].as_str()).unwrap_or("").to_string();
        reply(&text(0), &text(messages.len().saturating_sub(1)))
    });
    FakeServer::start(config).await.expect("the fake server starts")
}

/// The experiment of these tests: two epochs over the capitals, one baseline.
pub const CONFIG: &str = r#"
name = "capitals"
baselines = ["direct"]
[benchmark]
name = "mmlu-ml"
[model]
max_tokens = 64
optimizer_max_tokens = 256
[train]
epochs = 2
batch_size = 2
patience = 0
[report]
bootstrap_resamples = 200
"#;
