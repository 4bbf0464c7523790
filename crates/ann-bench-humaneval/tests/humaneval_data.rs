//! The real HumanEval data (fetched by `cargo xtask fetch-data`) through the real sandbox: all 164
//! canonical solutions pass, a body of `pass` fails all 164; plus the benchmark's split, network and
//! trait methods, and the committed fixtures.

mod common;

use std::sync::Arc;

use ann_bench_humaneval::{
    HumanEval, HumanEvalConfig, Problem, ProblemSpec, Sandbox, SandboxConfig, evaluate_answer, evaluate_completion,
    load_problems,
};
use ann_eval::{Benchmark, EvalError, Split};
use futures::future::join_all;

fn real_problems() -> Vec<Problem> {
    let path = ann_eval::data::workspace_data_dir().join("humaneval.jsonl");
    let problems = load_problems(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(problems.len(), 164);
    problems
}

async fn sandbox() -> Arc<Sandbox> {
    Arc::new(Sandbox::new(SandboxConfig::default()).await.unwrap_or_else(|e| panic!("{e}")))
}

#[tokio::test]
async fn all_164_canonical_solutions_pass_as_body_and_as_full_function() {
    let problems = real_problems();
    let sandbox = sandbox().await;
    let evals = join_all(problems.iter().map(|p| {
        let sandbox = sandbox.clone();
        async move {
            let body = evaluate_completion(&sandbox, ProblemSpec::of(p), &p.canonical_solution).await.unwrap();
            // The same solution as a model would answer: one fenced block with the complete function.
            let answer = format!("Here is the code.\n\n```python\n{}{}```\n", p.prompt, p.canonical_solution);
            let full = evaluate_answer(&sandbox, ProblemSpec::of(p), &answer).await.unwrap();
            (p.task_id.clone(), body, full)
        }
    }))
    .await;
    let failed: Vec<String> = evals
        .iter()
        .flat_map(|(id, body, full)| {
            [(body, "body"), (full, "full")]
                .into_iter()
                .filter(|(e, _)| !e.passed || e.score != 1.0)
                .map(move |(e, how)| format!("{id} ({how}): {}", e.feedback))
        })
        .collect();
    assert!(failed.is_empty(), "{} failures ({}):\n{}", failed.len(), sandbox.describe(), failed.join("\n"));
    assert_eq!(evals.len(), 164);
}

#[tokio::test]
async fn a_body_of_pass_fails_all_164_with_feedback() {
    let problems = real_problems();
    let sandbox = sandbox().await;
    let evals =
        join_all(problems.iter().map(|p| {
            let sandbox = sandbox.clone();
            async move {
                (p.task_id.clone(), evaluate_completion(&sandbox, ProblemSpec::of(p), "    pass\n").await.unwrap())
            }
        }))
        .await;
    let passed: Vec<&String> = evals.iter().filter(|(_, e)| e.passed || e.score != 0.0).map(|(id, _)| id).collect();
    assert!(passed.is_empty(), "passed with `pass`: {passed:?}");
    for (id, e) in &evals {
        assert!(e.feedback.starts_with("failed: ") && e.feedback.chars().count() <= 500, "{id}: {}", e.feedback);
    }
    let at_assert = evals.iter().filter(|(_, e)| e.feedback.contains(" at `assert")).count();
    assert!(at_assert >= 150, "only {at_assert} of 164 feedbacks name the failing assert");
}

#[tokio::test]
async fn benchmark_splits_network_and_evaluation() {
    let path = ann_eval::data::workspace_data_dir().join("humaneval.jsonl");
    let config = HumanEvalConfig::default();
    let bench = HumanEval::load(&path, &config).await.unwrap();
    let again = HumanEval::from_problems(&real_problems(), &config, bench.sandbox().clone()).unwrap();
    let sizes = [Split::Train, Split::Validation, Split::Test].map(|s| bench.examples(s).len());
    assert_eq!(sizes, [32, 16, 116]);
    let mut ids: Vec<&str> = [Split::Train, Split::Validation, Split::Test]
        .iter()
        .flat_map(|&s| bench.examples(s).iter().map(|e| e.id.as_str()))
        .collect();
    for split in [Split::Train, Split::Validation, Split::Test] {
        assert_eq!(bench.examples(split), again.examples(split), "the split is deterministic");
    }
    let other = HumanEval::from_problems(
        &real_problems(),
        &HumanEvalConfig { seed: 1, ..config.clone() },
        bench.sandbox().clone(),
    )
    .unwrap();
    assert_ne!(bench.examples(Split::Train), other.examples(Split::Train), "the seed matters");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 164, "splits are disjoint and cover the data");

    assert_eq!(bench.name(), "humaneval");
    assert!(bench.task_description().contains(bench.answer_format()));

    // Network: the default starting shape with the answer-format rule in the last output spec.
    let net: serde_json::Value = serde_json::from_str(bench.starting_network()).unwrap();
    assert_eq!(net["version"], 1);
    let layers = net["layers"].as_array().unwrap();
    let shape: Vec<(&str, usize, &str)> = layers
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap(),
                l["agents"].as_array().unwrap().len(),
                l["default_aggregator"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(shape, [("understand", 1, "single"), ("solve", 3, "majority_vote"), ("verify", 1, "single")]);
    assert_eq!(
        layers[1]["aggregators"],
        serde_json::json!(["majority_vote", "debate", "llm_synthesis", "select_best"])
    );
    assert_eq!(layers[2]["aggregators"], serde_json::json!(["single", "critic_revise"]));
    assert!(layers[2]["output_spec"].as_str().unwrap().contains(bench.answer_format()));
    for agent in layers.iter().flat_map(|l| l["agents"].as_array().unwrap()) {
        let prompt = agent["prompt"].as_str().unwrap();
        assert!(prompt.contains("{input}") && prompt.chars().count() <= 4000, "{prompt}");
    }

    // Through the trait, on a training example: the reference passes, a wrong answer fails.
    let example = &bench.examples(Split::Train)[0];
    let reference = example.reference.clone().unwrap();
    let good = bench.evaluate(example, &format!("```python\n{reference}```")).await.unwrap();
    assert!(good.passed, "{}", good.feedback);
    let none = bench.evaluate(example, "I do not know.").await.unwrap();
    assert!(!none.passed);
    let no_code = bench.evaluate(example, "").await.unwrap();
    assert!(no_code.feedback.contains("no Python code"), "{}", no_code.feedback);
    let mut broken = example.clone();
    broken.metadata.remove("test");
    assert!(matches!(bench.evaluate(&broken, "x").await, Err(EvalError::Config(_))));

    // Majority-voting key: the same code with other comments and fences votes together.
    let a = bench.extract_answer("```python\ndef f(x):\n    # double\n    return 2 * x\n```").unwrap();
    let b = bench.extract_answer("Answer:\n```py\ndef f(x):\n    return 2 * x  # twice\n```\n").unwrap();
    assert_eq!(a, b);
    assert_eq!(bench.extract_answer("  "), None);
}

#[tokio::test]
async fn feedback_names_the_failing_assertion() {
    let problems = load_problems(&common::fixtures().join("humaneval-sample.jsonl")).unwrap();
    let p = problems.iter().find(|p| p.task_id == "HumanEval/0").unwrap();
    let sandbox = sandbox().await;
    let spec = ProblemSpec::of(p);
    let check = async |answer: &str| evaluate_answer(&sandbox, spec, answer).await.unwrap().feedback;
    assert_eq!(
        check("```python\ndef has_close_elements(numbers, threshold):\n    return False\n```").await,
        "failed: AssertionError at `assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True`"
    );
    assert_eq!(
        check("    return len(numbers) > 5\n").await,
        "failed: AssertionError at `assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False`"
    );
    assert_eq!(
        check("```python\ndef has_close_elements(numbers, threshold):\n    return numbers[10] > threshold\n```").await,
        "failed: IndexError: list index out of range at `assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True` \
         (raised in `has_close_elements` at `return numbers[10] > threshold`)"
    );
    assert_eq!(
        check("```python\ndef has_close_elements(numbers, threshold)\n    return True\n```").await,
        "syntax error: expected ':' at `def has_close_elements(numbers, threshold)`"
    );
    assert_eq!(check("```python\nwhile True:\n    pass\n```").await, "timed out after 3 s");
    assert_eq!(
        check("```python\nimport sys\ndef has_close_elements(numbers, threshold):\n    return True\nsys.exit(0)\n```")
            .await,
        "failed: the program exited before the tests finished (sys.exit or os._exit?)"
    );
    assert_eq!(
        check("```python\ndef has_close_elements(numbers, threshold):\n    return input() == 'y'\n```").await,
        "failed: EOFError: EOF when reading a line at `assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True` \
         (raised in `has_close_elements` at `return input() == 'y'`)"
    );
}

#[test]
fn fixtures_load_and_a_bad_row_names_file_and_line() {
    let sample = load_problems(&common::fixtures().join("humaneval-sample.jsonl")).unwrap();
    assert_eq!(sample.len(), 5);
    let bad = common::fixtures().join("humaneval-bad-row.jsonl");
    let err = load_problems(&bad).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:3: missing field `test`", bad.display())), "{err}");
    let missing = load_problems(&common::fixtures().join("nope.jsonl")).unwrap_err().to_string();
    assert!(missing.contains("cargo xtask fetch-data"), "{missing}");
}
