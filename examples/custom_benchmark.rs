//! Training on a benchmark of your own: examples in code, an [`Evaluator`] whose feedback says what
//! was wrong, and [`Trainer`] running forward, textual backpropagation and the validation gate,
//! with its journal and checkpoint in a run directory.
//!
//! `cargo run -p examples --example custom_benchmark` (the embedded model, or the endpoint of
//! `ANN_OPENAI_BASE_URL` / `ANN_OPENAI_MODEL`).

use std::sync::Arc;

use ann_eval::{EvalError, Evaluation, Evaluator, Example};
use ann_graph::Network;
use ann_textgrad::{JournalEvent, RunFiles, TrainConfig, TrainData, Trainer};
use async_trait::async_trait;

/// The answer must be the capital in uppercase letters; the feedback says which part was wrong.
struct UppercaseCapitals;

#[async_trait]
impl Evaluator for UppercaseCapitals {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let reference = example.reference.as_deref().unwrap_or_default();
        let answer = output.trim().trim_end_matches('.');
        Ok(if answer == reference {
            Evaluation::pass("correct")
        } else if answer.eq_ignore_ascii_case(reference) {
            Evaluation::fail(format!("`{answer}` is the right city, but the answer must be in UPPERCASE letters"))
        } else {
            Evaluation::fail(format!("`{answer}` is not the answer: reply with the capital only, in UPPERCASE"))
        })
    }
}

fn examples(pairs: &[(&str, &str)]) -> Vec<Example> {
    pairs
        .iter()
        .map(|(country, city)| {
            Example::new(country.to_string(), format!("What is the capital of {country}?")).with_reference(*city)
        })
        .collect()
}

const NETWORK: &str = r#"{
  "version": 1,
  "task_description": "Name the capital city of the country in the question.",
  "layers": [{
    "id": "answer",
    "subtask": "name the capital",
    "agents": [{"id": "geographer", "role": "A geographer.", "prompt": "{task}\n{input}", "temperature": 0.0}],
    "aggregators": ["single"],
    "default_aggregator": "single",
    "output_spec": "the capital only"
  }]
}"#;

pub async fn run(chosen: examples::Chosen, dir: &std::path::Path) -> anyhow::Result<String> {
    let data = TrainData {
        train: examples(&[("France", "PARIS"), ("Italy", "ROME"), ("Spain", "MADRID"), ("Japan", "TOKYO")]),
        validation: examples(&[("Germany", "BERLIN"), ("Egypt", "CAIRO"), ("Peru", "LIMA")]),
    };
    let mut config = TrainConfig { epochs: 1, batch_size: 2, seed: 0, ..TrainConfig::default() };
    config.forward.model = chosen.name.clone();
    config.forward.max_tokens = Some(24);
    config.optimizer.model = chosen.name;
    config.optimizer.max_tokens = Some(256);
    // The same model answers the forward calls and the optimiser's (a stronger optimiser is one
    // more `SharedModel`).
    let trainer = Trainer::new(chosen.model.clone(), chosen.model, Arc::new(UppercaseCapitals), config);
    let outcome = trainer.train(&Network::from_json(NETWORK)?, &data, dir).await?;
    let mut report = format!(
        "validation {:.3} -> {:.3}; {} steps, {} accepted ({:?})\n",
        outcome.val_initial, outcome.val_best, outcome.optimizer.steps, outcome.optimizer.accepted, outcome.stop
    );
    for event in RunFiles::new(dir)?.read_journal()? {
        if let JournalEvent::Step(step) = event {
            report.push_str(&format!("step {}: {:?}\n", step.step, step.decision));
        }
    }
    report.push_str(&format!("trained prompt: {:?}\n", outcome.best.layers[0].agents[0].prompt));
    Ok(report)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    print!("{}", run(examples::model_from_env()?, dir.path()).await?);
    println!("journal and checkpoint were in {} (removed)", dir.path().display());
    Ok(())
}
