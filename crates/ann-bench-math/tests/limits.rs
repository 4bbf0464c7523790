//! Hostile answers within bounds: deep nesting never overflows a 2 MiB stack, and answers past the
//! size, depth or work bounds are not equivalent to anything (each test would take seconds, minutes
//! or abort the process without the bounds; none asserts a time).

use ann_bench_math::expr::parse_expr;
use ann_bench_math::normalize::clean;
use ann_bench_math::{extract, is_equiv};

/// Run `f` on a thread with tokio's default worker stack (2 MiB), as the evaluator does.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap();
}

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// `deep` is equivalent neither to `1` nor to `other`, in both orders.
fn never_equivalent(deep: &str, other: &str) {
    for gold in ["1", other] {
        assert!(!is_equiv(deep, gold), "{}... vs {gold:?}", &deep[..40.min(deep.len())]);
        assert!(!is_equiv(gold, deep), "{gold:?} vs {}...", &deep[..40.min(deep.len())]);
    }
}

/// Nesting forms at `depth`: brackets of each kind, `\frac`, `\sqrt`, text groups, sets, tuples.
fn deep_forms(depth: usize) -> Vec<String> {
    vec![
        nested("(", "1", ")", depth),
        nested("[", "1", "]", depth),
        nested("{", "1", "}", depth),
        nested("\\frac{", "1", "}{1}", depth),
        nested("\\sqrt{", "1", "}", depth),
        nested("\\sqrt", "1", "", depth),
        nested("-", "1", "", depth),
        nested("2^{", "1", "}", depth),
        nested("\\text{", "1", "}", depth),
        nested("\\{", "1", "\\}", depth),
        nested("(1,", "1", ")", depth),
        nested("\\{1,", "1", "\\}", depth),
        nested("\\begin{pmatrix}", "1", "\\end{pmatrix}", depth),
        nested("x=", "1", "", depth),
        format!("\\boxed{{{}}}", nested("(", "1", ")", depth)),
    ]
}

#[test]
fn nesting_of_100000_levels_on_a_2_mib_stack_is_unparsable() {
    on_small_stack(|| {
        for deep in deep_forms(100_000) {
            never_equivalent(&deep, &deep.replacen('1', "2", 1));
            assert!(parse_expr(&deep).is_none());
            let _ = clean(&deep);
            let _ = extract(&deep);
        }
    });
}

#[test]
fn nesting_past_the_depth_bound_is_unparsable_below_the_size_bound() {
    on_small_stack(|| {
        // Short enough for every size bound (under 2,000 bytes), too deep for the depth bound: these
        // evaluated to 1 (or overflowed the stack) before the bound.
        for (open, close, depth) in [("(", ")", 900), ("\\sqrt{", "}", 250), ("\\frac{", "}{1}", 150), ("{", "}", 900)]
        {
            let deep = nested(open, "1", close, depth);
            assert!(deep.len() < 2_000);
            never_equivalent(&deep, &nested(open, "1 ", close, depth));
            assert!(parse_expr(&deep).is_none(), "{open} x {depth}");
        }
    });
}

#[test]
fn nesting_within_the_depth_bound_still_parses_on_a_2_mib_stack() {
    on_small_stack(|| {
        for (open, close) in [("(", ")"), ("\\sqrt{", "}"), ("\\frac{", "}{1}"), ("{", "}"), ("\\text{", "}")] {
            let deep = nested(open, "1", close, 40);
            assert!(is_equiv(&deep, "1"), "{deep}");
            assert!(is_equiv("1", &deep), "{deep}");
        }
        assert!(is_equiv(&nested("(1,", "1", ")", 30), &nested("(1, ", "1", ")", 30)));
    });
}

/// `item` repeated `n` times as a list, against the same list with `respelled` items: equal values,
/// different strings, so only evaluation can find them equal.
fn repeated_list_is_unparsable(item: &str, respelled: &str, n: usize) {
    let a = vec![item; n].join(",");
    let b = vec![respelled; n].join(",");
    assert!(!is_equiv(&a, &b), "{n} x {item:?}");
    assert!(!is_equiv(&b, &a), "{n} x {respelled:?}");
    // One alone is still evaluated.
    assert!(is_equiv(item, respelled), "{item:?} vs {respelled:?}");
}

#[test]
fn many_large_factorials_exhaust_the_work_budget() {
    // 250 copies of `5000!,`: 1.5 KB that took 0.8 s to compare (16,000 copies: 53 s).
    repeated_list_is_unparsable("5000!", "5000 !", 250);
    repeated_list_is_unparsable("\\binom{10000}{5000}", "\\binom{10000} {5000}", 100);
}

#[test]
fn many_large_square_roots_exhaust_the_work_budget() {
    // A prime just under 2^40: factoring it is 2^20 trial divisions each time.
    repeated_list_is_unparsable("\\sqrt{1099511627689}", "\\sqrt {1099511627689}", 100);
    repeated_list_is_unparsable("\\sqrt[3]{1099511627689}", "\\sqrt[3] {1099511627689}", 100);
}

#[test]
fn many_large_powers_exhaust_the_work_budget() {
    repeated_list_is_unparsable("2^{60000}", "2^ {60000}", 100);
}

#[test]
fn products_of_large_numbers_are_bounded() {
    // Each power is allowed; their product (a third of a second each, in gcd reductions) is not.
    let a = "3^{60000} \\cdot 3^{60000} \\cdot 3^{60000}";
    assert!(!is_equiv(a, "3^{60000} 3^{60000} 3^{60000}"));
    assert!(parse_expr(a).is_none());
    assert!(parse_expr("3^{60000}").is_some());
    assert!(is_equiv("3^{6000} \\cdot 3^{6000}", "3^{6000} 3^{6000}"));
}

#[test]
fn answers_past_the_size_bound_are_unparsable() {
    // 6,000 bytes: a list that used to be compared item by item.
    let a = vec!["1"; 3_000].join(",");
    let b = vec!["1"; 3_000].join(", ");
    assert!(!is_equiv(&a, &b));
    assert!(!is_equiv(&a, &a), "not even equivalent to itself");
    // A nested tuple of 16,000 levels took 12 s and 2.5 GB.
    let deep = nested("(1,", "1", ")", 16_000);
    assert!(!is_equiv(&deep, &nested("(1, ", "1", ")", 16_000)));
}
