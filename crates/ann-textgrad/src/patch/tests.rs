//! Unit tests of patch parsing, compilation and application.

use super::*;
use ann_graph::ValidationRules;
use serde_json::{Value, json};

use crate::testing::sample_network;

fn rules() -> ValidationRules {
    ValidationRules::with_answer_format("\\boxed{}")
}

/// Parse and apply; the rejection reason or the patched network's JSON.
fn check(text: &str, scope: PatchScope<'_>) -> Result<AppliedPatch, String> {
    let ops = parse_patch(text).map_err(|r| r.reason().to_string())?;
    apply_patch(&sample_network(), &ops, scope, &PatchLimits::default(), &rules()).map_err(|r| r.reason().to_string())
}

#[test]
fn parses_tag_array_and_lone_object() {
    let ops = parse_patch(
        "<gradient>x</gradient>\n<patch>\n```json\n[{\"op\":\"set_routing_hint\",\"layer\":\"solve\",\"value\":\"v\"}]\n```\n</patch>",
    )
    .unwrap();
    assert_eq!(ops, vec![PatchOp::SetRoutingHint { layer: "solve".into(), value: "v".into() }]);
    let ops = parse_patch("Here: [1, oops] then [{\"op\":\"remove_layer\",\"layer\":\"verify\"}]").unwrap();
    assert_eq!(ops, vec![PatchOp::RemoveLayer { layer: "verify".into() }]);
    let ops = parse_patch("Keep [\"single\"] as is; patch: [{\"op\":\"remove_layer\",\"layer\":\"verify\"}]").unwrap();
    assert_eq!(ops, vec![PatchOp::RemoveLayer { layer: "verify".into() }]);
    let ops = parse_patch("{\"op\":\"remove_layer\",\"layer\":\"verify\"}").unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(parse_patch("<patch>[]</patch>").unwrap(), vec![]);
}

#[test]
fn rejection_reasons() {
    let cases: &[(&str, PatchScope<'_>, &str)] = &[
        ("no json here", PatchScope::Network, "unparsable"),
        ("[{\"op\": \"set_prompt\", \"layer\": \"solve\"}]", PatchScope::Network, "unparsable"),
        ("[{\"op\": \"rewrite_everything\"}]", PatchScope::Network, "unknown_op"),
        ("[]", PatchScope::Network, "empty"),
        (
            "[{\"op\":\"set_prompt\",\"layer\":\"nope\",\"agent\":\"a1\",\"value\":\"{input}\"}]",
            PatchScope::Network,
            "unknown_id",
        ),
        (
            "[{\"op\":\"set_prompt\",\"layer\":\"solve\",\"agent\":\"a9\",\"value\":\"{input}\"}]",
            PatchScope::Network,
            "unknown_id",
        ),
        (
            "[{\"op\":\"set_prompt\",\"layer\":\"solve\",\"agent\":\"a1\",\"value\":\"no placeholder\"}]",
            PatchScope::Network,
            "invariant:placeholder",
        ),
        (
            "[{\"op\":\"set_aggregators\",\"layer\":\"solve\",\"value\":[\"telepathy\"]}]",
            PatchScope::Network,
            "invariant:aggregators",
        ),
        (
            "[{\"op\":\"set_default_aggregator\",\"layer\":\"solve\",\"value\":\"single\"}]",
            PatchScope::Network,
            "invariant:default_aggregator",
        ),
        (
            "[{\"op\":\"set_aggregators\",\"layer\":\"understand\",\"value\":[\"single\",\"debate\"]}]",
            PatchScope::Network,
            "invariant:min_agents",
        ),
        (
            "[{\"op\":\"remove_layer\",\"layer\":\"solve\"},{\"op\":\"remove_layer\",\"layer\":\"verify\"}]",
            PatchScope::Network,
            "invariant:max_structural",
        ),
        (
            "[{\"op\":\"set_routing_hint\",\"layer\":\"solve\",\"value\":\"v\"}]",
            PatchScope::Layer("verify"),
            "invariant:scope",
        ),
        ("[{\"op\":\"remove_layer\",\"layer\":\"solve\"}]", PatchScope::Layer("solve"), "invariant:scope"),
        ("[{\"op\":\"remove_layer\",\"layer\":\"verify\"}]", PatchScope::Network, "invariant:answer_format"),
        (
            "[{\"op\":\"add_agent\",\"layer\":\"solve\",\"agent\":{\"id\":\"a1\",\"role\":\"r\",\"prompt\":\"{input}\"}}]",
            PatchScope::Network,
            "invariant:unique_id",
        ),
        (
            "[{\"op\":\"add_agent\",\"layer\":\"solve\",\"agent\":{\"id\":\"a4\",\"role\":\"r\",\"prompt\":\"{input}\",\"model\":{\"profile\":\"huge\"}}}]",
            PatchScope::Network,
            "invariant:model_profile",
        ),
        (
            "[{\"op\":\"move_layer\",\"layer\":\"solve\",\"after\":\"solve\"}]",
            PatchScope::Network,
            "invariant:move_layer",
        ),
    ];
    for (text, scope, want) in cases {
        assert_eq!(check(text, *scope).err().as_deref(), Some(*want), "{text}");
    }
    let seven: Vec<String> =
        (0..7).map(|i| format!("{{\"op\":\"set_routing_hint\",\"layer\":\"solve\",\"value\":\"v{i}\"}}")).collect();
    assert_eq!(
        check(&format!("[{}]", seven.join(",")), PatchScope::Network).err().as_deref(),
        Some("invariant:max_ops")
    );
}

/// A patch may name a model profile the rules know, and no other (the format gate).
#[test]
fn an_added_agent_may_name_only_a_known_model_profile() {
    let text = r#"[{"op":"add_agent","layer":"solve","agent":{"id":"a4","role":"r","prompt":"{input}","model":{"profile":"big"}}}]"#;
    let ops = parse_patch(text).unwrap();
    let known = rules().with_profiles(["big".to_string()]);
    let applied = apply_patch(&sample_network(), &ops, PatchScope::Network, &PatchLimits::default(), &known).unwrap();
    let agent = applied.network.layer("solve").unwrap().agents.last().unwrap().clone();
    assert_eq!(agent.model.profile.as_deref(), Some("big"));
    let unknown = apply_patch(&sample_network(), &ops, PatchScope::Network, &PatchLimits::default(), &rules());
    let rejection = unknown.unwrap_err();
    assert_eq!(rejection.reason().to_string(), "invariant:model_profile");
    assert!(rejection.to_string().contains("model profile `big` is not configured (known: none)"), "{rejection}");
}

#[test]
fn compiles_to_rfc6902_with_id_guards() {
    let applied = check(
        r#"[{"op":"set_prompt","layer":"solve","agent":"a2","value":"Think twice. {input}"},
            {"op":"remove_agent","layer":"solve","agent":"a1"},
            {"op":"set_role","layer":"solve","agent":"a3","value":"A skeptic."},
            {"op":"add_agent","layer":"solve","agent":{"id":"a4","role":"New.","prompt":"{task} {input}","temperature":0.2}}]"#,
        PatchScope::Layer("solve"),
    )
    .unwrap();
    insta::assert_json_snapshot!(applied.rfc6902);
    let solve = applied.network.layer("solve").unwrap();
    let ids: Vec<_> = solve.agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["a2", "a3", "a4"]);
    assert_eq!(solve.agents[0].prompt, "Think twice. {input}");
    assert_eq!(solve.agents[1].role, "A skeptic.");
}

