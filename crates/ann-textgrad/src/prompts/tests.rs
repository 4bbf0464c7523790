//! Snapshot tests of every backward prompt.

use super::*;
use crate::gradient::{GlobalGradient, LayerBlame, StructuralSuggestion};
use crate::testing::{check_messages, sample_network, sample_traces};

fn views(traces: &[LayerTrace]) -> Vec<ExampleView<'_>> {
    vec![
        ExampleView {
            id: "ex-1",
            input: "What is 2+3?",
            output: "The answer is 6.",
            score: 0.0,
            passed: false,
            feedback: "no \\boxed{} answer found",
            critique: "the final line lacks \\boxed{}",
            requirement: "end with \\boxed{<number>}",
            layers: traces,
        },
        ExampleView {
            id: "ex-2",
            input: "What is 1+1?",
            output: "\\boxed{2}",
            score: 1.0,
            passed: true,
            feedback: "correct",
            critique: "boxed and right",
            requirement: "keep the boxed final line",
            layers: traces,
        },
    ]
}

fn gradient() -> GlobalGradient {
    GlobalGradient {
        diagnosis: "the verifier drops the box".into(),
        layers: vec![LayerBlame {
            layer: "verify".into(),
            blame: 0.9,
            issue: "drops \\boxed{}".into(),
            direction: "always box".into(),
        }],
        structural: vec![StructuralSuggestion { kind: "remove_layer".into(), why: "understand adds nothing".into() }],
        fallback: None,
    }
}

#[test]
fn language_loss_snapshot() {
    let example = LossInput {
        input: "What is 2+3?",
        output: "The answer is 6.",
        score: 0.0,
        passed: false,
        feedback: "extracted `6`, expected `5`",
        reference: Some("5"),
    };
    let msgs = language_loss(
        "Solve the maths problem. Give the final answer in \\boxed{}.",
        &example,
        &PromptLimits::default(),
    );
    insta::assert_snapshot!(check_messages(&msgs));
}

#[test]
fn global_gradient_snapshot() {
    let traces = sample_traces();
    let net = sample_network();
    let scores = vec![("ex-1".to_string(), 0.0), ("ex-2".to_string(), 1.0)];
    let msgs = global_gradient(
        &net,
        &views(&traces),
        &scores,
        Some("PAST ITERATIONS (oldest first):\n- step 1 ..."),
        &PromptLimits::default(),
    );
    insta::assert_snapshot!(check_messages(&msgs));
}

#[test]
fn local_gradient_snapshots() {
    let traces = sample_traces();
    let net = sample_network();
    let rules = ValidationRules::with_answer_format("\\boxed{}");
    let g = gradient();
    let first = LayerBrief {
        layer: &net.layers[2],
        position: (3, 3),
        diagnosis: &g.diagnosis,
        blame: Some(0.9),
        issue: "drops \\boxed{}",
        direction: "always box",
        downstream_requirement: None,
        momentum: None,
    };
    insta::assert_snapshot!(
        "fused",
        check_messages(&local_gradient_fused(&first, &views(&traces), &rules, 6, &PromptLimits::default()))
    );
    let chained = LayerBrief {
        layer: &net.layers[0],
        position: (1, 3),
        downstream_requirement: Some("a restatement that names the asked quantity"),
        momentum: Some("PAST ITERATIONS (oldest first):\n- step 1 [MOST RECENT] ..."),
        blame: None,
        ..first
    };
    insta::assert_snapshot!(
        "two_stage_gradient",
        check_messages(&local_gradient(&chained, &views(&traces), &PromptLimits::default()))
    );
    insta::assert_snapshot!(
        "two_stage_update",
        check_messages(&local_update(&net.layers[0], "be explicit", &rules, 6))
    );
    // The append form: the agents' prompts, the evaluator's distinct feedback, the gradient.
    let feedback =
        ["Wrong format: must start with Yes or No.", "Right answer.", "Wrong format: must start with Yes or No."];
    let append = local_append(&net.layers[0], "be explicit", &feedback, &PromptLimits::default());
    assert_eq!(append[1].content.matches("Wrong format").count(), 1, "each feedback once");
    insta::assert_snapshot!("append_update", check_messages(&append));
}

#[test]
fn tool_ops_appear_when_the_run_has_tools() {
    let net = sample_network();
    let with_tools = ValidationRules {
        tools: Some(vec!["calculator".into(), "python".into()]),
        ..ValidationRules::with_answer_format("\\boxed{}")
    };
    insta::assert_snapshot!(
        "tool_ops_update",
        check_messages(&local_update(&net.layers[1], "compute exactly", &with_tools, 6))
    );
    // Without tools (none registered, or rules that name none) the prompt offers no tool op.
    for rules in [ValidationRules { tools: Some(Vec::new()), ..with_tools.clone() }, ValidationRules::default()] {
        let text = check_messages(&local_update(&net.layers[1], "g", &rules, 6));
        assert!(!text.contains("grant_tool") && !text.contains("max_tool_steps"), "{text}");
    }
}

#[test]
fn structural_and_fix_snapshots() {
    let net = sample_network();
    let rules = ValidationRules::with_answer_format("\\boxed{}");
    insta::assert_snapshot!("structural", check_messages(&structural(&net, &gradient(), None, &rules, 6)));
    insta::assert_snapshot!("patch_fix", patch_fix("unknown_id", "layer `nope`"));
}

#[test]
fn every_optimiser_prompt_carries_the_no_copy_rule() {
    let traces = sample_traces();
    let net = sample_network();
    let rules = ValidationRules::default();
    let l = PromptLimits::default();
    let g = gradient();
    let brief = LayerBrief {
        layer: &net.layers[1],
        position: (2, 3),
        diagnosis: "d",
        blame: None,
        issue: "",
        direction: "",
        downstream_requirement: None,
        momentum: None,
    };
    let all = [
        language_loss(
            "t",
            &LossInput { input: "i", output: "o", score: 0.0, passed: false, feedback: "f", reference: None },
            &l,
        ),
        global_gradient(&net, &views(&traces), &[], None, &l),
        local_gradient_fused(&brief, &views(&traces), &rules, 6, &l),
        local_gradient(&brief, &views(&traces), &l),
        local_update(&net.layers[1], "g", &rules, 6),
        local_append(&net.layers[1], "g", &["f"], &l),
        structural(&net, &g, None, &rules, 6),
    ];
    for msgs in all {
        assert!(msgs[0].content.contains(NO_COPY_RULE));
    }
}

#[test]
fn long_prompts_are_shortened() {
    let mut net = sample_network();
    net.layers[0].agents[0].prompt =
        format!("{} {{input}}", (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" "));
    let short = shortened_network(&net, 3);
    assert_eq!(short["layers"][0]["agents"][0]["prompt"], "w0 w1 w2 [...] w98 w99 {input}");
}
