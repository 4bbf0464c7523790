//! The validation gate: whether the step's candidate network replaces the current one.
//!
//! A format-valid candidate first faces the pre-check: it must score higher than the current
//! network on the step's failing examples (`no_batch_gain` otherwise); then its validation score
//! must pass the acceptance rule against the current network's (`no_validation_gain`
//! otherwise): with [`Acceptance::Strict`], `candidate > current + ε`. In
//! [`GateMode::PerLayer`] each merged patch is gated on its own, in merge order, on top of those
//! accepted before it. Under the `no_gate` ablation every format-valid patch is accepted (its
//! validation score is still measured).
//!
//! ```no_run
//! # async fn demo(gate: ann_textgrad::Gate, mut merged: ann_textgrad::Merged, net: ann_graph::Network,
//! #     failing: Vec<ann_textgrad::ExampleRun>, failing_examples: Vec<&ann_eval::Example>,
//! #     validation: Vec<ann_eval::Example>) -> Result<(), ann_textgrad::TrainError> {
//! use ann_textgrad::Standing;
//!
//! let current = Standing { network: net, val: 0.5, failing };
//! let verdict = gate.check(&mut merged, current, &failing_examples, &validation).await?;
//! println!("{:?} (validation {:?})", verdict.decision, verdict.val_candidate);
//! # Ok(()) }
//! ```
//!
//! [`Acceptance::Strict`]: crate::Acceptance::Strict

use std::sync::Arc;

use ann_eval::{Evaluator, Example};
use ann_graph::Network;
use ann_llm::SharedModel;

use crate::TrainError;
use crate::config::{GateMode, TrainConfig};
use crate::decision::{Decision, Reason};
use crate::evaluate::{ExampleRun, evaluate, mean_score, score};
use crate::patch::{AppliedPatch, PatchOp, PatchScope, apply_patch};
use crate::step::Merged;

/// The network a candidate is compared against: its validation score and its runs on the step's
/// failing examples.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub network: Network,
    pub val: f64,
    pub failing: Vec<ExampleRun>,
}

/// What the gate decided on a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// Mean score of the current and the candidate network on the step's failing examples (the
    /// last measured, with the per-layer gate).
    pub pre_check: Option<(f64, f64)>,
    /// The candidate's validation score, when it was measured.
    pub val_candidate: Option<f64>,
    /// The accepted patch (from the step's network) with its validation score.
    pub accepted: Option<(AppliedPatch, f64)>,
    /// The ops the step keeps: the merged ops, or with the per-layer gate those of the accepted
    /// patches (what momentum remembers of the step).
    pub kept: Vec<PatchOp>,
}

/// What the gate measured of one candidate; `next` is the standing the step continues from.
struct Gated {
    decision: Decision,
    pre_check: Option<(f64, f64)>,
    val: Option<f64>,
    next: Standing,
}

/// The validation gate: the worker model and the evaluator that score candidates, with the
/// forward settings, acceptance rule, ε, gate mode, patch limits and format rules of a
/// [`TrainConfig`].
#[derive(Clone)]
pub struct Gate {
    worker: SharedModel,
    evaluator: Arc<dyn Evaluator>,
    config: TrainConfig,
}

impl Gate {
    pub fn new(worker: SharedModel, evaluator: Arc<dyn Evaluator>, config: TrainConfig) -> Self {
        Self { worker, evaluator, config }
    }

    /// Gate the step's `merged` patch against `current` (the step's network): `failing` are the
    /// step's failing examples (`current.failing` their runs), `validation` the validation set.
    /// With the per-layer gate, each component's record gets its own gate decision, pre-check and
    /// validation score.
    pub async fn check(
        &self,
        merged: &mut Merged,
        current: Standing,
        failing: &[&Example],
        validation: &[Example],
    ) -> Result<Verdict, TrainError> {
        let rejected = |reason: Reason, pre_check, val_candidate| Verdict {
            decision: Decision::rejected(reason),
            pre_check,
            val_candidate,
            accepted: None,
            kept: Vec::new(),
        };
        let applied = match &merged.patch {
            Err(reason) => return Ok(Verdict { kept: merged.ops.clone(), ..rejected(reason.clone(), None, None) }),
            Ok(applied) => applied.clone(),
        };
        if self.config.gate == GateMode::Merged {
            let gated = self.candidate(&applied.network, failing, &current, validation).await?;
            let accepted = gated.decision.is_accepted().then_some((applied, gated.next.val));
            return Ok(Verdict {
                decision: gated.decision,
                pre_check: gated.pre_check,
                val_candidate: gated.val,
                accepted,
                kept: merged.ops.clone(),
            });
        }
        let verdict = self.per_layer(merged, failing, current, validation).await?;
        Ok(match verdict.accepted {
            Some(_) => verdict,
            None => Verdict { kept: merged.ops.clone(), ..verdict },
        })
    }

