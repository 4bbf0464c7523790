//! Loaders on the real fetched file and the committed fixtures; judge scoring with a scripted model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ann_bench_creative_writing::{
    CreativeWriting, CreativeWritingConfig, DATA_FILE, JudgeConfig, PassageEvaluator, check_structure, dabench,
    load_items, to_example, trivia,
};
use ann_eval::{Benchmark, EvalError, Evaluator, Split};
use ann_llm::LlmError;
use ann_test_support::ScriptedModel;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets").join(path)
}

fn real_data_dir() -> PathBuf {
    let dir = ann_eval::data::workspace_data_dir();
    assert!(
        dir.join(DATA_FILE).is_file(),
        "{} is missing: run `cargo xtask fetch-data` first",
        dir.join(DATA_FILE).display()
    );
    dir
}

fn sentences() -> Vec<String> {
    load_items(&fixture("creative-writing/creative-writing-sample.jsonl")).unwrap()[0].sentences.to_vec()
}

/// A passage with the right structure for the first fixture item.
fn good_passage() -> String {
    let s = sentences();
    format!(
        "The house had been quiet since morning. {}\n\nI knocked twice and waited. {}\n\nWhen I told her we had to leave, she frowned. {}\n\nOutside, summer pressed against the windows. {}",
        s[0], s[1], s[2], s[3]
    )
}

fn evaluator(model: &Arc<ScriptedModel>, samples: u32) -> PassageEvaluator {
    let config = CreativeWritingConfig { judge: JudgeConfig { samples, ..Default::default() }, ..Default::default() };
    PassageEvaluator::new(model.clone(), &config)
}

#[test]
fn real_file_has_100_items_split_20_10_70() {
    let dir = real_data_dir();
    let items = load_items(&dir.join(DATA_FILE)).unwrap();
    assert_eq!(items.len(), 100);
    assert!(items.iter().enumerate().all(|(i, item)| item.id == i));
    assert!(items.iter().all(|item| item.sentences.iter().all(|s| !s.trim().is_empty())));
    // A passage that ends its paragraphs with the item's sentences passes the structural check,
    // and one with two paragraphs swapped does not.
    for item in &items {
        let paragraphs: Vec<String> = item.sentences.iter().map(|s| format!("Some lead-in text here. {s}")).collect();
        let s = item.sentences.to_vec();
        assert_eq!(check_structure(&paragraphs.join("\n\n"), &s), Ok(()), "item {}", item.id);
        let swapped = [&paragraphs[1], &paragraphs[0], &paragraphs[2], &paragraphs[3]].map(String::as_str).join("\n\n");
        if s[0] != s[1] {
            assert!(check_structure(&swapped, &s).is_err(), "item {}", item.id);
        }
    }
    let bench = CreativeWriting::load(&dir, Arc::new(ScriptedModel::default()), &Default::default()).unwrap();
    let sizes = [Split::Train, Split::Validation, Split::Test].map(|s| bench.examples(s).len());
    assert_eq!(sizes, [20, 10, 70]);
    let again = CreativeWriting::load(&dir, Arc::new(ScriptedModel::default()), &Default::default()).unwrap();
    assert_eq!(bench.examples(Split::Validation), again.examples(Split::Validation));
}

