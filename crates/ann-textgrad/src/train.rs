//! The training loop (design 7.9-7.10): forward, loss, gradients, patch, validation gate, checkpoint.
//!
//! [`Trainer::train`] runs epochs of seeded shuffled batches. Per batch: forward and evaluate;
//! skip a perfect batch; else the language loss on the selected examples, the global gradient,
//! the local gradients from the last blamed layer to the first (each with the requirement of the
//! layer after it), the structure call when asked for, the merge of the patches, the format gate,
//! the pre-check on the step's failing examples and the validation gate. After every step a
//! journal line and an atomic checkpoint; a run directory with a checkpoint resumes where it
//! stopped. An exhausted budget stops the run (the last checkpoint stays resumable; a stop during
//! the initial validation leaves none, and training again in the directory begins anew).

use std::sync::{Arc, Mutex};

use ann_graph::{ForwardConfig, GraphError, Network, RoutingMode, Trace, ValidationRules, forward_batch};
use ann_llm::{ChatRequest, Message, PriceTable, ResponseFormat, SharedModel};
use futures::StreamExt;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::TrainError;
use crate::gradient::{
    GlobalGradient, LanguageLoss, LocalText, parse_global_gradient, parse_language_loss, parse_local_text,
};
use crate::journal::{
    CHECKPOINT_FORMAT, Checkpoint, ComponentRecord, Decision, ExampleScore, JournalEvent, OptimizerState, RngState,
    RunFiles, StepRecord, StopReason,
};
use crate::meter::{Cost, CountingModel};
use crate::momentum::{Momentum, MomentumEntry, Outcome, Scope};
use crate::objective::{Example, Objective, ObjectiveError, Score, TrainData};
use crate::patch::{
    AppliedPatch, PatchLimits, PatchOp, PatchScope, Rejection, apply_patch, parse_patch, summarize_ops,
};
use crate::prompts::{self, ExampleView, LayerBrief, LossInput, PromptLimits};

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

/// Whether a candidate with validation score `candidate` replaces a network scoring `current`.
pub fn accepts(acceptance: Acceptance, candidate: f64, current: f64) -> bool {
    match acceptance {
        Acceptance::Strict => candidate > current,
        Acceptance::NonDecreasing => candidate >= current,
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
}

/// How the validation gate treats the patches of one step (design 7.9).
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

/// Ablation switches (method section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

/// The optimiser's model settings (loss, gradients, patches).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerSettings {
    pub model: String,
    pub temperature: f32,
    pub max_tokens: Option<u32>,
    pub seed: Option<u64>,
}

impl Default for OptimizerSettings {
    fn default() -> Self {
        Self { model: "default".into(), temperature: 0.3, max_tokens: None, seed: None }
    }
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

/// Every setting of a training run (defaults of design 7.10).
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
    pub gate: GateMode,
    pub ablations: Ablations,
    /// The forward pass of the worker model.
    pub forward: ForwardConfig,
    pub optimizer: OptimizerSettings,
    pub prompt_limits: PromptLimits,
    /// Prices for the journal's dollar figures.
    pub prices: PriceTable,
    /// Write each batch's forward traces to `traces/` in the run directory.
    pub write_traces: bool,
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
            gate: GateMode::Merged,
            ablations: Ablations::default(),
            forward: ForwardConfig::default(),
            optimizer: OptimizerSettings::default(),
            prompt_limits: PromptLimits::default(),
            prices: PriceTable::default(),
            write_traces: true,
        }
    }
}

/// One example run through a network and scored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleRun {
    pub id: String,
    /// The final output (empty when the forward failed).
    pub output: String,
    pub score: Score,
    /// The forward trace; when the forward failed, its partial trace (the layers before the
    /// failed one, then the failed layer's calls and error: [`ann_graph::GraphError::trace`]).
    pub trace: Option<Trace>,
}

/// Mean score of runs (0 for none).
pub fn mean_score(runs: &[ExampleRun]) -> f64 {
    if runs.is_empty() {
        return 0.0;
    }
    runs.iter().map(|r| r.score.score).sum::<f64>() / runs.len() as f64
}

/// The examples a backward step uses (7.4): failures with a trace (a failed forward's partial trace
/// counts), lowest score first (ties in batch order), at most `max_failures`, then at most
/// `max_successes` successes. Indices into `runs`.
pub fn select_examples(runs: &[ExampleRun], selection: &Selection) -> Vec<usize> {
    let traced = |i: &usize| runs[*i].trace.is_some();
    let mut failures: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].score.score < 1.0).filter(traced).collect();
    failures.sort_by(|&a, &b| runs[a].score.score.total_cmp(&runs[b].score.score).then(a.cmp(&b)));
    failures.truncate(selection.max_failures);
    let successes =
        (0..runs.len()).filter(|&i| runs[i].score.score >= 1.0).filter(traced).take(selection.max_successes);
    failures.into_iter().chain(successes).collect()
}

