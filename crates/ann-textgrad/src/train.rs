//! The training loop: epochs of batches, each a step of the method, with its journal line and checkpoint.
//!
//! [`Trainer::train`] runs epochs of seeded shuffled batches. Per batch: [`evaluate`] (forward and
//! score); skip a perfect batch; else [`Optimizer::loss`] on the selected examples,
//! [`Optimizer::backward`] (global gradient, local gradients from the last blamed layer to the
//! first, the structure call when asked for, patch repairs), [`Optimizer::step`] (the merge and
//! the format gate) and [`Gate::check`] (the pre-check on the step's failing examples and the
//! validation gate); then momentum records the step. After every step a journal line and an
//! atomic checkpoint; a run directory with a checkpoint resumes where it stopped. An exhausted
//! budget stops the run (the last checkpoint stays resumable; a stop during the initial
//! validation leaves none, and training again in the directory begins anew). An infrastructure
//! failure stops it the same way, as an error ([`TrainError::InfrastructureFailure`]): the batch
//! it hit is not scored, and no journal line or checkpoint records it.

use std::sync::{Arc, Mutex};

use ann_eval::{Evaluator, Example};
use ann_graph::{ForwardConfig, Network, RoutingRecord};
use ann_llm::SharedModel;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::config::TrainConfig;
use crate::decision::{ComponentScope, ComponentStatus, Decision};
use crate::evaluate::{ExampleRun, evaluate, mean_score, score};
use crate::gate::{Gate, Standing};
use crate::gradient::GlobalGradient;
use crate::journal::{
    CHECKPOINT_FORMAT, Checkpoint, ComponentRecord, ExampleScore, JournalEvent, OptimizerState, RngState, RunFiles,
    StepRecord, StopReason, batch_traces_name,
};
use crate::loss::select_examples;
use crate::meter::{Cost, CountingModel, TrainCosts};
use crate::momentum::{Momentum, MomentumEntry, Scope};
use crate::optimizer::Optimizer;
use crate::patch::{PatchOp, summarize_ops};

/// The data of a training run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainData {
    /// The training examples (their references are shown to the language loss).
    pub train: Vec<Example>,
    /// The fixed validation set V of the gate.
    pub validation: Vec<Example>,
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
    /// Parts of `cost`: the starting network's validation, the optimiser's calls, the gate's forwards.
    pub costs: TrainCosts,
    pub stop: StopReason,
    /// What the run's forwards chose per layer and how they scored.
    pub routing: RoutingRecord,
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
            costs: state.costs,
            stop,
            routing: state.routing.clone(),
        }
    }
}

/// Runs training: the worker model answers the forward calls, the optimiser model the backward
/// ones; `evaluator` scores final outputs.
pub struct Trainer {
    worker: SharedModel,
    evaluator: Arc<dyn Evaluator>,
    optimizer: Optimizer,
    gate: Gate,
    config: TrainConfig,
    cost: Arc<Mutex<Cost>>,
    /// The optimiser's and the gate's share of `cost`, counted apart.
    optimizer_cost: Arc<Mutex<Cost>>,
    gate_cost: Arc<Mutex<Cost>>,
}

