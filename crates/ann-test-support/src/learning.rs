//! Replies on which training learns, for the fake server's `learn` mode: valid routing answers,
//! losses, gradients and patches, so that the validation gate runs and a step is accepted.
//!
//! The task is multiple choice whose right letter is `B` (the chaos campaign's synthetic MMLU
//! rows). A worker answers `A` unless its conversation holds [`FIX`] or a proposed `Answer: B`.
//! The optimiser blames the last layer and its local gradient adds [`FIX`] to that layer's first
//! agent's prompt, a step that raises the validation score and is accepted; a layer whose
//! definition already holds [`FIX`] gets an empty patch. Every reply is a pure function of the
//! request, so an interrupted and resumed run can be compared with an uninterrupted one.

use serde_json::Value;

/// The improving instruction the optimiser proposes.
pub const FIX: &str = "The second choice (B) is the right one.";

/// What a chat completion request is for, read from its system message (the prompts' wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallKind {
    /// A routing call (DynamicRoutingSelect).
    Routing,
    /// An agent of a team (forward phase).
    Agent,
    /// The loss of one example.
    Loss,
    /// The global gradient.
    GlobalGradient,
    /// A local gradient (and its patch).
    LocalGradient,
    /// Anything else (aggregator calls, structure, construction).
    Other,
}

impl CallKind {
    /// A short name for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Routing => "routing",
            CallKind::Agent => "agent",
            CallKind::Loss => "loss",
            CallKind::GlobalGradient => "global-gradient",
            CallKind::LocalGradient => "local-gradient",
            CallKind::Other => "other",
        }
    }
}

