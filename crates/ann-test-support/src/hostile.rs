//! The fake server's hostile mode: replies a buggy or hostile provider could send, that a run must
//! survive without a panic, a hang or a silent score (huge, deeply nested, almost-JSON, unknown ids,
//! over the limits, empty or null content, missing choices, absurd usage, over the size cap).
//!
//! Replies about the *content* are chosen from a hash of the seed and the request body, so the same
//! request always gets the same reply (a resumed run sees what an uninterrupted one saw; two runs
//! give the same results). Replies a client retries (no choices, a body past the size cap) are drawn
//! from the seed and the request's index, so a retry can succeed.

use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::server::{ReshapeFn, Reshaped};

/// One hostile reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hostility {
    /// About 256 KiB of text (below the 1 MiB response cap).
    Huge,
    /// 50,000 nested brackets and parentheses.
    Nested,
    /// JSON cut short, in the places the parsers look (routing, gradients, patches).
    AlmostJson,
    /// Patches and blame naming layers and agents that do not exist.
    UnknownIds,
    /// Numbers and sizes past every limit: 5,000 patch ops, blame 1e308, an aggregator not offered.
    OverLimits,
    /// An empty string as content.
    EmptyContent,
    /// `"content": null`.
    NullContent,
    /// `usage` with every count at 2^64-1.
    AbsurdUsage,
    /// `"choices": []` (a client retries it).
    MissingChoices,
    /// A 2 MiB body, past the client's response cap (a client stops the run, stored nowhere).
    Oversize,
}

/// The hostilities chosen by the request body (same request, same reply).
pub const BY_CONTENT: [Hostility; 8] = [
    Hostility::Huge,
    Hostility::Nested,
    Hostility::AlmostJson,
    Hostility::UnknownIds,
    Hostility::OverLimits,
    Hostility::EmptyContent,
    Hostility::NullContent,
    Hostility::AbsurdUsage,
];

/// The hostilities drawn per request (a retry can get a good reply).
pub const BY_ATTEMPT: [Hostility; 2] = [Hostility::MissingChoices, Hostility::Oversize];

impl Hostility {
    /// A short name for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Hostility::Huge => "huge",
            Hostility::Nested => "nested",
            Hostility::AlmostJson => "almost-json",
            Hostility::UnknownIds => "unknown-ids",
            Hostility::OverLimits => "over-limits",
            Hostility::EmptyContent => "empty-content",
            Hostility::NullContent => "null-content",
            Hostility::AbsurdUsage => "absurd-usage",
            Hostility::MissingChoices => "missing-choices",
            Hostility::Oversize => "oversize",
        }
    }
}

/// A number in `0..1` and a pick from the sha256 of `parts`.
fn uniform(parts: &[&[u8]]) -> (f64, usize) {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let word = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    let pick = u64::from_le_bytes(digest[8..16].try_into().expect("8 bytes"));
    ((word >> 11) as f64 / (1u64 << 53) as f64, pick as usize)
}

/// Which hostility (if any) answers the request `body`, the `index`-th the server received:
/// `rate` of the requests get a content hostility, `rate / 4` of the others one per attempt.
pub fn draw(rate: f64, seed: u64, body: &Value, index: u64) -> Option<Hostility> {
    let seed = seed.to_le_bytes();
    let (u, pick) = uniform(&[&seed, body.to_string().as_bytes()]);
    if u < rate {
        return Some(BY_CONTENT[pick % BY_CONTENT.len()]);
    }
    let (u, pick) = uniform(&[&seed, b"attempt", &index.to_le_bytes()]);
    (u < rate / 4.0).then(|| BY_ATTEMPT[pick % BY_ATTEMPT.len()])
}

