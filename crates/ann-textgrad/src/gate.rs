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

use std::collections::BTreeMap;

use ann_eval::{Evaluator, Example};
use ann_graph::{Network, RoutingStat};
use ann_llm::SharedModel;

use crate::TrainError;
use crate::config::{GateMode, TrainConfig};
use crate::decision::{ComponentScope, Decision, Reason};
use crate::evaluate::{ExampleRun, evaluate, mean_score};
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
    /// Every forward the gate ran, in order (for the traces and the routing record).
    pub runs: Vec<GateRuns>,
}

/// One set of forwards the gate ran on a candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRuns {
    /// Which: `precheck` or `validation`, after `L<layer>-` with the per-layer gate.
    pub label: String,
    pub runs: Vec<ExampleRun>,
}

/// What the gate measured of one candidate; `next` is the standing the step continues from.
struct Gated {
    decision: Decision,
    pre_check: Option<(f64, f64)>,
    val: Option<f64>,
    next: Standing,
    runs: Vec<GateRuns>,
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

    /// This gate with the routing statistics its forwards show (see
    /// [`ann_graph::ForwardConfig::routing_stats`]).
    pub fn with_routing_stats(&self, stats: BTreeMap<String, Vec<RoutingStat>>) -> Self {
        let mut gate = self.clone();
        gate.config.forward.routing_stats = stats;
        gate
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
        let applied = match &merged.patch {
            Err(reason) => {
                return Ok(Verdict {
                    decision: Decision::rejected(reason.clone()),
                    pre_check: None,
                    val_candidate: None,
                    accepted: None,
                    kept: merged.ops.clone(),
                    runs: Vec::new(),
                });
            }
            Ok(applied) => applied.clone(),
        };
        if self.config.gate == GateMode::Merged {
            let gated = self.candidate(&applied.network, failing, &current, validation, "").await?;
            let accepted = gated.decision.is_accepted().then_some((applied, gated.next.val));
            return Ok(Verdict {
                decision: gated.decision,
                pre_check: gated.pre_check,
                val_candidate: gated.val,
                accepted,
                kept: merged.ops.clone(),
                runs: gated.runs,
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
        label: &str,
    ) -> Result<Gated, TrainError> {
        let c = &self.config;
        let forward = c.forward_config();
        let no_gate = c.ablations.no_gate;
        let mut gated =
            Gated { decision: Decision::Accepted, pre_check: None, val: None, next: current.clone(), runs: Vec::new() };
        if !no_gate {
            let runs = evaluate(&self.worker, &self.evaluator, candidate, failing, &forward).await?;
            let (cur, cand) = (mean_score(&current.failing), mean_score(&runs));
            gated.pre_check = Some((cur, cand));
            gated.runs.push(GateRuns { label: format!("{label}precheck"), runs: runs.clone() });
            if cand <= cur {
                gated.decision = Decision::rejected(Reason::NoBatchGain);
                return Ok(gated);
            }
            gated.next.failing = runs;
        }
        let refs: Vec<&Example> = validation.iter().collect();
        let runs = evaluate(&self.worker, &self.evaluator, candidate, &refs, &forward).await?;
        let val = mean_score(&runs);
        gated.runs.push(GateRuns { label: format!("{label}validation"), runs });
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
        let mut runs = Vec::new();
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
            let label = match &record.scope {
                ComponentScope::Layer(layer) => format!("L{layer}-"),
                ComponentScope::Structure => "structure-".to_string(),
            };
            let gated = self.candidate(&candidate, failing, &current, validation, &label).await?;
            runs.extend(gated.runs);
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
        let rejected = |reason, val_candidate, runs| Verdict {
            decision: Decision::rejected(reason),
            pre_check,
            val_candidate,
            accepted: None,
            kept: Vec::new(),
            runs,
        };
        if kept.is_empty() {
            return Ok(rejected(first_reason.unwrap_or(Reason::Empty), val_candidate, runs));
        }
        // Patches accepted one after the other apply together; should that ever fail, nothing is kept.
        match apply_patch(&net, &kept, PatchScope::Network, &c.limits, &c.rules) {
            Ok(applied) => Ok(Verdict {
                decision: Decision::Accepted,
                pre_check,
                val_candidate: Some(current.val),
                accepted: Some((applied, current.val)),
                kept,
                runs,
            }),
            Err(r) => Ok(rejected(r.reason(), val_candidate, runs)),
        }
    }
}
