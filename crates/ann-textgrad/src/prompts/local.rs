//! The local gradient prompts: fused (gradient, requirement and patch in one call) and two-stage.

use std::fmt::Write;

use ann_graph::prompts::truncate_chars;
use ann_graph::{Layer, ValidationRules};
use ann_llm::Message;

use super::{ExampleView, PromptLimits, invariants, layer_ops_for, pretty, system, verdict};

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

/// Local gradient, fused form: `<gradient>`, `<requirement_for_previous>` and `<patch>`.
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
        layer_ops_for(&brief.layer.id, rules),
        invariants(rules, max_ops)
    );
    vec![system(LOCAL_SYSTEM), Message::user(u)]
}

/// Local gradient, two-stage form, first call (TextGrad's backward): a JSON object with `gradient`
/// and `requirement_for_previous` (asked in the schema of [`crate::local_text_format`]).
pub fn local_gradient(brief: &LayerBrief<'_>, examples: &[ExampleView<'_>], limits: &PromptLimits) -> Vec<Message> {
    let mut u = String::new();
    layer_section(&mut u, brief, examples, limits);
    u.push_str(
        "Answer with a JSON object of two short fields, in your own words: `gradient` says what this layer does wrong, as the feedback shows it, and concretely how to fix it (no full rewrite); `requirement_for_previous` says what this layer needs from its input, for the layer before it.",
    );
    vec![system(LOCAL_SYSTEM), Message::user(u)]
}

/// Local gradient, two-stage form, second call (TextGrad's update): the patch for a gradient, as
/// `{"patch": [ops]}` (asked in the schema of [`crate::patch::layer_patch_format`]).
pub fn local_update(layer: &Layer, gradient: &str, rules: &ValidationRules, max_ops: usize) -> Vec<Message> {
    let u = format!(
        "Layer `{}`:\n{}\n\nGradient (critique and directions for this layer):\n{}\n\nEdits you may make (JSON patch ops on this layer only):\n{}\n\nInvariants:\n{}\nApply the gradient with the smallest general edit. Answer with a JSON object {{\"patch\": [ops]}}; {{\"patch\": []}} when no edit is justified.",
        layer.id,
        pretty(layer),
        gradient.trim(),
        layer_ops_for(&layer.id, rules),
        invariants(rules, max_ops)
    );
    vec![system(LOCAL_SYSTEM), Message::user(u)]
}

/// Local gradient, append form, second call: one instruction to append to one agent's prompt, as
/// `{"agent": id, "instruction": text}` (asked in the schema of
/// [`crate::patch::append_instruction_format`]). It sees the agents' prompts, the gradient and the
/// evaluator's distinct feedback on the failing examples, which states what a reply must be.
pub fn local_append(layer: &Layer, gradient: &str, feedback: &[&str], limits: &PromptLimits) -> Vec<Message> {
    let mut u = format!("Layer `{}`: {}\n\nIts agents' prompts:\n", layer.id, layer.subtask.trim());
    for agent in &layer.agents {
        let _ = writeln!(u, "- agent `{}`: {:?}", agent.id, agent.prompt);
    }
    let _ = writeln!(u, "\nGradient (critique and directions for this layer): {}", gradient.trim());
    u.push_str("\nWhat the evaluator said about the failing replies:\n");
    let mut seen: Vec<&str> = Vec::new();
    for f in feedback.iter().map(|f| f.trim()).filter(|f| !f.is_empty()) {
        if !seen.contains(&f) {
            seen.push(f);
            let _ = writeln!(u, "- {}", truncate_chars(f, limits.output_chars));
        }
    }
    u.push_str(
        "\nWrite one short instruction, one sentence, to add at the end of one agent's prompt so that its replies do what the evaluator asks, for every input. Write it as a command to the agent, in the imperative, starting with a verb (as \"Use ...\" or \"Write ...\"), not as a statement about the answer. Answer with a JSON object {\"agent\": \"<agent id>\", \"instruction\": \"<the instruction>\"}.",
    );
    vec![system(LOCAL_SYSTEM), Message::user(u)]
}
