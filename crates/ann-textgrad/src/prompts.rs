//! Every prompt of the backward phase, as pure functions of their inputs (design 7.4-7.6).
//!
//! Each optimiser prompt's system message carries [`NO_COPY_RULE`]: edits must generalise, never
//! carry an example's facts or answers into the network.

use std::fmt::Write;

use ann_graph::prompts::truncate_chars;
use ann_graph::{Layer, LayerTrace, Network, ValidationRules};
use ann_llm::Message;
use serde_json::{Value, json};

use crate::gradient::GlobalGradient;

/// The rule every optimiser prompt carries.
pub const NO_COPY_RULE: &str =
    "Do not copy example-specific facts or answers into prompts; edits must generalise to inputs you have not seen.";

/// How much of long texts the prompts show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    /// Example inputs and layer inputs, in characters.
    pub input_chars: usize,
    /// Each agent output and layer output, in characters.
    pub output_chars: usize,
    /// Words kept at each end of a prompt in the shortened network of the global gradient.
    pub prompt_words: usize,
}

impl Default for PromptLimits {
    fn default() -> Self {
        Self { input_chars: 1500, output_chars: 600, prompt_words: 40 }
    }
}

/// One example as the gradient prompts show it.
#[derive(Debug, Clone, Copy)]
pub struct ExampleView<'a> {
    pub id: &'a str,
    pub input: &'a str,
    pub output: &'a str,
    pub score: f64,
    pub passed: bool,
    pub feedback: &'a str,
    /// The language loss's critique and requirement.
    pub critique: &'a str,
    pub requirement: &'a str,
    pub layers: &'a [LayerTrace],
}

fn system(role: &str) -> Message {
    Message::system(format!("{role}\nRule: {NO_COPY_RULE}"))
}

fn verdict(score: f64, passed: bool) -> String {
    format!("score {score:.2}, {}", if passed { "passed" } else { "failed" })
}

/// What the language loss sees of one example.
#[derive(Debug, Clone, Copy)]
pub struct LossInput<'a> {
    pub input: &'a str,
    pub output: &'a str,
    pub score: f64,
    pub passed: bool,
    pub feedback: &'a str,
    /// The reference answer (training examples only).
    pub reference: Option<&'a str>,
}

/// Language loss (7.4): critique one final output and state what the last layer must produce.
pub fn language_loss(task_description: &str, example: &LossInput<'_>, limits: &PromptLimits) -> Vec<Message> {
    let LossInput { input, output, score, passed, feedback, reference } = *example;
    let mut u = String::new();
    let _ = write!(
        u,
        "Task description:\n{}\n\nExample input:\n{}\n\nFinal output of the system:\n{}\n\nEvaluation: {}. Feedback: {}\n",
        task_description.trim_end(),
        truncate_chars(input, limits.input_chars),
        truncate_chars(output, limits.input_chars),
        verdict(score, passed),
        feedback.trim()
    );
    if let Some(reference) = reference {
        let _ = write!(u, "\nReference answer (training example, for your diagnosis only):\n{}\n", reference.trim());
    }
    u.push_str(
        "\nAnswer with two tagged sections:\n<critique>what is wrong with the final output and why (if it passed: what made it right)</critique>\n<requirement>what the output of the system's last layer must look like to pass, stated so that it holds for any input of this task</requirement>",
    );
    vec![
        system(
            "You are the loss function of a multi-layer multi-agent LLM system: you explain, for one example, how its final output falls short.",
        ),
        Message::user(u),
    ]
}

/// The network with every agent prompt cut to its first and last `words` words.
pub fn shortened_network(net: &Network, words: usize) -> Value {
    let mut value = serde_json::to_value(net).expect("a Network always serializes");
    if let Some(layers) = value.get_mut("layers").and_then(Value::as_array_mut) {
        for layer in layers {
            if let Some(agents) = layer.get_mut("agents").and_then(Value::as_array_mut) {
                for agent in agents {
                    if let Some(prompt) = agent.get("prompt").and_then(Value::as_str) {
                        let short = shorten_words(prompt, words);
                        agent["prompt"] = json!(short);
                    }
                }
            }
        }
    }
    value
}

fn shorten_words(text: &str, words: usize) -> String {
    let all: Vec<&str> = text.split_whitespace().collect();
    if all.len() <= 2 * words {
        return text.to_string();
    }
    format!("{} [...] {}", all[..words].join(" "), all[all.len() - words..].join(" "))
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("JSON values always serialize")
}

