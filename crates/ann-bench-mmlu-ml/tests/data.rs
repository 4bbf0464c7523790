//! The loader on the real fetched file and on the committed fixtures; the network JSON's shape.

use std::path::{Path, PathBuf};

use ann_bench_mmlu_ml::{MmluMl, SPLIT_SEED, load_rows};
use ann_eval::{Benchmark, EvalError, Split};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mmlu-ml").join(name)
}

fn real_data_dir() -> PathBuf {
    let dir = ann_eval::data::workspace_data_dir();
    assert!(
        dir.join(ann_bench_mmlu_ml::DATA_FILE).is_file(),
        "{} is missing: run `cargo xtask fetch-data` first",
        dir.join(ann_bench_mmlu_ml::DATA_FILE).display()
    );
    dir
}

#[test]
fn real_file_has_112_questions_split_40_20_52() {
    let dir = real_data_dir();
    let rows = load_rows(&dir.join(ann_bench_mmlu_ml::DATA_FILE)).unwrap();
    assert_eq!(rows.len(), 112);
    assert!(rows.iter().all(|r| r.subject == "machine_learning"));
    let bench = MmluMl::load(&dir).unwrap();
    let sizes = [Split::Train, Split::Validation, Split::Test].map(|s| bench.examples(s).len());
    assert_eq!(sizes, [40, 20, 52]);
    let mut ids: Vec<&str> = [Split::Train, Split::Validation, Split::Test]
        .iter()
        .flat_map(|&s| bench.examples(s).iter().map(|e| e.id.as_str()))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 112);
    // The split is a pure function of the file and the seed.
    let again = MmluMl::load(&dir).unwrap();
    assert_eq!(bench.examples(Split::Test), again.examples(Split::Test));
    for example in bench.examples(Split::Test) {
        assert!(example.input.contains("\nD) "), "{}", example.input);
        assert!(matches!(example.reference.as_deref(), Some("A" | "B" | "C" | "D")));
    }
}

#[tokio::test]
async fn gold_letters_score_one_and_others_zero() {
    let bench = MmluMl::load(&real_data_dir()).unwrap();
    for example in bench.examples(Split::Train) {
        let gold = example.reference.clone().unwrap();
        let good = bench.evaluate(example, &format!("Some reasoning.\nAnswer: {gold}")).await.unwrap();
        assert!(good.passed && good.score == 1.0, "{good:?}");
        let wrong = if gold == "A" { "B" } else { "A" };
        let bad = bench.evaluate(example, &format!("Answer: {wrong}")).await.unwrap();
        assert_eq!(bad.feedback, format!("answered {wrong}, correct is {gold}"));
        assert_eq!(bench.evaluate(example, "no idea").await.unwrap().feedback, "no 'Answer: X' line");
    }
}

#[test]
fn fixture_loads_and_bad_row_names_file_and_line() {
    let rows = load_rows(&fixture("mmlu-ml-sample.jsonl")).unwrap();
    assert_eq!(rows.len(), 4);
    let bench = MmluMl::from_examples(
        &rows.iter().enumerate().map(|(i, r)| ann_bench_mmlu_ml::to_example(i, r)).collect::<Vec<_>>(),
        &[2, 1, 1],
        SPLIT_SEED,
    )
    .unwrap();
    assert_eq!(bench.examples(Split::Test).len(), 1);
    let err = load_rows(&fixture("mmlu-ml-bad-row.jsonl")).unwrap_err();
    assert!(matches!(err, EvalError::BadRow { line: 3, .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("mmlu-ml-bad-row.jsonl:3:") && message.contains("answer index 7"), "{message}");
    assert!(MmluMl::from_file(&fixture("mmlu-ml-sample.jsonl"), SPLIT_SEED).is_err(), "4 rows cannot fill 40/20/52");
}

#[test]
fn starting_network_has_the_contract_shape() {
    let bench = MmluMl::from_examples(&[], &[0, 0, 0], 0).unwrap();
    let net: serde_json::Value = serde_json::from_str(bench.starting_network()).unwrap();
    assert_eq!(net["version"], 1);
    let layers = net["layers"].as_array().unwrap();
    let ids: Vec<&str> = layers.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["understand", "solve", "verify"]);
    assert_eq!(layers[1]["agents"].as_array().unwrap().len(), 3);
    assert_eq!(layers[1]["default_aggregator"], "majority_vote");
    for layer in layers {
        for agent in layer["agents"].as_array().unwrap() {
            let prompt = agent["prompt"].as_str().unwrap();
            assert!(prompt.contains("{input}") && prompt.contains("{task}") && prompt.len() <= 4000);
        }
    }
    assert!(layers[2]["output_spec"].as_str().unwrap().contains(bench.answer_format()));
    assert_eq!(net["task_description"], bench.task_description());
}
