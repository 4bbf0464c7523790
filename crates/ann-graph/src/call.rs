//! The layer's call machinery: every model call of the forward phase goes through a
//! [`LayerContext`], which bounds the calls in flight, stops at an exhausted budget, tags the
//! request for metering and records the call in the trace in a deterministic order. An agent's
//! call goes to the model of the profile the agent names (the worker when it names none).
//!
//! An aggregator (built-in or custom) runs its layer's agents through the context. An agent call
//! that failed for a reason of the network's own (a prompt past the context window) is recorded
//! and comes back as `Ok(None)`, so the aggregator can do without it. An exhausted budget and an
//! infrastructure failure (the endpoint unreachable, retries exhausted, the response cache unable
//! to store an answer) always come back as `Err`: an infrastructure failure is never a score, so
//! no agent leaves a vote for it. After a budget stop, and after an infrastructure failure under
//! [`InfrastructurePolicy::Stop`], no call of the pass (or batch) starts, while the calls already
//! sent finish.
//!
//! ```
//! use ann_graph::{CallKind, CallSpec, GraphError, LayerContext};
//! use ann_llm::{Message, ResponseFormat};
//!
//! /// Ask the layer's first agent to restate the layer input (one traced call).
//! async fn restate(ctx: &LayerContext<'_>) -> Result<Option<String>, GraphError> {
//!     let spec = CallSpec {
//!         kind: CallKind::Agent,
//!         agent: Some(0),
//!         round: 0,
//!         messages: vec![Message::user(format!("Restate: {}", ctx.input()))],
//!         temperature: 0.0,
//!         response_format: ResponseFormat::Text,
//!     };
//!     ctx.call(spec).await
//! }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use ann_llm::{CallSettings, LlmError, Message, ResponseFormat, SharedModel};
use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::prompts::forward::{self as prompts, Answer};
use crate::trace::{CallKind, CallRecord};
use crate::vote::{Extractor, majority_vote};
use crate::{AgentModel, AggregatorName, GraphError, InfrastructurePolicy, Layer, ModelProfiles, Violation};

/// One model call a [`LayerContext`] makes.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// What the call is for (recorded in the trace).
    pub kind: CallKind,
    /// Index of the agent whose persona makes the call (None: a built-in judge).
    pub agent: Option<usize>,
    /// The round recorded in the trace (0 for first answers).
    pub round: u32,
    /// The conversation sent.
    pub messages: Vec<Message>,
    /// Sampling temperature of this call.
    pub temperature: f32,
    /// Text or structured output.
    pub response_format: ResponseFormat,
}

/// What every call of one forward pass (or of a whole batch) shares: the bound on calls in flight,
/// and the stop. Once a call finds the budget exhausted (or, under [`InfrastructurePolicy::Stop`],
/// fails for an infrastructure reason), no further call starts; calls already sent are left to
/// finish, so that a response a provider may already bill reaches the response cache (and a
/// resumed run does not pay for it again).
pub(crate) struct CallGate {
    limiter: Semaphore,
    policy: InfrastructurePolicy,
    stop: OnceLock<LlmError>,
}

impl CallGate {
    pub(crate) fn new(max_parallel_calls: usize, policy: InfrastructurePolicy) -> Self {
        Self { limiter: Semaphore::new(max_parallel_calls.max(1)), policy, stop: OnceLock::new() }
    }

    /// The error that stopped the calls, if one did.
    fn stopped(&self) -> Option<&LlmError> {
        self.stop.get()
    }

    /// Start no call from now on (the first stopping error is kept).
    fn stop(&self, error: &LlmError) {
        let _ = self.stop.set(error.clone());
    }
}

/// The graph error of a call's stopping `error` at `stage`: a budget stop or an infrastructure
/// failure (the trace is filled in when the error leaves the forward pass).
fn stop_error(stage: String, error: LlmError) -> GraphError {
    if error.budget_exhausted().is_some() {
        GraphError::BudgetExhausted { stage, source: error, trace: None }
    } else {
        GraphError::InfrastructureFailure { stage, source: error, trace: None }
    }
}

/// What one layer execution is given: the shared call settings, the gate, the layer and its input.
pub(crate) struct LayerInput<'a> {
    /// The worker: the default model, and the model of every call made by no agent.
    pub(crate) model: &'a SharedModel,
    /// The model profiles agents may name.
    pub(crate) models: &'a ModelProfiles,
    /// Model, token limit and seed of every call (each call sets its own temperature).
    pub(crate) settings: &'a CallSettings,
    pub(crate) debate_rounds: u32,
    pub(crate) gate: &'a CallGate,
    pub(crate) layer: &'a Layer,
    pub(crate) task: &'a str,
    pub(crate) input: &'a str,
    pub(crate) extractor: Option<&'a Extractor>,
}

