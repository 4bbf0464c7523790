//! Textual backpropagation: loss, global and local gradients, momentum, patches, validation gate.
//!
//! The backward phase of an Agentic Neural Network (method sections 4-6, design 7.4-7.10):
//! - [`patch`]: typed patch ops, validated, compiled to RFC 6902 and applied all-or-nothing;
//! - [`momentum`]: per-scope ring buffers rendered as the PAST ITERATIONS block;
//! - [`prompts`]: every backward prompt as a pure function;
//! - [`gradient`]: parsing the language loss, the global gradient and the local gradients;
//! - [`Trainer`]: the training loop with its validation gate, run journal and checkpoints.
//!
//! The crate does not know benchmarks: the caller scores outputs through an [`Objective`].
//!
//! ```no_run
//! # async fn demo(worker: ann_llm::SharedModel, optimizer: ann_llm::SharedModel,
//! #     objective: std::sync::Arc<dyn ann_textgrad::Objective>, start: ann_graph::Network,
//! #     data: ann_textgrad::TrainData) -> Result<(), ann_textgrad::TrainError> {
//! use ann_textgrad::{TrainConfig, Trainer};
//!
//! let config = TrainConfig {
//!     rules: ann_graph::ValidationRules::with_answer_format("\\boxed{}"),
//!     ..TrainConfig::default()
//! };
//! let trainer = Trainer::new(worker, optimizer, objective, config);
//! // Resumes when the directory holds a checkpoint; an exhausted budget is a stop reason, not an error.
//! let outcome = trainer.train(&start, &data, std::path::Path::new("runs/demo")).await?;
//! println!("validation {:.2} -> {:.2} ({:?})", outcome.val_initial, outcome.val_best, outcome.stop);
//! # Ok(()) }
//! ```

mod error;
pub mod gradient;
pub mod journal;
mod meter;
pub mod momentum;
mod objective;
pub mod patch;
pub mod prompts;
mod train;

#[cfg(test)]
mod testing;

pub use error::TrainError;
pub use gradient::{GlobalGradient, LanguageLoss, LayerBlame, LocalText, StructuralSuggestion};
pub use journal::{
    Checkpoint, ComponentRecord, Decision, JournalEvent, OptimizerState, RunFiles, StepRecord, StopReason,
};
pub use meter::Cost;
pub use momentum::{Momentum, MomentumEntry, Outcome, Scope};
pub use objective::{Example, Objective, ObjectiveError, Score, TrainData};
pub use patch::{
    AppliedPatch, PatchLimits, PatchOp, PatchScope, Rejection, apply_patch, compile, parse_patch, summarize_ops,
};
pub use train::{
    Ablations, Acceptance, ExampleRun, GateMode, LocalForm, OptimizerSettings, Selection, TrainConfig, TrainOutcome,
    Trainer, accepts, global_gradient_format, mean_score, select_examples,
};
