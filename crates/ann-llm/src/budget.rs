//! Hard budgets (tokens, dollars, calls), checked before each call against its worst case.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ChatModel, ChatRequest, ChatResponse, LlmError, PriceTable, Usage, estimate_prompt_tokens};

/// Limits of a run; `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLimits {
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_dollars: Option<f64>,
    #[serde(default)]
    pub max_calls: Option<u64>,
    /// Completion tokens assumed for a request that sets no `max_tokens` (its worst case).
    #[serde(default = "default_completion_allowance")]
    pub default_max_tokens: u32,
}

fn default_completion_allowance() -> u32 {
    4096
}

impl Default for BudgetLimits {
    fn default() -> Self {
        Self {
            max_tokens: None,
            max_dollars: None,
            max_calls: None,
            default_max_tokens: default_completion_allowance(),
        }
    }
}

/// What has been spent (or is reserved by calls in flight).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BudgetSpent {
    pub tokens: u64,
    pub dollars: f64,
    pub calls: u64,
}

impl BudgetSpent {
    fn plus(self, other: BudgetSpent) -> BudgetSpent {
        BudgetSpent {
            tokens: self.tokens + other.tokens,
            dollars: self.dollars + other.dollars,
            calls: self.calls + other.calls,
        }
    }
    fn minus(self, other: BudgetSpent) -> BudgetSpent {
        BudgetSpent {
            tokens: self.tokens.saturating_sub(other.tokens),
            dollars: (self.dollars - other.dollars).max(0.0),
            calls: self.calls.saturating_sub(other.calls),
        }
    }
}

#[derive(Debug, Default)]
struct Ledger {
    spent: BudgetSpent,
    reserved: BudgetSpent,
}

/// A shared hard budget. Every call reserves its worst case first (prompt upper bound plus
/// `max_tokens`), so concurrent calls can never together exceed a limit.
#[derive(Debug)]
pub struct Budget {
    limits: BudgetLimits,
    prices: PriceTable,
    ledger: Mutex<Ledger>,
}

impl Budget {
    pub fn new(limits: BudgetLimits, prices: PriceTable) -> Arc<Self> {
        Arc::new(Self { limits, prices, ledger: Mutex::new(Ledger::default()) })
    }

    /// Resume with what an earlier (checkpointed) part of the run already spent.
    pub fn with_spent(self: Arc<Self>, spent: BudgetSpent) -> Arc<Self> {
        self.ledger.lock().expect("budget lock").spent = spent;
        self
    }

    pub fn limits(&self) -> &BudgetLimits {
        &self.limits
    }

    /// What finished calls have spent.
    pub fn spent(&self) -> BudgetSpent {
        self.ledger.lock().expect("budget lock").spent
    }

    fn worst_case(&self, request: &ChatRequest) -> BudgetSpent {
        let completion = request.max_tokens.unwrap_or(self.limits.default_max_tokens) as u64;
        let prompt = estimate_prompt_tokens(&request.messages);
        let usage = Usage { prompt_tokens: prompt, completion_tokens: completion, cached_tokens: 0 };
        BudgetSpent { tokens: usage.total(), dollars: self.prices.cost(&request.model, &usage), calls: 1 }
    }

    /// Reserve the worst case of `request`, or say which limit it would break.
    fn reserve(&self, request: &ChatRequest) -> Result<BudgetSpent, LlmError> {
        let worst = self.worst_case(request);
        let mut ledger = self.ledger.lock().expect("budget lock");
        let after = ledger.spent.plus(ledger.reserved).plus(worst);
        let l = &self.limits;
        let broken = if l.max_calls.is_some_and(|m| after.calls > m) {
            Some(format!("calls: {} spent, limit {}", ledger.spent.calls, l.max_calls.unwrap_or_default()))
        } else if l.max_tokens.is_some_and(|m| after.tokens > m) {
            Some(format!(
                "tokens: {} spent, {} in flight, this call may use {}, limit {}",
                ledger.spent.tokens,
                ledger.reserved.tokens,
                worst.tokens,
                l.max_tokens.unwrap_or_default()
            ))
        } else if l.max_dollars.is_some_and(|m| after.dollars > m) {
            Some(format!(
                "dollars: {:.6} spent, {:.6} in flight, this call may cost {:.6}, limit {:.6}",
                ledger.spent.dollars,
                ledger.reserved.dollars,
                worst.dollars,
                l.max_dollars.unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(why) = broken {
            return Err(LlmError::BudgetExhausted(why));
        }
        ledger.reserved = ledger.reserved.plus(worst);
        Ok(worst)
    }

    fn settle(&self, model: &str, reserved: BudgetSpent, usage: Option<&Usage>) {
        let mut ledger = self.ledger.lock().expect("budget lock");
        ledger.reserved = ledger.reserved.minus(reserved);
        // A failed call counts as a call; its tokens are unknown and taken as zero.
        let usage = usage.copied().unwrap_or_default();
        let actual = BudgetSpent { tokens: usage.total(), dollars: self.prices.cost(model, &usage), calls: 1 };
        ledger.spent = ledger.spent.plus(actual);
    }
}

/// Decorator that refuses any call whose worst case would exceed the shared [`Budget`].
/// Put it below the response cache, so that cache hits cost nothing.
pub struct BudgetedModel<M> {
    inner: M,
    budget: Arc<Budget>,
}

impl<M: ChatModel> BudgetedModel<M> {
    pub fn new(inner: M, budget: Arc<Budget>) -> Self {
        Self { inner, budget }
    }
}

#[async_trait]
impl<M: ChatModel> ChatModel for BudgetedModel<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let reserved = self.budget.reserve(request)?;
        let result = self.inner.complete(request).await;
        let usage = result.as_ref().ok().filter(|r| !r.cache_hit).map(|r| r.usage);
        self.budget.settle(&request.model, reserved, usage.as_ref());
        result
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}