/// The result of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// The best validated network (what is tested).
    pub best: Network,
    pub val_best: f64,
    pub val_initial: f64,
    /// The current network (differs from `best` only without the gate).
    pub network: Network,
    pub optimizer: OptimizerState,
    pub cost: Cost,
    pub stop: StopReason,
}

impl TrainOutcome {
    fn of(state: &Checkpoint, stop: StopReason) -> Self {
        Self {
            best: state.best.clone(),
            val_best: state.val_best,
            val_initial: state.val_initial,
            network: state.network.clone(),
            optimizer: state.optimizer,
            cost: state.cost,
            stop,
        }
    }
}

/// A network as the gate compares against: its validation score and its runs on the step's
/// failing examples.
#[derive(Clone)]
struct Gate {
    network: Network,
    val: f64,
    failing: Vec<ExampleRun>,
}

/// What the gate measured of one candidate; `next` is the network the step continues from.
struct Gated {
    accepted: bool,
    pre_check: Option<(f64, f64)>,
    val: Option<f64>,
    next: Gate,
}

/// A step's decision, pre-check, validation score and accepted patch with its score.
type StepGate = (Decision, Option<(f64, f64)>, Option<f64>, Option<(AppliedPatch, f64)>);

/// A patch proposed in one step, before merging.
struct Component {
    /// The layer id, or `structure`.
    scope: String,
    /// Position of the layer in the network (the structure call comes last).
    order: usize,
    text: Option<LocalText>,
    ops: Vec<PatchOp>,
    attempts: u32,
    check: Result<(), Rejection>,
    /// A failed call (the component has no patch).
    failure: Option<String>,
}

/// Runs training: the worker model answers the forward calls, the optimiser model the backward ones.
pub struct Trainer {
    worker: SharedModel,
    optimizer: SharedModel,
    objective: Arc<dyn Objective>,
    config: TrainConfig,
    cost: Arc<Mutex<Cost>>,
}

