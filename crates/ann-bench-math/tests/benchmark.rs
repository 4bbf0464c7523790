//! Loaders on the committed fixtures (`datasets/math/`), bad rows, splits, scoring and the starting network.

use std::path::{Path, PathBuf};

use ann_bench_math::{
    ANSWER_FORMAT, MathBenchmark, MathConfig, evaluate_answer, load_math_test, load_math_train, load_math500,
};
use ann_eval::{Benchmark, EvalError, Split};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/math").join(name)
}

fn small_config() -> MathConfig {
    MathConfig { train_size: 10, validation_size: 8, test_size: Some(5), seed: 3, require_boxed: false }
}

fn bench() -> MathBenchmark {
    let pool = load_math_train(&fixture("math-train-sample.jsonl")).unwrap();
    let test = load_math500(&fixture("math500-sample.jsonl")).unwrap();
    MathBenchmark::from_problems(&pool, &test, &small_config()).unwrap()
}

#[test]
fn loaders_read_the_fixtures() {
    let train = load_math_train(&fixture("math-train-sample.jsonl")).unwrap();
    assert_eq!(train.len(), 30);
    assert_eq!(train[0].id, "math-train/1");
    assert_eq!(train[0].answer, "0");
    assert_eq!(train[0].level, Some(5));
    assert_eq!(train[0].subject, "Algebra");
    let test = load_math_test(&fixture("math-test-sample.jsonl")).unwrap();
    assert_eq!(test.len(), 5);
    assert_eq!((test[0].id.as_str(), test[0].answer.as_str()), ("math-test/0", "2"));
    let m500 = load_math500(&fixture("math500-sample.jsonl")).unwrap();
    assert_eq!(m500.len(), 12);
    assert_eq!(m500[0].id, "math500/precalculus/807");
    assert_eq!(m500[0].answer, "\\left( 3, \\frac{\\pi}{2} \\right)");
    assert_eq!(m500[0].level, Some(2));
}

fn check_bad_row(result: Result<Vec<ann_bench_math::MathProblem>, EvalError>, file: &str, line: usize, needle: &str) {
    match result {
        Err(EvalError::BadRow { path, line: got, message }) => {
            assert!(path.ends_with(file), "{path:?}");
            assert_eq!(got, line, "{message}");
            assert!(message.contains(needle), "{message}");
            let shown = EvalError::BadRow { path, line: got, message }.to_string();
            assert!(shown.contains(&format!("{file}:{line}:")), "{shown}");
        }
        other => panic!("expected a bad row in {file}, got {other:?}"),
    }
}

#[test]
fn bad_rows_name_file_and_line() {
    check_bad_row(load_math500(&fixture("math500-bad-json.jsonl")), "math500-bad-json.jsonl", 3, "EOF");
    check_bad_row(load_math500(&fixture("math500-missing-answer.jsonl")), "math500-missing-answer.jsonl", 2, "answer");
    check_bad_row(load_math_train(&fixture("math-train-no-answer.jsonl")), "math-train-no-answer.jsonl", 2, "boxed");
}

#[test]
fn missing_file_says_how_to_fetch() {
    let err = load_math500(&fixture("no-such-file.jsonl")).unwrap_err();
    assert!(err.to_string().contains("cargo xtask fetch-data"), "{err}");
}

