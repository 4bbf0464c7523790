//! Unit tests of the tool ops: grant, revoke, step limit; their rejections name what is wrong.

use super::*;
use ann_graph::ValidationRules;
use serde_json::json;

use crate::testing::sample_network;

fn rules() -> ValidationRules {
    ValidationRules {
        tools: Some(vec!["calculator".into(), "python".into()]),
        ..ValidationRules::with_answer_format("\\boxed{}")
    }
}

fn apply(text: &str, scope: PatchScope<'_>) -> Result<AppliedPatch, Rejection> {
    let ops = parse_patch(text)?;
    apply_patch(&sample_network(), &ops, scope, &PatchLimits::default(), &rules())
}

#[test]
fn grant_set_steps_and_revoke_edit_the_agents_tools() {
    let patched = apply(
        r#"<patch>[{"op":"grant_tool","layer":"solve","agent":"a1","tool":"python"},
                   {"op":"grant_tool","layer":"solve","agent":"a1","tool":"calculator"},
                   {"op":"set_tool_steps","layer":"solve","agent":"a1","value":3}]</patch>"#,
        PatchScope::Layer("solve"),
    )
    .unwrap();
    let a1 = &patched.network.layer("solve").unwrap().agents[0];
    assert_eq!((a1.tools.clone(), a1.max_tool_steps), (vec!["python".to_string(), "calculator".to_string()], Some(3)));
    let ops = serde_json::to_value(&patched.rfc6902).unwrap();
    assert_eq!(ops[2], json!({"op": "add", "path": "/layers/1/agents/0/tools", "value": ["python"]}));
    assert_eq!(ops[8], json!({"op": "add", "path": "/layers/1/agents/0/max_tool_steps", "value": 3}));
    // Other agents are untouched.
    assert!(patched.network.layer("solve").unwrap().agents[1].tools.is_empty());

    let ops = parse_patch(r#"[{"op":"revoke_tool","layer":"solve","agent":"a1","tool":"python"}]"#).unwrap();
    assert_eq!(ops[0].summary(), "revoke_tool solve/a1 python");
    let revoked = apply_patch(&patched.network, &ops, PatchScope::Network, &PatchLimits::default(), &rules()).unwrap();
    assert_eq!(revoked.network.layer("solve").unwrap().agents[0].tools, ["calculator"]);
    assert_eq!(
        summarize_ops(&parse_patch(r#"{"op":"set_tool_steps","layer":"solve","agent":"a2","value":2}"#).unwrap()),
        "set_tool_steps solve/a2=2"
    );
}

#[test]
fn bad_tool_ops_are_rejected_with_a_reason_the_optimiser_reads() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"[{"op":"grant_tool","layer":"solve","agent":"a1","tool":"shell"}]"#,
            "invariant:tools",
            "tool `shell` is not registered (known: calculator, python)",
        ),
        (
            r#"[{"op":"grant_tool","layer":"solve","agent":"a1","tool":"python"},{"op":"grant_tool","layer":"solve","agent":"a1","tool":"python"}]"#,
            "invariant:tools",
            "agent `a1` in layer `solve` already has the tool `python`",
        ),
        (
            r#"[{"op":"revoke_tool","layer":"solve","agent":"a1","tool":"python"}]"#,
            "unknown_id",
            "tool `python` of agent `a1` in layer `solve` (its tools: none)",
        ),
        (
            r#"[{"op":"set_tool_steps","layer":"solve","agent":"a1","value":0}]"#,
            "invariant:tool_steps",
            "max_tool_steps 0 is outside 1..=16",
        ),
        (
            r#"[{"op":"set_tool_steps","layer":"solve","agent":"a1","value":99}]"#,
            "invariant:tool_steps",
            "max_tool_steps 99 is outside 1..=16",
        ),
        (r#"[{"op":"set_tool_steps","layer":"solve","agent":"a1","value":-1}]"#, "unparsable", "op 1: invalid value"),
        (
            r#"[{"op":"set_tool_steps","layer":"solve","agent":"a1","value":"many"}]"#,
            "unparsable",
            "op 1: invalid type",
        ),
        (
            r#"[{"op":"grant_tool","layer":"solve","agent":"a9","tool":"python"}]"#,
            "unknown_id",
            "agent `a9` in layer `solve`",
        ),
        (r#"[{"op":"grant_tool","layer":"solve","agent":"a1"}]"#, "unparsable", "missing field `tool`"),
    ];
    for (text, reason, detail) in cases {
        let rejection = apply(text, PatchScope::Network).unwrap_err();
        assert_eq!(rejection.reason().to_string(), *reason, "{text}: {rejection}");
        assert!(rejection.to_string().contains(detail), "{text}: {rejection}");
    }
    // A local patch may not give tools to another layer's agents.
    let rejection =
        apply(r#"[{"op":"grant_tool","layer":"verify","agent":"a1","tool":"python"}]"#, PatchScope::Layer("solve"))
            .unwrap_err();
    assert_eq!(rejection.reason().to_string(), "invariant:scope");
    // A run without tools grants none.
    let no_tools = ValidationRules { tools: Some(Vec::new()), ..rules() };
    let ops = parse_patch(r#"[{"op":"grant_tool","layer":"solve","agent":"a1","tool":"python"}]"#).unwrap();
    let rejection = apply_patch(&sample_network(), &ops, PatchScope::Network, &PatchLimits::default(), &no_tools);
    assert!(rejection.unwrap_err().to_string().contains("tool `python` is not registered (known: none)"));
}
