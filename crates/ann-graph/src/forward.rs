//! The forward phase: per input, layer by layer, `I_{l+1} = O_l` with the task visible; per layer,
//! dynamic routing picks an aggregator from the registry, which runs the team.

use std::path::PathBuf;

use ann_llm::SharedModel;

use crate::call::{CallGate, LayerContext, LayerInput};
use crate::prompts;
use crate::trace::{LayerTrace, RoutingDecision, RoutingSource, Trace};
use crate::{Extractor, ForwardConfig, GraphError, InfrastructurePolicy, Network, ValidationRules};

/// The final output and the full trace of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardResult {
    /// `O_L`, the last layer's output (the caller extracts its answer).
    pub output: String,
    pub trace: Trace,
}

/// One input of [`forward_inputs`]: its text, and the files its agents' tools may read (the
/// `python` tool puts them, read-only, in its program's working directory: DABench's CSV table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardInput<'a> {
    pub text: &'a str,
    pub files: &'a [PathBuf],
}

impl<'a> ForwardInput<'a> {
    /// An input without files.
    pub fn text(text: &'a str) -> Self {
        Self { text, files: &[] }
    }
}

/// Run one input through the network: the task `I` is the network's task description with `input`
/// rendered in ([`prompts::render_task`]), `I_1 = input`.
///
/// Errors: [`GraphError::Invalid`] for a structurally broken network (limits aside),
/// [`GraphError::LayerFailed`] when a layer got no usable answer, [`GraphError::BudgetExhausted`]
/// (the run must stop: no call starts after it, the calls already sent finish first),
/// [`GraphError::InfrastructureFailure`] (a call failed for a reason outside the network: never a
/// score). The latter three carry the partial trace ([`GraphError::trace`]). `extractor` gives the vote key of an
/// output (`majority_vote`, `debate`).
pub async fn forward(
    model: &SharedModel,
    net: &Network,
    input: &str,
    extractor: Option<&Extractor>,
    config: &ForwardConfig,
) -> Result<ForwardResult, GraphError> {
    check(net, config)?;
    warn_if_capped(model, config);
    let gate = CallGate::new(config.max_parallel_calls, config.on_infrastructure_failure);
    run(model, net, ForwardInput::text(input), extractor, config, &gate).await
}

/// Run many inputs concurrently (at most `max_parallel_inputs` at once, all sharing the
/// `max_parallel_calls` bound). Per-input failures are returned in place, in input order. Every
/// result (and its trace) is kept until the end: for large batches, [`ForwardStream`] hands over
/// each result as it comes.
///
/// An exhausted budget stops the batch: from then on no call starts (in any input), the calls
/// already sent are awaited (so their responses reach a response cache below, and a resumed run
/// does not pay for them again), then the first stopping error in input order is the outer error.
/// An infrastructure failure does the same under [`InfrastructurePolicy::Stop`]; under `Exclude`
/// it is the failing input's own result and the other inputs go on.
pub async fn forward_batch(
    model: &SharedModel,
    net: &Network,
    inputs: &[String],
    extractor: Option<&Extractor>,
    config: &ForwardConfig,
) -> Result<Vec<Result<ForwardResult, GraphError>>, GraphError> {
    collect(ForwardStream::new(model, net, inputs, extractor, config, BatchOrder::Input)?).await
}