#[test]
fn splits_are_seeded_disjoint_and_sized() {
    let b = bench();
    let ids = |s: Split| b.examples(s).iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(Split::Train).len(), 10);
    assert_eq!(ids(Split::Validation).len(), 8);
    assert_eq!(ids(Split::Test).len(), 5);
    assert!(ids(Split::Train).iter().all(|id| !ids(Split::Validation).contains(id)));
    assert!(ids(Split::Train).iter().chain(&ids(Split::Validation)).all(|id| id.starts_with("math-train/")));
    assert!(ids(Split::Test).iter().all(|id| id.starts_with("math500/")));
    // Same seed, same split; another seed, another split.
    assert_eq!(ids(Split::Train), bench().examples(Split::Train).iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    let pool = load_math_train(&fixture("math-train-sample.jsonl")).unwrap();
    let test = load_math500(&fixture("math500-sample.jsonl")).unwrap();
    let other = MathBenchmark::from_problems(&pool, &test, &MathConfig { seed: 4, ..small_config() }).unwrap();
    assert_ne!(ids(Split::Train), other.examples(Split::Train).iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    // Asking for more than exists is a configuration error.
    let too_many = MathConfig { train_size: 25, validation_size: 10, ..small_config() };
    assert!(MathBenchmark::from_problems(&pool, &test, &too_many).is_err());
}

#[test]
fn examples_carry_input_reference_and_metadata() {
    let b = bench();
    let e = &b.examples(Split::Test)[0];
    assert!(e.input.starts_with("Problem:\n"), "{}", e.input);
    assert!(e.reference.is_some());
    assert!(e.metadata.contains_key("subject") && e.metadata.contains_key("level"), "{:?}", e.metadata);
}

fn check_eval(reference: &str, output: &str, require_boxed: bool, passed: bool, feedback: &str) {
    let ev = evaluate_answer(reference, output, require_boxed);
    assert_eq!(ev.passed, passed, "{output:?}: {}", ev.feedback);
    assert_eq!(ev.score, if passed { 1.0 } else { 0.0 });
    assert_eq!(ev.feedback, feedback, "{output:?}");
}

#[test]
fn scoring_and_feedback() {
    let rows: &[(&str, &str, bool, bool, &str)] = &[
        ("\\frac{1}{2}", "so $\\boxed{0.5}$", false, true, "correct: extracted `0.5`"),
        (
            "\\frac{1}{2}",
            "so $\\boxed{0.49}$",
            false,
            false,
            "extracted `0.49`, expected `\\frac{1}{2}` after normalisation",
        ),
        ("3", "I give up.", false, false, "no \\boxed{} answer found"),
        (
            "3",
            "The answer is 3.",
            false,
            true,
            "correct: extracted `3` (no \\boxed{} answer; taken from an 'answer is' phrase)",
        ),
        ("3", "The answer is 3.", true, false, "no \\boxed{} answer found"),
        ("(1,2]", "\\boxed{(1,2)}", false, false, "extracted `(1,2)`, expected `(1,2]` after normalisation"),
        ("90^\\circ", "\\boxed{90^{\\circ}}", false, true, "correct: extracted `90`"),
    ];
    for (reference, output, require_boxed, passed, feedback) in rows {
        check_eval(reference, output, *require_boxed, *passed, feedback);
    }
}

#[tokio::test]
async fn benchmark_trait() {
    let b = bench();
    assert_eq!(b.name(), "math");
    assert_eq!(b.answer_format(), ANSWER_FORMAT);
    assert!(b.task_description().contains("\\boxed{}"));
    // Majority voting keys: equivalent answers share a key.
    assert_eq!(b.extract_answer("... \\boxed{x = 5}"), b.extract_answer("so \\boxed{5}."));
    assert_eq!(b.extract_answer("\\boxed{2, 1}"), b.extract_answer("\\boxed{1,2}"));
    assert_ne!(b.extract_answer("\\boxed{0.333}"), b.extract_answer("\\boxed{\\frac13}"));
    assert_eq!(b.extract_answer("nothing here"), None);
    let e = b.examples(Split::Test)[0].clone();
    let reference = e.reference.clone().unwrap();
    let good = b.evaluate(&e, &format!("Work. Final: $\\boxed{{{reference}}}$")).await.unwrap();
    assert!(good.passed, "{}", good.feedback);
    let bad = b.evaluate(&e, "\\boxed{-12345}").await.unwrap();
    assert!(!bad.passed && bad.feedback.starts_with("extracted `-12345`"), "{}", bad.feedback);
    let mut no_ref = e.clone();
    no_ref.reference = None;
    assert!(matches!(b.evaluate(&no_ref, "\\boxed{1}").await, Err(EvalError::Config(_))));
}

#[test]
fn starting_network_follows_the_contract() {
    let b = bench();
    let net: serde_json::Value = serde_json::from_str(b.starting_network()).unwrap();
    assert_eq!(net["version"], 1);
    let layers = net["layers"].as_array().unwrap();
    let ids: Vec<&str> = layers.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["understand", "solve", "verify"]);
    let agents = |i: usize| layers[i]["agents"].as_array().unwrap().len();
    assert_eq!((agents(0), agents(1), agents(2)), (1, 3, 1));
    let names = |i: usize| -> Vec<&str> {
        layers[i]["aggregators"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect()
    };
    assert_eq!(names(0), ["single"]);
    assert_eq!(names(1), ["majority_vote", "debate", "llm_synthesis", "select_best"]);
    assert_eq!(names(2), ["single", "critic_revise"]);
    let defaults: Vec<&str> = layers.iter().map(|l| l["default_aggregator"].as_str().unwrap()).collect();
    assert_eq!(defaults, ["single", "majority_vote", "single"]);
    for layer in layers {
        for key in ["subtask", "routing_hint", "output_spec"] {
            assert!(layer[key].is_string(), "{key}");
        }
        for agent in layer["agents"].as_array().unwrap() {
            let prompt = agent["prompt"].as_str().unwrap();
            assert!(prompt.contains("{input}") && prompt.contains("{task}"), "{prompt}");
            assert!(prompt.len() <= 4000);
            let id = agent["id"].as_str().unwrap();
            assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'));
            assert!(agent["role"].is_string() && agent["temperature"].is_number());
        }
    }
    assert!(layers[2]["output_spec"].as_str().unwrap().contains(b.answer_format()));
}
