//! Hard budgets (tokens, dollars, calls), checked before each call against its worst case.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Attempts, ChatModel, ChatRequest, ChatResponse, LlmError, PriceTable, Usage, estimate_prompt_tokens};

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

/// The reason of a budget stop caused by [`Budget::interrupt_when`] (the detail of
/// [`LlmError::Interrupted`]).
pub const INTERRUPTED: &str = "interrupted by the user: no new call starts";

/// What has been spent (or is reserved by calls in flight).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BudgetSpent {
    pub tokens: u64,
    pub dollars: f64,
    pub calls: u64,
}

impl BudgetSpent {
    /// The sum of two amounts (saturating: a provider's absurd usage cannot wrap a total back
    /// under a limit).
    pub fn plus(self, other: BudgetSpent) -> BudgetSpent {
        BudgetSpent {
            tokens: self.tokens.saturating_add(other.tokens),
            dollars: self.dollars + other.dollars,
            calls: self.calls.saturating_add(other.calls),
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

/// A budget's books: what finished calls spent and the worst case reserved by calls in flight.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLedger {
    pub spent: BudgetSpent,
    pub in_flight: BudgetSpent,
}

impl BudgetLedger {
    /// The most the calls so far can have cost: what a resumed run must count as already spent
    /// (a call in flight when its process died may have been billed).
    pub fn committed(&self) -> BudgetSpent {
        self.spent.plus(self.in_flight)
    }
}

/// Receives the ledger after every change (see [`Budget::record_with`]); an error says why the
/// ledger could not be recorded.
type Recorder = Box<dyn Fn(&BudgetLedger) -> Result<(), String> + Send + Sync>;

#[derive(Default)]
struct Books {
    ledger: BudgetLedger,
    recorder: Option<Recorder>,
    /// Set by the user (Ctrl-C): no new call starts.
    interrupt: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Books {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Books")
            .field("ledger", &self.ledger)
            .field("recorder", &self.recorder.as_ref().map(|_| "installed"))
            .finish()
    }
}

/// A shared hard budget. Every call reserves its worst case first (prompt upper bound plus
/// `max_tokens`), so concurrent calls can never together exceed a limit.
///
/// A budget belongs to a run, not to a process: [`Budget::with_spent`] starts it from what earlier
/// processes of the run spent, and [`Budget::record_with`] hands every change of the ledger to the
/// caller (who keeps it next to the run's checkpoint).
#[derive(Debug)]
pub struct Budget {
    limits: BudgetLimits,
    prices: PriceTable,
    books: Mutex<Books>,
}

impl Budget {
    pub fn new(limits: BudgetLimits, prices: PriceTable) -> Arc<Self> {
        Arc::new(Self { limits, prices, books: Mutex::new(Books::default()) })
    }

    /// Close the budget when `flag` is set (a user's Ctrl-C): from then on every new call is
    /// refused as a budget stop, so the run stops as it does at a limit (calls in flight finish
    /// and reach the cache, the last checkpoint stays resumable, nothing is scored).
    pub fn interrupt_when(self: Arc<Self>, flag: Arc<AtomicBool>) -> Arc<Self> {
        self.books.lock().expect("budget lock").interrupt = Some(flag);
        self
    }

    /// Resume with what an earlier (checkpointed) part of the run already spent.
    pub fn with_spent(self: Arc<Self>, spent: BudgetSpent) -> Arc<Self> {
        self.books.lock().expect("budget lock").ledger.spent = spent;
        self
    }

    /// Record the ledger with `recorder` now and after every change from now on: before each call
    /// is sent (its worst case reserved) and after it settles, in order (the recorder runs under
    /// the budget's lock; keep it short). A failure to record before a call refuses the call with
    /// [`LlmError::BudgetExhausted`] (an unrecorded spend could be counted by no resumed run); a
    /// failure after a call is logged (the recorded ledger then still holds the call's worst case).
    /// Returns the first recording's error.
    pub fn record_with(
        &self,
        recorder: impl Fn(&BudgetLedger) -> Result<(), String> + Send + Sync + 'static,
    ) -> Result<(), String> {
        let mut books = self.books.lock().expect("budget lock");
        recorder(&books.ledger)?;
        books.recorder = Some(Box::new(recorder));
        Ok(())
    }

    pub fn limits(&self) -> &BudgetLimits {
        &self.limits
    }

    /// What finished calls have spent.
    pub fn spent(&self) -> BudgetSpent {
        self.books.lock().expect("budget lock").ledger.spent
    }

    /// What finished calls have spent and calls in flight hold reserved.
    pub fn ledger(&self) -> BudgetLedger {
        self.books.lock().expect("budget lock").ledger
    }

    fn worst_case(&self, request: &ChatRequest) -> BudgetSpent {
        let completion = request.max_tokens.unwrap_or(self.limits.default_max_tokens) as u64;
        let prompt = estimate_prompt_tokens(&request.messages);
        let usage = Usage { prompt_tokens: prompt, completion_tokens: completion, cached_tokens: 0 };
        BudgetSpent { tokens: usage.total(), dollars: self.prices.cost(&request.model, &usage), calls: 1 }
    }

    /// Reserve the worst case of `request` (and record it), or say which limit it would break.
    fn reserve(&self, request: &ChatRequest) -> Result<BudgetSpent, LlmError> {
        let worst = self.worst_case(request);
        let mut books = self.books.lock().expect("budget lock");
        let ledger = books.ledger;
        let after = ledger.committed().plus(worst);
        let l = &self.limits;
        let interrupted = books.interrupt.as_ref().is_some_and(|flag| flag.load(Ordering::SeqCst));
        if interrupted {
            return Err(LlmError::Interrupted);
        }
        let broken = if l.max_calls.is_some_and(|m| after.calls > m) {
            Some(format!(
                "calls: {} spent, {} in flight, limit {}",
                ledger.spent.calls,
                ledger.in_flight.calls,
                l.max_calls.unwrap_or_default()
            ))
        } else if l.max_tokens.is_some_and(|m| after.tokens > m) {
            Some(format!(
                "tokens: {} spent, {} in flight, this call may use {}, limit {}",
                ledger.spent.tokens,
                ledger.in_flight.tokens,
                worst.tokens,
                l.max_tokens.unwrap_or_default()
            ))
        } else if l.max_dollars.is_some_and(|m| after.dollars > m) {
            Some(format!(
                "dollars: {:.6} spent, {:.6} in flight, this call may cost {:.6}, limit {:.6}",
                ledger.spent.dollars,
                ledger.in_flight.dollars,
                worst.dollars,
                l.max_dollars.unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(why) = broken {
            return Err(LlmError::BudgetExhausted(why));
        }
        let reserved = BudgetLedger { spent: ledger.spent, in_flight: ledger.in_flight.plus(worst) };
        if let Some(record) = &books.recorder {
            record(&reserved).map_err(|why| {
                LlmError::BudgetExhausted(format!("the spend could not be recorded before the call: {why}"))
            })?;
        }
        books.ledger = reserved;
        Ok(worst)
    }

    fn settle(&self, model: &str, reserved: BudgetSpent, usage: Option<&Usage>) {
        let mut books = self.books.lock().expect("budget lock");
        // A failed attempt counts as a call; tokens it did not report are taken as zero.
        let usage = usage.copied().unwrap_or_default();
        let actual = BudgetSpent { tokens: usage.total(), dollars: self.prices.cost(model, &usage), calls: 1 };
        let ledger = &mut books.ledger;
        ledger.in_flight = ledger.in_flight.minus(reserved);
        ledger.spent = ledger.spent.plus(actual);
        let ledger = books.ledger;
        if let Some(record) = &books.recorder
            && let Err(why) = record(&ledger)
        {
            tracing::warn!("the budget's ledger could not be recorded after a call: {why}");
        }
    }
}

/// Decorator that refuses any call whose worst case would exceed the shared [`Budget`].
/// Put it below the response cache, so that cache hits cost nothing.
///
/// It counts billable requests, not logical calls: through [`ChatModel::complete_counted`] the
/// backend announces each attempt (retries included), which reserves its worst case (one call,
/// prompt upper bound plus `max_tokens`) before it is sent and settles with the usage the attempt
/// reported, so a 200 with a broken body is counted with its tokens.
pub struct BudgetedModel<M> {
    inner: M,
    budget: Arc<Budget>,
}

impl<M: ChatModel> BudgetedModel<M> {
    pub fn new(inner: M, budget: Arc<Budget>) -> Self {
        Self { inner, budget }
    }
}

/// The budget's side of one call: the reservation of the attempt in flight, if any.
struct CallAttempts<'a> {
    budget: &'a Budget,
    request: &'a ChatRequest,
    open: Mutex<Option<BudgetSpent>>,
}

impl CallAttempts<'_> {
    /// Settle the attempt in flight, if any, with `usage`.
    fn close(&self, usage: Option<&Usage>) {
        let open = self.open.lock().expect("attempt lock").take();
        if let Some(reserved) = open {
            self.budget.settle(&self.request.model, reserved, usage);
        }
    }
}

impl Attempts for CallAttempts<'_> {
    fn sending(&self) -> Result<(), LlmError> {
        // An attempt the backend did not report on is settled as one that reported nothing.
        self.close(None);
        let reserved = self.budget.reserve(self.request)?;
        *self.open.lock().expect("attempt lock") = Some(reserved);
        Ok(())
    }

    fn answered(&self, usage: Option<Usage>) {
        self.close(usage.as_ref());
    }
}

#[async_trait]
impl<M: ChatModel> ChatModel for BudgetedModel<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let attempts = CallAttempts { budget: &self.budget, request, open: Mutex::new(None) };
        let result = self.inner.complete_counted(request, &attempts).await;
        attempts.close(None);
        result
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}
