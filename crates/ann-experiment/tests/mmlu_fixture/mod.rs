//! The committed MMLU-ML fixture as a benchmark, and the workspace root, for the tests that run an
//! experiment on it (`mod mmlu_fixture;`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ann_bench_mmlu_ml::MmluMl;
use ann_eval::Benchmark;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The four committed MMLU-ML fixture rows, split 2 train / 1 validation / 1 test.
pub fn fixture_benchmark() -> Arc<dyn Benchmark> {
    let rows = ann_bench_mmlu_ml::load_rows(&workspace().join("datasets/mmlu-ml/mmlu-ml-sample.jsonl")).unwrap();
    let examples: Vec<_> = rows.iter().enumerate().map(|(i, r)| ann_bench_mmlu_ml::to_example(i, r)).collect();
    Arc::new(MmluMl::from_examples(&examples, &[2, 1, 1], 7).unwrap())
}
