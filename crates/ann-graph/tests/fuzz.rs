//! Property tests (stable-toolchain fuzzing, `cargo xtask fuzz --target network_json` etc.): the
//! network loaders and the routing answer parser never panic on any input, errors are typed, and
//! what loads round-trips through its own serialization.

use ann_graph::{AggregatorName, GraphError, Network, parse_routing};
use ann_test_support::fuzz::{config, model_text, nested};
use proptest::prelude::*;

const DEMO: &str = include_str!("../../../experiments/demo-network.json");

/// `text` with the characters `start..start + len` (clamped, on char boundaries) replaced by `with`.
fn splice(text: &str, start: usize, len: usize, with: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = start.min(chars.len());
    let end = (start + len).min(chars.len());
    chars[..start].iter().chain(with.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect()
}

/// The demo network's file with one stretch replaced by model-like text.
fn mutated(text: &'static str) -> impl Strategy<Value = String> {
    let n = text.chars().count();
    (0..n, 0..40usize, model_text(6)).prop_map(move |(start, len, with)| splice(text, start, len, &with))
}

fn typed(error: &GraphError) -> bool {
    matches!(error, GraphError::Parse { .. })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn network_json(text in prop_oneof![mutated(DEMO), model_text(40), nested("[", "]", 5000)]) {
        match Network::from_json(&text) {
            Ok(net) => prop_assert_eq!(Network::from_json(&net.to_json()).expect("its own JSON loads"), net),
            Err(e) => prop_assert!(typed(&e), "{e:?}"),
        }
    }

    #[test]
    fn network_yaml(text in prop_oneof![
        mutated(DEMO),
        Just(Network::from_json(DEMO).unwrap().to_yaml()).prop_flat_map(|y| {
            let n = y.chars().count();
            (Just(y), 0..n, 0..40usize, model_text(6))
        }).prop_map(|(y, s, l, w)| splice(&y, s, l, &w)),
        nested("- ", "", 2000),
    ]) {
        match Network::from_yaml(&text) {
            Ok(net) => prop_assert_eq!(Network::from_yaml(&net.to_yaml()).expect("its own YAML loads"), net),
            Err(e) => prop_assert!(typed(&e), "{e:?}"),
        }
    }

    #[test]
    fn routing_answer(text in prop_oneof![model_text(40), nested("{", "}", 5000)]) {
        let candidates = [AggregatorName::Single, AggregatorName::MajorityVote, AggregatorName::Debate];
        if let Ok((chosen, _reason)) = parse_routing(&text, &candidates) {
            prop_assert!(candidates.contains(&chosen), "{chosen:?} was not offered");
        }
    }
}

/// The demo network survives both round trips exactly (the properties' starting point).
#[test]
fn the_demo_network_round_trips() {
    let net = Network::from_json(DEMO).unwrap();
    assert_eq!(Network::from_yaml(&net.to_yaml()).unwrap(), net);
    assert_eq!(Network::from_json(&net.to_json()).unwrap(), net);
}

/// Found by `network_json`: a temperature past `f32::MAX` became infinity, which the network's own
/// JSON writes as `null`, so a loaded network could not be read back. It is now a parse error
/// naming the field.
#[test]
fn a_temperature_past_f32_is_a_parse_error_naming_the_field() {
    let text = DEMO.replacen("\"temperature\": 0.7", "\"temperature\": 1e308", 1);
    assert_ne!(text, DEMO);
    let error = Network::from_json(&text).unwrap_err();
    assert!(error.to_string().contains("layers[0].agents[1].temperature"), "{error}");
    assert!(error.to_string().contains("finite"), "{error}");
}
