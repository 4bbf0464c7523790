//! Aggregation functions (design 7.2): how a layer's team turns its input into the layer output.
//!
//! Each aggregator runs the layer's agents through a [`LayerContext`], which makes every model call
//! (bounded by the forward pass's call limit, tagged for metering) and records it in the trace in a
//! deterministic order. An agent call that fails after the model's retries is recorded and skipped
//! where the aggregator can do without it; an exhausted budget always propagates, and from then on
//! no call of the pass (or batch) starts, while the calls already sent finish.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use ann_llm::{ChatRequest, LlmError, Message, ResponseFormat, SharedModel};
use async_trait::async_trait;
use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::prompts::{self, Answer};
use crate::trace::{CallKind, CallRecord};
use crate::{AggregatorName, ForwardConfig, GraphError, Layer};

/// The caller's answer extractor for voting: the normalised final answer of an output, if any.
pub type Extractor = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Combines a layer's agents into the layer output.
#[async_trait]
pub trait Aggregator: Send + Sync {
    /// The registry name this implements.
    fn name(&self) -> AggregatorName;
    /// Run the layer on `ctx.input()` and return `O_l`.
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError>;
}

/// The implementation of a registry name.
pub fn aggregator(name: AggregatorName) -> &'static dyn Aggregator {
    match name {
        AggregatorName::Single => &Single,
        AggregatorName::Concatenate => &Concatenate,
        AggregatorName::MajorityVote => &MajorityVote,
        AggregatorName::LlmSynthesis => &LlmSynthesis,
        AggregatorName::SelectBest => &SelectBest,
        AggregatorName::SequentialRefine => &SequentialRefine,
        AggregatorName::Debate => &Debate,
        AggregatorName::CriticRevise => &CriticRevise,
    }
}

/// One model call a [`LayerContext`] makes.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub kind: CallKind,
    /// Index of the agent whose persona makes the call (None: a built-in judge).
    pub agent: Option<usize>,
    pub round: u32,
    pub messages: Vec<Message>,
    pub temperature: f32,
    pub response_format: ResponseFormat,
}

/// What every call of one forward pass (or of a whole batch) shares: the bound on calls in flight,
/// and the budget stop. Once a call finds the budget exhausted, no further call starts; calls
/// already sent are left to finish, so that a response a provider may already bill reaches the
/// response cache (and a resumed run does not pay for it again).
pub(crate) struct CallGate {
    limiter: Semaphore,
    stop: OnceLock<LlmError>,
}

impl CallGate {
    pub(crate) fn new(max_parallel_calls: usize) -> Self {
        Self { limiter: Semaphore::new(max_parallel_calls.max(1)), stop: OnceLock::new() }
    }

    /// The budget error that stopped the calls, if one did.
    fn stopped(&self) -> Option<&LlmError> {
        self.stop.get()
    }

    /// Start no call from now on (the first budget error is kept).
    fn stop(&self, error: &LlmError) {
        let _ = self.stop.set(error.clone());
    }
}

/// Everything one layer execution needs, and the record of its calls.
pub struct LayerContext<'a> {
    model: &'a SharedModel,
    config: &'a ForwardConfig,
    gate: &'a CallGate,
    layer: &'a Layer,
    task: &'a str,
    input: &'a str,
    extractor: Option<&'a Extractor>,
    pub(crate) aggregator: Option<AggregatorName>,
    seq: AtomicU64,
    records: Mutex<Vec<(u64, CallRecord)>>,
    notes: Mutex<Vec<String>>,
    first_error: Mutex<Option<LlmError>>,
}

impl<'a> LayerContext<'a> {
    pub(crate) fn new(
        model: &'a SharedModel,
        config: &'a ForwardConfig,
        gate: &'a CallGate,
        layer: &'a Layer,
        task: &'a str,
        input: &'a str,
        extractor: Option<&'a Extractor>,
    ) -> Self {
        Self {
            model,
            config,
            gate,
            layer,
            task,
            input,
            extractor,
            aggregator: None,
            seq: AtomicU64::new(0),
            records: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            first_error: Mutex::new(None),
        }
    }

    /// The layer being run.
    pub fn layer(&self) -> &Layer {
        self.layer
    }
    /// The task `I`.
    pub fn task(&self) -> &str {
        self.task
    }
    /// The layer input `I_l`.
    pub fn input(&self) -> &str {
        self.input
    }
    /// The forward configuration.
    pub fn config(&self) -> &ForwardConfig {
        self.config
    }

