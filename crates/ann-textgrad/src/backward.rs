//! The backward pass: from the language losses to a [`Proposal`], the textual counterpart of
//! `loss.backward()`.
//!
//! The global gradient first (a diagnosis, each layer's blame, structural suggestions), then the
//! local gradients from the last blamed layer to the first, each seeing the requirement of the
//! layer after it, then the structure call when the global gradient asks for a structural change.
//! Each local gradient and the structure call propose a patch; a rejected patch goes back to the
//! model to fix ([`Optimizer::repair`]) right after it was proposed. Nothing is merged or applied
//! here: that is [`Optimizer::step`].
//!
//! ```no_run
//! # async fn demo(optimizer: ann_textgrad::Optimizer, net: ann_graph::Network,
//! #     batch: Vec<&ann_eval::Example>, runs: Vec<ann_textgrad::ExampleRun>) -> Result<(), ann_textgrad::TrainError> {
//! let selected = ann_textgrad::select_examples(&runs, &optimizer.config().selection);
//! let losses = optimizer.loss(&net, &batch, &runs, &selected).await?;
//! let proposal = optimizer.backward(&net, &batch, &runs, &selected, losses, None).await?;
//! println!("diagnosis: {}", proposal.global.diagnosis);
//! for candidate in &proposal.candidates {
//!     println!("{}: {} ops ({:?})", candidate.scope, candidate.ops.len(), candidate.check);
//! }
//! # Ok(()) }
//! ```

use ann_eval::Example;
use ann_graph::Network;
use ann_llm::ResponseFormat;
use serde_json::json;

use crate::TrainError;
use crate::config::LocalForm;
use crate::decision::ComponentScope;
use crate::evaluate::ExampleRun;
use crate::gradient::{GlobalGradient, LanguageLoss, LayerBlame, LocalText, parse_global_gradient, parse_local_text};
use crate::momentum::{Momentum, Scope};
use crate::optimizer::Optimizer;
use crate::patch::{PatchOp, Rejection, append_instruction_format, append_reply_to_patch, layer_patch_format};
use crate::prompts::{self, ExampleView, LayerBrief};

/// What the backward pass proposes: the gradients and one patch candidate per visited scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Ids of the examples the gradients were computed from (failures first).
    pub examples: Vec<String>,
    /// Their language losses, in the same order.
    pub losses: Vec<LanguageLoss>,
    pub global: GlobalGradient,
    /// In the order they were proposed: the local gradients from the last layer to the first,
    /// then the structure call.
    pub candidates: Vec<Candidate>,
}

/// One proposed patch (a local gradient's or the structure call's), after its repairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub scope: ComponentScope,
    /// Position of the layer in the network (the structure call comes last: `usize::MAX`).
    pub order: usize,
    /// The local gradient's text (absent for the structure call and a failed call).
    pub text: Option<LocalText>,
    /// What a local gradient was computed from: the layer's share of the global gradient...
    pub blame: Option<LayerBlame>,
    /// ... and the requirement of the layer after it (`None` for the last layer, which sees the
    /// losses' requirements).
    pub downstream_requirement: Option<String>,
    /// The typed ops of the last attempt.
    pub ops: Vec<PatchOp>,
    /// Model calls spent on this patch (1 + fix requests).
    pub attempts: u32,
    /// The format gate's verdict on the ops alone, against the step's network.
    pub check: Result<(), Rejection>,
    /// Why the call that should have proposed (or fixed) the patch failed.
    pub failure: Option<String>,
}

impl Candidate {
    /// A candidate whose call failed: no patch.
    pub(crate) fn failed(scope: ComponentScope, order: usize, why: String) -> Self {
        Self {
            scope,
            order,
            text: None,
            blame: None,
            downstream_requirement: None,
            ops: Vec::new(),
            attempts: 1,
            check: Ok(()),
            failure: Some(why),
        }
    }
}

