//! The structure call prompt: the global gradient's structural suggestions as a network patch.

use std::fmt::Write;

use ann_graph::{Network, ValidationRules};
use ann_llm::Message;

use crate::gradient::GlobalGradient;

use super::{invariants, pretty, system};

/// The structure call: turn the global gradient's structural suggestions into a patch.
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