    /// One candidate network: the pre-check on the step's failing examples (unless the gate is
    /// off), then the validation score and the acceptance rule.
    async fn candidate(
        &self,
        candidate: &Network,
        failing: &[&Example],
        current: &Standing,
        validation: &[Example],
    ) -> Result<Gated, TrainError> {
        let c = &self.config;
        let forward = c.forward_config();
        let no_gate = c.ablations.no_gate;
        let mut gated = Gated { decision: Decision::Accepted, pre_check: None, val: None, next: current.clone() };
        if !no_gate {
            let runs = evaluate(&self.worker, &self.evaluator, candidate, failing, &forward).await?;
            let (cur, cand) = (mean_score(&current.failing), mean_score(&runs));
            gated.pre_check = Some((cur, cand));
            if cand <= cur {
                gated.decision = Decision::rejected(Reason::NoBatchGain);
                return Ok(gated);
            }
            gated.next.failing = runs;
        }
        let val = score(&self.worker, &self.evaluator, candidate, validation, &forward).await?;
        gated.val = Some(val);
        if !no_gate && !c.acceptance.accepts(val, current.val, c.epsilon) {
            gated.decision = Decision::rejected(Reason::NoValidationGain);
            return Ok(gated);
        }
        gated.next.network = candidate.clone();
        gated.next.val = val;
        Ok(gated)
    }

    /// The per-layer gate: each merged patch on its own, in merge order, on top of those accepted.
    async fn per_layer(
        &self,
        merged: &mut Merged,
        failing: &[&Example],
        mut current: Standing,
        validation: &[Example],
    ) -> Result<Verdict, TrainError> {
        let c = &self.config;
        let net = current.network.clone();
        let mut kept: Vec<PatchOp> = Vec::new();
        let (mut pre_check, mut val_candidate, mut first_reason) = (None, None, None);
        for record in merged.components.iter_mut().filter(|r| r.status.is_merged()) {
            let candidate =
                match apply_patch(&current.network, &record.ops, (&record.scope).into(), &c.limits, &c.rules) {
                    Ok(applied) => applied.network,
                    Err(r) => {
                        first_reason.get_or_insert(r.reason());
                        record.gate = Some(Decision::rejected(r.reason()));
                        continue;
                    }
                };
            let gated = self.candidate(&candidate, failing, &current, validation).await?;
            record.pre_check = gated.pre_check;
            record.val_candidate = gated.val;
            pre_check = gated.pre_check.or(pre_check);
            val_candidate = gated.val.or(val_candidate);
            if let Decision::Rejected { reason } = &gated.decision {
                first_reason.get_or_insert(reason.clone());
            } else {
                kept.extend(record.ops.iter().cloned());
                current = gated.next;
            }
            record.gate = Some(gated.decision);
        }
        let rejected = |reason, val_candidate| Verdict {
            decision: Decision::rejected(reason),
            pre_check,
            val_candidate,
            accepted: None,
            kept: Vec::new(),
        };
        if kept.is_empty() {
            return Ok(rejected(first_reason.unwrap_or(Reason::Empty), val_candidate));
        }
        // Patches accepted one after the other apply together; should that ever fail, nothing is kept.
        match apply_patch(&net, &kept, PatchScope::Network, &c.limits, &c.rules) {
            Ok(applied) => Ok(Verdict {
                decision: Decision::Accepted,
                pre_check,
                val_candidate: Some(current.val),
                accepted: Some((applied, current.val)),
                kept,
            }),
            Err(r) => Ok(rejected(r.reason(), val_candidate)),
        }
    }
}