impl Optimizer {
    /// The backward pass over one batch: `examples` and `runs` are the batch in order, `selected`
    /// the examples the losses were computed for ([`crate::select_examples`]), `losses` their
    /// language losses ([`Optimizer::loss`]), `momentum` the past iterations the prompts show
    /// (`None`: none). Failed or unparsable answers fall back (uniform blame; a candidate with
    /// its failure); only an exhausted budget is an error.
    pub async fn backward(
        &self,
        net: &Network,
        examples: &[&Example],
        runs: &[ExampleRun],
        selected: &[usize],
        losses: Vec<LanguageLoss>,
        momentum: Option<&Momentum>,
    ) -> Result<Proposal, TrainError> {
        let c = self.config();
        let views: Vec<ExampleView<'_>> = selected
            .iter()
            .zip(&losses)
            .map(|(&i, loss)| {
                let r = &runs[i];
                ExampleView {
                    id: &r.id,
                    input: &examples[i].input,
                    output: &r.output,
                    score: r.evaluation.score,
                    passed: r.evaluation.passed,
                    feedback: &r.evaluation.feedback,
                    critique: &loss.critique,
                    requirement: &loss.requirement,
                    layers: r.trace.as_ref().map(|t| t.layers.as_slice()).unwrap_or(&[]),
                }
            })
            .collect();
        let batch_scores: Vec<(String, f64)> =
            runs.iter().filter_map(|r| r.score().map(|s| (r.id.clone(), s))).collect();
        let global = self.global_gradient(net, &views, &batch_scores, &losses, momentum).await?;
        let mut candidates = self.local_gradients(net, &views, &global, momentum).await?;
        if c.structural && !c.ablations.no_global_gradient && global.wants_structure() {
            candidates.push(self.structure(net, &global, momentum).await?);
        }
        Ok(Proposal { examples: selected.iter().map(|&i| runs[i].id.clone()).collect(), losses, global, candidates })
    }