/// The `(role, content)` pairs of a request body's messages (missing fields read as empty).
pub fn messages(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
                    (text("role"), text("content"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the request is for.
pub fn call_kind(body: &Value) -> CallKind {
    let messages = messages(body);
    let system = messages.iter().find(|m| m.0 == "system").map(|m| m.1.as_str()).unwrap_or("");
    if system.contains("You route one layer") {
        CallKind::Routing
    } else if system.contains("of the team `") {
        CallKind::Agent
    } else if system.contains("loss function") {
        CallKind::Loss
    } else if system.contains("critic of a multi-layer") {
        CallKind::GlobalGradient
    } else if system.contains("optimiser of one layer") {
        CallKind::LocalGradient
    } else {
        CallKind::Other
    }
}

/// The first name between backticks after `marker` in `text`.
fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let start = rest.find('`')? + 1;
    let len = rest[start..].find('`')?;
    Some(&rest[start..start + len])
}

/// The layer ids a prompt names as "Layer `id`", in order of appearance, without repeats.
fn layer_ids(text: &str) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("Layer `") {
        rest = &rest[i + "Layer `".len()..];
        if let Some(end) = rest.find('`') {
            if !ids.contains(&&rest[..end]) {
                ids.push(&rest[..end]);
            }
            rest = &rest[end..];
        }
    }
    ids
}

/// The reply of the `learn` mode to a request body.
pub fn learning_reply(body: &Value) -> String {
    let messages = messages(body);
    let all: String = messages.iter().map(|m| m.1.as_str()).collect::<Vec<_>>().join("\n");
    let user = messages.iter().rev().find(|m| m.0 == "user").map(|m| m.1.as_str()).unwrap_or("");
    match call_kind(body) {
        CallKind::Routing => {
            // The first candidate the prompt lists after "one of: ".
            let candidate = user
                .find("<one of: ")
                .map(|i| &user[i + "<one of: ".len()..])
                .and_then(|rest| rest.split([',', '>']).next())
                .unwrap_or("single")
                .trim();
            format!(r#"{{"aggregator": "{candidate}", "reason": "the first candidate fits"}}"#)
        }
        CallKind::Agent | CallKind::Other => {
            if all.contains(FIX) || user.contains("Answer: B") {
                "The second choice is right.\nAnswer: B".into()
            } else {
                "The first choice looks right.\nAnswer: A".into()
            }
        }
        CallKind::Loss => "<critique>The final answer picks the wrong choice.</critique>\n\
             <requirement>The final answer must be the right choice.</requirement>"
            .into(),
        CallKind::GlobalGradient => {
            let ids = layer_ids(user);
            let last = ids.len().saturating_sub(1);
            let layers: Vec<String> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let blame = if i == last { 0.9 } else { 0.2 };
                    format!(
                        r#"{{"layer": "{id}", "blame": {blame}, "issue": "picks the wrong choice", "direction": "state which choice is right"}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"diagnosis": "the system picks the wrong choice", "layers": [{}], "structural": [{{"kind": "none", "why": ""}}]}}"#,
                layers.join(", ")
            )
        }
        CallKind::LocalGradient => {
            let layer = quoted_after(user, "Layer ").unwrap_or("");
            if layer.is_empty() || user.contains(FIX) {
                return "<gradient>This layer is fine.</gradient>\n<requirement_for_previous>The question.</requirement_for_previous>\n<patch>[]</patch>".into();
            }
            let agent = first_agent_id(user).unwrap_or("a1");
            let value = format!("{{input}}\\n\\n{FIX} End with a last line 'Answer: X' where X is A, B, C or D.");
            format!(
                "<gradient>The layer picks the wrong choice; its prompt must say which choice is right.</gradient>\n\
                 <requirement_for_previous>The question with its choices.</requirement_for_previous>\n\
                 <patch>[{{\"op\": \"set_prompt\", \"layer\": \"{layer}\", \"agent\": \"{agent}\", \"value\": \"{value}\"}}]</patch>"
            )
        }
    }
}

/// The first agent id of the layer definition a local-gradient prompt shows (`"id": "a1"` after
/// `"agents"`).
fn first_agent_id(user: &str) -> Option<&str> {
    let rest = &user[user.find("\"agents\"")?..];
    let rest = &rest[rest.find("\"id\"")? + "\"id\"".len()..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(&rest[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(system: &str, user: &str) -> Value {
        json!({"model": "m", "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]})
    }

    #[test]
    fn workers_answer_a_until_the_fix_is_in_their_prompt() {
        let plain = body("You are agent `a1` of the team `solve`.", "Question?\nA) x\nB) y");
        assert_eq!(call_kind(&plain), CallKind::Agent);
        assert!(learning_reply(&plain).ends_with("Answer: A"));
        let fixed = body("You are agent `a1` of the team `solve`.", &format!("Question?\n{FIX}"));
        assert!(learning_reply(&fixed).ends_with("Answer: B"));
    }

    #[test]
    fn the_global_gradient_blames_the_last_layer_most() {
        let b = body("You are the critic of a multi-layer system.", "Layer `solve`: ...\nLayer `verify`: ...\n");
        let reply: Value = serde_json::from_str(&learning_reply(&b)).unwrap();
        assert_eq!(reply["layers"][1]["layer"], "verify");
        assert_eq!(reply["layers"][1]["blame"], 0.9);
    }

    #[test]
    fn the_local_gradient_patches_the_layers_first_agent_once() {
        let user = "Layer `verify` (layer 2 of 2):\n{\"id\": \"verify\", \"agents\": [{\"id\": \"checker\"}]}";
        let reply = learning_reply(&body("You are the optimiser of one layer.", user));
        assert!(reply.contains(r#""layer": "verify", "agent": "checker""#), "{reply}");
        let done = format!("{user}\n{FIX}");
        assert!(learning_reply(&body("You are the optimiser of one layer.", &done)).contains("<patch>[]</patch>"));
    }

    #[test]
    fn routing_picks_the_first_listed_candidate() {
        let b = body("You route one layer of a multi-agent system.", "{\"aggregator\": \"<one of: debate, single>\"}");
        assert!(learning_reply(&b).contains(r#""aggregator": "debate""#));
    }
}
