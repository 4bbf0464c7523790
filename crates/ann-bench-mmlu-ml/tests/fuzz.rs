//! Property tests (stable-toolchain fuzzing, `cargo xtask fuzz --target mmlu_letter`): MMLU letter
//! extraction never panics, answers only A-D, and a concluding `Answer: X` line decides when no
//! earlier `Answer:` line does (rule 1 takes the first, as simple-evals does).

use ann_bench_mmlu_ml::extract_letter;
use ann_test_support::fuzz::{config, model_text};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mmlu_letter(text in model_text(40), letter in prop::sample::select(&['A', 'B', 'C', 'D'][..])) {
        if let Some(found) = extract_letter(&text) {
            prop_assert!(('A'..='D').contains(&found), "{found:?}");
        }
        if !text.to_lowercase().contains("answer") {
            prop_assert_eq!(extract_letter(&format!("{text}\n\nAnswer: {letter}")), Some(letter));
        }
    }
}
