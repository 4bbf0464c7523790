//! `OpenAiConfig::from_env` and `OpenAiModel::from_env`, checked in a child process of this test
//! binary with a controlled environment (tests may not change their own environment).

use std::process::Command;

use ann_llm::{ChatModel, ChatRequest, Message};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};

const CHILD: &str = "ANN_OPENAI_FROM_ENV_CHILD";

fn run_child(case: &str, env: &[(&str, &str)]) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", "from_env_child", "--nocapture", "--test-threads=1"]).env(CHILD, case);
    for var in ["ANN_OPENAI_BASE_URL", "ANN_OPENAI_MODEL", "ANN_OPENAI_API_KEY", "OPENAI_API_KEY"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child case {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "the child case {case} did not run:\n{stdout}");
}

#[test]
fn from_env_reads_the_documented_variables() {
    run_child("unset", &[]);
    run_child("missing-model", &[("ANN_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")]);
    run_child(
        "replicas",
        &[
            ("ANN_OPENAI_BASE_URL", "http://a:8000/v1, http://b:8000/v1"),
            ("ANN_OPENAI_MODEL", "served"),
            ("OPENAI_API_KEY", "sk-x"),
        ],
    );
    run_child("key-sent", &[("ANN_OPENAI_API_KEY", "sk-from-env")]);
}

/// Does nothing unless started by the test above with `ANN_OPENAI_FROM_ENV_CHILD` set.
#[test]
fn from_env_child() {
    let Ok(case) = std::env::var(CHILD) else { return };
    match case.as_str() {
        "unset" => assert_eq!(OpenAiConfig::from_env().unwrap(), None),
        "missing-model" => {
            let err = OpenAiConfig::from_env().unwrap_err();
            assert!(err.to_string().contains("ANN_OPENAI_MODEL"), "{err}");
        }
        "replicas" => {
            let config = OpenAiConfig::from_env().unwrap().unwrap();
            assert_eq!(config.base_urls, ["http://a:8000/v1", "http://b:8000/v1"]);
            assert_eq!(config.model, "served");
            assert_eq!(config.api_key_env, "OPENAI_API_KEY");
            let model = OpenAiModel::from_env(config).unwrap();
            assert_eq!(model.identity(), "openai-compatible:served@http://a:8000/v1");
            assert!(!format!("{model:?}").contains("sk-x"));
        }
        "key-sent" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let server = FakeServer::start(FakeServerConfig::default().keeping_requests()).await.unwrap();
                let config =
                    OpenAiConfig { api_key_env: "ANN_OPENAI_API_KEY".into(), ..OpenAiConfig::new(server.url(), "m") };
                let model = OpenAiModel::from_env(config).unwrap();
                model.complete(&ChatRequest::new("m", vec![Message::user("hi")])).await.unwrap();
                assert_eq!(server.requests()[0].headers["authorization"], "Bearer sk-from-env");
            });
        }
        other => panic!("unknown case {other}"),
    }
}
