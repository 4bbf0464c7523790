//! Property tests (stable-toolchain fuzzing, `cargo xtask fuzz --target patch_parser` etc.): the
//! patch parser and the loss and gradient answer parsers never panic on model text, keep their
//! promises (blame within 0..=1, only the network's layers), and parsed patches round-trip.

use ann_graph::Network;
use ann_test_support::fuzz::{config, model_text, nested};
use ann_textgrad::gradient::{parse_global_gradient, parse_language_loss, parse_local_text};
use ann_textgrad::{PatchOp, parse_patch};
use proptest::prelude::*;

const DEMO: &str = include_str!("../../../experiments/demo-network.json");

fn demo() -> Network {
    Network::from_json(DEMO).expect("the demo network parses")
}

/// A patch-like reply: ops of the demo network's vocabulary, with hostile values here and there.
fn patch_reply() -> impl Strategy<Value = String> {
    let op = (
        prop::sample::select(
            &["set_prompt", "set_role", "add_agent", "remove_agent", "set_aggregators", "nonsense"][..],
        ),
        prop::sample::select(&["solve", "verify", "ghost", ""][..]),
        prop::sample::select(&["a1", "a2", "nobody"][..]),
        model_text(6),
    )
        .prop_map(|(op, layer, agent, value)| {
            serde_json::json!({"op": op, "layer": layer, "agent": agent, "value": value}).to_string()
        });
    (model_text(4), prop::collection::vec(op, 0..6), model_text(4), any::<bool>()).prop_map(
        |(before, ops, after, tagged)| {
            let array = format!("[{}]", ops.join(", "));
            if tagged { format!("{before}<patch>{array}</patch>{after}") } else { format!("{before}{array}{after}") }
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn patch_parser(text in prop_oneof![patch_reply(), model_text(40), nested("[", "]", 5000), nested("[{\"op\":", "}]", 2000)]) {
        if let Ok(ops) = parse_patch(&text) {
            // What was read is written back as JSON and read again unchanged.
            let json = serde_json::to_string(&ops).expect("ops serialize");
            let again: Vec<PatchOp> = serde_json::from_str(&json).expect("ops deserialize");
            prop_assert_eq!(&again, &ops);
            prop_assert_eq!(parse_patch(&format!("<patch>{json}</patch>")).expect("its own JSON parses"), ops);
        }
    }

    #[test]
    fn loss_answer(text in prop_oneof![model_text(40), nested("<critique>", "</critique>", 500)]) {
        let loss = parse_language_loss("ex", &text);
        prop_assert_eq!(loss.example, "ex");
        prop_assert!(loss.critique.len() <= text.len());
    }

    #[test]
    fn global_gradient(text in prop_oneof![model_text(40), nested("{\"layers\": [", "]}", 2000)], blame in any::<f64>()) {
        let net = demo();
        let reply = format!(
            "{text}{{\"diagnosis\": \"d\", \"layers\": [{{\"layer\": \"verify\", \"blame\": {blame:?}}}, {{\"layer\": \"ghost\", \"blame\": 1}}]}}"
        );
        for reply in [text.as_str(), reply.as_str()] {
            if let Ok(g) = parse_global_gradient(reply, &net) {
                for b in &g.layers {
                    prop_assert!((0.0..=1.0).contains(&b.blame), "blame {}", b.blame);
                    prop_assert!(net.layer(&b.layer).is_some(), "unknown layer {}", b.layer);
                }
            }
        }
    }

    #[test]
    fn local_gradient(text in prop_oneof![model_text(40), nested("<gradient>", "</gradient>", 500)]) {
        let local = parse_local_text(&text);
        prop_assert!(local.gradient.len() <= text.len() && local.requirement_for_previous.len() <= text.len());
    }
}
