//! Cost of a run as the journal records it: calls and tokens as the responses report them.
//!
//! Unlike `ann_llm::Meter`, a cache hit counts like a fresh call here, so that a resumed run
//! (answered from the response cache) writes the same journal as an uninterrupted one.

use std::sync::{Arc, Mutex};

use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError, PriceTable, SharedModel, Usage};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Calls, tokens and dollars.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Cost {
    pub calls: u64,
    /// Calls that failed (after the backend's retries).
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub dollars: f64,
}

impl Cost {
    /// Count one answered call of `model` with its `usage`, priced by `prices`.
    pub fn add_call(&mut self, model: &str, usage: &Usage, prices: &PriceTable) {
        self.calls += 1;
        self.prompt_tokens = self.prompt_tokens.saturating_add(usage.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(usage.completion_tokens);
        self.dollars += prices.cost(model, usage);
    }

    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Cost) -> Cost {
        Cost {
            calls: self.calls - earlier.calls,
            errors: self.errors - earlier.errors,
            prompt_tokens: self.prompt_tokens - earlier.prompt_tokens,
            completion_tokens: self.completion_tokens - earlier.completion_tokens,
            dollars: self.dollars - earlier.dollars,
        }
    }

    /// `self + other`, field by field.
    pub fn plus(&self, other: &Cost) -> Cost {
        Cost {
            calls: self.calls + other.calls,
            errors: self.errors + other.errors,
            prompt_tokens: self.prompt_tokens + other.prompt_tokens,
            completion_tokens: self.completion_tokens + other.completion_tokens,
            dollars: self.dollars + other.dollars,
        }
    }
}

/// A decorator adding every call's usage to a shared [`Cost`].
pub(crate) struct CountingModel {
    inner: SharedModel,
    prices: PriceTable,
    cost: Arc<Mutex<Cost>>,
}

impl CountingModel {
    pub(crate) fn wrap(inner: SharedModel, prices: PriceTable, cost: Arc<Mutex<Cost>>) -> SharedModel {
        Arc::new(Self { inner, prices, cost })
    }
}

#[async_trait]
impl ChatModel for CountingModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let result = self.inner.complete(request).await;
        let mut cost = self.cost.lock().expect("cost lock");
        match &result {
            Ok(r) => cost.add_call(&request.model, &r.usage, &self.prices),
            Err(LlmError::BudgetExhausted(_)) => {}
            Err(_) => cost.errors += 1,
        }
        result
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}