#[test]
fn bad_rows_name_file_and_line() {
    let err = load_items(&fixture("creative-writing/creative-writing-bad-row.jsonl")).unwrap_err();
    assert!(matches!(err, EvalError::BadRow { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("creative-writing-bad-row.jsonl:2:"), "{err}");
    let err = trivia::load_rows(&fixture("trivia-cw/trivia-cw-bad-row.jsonl")).unwrap_err();
    assert!(matches!(err, EvalError::BadRow { line: 4, .. }), "{err}");
    assert!(err.to_string().contains("2 questions but 1 answer lists"), "{err}");
    let dir = fixture("dabench");
    let err = dabench::load(&dir.join("questions-missing-table.jsonl"), &dir.join("labels.jsonl"), &dir.join("tables"))
        .unwrap_err();
    assert!(matches!(err, EvalError::BadRow { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("nowhere.csv"), "{err}");
}

#[tokio::test]
async fn judge_mean_of_samples_becomes_the_score() {
    let model = Arc::new(ScriptedModel::default());
    for reply in [
        "Flows well.\nReason: the four paragraphs follow one evening.\nThus the coherency score is 8",
        "Thus the coherency score is 7",
        "Score: 9/10",
    ] {
        model.push_reply(reply);
    }
    let eval = evaluator(&model, 3).score(&good_passage(), &sentences()).await.unwrap();
    assert!((eval.score - 0.8).abs() < 1e-12, "{eval:?}");
    assert!(eval.passed);
    assert_eq!(eval.feedback, "coherence 8.0/10 (judge: the four paragraphs follow one evening.)");
    let requests = model.requests();
    assert_eq!(requests.iter().map(|r| r.sample_index).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(requests[0].messages[0].content.contains("Thus the coherency score is {s}"));
    assert!(requests[0].messages[0].content.contains(&sentences()[3]));
}

#[tokio::test]
async fn garbled_judge_replies_are_reasked_then_count_as_zero() {
    // Sample 0 is garbled, its re-ask (index 3) answers: the mean is (6 + 6 + 9) / 3.
    let model = Arc::new(ScriptedModel::default());
    for reply in ["I refuse to grade this.", "coherency score is 6", "coherency score is 9", "coherency score is 6"] {
        model.push_reply(reply);
    }
    let eval = evaluator(&model, 3).score(&good_passage(), &sentences()).await.unwrap();
    assert!((eval.score - 0.7).abs() < 1e-12, "{eval:?}");
    assert_eq!(model.requests().iter().map(|r| r.sample_index).collect::<Vec<_>>(), [0, 1, 2, 3]);

    // Nothing parsable ever: two re-asks, then the garbled samples count as 0. Never a panic.
    let model = Arc::new(ScriptedModel::default().fallback(|_| Ok("???".into())));
    let eval = evaluator(&model, 3).score(&good_passage(), &sentences()).await.unwrap();
    assert_eq!((eval.score, eval.passed), (0.0, false));
    assert_eq!(eval.feedback, "coherence 0.0/10; 3 of 3 judge samples had no parsable score and count as 0");
    assert_eq!(model.calls(), 5);
}

#[tokio::test]
async fn structure_failure_scores_zero_without_a_judge_call() {
    let model = Arc::new(ScriptedModel::default());
    let passage = good_passage().replacen("\n\n", " ", 1);
    let eval = evaluator(&model, 3).score(&passage, &sentences()).await.unwrap();
    assert_eq!((eval.score, eval.passed), (0.0, false));
    assert_eq!(eval.feedback, "structure: expected 4 paragraphs separated by blank lines, found 3");
    assert_eq!(model.calls(), 0);
}

#[tokio::test]
async fn judge_backend_failure_is_an_error() {
    let model = Arc::new(ScriptedModel::default());
    model.push_error(LlmError::Backend("down".into()));
    let err = evaluator(&model, 1).score(&good_passage(), &sentences()).await.unwrap_err();
    assert!(matches!(err, EvalError::Judge(_)), "{err}");
}

#[tokio::test]
async fn benchmark_evaluates_examples_from_the_fixture() {
    let items = load_items(&fixture("creative-writing/creative-writing-sample.jsonl")).unwrap();
    let examples: Vec<_> = items.iter().map(to_example).collect();
    let model = Arc::new(ScriptedModel::default().fallback(|_| Ok("Thus the coherency score is 5".into())));
    let bench = CreativeWriting::from_examples(&examples, &[1, 1, 1], 3, model.clone(), &Default::default()).unwrap();
    let all: Vec<_> =
        [Split::Train, Split::Validation, Split::Test].iter().flat_map(|&s| bench.examples(s).to_vec()).collect();
    let first = all.iter().find(|e| e.id == "creative-writing/0").unwrap();
    let eval = bench.evaluate(first, &good_passage()).await.unwrap();
    assert_eq!((eval.score, eval.passed), (0.5, false));
    assert_eq!(bench.extract_answer(&good_passage()), None);
}

#[tokio::test]
async fn trivia_fixture_loads_and_scores() {
    let rows = trivia::load_rows(&fixture("trivia-cw/trivia-cw-sample.jsonl")).unwrap();
    assert_eq!(rows.len(), 4);
    let bench =
        trivia::TriviaCreativeWriting::from_file(&fixture("trivia-cw/trivia-cw-sample.jsonl"), &[2, 1, 1], 11).unwrap();
    let all: Vec<_> =
        [Split::Train, Split::Validation, Split::Test].iter().flat_map(|&s| bench.examples(s).to_vec()).collect();
    assert_eq!(all.len(), 4);
    let lighthouse = all.iter().find(|e| e.id == "trivia-cw/0").unwrap();
    assert!(lighthouse.input.contains("following 3 questions:\n1. Which planet"), "{}", lighthouse.input);
    let story = "The keeper read Shakespeare aloud while the Pacific roared below.";
    let eval = bench.evaluate(lighthouse, story).await.unwrap();
    assert!((eval.score - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(eval.feedback, "missing answers for questions 1: Which planet is known as the Red Planet?");
    let spider = all.iter().find(|e| e.id == "trivia-cw/2").unwrap();
    let eval = trivia::TriviaScorer.evaluate(spider, "In Tokyo, a spider with eight legs baked bread.").await.unwrap();
    assert!(eval.passed && eval.score == 1.0);
    assert!(
        trivia::TriviaCreativeWriting::from_file(&fixture("trivia-cw/trivia-cw-sample.jsonl"), &trivia::SPLIT_SIZES, 1)
            .is_err()
    );
}

#[tokio::test]
async fn dabench_fixture_loads_and_scores() {
    let dir = fixture("dabench");
    let examples = dabench::load(&dir.join("questions.jsonl"), &dir.join("labels.jsonl"), &dir.join("tables")).unwrap();
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[1].id, "dabench/1");
    assert!(
        examples[1].input.contains("Table people.csv (first lines):\nname,city,age\nAna,Lyon,34"),
        "{}",
        examples[1].input
    );
    assert_eq!(examples[1].reference.as_deref(), Some("@top_city[Lyon] @customers[3]"));
    let scorer = dabench::DaBenchScorer;
    let right = scorer.evaluate(&examples[0], "The mean is @mean_price[4.38].").await.unwrap();
    assert!(right.passed && right.score == 1.0, "{right:?}");
    let half = scorer.evaluate(&examples[1], "@top_city[lyon] @customers[2]").await.unwrap();
    assert_eq!((half.score, half.feedback.as_str()), (0.5, "@customers: expected 3, got 2"));
    let none = scorer.evaluate(&examples[1], "Lyon, 3").await.unwrap();
    assert_eq!((none.score, none.passed), (0.0, false));
}

#[test]
fn starting_networks_have_the_contract_shape() {
    let bench =
        CreativeWriting::from_examples(&[], &[0, 0, 0], 0, Arc::new(ScriptedModel::default()), &Default::default())
            .unwrap();
    let trivia_bench =
        trivia::TriviaCreativeWriting::from_file(&fixture("trivia-cw/trivia-cw-sample.jsonl"), &[0, 0, 0], 0).unwrap();
    let cases: [(&dyn Benchmark, &str); 2] = [(&bench, "creative-writing"), (&trivia_bench, "trivia-cw")];
    for (bench, name) in cases {
        assert_eq!(bench.name(), name);
        let net: serde_json::Value = serde_json::from_str(bench.starting_network()).unwrap();
        assert_eq!(net["version"], 1);
        assert_eq!(net["task_description"], bench.task_description());
        let layers = net["layers"].as_array().unwrap();
        let ids: Vec<&str> = layers.iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["understand", "solve", "verify"]);
        assert_eq!(layers[1]["agents"].as_array().unwrap().len(), 3);
        assert_eq!(layers[1]["default_aggregator"], "select_best");
        for layer in layers {
            for agent in layer["agents"].as_array().unwrap() {
                let prompt = agent["prompt"].as_str().unwrap();
                assert!(prompt.contains("{input}") && prompt.contains("{task}") && prompt.len() <= 4000);
            }
        }
        assert!(layers[2]["output_spec"].as_str().unwrap().contains(bench.answer_format()), "{name}");
    }
}

#[tokio::test]
async fn dabench_folder_loads_as_a_benchmark_or_names_the_missing_file() {
    let examples = dabench::load_dir(&fixture("dabench")).unwrap();
    assert_eq!(examples.len(), 2);
    let bench = dabench::DaBench::from_examples(&examples, &[1, 0, 1], 3).unwrap();
    assert_eq!((bench.name(), bench.answer_format()), ("dabench", dabench::ANSWER_FORMAT));
    let net: serde_json::Value = serde_json::from_str(bench.starting_network()).unwrap();
    assert_eq!(net["task_description"], bench.task_description());
    let last = net["layers"].as_array().unwrap().last().unwrap();
    assert!(last["output_spec"].as_str().unwrap().contains(dabench::ANSWER_FORMAT));
    let test = &bench.examples(Split::Test)[0];
    assert!(bench.evaluate(test, "nothing").await.unwrap().score == 0.0);
    let err = dabench::load_dir(&fixture("no-such-dabench")).unwrap_err().to_string();
    assert!(err.contains("da-dev-questions.jsonl") && err.contains("questions.jsonl"), "{err}");
}
