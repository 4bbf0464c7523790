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

/// The `response_format` of a local update in the append form: `{"agent": id, "instruction":
/// text}`, the instruction one sentence (a capital, no braces, so no placeholder, and one final
/// stop, so a small model cannot loop on it).
pub fn append_instruction_format(layer: &Layer) -> ResponseFormat {
    let agents: Vec<&str> = layer.agents.iter().map(|a| a.id.as_str()).collect();
    ResponseFormat::JsonSchema {
        name: "append_instruction".into(),
        schema: json!({
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": agents},
                "instruction": {"type": "string", "pattern": r"^[A-Z][^{}\n.!?]{7,150}[.!]$"}
            },
            "required": ["agent", "instruction"],
            "additionalProperties": false
        }),
        strict: false,
    }
}

/// An append-form reply as the patch text it stands for: one `set_prompt` op whose value is the
/// agent's prompt, a new line and the instruction. A reply that is not such an object (or names
/// no agent of the layer, or an empty instruction) is returned as it is, for the patch parser
/// to reject with its reason.
pub fn append_reply_to_patch(layer: &Layer, reply: &str) -> String {
    let object = ann_llm::answer::first_json_object(reply);
    let field = |key: &str| object.as_ref().and_then(|o| o.get(key)).and_then(Value::as_str).map(str::trim);
    let (Some(agent), Some(instruction)) = (field("agent"), field("instruction")) else {
        return reply.to_string();
    };
    let Some(a) = layer.agents.iter().find(|a| a.id == agent) else { return reply.to_string() };
    if instruction.is_empty() {
        return json!({"patch": []}).to_string();
    }
    let value = format!("{}\n{instruction}", a.prompt.trim_end());
    json!({"patch": [{"op": "set_prompt", "layer": layer.id, "agent": a.id, "value": value}]}).to_string()
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

    #[test]
    fn an_append_reply_becomes_a_set_prompt_that_keeps_the_prompt() {
        let net = crate::testing::sample_network();
        let layer = &net.layers[0];
        let schema = schema_of(&append_instruction_format(layer)).clone();
        let agents: Vec<&str> = layer.agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(schema["properties"]["agent"]["enum"], json!(agents));
        let agent = &layer.agents[0];
        let reply = format!(r#"{{"agent": "{}", "instruction": " Start your reply with Yes or No. "}}"#, agent.id);
        let ops = parse_patch(&append_reply_to_patch(layer, &reply)).unwrap();
        let expected = format!("{}\nStart your reply with Yes or No.", agent.prompt.trim_end());
        let op = serde_json::to_value(&ops).unwrap();
        assert_eq!(op[0]["op"], "set_prompt", "{op}");
        assert_eq!(
            (op[0]["agent"].as_str(), op[0]["value"].as_str()),
            (Some(agent.id.as_str()), Some(expected.as_str()))
        );
        // Not such an object, or an agent the layer lacks: left for the parser to reject.
        assert!(parse_patch(&append_reply_to_patch(layer, "Start with Yes.")).is_err());
        let stranger = r#"{"agent": "nobody", "instruction": "Start with Yes or No."}"#;
        assert_eq!(append_reply_to_patch(layer, stranger), stranger);
        let empty = format!(r#"{{"agent": "{}", "instruction": "  "}}"#, agent.id);
        assert!(parse_patch(&append_reply_to_patch(layer, &empty)).unwrap().is_empty());
    }
}