/// [`forward_batch`] over inputs that may carry files for their agents' tools.
pub async fn forward_inputs(
    model: &SharedModel,
    net: &Network,
    inputs: &[ForwardInput<'_>],
    extractor: Option<&Extractor>,
    config: &ForwardConfig,
) -> Result<Vec<Result<ForwardResult, GraphError>>, GraphError> {
    collect(ForwardStream::of_inputs(model, net, inputs.to_vec(), extractor, config, BatchOrder::Input)?).await
}

/// Every result of `stream`, in its order, or its stopping error.
async fn collect(mut stream: ForwardStream<'_>) -> Result<Vec<Result<ForwardResult, GraphError>>, GraphError> {
    let mut out = Vec::new();
    // Drained to the end even after a budget stop: dropping the stream would drop calls in flight.
    while let Some((_, result)) = stream.next().await {
        out.push(result);
    }
    match stream.into_stopped() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Warn (once per process) when the model serves fewer calls at once than the pass may run:
/// the smaller number then caps the pass, which must not happen silently.
fn warn_if_capped(model: &SharedModel, config: &ForwardConfig) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Some(cap) = model.concurrency_limit()
        && cap < config.max_parallel_calls
    {
        WARNED.call_once(|| {
            tracing::warn!(
                backend_max_concurrency = cap,
                max_parallel_calls = config.max_parallel_calls,
                "the backend serves at most {cap} calls at once, fewer than forward.max_parallel_calls = {}: \
                 the backend's limit caps the forward pass (raise the backend's max_concurrency, or lower \
                 max_parallel_calls to match)",
                config.max_parallel_calls
            );
        });
    }
}

/// Whether `e` of one input stops the whole batch: an exhausted budget, or an infrastructure failure
/// under [`InfrastructurePolicy::Stop`] (under `Exclude` it stays that input's own result).
fn stops_the_batch(e: &GraphError, config: &ForwardConfig) -> bool {
    e.is_budget_exhausted()
        || (e.is_infrastructure_failure() && config.on_infrastructure_failure == InfrastructurePolicy::Stop)
}

/// The structural invariants the forward pass relies on, every aggregator registered and every
/// model profile an agent names given (the configurable limits are not checked).
fn check(net: &Network, config: &ForwardConfig) -> Result<(), GraphError> {
    let loose = ValidationRules {
        max_layers: usize::MAX,
        max_agents: usize::MAX,
        max_prompt_chars: usize::MAX,
        answer_format: None,
        aggregators: config.aggregators.clone(),
        tools: Some(config.tools.as_ref().map(|t| t.names()).unwrap_or_default()),
        profiles: config.models.names(),
    };
    net.validate(&loose).map_err(GraphError::Invalid)
}

async fn run(
    model: &SharedModel,
    net: &Network,
    given: ForwardInput<'_>,
    extractor: Option<&Extractor>,
    config: &ForwardConfig,
    gate: &CallGate,
) -> Result<ForwardResult, GraphError> {
    let input = given.text;
    let task = prompts::render_task(&net.task_description, input);
    let mut layers = Vec::with_capacity(net.layers.len());
    let mut current = input.to_string();
    let settings = config.call_settings();
    for layer in &net.layers {
        let mut ctx = LayerContext::new(LayerInput {
            model,
            models: &config.models,
            settings: &settings,
            debate_rounds: config.debate_rounds,
            gate,
            layer,
            task: &task,
            input: &current,
            extractor,
            tools: config.tools.as_deref(),
            files: given.files,
        });
        let outcome = run_layer(&mut ctx, config).await;
        let (calls, notes) = ctx.finish();
        match outcome {
            Ok((routing, output)) => {
                let trace = LayerTrace {
                    layer: layer.id.clone(),
                    input: current,
                    routing,
                    calls,
                    notes,
                    error: None,
                    output: output.clone(),
                };
                layers.push(trace);
                current = output;
            }
            Err((routing, error)) => {
                // The failed layer is kept when it made any call (a call never sent is not recorded).
                if !calls.is_empty() {
                    let routing = routing.unwrap_or_else(|| RoutingDecision {
                        aggregator: layer.default_aggregator,
                        reason: "no aggregator was chosen: the forward pass stopped".into(),
                        source: RoutingSource::Fallback,
                        fallback: Some("the routing call failed".into()),
                    });
                    layers.push(LayerTrace {
                        layer: layer.id.clone(),
                        input: current,
                        routing,
                        calls,
                        notes,
                        error: Some(error.to_string()),
                        output: String::new(),
                    });
                }
                let partial = Trace { task, input: input.to_string(), layers, output: String::new() };
                return Err(error.with_trace(partial));
            }
        }
    }
    Ok(ForwardResult {
        output: current.clone(),
        trace: Trace { task, input: input.to_string(), layers, output: current },
    })
}

/// Route one layer and run its aggregator: the routing decision and the layer output, or the
/// error with the routing decision if one was made (routing itself can be stopped by the budget).
async fn run_layer(
    ctx: &mut LayerContext<'_>,
    config: &ForwardConfig,
) -> Result<(RoutingDecision, String), (Option<RoutingDecision>, GraphError)> {
    let routing = crate::routing::select(ctx, config).await.map_err(|e| (None, e))?;
    ctx.set_aggregator(routing.aggregator);
    ctx.forget_errors();
    // `check` refused any network naming an aggregator the registry does not hold.
    let aggregator = config.aggregators.get(routing.aggregator).expect("a registered aggregator");
    match aggregator.aggregate(ctx).await {
        Ok(output) => Ok((routing, output)),
        Err(error) => Err((Some(routing), error)),
    }
}

mod stream;
pub use stream::{BatchOrder, ForwardStream};

#[cfg(test)]
mod tests;
