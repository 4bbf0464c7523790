//! Every prompt of the backward phase, as pure functions of their inputs.
//!
//! Each optimiser prompt's system message carries [`NO_COPY_RULE`]: edits must generalise, never
//! carry an example's facts or answers into the network.

mod global;
mod local;
mod loss;
mod structure;
#[cfg(test)]
mod tests;

use std::fmt::Write;

use ann_graph::prompts::truncate_chars;
use ann_graph::{LayerTrace, Network, ValidationRules};
use ann_llm::Message;
use serde_json::{Value, json};

pub use global::global_gradient;
pub use local::{LayerBrief, local_append, local_gradient, local_gradient_fused, local_update};
pub use loss::{LossInput, language_loss};
pub use structure::structural;

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

pub(crate) fn system(role: &str) -> Message {
    Message::system(format!("{role}\nRule: {NO_COPY_RULE}"))
}

pub(crate) fn verdict(score: f64, passed: bool) -> String {
    format!("score {score:.2}, {}", if passed { "passed" } else { "failed" })
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

pub(crate) fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("JSON values always serialize")
}

pub(crate) fn trace_digest(out: &mut String, layers: &[LayerTrace], limits: &PromptLimits) {
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

/// [`layer_ops`], then [`tool_ops`] when the run has tools.
pub fn layer_ops_for(layer: &str, rules: &ValidationRules) -> String {
    format!("{}{}", layer_ops(layer), tool_ops(layer, rules))
}

/// The tool ops a local gradient may use on `layer` (each line after a newline), naming the run's
/// tools (`rules.tools`); empty when the run has none.
pub fn tool_ops(layer: &str, rules: &ValidationRules) -> String {
    let Some(tools) = rules.tools.as_ref().filter(|t| !t.is_empty()) else { return String::new() };
    format!(
        r#"
{{"op":"grant_tool","layer":"{layer}","agent":"<agent id>","tool":"<one of: {}>"}}
{{"op":"revoke_tool","layer":"{layer}","agent":"<agent id>","tool":"<a tool the agent has>"}}
{{"op":"set_tool_steps","layer":"{layer}","agent":"<agent id>","value":<tool-calling turns before it must answer, 1 to {}>}}"#,
        tools.join(", "),
        ann_graph::MAX_TOOL_STEPS
    )
}

/// The invariants every patched network must keep.
pub fn invariants(rules: &ValidationRules, max_ops: usize) -> String {
    let mut s = format!(
        "- at most {max_ops} ops; ids are lowercase slugs; new ids must be unique\n- 1 to {} layers, 1 to {} agents per layer\n- every agent prompt keeps the placeholder {{input}} (it may use {{task}} and {{peer_outputs}}) and has at most {} characters\n- default_aggregator is one of the layer's aggregators; majority_vote, debate, llm_synthesis and select_best need at least 2 agents\n",
        rules.max_layers, rules.max_agents, rules.max_prompt_chars
    );
    if let Some(tools) = rules.tools.as_ref().filter(|t| !t.is_empty()) {
        let _ = writeln!(
            s,
            "- agents may only use the tools {} (give one where computing beats reasoning: exact arithmetic, running code, reading data files); max_tool_steps is 1 to {}; tool_pipeline needs the python tool",
            tools.join(", "),
            ann_graph::MAX_TOOL_STEPS
        );
    }
    if let Some(format) = &rules.answer_format {
        let _ = writeln!(s, "- the last layer's output_spec keeps the answer format `{format}`");
    }
    s
}

/// The follow-up that asks the model to fix a rejected patch.
pub fn patch_fix(reason: &str, detail: &str) -> String {
    format!(
        "That patch was rejected ({reason}): {detail}\nReply with a corrected <patch>JSON array of ops</patch>, or <patch>[]</patch> when no valid edit is justified."
    )
}
