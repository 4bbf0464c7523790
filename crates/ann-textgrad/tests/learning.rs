//! Training learns in a synthetic environment: the improving patch is kept, harmful and malformed
//! ones are rejected with their reasons, momentum carries a rejected edit into the next prompt,
//! ablations switch off what they name, and a run stopped by its budget resumes exactly.

mod common;

use std::sync::Arc;

use ann_graph::RoutingMode;
use ann_llm::{Budget, BudgetLimits, BudgetedModel, ChatRequest, PriceTable, SharedModel};
use ann_llm_cache::{CachedModel, ResponseCache};
use ann_test_support::ScriptedModel;
use ann_textgrad::{
    Ablations, ComponentScope, ComponentStatus, Decision, GateMode, JournalEvent, LocalForm, Reason, RunFiles,
    StepRecord, StopReason, TrainConfig, TrainOutcome, Trainer,
};
use common::{FIX, data, network, objective, scripted};

fn config() -> TrainConfig {
    TrainConfig { epochs: 2, batch_size: 2, seed: 7, ..TrainConfig::default() }
}

async fn train(
    worker: SharedModel,
    optimizer: SharedModel,
    config: TrainConfig,
    dir: &std::path::Path,
) -> TrainOutcome {
    Trainer::new(worker, optimizer, objective(), config).train(&network(), &data(), dir).await.expect("training runs")
}

fn journal(dir: &std::path::Path) -> Vec<JournalEvent> {
    RunFiles::new(dir).unwrap().read_journal().unwrap()
}

fn steps(events: &[JournalEvent]) -> Vec<&StepRecord> {
    events.iter().filter_map(|e| if let JournalEvent::Step(s) = e { Some(s.as_ref()) } else { None }).collect()
}

fn layer(id: &str) -> ComponentScope {
    ComponentScope::Layer(id.into())
}

fn answer_prompt(outcome: &TrainOutcome) -> &str {
    &outcome.best.layer("answer").unwrap().agents[0].prompt
}

fn is_local_answer(r: &ChatRequest) -> bool {
    r.messages[0].content.contains("optimiser of one layer") && r.messages[1].content.contains("Layer `answer`")
}