    /// Record a note in the layer's trace (ties, fallbacks).
    pub fn note(&self, note: impl Into<String>) {
        self.notes.lock().expect("notes lock").push(note.into());
    }

    /// Make one traced call. `Ok(Some(text))` on success; `Ok(None)` when the call failed after the
    /// model's retries (recorded; the first such error is kept for [`GraphError::LayerFailed`]);
    /// `Err` only for an exhausted budget. The trace position is fixed when this is called, not when
    /// the call completes, so concurrent calls are recorded in a deterministic order.
    ///
    /// After any call of the pass (or batch) found the budget exhausted, a call that has not yet
    /// been sent is not sent: it returns that budget error and is not recorded (it was never made).
    pub fn call(
        &self,
        spec: CallSpec,
    ) -> impl std::future::Future<Output = Result<Option<String>, GraphError>> + Send + '_ {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let agent = spec.agent.and_then(|i| self.layer.agents.get(i).map(|a| (i, a)));
        let mut request = ChatRequest::new(self.config.model.clone(), spec.messages)
            .with_temperature(spec.temperature)
            .with_response_format(spec.response_format)
            .with_tag("phase", "forward")
            .with_tag("layer", self.layer.id.clone());
        if let Some((index, agent)) = agent {
            request.tags.insert("agent".into(), agent.id.clone());
            if spec.temperature > 0.0 {
                request.sample_index = index as u32;
            }
        }
        request.max_tokens = self.config.max_tokens;
        request.seed = self.config.seed;
        let (kind, round) = (spec.kind, spec.round);
        let agent_id = agent.map(|(_, a)| a.id.clone());
        let stage = move || format!("layer `{}`", self.layer.id);
        async move {
            let result = {
                let _permit = self.gate.limiter.acquire().await.ok();
                if let Some(stop) = self.gate.stopped() {
                    return Err(GraphError::BudgetExhausted { stage: stage(), source: stop.clone(), trace: None });
                }
                self.model.complete(&request).await
            };
            let mut record = CallRecord {
                layer: self.layer.id.clone(),
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
                    if error.budget_exhausted().is_some() {
                        self.gate.stop(&error);
                        Err(GraphError::BudgetExhausted { stage: stage(), source: error, trace: None })
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
        let agent = &self.layer.agents[index];
        let messages = prompts::agent_messages(self.layer, agent, self.task, self.input, peers);
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
        let calls = (0..self.layer.agents.len()).map(|i| self.agent_call(i, CallKind::Agent, 0, None));
        join_all(calls).await.into_iter().collect()
    }

    /// [`Self::answer_all`], with every failed agent noted; the layer fails when none answered.
    async fn first_round(&self) -> Result<Vec<Option<String>>, GraphError> {
        let outputs = self.answer_all().await?;
        note_failures(self, &outputs, 0);
        if outputs.iter().all(Option::is_none) {
            return Err(self.layer_failed());
        }
        Ok(outputs)
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
        GraphError::LayerFailed { layer: self.layer.id.clone(), source, trace: Box::default() }
    }

    /// Majority vote over `(agent index, output)` candidates (see [`majority_vote`]); notes the tally.
    pub fn vote<'s>(&self, candidates: &[(usize, &'s str)]) -> &'s str {
        let ids: Vec<&str> = candidates.iter().map(|(i, _)| self.layer.agents[*i].id.as_str()).collect();
        let texts: Vec<&str> = candidates.iter().map(|(_, t)| *t).collect();
        let (winner, notes) = majority_vote(&ids, &texts, self.extractor);
        for n in notes {
            self.note(n);
        }
        texts[winner]
    }

    fn answer<'s>(&'s self, index: usize, text: &'s str) -> Answer<'s> {
        let agent = &self.layer.agents[index];
        Answer { agent: &agent.id, role: &agent.role, text }
    }

    /// Forget call errors so far (a failed routing call must not be reported as the agents' failure).
    pub(crate) fn forget_errors(&self) {
        self.first_error.lock().expect("error lock").take();
    }

    pub(crate) fn finish(self) -> (Vec<CallRecord>, Vec<String>) {
        let mut records = self.records.into_inner().expect("records lock");
        records.sort_by_key(|(seq, _)| *seq);
        (records.into_iter().map(|(_, r)| r).collect(), self.notes.into_inner().expect("notes lock"))
    }
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Majority vote: the key of each text is `extractor(text)` (without an extractor, the text with
/// whitespace normalised); texts with no key abstain. The most frequent key wins; ties go to the key
/// whose first voter has the lowest index. Returns the index of the first text with the winning key
/// (the first text when no key was found) and notes recording the tally and any tie.
pub fn majority_vote(ids: &[&str], texts: &[&str], extractor: Option<&Extractor>) -> (usize, Vec<String>) {
    let keys: Vec<Option<String>> =
        texts.iter().map(|t| if let Some(f) = extractor { f(t) } else { Some(normalise(t)) }).collect();
    // (key, voter indices) in order of first appearance.
    let mut tally: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(key) = key else { continue };
        match tally.iter_mut().find(|(k, _)| *k == key.as_str()) {
            Some((_, voters)) => voters.push(i),
            None => tally.push((key, vec![i])),
        }
    }
    let mut notes = Vec::new();
    let abstained: Vec<&str> = keys.iter().zip(ids).filter(|(k, _)| k.is_none()).map(|(_, id)| *id).collect();
    let Some(best) = tally.iter().map(|(_, v)| v.len()).max() else {
        notes.push(format!("vote: no answer could be extracted; the output of `{}` is used", ids[0]));
        return (0, notes);
    };
    let mut line = String::from("vote:");
    for (key, voters) in &tally {
        let who: Vec<&str> = voters.iter().map(|&i| ids[i]).collect();
        line.push_str(&format!(" `{key}` <- {};", who.join(", ")));
    }
    if !abstained.is_empty() {
        line.push_str(&format!(" no answer <- {};", abstained.join(", ")));
    }
    let leaders: Vec<&(&str, Vec<usize>)> = tally.iter().filter(|(_, v)| v.len() == best).collect();
    let winner = leaders[0].1[0];
    line.push_str(&format!(" winner `{}` ({} of {})", ids[winner], best, texts.len()));
    notes.push(line);
    if leaders.len() > 1 {
        let keys: Vec<String> = leaders.iter().map(|(k, _)| format!("`{k}`")).collect();
        notes.push(format!(
            "tie between {} ({} votes each), broken by the lowest agent index: `{}`",
            keys.join(", "),
            best,
            ids[winner]
        ));
    }
    (winner, notes)
}

