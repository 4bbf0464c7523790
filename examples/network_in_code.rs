//! A network built in code and run forward on one input: two layers, a team of two solvers whose
//! answers routing combines per input, and the trace of every call.
//!
//! `cargo run -p examples --example network_in_code` (the embedded model), or with
//! `ANN_OPENAI_BASE_URL` / `ANN_OPENAI_MODEL` set, on that endpoint.

use ann_graph::{Agent, AggregatorName, ForwardConfig, Layer, Network, ValidationRules, forward};

fn agent(id: &str, role: &str, prompt: &str) -> Agent {
    Agent { id: id.into(), role: role.into(), prompt: prompt.into(), temperature: 0.0, model: Default::default() }
}

/// Plan, then solve with a team of two.
fn network() -> Network {
    Network {
        version: ann_graph::SCHEMA_VERSION,
        task_description: "Answer the arithmetic question. End with `Answer: <number>`.".into(),
        layers: vec![
            Layer {
                id: "plan".into(),
                subtask: "say which operation the question needs".into(),
                agents: vec![agent("planner", "A careful reader.", "Task: {task}\nWhich operation does {input} need?")],
                aggregators: vec![AggregatorName::Single],
                default_aggregator: AggregatorName::Single,
                routing_hint: String::new(),
                output_spec: "one sentence naming the operation".into(),
            },
            Layer {
                id: "solve".into(),
                subtask: "compute the answer".into(),
                agents: vec![
                    agent("quick", "A quick calculator.", "Task: {task}\nPlan: {input}\nGive the result."),
                    agent(
                        "checker",
                        "A calculator who checks twice.",
                        "Task: {task}\nPlan: {input}\nCompute, check, answer.",
                    ),
                ],
                aggregators: vec![AggregatorName::MajorityVote, AggregatorName::Concatenate],
                default_aggregator: AggregatorName::MajorityVote,
                routing_hint: "vote when the answers are numbers".into(),
                output_spec: "the result, ending with `Answer: <number>`".into(),
            },
        ],
    }
}

pub async fn run(chosen: examples::Chosen, question: &str) -> anyhow::Result<String> {
    let net = network();
    net.validate(&ValidationRules::default()).map_err(|v| {
        anyhow::anyhow!("invalid network: {}", v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let config = ForwardConfig { model: chosen.name, max_tokens: Some(64), seed: Some(0), ..Default::default() };
    let result = forward(&chosen.model, &net, question, None, &config).await?;
    let mut report = String::new();
    for layer in &result.trace.layers {
        report.push_str(&format!(
            "layer `{}`: {} ({:?}), {} calls\n",
            layer.layer,
            layer.routing.aggregator,
            layer.routing.source,
            layer.calls.len()
        ));
    }
    report.push_str(&format!("output: {}\n", result.output.trim()));
    Ok(report)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    print!("{}", run(examples::model_from_env()?, "What is 12 * 7?").await?);
    Ok(())
}
