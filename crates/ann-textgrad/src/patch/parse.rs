//! Reading a patch out of model text: the `<patch>` element, else the first JSON array of ops.

use ann_graph::AggregatorName;
use serde_json::Value;

use super::{OP_NAMES, PatchOp, Rejection};

/// Read the typed ops out of model text: the content of the first `<patch>` element, else the
/// first JSON array of the text. A lone op object is taken as a one-op patch.
pub fn parse_patch(text: &str) -> Result<Vec<PatchOp>, Rejection> {
    let body = ann_llm::answer::extract_tag(text, "patch").unwrap_or(text);
    let value = first_op_array(body).or_else(|| ann_llm::answer::first_json_value(body, &['['])).or_else(|| {
        // A single op written without the array brackets.
        ann_llm::answer::first_json_value(body, &['{']).filter(|v| v.get("op").is_some())
    });
    let Some(value) = value else {
        return Err(Rejection::Unparsable { detail: "no JSON array found".into() });
    };
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items.into_iter().enumerate().map(|(i, item)| parse_op(i, item)).collect()
}

/// The first JSON array whose items are all objects with an `op` field (or that is empty), so
/// that an array quoted in the prose before the patch is not taken for it.
fn first_op_array(text: &str) -> Option<Value> {
    ann_llm::answer::json_values(text, &['['])
        .find(|value| value.as_array().is_some_and(|items| items.iter().all(|item| item.get("op").is_some())))
}

fn parse_op(index: usize, item: Value) -> Result<PatchOp, Rejection> {
    let at = |detail: String| Rejection::Unparsable { detail: format!("op {}: {detail}", index + 1) };
    let Some(op) = item.get("op").and_then(Value::as_str) else {
        return Err(at("not an object with a string field `op`".into()));
    };
    if !OP_NAMES.contains(&op) {
        return Err(Rejection::UnknownOp { op: op.to_string() });
    }
    // Aggregator names outside the registry break an invariant of the network, not the syntax.
    let names: Vec<&Value> = match op {
        "set_aggregators" => {
            item.get("value").and_then(Value::as_array).map(|v| v.iter().collect()).unwrap_or_default()
        }
        "set_default_aggregator" => item.get("value").into_iter().collect(),
        _ => Vec::new(),
    };
    for name in names {
        if let Some(s) = name.as_str()
            && let Err(e) = s.parse::<AggregatorName>()
        {
            return Err(Rejection::invariant("aggregators", e));
        }
    }
    serde_json::from_value(item).map_err(|e| at(e.to_string()))
}
