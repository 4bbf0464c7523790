//! Property tests (stable-toolchain fuzzing, `cargo xtask fuzz --target humaneval_code`): HumanEval
//! code extraction never panics on model text, and a fenced function is found whatever prose
//! surrounds it.

use ann_bench_humaneval::{extract_code, normalize_code};
use ann_test_support::fuzz::{config, model_text, nested};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn humaneval_code(text in prop_oneof![model_text(40), nested("```python\n", "```\n", 500), nested("    ", "x\n", 2000)]) {
        let _ = extract_code(&text, Some("f"));
        let _ = extract_code(&text, None);
        let _ = normalize_code(&text);
    }

    #[test]
    fn humaneval_fenced_function(before in "[a-zA-Z ,.:\n]{0,60}", after in "[a-zA-Z ,.\n]{0,60}", n in any::<i32>()) {
        let body = format!("def f(x):\n    return x + {n}\n");
        let answer = format!("{before}\n```python\n{body}```\n{after}");
        let code = extract_code(&answer, Some("f"));
        prop_assert!(code.as_deref().is_some_and(|c| c.contains(&format!("return x + {n}"))), "{code:?}");
    }
}