fn survivors(outputs: &[Option<String>]) -> Vec<(usize, &str)> {
    outputs.iter().enumerate().filter_map(|(i, o)| o.as_deref().map(|t| (i, t))).collect()
}

fn note_failures(ctx: &LayerContext<'_>, outputs: &[Option<String>], round: u32) {
    for (i, o) in outputs.iter().enumerate() {
        if o.is_none() {
            ctx.note(format!("agent `{}` failed in round {round} and is left out", ctx.layer.agents[i].id));
        }
    }
}

/// `single`: the first agent alone.
pub struct Single;
#[async_trait]
impl Aggregator for Single {
    fn name(&self) -> AggregatorName {
        AggregatorName::Single
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        ctx.agent_call(0, CallKind::Agent, 0, None).await?.ok_or_else(|| ctx.layer_failed())
    }
}

/// `concatenate`: every surviving answer, labelled by agent and role.
pub struct Concatenate;
#[async_trait]
impl Aggregator for Concatenate {
    fn name(&self) -> AggregatorName {
        AggregatorName::Concatenate
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        let answers: Vec<Answer<'_>> = live.iter().map(|&(i, t)| ctx.answer(i, t)).collect();
        Ok(prompts::concatenate(&answers))
    }
}

/// `majority_vote`: the winning agent's full answer.
pub struct MajorityVote;
#[async_trait]
impl Aggregator for MajorityVote {
    fn name(&self) -> AggregatorName {
        AggregatorName::MajorityVote
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        Ok(ctx.vote(&live).to_string())
    }
}

