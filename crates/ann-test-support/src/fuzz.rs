//! Shared settings and input strategies of the property tests (`tests/fuzz.rs` of the parsing
//! crates), the stable-toolchain fuzzing that `cargo xtask fuzz` runs for longer.
//!
//! In an ordinary `cargo test` each property runs [`DEFAULT_CASES`] cases from a fixed seed, so CI
//! is quick and repeatable; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` (what `cargo xtask fuzz`
//! sets) override both. A failure is shrunk and its seed saved beside the test file
//! (`tests/fuzz.proptest-regressions`), which is committed and replayed first by every later run.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Cases per property in an ordinary `cargo test`.
pub const DEFAULT_CASES: u32 = 64;

/// The property tests' configuration: [`DEFAULT_CASES`] from seed 0 unless the environment says.
pub fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0);
    }
    config
}

/// Pieces of the text models write and parsers look for: JSON, tags, LaTeX, code fences, numbers
/// at the edges of their types.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    ":",
    ",",
    "\\",
    "\n",
    " ",
    "  ",
    "\t",
    "null",
    "true",
    "false",
    "-",
    ".",
    "0",
    "1",
    "9",
    "1e308",
    "-1e308",
    "18446744073709551616",
    "NaN",
    "0.5",
    "\"op\"",
    "\"layer\"",
    "\"agent\"",
    "\"value\"",
    "\"set_prompt\"",
    "\"add_agent\"",
    "\"remove_layer\"",
    "\"blame\"",
    "\"layers\"",
    "\"diagnosis\"",
    "\"aggregator\"",
    "\"reason\"",
    "\"single\"",
    "\"debate\"",
    "<patch>",
    "</patch>",
    "<gradient>",
    "</gradient>",
    "<critique>",
    "</critique>",
    "<requirement>",
    "</requirement>",
    "<requirement_for_previous>",
    "\\boxed{",
    "\\boxed ",
    "\\fbox{",
    "\\frac{",
    "\\sqrt{",
    "\\dfrac",
    "\\text{",
    "\\left(",
    "\\right)",
    "^",
    "!",
    "*",
    "/",
    "+",
    "=",
    "\\pi",
    "\\infty",
    "x",
    "Answer:",
    "answer is",
    "(A)",
    "B)",
    "C.",
    "D",
    "Option A is wrong",
    "```",
    "```python\n",
    "def f(x):\n    return x\n",
    "    ",
    "import os\n",
    "Paragraph one.",
    "\n\n",
    "Score: 7",
    "\"score\": 8",
    "é",
    "🦀",
    "\u{0}",
    "\u{202e}",
];

/// Text like a model's answer, up to about `max_pieces` fragments or arbitrary characters.
pub fn model_text(max_pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
        1 => "[a-zA-Z0-9 ]{1,12}",
    ];
    proptest::collection::vec(piece, 0..max_pieces).prop_map(|pieces| pieces.concat())
}

/// `open` repeated `depth` times, then `inner` and `close` as often: deep nesting.
pub fn nested(open: &'static str, close: &'static str, max_depth: usize) -> impl Strategy<Value = String> {
    (0..max_depth, model_text(8))
        .prop_map(move |(depth, inner)| format!("{}{inner}{}", open.repeat(depth), close.repeat(depth)))
}
