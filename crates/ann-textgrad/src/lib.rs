//! Textual backpropagation: loss, global and local gradients, momentum, patches, validation gate.
//!
//! The backward phase of an Agentic Neural Network, one public step per file, usable without the
//! training loop:
//! - [`evaluate()`] (`evaluate.rs`): forward a network on examples and score each output;
//! - [`Optimizer::loss`] (`loss.rs`): the language loss of the selected examples;
//! - [`Optimizer::backward`] (`backward.rs`): the global gradient, the local gradients and the
//!   structure call, as a [`Proposal`] of patch candidates (the counterpart of `loss.backward()`);
//! - [`Optimizer::step`] (`step.rs`): the merge of the proposal's candidates into the step's patch
//!   (the counterpart of `optimizer.step()`); the same file holds [`Optimizer::repair`], the
//!   retry-to-fix loop `backward` runs on each candidate as it is proposed, so that the optimiser's
//!   calls keep their order;
//! - [`Gate::check`] (`gate.rs`): the pre-check and the validation gate;
//! - [`Trainer`] (`train.rs`): the epoch loop with its run journal and checkpoints.
//!
//! Beside them: [`patch`] (typed patch ops, validated, compiled to RFC 6902 and applied
//! all-or-nothing), [`momentum`] (per-scope ring buffers rendered as the PAST ITERATIONS block),
//! [`prompts`] (every backward prompt as a pure function), [`gradient`] (parsing the losses and
//! gradients), [`decision`] (the step's typed vocabulary) and [`journal`].
//!
//! The crate does not know benchmarks: the caller scores outputs through an [`ann_eval::Evaluator`].
//!
//! ```no_run
//! # async fn demo(worker: ann_llm::SharedModel, optimizer: ann_llm::SharedModel,
//! #     evaluator: std::sync::Arc<dyn ann_eval::Evaluator>, start: ann_graph::Network,
//! #     data: ann_textgrad::TrainData) -> Result<(), ann_textgrad::TrainError> {
//! use ann_textgrad::{TrainConfig, Trainer};
//!
//! let config = TrainConfig {
//!     rules: ann_graph::ValidationRules::with_answer_format("\\boxed{}"),
//!     ..TrainConfig::default()
//! };
//! let trainer = Trainer::new(worker, optimizer, evaluator, config);
//! // Resumes when the directory holds a checkpoint; an exhausted budget is a stop reason, not an error.
//! let outcome = trainer.train(&start, &data, std::path::Path::new("runs/demo")).await?;
//! println!("validation {:.2} -> {:.2} ({:?})", outcome.val_initial, outcome.val_best, outcome.stop);
//! # Ok(()) }
//! ```

mod backward;
mod config;
pub mod decision;
mod error;
mod evaluate;
mod gate;
pub mod gradient;
pub mod journal;
mod loss;
mod meter;
pub mod momentum;
mod optimizer;
pub mod patch;
pub mod prompts;
mod step;
mod train;

#[cfg(test)]
mod testing;

pub use ann_eval::{EvalError, Evaluation, Evaluator, Example};
pub use backward::{Candidate, Proposal, global_gradient_format, local_text_format};
pub use config::{Ablations, Acceptance, GateMode, LocalForm, Selection, TrainConfig};
pub use decision::{ComponentScope, ComponentStatus, Decision, Reason};
pub use error::TrainError;
pub use evaluate::{ExampleRun, evaluate, evaluate_each, forward_cost, mean_score, score};
pub use gate::{Gate, Standing, Verdict};
pub use gradient::{GlobalGradient, LanguageLoss, LayerBlame, LocalText, StructuralSuggestion};
pub use journal::{Checkpoint, ComponentRecord, JournalEvent, OptimizerState, RunFiles, StepRecord, StopReason};
pub use loss::select_examples;
pub use meter::{Cost, TrainCosts};
pub use momentum::{Momentum, MomentumEntry, Scope};
pub use optimizer::Optimizer;
pub use patch::{
    AppliedPatch, PatchLimits, PatchOp, PatchScope, Rejection, apply_patch, compile, parse_patch, summarize_ops,
};
pub use step::Merged;
pub use train::{TrainData, TrainOutcome, Trainer};

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