async fn synthesise(ctx: &LayerContext<'_>, live: &[(usize, &str)], round: u32) -> Result<String, GraphError> {
    let last = ctx.layer.agents.len() - 1;
    let answers: Vec<Answer<'_>> = live.iter().map(|&(i, t)| ctx.answer(i, t)).collect();
    let messages = prompts::synthesis(ctx.task, ctx.layer, ctx.input, &ctx.layer.agents[last].role, &answers);
    let spec = CallSpec {
        kind: CallKind::Synthesis,
        agent: Some(last),
        round,
        messages,
        temperature: 0.0,
        response_format: ResponseFormat::Text,
    };
    match ctx.call(spec).await? {
        Some(text) => Ok(text),
        None => {
            ctx.note(format!("synthesis failed; the answer of `{}` is used", ctx.layer.agents[live[0].0].id));
            Ok(live[0].1.to_string())
        }
    }
}

/// `llm_synthesis`: the layer's last agent merges all answers.
pub struct LlmSynthesis;
#[async_trait]
impl Aggregator for LlmSynthesis {
    fn name(&self) -> AggregatorName {
        AggregatorName::LlmSynthesis
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        synthesise(ctx, &live, 0).await
    }
}

/// The JSON schema of the judge's verdict.
fn judge_format(candidates: usize) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "select_best".into(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {
                "best": {"type": "integer", "minimum": 1, "maximum": candidates},
                "reason": {"type": "string"}
            },
            "required": ["best", "reason"],
            "additionalProperties": false
        }),
        strict: true,
    }
}

/// `select_best`: a built-in judge picks one answer, which is the output verbatim.
pub struct SelectBest;
#[async_trait]
impl Aggregator for SelectBest {
    fn name(&self) -> AggregatorName {
        AggregatorName::SelectBest
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        if let [(only, text)] = live[..] {
            ctx.note(format!("only `{}` answered; no judge call", ctx.layer.agents[only].id));
            return Ok(text.to_string());
        }
        let answers: Vec<Answer<'_>> = live.iter().map(|&(i, t)| ctx.answer(i, t)).collect();
        let spec = CallSpec {
            kind: CallKind::Judge,
            agent: None,
            round: 0,
            messages: prompts::judge(ctx.task, ctx.layer, ctx.input, &answers),
            temperature: 0.0,
            response_format: judge_format(live.len()),
        };
        let verdict = ctx.call(spec).await?;
        let parsed = verdict.as_deref().and_then(ann_llm::answer::first_json_object).and_then(|v| {
            let best = v.get("best")?.as_u64()? as usize;
            let reason = v.get("reason").and_then(|r| r.as_str()).unwrap_or("").to_string();
            (1..=live.len()).contains(&best).then_some((best - 1, reason))
        });
        match parsed {
            Some((pick, reason)) => {
                ctx.note(format!("judge chose `{}`: {reason}", answers[pick].agent));
                Ok(live[pick].1.to_string())
            }
            None => {
                let why = if verdict.is_some() { "invalid verdict" } else { "judge call failed" };
                ctx.note(format!("judge fallback ({why}); the answer of `{}` is used", answers[0].agent));
                Ok(live[0].1.to_string())
            }
        }
    }
}

/// `sequential_refine`: each agent improves the previous draft; the last draft is the output.
pub struct SequentialRefine;
#[async_trait]
impl Aggregator for SequentialRefine {
    fn name(&self) -> AggregatorName {
        AggregatorName::SequentialRefine
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let mut draft: Option<(usize, String)> = None;
        for i in 0..ctx.layer.agents.len() {
            let peers = draft.as_ref().map(|(j, text)| prompts::refine_peers(&ctx.answer(*j, text)));
            match ctx.agent_call(i, CallKind::Agent, 0, peers.as_deref()).await? {
                Some(text) => draft = Some((i, text)),
                None => ctx.note(format!("agent `{}` failed; the previous draft is kept", ctx.layer.agents[i].id)),
            }
        }
        draft.map(|(_, text)| text).ok_or_else(|| ctx.layer_failed())
    }
}