impl Trainer {
    pub fn new(
        worker: SharedModel,
        optimizer: SharedModel,
        objective: Arc<dyn Objective>,
        config: TrainConfig,
    ) -> Self {
        let cost = Arc::new(Mutex::new(Cost::default()));
        Self {
            worker: CountingModel::wrap(worker, config.prices.clone(), cost.clone()),
            optimizer: CountingModel::wrap(optimizer, config.prices.clone(), cost.clone()),
            objective,
            config,
            cost,
        }
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn cost(&self) -> Cost {
        *self.cost.lock().expect("cost lock")
    }

    fn forward_config(&self) -> ForwardConfig {
        let mut f = self.config.forward.clone();
        if self.config.ablations.fixed_routing {
            f.routing = RoutingMode::Fixed;
        }
        f
    }

    /// Forward every example through `net` and score it (in input order). A failed forward is a
    /// zero score with the error as feedback, and keeps its partial trace (the calls it made are
    /// written with the batch's traces and seen by the backward phase); an exhausted budget is an
    /// error.
    pub async fn evaluate(&self, net: &Network, examples: &[&Example]) -> Result<Vec<ExampleRun>, TrainError> {
        let inputs: Vec<String> = examples.iter().map(|e| e.input.clone()).collect();
        let for_votes = self.objective.clone();
        let extractor = move |s: &str| for_votes.extract_answer(s);
        let objective = self.objective.as_ref();
        let forward = self.forward_config();
        let results =
            forward_batch(&self.worker, net, &inputs, Some(&extractor), &forward).await.map_err(graph_error)?;
        let parallel = forward.max_parallel_inputs.max(1);
        let scored = futures::stream::iter(examples.iter().zip(results))
            .map(|(example, result)| async move {
                match result {
                    Ok(fr) => {
                        let mut score = objective.evaluate(example, &fr.output).await.map_err(objective_error)?;
                        // Scores outside 0..=1 (or NaN) would break the gate's comparisons.
                        score.score = if score.score.is_finite() { score.score.clamp(0.0, 1.0) } else { 0.0 };
                        Ok(ExampleRun { id: example.id.clone(), output: fr.output, score, trace: Some(fr.trace) })
                    }
                    Err(e) => {
                        if e.is_budget_exhausted() {
                            return Err(graph_error(e));
                        }
                        let score = Score::fail(format!("the network produced no output: {e}"));
                        Ok(ExampleRun { id: example.id.clone(), output: String::new(), score, trace: e.into_trace() })
                    }
                }
            })
            .buffered(parallel)
            .collect::<Vec<_>>()
            .await;
        scored.into_iter().collect()
    }

    /// Mean score of `net` on `examples`.
    pub async fn score(&self, net: &Network, examples: &[Example]) -> Result<f64, TrainError> {
        let refs: Vec<&Example> = examples.iter().collect();
        Ok(mean_score(&self.evaluate(net, &refs).await?))
    }

    /// Train from `start` (or resume the run in `dir`), returning the best validated network.
    ///
    /// `dir` holds `checkpoint.json` and `journal.jsonl`. An exhausted budget is not an error: the
    /// outcome says [`StopReason::BudgetExhausted`] and the run directory resumes where the last
    /// step ended. A stop during the initial validation, before the first checkpoint, leaves an
    /// empty journal and no checkpoint: training again in `dir` begins anew (behind a response
    /// cache, the calls already made are answered from it, so none is paid twice). A finished run
    /// directory returns its outcome again without any call.
    pub async fn train(
        &self,
        start: &Network,
        data: &TrainData,
        dir: &std::path::Path,
    ) -> Result<TrainOutcome, TrainError> {
        let files = RunFiles::new(dir)?;
        let mut state = match files.load_checkpoint()? {
            Some(cp) => {
                self.check_resume(&cp, data)?;
                files.truncate_journal(cp.journal_bytes)?;
                cp
            }
            None => match self.begin(start, data, &files).await {
                Ok(cp) => cp,
                // No checkpoint yet: the next `train` in `dir` begins anew.
                Err(TrainError::BudgetExhausted(detail)) => {
                    return Ok(TrainOutcome {
                        best: start.clone(),
                        val_best: 0.0,
                        val_initial: 0.0,
                        network: start.clone(),
                        optimizer: OptimizerState::default(),
                        cost: self.cost(),
                        stop: StopReason::BudgetExhausted { detail },
                    });
                }
                Err(e) => return Err(e),
            },
        };
        loop {
            if let Some(stop) = &state.stopped {
                return Ok(TrainOutcome::of(&state, stop.clone()));
            }
            let mut next = state.clone();
            match self.advance(&mut next, data, &files).await {
                Ok(()) => state = next,
                Err(TrainError::BudgetExhausted(detail)) => {
                    return Ok(TrainOutcome::of(&state, StopReason::BudgetExhausted { detail }));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn check_resume(&self, cp: &Checkpoint, data: &TrainData) -> Result<(), TrainError> {
        let ids = |v: &[Example]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        if cp.seed != self.config.seed {
            return Err(TrainError::ResumeMismatch(format!(
                "seed {} in the checkpoint, {} now",
                cp.seed, self.config.seed
            )));
        }
        if cp.train_ids != ids(&data.train) || cp.validation_ids != ids(&data.validation) {
            return Err(TrainError::ResumeMismatch(
                "the training or validation examples differ from the checkpoint's".into(),
            ));
        }
        Ok(())
    }

    /// Validate the start, score it on V, write the `start` line and the first checkpoint.
    async fn begin(&self, start: &Network, data: &TrainData, files: &RunFiles) -> Result<Checkpoint, TrainError> {
        start.validate(&self.config.rules).map_err(TrainError::InvalidNetwork)?;
        files.truncate_journal(0)?;
        let before = self.cost();
        let val = self.score(start, &data.validation).await?;
        let cost = self.cost().since(&before);
        let mut cp = Checkpoint {
            format: CHECKPOINT_FORMAT,
            seed: self.config.seed,
            train_ids: data.train.iter().map(|e| e.id.clone()).collect(),
            validation_ids: data.validation.iter().map(|e| e.id.clone()).collect(),
            epoch: 0,
            next_batch: 0,
            order: Vec::new(),
            rng: RngState { seed: self.config.seed, word_pos: 0 },
            network: start.clone(),
            val_current: val,
            best: start.clone(),
            val_best: val,
            val_initial: val,
            momentum: Momentum::new(self.config.momentum_window),
            optimizer: OptimizerState::default(),
            cost,
            journal_bytes: 0,
            journal_lines: 0,
            stopped: None,
        };
        let start_line =
            JournalEvent::Start { val_initial: val, train: data.train.len(), validation: data.validation.len(), cost };
        self.commit(&mut cp, files, &start_line)?;
        Ok(cp)
    }

    /// Append a journal line and checkpoint the state that includes it.
    fn commit(&self, state: &mut Checkpoint, files: &RunFiles, event: &JournalEvent) -> Result<(), TrainError> {
        state.journal_bytes = files.append(event)?;
        state.journal_lines += 1;
        files.save_checkpoint(state)
    }

    fn finish(&self, state: &mut Checkpoint, files: &RunFiles, stop: StopReason) -> Result<(), TrainError> {
        state.stopped = Some(stop.clone());
        let end = JournalEvent::End {
            stop,
            val_initial: state.val_initial,
            val_best: state.val_best,
            optimizer: state.optimizer,
            cost: state.cost,
        };
        self.commit(state, files, &end)
    }

    /// One move of the loop: a stop, an epoch boundary, or one batch.
    async fn advance(&self, state: &mut Checkpoint, data: &TrainData, files: &RunFiles) -> Result<(), TrainError> {
        let c = &self.config;
        if c.patience > 0 && state.optimizer.consecutive_rejections >= c.patience {
            return self.finish(state, files, StopReason::Patience);
        }
        if state.val_best >= c.target_val {
            return self.finish(state, files, StopReason::Target);
        }
        if c.ablations.no_backward || state.epoch >= c.epochs || data.train.is_empty() {
            return self.finish(state, files, StopReason::Completed);
        }
        if state.order.is_empty() {
            let mut rng = ChaCha8Rng::seed_from_u64(state.rng.seed);
            rng.set_word_pos(state.rng.word_pos);
            let mut order: Vec<usize> = (0..data.train.len()).collect();
            order.shuffle(&mut rng);
            state.order = order;
            state.rng.word_pos = rng.get_word_pos();
        }
        let size = c.batch_size.max(1);
        let batches = state.order.len().div_ceil(size);
        if state.next_batch >= batches {
            state.epoch += 1;
            state.next_batch = 0;
            state.order.clear();
            return Ok(());
        }
        let (epoch, batch) = (state.epoch, state.next_batch);
        let indices = &state.order[batch * size..((batch + 1) * size).min(state.order.len())];
        let examples: Vec<&Example> = indices.iter().map(|&i| &data.train[i]).collect();
        let before = self.cost();
        let event = self.step(state, &examples, &data.validation, (epoch, batch), files, before).await?;
        let cost = self.cost().since(&before);
        state.cost = state.cost.plus(&cost);
        state.next_batch += 1;
        self.commit(state, files, &event)
    }

    /// One batch: forward, and the backward step unless the batch is perfect.
    async fn step(
        &self,
        state: &mut Checkpoint,
        batch: &[&Example],
        validation: &[Example],
        (epoch, batch_index): (usize, usize),
        files: &RunFiles,
        before: Cost,
    ) -> Result<JournalEvent, TrainError> {
        let net = state.network.clone();
        let runs = self.evaluate(&net, batch).await?;
        if self.config.write_traces {
            files.write_traces(epoch, batch_index, &runs)?;
        }
        let scores: Vec<ExampleScore> = runs
            .iter()
            .map(|r| ExampleScore { id: r.id.clone(), score: r.score.score, passed: r.score.passed })
            .collect();
        let selected = select_examples(&runs, &self.config.selection);
        if !selected.iter().any(|&i| runs[i].score.score < 1.0) {
            state.optimizer.skipped += 1;
            return Ok(JournalEvent::Skip {
                epoch,
                batch: batch_index,
                examples: scores,
                cost: self.cost().since(&before),
            });
        }
        state.optimizer.steps += 1;
        let step = state.optimizer.steps;
        let losses = self.language_losses(&net, batch, &runs, &selected).await?;
        let views: Vec<ExampleView<'_>> = selected
            .iter()
            .zip(&losses)
            .map(|(&i, loss)| {
                let r = &runs[i];
                ExampleView {
                    id: &r.id,
                    input: &batch[i].input,
                    output: &r.output,
                    score: r.score.score,
                    passed: r.score.passed,
                    feedback: &r.score.feedback,
                    critique: &loss.critique,
                    requirement: &loss.requirement,
                    layers: r.trace.as_ref().map(|t| t.layers.as_slice()).unwrap_or(&[]),
                }
            })
            .collect();
        let batch_scores: Vec<(String, f64)> = runs.iter().map(|r| (r.id.clone(), r.score.score)).collect();
        let momentum = (!self.config.ablations.no_momentum).then_some(&state.momentum);
        let global = self.global_gradient(&net, &views, &batch_scores, &losses, momentum).await?;
        let mut components = self.local_gradients(&net, &views, &global, momentum).await?;
        if self.config.structural && !self.config.ablations.no_global_gradient && global.wants_structure() {
            components.push(self.structure(&net, &global, momentum).await?);
        }
        let (merged_ops, applied, records) = self.merge(&net, components);

        let val_before = state.val_current;
        let failing: Vec<usize> = selected.iter().copied().filter(|&i| runs[i].score.score < 1.0).collect();
        let failing_examples: Vec<&Example> = failing.iter().map(|&i| batch[i]).collect();
        let current = Gate {
            network: net.clone(),
            val: state.val_current,
            failing: failing.iter().map(|&i| runs[i].clone()).collect(),
        };
        let mut records = records;
        let (decision, pre_check, val_candidate, accepted) = match (&applied, self.config.gate) {
            (Err(reason), _) => (Decision::Rejected { reason: reason.clone() }, None, None, None),
            (Ok(applied), GateMode::Merged) => {
                let (decision, gated) = self.gate(&applied.network, &failing_examples, &current, validation).await?;
                let accepted = gated.accepted.then(|| (applied.clone(), gated.next.val));
                (decision, gated.pre_check, gated.val, accepted)
            }
            (Ok(_), GateMode::PerLayer) => {
                self.gate_per_layer(&net, &mut records, &failing_examples, current, validation).await?
            }
        };
        let kept_ops: Vec<PatchOp> = match &accepted {
            Some(_) if self.config.gate == GateMode::PerLayer => {
                records.iter().filter(|r| r.gate.as_deref() == Some("accepted")).flat_map(|r| r.ops.clone()).collect()
            }
            _ => merged_ops.clone(),
        };

        if !self.config.ablations.no_momentum {
            let values = (val_before, val_candidate);
            record_momentum(state, step, &global, &kept_ops, &records, &decision, values);
        }
        let patch = match &accepted {
            Some((applied, val)) => {
                state.network = applied.network.clone();
                state.val_current = *val;
                if *val >= state.val_best {
                    state.best = applied.network.clone();
                    state.val_best = *val;
                }
                state.momentum.retain_layers(&state.network);
                state.optimizer.accepted += 1;
                state.optimizer.consecutive_rejections = 0;
                Some(applied.rfc6902.clone())
            }
            None => {
                state.optimizer.rejected += 1;
                state.optimizer.consecutive_rejections += 1;
                applied.ok().map(|a| a.rfc6902)
            }
        };
        Ok(JournalEvent::Step(Box::new(StepRecord {
            step,
            epoch,
            batch: batch_index,
            examples: scores,
            selected: selected.iter().map(|&i| runs[i].id.clone()).collect(),
            losses,
            global,
            components: records,
            patch,
            pre_check,
            val_before,
            val_candidate,
            decision,
            cost: self.cost().since(&before),
        })))
    }

    /// The format-valid candidate through the gate: the pre-check on the step's failing examples
    /// (unless the gate is off), then the validation score and the acceptance rule.
    async fn gate(
        &self,
        candidate: &Network,
        failing: &[&Example],
        current: &Gate,
        validation: &[Example],
    ) -> Result<(Decision, Gated), TrainError> {
        let no_gate = self.config.ablations.no_gate;
        let mut gated = Gated { accepted: false, pre_check: None, val: None, next: current.clone() };
        if !no_gate {
            let runs = self.evaluate(candidate, failing).await?;
            let (cur, cand) = (mean_score(&current.failing), mean_score(&runs));
            gated.pre_check = Some((cur, cand));
            if cand <= cur {
                return Ok((Decision::Rejected { reason: "no_batch_gain".into() }, gated));
            }
            gated.next.failing = runs;
        }
        let val = self.score(candidate, validation).await?;
        gated.val = Some(val);
        if !no_gate && !accepts(self.config.acceptance, val, current.val) {
            return Ok((Decision::Rejected { reason: "no_validation_gain".into() }, gated));
        }
        gated.accepted = true;
        gated.next.network = candidate.clone();
        gated.next.val = val;
        Ok((Decision::Accepted, gated))
    }

    /// The per-layer gate: each merged patch on its own, in merge order, on top of those accepted.
    /// Returns the step's decision, the last pre-check and validation score measured, and the
    /// accepted patch (RFC 6902 from the step's network) with its validation score.
    async fn gate_per_layer(
        &self,
        net: &Network,
        records: &mut [ComponentRecord],
        failing: &[&Example],
        mut current: Gate,
        validation: &[Example],
    ) -> Result<StepGate, TrainError> {
        let c = &self.config;
        let mut kept: Vec<PatchOp> = Vec::new();
        let (mut pre_check, mut val_candidate, mut first_reason) = (None, None, None);
        for record in records.iter_mut().filter(|r| r.status == "merged") {
            let scope =
                if record.scope == "structure" { PatchScope::Network } else { PatchScope::Layer(&record.scope) };
            let candidate = match apply_patch(&current.network, &record.ops, scope, &c.limits, &c.rules) {
                Ok(applied) => applied.network,
                Err(r) => {
                    first_reason.get_or_insert(r.reason());
                    record.gate = Some(r.reason());
                    continue;
                }
            };
            let (decision, gated) = self.gate(&candidate, failing, &current, validation).await?;
            record.pre_check = gated.pre_check;
            record.val_candidate = gated.val;
            pre_check = gated.pre_check.or(pre_check);
            val_candidate = gated.val.or(val_candidate);
            match decision {
                Decision::Accepted => {
                    record.gate = Some("accepted".into());
                    kept.extend(record.ops.iter().cloned());
                    current = gated.next;
                }
                Decision::Rejected { reason } => {
                    first_reason.get_or_insert(reason.clone());
                    record.gate = Some(reason);
                }
            }
        }
        if kept.is_empty() {
            let reason = first_reason.unwrap_or_else(|| "empty".into());
            return Ok((Decision::Rejected { reason }, pre_check, val_candidate, None));
        }
        // Patches accepted one after the other apply together; should that ever fail, nothing is kept.
        match apply_patch(net, &kept, PatchScope::Network, &c.limits, &c.rules) {
            Ok(applied) => Ok((Decision::Accepted, pre_check, Some(current.val), Some((applied, current.val)))),
            Err(r) => Ok((Decision::Rejected { reason: r.reason() }, pre_check, val_candidate, None)),
        }
    }

    fn request(&self, messages: Vec<Message>, call: &str) -> ChatRequest {
        let o = &self.config.optimizer;
        let mut r = ChatRequest::new(o.model.clone(), messages)
            .with_temperature(o.temperature)
            .with_tag("phase", "backward")
            .with_tag("call", call);
        if let Some(m) = o.max_tokens {
            r = r.with_max_tokens(m);
        }
        if let Some(s) = o.seed {
            r = r.with_seed(s);
        }
        r
    }

    /// One optimiser call: the reply, or why it failed (an exhausted budget is an error).
    async fn call(&self, request: &ChatRequest) -> Result<Result<String, String>, TrainError> {
        match self.optimizer.complete(request).await {
            Ok(r) => Ok(Ok(r.text)),
            Err(e) => match e.budget_exhausted().map(str::to_owned) {
                Some(d) => Err(TrainError::BudgetExhausted(d)),
                None => Ok(Err(e.to_string())),
            },
        }
    }

    async fn language_losses(
        &self,
        net: &Network,
        batch: &[&Example],
        runs: &[ExampleRun],
        selected: &[usize],
    ) -> Result<Vec<LanguageLoss>, TrainError> {
        let calls = selected.iter().map(|&i| {
            let r = &runs[i];
            let input = LossInput {
                input: &batch[i].input,
                output: &r.output,
                score: r.score.score,
                passed: r.score.passed,
                feedback: &r.score.feedback,
                reference: batch[i].reference.as_deref(),
            };
            let request =
                self.request(prompts::language_loss(&net.task_description, &input, &self.config.prompt_limits), "loss");
            async move {
                Ok(match self.call(&request).await? {
                    Ok(reply) => parse_language_loss(&r.id, &reply),
                    Err(why) => LanguageLoss {
                        example: r.id.clone(),
                        critique: r.score.feedback.clone(),
                        requirement: String::new(),
                        fallback: Some(format!("call failed: {why}")),
                    },
                })
            }
        });
        futures::future::join_all(calls).await.into_iter().collect()
    }

    async fn global_gradient(
        &self,
        net: &Network,
        views: &[ExampleView<'_>],
        batch_scores: &[(String, f64)],
        losses: &[LanguageLoss],
        momentum: Option<&Momentum>,
    ) -> Result<GlobalGradient, TrainError> {
        if self.config.ablations.no_global_gradient {
            return Ok(GlobalGradient::uniform(net, losses, "ablation: no global gradient"));
        }
        let block = momentum.and_then(|m| m.render(Scope::Global));
        let messages = prompts::global_gradient(net, views, batch_scores, block.as_deref(), &self.config.prompt_limits);
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
    ) -> Result<Vec<Component>, TrainError> {
        let c = &self.config;
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
            let scope = PatchScope::Layer(&id);
            let (first, patch_messages) = match c.local_form {
                LocalForm::Fused => {
                    let messages =
                        prompts::local_gradient_fused(&brief, views, &c.rules, c.limits.max_ops, &c.prompt_limits);
                    let reply = self.call(&self.request(messages.clone(), "local_gradient")).await?;
                    (reply, Some(messages))
                }
                LocalForm::TwoStage => {
                    let messages = prompts::local_gradient(&brief, views, &c.prompt_limits);
                    (self.call(&self.request(messages, "local_gradient")).await?, None)
                }
            };
            let reply = match first {
                Ok(reply) => reply,
                Err(why) => {
                    out.push(Component::failed(id.clone(), order, None, why));
                    continue;
                }
            };
            let text = parse_local_text(&reply);
            if !text.requirement_for_previous.is_empty() {
                downstream = Some(text.requirement_for_previous.clone());
            }
            let component = match patch_messages {
                Some(messages) => self.patch_with_fixes(net, messages, reply, scope, 1).await?,
                None => {
                    let messages = prompts::local_update(layer, &text.gradient, &c.rules, c.limits.max_ops);
                    match self.call(&self.request(messages.clone(), "local_update")).await? {
                        Ok(update) => self.patch_with_fixes(net, messages, update, scope, 1).await?,
                        Err(why) => Component::failed(id.clone(), order, None, why),
                    }
                }
            };
            out.push(Component { scope: id.clone(), order, text: Some(text), ..component });
        }
        Ok(out)
    }

    async fn structure(
        &self,
        net: &Network,
        global: &GlobalGradient,
        momentum: Option<&Momentum>,
    ) -> Result<Component, TrainError> {
        let c = &self.config;
        let block = momentum.and_then(|m| m.render(Scope::Global));
        let messages = prompts::structural(net, global, block.as_deref(), &c.rules, c.limits.max_ops);
        Ok(match self.call(&self.request(messages.clone(), "structure")).await? {
            Ok(reply) => {
                let component = self.patch_with_fixes(net, messages, reply, PatchScope::Network, 1).await?;
                Component { scope: "structure".into(), order: usize::MAX, ..component }
            }
            Err(why) => Component::failed("structure".into(), usize::MAX, None, why),
        })
    }

    /// Parse and check a patch reply; a rejected patch goes back to the model with the reason,
    /// at most `patch_retries` times (an empty patch is final).
    async fn patch_with_fixes(
        &self,
        net: &Network,
        mut messages: Vec<Message>,
        mut reply: String,
        scope: PatchScope<'_>,
        mut attempts: u32,
    ) -> Result<Component, TrainError> {
        let c = &self.config;
        let component = |ops, attempts, check, failure| Component {
            scope: String::new(),
            order: 0,
            text: None,
            ops,
            attempts,
            check,
            failure,
        };
        loop {
            let (ops, check) = match parse_patch(&reply) {
                Ok(ops) => {
                    let check = apply_patch(net, &ops, scope, &c.limits, &c.rules).map(|_| ());
                    (ops, check)
                }
                Err(rejection) => (Vec::new(), Err(rejection)),
            };
            let retry = matches!(&check, Err(r) if *r != Rejection::Empty) && attempts <= c.patch_retries;
            if !retry {
                return Ok(component(ops, attempts, check, None));
            }
            let rejection = check.expect_err("retry only after a rejection");
            messages.push(Message::assistant(reply));
            messages.push(Message::user(prompts::patch_fix(&rejection.reason(), &rejection.to_string())));
            attempts += 1;
            match self.call(&self.request(messages.clone(), "patch_fix")).await? {
                Ok(next) => reply = next,
                Err(why) => return Ok(component(ops, attempts, Err(rejection), Some(why))),
            }
        }
    }

    /// Merge the components in layer order (the structure call last) within the step's limits.
    /// Returns the merged ops, the merged patch (or why there is none) and each component's record.
    fn merge(
        &self,
        net: &Network,
        mut components: Vec<Component>,
    ) -> (Vec<PatchOp>, Result<AppliedPatch, String>, Vec<ComponentRecord>) {
        let c = &self.config;
        components.sort_by_key(|comp| comp.order);
        let mut working = net.clone();
        let mut merged: Vec<PatchOp> = Vec::new();
        let mut records = Vec::new();
        let mut first_reason: Option<String> = None;
        for comp in components {
            let scope = if comp.scope == "structure" { PatchScope::Network } else { PatchScope::Layer(&comp.scope) };
            let structural = merged.iter().filter(|o| o.is_structural()).count();
            let remaining = PatchLimits {
                max_ops: c.limits.max_ops.saturating_sub(merged.len()),
                max_structural: c.limits.max_structural.saturating_sub(structural),
            };
            let outcome: Result<AppliedPatch, (String, String)> = match (&comp.failure, &comp.check) {
                (Some(why), _) if comp.ops.is_empty() && comp.check.is_ok() => Err(("call_failed".into(), why.clone())),
                (_, Err(r)) => Err((r.reason(), r.to_string())),
                _ => apply_patch(&working, &comp.ops, scope, &remaining, &c.rules).map_err(|r| {
                    let detail = format!("{r} (after the patches merged before it in this step)");
                    (r.reason(), detail)
                }),
            };
            let (status, detail) = match outcome {
                Ok(applied) => {
                    working = applied.network;
                    merged.extend(comp.ops.iter().cloned());
                    ("merged".to_string(), String::new())
                }
                Err((reason, detail)) => {
                    first_reason.get_or_insert(reason.clone());
                    (reason, detail)
                }
            };
            records.push(ComponentRecord {
                scope: comp.scope,
                text: comp.text,
                ops: comp.ops,
                attempts: comp.attempts,
                status,
                detail,
                gate: None,
                pre_check: None,
                val_candidate: None,
            });
        }
        if merged.is_empty() {
            return (merged, Err(first_reason.unwrap_or_else(|| "empty".into())), records);
        }
        let applied = apply_patch(net, &merged, PatchScope::Network, &c.limits, &c.rules).map_err(|r| r.reason());
        (merged, applied, records)
    }
}

impl Component {
    fn failed(scope: String, order: usize, text: Option<LocalText>, why: String) -> Self {
        Self { scope, order, text, ops: Vec::new(), attempts: 1, check: Ok(()), failure: Some(why) }
    }
}

/// One momentum entry for the global scope and one per layer that proposed a patch.
fn record_momentum(
    state: &mut Checkpoint,
    step: u64,
    global: &GlobalGradient,
    merged: &[PatchOp],
    records: &[ComponentRecord],
    decision: &Decision,
    (val_before, val_after): (f64, Option<f64>),
) {
    let outcome = match decision {
        Decision::Accepted => Outcome::Accepted,
        Decision::Rejected { reason } => Outcome::Rejected { reason: reason.clone() },
    };
    state.momentum.record(
        Scope::Global,
        MomentumEntry::new(
            step,
            &global.diagnosis,
            &summarize_ops(merged),
            outcome.clone(),
            Some(val_before),
            val_after,
        ),
    );
    for r in records.iter().filter(|r| r.scope != "structure") {
        let own = match (r.status.as_str(), r.gate.as_deref()) {
            ("merged", None) => outcome.clone(),
            ("merged", Some("accepted")) => Outcome::Accepted,
            ("merged", Some(reason)) => Outcome::Rejected { reason: reason.to_string() },
            (status, _) => Outcome::Rejected { reason: status.to_string() },
        };
        let gradient = r.text.as_ref().map(|t| t.gradient.as_str()).unwrap_or("");
        state.momentum.record(
            Scope::Layer(&r.scope),
            MomentumEntry::new(step, gradient, &summarize_ops(&r.ops), own, Some(val_before), val_after),
        );
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
                "diagnosis": {"type": "string"},
                "layers": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "layer": {"type": "string", "enum": ids},
                        "blame": {"type": "number"},
                        "issue": {"type": "string"},
                        "direction": {"type": "string"}
                    },
                    "required": ["layer", "blame", "issue", "direction"],
                    "additionalProperties": false
                }},
                "structural": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["add_layer", "remove_layer", "reorder", "none"]},
                        "why": {"type": "string"}
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

fn graph_error(e: GraphError) -> TrainError {
    match e {
        GraphError::BudgetExhausted { stage, source, .. } => TrainError::BudgetExhausted(format!(
            "{stage}: {}",
            source.budget_exhausted().map_or_else(|| source.to_string(), str::to_owned)
        )),
        other => TrainError::Graph(other),
    }
}

fn objective_error(e: ObjectiveError) -> TrainError {
    match e {
        ObjectiveError::Llm(llm) => match llm.budget_exhausted().map(str::to_owned) {
            Some(d) => TrainError::BudgetExhausted(d),
            None => TrainError::Objective(format!("evaluation call failed: {llm}")),
        },
        ObjectiveError::Other(why) => TrainError::Objective(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, score: f64, traced: bool) -> ExampleRun {
        let trace = Trace { task: String::new(), input: String::new(), layers: Vec::new(), output: String::new() };
        ExampleRun {
            id: id.into(),
            output: String::new(),
            score: Score { score, passed: score >= 1.0, feedback: String::new() },
            trace: traced.then_some(trace),
        }
    }

    #[test]
    fn selection_failures_first_lowest_first_capped_plus_one_success() {
        let runs = vec![
            run("ok1", 1.0, true),
            run("f05", 0.5, true),
            run("f00", 0.0, true),
            run("ok2", 1.0, true),
            run("f02", 0.2, true),
            run("f00b", 0.0, true),
            run("f09", 0.9, true),
            run("untraced", 0.0, false),
        ];
        let ids = |sel: Vec<usize>| sel.into_iter().map(|i| runs[i].id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(select_examples(&runs, &Selection::default())), ["f00", "f00b", "f02", "f05", "ok1"]);
        let none = Selection { max_failures: 1, max_successes: 0 };
        assert_eq!(ids(select_examples(&runs, &none)), ["f00"]);
        let perfect = vec![run("a", 1.0, true), run("b", 1.0, true)];
        assert!(select_examples(&perfect, &Selection::default()).iter().all(|&i| perfect[i].score.score >= 1.0));
    }

    #[test]
    fn acceptance_rules() {
        assert!(accepts(Acceptance::Strict, 0.6, 0.5));
        assert!(!accepts(Acceptance::Strict, 0.5, 0.5));
        assert!(accepts(Acceptance::NonDecreasing, 0.5, 0.5));
        assert!(!accepts(Acceptance::NonDecreasing, 0.4, 0.5));
    }
}