impl Trainer {
    pub fn new(
        worker: SharedModel,
        optimizer: SharedModel,
        evaluator: Arc<dyn Evaluator>,
        mut config: TrainConfig,
    ) -> Self {
        // Patches may grant only the tools the forward pass has (rules naming no tools: those).
        if config.rules.tools.is_none() {
            config.rules.tools = Some(config.forward.tools.as_ref().map(|t| t.names()).unwrap_or_default());
        }
        let cost = Arc::new(Mutex::new(Cost::default()));
        let (optimizer_cost, gate_cost) = (Arc::default(), Arc::default());
        let prices = &config.prices;
        let worker = CountingModel::wrap(worker, prices.clone(), cost.clone());
        let optimizer = CountingModel::wrap(optimizer, prices.clone(), Arc::clone(&optimizer_cost));
        let optimizer = CountingModel::wrap(optimizer, prices.clone(), cost.clone());
        let gate_worker = CountingModel::wrap(worker.clone(), prices.clone(), Arc::clone(&gate_cost));
        Self {
            optimizer: Optimizer::new(optimizer, config.clone()),
            gate: Gate::new(gate_worker, evaluator.clone(), config.clone()),
            worker,
            evaluator,
            config,
            cost,
            optimizer_cost,
            gate_cost,
        }
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn cost(&self) -> Cost {
        *self.cost.lock().expect("cost lock")
    }

    /// The optimiser's and the gate's counts so far.
    fn part_costs(&self) -> (Cost, Cost) {
        (*self.optimizer_cost.lock().expect("cost lock"), *self.gate_cost.lock().expect("cost lock"))
    }

    /// [`evaluate`] with the trainer's worker, evaluator and forward settings.
    pub async fn evaluate(&self, net: &Network, examples: &[&Example]) -> Result<Vec<ExampleRun>, TrainError> {
        self.evaluate_with(net, examples, &self.config.forward_config()).await
    }

    async fn evaluate_with(
        &self,
        net: &Network,
        examples: &[&Example],
        forward: &ForwardConfig,
    ) -> Result<Vec<ExampleRun>, TrainError> {
        evaluate(&self.worker, &self.evaluator, net, examples, forward).await
    }

    /// Keep what a set of forwards showed: their traces in `traces/<name>.jsonl` (when traces
    /// are written) and their routing choices with the examples' scores in `routing` (an
    /// excluded example has no score and is left out).
    fn observe(
        &self,
        files: &RunFiles,
        name: &str,
        runs: &[ExampleRun],
        routing: &mut RoutingRecord,
    ) -> Result<(), TrainError> {
        for run in runs.iter().filter(|r| !r.excluded) {
            if let Some(trace) = &run.trace {
                routing.record(trace, run.evaluation.score);
            }
        }
        if self.config.write_traces {
            files.write_traces(name, runs, self.config.trace_examples)?;
        }
        Ok(())
    }

    /// Mean score of `net` on `examples`.
    pub async fn score(&self, net: &Network, examples: &[Example]) -> Result<f64, TrainError> {
        score(&self.worker, &self.evaluator, net, examples, &self.config.forward_config()).await
    }

    /// Train from `start` (or resume the run in `dir`), returning the best validated network.
    ///
    /// `dir` holds `checkpoint.json` and `journal.jsonl`. An exhausted budget is not an error: the
    /// outcome says [`StopReason::BudgetExhausted`] (or [`StopReason::Interrupted`], the user's
    /// Ctrl-C) and the run directory resumes where the last
    /// step ended. A stop during the initial validation, before the first checkpoint, leaves an
    /// empty journal and no checkpoint: training again in `dir` begins anew (behind a response
    /// cache, the calls already made are answered from it, so none is paid twice). A finished run
    /// directory returns its outcome again without any call. An infrastructure failure is
    /// [`TrainError::InfrastructureFailure`], with `dir` as the last step left it (resumable).
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
                files.verify_journal(cp.journal_bytes, cp.journal_lines)?;
                files.truncate_journal(cp.journal_bytes, cp.journal_lines)?;
                cp
            }
            None => match self.begin(start, data, &files).await {
                Ok(cp) => cp,
                // No checkpoint yet: the next `train` in `dir` begins anew.
                Err(e) => {
                    let Some(stop) = e.budget_stop() else { return Err(e) };
                    return Ok(TrainOutcome {
                        best: start.clone(),
                        val_best: 0.0,
                        val_initial: 0.0,
                        network: start.clone(),
                        optimizer: OptimizerState::default(),
                        cost: self.cost(),
                        costs: TrainCosts { initial_validation: self.cost(), ..TrainCosts::default() },
                        stop,
                        routing: RoutingRecord::default(),
                    });
                }
            },
        };
        loop {
            if let Some(stop) = &state.stopped {
                return Ok(TrainOutcome::of(&state, stop.clone()));
            }
            let mut next = state.clone();
            match self.advance(&mut next, data, &files).await {
                Ok(()) => state = next,
                Err(e) => match e.budget_stop() {
                    Some(stop) => return Ok(TrainOutcome::of(&state, stop)),
                    None => return Err(e),
                },
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
        files.truncate_journal(0, 0)?;
        let before = self.cost();
        let mut routing = RoutingRecord::default();
        let validation: Vec<&Example> = data.validation.iter().collect();
        let runs = self.evaluate_with(start, &validation, &self.config.forward_config()).await?;
        let val = mean_score(&runs);
        self.observe(files, "start-validation", &runs, &mut routing)?;
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
            costs: TrainCosts { initial_validation: cost, ..TrainCosts::default() },
            journal_bytes: 0,
            journal_lines: 0,
            stopped: None,
            routing,
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
        let (optimizer_before, gate_before) = self.part_costs();
        let event = self.step(state, &examples, &data.validation, (epoch, batch), files, before).await?;
        let cost = self.cost().since(&before);
        state.cost = state.cost.plus(&cost);
        let (optimizer_after, gate_after) = self.part_costs();
        state.costs.optimizer = state.costs.optimizer.plus(&optimizer_after.since(&optimizer_before));
        state.costs.gate = state.costs.gate.plus(&gate_after.since(&gate_before));
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
        let runs = self.evaluate_with(&net, batch, &self.config.forward_with(&state.routing)).await?;
        let traces = batch_traces_name(epoch, batch_index);
        self.observe(files, &traces, &runs, &mut state.routing)?;
        let scores: Vec<ExampleScore> = runs
            .iter()
            .map(|r| ExampleScore {
                id: r.id.clone(),
                score: r.evaluation.score,
                passed: r.evaluation.passed,
                excluded: r.excluded,
            })
            .collect();
        let selected = select_examples(&runs, &self.config.selection);
        if !selected.iter().any(|&i| runs[i].evaluation.score < 1.0) {
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
        let losses = self.optimizer.loss(&net, batch, &runs, &selected).await?;
        let momentum = (!self.config.ablations.no_momentum).then_some(&state.momentum);
        let proposal = self.optimizer.backward(&net, batch, &runs, &selected, losses, momentum).await?;
        let mut merged = self.optimizer.step(&net, &proposal);

        let val_before = state.val_current;
        let failing: Vec<usize> = selected.iter().copied().filter(|&i| runs[i].evaluation.score < 1.0).collect();
        let failing_examples: Vec<&Example> = failing.iter().map(|&i| batch[i]).collect();
        let current = Standing {
            network: net.clone(),
            val: state.val_current,
            failing: failing.iter().map(|&i| runs[i].clone()).collect(),
        };
        let gate = self.gate.with_routing_stats(self.config.forward_with(&state.routing).routing_stats);
        let verdict = gate.check(&mut merged, current, &failing_examples, validation).await?;
        for gated in &verdict.runs {
            self.observe(files, &format!("{traces}-s{step}-{}", gated.label), &gated.runs, &mut state.routing)?;
        }

        if !self.config.ablations.no_momentum {
            let values = (val_before, verdict.val_candidate);
            record_momentum(
                state,
                step,
                &proposal.global,
                &verdict.kept,
                &merged.components,
                &verdict.decision,
                values,
            );
        }
        let patch = match &verdict.accepted {
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
                merged.patch.ok().map(|a| a.rfc6902)
            }
        };
        Ok(JournalEvent::Step(Box::new(StepRecord {
            step,
            epoch,
            batch: batch_index,
            examples: scores,
            selected: proposal.examples,
            losses: proposal.losses,
            global: proposal.global,
            components: merged.components,
            patch,
            pre_check: verdict.pre_check,
            val_before,
            val_candidate: verdict.val_candidate,
            decision: verdict.decision,
            cost: self.cost().since(&before),
        })))
    }
}

/// One momentum entry for the global scope and one per layer that proposed a patch.
fn record_momentum(
    state: &mut Checkpoint,
    step: u64,
    global: &GlobalGradient,
    kept: &[PatchOp],
    records: &[ComponentRecord],
    decision: &Decision,
    (val_before, val_after): (f64, Option<f64>),
) {
    state.momentum.record(
        Scope::Global,
        MomentumEntry::new(
            step,
            &global.diagnosis,
            &summarize_ops(kept),
            decision.clone(),
            Some(val_before),
            val_after,
        ),
    );
    for r in records {
        let ComponentScope::Layer(layer) = &r.scope else { continue };
        let own = match (&r.status, &r.gate) {
            (ComponentStatus::Rejected(reason), _) => Decision::rejected(reason.clone()),
            (ComponentStatus::Merged, None) => decision.clone(),
            (ComponentStatus::Merged, Some(gate)) => gate.clone(),
        };
        let gradient = r.text.as_ref().map(|t| t.gradient.as_str()).unwrap_or("");
        state.momentum.record(
            Scope::Layer(layer),
            MomentumEntry::new(step, gradient, &summarize_ops(&r.ops), own, Some(val_before), val_after),
        );
    }
}