/// Everything one layer execution needs, and the record of its calls.
pub struct LayerContext<'a> {
    given: LayerInput<'a>,
    aggregator: Option<AggregatorName>,
    seq: AtomicU64,
    records: Mutex<Vec<(u64, CallRecord)>>,
    notes: Mutex<Vec<String>>,
    first_error: Mutex<Option<LlmError>>,
}

impl<'a> LayerContext<'a> {
    pub(crate) fn new(given: LayerInput<'a>) -> Self {
        Self {
            given,
            aggregator: None,
            seq: AtomicU64::new(0),
            records: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            first_error: Mutex::new(None),
        }
    }

    /// The layer being run.
    pub fn layer(&self) -> &'a Layer {
        self.given.layer
    }
    /// The task `I`.
    pub fn task(&self) -> &'a str {
        self.given.task
    }
    /// The layer input `I_l`.
    pub fn input(&self) -> &'a str {
        self.given.input
    }
    /// The caller's answer extractor, if any (the vote key of an output).
    pub fn extractor(&self) -> Option<&'a Extractor> {
        self.given.extractor
    }
    /// Model, token limit and seed of the worker's calls (an agent naming a model profile calls
    /// with its profile's, [`crate::ModelProfiles`]).
    pub fn settings(&self) -> &'a CallSettings {
        self.given.settings
    }
    /// Revision rounds of `debate` after the independent answers (the forward configuration's).
    pub fn debate_rounds(&self) -> u32 {
        self.given.debate_rounds
    }
    /// The aggregator routing chose for this layer (None during the routing call).
    pub fn aggregator(&self) -> Option<AggregatorName> {
        self.aggregator
    }

    /// Set the aggregator recorded in the calls from now on.
    pub(crate) fn set_aggregator(&mut self, aggregator: AggregatorName) {
        self.aggregator = Some(aggregator);
    }

    /// Record a note in the layer's trace (ties, fallbacks).
    pub fn note(&self, note: impl Into<String>) {
        self.notes.lock().expect("notes lock").push(note.into());
    }

    /// Make one traced call. `Ok(Some(text))` on success; `Ok(None)` when the call failed for a
    /// reason that is not the infrastructure's (recorded; the first such error is kept for
    /// [`GraphError::LayerFailed`]); `Err` for an exhausted budget
    /// ([`GraphError::BudgetExhausted`]) and for an infrastructure failure
    /// ([`GraphError::InfrastructureFailure`], recorded too). The trace position is fixed when this
    /// is called, not when the call completes, so concurrent calls are recorded in a deterministic
    /// order.
    ///
    /// After any call of the pass (or batch) found the budget exhausted, or failed for an
    /// infrastructure reason under [`InfrastructurePolicy::Stop`], a call that has not yet been
    /// sent is not sent: it returns that error and is not recorded (it was never made).
    pub fn call(
        &self,
        spec: CallSpec,
    ) -> impl std::future::Future<Output = Result<Option<String>, GraphError>> + Send + '_ {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let layer = self.given.layer;
        let agent = spec.agent.and_then(|i| layer.agents.get(i).map(|a| (i, a)));
        // The agent's model profile (heterogeneous teams); calls of no agent go to the worker.
        const WORKER: AgentModel = AgentModel { profile: None, max_tokens: None };
        let wanted = agent.map_or(&WORKER, |(_, a)| &a.model);
        let resolved = self.given.models.resolve(self.given.model, self.given.settings, wanted);
        let unknown = match (&resolved, agent) {
            (None, Some((_, a))) => Some(Violation::UnknownProfile {
                layer: layer.id.clone(),
                agent: a.id.clone(),
                profile: a.model.profile.clone().unwrap_or_default(),
                known: self.given.models.names().into_iter().collect::<Vec<_>>().join(", "),
            }),
            _ => None,
        };
        let (model, profile, settings) = match resolved {
            Some(r) => (r.model, r.profile, r.settings),
            None => (self.given.model, None, self.given.settings.clone()),
        };
        let settings = CallSettings { temperature: spec.temperature, ..settings };
        let mut request = settings
            .request(spec.messages)
            .with_response_format(spec.response_format)
            .with_tag("phase", "forward")
            .with_tag("layer", layer.id.clone());
        if let Some((index, agent)) = agent {
            request.tags.insert("agent".into(), agent.id.clone());
            if spec.temperature > 0.0 {
                request.sample_index = index as u32;
            }
        }
        let (kind, round) = (spec.kind, spec.round);
        let agent_id = agent.map(|(_, a)| a.id.clone());
        let stage = move || format!("layer `{}`", layer.id);
        let gate = self.given.gate;
        async move {
            if let Some(violation) = unknown {
                // The format gate refuses such a network before any call; never sent.
                return Err(GraphError::Invalid(vec![violation]));
            }
            let result = {
                let _permit = gate.limiter.acquire().await.ok();
                if let Some(stop) = gate.stopped() {
                    return Err(stop_error(stage(), stop.clone()));
                }
                model.complete(&request).await
            };
            let mut record = CallRecord {
                layer: layer.id.clone(),
                kind,
                aggregator: self.aggregator,
                agent: agent_id,
                round,
                messages: request.messages,
                output: None,
                error: None,
                usage: Default::default(),
                latency_ms: 0,
                model: request.model,
                profile,
                cache_hit: false,
            };
            let reply = match result {
                Ok(response) => {
                    record.usage = response.usage;
                    record.latency_ms = response.latency_ms;
                    record.model = response.model;
                    record.cache_hit = response.cache_hit;
                    record.output = Some(response.text.clone());
                    Ok(Some(response.text))
                }
                Err(error) => {
                    record.error = Some(error.to_string());
                    let budget = error.budget_exhausted().is_some();
                    if budget || error.is_infrastructure() {
                        if budget || gate.policy == InfrastructurePolicy::Stop {
                            gate.stop(&error);
                        }
                        Err(stop_error(stage(), error))
                    } else {
                        self.first_error.lock().expect("error lock").get_or_insert(error);
                        Ok(None)
                    }
                }
            };
            self.records.lock().expect("records lock").push((seq, record));
            reply
        }
    }

    /// Agent `index` answers its prompt, with `peers` as `{peer_outputs}` (round 0: none).
    pub fn agent_call(
        &self,
        index: usize,
        kind: CallKind,
        round: u32,
        peers: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Option<String>, GraphError>> + Send + '_ {
        let layer = self.given.layer;
        let agent = &layer.agents[index];
        let messages = prompts::agent_messages(layer, agent, self.given.task, self.given.input, peers);
        self.call(CallSpec {
            kind,
            agent: Some(index),
            round,
            messages,
            temperature: agent.temperature,
            response_format: ResponseFormat::Text,
        })
    }

    /// Every agent answers independently, concurrently (round 0); `None` where an agent failed.
    pub async fn answer_all(&self) -> Result<Vec<Option<String>>, GraphError> {
        let calls = (0..self.given.layer.agents.len()).map(|i| self.agent_call(i, CallKind::Agent, 0, None));
        join_all(calls).await.into_iter().collect()
    }

    /// [`Self::answer_all`], with every failed agent noted; the layer fails when none answered.
    pub async fn first_round(&self) -> Result<Vec<Option<String>>, GraphError> {
        let outputs = self.answer_all().await?;
        self.note_failures(&outputs, 0);
        if outputs.iter().all(Option::is_none) {
            return Err(self.layer_failed());
        }
        Ok(outputs)
    }

    /// Note every agent whose output of `round` is missing (it failed and is left out).
    pub fn note_failures(&self, outputs: &[Option<String>], round: u32) {
        for (i, o) in outputs.iter().enumerate() {
            if o.is_none() {
                self.note(format!("agent `{}` failed in round {round} and is left out", self.given.layer.agents[i].id));
            }
        }
    }

    /// The error that makes the layer fail: the first failed call's error. The forward pass fills
    /// in its trace (the layers so far and this layer's calls) when the error leaves the layer.
    pub fn layer_failed(&self) -> GraphError {
        let source = self
            .first_error
            .lock()
            .expect("error lock")
            .clone()
            .unwrap_or_else(|| LlmError::Backend("no agent produced an answer".into()));
        GraphError::LayerFailed { layer: self.given.layer.id.clone(), source, trace: Box::default() }
    }

    /// Majority vote over `(agent index, output)` candidates (see [`majority_vote`]); notes the tally.
    pub fn vote<'s>(&self, candidates: &[(usize, &'s str)]) -> &'s str {
        let agents = &self.given.layer.agents;
        let ids: Vec<&str> = candidates.iter().map(|(i, _)| agents[*i].id.as_str()).collect();
        let texts: Vec<&str> = candidates.iter().map(|(_, t)| *t).collect();
        let (winner, notes) = majority_vote(&ids, &texts, self.given.extractor);
        for n in notes {
            self.note(n);
        }
        texts[winner]
    }

    /// Agent `index`'s `text` as other prompts show it (agent id, role, text).
    pub fn answer<'s>(&'s self, index: usize, text: &'s str) -> Answer<'s> {
        let agent = &self.given.layer.agents[index];
        Answer { agent: &agent.id, role: &agent.role, text }
    }

    /// Forget call errors so far (a failed routing call must not be reported as the agents' failure).
    pub(crate) fn forget_errors(&self) {
        self.first_error.lock().expect("error lock").take();
    }

    /// The calls in the order they were made, and the notes.
    pub(crate) fn finish(self) -> (Vec<CallRecord>, Vec<String>) {
        let mut records = self.records.into_inner().expect("records lock");
        records.sort_by_key(|(seq, _)| *seq);
        (records.into_iter().map(|(_, r)| r).collect(), self.notes.into_inner().expect("notes lock"))
    }
}

/// The `(agent index, output)` of every agent that answered.
pub fn survivors(outputs: &[Option<String>]) -> Vec<(usize, &str)> {
    outputs.iter().enumerate().filter_map(|(i, o)| o.as_deref().map(|t| (i, t))).collect()
}
