//! The budget as a decorator: each attempt a backend announces reserves its worst case with the
//! shared [`Budget`] before it is sent and settles with what it reported.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::budget::{Budget, BudgetSpent};
use crate::{Attempts, ChatModel, ChatRequest, ChatResponse, LlmError, Usage};

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

#[async_trait]
impl Attempts for CallAttempts<'_> {
    async fn sending(&self) -> Result<(), LlmError> {
        // An attempt the backend did not report on is settled as one that reported nothing.
        self.close(None);
        let (reserved, version) = self.budget.reserve(self.request)?;
        *self.open.lock().expect("attempt lock") = Some(reserved);
        if let Some(version) = version
            && let Err(why) = self.budget.recorded(version).await
        {
            if let Some(reserved) = self.open.lock().expect("attempt lock").take() {
                self.budget.withdraw(reserved);
            }
            return Err(LlmError::BudgetExhausted(format!("the spend could not be recorded before the call: {why}")));
        }
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

    fn concurrency_limit(&self) -> Option<usize> {
        self.inner.concurrency_limit()
    }
}
