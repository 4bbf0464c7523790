//! Every setting of a training run: batches, selection, gradients, patches, gate, ablations.

use ann_graph::{ForwardConfig, RoutingMode, RoutingRecord, ValidationRules};
use ann_llm::{CallSettings, PriceTable};
use serde::{Deserialize, Serialize};

use crate::patch::PatchLimits;
use crate::prompts::PromptLimits;

/// The acceptance rule of the validation gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// The candidate must score strictly higher than the current network.
    #[default]
    Strict,
    /// Ties are accepted too (TextGrad's rule).
    NonDecreasing,
}

impl Acceptance {
    /// Whether a candidate with validation score `candidate` replaces a network scoring `current`:
    /// `Strict`: `candidate > current + epsilon`; `NonDecreasing`: `candidate >= current + epsilon`.
    pub fn accepts(self, candidate: f64, current: f64, epsilon: f64) -> bool {
        match self {
            Self::Strict => candidate > current + epsilon,
            Self::NonDecreasing => candidate >= current + epsilon,
        }
    }
}

/// How a local gradient turns into a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalForm {
    /// One call per layer: gradient, requirement for the previous layer and patch.
    #[default]
    Fused,
    /// A gradient call, then an update call that writes the patch.
    TwoStage,
    /// A gradient call, then an update call that writes one instruction appended to one agent's
    /// prompt (`{"agent", "instruction"}`, which becomes a `set_prompt`): the smallest edit a small
    /// optimiser model can fill under a schema.
    Append,
}

/// How the validation gate treats the patches of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// All patches of a step merged into one candidate, gated once.
    #[default]
    Merged,
    /// Each layer's patch gated on its own, in layer order, each on top of those accepted before
    /// it (more accurate credit, more validation cost).
    PerLayer,
}

/// Ablation switches: each turns off one part of the method (each `false` by default; an
/// experiment config's `[train.ablations]` table is this type, unknown keys refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ablations {
    /// No training at all: the starting network is the result.
    pub no_backward: bool,
    /// Gradient prompts see no past iterations.
    pub no_momentum: bool,
    /// Every format-valid patch is accepted (its validation score is still measured).
    pub no_gate: bool,
    /// No global gradient call: uniform blame, the critiques as the diagnosis, no structure call.
    pub no_global_gradient: bool,
    /// Every layer uses its default aggregator.
    pub fixed_routing: bool,
}

/// Which examples a backward step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Failures (score < 1), lowest score first.
    pub max_failures: usize,
    /// Successes added for contrast.
    pub max_successes: usize,
}

impl Default for Selection {
    fn default() -> Self {
        Self { max_failures: 4, max_successes: 1 }
    }
}

/// Every setting of a training run (the defaults are the method's).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seed of the shuffles.
    pub seed: u64,
    /// Stop after this many rejected steps in a row (0: never).
    pub patience: u64,
    /// Stop when the best validation score reaches this.
    pub target_val: f64,
    pub selection: Selection,
    /// Layers with at least this blame get a local gradient.
    pub blame_threshold: f64,
    /// At most this many local gradients per step.
    pub max_local_layers: usize,
    pub local_form: LocalForm,
    /// Make the structure call when the global gradient suggests a structural change.
    pub structural: bool,
    /// How many times a rejected patch is sent back to the model to fix.
    pub patch_retries: u32,
    pub limits: PatchLimits,
    /// Invariants of the format gate (with the benchmark's answer format).
    pub rules: ValidationRules,
    pub momentum_window: usize,
    pub acceptance: Acceptance,
    /// The margin ε a candidate's validation score must clear (0: today's rule).
    pub epsilon: f64,
    pub gate: GateMode,
    pub ablations: Ablations,
    /// The forward pass of the worker model.
    pub forward: ForwardConfig,
    /// The optimiser's calls (loss, gradients, patches): model "default", temperature 0.3.
    pub optimizer: CallSettings,
    pub prompt_limits: PromptLimits,
    /// Prices for the journal's dollar figures.
    pub prices: PriceTable,
    /// Write the traces of every forward the trainer runs (each training batch, the initial
    /// validation, the gate's pre-checks and validations) to `traces/` in the run directory.
    pub write_traces: bool,
    /// Keep the traces of at most this many examples per set of forwards (0: all).
    pub trace_examples: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 4,
            seed: 0,
            patience: 5,
            target_val: 0.99,
            selection: Selection::default(),
            blame_threshold: 0.2,
            max_local_layers: 3,
            local_form: LocalForm::Fused,
            structural: true,
            patch_retries: 1,
            limits: PatchLimits::default(),
            rules: ValidationRules::default(),
            momentum_window: 3,
            acceptance: Acceptance::Strict,
            epsilon: 0.0,
            gate: GateMode::Merged,
            ablations: Ablations::default(),
            forward: ForwardConfig::default(),
            optimizer: CallSettings { temperature: 0.3, ..CallSettings::default() },
            prompt_limits: PromptLimits::default(),
            prices: PriceTable::default(),
            write_traces: true,
            trace_examples: 0,
        }
    }
}

impl TrainConfig {
    /// The worker's forward config: [`TrainConfig::forward`], with every layer on its default
    /// aggregator under the `fixed_routing` ablation.
    pub fn forward_config(&self) -> ForwardConfig {
        let mut f = self.forward.clone();
        if self.ablations.fixed_routing {
            f.routing = RoutingMode::Fixed;
        }
        f
    }

    /// [`TrainConfig::forward_config`] with the routing statistics of `record` when
    /// [`ForwardConfig::routing_statistics`] is on.
    pub fn forward_with(&self, record: &RoutingRecord) -> ForwardConfig {
        let mut f = self.forward_config();
        if f.routing_statistics {
            f.routing_stats = record.stats();
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptance_rules() {
        assert!(Acceptance::Strict.accepts(0.6, 0.5, 0.0));
        assert!(!Acceptance::Strict.accepts(0.5, 0.5, 0.0));
        assert!(!Acceptance::Strict.accepts(0.55, 0.5, 0.1));
        assert!(Acceptance::NonDecreasing.accepts(0.5, 0.5, 0.0));
        assert!(!Acceptance::NonDecreasing.accepts(0.4, 0.5, 0.0));
    }
}