#[tokio::test]
async fn training_raises_the_validation_score_and_keeps_the_improving_patch() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Arc::new(scripted("worker"));
    let optimizer = Arc::new(scripted("optimizer"));
    let out = train(worker.clone(), optimizer.clone(), config(), dir.path()).await;

    assert_eq!(out.val_initial, 0.0);
    assert_eq!(out.val_best, 0.75, "three of four validation capitals become right");
    assert!(answer_prompt(&out).contains(FIX), "the improving instruction is kept: {}", answer_prompt(&out));
    assert!(!answer_prompt(&out).contains("ALWAYS SAY"), "the copied answer was never accepted");
    assert_eq!(out.network, out.best);
    assert_eq!(out.stop, StopReason::Completed);

    let events = journal(dir.path());
    assert!(matches!(events.first(), Some(JournalEvent::Start { val_initial, .. }) if *val_initial == 0.0));
    assert!(matches!(events.last(), Some(JournalEvent::End { stop: StopReason::Completed, .. })));
    let steps = steps(&events);
    let accepted: Vec<_> = steps.iter().filter(|s| s.decision == Decision::Accepted).collect();
    assert_eq!(accepted.len(), 1);
    let first = accepted[0];
    assert_eq!(first.val_before, 0.0);
    assert_eq!(first.val_candidate, Some(0.75));
    let patch = serde_json::to_value(first.patch.as_ref().expect("an accepted step has its patch")).unwrap();
    assert_eq!(patch[2]["op"], "replace");
    assert_eq!(patch[2]["path"], "/layers/1/agents/0/prompt");
    assert!(first.losses.iter().any(|l| l.critique.contains("lowercase")));
    insta::assert_json_snapshot!("first_accepted_step", first);
    assert_eq!(first.components.iter().find(|c| c.scope == "answer").unwrap().status, ComponentStatus::Merged);
    // The chain: the last layer saw the loss's requirement (the `read` layer has no blame: no call).
    assert!(first.components.iter().all(|c| c.scope == "answer"));
    assert_eq!(out.optimizer.accepted, 1);
    assert_eq!(out.optimizer.steps, out.optimizer.accepted + out.optimizer.rejected);
    assert!(out.cost.calls > 0 && out.cost.calls as usize == worker.calls() + optimizer.calls());
    // The batch's forward traces are in the run directory.
    let traces = std::fs::read_to_string(RunFiles::new(dir.path()).unwrap().traces_path(0, 0)).unwrap();
    assert!(traces.starts_with(r#"{"event":"example","#), "{traces}");
    assert_eq!(traces.lines().filter(|l| l.contains(r#""event":"forward""#)).count(), 2);
}

#[tokio::test]
async fn a_harmful_patch_is_rolled_back_by_the_validation_gate() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(Arc::new(scripted("worker")), Arc::new(scripted("optimizer")), config(), dir.path()).await;
    let events = journal(dir.path());
    let harmful: Vec<_> = steps(&events)
        .into_iter()
        .filter(|s| s.components.iter().any(|c| c.ops.iter().any(|o| o.summary() == "set_prompt answer/a1")))
        .filter(|s| s.decision != Decision::Accepted)
        .collect();
    assert!(!harmful.is_empty(), "the copy-the-answer patch was proposed");
    for step in harmful {
        // It wins on its own batch (Atlantis) but loses on validation.
        let (current, candidate) = step.pre_check.expect("the pre-check ran");
        assert!(candidate > current);
        assert_eq!(step.val_candidate, Some(0.0));
        assert_eq!(step.decision, Decision::rejected(Reason::NoValidationGain));
        assert_eq!(step.val_before, 0.75);
    }
    // Rollback: the current network is the last accepted one.
    assert_eq!(out.network, out.best);
    assert!(answer_prompt(&out).contains(FIX) && !answer_prompt(&out).contains("ALWAYS SAY"));
    assert_eq!(out.val_best, 0.75);
}

#[tokio::test]
async fn a_patch_without_batch_gain_is_rejected_before_validation() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Arc::new(scripted("worker"));
    let optimizer = Arc::new(scripted("optimizer").on(|r| {
        r.messages[0].content.contains("optimiser of one layer").then(|| {
            Ok(r#"<gradient>g</gradient><patch>[{"op":"set_routing_hint","layer":"answer","value":"prefer single"}]</patch>"#.into())
        })
    }));
    let cfg = TrainConfig { epochs: 1, ..config() };
    let out = train(worker, optimizer, cfg, dir.path()).await;
    let events = journal(dir.path());
    let steps = steps(&events);
    assert!(!steps.is_empty());
    for step in steps {
        assert_eq!(step.decision, Decision::rejected(Reason::NoBatchGain));
        assert_eq!(step.val_candidate, None, "validation is not spent on a patch without batch gain");
        let (current, candidate) = step.pre_check.unwrap();
        assert_eq!(current, candidate);
    }
    assert_eq!(out.best, network());
    assert_eq!(out.optimizer.accepted, 0);
}

#[tokio::test]
async fn malformed_patches_are_rejected_with_their_reasons() {
    // First an unknown layer id; asked to fix it, an unknown op.
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(
        scripted("optimizer")
            .on_contains("That patch was rejected", r#"<patch>[{"op": "explode", "layer": "answer"}]</patch>"#)
            .on(|r| {
                is_local_answer(r).then(|| {
                    Ok(r#"<gradient>g</gradient><patch>[{"op":"set_prompt","layer":"nope","agent":"a1","value":"{input}"}]</patch>"#.into())
                })
            }),
    );
    let cfg = TrainConfig { epochs: 1, batch_size: 4, ..config() };
    let out = train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    let events = journal(dir.path());
    let step = steps(&events)[0];
    let answer = step.components.iter().find(|c| c.scope == "answer").unwrap();
    assert_eq!((&answer.status, answer.attempts), (&ComponentStatus::Rejected(Reason::UnknownOp), 2));
    assert_eq!(step.decision, Decision::rejected(Reason::UnknownOp));
    assert!(step.patch.is_none());
    let fix = optimizer.requests().into_iter().find(|r| r.messages.len() == 4).expect("a fix request");
    assert!(fix.messages[3].content.contains("rejected (unknown_id)"), "{}", fix.messages[3].content);
    assert_eq!(out.best, network());

    // Without retries an unparsable patch is final at once.
    let dir = tempfile::tempdir().unwrap();
    let optimizer =
        Arc::new(scripted("optimizer").on(|r| is_local_answer(r).then(|| Ok("<patch>[{oops</patch>".into()))));
    let cfg = TrainConfig { epochs: 1, batch_size: 4, patch_retries: 0, ..config() };
    train(Arc::new(scripted("worker")), optimizer, cfg, dir.path()).await;
    let events = journal(dir.path());
    let answer = steps(&events)[0].components.iter().find(|c| c.scope == "answer").unwrap().clone();
    assert_eq!((&answer.status, answer.attempts), (&ComponentStatus::Rejected(Reason::Unparsable), 1));
}

#[tokio::test]
async fn momentum_shows_a_rejected_edit_to_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(scripted("optimizer"));
    let cfg = TrainConfig { epochs: 3, ..config() };
    train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    let events = journal(dir.path());
    let steps = steps(&events);
    let rejected = steps.iter().position(|s| s.decision != Decision::Accepted).expect("a rejected step");
    assert!(rejected + 1 < steps.len(), "a step follows the rejected one");
    // Local gradient prompts of the answer layer, one per step, in order.
    let prompts: Vec<String> =
        optimizer.requests().into_iter().filter(is_local_answer).map(|r| r.messages[1].content.clone()).collect();
    assert_eq!(prompts.len(), steps.len());
    assert!(!prompts[0].contains("PAST ITERATIONS"), "no history before the first step");
    let next = &prompts[rejected + 1];
    assert!(next.contains("PAST ITERATIONS"), "{next}");
    let line = next.lines().find(|l| l.contains(&format!("step {}", steps[rejected].step))).expect("the rejected step");
    assert!(line.contains("rejected (no_validation_gain)") && line.contains("set_prompt answer/a1"), "{line}");
    assert!(next.contains("Do not re-propose an edit that was rejected"));
    assert!(next.contains("[MOST RECENT]"));

    // The ablation: no history in any prompt.
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(scripted("optimizer"));
    let cfg = TrainConfig { ablations: Ablations { no_momentum: true, ..Ablations::default() }, ..config() };
    train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    assert!(optimizer.requests().iter().all(|r| r.messages.iter().all(|m| !m.content.contains("PAST ITERATIONS"))));
}

#[tokio::test]
async fn ablations_switch_off_what_they_name() {
    // No backward: no optimiser call, the start network is the result.
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(scripted("optimizer"));
    let cfg = TrainConfig { ablations: Ablations { no_backward: true, ..Ablations::default() }, ..config() };
    let out = train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    assert_eq!((optimizer.calls(), out.best == network(), journal(dir.path()).len()), (0, true, 2));

    // No global gradient: no critic call, uniform blame visits both layers, still learns.
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(scripted("optimizer"));
    let cfg = TrainConfig { ablations: Ablations { no_global_gradient: true, ..Ablations::default() }, ..config() };
    let out = train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    assert!(optimizer.requests().iter().all(|r| !r.messages[0].content.contains("critic of a multi-layer")));
    assert_eq!(out.val_best, 0.75);
    let events = journal(dir.path());
    let first = steps(&events)[0];
    let scopes: Vec<_> = first.components.iter().map(|c| (c.scope.clone(), c.status.clone())).collect();
    let empty = ComponentStatus::Rejected(Reason::Empty);
    assert_eq!(scopes, [(layer("read"), empty), (layer("answer"), ComponentStatus::Merged)]);
    assert_eq!(first.global.fallback.as_deref(), Some("ablation: no global gradient"));

    // No gate: the harmful patch is accepted, but the best validated network is kept.
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { ablations: Ablations { no_gate: true, ..Ablations::default() }, ..config() };
    let out = train(Arc::new(scripted("worker")), Arc::new(scripted("optimizer")), cfg, dir.path()).await;
    assert!(out.network.layer("answer").unwrap().agents[0].prompt.contains("ALWAYS SAY"));
    assert!(answer_prompt(&out).contains(FIX) && !answer_prompt(&out).contains("ALWAYS SAY"));
    assert_eq!(out.val_best, 0.75);

    // Routing: dynamic routing asks the worker for the `answer` layer; fixed routing never does.
    for (fixed, expect_routing) in [(false, true), (true, false)] {
        let dir = tempfile::tempdir().unwrap();
        let worker = Arc::new(scripted("worker"));
        let mut cfg = TrainConfig { epochs: 1, ..config() };
        cfg.ablations.fixed_routing = fixed;
        cfg.forward.routing = RoutingMode::Dynamic;
        train(worker.clone(), Arc::new(scripted("optimizer")), cfg, dir.path()).await;
        let routed = worker.requests().iter().any(|r| r.messages[0].content.contains("You route one layer"));
        assert_eq!(routed, expect_routing, "fixed routing = {fixed}");
    }
}

#[tokio::test]
async fn the_two_stage_form_learns_too() {
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(scripted("optimizer"));
    let cfg = TrainConfig { local_form: LocalForm::TwoStage, ..config() };
    let out = train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    assert!(answer_prompt(&out).contains(FIX));
    let updates = optimizer.requests().iter().filter(|r| r.messages[1].content.contains("Gradient (critique")).count();
    assert!(updates > 0, "the update call ran");
}

#[tokio::test]
async fn a_run_stopped_by_its_budget_resumes_exactly() {
    let whole = tempfile::tempdir().unwrap();
    let reference = train(Arc::new(scripted("worker")), Arc::new(scripted("optimizer")), config(), whole.path()).await;

    let dir = tempfile::tempdir().unwrap();
    let budget = Budget::new(BudgetLimits { max_calls: Some(5), ..BudgetLimits::default() }, PriceTable::empty());
    let limited: SharedModel = Arc::new(BudgetedModel::new(Arc::new(scripted("optimizer")), budget));
    let stopped = train(Arc::new(scripted("worker")), limited, config(), dir.path()).await;
    assert!(matches!(stopped.stop, StopReason::BudgetExhausted { .. }), "{:?}", stopped.stop);
    assert!(RunFiles::new(dir.path()).unwrap().load_checkpoint().unwrap().is_some());
    let partial = journal(dir.path());
    assert!(partial.len() > 1 && partial.len() < journal(whole.path()).len(), "stopped mid-run");

    let resumed = train(Arc::new(scripted("worker")), Arc::new(scripted("optimizer")), config(), dir.path()).await;
    assert_eq!(resumed, reference);
    assert_eq!(journal(dir.path()), journal(whole.path()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap(),
        std::fs::read_to_string(whole.path().join("journal.jsonl")).unwrap()
    );

    // A finished run answers again without a call.
    let idle = Arc::new(ScriptedModel::new("idle"));
    let again = train(idle.clone(), idle.clone(), config(), dir.path()).await;
    assert_eq!((again, idle.calls()), (reference, 0));
}

#[tokio::test]
async fn a_budget_stop_during_the_initial_validation_begins_anew_paying_no_call_twice() {
    // One scripted model answers as worker and optimiser, behind a response cache per run.
    let cached = |inner: SharedModel, dir: &std::path::Path| -> SharedModel {
        Arc::new(CachedModel::new(inner, ResponseCache::open(&dir.join("responses.sqlite")).unwrap()))
    };
    let whole = tempfile::tempdir().unwrap();
    let env = Arc::new(scripted("env"));
    let model = cached(env.clone(), whole.path());
    let run = whole.path().join("run");
    let reference = train(model.clone(), model, config(), &run).await;

    // Two calls: the run stops inside the initial validation (4 examples, 2 layers), before any
    // checkpoint or journal line.
    let dir = tempfile::tempdir().unwrap();
    let first = Arc::new(scripted("env"));
    let budget = Budget::new(BudgetLimits { max_calls: Some(2), ..BudgetLimits::default() }, PriceTable::empty());
    let limited = cached(Arc::new(BudgetedModel::new(first.clone(), budget)), dir.path());
    let stopped = train(limited.clone(), limited, config(), &dir.path().join("run")).await;
    assert!(matches!(stopped.stop, StopReason::BudgetExhausted { .. }), "{:?}", stopped.stop);
    let files = RunFiles::new(&dir.path().join("run")).unwrap();
    assert_eq!(files.load_checkpoint().unwrap(), None);
    assert!(files.read_journal().unwrap().is_empty());
    assert_eq!(first.calls(), 2);

    // Training again in the same directory begins anew; the two answers come from the cache.
    let second = Arc::new(scripted("env"));
    let model = cached(second.clone(), dir.path());
    let resumed = train(model.clone(), model, config(), &dir.path().join("run")).await;
    assert_eq!(resumed, reference);
    assert_eq!(journal(&dir.path().join("run")), journal(&run));
    assert_eq!(first.calls() + second.calls(), env.calls(), "no call reached the model twice");
}

#[tokio::test]
async fn a_structural_patch_is_merged_after_the_local_ones_and_drops_the_removed_layers_momentum() {
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(
        scripted("optimizer")
            .on(|r| {
                r.messages[0].content.contains("critic of a multi-layer").then(|| {
                    Ok(r#"{"diagnosis": "wrong case; the read layer adds nothing", "layers": [{"layer": "read", "blame": 0.5, "issue": "redundant", "direction": "drop it"}, {"layer": "answer", "blame": 0.9, "issue": "case", "direction": "uppercase"}], "structural": [{"kind": "remove_layer", "why": "read only restates"}]}"#.into())
                })
            })
            .on_contains("You are the architect", r#"<patch>[{"op": "remove_layer", "layer": "read"}]</patch>"#),
    );
    let cfg = TrainConfig { epochs: 1, batch_size: 4, ..config() };
    let out = train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    let events = journal(dir.path());
    let first = steps(&events)[0];
    let scopes: Vec<_> = first.components.iter().map(|c| (c.scope.clone(), c.status.clone())).collect();
    let (empty, merged) = (ComponentStatus::Rejected(Reason::Empty), ComponentStatus::Merged);
    assert_eq!(
        scopes,
        [(layer("read"), empty), (layer("answer"), merged.clone()), (ComponentScope::Structure, merged)]
    );
    assert_eq!(first.decision, Decision::Accepted);
    let ids: Vec<_> = out.best.layers.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["answer"]);
    assert!(answer_prompt(&out).contains(FIX));
    // The merged RFC 6902 patch edits layer 1's prompt, then removes layer 0.
    let patch = serde_json::to_value(first.patch.as_ref().unwrap()).unwrap();
    assert_eq!(patch[2]["path"], "/layers/1/agents/0/prompt");
    assert_eq!(patch[4], serde_json::json!({"op": "remove", "path": "/layers/0"}));
    let checkpoint = RunFiles::new(dir.path()).unwrap().load_checkpoint().unwrap().unwrap();
    assert_eq!(checkpoint.momentum.layers.keys().collect::<Vec<_>>(), ["answer"]);
    assert!(checkpoint.momentum.global.iter().any(|e| e.patch_summary.contains("remove_layer read")));
}

#[tokio::test]
async fn failed_and_unparsable_optimiser_answers_fall_back_and_the_requirement_chains() {
    // The loss calls fail (their prompts do not fit; an unreachable endpoint would stop the run)
    // and the critic answers prose: the step goes on with the feedback as the
    // critique and uniform blame, so both layers get a local gradient, last layer first.
    let dir = tempfile::tempdir().unwrap();
    let optimizer = Arc::new(
        scripted("optimizer")
            .on(|r| {
                r.messages[0]
                    .content
                    .contains("loss function")
                    .then_some(Err(ann_llm::LlmError::ContextOverflow { prompt_tokens: 9000, context: 8192 }))
            })
            .on(|r| {
                r.messages[0].content.contains("critic of a multi-layer").then(|| Ok("I think it is fine.".into()))
            }),
    );
    let cfg = TrainConfig { epochs: 1, batch_size: 4, ..config() };
    let out = train(Arc::new(scripted("worker")), optimizer.clone(), cfg, dir.path()).await;
    assert!(answer_prompt(&out).contains(FIX), "still learns from the feedback alone");
    let events = journal(dir.path());
    let first = steps(&events)[0];
    assert!(first.losses.iter().all(|l| l.fallback.as_deref().is_some_and(|f| f.starts_with("call failed"))));
    assert!(first.losses.iter().any(|l| l.critique.contains("uppercase letters")), "the feedback is the critique");
    assert!(first.global.fallback.as_deref().is_some_and(|f| f.starts_with("unparsable")));
    assert!(first.global.diagnosis.contains("[q-france]"));
    let order: Vec<_> = first.components.iter().map(|c| c.scope.as_str()).collect();
    assert_eq!(order, ["read", "answer"], "recorded in layer order");
    // The `read` layer was visited after `answer` and saw its requirement for the previous layer.
    let locals: Vec<ChatRequest> =
        optimizer.requests().into_iter().filter(|r| r.messages[0].content.contains("optimiser of one layer")).collect();
    assert!(locals[0].messages[1].content.contains("Layer `answer`"));
    assert!(locals[0].messages[1].content.contains("Requirement (from the loss)"));
    assert!(locals[1].messages[1].content.contains("Layer `read`"));
    assert!(
        locals[1].messages[1]
            .content
            .contains("Requirement from the layer after this one: The question with the country named.")
    );
}

#[tokio::test]
async fn a_failed_forward_keeps_its_calls_in_the_traces_and_the_backward_step() {
    // The worker's `answer` agent fails on Atlantis (its prompt does not fit: data, not an
    // infrastructure failure): that layer has no output.
    let dir = tempfile::tempdir().unwrap();
    let worker = Arc::new(scripted("worker").on(|r| {
        (r.messages[0].content.contains("of the team `answer`")
            && r.messages.iter().any(|m| m.content.contains("atlantis")))
        .then_some(Err(ann_llm::LlmError::ContextOverflow { prompt_tokens: 9000, context: 8192 }))
    }));
    let optimizer = Arc::new(scripted("optimizer"));
    let cfg = TrainConfig { epochs: 1, batch_size: 4, ..config() };
    train(worker, optimizer.clone(), cfg, dir.path()).await;

    // The batch's trace file holds the failed example's calls: the `read` layer, then the routing
    // call and the failed agent call of `answer`, whose layer line carries the error.
    let traces = std::fs::read_to_string(RunFiles::new(dir.path()).unwrap().traces_path(0, 0)).unwrap();
    let atlantis: Vec<serde_json::Value> = traces
        .lines()
        .skip_while(|l| !l.contains(r#""id":"q-atlantis""#))
        .skip(1)
        .take_while(|l| !l.contains(r#""event":"example""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<String> = atlantis
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "call" => format!("call {} {}", e["layer"], e["kind"]),
            "layer" => format!("layer {} error={}", e["layer"], e.get("error").is_some()),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        events,
        [
            "forward",
            r#"call "read" "agent""#,
            r#"layer "read" error=false"#,
            r#"call "answer" "routing""#,
            r#"call "answer" "agent""#,
            r#"layer "answer" error=true"#,
            "output",
        ]
    );
    let error = atlantis[5]["error"].as_str().unwrap();
    assert!(error.starts_with("layer `answer` produced no output: "), "{error}");
    assert_eq!((atlantis[6]["output"].as_str(), atlantis[6]["calls"].as_u64()), (Some(""), Some(3)));

    // The backward step sees the example and where it failed.
    let requests = optimizer.requests();
    let global = requests.iter().find(|r| r.messages[0].content.contains("critic of a multi-layer")).unwrap();
    let prompt = &global.messages[1].content;
    assert!(prompt.contains("(`q-atlantis`"), "{prompt}");
    assert!(prompt.contains("    The layer failed: layer `answer` produced no output: "), "{prompt}");
    let local = requests.iter().find(|r| is_local_answer(r)).unwrap();
    assert!(local.messages[1].content.contains("  This layer failed: layer `answer` produced no output: "));
}

#[tokio::test]
async fn the_per_layer_gate_credits_each_patch_on_its_own() {
    let optimizer = || {
        Arc::new(
            scripted("optimizer")
                .on(|r| {
                    r.messages[0].content.contains("critic of a multi-layer").then(|| {
                        Ok(r#"{"diagnosis": "d", "layers": [{"layer": "read", "blame": 0.5}, {"layer": "answer", "blame": 0.9}], "structural": []}"#.into())
                    })
                })
                .on(|r| {
                    (r.messages[0].content.contains("optimiser of one layer") && r.messages[1].content.contains("Layer `read`"))
                        .then(|| Ok(r#"<patch>[{"op": "set_routing_hint", "layer": "read", "value": "no effect"}]</patch>"#.into()))
                }),
        )
    };
    let hint = |out: &TrainOutcome| out.best.layer("read").unwrap().routing_hint.clone();

    // Merged: the neutral patch rides along with the improving one.
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { epochs: 1, batch_size: 4, ..config() };
    let merged = train(Arc::new(scripted("worker")), optimizer(), cfg.clone(), dir.path()).await;
    assert_eq!((hint(&merged).as_str(), merged.val_best), ("no effect", 0.75));

    // Per layer: the neutral patch has no batch gain and is dropped; the improving one is kept.
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { gate: GateMode::PerLayer, ..cfg };
    let per_layer = train(Arc::new(scripted("worker")), optimizer(), cfg, dir.path()).await;
    assert_eq!((hint(&per_layer).as_str(), per_layer.val_best), ("", 0.75));
    assert!(answer_prompt(&per_layer).contains(FIX));
    let events = journal(dir.path());
    let first = steps(&events)[0];
    let gates: Vec<_> = first.components.iter().map(|c| (c.scope.as_str(), c.gate.clone())).collect();
    assert_eq!(gates, [("read", Some(Decision::rejected(Reason::NoBatchGain))), ("answer", Some(Decision::Accepted))]);
    assert_eq!(first.decision, Decision::Accepted);
    let patch = serde_json::to_value(first.patch.as_ref().unwrap()).unwrap();
    assert_eq!(patch.as_array().unwrap().len(), 3, "only the accepted patch: {patch}");
    let checkpoint = RunFiles::new(dir.path()).unwrap().load_checkpoint().unwrap().unwrap();
    let read = checkpoint.momentum.layers["read"].back().unwrap();
    assert_eq!(read.outcome, Decision::rejected(Reason::NoBatchGain));
}
