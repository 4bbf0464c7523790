//! The global gradient prompt: diagnosis, blame per layer and structural suggestions, as JSON.

use std::fmt::Write;

use ann_graph::Network;
use ann_graph::prompts::truncate_chars;
use ann_llm::Message;

use super::{ExampleView, PromptLimits, pretty, shortened_network, system, trace_digest, verdict};

/// Global gradient: diagnosis, blame per layer and structural suggestions, as JSON.
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
