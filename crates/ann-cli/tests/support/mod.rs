//! What the tests that run `ann` as a subprocess share (`mod support;`): the workspace root, the
//! fetched data, an MMLU-ML experiment config, synthetic MMLU rows, the `ann` command pointed at an
//! OpenAI-compatible endpoint, and its output as text.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fetched benchmark data (`$ANN_CACHE_DIR/data`, else the workspace's `.cache/data`).
pub fn fetched_data() -> PathBuf {
    let cache = std::env::var_os("ANN_CACHE_DIR").map(PathBuf::from).unwrap_or(workspace().join(".cache"));
    let data = cache.join("data");
    assert!(data.join("mmlu-ml.jsonl").is_file(), "run `cargo xtask fetch-data` first");
    data
}

/// Write `home/exp.toml`: the `mmlu-ml` experiment `name` on the fetched data with `(train,
/// validation, test)` examples, the demo's network, a response cache at `home/responses.sqlite`
/// (with `cache_extra`, TOML lines of the `[cache]` table), `epochs` epochs of batches of 2.
pub fn mmlu_experiment(
    home: &Path,
    name: &str,
    (train, validation, test): (usize, usize, usize),
    epochs: usize,
    cache_extra: &str,
) -> PathBuf {
    let config = home.join("exp.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"{name}\"\n[benchmark]\nname = \"mmlu-ml\"\ntrain = {train}\nvalidation = {validation}\n\
             test = {test}\ndata_dir = {:?}\nnetwork = {:?}\n[cache]\npath = \"responses.sqlite\"\n{cache_extra}\
             [train]\nepochs = {epochs}\nbatch_size = 2\n",
            fetched_data().to_str().unwrap(),
            workspace().join("experiments/demo-network.json").to_str().unwrap()
        ),
    )
    .unwrap();
    config
}

/// `n` synthetic MMLU machine-learning rows (the format of `mmlu-ml.jsonl`), correct answer `B`.
pub fn synthetic_mmlu(n: usize) -> String {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "question": format!("Synthetic question {i}: which choice is right?"),
                "type": "machine_learning",
                "choices": ["wrong", "right", "wrong too", "also wrong"],
                "answer": 1,
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// `ann --home HOME ARGS` from `home`, against the OpenAI-compatible endpoint at `url` (model
/// `fake-model`, no API key), with its own cache folder `home/cache` and its output captured;
/// a test adds or overrides environment variables on the command it gets.
pub fn ann_at(home: &Path, url: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ann"));
    command
        .current_dir(home)
        .args(["--home", home.to_str().unwrap()])
        .args(args)
        .env("ANN_CACHE_DIR", home.join("cache"))
        .env("ANN_OPENAI_BASE_URL", url)
        .env("ANN_OPENAI_MODEL", "fake-model")
        .env_remove("ANN_OPENAI_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
