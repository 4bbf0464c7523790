//! A custom aggregator: implement [`Aggregator`] under a name of your own, register it, name it in a
//! network file, and dynamic routing offers it beside the built-ins (with its description).
//!
//! `cargo run -p examples --example custom_aggregator` (the embedded model, or the endpoint of
//! `ANN_OPENAI_BASE_URL` / `ANN_OPENAI_MODEL`).

use ann_graph::{
    Aggregator, AggregatorName, AggregatorRegistry, ForwardConfig, GraphError, LayerContext, Network, ValidationRules,
    async_trait, forward, survivors,
};

/// Every agent answers; the shortest non-empty answer is the layer's output (terse wins).
struct Shortest;

#[async_trait]
impl Aggregator for Shortest {
    fn name(&self) -> AggregatorName {
        AggregatorName::custom("shortest").expect("a slug that no built-in uses")
    }
    fn description(&self) -> &str {
        "all agents answer in parallel; the shortest answer wins"
    }
    fn min_agents(&self) -> usize {
        2
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        let (index, text) = live
            .iter()
            .filter(|(_, text)| !text.trim().is_empty())
            .min_by_key(|(_, text)| text.len())
            .copied()
            .ok_or_else(|| ctx.layer_failed())?;
        ctx.note(format!("shortest answer: `{}`", ctx.layer().agents[index].id));
        Ok(text.to_string())
    }
}

/// A network file naming the custom aggregator (after [`Shortest`] declared its name).
const NETWORK: &str = r#"{
  "version": 1,
  "task_description": "Name the capital city of the country in the question.",
  "layers": [{
    "id": "answer",
    "subtask": "name the capital",
    "agents": [
      {"id": "terse", "role": "A terse geographer.", "prompt": "{task}\n{input}\nReply with the city only.", "temperature": 0.0},
      {"id": "chatty", "role": "A talkative geographer.", "prompt": "{task}\n{input}", "temperature": 0.0}
    ],
    "aggregators": ["shortest", "concatenate"],
    "default_aggregator": "shortest",
    "output_spec": "the city"
  }]
}"#;

pub async fn run(chosen: examples::Chosen, question: &str) -> anyhow::Result<String> {
    let registry = AggregatorRegistry::default().with(Shortest);
    let net = Network::from_json(NETWORK)?;
    // The format gate and the forward pass both need to know the registered name.
    net.validate(&ValidationRules { aggregators: registry.clone(), ..ValidationRules::default() }).map_err(|v| {
        anyhow::anyhow!("invalid network: {}", v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let config = ForwardConfig {
        model: chosen.name,
        max_tokens: Some(48),
        seed: Some(0),
        aggregators: registry,
        ..ForwardConfig::default()
    };
    let result = forward(&chosen.model, &net, question, None, &config).await?;
    let layer = &result.trace.layers[0];
    Ok(format!(
        "routing chose `{}` ({:?}: {})\nnotes: {}\noutput: {}\n",
        layer.routing.aggregator,
        layer.routing.source,
        layer.routing.reason,
        layer.notes.join("; "),
        result.output.trim()
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    print!("{}", run(examples::model_from_env()?, "What is the capital of France?").await?);
    Ok(())
}
