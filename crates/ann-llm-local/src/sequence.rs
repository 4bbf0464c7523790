//! One request being answered: its KV cache and logits after the prompt, and the decoding loop's
//! per-token step, separate from the forward pass so that several sequences can share one.

use std::collections::BTreeSet;
use std::time::Instant;

use ann_llm::{ChatResponse, FinishReason, LlmError, Usage};
use llguidance::Matcher;

use crate::LocalError;
use crate::llama::KvCache;
use crate::sampling::Sampler;
use crate::tokenizer::GgufTokenizer;

/// What a sequence needs after choosing its next token.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Run this token through the model (then call [`Sequence::next`] again with its logits set).
    Feed(u32),
    /// The answer is complete.
    Done(FinishReason),
}

/// A request after its prefill, decoded one token at a time.
pub struct Sequence {
    pub(crate) kv: KvCache,
    /// Logits of the next token (after the prompt, then after each fed token).
    pub(crate) logits: Vec<f32>,
    pub(crate) matcher: Option<Matcher>,
    pub(crate) sampler: Sampler,
    pub(crate) stop: Vec<String>,
    pub(crate) max_new: usize,
    pub(crate) prompt_len: usize,
    pub(crate) cached_tokens: usize,
    pub(crate) context: usize,
    pub(crate) started: Instant,
    pub(crate) generated: Vec<u32>,
    pub(crate) text: String,
    /// The request, when it offered tools: its answer is read as text or tool calls at the end.
    pub(crate) tool_request: Option<Box<ann_llm::ChatRequest>>,
}

impl Sequence {
    /// Choose the next token from the current logits: masked by the grammar, sampled, then checked
    /// against the end-of-turn tokens, the stop strings, the grammar's end and the length limits.
    pub fn next(&mut self, tokenizer: &GgufTokenizer, stop_ids: &BTreeSet<u32>) -> Result<Step, LlmError> {
        if self.generated.len() >= self.max_new {
            return Ok(Step::Done(FinishReason::Length));
        }
        if let Some(m) = self.matcher.as_mut() {
            let mask = m.compute_mask().map_err(|e| LocalError::Grammar(e.to_string()))?;
            for (i, l) in self.logits.iter_mut().enumerate() {
                if !mask.is_allowed(i as u32) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        let Some(token) = self.sampler.sample(&self.logits) else {
            return Err(LocalError::Runtime("no token is allowed (every logit masked or not finite)".into()).into());
        };
        if stop_ids.contains(&token) {
            return Ok(Step::Done(FinishReason::Stop));
        }
        self.generated.push(token);
        self.text = tokenizer.decode(&self.generated)?;
        let cut = self.stop.iter().filter(|s| !s.is_empty()).filter_map(|s| self.text.find(s.as_str())).min();
        if let Some(cut) = cut {
            self.text.truncate(cut);
            return Ok(Step::Done(FinishReason::Stop));
        }
        if let Some(m) = self.matcher.as_mut() {
            m.consume_token(token).map_err(|e| LocalError::Grammar(e.to_string()))?;
            if m.is_stopped() {
                return Ok(Step::Done(FinishReason::Stop));
            }
        }
        if self.generated.len() >= self.max_new || self.prompt_len + self.generated.len() >= self.context {
            return Ok(Step::Done(FinishReason::Length));
        }
        Ok(Step::Feed(token))
    }

    /// The response of a finished sequence.
    pub fn finish(self, mut finish_reason: FinishReason, model: &str) -> ChatResponse {
        let (text, tool_calls) = match &self.tool_request {
            Some(req) => crate::tools::read_answer(req, self.text),
            None => (self.text, Vec::new()),
        };
        if !tool_calls.is_empty() {
            finish_reason = FinishReason::ToolCalls;
        }
        ChatResponse {
            text,
            finish_reason,
            usage: Usage {
                prompt_tokens: self.prompt_len as u64,
                completion_tokens: self.generated.len() as u64,
                cached_tokens: self.cached_tokens as u64,
            },
            model: model.to_string(),
            latency_ms: self.started.elapsed().as_millis() as u64,
            cache_hit: false,
            tool_calls,
        }
    }
}