#[test]
fn structural_ops_keep_ids_straight() {
    // Move `understand` after `solve`, then edit it: the second op must address its new index.
    let applied = check(
        r#"[{"op":"move_layer","layer":"understand","after":"solve"},
            {"op":"set_layer_subtask","layer":"understand","value":"restate after solving"}]"#,
        PatchScope::Network,
    )
    .unwrap();
    let order: Vec<_> = applied.network.layers.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(order, ["solve", "understand", "verify"]);
    assert_eq!(applied.network.layers[1].subtask, "restate after solving");
    insta::assert_json_snapshot!(applied.rfc6902);

    let mut new_layer = sample_network().layers[0].clone();
    new_layer.id = "plan".into();
    let op = PatchOp::AddLayer { after: Some("understand".into()), layer: new_layer };
    let applied =
        apply_patch(&sample_network(), &[op], PatchScope::Network, &PatchLimits::default(), &rules()).unwrap();
    let order: Vec<_> = applied.network.layers.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(order, ["understand", "plan", "solve", "verify"]);
    let applied = check(r#"[{"op":"remove_layer","layer":"understand"}]"#, PatchScope::Network).unwrap();
    assert_eq!(applied.network.layers.len(), 2);
}

#[test]
fn application_is_all_or_nothing_and_never_touches_the_input() {
    let net = sample_network();
    let before = net.clone();
    let ops = parse_patch(
        r#"[{"op":"set_routing_hint","layer":"solve","value":"changed"},
            {"op":"set_prompt","layer":"solve","agent":"ghost","value":"{input}"}]"#,
    )
    .unwrap();
    let err = apply_patch(&net, &ops, PatchScope::Network, &PatchLimits::default(), &rules()).unwrap_err();
    assert_eq!(err.reason(), Reason::UnknownId);
    assert_eq!(net, before);
    // A guard that fails at application (a stale patch) leaves the document unchanged too.
    let mut doc = serde_json::to_value(&net).unwrap();
    let original = doc.clone();
    let stale: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/layers/1/routing_hint", "value": "x"},
        {"op": "test", "path": "/layers/1/id", "value": "not-solve"}
    ]))
    .unwrap();
    assert!(json_patch::patch(&mut doc, &stale).is_err());
    assert_eq!(doc, original);
}

#[test]
fn ops_roundtrip_through_serde() {
    for text in [
        r#"{"op":"set_prompt","layer":"solve","agent":"a2","value":"..."}"#,
        r#"{"op":"set_aggregators","layer":"solve","value":["majority_vote","debate"]}"#,
        r#"{"op":"move_layer","layer":"verify","after":"plan"}"#,
    ] {
        let op: PatchOp = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&op).unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }
    assert!(serde_json::from_str::<PatchOp>(r#"{"op":"remove_layer","layer":"x","extra":1}"#).is_err());
}
