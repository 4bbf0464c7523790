//! The forward phase: per input, layer by layer, `I_{l+1} = O_l` with the task visible; per layer,
//! dynamic routing picks an aggregator from the registry, which runs the team.

use ann_llm::SharedModel;
use futures::StreamExt;

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
    let gate = CallGate::new(config.max_parallel_calls, config.on_infrastructure_failure);
    run(model, net, input, extractor, config, &gate).await
}

/// Run many inputs concurrently (at most `max_parallel_inputs` at once, all sharing the
/// `max_parallel_calls` bound). Per-input failures are returned in place, in input order.
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
    check(net, config)?;
    let gate = CallGate::new(config.max_parallel_calls, config.on_infrastructure_failure);
    let gate = &gate;
    // Futures collected first: a stream `map` closure here would make the future not `Send`
    // (a higher-ranked lifetime limitation of the compiler).
    let pending: Vec<_> = inputs.iter().map(|input| run(model, net, input, extractor, config, gate)).collect();
    let mut runs = futures::stream::iter(pending).buffered(config.max_parallel_inputs.max(1));
    let mut out = Vec::with_capacity(inputs.len());
    let mut stop = None;
    // Drained to the end even after a budget stop: dropping the stream would drop calls in flight.
    // Inputs begun after the stop end at their first call, which is not sent.
    while let Some(result) = runs.next().await {
        match result {
            Err(e) if stops_the_batch(&e, config) => {
                stop.get_or_insert(e);
            }
            other => out.push(other),
        }
    }
    match stop {
        Some(e) => Err(e),
        None => Ok(out),
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
        profiles: config.models.names(),
    };
    net.validate(&loose).map_err(GraphError::Invalid)
}

async fn run(
    model: &SharedModel,
    net: &Network,
    input: &str,
    extractor: Option<&Extractor>,
    config: &ForwardConfig,
    gate: &CallGate,
) -> Result<ForwardResult, GraphError> {
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

#[cfg(test)]
mod tests;