fn trace_digest(out: &mut String, layers: &[LayerTrace], limits: &PromptLimits) {
    for layer in layers {
        let _ = writeln!(
            out,
            "  Layer `{}`: aggregator {} ({})",
            layer.layer,
            layer.routing.aggregator,
            layer.routing.reason.trim()
        );
        for (agent, text) in layer.agent_outputs() {
            let _ = writeln!(out, "    Agent `{agent}` said: {}", truncate_chars(text.trim(), limits.output_chars));
        }
        match &layer.error {
            Some(error) => {
                let _ = writeln!(out, "    The layer failed: {}", truncate_chars(error.trim(), limits.output_chars));
            }
            None => {
                let _ = writeln!(out, "    Layer output: {}", truncate_chars(layer.output.trim(), limits.output_chars));
            }
        }
    }
}

/// Global gradient (7.5): diagnosis, blame per layer and structural suggestions, as JSON.
pub fn global_gradient(
    net: &Network,
    examples: &[ExampleView<'_>],
    batch_scores: &[(String, f64)],
    momentum: Option<&str>,
    limits: &PromptLimits,
) -> Vec<Message> {
    let mut u = String::new();
    let _ = write!(
        u,
        "The system (network definition; long prompts shortened):\n{}\n\n",
        pretty(&shortened_network(net, limits.prompt_words))
    );
    let mean = if batch_scores.is_empty() {
        0.0
    } else {
        batch_scores.iter().map(|(_, s)| s).sum::<f64>() / batch_scores.len() as f64
    };
    let _ = write!(u, "Batch: mean score {mean:.2}; per example: ");
    let scores: Vec<String> = batch_scores.iter().map(|(id, s)| format!("{id} {s:.2}")).collect();
    let _ = write!(u, "{}\n\n", scores.join(", "));
    for (i, e) in examples.iter().enumerate() {
        let _ = write!(
            u,
            "Example {} (`{}`, {}):\n  Input: {}\n",
            i + 1,
            e.id,
            verdict(e.score, e.passed),
            truncate_chars(e.input.trim(), limits.input_chars)
        );
        trace_digest(&mut u, e.layers, limits);
        let _ = write!(
            u,
            "  Final output: {}\n  Feedback: {}\n  Critique: {}\n\n",
            truncate_chars(e.output.trim(), limits.output_chars),
            e.feedback.trim(),
            e.critique.trim()
        );
    }
    if let Some(momentum) = momentum {
        let _ = writeln!(u, "{momentum}");
    }
    let ids: Vec<&str> = net.layers.iter().map(|l| l.id.as_str()).collect();
    let _ = write!(
        u,
        "Which layers caused the failures, and how should each change? Blame is 0.0 (innocent) to 1.0 (the cause); give every layer ({}). Suggest a structural change (add_layer, remove_layer, reorder) only when the team's structure itself is the problem, else kind \"none\".\nAnswer with JSON only:\n{{\"diagnosis\": \"...\", \"layers\": [{{\"layer\": \"<id>\", \"blame\": 0.0, \"issue\": \"...\", \"direction\": \"...\"}}], \"structural\": [{{\"kind\": \"add_layer|remove_layer|reorder|none\", \"why\": \"...\"}}]}}",
        ids.join(", ")
    );
    vec![
        system(
            "You are the critic of a multi-layer multi-agent LLM system. You diagnose why it fails and which layers are to blame. You give diagnosis and directions only, never rewritten prompts.",
        ),
        Message::user(u),
    ]
}

/// The patch ops a local gradient may use on `layer`, with their JSON shapes.
pub fn layer_ops(layer: &str) -> String {
    format!(
        r#"{{"op":"set_prompt","layer":"{layer}","agent":"<agent id>","value":"<full new prompt>"}}
{{"op":"set_role","layer":"{layer}","agent":"<agent id>","value":"<one-sentence persona>"}}
{{"op":"add_agent","layer":"{layer}","agent":{{"id":"<new slug>","role":"...","prompt":"... {{input}} ...","temperature":0.0}}}}
{{"op":"remove_agent","layer":"{layer}","agent":"<agent id>"}}
{{"op":"set_aggregators","layer":"{layer}","value":["<aggregator>", "..."]}}
{{"op":"set_default_aggregator","layer":"{layer}","value":"<one of the layer's aggregators>"}}
{{"op":"set_routing_hint","layer":"{layer}","value":"<when to use which aggregator>"}}
{{"op":"set_layer_subtask","layer":"{layer}","value":"<what this layer must produce>"}}"#
    )
}

/// The invariants every patched network must keep.
pub fn invariants(rules: &ValidationRules, max_ops: usize) -> String {
    let mut s = format!(
        "- at most {max_ops} ops; ids are lowercase slugs; new ids must be unique\n- 1 to {} layers, 1 to {} agents per layer\n- every agent prompt keeps the placeholder {{input}} (it may use {{task}} and {{peer_outputs}}) and has at most {} characters\n- default_aggregator is one of the layer's aggregators; majority_vote, debate, llm_synthesis and select_best need at least 2 agents\n",
        rules.max_layers, rules.max_agents, rules.max_prompt_chars
    );
    if let Some(format) = &rules.answer_format {
        let _ = writeln!(s, "- the last layer's output_spec keeps the answer format `{format}`");
    }
    s
}

/// What a layer's prompt says about its place and the global gradient.
pub struct LayerBrief<'a> {
    pub layer: &'a Layer,
    /// 1-based position and the number of layers.
    pub position: (usize, usize),
    pub diagnosis: &'a str,
    pub blame: Option<f64>,
    pub issue: &'a str,
    pub direction: &'a str,
    /// The requirement of the layer after it, shared by all examples (none for the first visited
    /// layer, whose examples carry the loss's requirements).
    pub downstream_requirement: Option<&'a str>,
    pub momentum: Option<&'a str>,
}

