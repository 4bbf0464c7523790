//! `ann` used outside the checkout, as `cargo install --path crates/ann-cli` leaves it: run from
//! another folder without `ANN_CACHE_DIR`, it finds the fetched model and data in the user's cache
//! folder (`$XDG_CACHE_HOME/agentic-nn`) and keeps its response cache there.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn ann_run_from_another_folder_finds_the_model_and_data_in_the_users_cache_folder() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fetched = std::env::var_os("ANN_CACHE_DIR").map(PathBuf::from).unwrap_or(workspace.join(".cache"));
    let model = fetched.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let data = fetched.join("data/mmlu-ml.jsonl");
    assert!(model.is_file() && data.is_file(), "run `cargo xtask fetch-model` and `cargo xtask fetch-data` first");

    // The user's cache folder holds the fetched files (links to this checkout's), nothing else.
    let tmp = tempfile::tempdir().unwrap();
    let xdg = tmp.path().join("xdg");
    let user_cache = xdg.join("agentic-nn");
    for dir in ["models", "data"] {
        std::fs::create_dir_all(user_cache.join(dir)).unwrap();
    }
    std::os::unix::fs::symlink(&model, user_cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    std::os::unix::fs::symlink(&data, user_cache.join("data/mmlu-ml.jsonl")).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_ann"))
        .args(["eval", "--benchmark", "mmlu-ml", "--baseline", "direct", "--limit", "1"])
        .current_dir(&elsewhere)
        .env_remove("ANN_CACHE_DIR")
        .env_remove("ANN_HOME")
        .env_remove("ANN_OPENAI_BASE_URL")
        .env_remove("ANN_LOCAL_MODEL")
        .env("XDG_CACHE_HOME", &xdg)
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["summary"]["n"], 1, "one example scored: {result}");
    assert_eq!(result["forward_cost"]["calls"], 1, "one call of the embedded model: {result}");
    assert!(user_cache.join("responses.sqlite").is_file(), "the response cache went to the user's cache folder");
    assert!(!elsewhere.join(".cache").exists(), "nothing was made in the current folder's .cache");
}
