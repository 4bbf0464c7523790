//! Property tests (stable-toolchain fuzzing, `cargo xtask fuzz --target math_answer`): MATH answer
//! extraction and equivalence never panic and stay bounded on model text (deep nesting, huge
//! numbers, factorials), equivalence is symmetric, and a boxed answer is read back as written.

use ann_bench_math::{extract, is_equiv, last_boxed, normalize_answer};
use ann_test_support::fuzz::{config, model_text, nested};
use proptest::prelude::*;

/// Math-like answers: numbers, fractions, roots, factorials, powers, tuples, units.
fn math_answer() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{1,40}",
        "[0-9]{1,6}\\.[0-9]{1,6}",
        Just("\\pi".to_string()),
        Just("x".to_string()),
        (1u32..100_000).prop_map(|n| format!("{n}!")),
        (0u32..1000, 0u32..100_000).prop_map(|(a, b)| format!("{a}^{{{b}}}")),
        (0u32..1000, 0u32..1000).prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
        "[0-9]{1,30}".prop_map(|n| format!("\\sqrt{{{n}}}")),
        Just("2\\text{ hours}".to_string()),
    ];
    prop::collection::vec(atom, 1..4).prop_flat_map(|atoms| {
        prop::sample::select(&[", ", "+", "-", "\\cdot ", "/", " "][..]).prop_map(move |sep| atoms.join(sep))
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn math_answer_extraction(text in prop_oneof![model_text(40), nested("\\boxed{", "}", 3000), nested("(", ")", 5000)]) {
        let _ = extract(&text);
        let _ = last_boxed(&text);
        let _ = normalize_answer(&text);
    }

    #[test]
    fn math_equivalence(a in prop_oneof![math_answer(), model_text(12), nested("(", ")", 3000)], b in prop_oneof![math_answer(), model_text(12)]) {
        prop_assert_eq!(is_equiv(&a, &b), is_equiv(&b, &a), "is_equiv is not symmetric");
        let _ = is_equiv(&a, &a);
    }

    #[test]
    fn math_boxed_round_trip(prose in "[a-zA-Z ,.]{0,40}", answer in "[a-z0-9+*/^=. -]{0,20}") {
        let text = format!("{prose} so the answer is \\boxed{{{answer}}}.");
        if !answer.trim().is_empty() {
            prop_assert_eq!(last_boxed(&text).map(|s| s.trim().to_string()), Some(answer.trim().to_string()));
        }
    }
}
