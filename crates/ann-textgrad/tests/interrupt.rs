//! The user's interrupt (Ctrl-C closes the budget) stops training as its own kind of stop,
//! `StopReason::Interrupted`, told apart from an exhausted limit by type, not by text.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ann_llm::{
    Budget, BudgetLimits, BudgetedModel, ChatModel, ChatRequest, ChatResponse, LlmError, PriceTable, SharedModel,
};
use ann_textgrad::{RunFiles, StopReason, TrainConfig, Trainer};
use async_trait::async_trait;
use common::{data, network, objective, scripted};

/// Raises `flag` (the user's Ctrl-C) once `after` calls have been answered.
struct InterruptsAfter {
    inner: SharedModel,
    answered: AtomicUsize,
    after: usize,
    flag: Arc<AtomicBool>,
}

#[async_trait]
impl ChatModel for InterruptsAfter {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let result = self.inner.complete(request).await;
        if self.answered.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.flag.store(true, Ordering::SeqCst);
        }
        result
    }
    fn identity(&self) -> String {
        self.inner.identity()
    }
}

async fn interrupted_after(after: usize, dir: &std::path::Path) -> StopReason {
    let flag = Arc::new(AtomicBool::new(false));
    let budget = Budget::new(BudgetLimits::default(), PriceTable::empty()).interrupt_when(flag.clone());
    let inner: SharedModel = Arc::new(scripted("env"));
    let watched = InterruptsAfter { inner, answered: AtomicUsize::new(0), after, flag };
    let model: SharedModel = Arc::new(BudgetedModel::new(watched, budget));
    let config = TrainConfig { epochs: 2, batch_size: 2, seed: 7, ..TrainConfig::default() };
    let trainer = Trainer::new(model.clone(), model, objective(), config);
    trainer.train(&network(), &data(), dir).await.expect("an interrupt is a stop, not an error").stop
}

#[tokio::test]
async fn an_interrupt_stops_training_as_interrupted_before_and_after_the_first_checkpoint() {
    let early = tempfile::tempdir().unwrap();
    assert_eq!(interrupted_after(1, early.path()).await, StopReason::Interrupted);
    assert_eq!(
        RunFiles::new(early.path()).unwrap().load_checkpoint().unwrap(),
        None,
        "stopped in the initial validation"
    );

    let late = tempfile::tempdir().unwrap();
    assert_eq!(interrupted_after(30, late.path()).await, StopReason::Interrupted);
    assert!(RunFiles::new(late.path()).unwrap().load_checkpoint().unwrap().is_some(), "stopped after a checkpoint");
}
