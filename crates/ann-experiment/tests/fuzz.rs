//! Property tests (stable-toolchain fuzzing, `cargo xtask fuzz --target experiment_config`): the
//! experiment config loader never panics on any text or `--set` override, its errors name the
//! origin, and a loaded config round-trips through its own TOML.

use ann_experiment::ExperimentConfig;
use ann_test_support::fuzz::{config, model_text, nested};
use proptest::prelude::*;

const DEMO: &str = include_str!("../../../experiments/demo.toml");

/// The demo config with one line replaced by model-like text or a `key = value` line.
fn mutated() -> impl Strategy<Value = String> {
    let lines = DEMO.lines().count();
    let replacement = prop_oneof![
        model_text(8),
        (
            prop::sample::select(
                &["epochs", "batch_size", "max_calls", "seed", "name", "mode", "temperature", "x"][..]
            ),
            prop_oneof![
                Just("-1".to_string()),
                Just("18446744073709551616".to_string()),
                Just("nan".to_string()),
                Just("1e400".to_string()),
                Just("\"\"".to_string()),
                Just("[1, \"a\"]".to_string()),
                Just("{ a = 1 }".to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|f| format!("{f:?}")),
            ],
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
    ];
    (0..lines, replacement).prop_map(|(at, with)| {
        DEMO.lines()
            .enumerate()
            .map(|(i, l)| if i == at { with.clone() } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn experiment_config(text in prop_oneof![mutated(), model_text(40), nested("[", "]", 3000), nested("a = {", "}", 1000)]) {
        match ExperimentConfig::from_toml(&text, "fuzz.toml") {
            Ok(loaded) => {
                let again = loaded.to_toml().expect("a loaded config serializes");
                prop_assert_eq!(ExperimentConfig::from_toml(&again, "again.toml").expect("its own TOML loads"), loaded);
            }
            Err(e) => prop_assert!(format!("{e:#}").contains("fuzz.toml"), "{e:#}"),
        }
    }

    #[test]
    fn experiment_overrides(key in "[a-z_.]{0,24}", value in model_text(6)) {
        let mut table: toml::Table = toml::from_str(DEMO).expect("the demo config is TOML");
        if ann_experiment::overrides::apply_override(&mut table, &format!("{key}={value}")).is_ok() {
            let text = toml::to_string(&table).expect("a table serializes");
            let _ = ExperimentConfig::from_toml(&text, "overridden.toml");
        }
    }
}