fn layer_section(u: &mut String, brief: &LayerBrief<'_>, examples: &[ExampleView<'_>], limits: &PromptLimits) {
    let (pos, total) = brief.position;
    let feeds = if pos == total {
        "its output is the system's final output".to_string()
    } else {
        "its output is the next layer's input".to_string()
    };
    let _ = write!(u, "Layer `{}` (layer {pos} of {total}; {feeds}):\n{}\n\n", brief.layer.id, pretty(brief.layer));
    let _ = writeln!(u, "Overall diagnosis: {}", brief.diagnosis.trim());
    if let Some(blame) = brief.blame {
        let _ = writeln!(
            u,
            "This layer's blame: {blame:.2}. Issue: {}. Direction: {}",
            brief.issue.trim(),
            brief.direction.trim()
        );
    }
    if let Some(req) = brief.downstream_requirement {
        let _ = writeln!(u, "Requirement from the layer after this one: {}", req.trim());
    }
    u.push('\n');
    for (i, e) in examples.iter().enumerate() {
        let Some(trace) = e.layers.iter().find(|l| l.layer == brief.layer.id) else { continue };
        let _ = write!(
            u,
            "Example {} (`{}`, {}):\n  Input of this layer: {}\n  Aggregator: {} ({})\n",
            i + 1,
            e.id,
            verdict(e.score, e.passed),
            truncate_chars(trace.input.trim(), limits.input_chars),
            trace.routing.aggregator,
            trace.routing.reason.trim()
        );
        for (agent, text) in trace.agent_outputs() {
            let _ = writeln!(u, "  Agent `{agent}` said: {}", truncate_chars(text.trim(), limits.output_chars));
        }
        match &trace.error {
            Some(error) => {
                let _ = writeln!(u, "  This layer failed: {}", truncate_chars(error.trim(), limits.output_chars));
            }
            None => {
                let _ =
                    writeln!(u, "  Output of this layer: {}", truncate_chars(trace.output.trim(), limits.output_chars));
            }
        }
        let _ = writeln!(u, "  Final feedback: {}", e.feedback.trim());
        if brief.downstream_requirement.is_none() {
            let _ = writeln!(u, "  Requirement (from the loss): {}", e.requirement.trim());
        }
        u.push('\n');
    }
    if let Some(m) = brief.momentum {
        let _ = writeln!(u, "{m}");
    }
}

const LOCAL_SYSTEM: &str = "You are the optimiser of one layer of a multi-layer multi-agent LLM system. You turn feedback into a critique of the layer and a small, general edit of its definition.";

