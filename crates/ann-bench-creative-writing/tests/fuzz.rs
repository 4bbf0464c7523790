//! Property tests (stable-toolchain fuzzing, `cargo xtask fuzz --target creative_writing`): the
//! creative-writing structure check, the judge reply parser, Trivia and DABench answer reading
//! never panic on model text; a judge score is within 1..=10; a well-formed passage passes.

use ann_bench_creative_writing::dabench::{parse_closed_form, values_equal};
use ann_bench_creative_writing::structure::paragraphs;
use ann_bench_creative_writing::trivia::normalize_answer;
use ann_bench_creative_writing::{check_structure, parse_reply};
use ann_test_support::fuzz::{config, model_text};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn creative_writing(text in model_text(40), other in model_text(8)) {
        let sentences = vec!["The kettle sang.".to_string(), other.clone()];
        let _ = check_structure(&text, &sentences);
        let _ = paragraphs(&text);
        if let Some(reply) = parse_reply(&text) {
            prop_assert!((1.0..=10.0).contains(&reply.score), "{}", reply.score);
        }
        let _ = parse_closed_form(&text);
        let _ = values_equal(&text, &other);
        let _ = normalize_answer(&text);
    }

    #[test]
    fn creative_writing_structure(parts in prop::collection::vec(("[A-Z][a-z ]{2,30}\\.", "[A-Z][a-z]{2,12} [a-z]{2,12}\\."), 1..5)) {
        let sentences: Vec<String> = parts.iter().map(|(_, s)| s.clone()).collect();
        let passage = parts.iter().map(|(lead, s)| format!("{lead} {s}")).collect::<Vec<_>>().join("\n\n");
        prop_assert_eq!(check_structure(&passage, &sentences), Ok(()));
    }
}