    async fn global_gradient(
        &self,
        net: &Network,
        views: &[ExampleView<'_>],
        batch_scores: &[(String, f64)],
        losses: &[LanguageLoss],
        momentum: Option<&Momentum>,
    ) -> Result<GlobalGradient, TrainError> {
        let c = self.config();
        if c.ablations.no_global_gradient {
            return Ok(GlobalGradient::uniform(net, losses, "ablation: no global gradient"));
        }
        let block = momentum.and_then(|m| m.render(Scope::Global));
        let messages = prompts::global_gradient(net, views, batch_scores, block.as_deref(), &c.prompt_limits);
        let mut request = self.request(messages, "global_gradient");
        request.response_format = global_gradient_format(net);
        Ok(match self.call(&request).await? {
            Ok(reply) => match parse_global_gradient(&reply, net) {
                Ok(g) => g,
                Err(why) => GlobalGradient::uniform(net, losses, &format!("unparsable: {why}")),
            },
            Err(why) => GlobalGradient::uniform(net, losses, &format!("call failed: {why}")),
        })
    }

    async fn local_gradients(
        &self,
        net: &Network,
        views: &[ExampleView<'_>],
        global: &GlobalGradient,
        momentum: Option<&Momentum>,
    ) -> Result<Vec<Candidate>, TrainError> {
        let c = self.config();
        let mut downstream: Option<String> = None;
        let mut out = Vec::new();
        for id in global.blamed_layers(net, c.blame_threshold, c.max_local_layers) {
            let order = net.layers.iter().position(|l| l.id == id).expect("blamed layers exist");
            let layer = &net.layers[order];
            let blame = global.blame_of(&id);
            let block = momentum.and_then(|m| m.render(Scope::Layer(&id)));
            let brief = LayerBrief {
                layer,
                position: (order + 1, net.layers.len()),
                diagnosis: &global.diagnosis,
                blame: blame.map(|b| b.blame),
                issue: blame.map(|b| b.issue.as_str()).unwrap_or(""),
                direction: blame.map(|b| b.direction.as_str()).unwrap_or(""),
                downstream_requirement: downstream.as_deref(),
                momentum: block.as_deref(),
            };
            let scope = ComponentScope::Layer(id.clone());
            let from = |candidate: Candidate, text: Option<LocalText>| Candidate {
                scope: scope.clone(),
                order,
                text,
                blame: blame.cloned(),
                downstream_requirement: downstream.clone(),
                ..candidate
            };
            let (first, patch_messages) = match c.local_form {
                LocalForm::Fused => {
                    let messages =
                        prompts::local_gradient_fused(&brief, views, &c.rules, c.limits.max_ops, &c.prompt_limits);
                    let reply = self.call(&self.request(messages.clone(), "local_gradient")).await?;
                    (reply, Some(messages))
                }
                LocalForm::TwoStage | LocalForm::Append => {
                    let messages = prompts::local_gradient(&brief, views, &c.prompt_limits);
                    let mut request = self.request(messages, "local_gradient");
                    request.response_format = local_text_format();
                    (self.call(&request).await?, None)
                }
            };
            let reply = match first {
                Ok(reply) => reply,
                Err(why) => {
                    out.push(from(Candidate::failed(scope.clone(), order, why), None));
                    continue;
                }
            };
            let text = parse_local_text(&reply);
            let candidate = match patch_messages {
                Some(messages) => self.repair(net, messages, reply, &scope, 1, &ResponseFormat::Text).await?,
                None if c.local_form == LocalForm::Append => {
                    let feedback: Vec<&str> = views.iter().filter(|v| !v.passed).map(|v| v.feedback).collect();
                    let messages = prompts::local_append(layer, &text.gradient, &feedback, &c.prompt_limits);
                    let mut request = self.request(messages.clone(), "local_update");
                    request.response_format = append_instruction_format(layer);
                    match self.call(&request).await? {
                        Ok(update) => {
                            // Its retries (if any) are asked for the patch the reply stands for.
                            let patch = append_reply_to_patch(layer, &update);
                            let format = layer_patch_format(layer, &c.rules, c.limits.max_ops);
                            self.repair(net, messages, patch, &scope, 1, &format).await?
                        }
                        Err(why) => Candidate::failed(scope.clone(), order, why),
                    }
                }
                None => {
                    let messages = prompts::local_update(layer, &text.gradient, &c.rules, c.limits.max_ops);
                    let format = layer_patch_format(layer, &c.rules, c.limits.max_ops);
                    let mut request = self.request(messages.clone(), "local_update");
                    request.response_format = format.clone();
                    match self.call(&request).await? {
                        Ok(update) => self.repair(net, messages, update, &scope, 1, &format).await?,
                        Err(why) => Candidate::failed(scope.clone(), order, why),
                    }
                }
            };
            let candidate = from(candidate, Some(text.clone()));
            if !text.requirement_for_previous.is_empty() {
                downstream = Some(text.requirement_for_previous);
            }
            out.push(candidate);
        }
        Ok(out)
    }

    async fn structure(
        &self,
        net: &Network,
        global: &GlobalGradient,
        momentum: Option<&Momentum>,
    ) -> Result<Candidate, TrainError> {
        let c = self.config();
        let block = momentum.and_then(|m| m.render(Scope::Global));
        let messages = prompts::structural(net, global, block.as_deref(), &c.rules, c.limits.max_ops);
        let scope = ComponentScope::Structure;
        Ok(match self.call(&self.request(messages.clone(), "structure")).await? {
            Ok(reply) => Candidate {
                order: usize::MAX,
                ..self.repair(net, messages, reply, &scope, 1, &ResponseFormat::Text).await?
            },
            Err(why) => Candidate::failed(scope, usize::MAX, why),
        })
    }
}

/// The JSON schema of the global gradient's answer, with the network's layer ids as an enum.
pub fn global_gradient_format(net: &Network) -> ResponseFormat {
    let ids: Vec<&str> = net.layers.iter().map(|l| l.id.as_str()).collect();
    ResponseFormat::JsonSchema {
        name: "global_gradient".into(),
        schema: json!({
            "type": "object",
            "properties": {
                "diagnosis": {"type": "string", "maxLength": 600},
                "layers": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "layer": {"type": "string", "enum": ids},
                        "blame": {"type": "number"},
                        "issue": {"type": "string", "maxLength": 300},
                        "direction": {"type": "string", "maxLength": 300}
                    },
                    "required": ["layer", "blame", "issue", "direction"],
                    "additionalProperties": false
                }},
                "structural": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["add_layer", "remove_layer", "reorder", "none"]},
                        "why": {"type": "string", "maxLength": 300}
                    },
                    "required": ["kind", "why"],
                    "additionalProperties": false
                }}
            },
            "required": ["diagnosis", "layers", "structural"],
            "additionalProperties": false
        }),
        strict: false,
    }
}

/// The JSON schema of the two-stage local gradient's answer: two short texts (the bounds keep a
/// small model from running on until its token limit cuts the object).
pub fn local_text_format() -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "local_gradient".into(),
        schema: json!({
            "type": "object",
            "properties": {
                "gradient": {"type": "string", "minLength": 1, "maxLength": 400},
                "requirement_for_previous": {"type": "string", "maxLength": 300}
            },
            "required": ["gradient", "requirement_for_previous"],
            "additionalProperties": false
        }),
        strict: false,
    }
}