/// Local gradient, fused form (7.6): `<gradient>`, `<requirement_for_previous>` and `<patch>`.
pub fn local_gradient_fused(
    brief: &LayerBrief<'_>,
    examples: &[ExampleView<'_>],
    rules: &ValidationRules,
    max_ops: usize,
    limits: &PromptLimits,
) -> Vec<Message> {
    let mut u = String::new();
    layer_section(&mut u, brief, examples, limits);
    let _ = write!(
        u,
        "Edits you may make (JSON patch ops on this layer only):\n{}\n\nInvariants:\n{}\nAnswer with three tagged sections:\n<gradient>what this layer does wrong and concrete directions to fix it (no full rewrite)</gradient>\n<requirement_for_previous>what this layer needs from its input, for the layer before it</requirement_for_previous>\n<patch>a JSON array of ops; [] when no edit is justified</patch>",
        layer_ops(&brief.layer.id),
        invariants(rules, max_ops)
    );
    vec![system(LOCAL_SYSTEM), Message::user(u)]
}

/// Local gradient, two-stage form, first call (TextGrad's backward): `<gradient>` and `<requirement_for_previous>`.
pub fn local_gradient(brief: &LayerBrief<'_>, examples: &[ExampleView<'_>], limits: &PromptLimits) -> Vec<Message> {
    let mut u = String::new();
    layer_section(&mut u, brief, examples, limits);
    u.push_str(
        "Answer with two tagged sections:\n<gradient>what this layer does wrong and concrete directions to fix it (no full rewrite)</gradient>\n<requirement_for_previous>what this layer needs from its input, for the layer before it</requirement_for_previous>",
    );
    vec![system(LOCAL_SYSTEM), Message::user(u)]
}

/// Local gradient, two-stage form, second call (TextGrad's update): the `<patch>` for a gradient.
pub fn local_update(layer: &Layer, gradient: &str, rules: &ValidationRules, max_ops: usize) -> Vec<Message> {
    let u = format!(
        "Layer `{}`:\n{}\n\nGradient (critique and directions for this layer):\n{}\n\nEdits you may make (JSON patch ops on this layer only):\n{}\n\nInvariants:\n{}\nApply the gradient with the smallest general edit. Answer with <patch>a JSON array of ops; [] when no edit is justified</patch>",
        layer.id,
        pretty(layer),
        gradient.trim(),
        layer_ops(&layer.id),
        invariants(rules, max_ops)
    );
    vec![system(LOCAL_SYSTEM), Message::user(u)]
}

/// The structure call (7.6): turn the global gradient's structural suggestions into a patch.
pub fn structural(
    net: &Network,
    gradient: &GlobalGradient,
    momentum: Option<&str>,
    rules: &ValidationRules,
    max_ops: usize,
) -> Vec<Message> {
    let mut u = format!(
        "The system (network definition):\n{}\n\nDiagnosis: {}\nStructural suggestions:\n",
        pretty(net),
        gradient.diagnosis.trim()
    );
    for s in &gradient.structural {
        let _ = writeln!(u, "- {}: {}", s.kind, s.why.trim());
    }
    if let Some(m) = momentum {
        let _ = write!(u, "\n{m}");
    }
    let _ = write!(
        u,
        "\nEdits you may make (at most one structural op; new layers are full layer definitions like the ones above):\n{{\"op\":\"add_layer\",\"after\":\"<layer id, or omit for the front>\",\"layer\":{{\"id\":\"...\",\"subtask\":\"...\",\"agents\":[...],\"aggregators\":[\"single\"],\"default_aggregator\":\"single\",\"routing_hint\":\"\",\"output_spec\":\"...\"}}}}\n{{\"op\":\"remove_layer\",\"layer\":\"<layer id>\"}}\n{{\"op\":\"move_layer\",\"layer\":\"<layer id>\",\"after\":\"<layer id, or omit for the front>\"}}\n\nInvariants:\n{}\nAnswer with <patch>a JSON array of ops; [] when no structural change is justified</patch>",
        invariants(rules, max_ops)
    );
    vec![
        system(
            "You are the architect of a multi-layer multi-agent LLM system. You change its structure only when the diagnosis demands it.",
        ),
        Message::user(u),
    ]
}

/// The follow-up that asks the model to fix a rejected patch.
pub fn patch_fix(reason: &str, detail: &str) -> String {
    format!(
        "That patch was rejected ({reason}): {detail}\nReply with a corrected <patch>JSON array of ops</patch>, or <patch>[]</patch> when no valid edit is justified."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::{LayerBlame, StructuralSuggestion};
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
            structural: vec![StructuralSuggestion {
                kind: "remove_layer".into(),
                why: "understand adds nothing".into(),
            }],
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
}
