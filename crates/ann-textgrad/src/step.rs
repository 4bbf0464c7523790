//! The optimiser's step: repairing a rejected patch with the model, and merging the proposed
//! patches into the step's one patch, the textual counterpart of `optimizer.step()`.
//!
//! [`Optimizer::repair`] sends a patch the format gate rejects back to the model with the reason,
//! at most `patch_retries` times ([`Optimizer::backward`] repairs each candidate as soon as it is
//! proposed). [`Optimizer::step`] merges the candidates in layer order, the structure call last,
//! each on top of those merged before it and within what is left of the step's limits, and
//! records what became of each. The merged patch is a candidate network; the validation gate
//! ([`crate::Gate`]) decides whether it is kept.
//!
//! ```no_run
//! # fn demo(optimizer: ann_textgrad::Optimizer, net: ann_graph::Network, proposal: ann_textgrad::Proposal) {
//! let merged = optimizer.step(&net, &proposal);
//! match &merged.patch {
//!     Ok(applied) => println!("candidate with {} ops: {:?}", merged.ops.len(), applied.rfc6902),
//!     Err(reason) => println!("nothing to gate: {reason}"),
//! }
//! for component in &merged.components {
//!     println!("{}: {}", component.scope, component.status);
//! }
//! # }
//! ```

use ann_graph::Network;
use ann_llm::{Message, ResponseFormat};

use crate::TrainError;
use crate::backward::{Candidate, Proposal};
use crate::decision::{ComponentScope, ComponentStatus, Reason};
use crate::journal::ComponentRecord;
use crate::optimizer::Optimizer;
use crate::patch::{AppliedPatch, PatchLimits, PatchOp, PatchScope, Rejection, apply_patch, parse_patch};
use crate::prompts;

/// The step's patch: the merged ops, the patch they make (or why there is none) and what became
/// of each candidate, in merge order.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub ops: Vec<PatchOp>,
    /// The merged patch applied to the step's network: the candidate the gate scores.
    pub patch: Result<AppliedPatch, Reason>,
    pub components: Vec<ComponentRecord>,
}

impl Optimizer {
    /// Parse and check a patch `reply` to `messages`; a rejected patch goes back to the model
    /// with the reason, at most `patch_retries` times (an empty patch is final). `attempts`: the
    /// calls already spent on it; `format`: the response format of the fix requests (the one the
    /// patch was asked in). Returns the candidate for `scope` (order 0, no text: the caller fills
    /// them in).
    pub async fn repair(
        &self,
        net: &Network,
        mut messages: Vec<Message>,
        mut reply: String,
        scope: &ComponentScope,
        mut attempts: u32,
        format: &ResponseFormat,
    ) -> Result<Candidate, TrainError> {
        let c = self.config();
        let candidate = |ops, attempts, check, failure| Candidate {
            ops,
            attempts,
            check,
            failure,
            ..Candidate::failed(scope.clone(), 0, String::new())
        };
        loop {
            let (ops, check) = match parse_patch(&reply) {
                Ok(ops) => {
                    let check = apply_patch(net, &ops, scope.into(), &c.limits, &c.rules).map(|_| ());
                    (ops, check)
                }
                Err(rejection) => (Vec::new(), Err(rejection)),
            };
            let retry = matches!(&check, Err(r) if *r != Rejection::Empty) && attempts <= c.patch_retries;
            if !retry {
                return Ok(candidate(ops, attempts, check, None));
            }
            let rejection = check.expect_err("retry only after a rejection");
            messages.push(Message::assistant(reply));
            messages.push(Message::user(prompts::patch_fix(&rejection.reason().as_str(), &rejection.to_string())));
            attempts += 1;
            let mut request = self.request(messages.clone(), "patch_fix");
            request.response_format = format.clone();
            match self.call(&request).await? {
                Ok(next) => reply = next,
                Err(why) => return Ok(candidate(ops, attempts, Err(rejection), Some(why))),
            }
        }
    }

    /// Merge the proposal's candidates in layer order (the structure call last) within the step's
    /// limits. A candidate that failed, was rejected, or breaks the network as the earlier ones
    /// left it is recorded with its reason and left out.
    pub fn step(&self, net: &Network, proposal: &Proposal) -> Merged {
        let c = self.config();
        let mut candidates: Vec<&Candidate> = proposal.candidates.iter().collect();
        candidates.sort_by_key(|comp| comp.order);
        let mut working = net.clone();
        let mut merged: Vec<PatchOp> = Vec::new();
        let mut records = Vec::new();
        let mut first_reason: Option<Reason> = None;
        for comp in candidates {
            let structural = merged.iter().filter(|o| o.is_structural()).count();
            let remaining = PatchLimits {
                max_ops: c.limits.max_ops.saturating_sub(merged.len()),
                max_structural: c.limits.max_structural.saturating_sub(structural),
            };
            let outcome: Result<AppliedPatch, (Reason, String)> = match (&comp.failure, &comp.check) {
                (Some(why), _) if comp.ops.is_empty() && comp.check.is_ok() => Err((Reason::CallFailed, why.clone())),
                (_, Err(r)) => Err((r.reason(), r.to_string())),
                _ => apply_patch(&working, &comp.ops, (&comp.scope).into(), &remaining, &c.rules).map_err(|r| {
                    let detail = format!("{r} (after the patches merged before it in this step)");
                    (r.reason(), detail)
                }),
            };
            let (status, detail) = match outcome {
                Ok(applied) => {
                    working = applied.network;
                    merged.extend(comp.ops.iter().cloned());
                    (ComponentStatus::Merged, String::new())
                }
                Err((reason, detail)) => {
                    first_reason.get_or_insert(reason.clone());
                    (ComponentStatus::Rejected(reason), detail)
                }
            };
            records.push(ComponentRecord {
                scope: comp.scope.clone(),
                text: comp.text.clone(),
                ops: comp.ops.clone(),
                attempts: comp.attempts,
                status,
                detail,
                gate: None,
                pre_check: None,
                val_candidate: None,
            });
        }
        if merged.is_empty() {
            return Merged { ops: merged, patch: Err(first_reason.unwrap_or(Reason::Empty)), components: records };
        }
        let patch = apply_patch(net, &merged, PatchScope::Network, &c.limits, &c.rules).map_err(|r| r.reason());
        Merged { ops: merged, patch, components: records }
    }
}
