//! The prompts of team construction: the decomposition call and its retry.

use std::fmt::Write;

use ann_llm::Message;

use crate::{AggregatorName, LibraryNetwork, ValidationRules};

/// Team construction: ask for a whole network for the task, given a few example inputs and,
/// after training, a library of trained networks with their validation scores to build on.
pub fn decomposition(
    task_description: &str,
    examples: &[&str],
    library: &[LibraryNetwork],
    rules: &ValidationRules,
) -> Vec<Message> {
    let mut u = String::new();
    let _ = write!(
        u,
        "Design a team of LLM agents, organised in layers, that solves this task.\n\nTask description:\n{}\n\n",
        task_description.trim_end()
    );
    for (i, e) in examples.iter().enumerate() {
        let _ = write!(u, "Example input {}:\n{}\n\n", i + 1, e.trim_end());
    }
    if !library.is_empty() {
        u.push_str(&library_section(library));
    }
    u.push_str("Aggregators (how a layer combines its agents' answers):\n");
    for name in AggregatorName::ALL {
        let needs =
            if name.min_agents() > 1 { format!(" (needs {}+ agents)", name.min_agents()) } else { String::new() };
        let _ = writeln!(u, "- {name}{needs}: {}", name.description());
    }
    let _ = write!(
        u,
        r#"
Rules:
- 1 to {max_layers} layers, each a subtask whose output is the next layer's input; 1 to {max_agents} agents per layer.
- Ids are lowercase slugs ([a-z0-9_-]+), unique: layer ids in the network, agent ids in their layer.
- Every agent prompt contains {{input}} (the layer's input) and may contain {{task}} (the task with the example) and {{peer_outputs}} (other agents' answers); at most {max_prompt} characters.
- default_aggregator is one of the layer's aggregators.
"#,
        max_layers = rules.max_layers,
        max_agents = rules.max_agents,
        max_prompt = rules.max_prompt_chars,
    );
    if let Some(format) = &rules.answer_format {
        let _ = writeln!(u, "- The last layer's output_spec contains the answer format `{format}`.");
    }
    u.push_str(
        r#"
Reply with the network as JSON only, in this shape:
{"version": 1, "task_description": "<the task description>", "layers": [{"id": "solve", "subtask": "...", "agents": [{"id": "a1", "role": "<one-sentence persona>", "prompt": "... {task} ... {input} ...", "temperature": 0.0}], "aggregators": ["single"], "default_aggregator": "single", "routing_hint": "", "output_spec": "..."}]}"#,
    );
    vec![
        Message::system(
            "You design multi-agent LLM systems: layered teams of agents with clear subtasks. You answer with JSON only.",
        ),
        Message::user(u),
    ]
}

/// The library of trained networks: each one's name, validation score and whole definition
/// (layers, teams, prompts), with how to build on them.
fn library_section(library: &[LibraryNetwork]) -> String {
    let mut s = String::from(
        "Library of trained networks (each was trained on its own task; its validation score is the trained \
         network's mean score on held-out examples, from 0 to 1):\n\n",
    );
    for (i, entry) in library.iter().enumerate() {
        let score = entry.validation.map_or_else(|| "unknown".to_string(), |v| format!("{v:.3}"));
        let json = serde_json::to_string_pretty(&entry.network).unwrap_or_default();
        let _ = write!(s, "Library network {} `{}` (validation score {score}):\n{json}\n\n", i + 1, entry.name);
    }
    s.push_str(
        "Build on the library where it fits the new task: reuse a layer whole (keep its id), or adapt its \
         role and prompts to the new task (keep its id too); prefer layers of networks that scored well; leave \
         out what does not fit, and add new layers where the new task needs them.\n\n",
    );
    s
}

/// Team construction retry: show the model why its network was rejected.
pub fn decomposition_retry(errors: &[String]) -> String {
    let mut s = String::from("That network is invalid:\n");
    for e in errors {
        let _ = writeln!(s, "- {e}");
    }
    s.push_str("Reply with the corrected network as JSON only.");
    s
}