/// The text of a content hostility.
fn hostile_text(hostility: Hostility) -> String {
    match hostility {
        Hostility::Huge => {
            let mut text = "All work and no play. ".repeat(12_000);
            text.push_str("\nAnswer: A");
            text
        }
        Hostility::Nested => {
            format!("\\boxed{{{}}} {}\nAnswer: {}", "(".repeat(25_000), "[{".repeat(25_000), "(".repeat(1000))
        }
        Hostility::AlmostJson => concat!(
            r#"{"aggregator": "single", "reason": "cut"#,
            "\n<critique>unclosed\n<requirement>also unclosed",
            "\n{\"diagnosis\": \"x\", \"layers\": [{\"layer\": \"verify\", \"blame\": 0.9,",
            "\n<patch>[{\"op\": \"set_prompt\", \"layer\": \"verify\", \"agent\": \"a1\", \"value\": \"{input} more",
        )
        .to_string(),
        Hostility::UnknownIds => concat!(
            r#"{"aggregator": "no-such-aggregator", "reason": "unknown"}"#,
            "\n{\"diagnosis\": \"ghosts\", \"layers\": [{\"layer\": \"ghost\", \"blame\": 1.0, \"issue\": \"x\", \"direction\": \"y\"}], \"structural\": []}",
            "\n<gradient>g</gradient><requirement_for_previous>r</requirement_for_previous>",
            "<patch>[{\"op\": \"set_prompt\", \"layer\": \"ghost\", \"agent\": \"phantom\", \"value\": \"{input}\"}, {\"op\": \"remove_agent\", \"layer\": \"verify\", \"agent\": \"nobody\"}]</patch>",
        )
        .to_string(),
        Hostility::OverLimits => {
            let ops: Vec<String> = (0..5_000)
                .map(|i| format!(r#"{{"op": "set_role", "layer": "verify", "agent": "a1", "value": "role {i}"}}"#))
                .collect();
            format!(
                "{{\"aggregator\": \"debate\", \"reason\": \"not offered\"}}\n\
                 {{\"diagnosis\": \"d\", \"layers\": [{{\"layer\": \"verify\", \"blame\": 1e308, \"issue\": \"i\", \"direction\": \"d\"}}, {{\"layer\": \"solve\", \"blame\": -7, \"issue\": \"i\", \"direction\": \"d\"}}], \"structural\": []}}\n\
                 <gradient>g</gradient><requirement_for_previous>r</requirement_for_previous><patch>[{}]</patch>\nAnswer: E",
                ops.join(",")
            )
        }
        Hostility::EmptyContent => String::new(),
        _ => String::new(),
    }
}

/// `reply` (the server's normal 200 body) rewritten as `hostility` says.
pub fn apply(hostility: Hostility, mut reply: Value) -> Reshaped {
    match hostility {
        Hostility::NullContent => {
            reply["choices"][0]["message"]["content"] = Value::Null;
            Reshaped::Json(reply)
        }
        Hostility::AbsurdUsage => {
            reply["usage"] = json!({
                "prompt_tokens": u64::MAX,
                "completion_tokens": u64::MAX,
                "total_tokens": u64::MAX,
                "prompt_tokens_details": {"cached_tokens": u64::MAX},
            });
            Reshaped::Json(reply)
        }
        Hostility::MissingChoices => {
            reply["choices"] = json!([]);
            Reshaped::Json(reply)
        }
        Hostility::Oversize => {
            let padding = "x".repeat(2 << 20);
            Reshaped::Raw(format!(r#"{{"padding": "{padding}", "choices": []}}"#))
        }
        content => {
            reply["choices"][0]["message"]["content"] = Value::String(hostile_text(content));
            Reshaped::Json(reply)
        }
    }
}

/// A reshape hook for the fake server: `rate` of the replies hostile, chosen with `seed`.
pub fn hostile(rate: f64, seed: u64) -> ReshapeFn {
    Arc::new(move |body: &Value, index: u64, reply: Value| match draw(rate, seed, body, index) {
        Some(hostility) => apply(hostility, reply),
        None => Reshaped::Json(reply),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Value {
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    }

    #[test]
    fn the_same_body_gets_the_same_content_hostility() {
        let body = json!({"messages": [{"role": "user", "content": "q"}]});
        let picks: Vec<_> = (0..50).map(|i| draw(1.0, 7, &body, i)).collect();
        assert!(picks.iter().all(|p| *p == picks[0] && p.is_some()), "{picks:?}");
        assert_eq!(draw(0.0, 7, &body, 3).filter(|h| BY_CONTENT.contains(h)), None);
    }

    #[test]
    fn every_hostility_is_drawn_at_some_rate() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..4000u64 {
            let body = json!({"messages": [{"role": "user", "content": i.to_string()}]});
            if let Some(h) = draw(0.5, 1, &body, i) {
                seen.insert(h);
            }
        }
        assert_eq!(seen.len(), BY_CONTENT.len() + BY_ATTEMPT.len(), "{seen:?}");
    }

    #[test]
    fn replies_are_rewritten_as_named() {
        let Reshaped::Json(null) = apply(Hostility::NullContent, reply()) else { panic!() };
        assert!(null["choices"][0]["message"]["content"].is_null());
        let Reshaped::Json(usage) = apply(Hostility::AbsurdUsage, reply()) else { panic!() };
        assert_eq!(usage["usage"]["prompt_tokens"], u64::MAX);
        let Reshaped::Raw(big) = apply(Hostility::Oversize, reply()) else { panic!() };
        assert!(big.len() > 2 << 20);
        let Reshaped::Json(huge) = apply(Hostility::Huge, reply()) else { panic!() };
        let text = huge["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(text.len() > 200_000 && text.len() < 1 << 20);
    }
}
