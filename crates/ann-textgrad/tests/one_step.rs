//! One step of the method driven by hand, without the trainer: evaluate → loss → backward → step
//! → gate, in the synthetic environment of scripted models (see `common`).

mod common;

use std::sync::Arc;

use ann_graph::ForwardConfig;
use ann_llm::SharedModel;
use ann_textgrad::{
    ComponentScope, ComponentStatus, Decision, Example, Gate, Optimizer, PatchOp, Reason, Standing, TrainConfig,
    evaluate, mean_score, score, select_examples,
};
use common::{FIX, data, network, objective, scripted};

#[tokio::test]
async fn one_step_by_hand_proposes_merges_and_gates_the_improving_patch() {
    let worker: SharedModel = Arc::new(scripted("worker"));
    let config = TrainConfig::default();
    let (net, data) = (network(), data());
    let evaluator = objective();
    let forward = ForwardConfig::default();

    // Evaluate: the worker answers in lowercase, so every known capital fails on case.
    let batch: Vec<&Example> = data.train[..2].iter().collect();
    let runs = evaluate(&worker, &evaluator, &net, &batch, &forward).await.unwrap();
    assert_eq!(mean_score(&runs), 0.0);
    assert!(runs[0].evaluation.feedback.contains("uppercase letters"), "{}", runs[0].evaluation.feedback);
    let val_before = score(&worker, &evaluator, &net, &data.validation, &forward).await.unwrap();
    assert_eq!(val_before, 0.0);

    // Loss: one language loss per selected example, each naming the case problem.
    let optimizer = Optimizer::new(Arc::new(scripted("optimizer")), config.clone());
    let selected = select_examples(&runs, &config.selection);
    assert_eq!(selected, [0, 1]);
    let losses = optimizer.loss(&net, &batch, &runs, &selected).await.unwrap();
    assert!(losses.iter().all(|l| l.critique.contains("lowercase") && l.fallback.is_none()));

    // Backward: the global gradient blames `answer`; its local gradient proposes the fix.
    let proposal = optimizer.backward(&net, &batch, &runs, &selected, losses.clone(), None).await.unwrap();
    assert_eq!(proposal.examples, ["q-france", "q-italy"]);
    assert_eq!(proposal.losses, losses);
    assert_eq!(proposal.global.blame_of("answer").map(|b| b.blame), Some(0.9));
    assert_eq!(proposal.candidates.len(), 1, "`read` has no blame: no local gradient");
    let candidate = &proposal.candidates[0];
    assert_eq!(candidate.scope, ComponentScope::Layer("answer".into()));
    assert_eq!((candidate.order, candidate.attempts, candidate.check.clone()), (1, 1, Ok(())));
    assert_eq!(candidate.blame.as_ref().map(|b| b.issue.as_str()), Some("wrong letter case"));
    assert_eq!(candidate.downstream_requirement, None, "the last layer sees the losses' requirements");
    assert!(candidate.text.as_ref().unwrap().gradient.contains("uppercase"));
    let fix = PatchOp::SetPrompt {
        layer: "answer".into(),
        agent: "a1".into(),
        value: format!("Answer the question: {{input}}\n{FIX}"),
    };
    assert_eq!(candidate.ops, std::slice::from_ref(&fix));

    // Step: the merged patch is the one candidate, applied to a valid network.
    let mut merged = optimizer.step(&net, &proposal);
    assert_eq!(merged.ops, [fix]);
    assert_eq!(merged.components[0].status, ComponentStatus::Merged);
    let candidate_net = &merged.patch.as_ref().expect("the patch applies").network;
    assert!(candidate_net.layer("answer").unwrap().agents[0].prompt.contains(FIX));

    // Gate: better on the failing examples and on validation: accepted.
    let gate = Gate::new(worker.clone(), evaluator.clone(), config.clone());
    let failing: Vec<&Example> = selected.iter().map(|&i| batch[i]).collect();
    let current = || Standing { network: net.clone(), val: val_before, failing: runs.clone() };
    let verdict = gate.check(&mut merged.clone(), current(), &failing, &data.validation).await.unwrap();
    assert_eq!(verdict.decision, Decision::Accepted);
    assert_eq!(verdict.pre_check, Some((0.0, 1.0)));
    assert_eq!(verdict.val_candidate, Some(0.75));
    let (accepted, val) = verdict.accepted.expect("the accepted patch");
    assert_eq!((&accepted.network, val), (candidate_net, 0.75));

    // The same candidate against a network already at 0.75 fails the acceptance rule...
    let high = Standing { val: 0.75, ..current() };
    let verdict = gate.check(&mut merged.clone(), high, &failing, &data.validation).await.unwrap();
    assert_eq!(verdict.decision, Decision::rejected(Reason::NoValidationGain));
    assert_eq!((verdict.val_candidate, verdict.accepted), (Some(0.75), None));
    // ... and against 0.7 it passes at ε = 0 but not with a margin ε = 0.1.
    let strict = Gate::new(worker.clone(), evaluator.clone(), TrainConfig { epsilon: 0.1, ..config.clone() });
    let lower = || Standing { val: 0.7, ..current() };
    let verdict = gate.check(&mut merged.clone(), lower(), &failing, &data.validation).await.unwrap();
    assert_eq!(verdict.decision, Decision::Accepted);
    let verdict = strict.check(&mut merged.clone(), lower(), &failing, &data.validation).await.unwrap();
    assert_eq!(verdict.decision, Decision::rejected(Reason::NoValidationGain));

    // A candidate no better on the failing examples is rejected before validation.
    let mut solved = runs.clone();
    solved.iter_mut().for_each(|r| r.evaluation.score = 1.0);
    let perfect = Standing { failing: solved, ..current() };
    let verdict = gate.check(&mut merged, perfect, &failing, &data.validation).await.unwrap();
    assert_eq!(verdict.decision, Decision::rejected(Reason::NoBatchGain));
    assert_eq!((verdict.pre_check, verdict.val_candidate), (Some((1.0, 1.0)), None));
}