/// `debate`: independent answers, then `debate_rounds` rounds of revision after seeing the others'
/// latest answers; majority vote of the final answers (synthesis without an extractor).
pub struct Debate;
#[async_trait]
impl Aggregator for Debate {
    fn name(&self) -> AggregatorName {
        AggregatorName::Debate
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let mut latest = ctx.answer_all().await?;
        note_failures(ctx, &latest, 0);
        for round in 1..=ctx.config.debate_rounds {
            let live = survivors(&latest);
            if live.len() < 2 {
                ctx.note(format!("debate stopped before round {round}: fewer than two agents answered"));
                break;
            }
            let peer_texts: Vec<(usize, String)> = live
                .iter()
                .map(|&(i, _)| {
                    let others: Vec<Answer<'_>> =
                        live.iter().filter(|(j, _)| *j != i).map(|&(j, t)| ctx.answer(j, t)).collect();
                    (i, prompts::debate_peers(&others))
                })
                .collect();
            let calls = peer_texts.iter().map(|(i, peers)| ctx.agent_call(*i, CallKind::Agent, round, Some(peers)));
            let revised: Vec<Option<String>> = join_all(calls).await.into_iter().collect::<Result<_, _>>()?;
            for ((i, _), new) in peer_texts.iter().zip(revised) {
                match new {
                    Some(text) => latest[*i] = Some(text),
                    None => ctx.note(format!(
                        "agent `{}` failed in round {round}; its previous answer stands",
                        ctx.layer.agents[*i].id
                    )),
                }
            }
        }
        let live = survivors(&latest);
        if live.is_empty() {
            return Err(ctx.layer_failed());
        }
        // Synthesis when there is nothing to vote on: no extractor, or none of the final answers
        // yields one (a passage of creative writing has no short answer).
        let votable = ctx.extractor.is_some_and(|f| live.iter().any(|(_, text)| f(text).is_some()));
        if votable || live.len() == 1 {
            Ok(ctx.vote(&live).to_string())
        } else {
            synthesise(ctx, &live, ctx.config.debate_rounds + 1).await
        }
    }
}

