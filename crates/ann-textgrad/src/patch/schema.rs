//! The JSON schema of a layer's patch, so that a backend with structured output decodes only
//! well-formed ops on that layer.
//!
//! The schema writes the format gate's invariants that a grammar can hold: the op names a local
//! gradient may use, the layer's id, its agents' ids, the registry's aggregator names, at most
//! `max_ops` ops, no removal of a layer's only agent, and every new prompt keeping `{input}` within
//! the prompt length limit (keywords the embedded backend does not implement, e.g. `uniqueItems`,
//! are left out). The gate still checks everything ([`super::apply_patch`]): the schema only keeps
//! a small model from wasting its answer on syntax.

use ann_graph::{AggregatorName, Layer, ValidationRules};
use ann_llm::ResponseFormat;
use serde_json::{Value, json};

/// The `response_format` of a local update on `layer`: an object `{"patch": [ops]}`.
pub fn layer_patch_format(layer: &Layer, rules: &ValidationRules, max_ops: usize) -> ResponseFormat {
    let agents: Vec<&str> = layer.agents.iter().map(|a| a.id.as_str()).collect();
    let aggregators: Vec<&str> = AggregatorName::ALL.iter().map(|a| a.as_str()).collect();
    let prompt = json!({
        "type": "string",
        "pattern": r"^(.|\n)*\{input\}(.|\n)*$",
        "maxLength": rules.max_prompt_chars,
    });
    let text = json!({"type": "string", "minLength": 1});
    let layer_id = json!({"type": "string", "enum": [layer.id]});
    let agent_id = json!({"type": "string", "enum": agents});
    let aggregator = json!({"type": "string", "enum": aggregators});
    let op = |name: &str, fields: Vec<(&str, Value)>| {
        let mut properties = serde_json::Map::new();
        properties.insert("op".into(), json!({"type": "string", "enum": [name]}));
        properties.insert("layer".into(), layer_id.clone());
        for (field, schema) in &fields {
            properties.insert((*field).into(), schema.clone());
        }
        let required: Vec<&str> = ["op", "layer"].into_iter().chain(fields.iter().map(|(f, _)| *f)).collect();
        json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
    };
    let new_agent = json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9_-]+$"},
            "role": text,
            "prompt": prompt,
            "temperature": {"type": "number", "minimum": 0, "maximum": 2}
        },
        "required": ["id", "role", "prompt", "temperature"],
        "additionalProperties": false
    });
    let ops = vec![
        op("set_prompt", vec![("agent", agent_id.clone()), ("value", prompt.clone())]),
        op("set_role", vec![("agent", agent_id.clone()), ("value", text.clone())]),
        op("add_agent", vec![("agent", new_agent)]),
        op("set_aggregators", vec![("value", json!({"type": "array", "items": aggregator, "minItems": 1}))]),
        op("set_default_aggregator", vec![("value", aggregator)]),
        op("set_routing_hint", vec![("value", text.clone())]),
        op("set_layer_subtask", vec![("value", text)]),
    ];
    let mut ops = ops;
    if layer.agents.len() > 1 {
        // A layer keeps at least one agent: its last one cannot be removed.
        ops.push(op("remove_agent", vec![("agent", agent_id)]));
    }
    ResponseFormat::JsonSchema {
        name: "layer_patch".into(),
        schema: json!({
            "type": "object",
            "properties": {"patch": {"type": "array", "items": {"anyOf": ops}, "maxItems": max_ops}},
            "required": ["patch"],
            "additionalProperties": false
        }),
        strict: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::parse_patch;

    fn schema_of(format: &ResponseFormat) -> &Value {
        match format {
            ResponseFormat::JsonSchema { schema, .. } => schema,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_schema_names_the_layer_its_agents_and_the_limits() {
        let net = crate::testing::sample_network();
        let layer = &net.layers[0];
        let format = layer_patch_format(layer, &ValidationRules::default(), 3);
        let schema = schema_of(&format);
        assert_eq!(schema["properties"]["patch"]["maxItems"], 3);
        let ops = schema["properties"]["patch"]["items"]["anyOf"].as_array().unwrap();
        let names: Vec<&str> = ops.iter().map(|o| o["properties"]["op"]["enum"][0].as_str().unwrap()).collect();
        assert_eq!(names.len(), if layer.agents.len() > 1 { 8 } else { 7 }, "{names:?}");
        let mut single = layer.clone();
        single.agents.truncate(1);
        let format = layer_patch_format(&single, &ValidationRules::default(), 3);
        let ops = schema_of(&format)["properties"]["patch"]["items"]["anyOf"].as_array().unwrap().clone();
        assert!(ops.iter().all(|o| o["properties"]["op"]["enum"][0] != "remove_agent"), "the only agent stays");
        assert!(ops.iter().all(|o| o["properties"]["layer"]["enum"] == json!([layer.id])));
        let agents: Vec<&str> = layer.agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ops[0]["properties"]["agent"]["enum"], json!(agents));
        assert_eq!(ops[0]["properties"]["value"]["maxLength"], 4000);
    }

    #[test]
    fn a_reply_in_the_schema_parses_as_a_patch() {
        let reply = r#"{"patch": [{"op": "set_prompt", "layer": "l1", "agent": "a1", "value": "{input}\nStart with Yes or No."}]}"#;
        let ops = parse_patch(reply).unwrap();
        assert_eq!(ops.len(), 1);
        assert!(parse_patch(r#"{"patch": []}"#).unwrap().is_empty());
    }
}
