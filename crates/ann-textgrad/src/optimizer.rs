//! The optimiser: the model that answers the backward phase's calls, with the settings it calls it with.
//!
//! Its steps live beside it, one file each, as the method names them: [`Optimizer::loss`]
//! (`loss.rs`), [`Optimizer::backward`] (`backward.rs`) and [`Optimizer::step`] (`step.rs`).

use ann_llm::{ChatRequest, Message, SharedModel};

use crate::{TrainConfig, TrainError};

/// The optimiser model with the settings of the backward phase (the optimiser's call settings,
/// prompt limits, blame threshold and layer count, local form, structure call, patch limits,
/// retries and format rules of a [`TrainConfig`]).
///
/// ```no_run
/// # fn demo(model: ann_llm::SharedModel) {
/// use ann_textgrad::{Optimizer, TrainConfig};
/// let optimizer = Optimizer::new(model, TrainConfig::default());
/// assert_eq!(optimizer.config().optimizer.temperature, 0.3);
/// # }
/// ```
#[derive(Clone)]
pub struct Optimizer {
    model: SharedModel,
    config: TrainConfig,
}

impl Optimizer {
    pub fn new(model: SharedModel, config: TrainConfig) -> Self {
        Self { model, config }
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// An optimiser request for `messages`, tagged with its call (`loss`, `global_gradient`, ...).
    pub(crate) fn request(&self, messages: Vec<Message>, call: &str) -> ChatRequest {
        self.config.optimizer.request(messages).with_tag("phase", "backward").with_tag("call", call)
    }

    /// One optimiser call: the reply, or why it failed (an exhausted budget and an infrastructure
    /// failure are errors: an unreachable endpoint is never a fallback gradient).
    pub(crate) async fn call(&self, request: &ChatRequest) -> Result<Result<String, String>, TrainError> {
        match self.model.complete(request).await {
            Ok(r) => Ok(Ok(r.text)),
            Err(e) => match TrainError::stop_of(&e) {
                Some(stop) => Err(stop),
                None => Ok(Err(e.to_string())),
            },
        }
    }
}