/// `critic_revise`: the first agent drafts, the others critique (a lone agent critiques itself),
/// the first agent revises once with every critique.
pub struct CriticRevise;
#[async_trait]
impl Aggregator for CriticRevise {
    fn name(&self) -> AggregatorName {
        AggregatorName::CriticRevise
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let Some(draft) = ctx.agent_call(0, CallKind::Agent, 0, None).await? else {
            return Err(ctx.layer_failed());
        };
        let n = ctx.layer.agents.len();
        let critics: Vec<usize> = if n == 1 { vec![0] } else { (1..n).collect() };
        let draft_answer = ctx.answer(0, &draft);
        let calls = critics.iter().map(|&c| {
            let critic = &ctx.layer.agents[c];
            ctx.call(CallSpec {
                kind: CallKind::Critique,
                agent: Some(c),
                round: 1,
                messages: prompts::critique(ctx.task, ctx.layer, ctx.input, critic, &draft_answer),
                temperature: critic.temperature,
                response_format: ResponseFormat::Text,
            })
        });
        let critiques: Vec<Option<String>> = join_all(calls).await.into_iter().collect::<Result<_, _>>()?;
        let given: Vec<Answer<'_>> = critics
            .iter()
            .zip(&critiques)
            .filter_map(|(&c, text)| match text {
                Some(t) => Some(ctx.answer(c, t)),
                None => {
                    ctx.note(format!("critic `{}` failed and is left out", ctx.layer.agents[c].id));
                    None
                }
            })
            .collect();
        if given.is_empty() {
            ctx.note("no critique was given; the draft is the output");
            return Ok(draft);
        }
        let peers = prompts::revise_peers(&draft, &given);
        match ctx.agent_call(0, CallKind::Revise, 2, Some(&peers)).await? {
            Some(text) => Ok(text),
            None => {
                ctx.note("revision failed; the draft is the output");
                Ok(draft)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_llm::LlmError;
    use ann_test_support::ScriptedModel;

    use super::*;
    use crate::testing::{boxed, has, is_agent, reply_of, run_layer};
    use crate::trace::CallKind;

    const EXTRACT: &Extractor = &boxed;

    fn down() -> LlmError {
        LlmError::RetriesExhausted {
            attempts: 3,
            last: Box::new(LlmError::Http { status: 503, endpoint: "e".into(), body: String::new() }),
        }
    }

    fn fails(agent: &'static str) -> impl Fn(&ChatRequest) -> Option<ann_test_support::Reply> + Send + Sync + 'static {
        move |req| is_agent(req, "solve", agent).then(|| Err(down()))
    }

    /// (kind, agent, round) of every call of the only layer.
    fn shape(result: &crate::ForwardResult) -> Vec<(CallKind, Option<&str>, u32)> {
        result.trace.layers[0].calls.iter().map(|c| (c.kind, c.agent.as_deref(), c.round)).collect()
    }

    fn notes(result: &crate::ForwardResult) -> &[String] {
        &result.trace.layers[0].notes
    }

    #[test]
    fn vote_counts_breaks_ties_by_index_and_abstains() {
        let ids = ["a1", "a2", "a3", "a4"];
        let check = |texts: &[&str], extractor: Option<&Extractor>, winner: usize, expected: &[&str]| {
            let (w, notes) = majority_vote(&ids[..texts.len()], texts, extractor);
            let notes: Vec<&str> = notes.iter().map(String::as_str).collect();
            assert_eq!((w, notes.as_slice()), (winner, expected), "{texts:?}");
        };
        check(
            &["\\boxed{4}", "\\boxed{5}", "\\boxed{5}"],
            Some(EXTRACT),
            1,
            &["vote: `4` <- a1; `5` <- a2, a3; winner `a2` (2 of 3)"],
        );
        check(
            &["\\boxed{5}", "\\boxed{4}", "\\boxed{4}", "\\boxed{5}"],
            Some(EXTRACT),
            0,
            &[
                "vote: `5` <- a1, a4; `4` <- a2, a3; winner `a1` (2 of 4)",
                "tie between `5`, `4` (2 votes each), broken by the lowest agent index: `a1`",
            ],
        );
        check(
            &["no answer", "\\boxed{7}"],
            Some(EXTRACT),
            1,
            &["vote: `7` <- a2; no answer <- a1; winner `a2` (1 of 2)"],
        );
        check(
            &["none", "nothing"],
            Some(EXTRACT),
            0,
            &["vote: no answer could be extracted; the output of `a1` is used"],
        );
        check(&["x  y", "z", "x y"], None, 0, &["vote: `x y` <- a1, a3; `z` <- a2; winner `a1` (2 of 3)"]);
    }

    #[tokio::test]
    async fn single_uses_the_first_agent_and_fails_with_it() {
        let model = Arc::new(ScriptedModel::default().on(reply_of("a1", "\\boxed{4}")));
        let r = run_layer(&model, 1, AggregatorName::Single, None).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        assert_eq!(shape(&r), [(CallKind::Agent, Some("a1"), 0)]);

        let model = Arc::new(ScriptedModel::default().on(fails("a1")));
        let e = run_layer(&model, 1, AggregatorName::Single, None).await.unwrap_err();
        assert!(
            matches!(&e, GraphError::LayerFailed { layer, source: LlmError::RetriesExhausted { .. }, .. } if layer == "solve"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn concatenate_labels_and_skips_failures() {
        let model =
            Arc::new(ScriptedModel::default().on(reply_of("a1", "one")).on(fails("a2")).on(reply_of("a3", "three")));
        let r = run_layer(&model, 3, AggregatorName::Concatenate, None).await.unwrap();
        assert_eq!(r.output, "Agent `a1` (Solver number 1.):\none\n\nAgent `a3` (Solver number 3.):\nthree");
        assert_eq!(notes(&r), ["agent `a2` failed in round 0 and is left out"]);
        let failed: Vec<_> = r.trace.layers[0].failures().map(|c| c.agent.as_deref()).collect();
        assert_eq!(failed, [Some("a2")]);
        assert!(r.trace.layers[0].calls[1].error.as_deref().unwrap().contains("gave up after 3 attempts"));
    }

    #[tokio::test]
    async fn majority_vote_returns_the_winners_full_answer() {
        let model = Arc::new(
            ScriptedModel::default()
                .on(reply_of("a1", "I think \\boxed{5}"))
                .on(reply_of("a2", "so \\boxed{4}"))
                .on(reply_of("a3", "clearly \\boxed{4}")),
        );
        let r = run_layer(&model, 3, AggregatorName::MajorityVote, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "so \\boxed{4}");
        assert_eq!(shape(&r).len(), 3);
        // With a3 down: one vote each, the tie goes to a1.
        let model = Arc::new(
            ScriptedModel::default()
                .on(reply_of("a1", "I think \\boxed{5}"))
                .on(reply_of("a2", "so \\boxed{4}"))
                .on(fails("a3")),
        );
        let r = run_layer(&model, 3, AggregatorName::MajorityVote, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "I think \\boxed{5}");
        assert_eq!(
            notes(&r),
            [
                "agent `a3` failed in round 0 and is left out",
                "vote: `5` <- a1; `4` <- a2; winner `a1` (1 of 2)",
                "tie between `5`, `4` (1 votes each), broken by the lowest agent index: `a1`",
            ]
        );
        let model = Arc::new(ScriptedModel::default().fallback(|_| Err(down())));
        let e = run_layer(&model, 2, AggregatorName::MajorityVote, Some(EXTRACT)).await.unwrap_err();
        assert!(matches!(e, GraphError::LayerFailed { .. }), "{e}");
    }

    #[tokio::test]
    async fn llm_synthesis_merges_with_the_last_agent_and_falls_back() {
        let model = Arc::new(
            ScriptedModel::default()
                .on_contains("You synthesise", "merged \\boxed{4}")
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "\\boxed{5}")),
        );
        let r = run_layer(&model, 2, AggregatorName::LlmSynthesis, None).await.unwrap();
        assert_eq!(r.output, "merged \\boxed{4}");
        assert_eq!(
            shape(&r),
            [(CallKind::Agent, Some("a1"), 0), (CallKind::Agent, Some("a2"), 0), (CallKind::Synthesis, Some("a2"), 0)]
        );
        let synthesis = &r.trace.layers[0].calls[2].messages;
        assert!(synthesis[0].content.starts_with("Solver number 2.") && synthesis[1].content.contains("\\boxed{5}"));

        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| has(r, "You synthesise").then(|| Err(down())))
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "\\boxed{5}")),
        );
        let r = run_layer(&model, 2, AggregatorName::LlmSynthesis, None).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        assert_eq!(notes(&r), ["synthesis failed; the answer of `a1` is used"]);
    }

    #[tokio::test]
    async fn select_best_takes_the_judged_answer_verbatim() {
        let model = Arc::new(
            ScriptedModel::default()
                .on_contains("strict judge", "```json\n{\"best\": 2, \"reason\": \"it checks its work\"}\n```")
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "checked: \\boxed{4}")),
        );
        let r = run_layer(&model, 2, AggregatorName::SelectBest, None).await.unwrap();
        assert_eq!(r.output, "checked: \\boxed{4}");
        assert_eq!(notes(&r), ["judge chose `a2`: it checks its work"]);
        let judge = model.requests().into_iter().find(|r| has(r, "strict judge")).unwrap();
        assert!(matches!(judge.response_format, ResponseFormat::JsonSchema { .. }));
        assert_eq!(judge.temperature, Some(0.0));

        for verdict in ["{\"best\": 3}", "the second one"] {
            let model = Arc::new(
                ScriptedModel::default()
                    .on_contains("strict judge", verdict)
                    .on(reply_of("a1", "\\boxed{4}"))
                    .on(reply_of("a2", "checked: \\boxed{4}")),
            );
            let r = run_layer(&model, 2, AggregatorName::SelectBest, None).await.unwrap();
            assert_eq!(r.output, "\\boxed{4}", "{verdict}");
            assert_eq!(notes(&r), ["judge fallback (invalid verdict); the answer of `a1` is used"]);
        }
        // One survivor: no judge call.
        let model = Arc::new(ScriptedModel::default().on(fails("a1")).on(reply_of("a2", "\\boxed{4}")));
        let r = run_layer(&model, 2, AggregatorName::SelectBest, None).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        assert_eq!(model.calls(), 2);
    }

    #[tokio::test]
    async fn sequential_refine_chains_drafts_past_failures() {
        let model = Arc::new(ScriptedModel::default().on(reply_of("a1", "draft one")).on(fails("a2")).on(|r| {
            (is_agent(r, "solve", "a3") && has(r, "Draft from the previous agent `a1`")).then(|| Ok("final".into()))
        }));
        let r = run_layer(&model, 3, AggregatorName::SequentialRefine, None).await.unwrap();
        assert_eq!(r.output, "final");
        assert_eq!(notes(&r), ["agent `a2` failed; the previous draft is kept"]);
        let a2 = &model.requests()[1];
        assert!(a2.messages[1].content.contains("draft one"), "a2 saw a1's draft");
    }

    #[tokio::test]
    async fn debate_runs_rounds_then_votes() {
        // a3 starts alone with 5 and is persuaded in round 1; a2's round-2 call fails (its answer stands).
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| {
                    (is_agent(r, "solve", "a2") && has(r, "previous round") && has(r, "now 4")).then(|| Err(down()))
                })
                .on(|r| {
                    (is_agent(r, "solve", "a3") && has(r, "previous round")).then(|| Ok("now 4: \\boxed{4}".into()))
                })
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "\\boxed{4} too"))
                .on(reply_of("a3", "\\boxed{5}")),
        );
        let r = run_layer(&model, 3, AggregatorName::Debate, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        let rounds: Vec<_> = shape(&r).iter().map(|(_, a, round)| format!("{}@{round}", a.unwrap())).collect();
        assert_eq!(rounds, ["a1@0", "a2@0", "a3@0", "a1@1", "a2@1", "a3@1", "a1@2", "a2@2", "a3@2"]);
        assert_eq!(
            notes(&r),
            [
                "agent `a2` failed in round 2; its previous answer stands",
                "vote: `4` <- a1, a2, a3; winner `a1` (3 of 3)"
            ]
        );
        let a1_round1 = &r.trace.layers[0].calls[3].messages[1].content;
        assert!(
            a1_round1.contains("Agent `a2`") && a1_round1.contains("Agent `a3`") && !a1_round1.contains("Agent `a1`")
        );

        // Without an extractor the final round is synthesised.
        let model =
            Arc::new(ScriptedModel::default().on_contains("You synthesise", "merged").fallback(|_| Ok("x".into())));
        let r = run_layer(&model, 2, AggregatorName::Debate, None).await.unwrap();
        assert_eq!(r.output, "merged");
        assert_eq!(shape(&r).last(), Some(&(CallKind::Synthesis, Some("a2"), 3)));
        assert_eq!(model.calls(), 2 * 3 + 1);

        // So it is when the extractor finds no answer in any final output (nothing to vote on).
        let model =
            Arc::new(ScriptedModel::default().on_contains("You synthesise", "merged").fallback(|_| Ok("x".into())));
        let r = run_layer(&model, 2, AggregatorName::Debate, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "merged");
        assert_eq!(model.calls(), 2 * 3 + 1);
    }

    #[tokio::test]
    async fn critic_revise_drafts_critiques_and_revises() {
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| {
                    (has(r, "Critiques of your draft") && has(r, "forgot units") && !has(r, "ok"))
                        .then(|| Ok("revised".into()))
                })
                .on(|r| {
                    (has(r, "You review a draft") && r.messages[0].content.starts_with("Solver number 2."))
                        .then(|| Ok("forgot units".into()))
                })
                .on(|r| has(r, "You review a draft").then(|| Err(down())))
                .on(reply_of("a1", "draft")),
        );
        let r = run_layer(&model, 3, AggregatorName::CriticRevise, None).await.unwrap();
        assert_eq!(r.output, "revised");
        assert_eq!(
            shape(&r),
            [
                (CallKind::Agent, Some("a1"), 0),
                (CallKind::Critique, Some("a2"), 1),
                (CallKind::Critique, Some("a3"), 1),
                (CallKind::Revise, Some("a1"), 2)
            ]
        );
        assert_eq!(notes(&r), ["critic `a3` failed and is left out"]);

        // A lone agent critiques itself; a failed revision leaves the draft.
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| has(r, "Critiques of your draft").then(|| Err(down())))
                .on_contains("You review a draft", "looks fine")
                .on(reply_of("a1", "draft")),
        );
        let r = run_layer(&model, 1, AggregatorName::CriticRevise, None).await.unwrap();
        assert_eq!(r.output, "draft");
        assert_eq!(shape(&r).iter().map(|s| s.1).collect::<Vec<_>>(), [Some("a1"); 3]);
        assert_eq!(notes(&r), ["revision failed; the draft is the output"]);
    }

    #[tokio::test]
    async fn budget_exhaustion_is_never_swallowed() {
        for name in AggregatorName::ALL {
            let model =
                Arc::new(ScriptedModel::default().fallback(|_| Err(LlmError::BudgetExhausted("$1 spent".into()))));
            let agents = name.min_agents().max(2);
            let e = run_layer(&model, agents, name, Some(EXTRACT)).await.unwrap_err();
            assert!(e.is_budget_exhausted(), "{name}: {e}");
            assert_eq!(e.to_string(), "budget exhausted during layer `solve`: budget exhausted: $1 spent");
        }
    }
}
