//! Tests with the real SmolLM2 model (fetch it with `cargo xtask fetch-model`), loaded once per binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ann_llm::{ChatModel, ChatRequest, FinishReason, LlmError, Message, ResponseFormat};
use ann_llm_local::{LocalConfig, LocalError, LocalModel, MODEL_ENV, PINNED_FILE_NAME, PINNED_SHA256};

/// `$ANN_LOCAL_MODEL`, else the pinned file in `$ANN_CACHE_DIR` or `<workspace>/.cache`.
fn model_path() -> PathBuf {
    if let Some(p) = std::env::var_os(MODEL_ENV) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("ANN_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
    ann_llm_local::pinned_model_path(&cache)
}

fn model() -> &'static LocalModel {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = model_path();
        let opened = if std::env::var_os(MODEL_ENV).is_some() {
            LocalModel::open(&path, LocalConfig::default())
        } else {
            LocalModel::open_pinned(&path, LocalConfig::default())
        };
        opened.unwrap_or_else(|e| panic!("cannot open the embedded model: {e}\nRun `cargo xtask fetch-model` first."))
    })
}

fn ask(question: &str) -> ChatRequest {
    ChatRequest::new("local", vec![Message::user(question)])
}

#[tokio::test]
async fn greedy_output_is_identical_across_runs_and_cache_hits() {
    let req = ChatRequest::new(
        "local",
        vec![Message::system("You are a terse assistant."), Message::user("Name three colours.")],
    )
    .with_max_tokens(24);
    let a = model().complete(&req).await.unwrap();
    let b = model().complete(&req).await.unwrap();
    assert_eq!(a.text, b.text);
    assert!(!a.text.trim().is_empty());
    assert!(b.usage.cached_tokens > 0, "the second run reuses the cached prompt: {:?}", b.usage);
    // Another question behind the same system prompt reuses the system message's state.
    let other = ChatRequest::new(
        "local",
        vec![Message::system("You are a terse assistant."), Message::user("Name three animals.")],
    )
    .with_max_tokens(4);
    let c = model().complete(&other).await.unwrap();
    assert!(c.usage.cached_tokens > 0 && c.usage.cached_tokens < c.usage.prompt_tokens, "{:?}", c.usage);
    // A cold model with no prefix cache gives the same greedy answer.
    let cold = LocalModel::open(&model_path(), LocalConfig { prefix_cache_tokens: 0, ..Default::default() }).unwrap();
    let d = cold.complete(&req).await.unwrap();
    assert_eq!(d.text, a.text);
    assert_eq!(d.usage.cached_tokens, 0);
}

#[tokio::test]
async fn capital_of_france_is_paris() {
    // With the template's default system prompt ("... named SmolLM, trained by Hugging Face") the
    // 4-bit 135M model rambles about Paris landmarks; with a plain one it answers.
    let req = ChatRequest::new(
        "local",
        vec![Message::system("You are a helpful assistant."), Message::user("What is the capital of France?")],
    );
    let resp = model().complete(&req.with_max_tokens(48)).await.unwrap();
    assert!(resp.text.contains("Paris"), "{:?}", resp.text);
}

#[tokio::test]
async fn stop_strings_cut_the_answer() {
    let req = ask("Tell me about the city of Paris.").with_max_tokens(40);
    let full = model().complete(&req).await.unwrap();
    let words: Vec<&str> = full.text.split_whitespace().collect();
    assert!(words.len() > 6, "{:?}", full.text);
    let stop = words[5];
    let cut = full.text.find(stop).unwrap();
    let stopped = model().complete(&req.clone().with_stop(stop)).await.unwrap();
    assert_eq!(stopped.text, full.text[..cut]);
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert!(stopped.usage.completion_tokens < full.usage.completion_tokens);
}

#[tokio::test]
async fn max_tokens_is_honoured_and_usage_matches_the_tokenizer() {
    let messages = vec![Message::system("You answer in English."), Message::user("Describe the sea in detail.")];
    let req = ChatRequest::new("local", messages.clone()).with_max_tokens(7);
    let resp = model().complete(&req).await.unwrap();
    assert_eq!(resp.finish_reason, FinishReason::Length);
    assert_eq!(resp.usage.completion_tokens, 7);
    assert_eq!(model().tokenize(&resp.text).unwrap().len(), 7, "{:?}", resp.text);
    // The prompt is ChatML, from the file's template, counted token by token.
    let chatml = "<|im_start|>system\nYou answer in English.<|im_end|>\n<|im_start|>user\nDescribe the sea in detail.<|im_end|>\n<|im_start|>assistant\n";
    let expected = model().tokenize(chatml).unwrap();
    assert_eq!(model().prompt_tokens(&messages).await.unwrap().tokens, expected);
    assert_eq!(resp.usage.prompt_tokens, expected.len() as u64);
    let zero = model().complete(&req.clone().with_max_tokens(0)).await.unwrap();
    assert_eq!((zero.text.as_str(), zero.usage.completion_tokens), ("", 0));
}

#[tokio::test]
async fn a_natural_stop_counts_the_answer_tokens() {
    let resp = model().complete(&ask("Say hello.").with_max_tokens(64)).await.unwrap();
    assert_eq!(resp.finish_reason, FinishReason::Stop, "{:?}", resp.text);
    assert_eq!(resp.usage.completion_tokens, model().tokenize(&resp.text).unwrap().len() as u64, "{:?}", resp.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_queue_and_both_complete() {
    let a = ask("What is 2 + 2?").with_max_tokens(8);
    let b = ask("What colour is the sky?").with_max_tokens(8);
    let (ra, rb) = tokio::join!(model().complete(&a), model().complete(&b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.usage.completion_tokens > 0 && rb.usage.completion_tokens > 0);
    // Each answer is the one the request gets alone.
    assert_eq!(model().complete(&a).await.unwrap().text, ra.text);
}

#[tokio::test]
async fn seeded_sampling_is_reproducible_and_varies_with_the_sample_index() {
    let base = ask("Write a short line about rain.").with_max_tokens(16).with_temperature(1.0).with_seed(11);
    let first = model().complete(&base).await.unwrap();
    assert_eq!(model().complete(&base).await.unwrap().text, first.text);
    let mut texts = std::collections::BTreeSet::new();
    for i in 0..4 {
        texts.insert(model().complete(&base.clone().with_sample_index(i)).await.unwrap().text);
    }
    assert!(texts.len() > 1, "four samples at temperature 1 all equal: {texts:?}");
}

#[tokio::test]
async fn a_prompt_longer_than_the_context_is_refused() {
    let long = "word ".repeat(model().info().context_length + 10);
    let err = model().complete(&ask(&long)).await.unwrap_err();
    match err {
        LlmError::ContextOverflow { prompt_tokens, context } => {
            assert!(prompt_tokens > context);
            assert_eq!(context, model().info().context_length);
        }
        other => panic!("expected ContextOverflow, got {other:?}"),
    }
}

/// The small schema of the structured-output test, checked by hand.
fn check_verdict(v: &serde_json::Value) -> Result<(), String> {
    let obj = v.as_object().ok_or("not an object")?;
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    if keys != ["answer", "confidence", "reason"] {
        return Err(format!("keys {keys:?}"));
    }
    if !matches!(obj["answer"].as_str(), Some("yes" | "no")) {
        return Err("answer not yes/no".into());
    }
    match obj["confidence"].as_i64() {
        Some(c) if (0..=100).contains(&c) => {}
        _ => return Err("confidence not an integer in 0..=100".into()),
    }
    match obj["reason"].as_str() {
        Some(r) if r.chars().count() <= 60 => Ok(()),
        _ => Err("reason not a string of at most 60 characters".into()),
    }
}

#[tokio::test]
async fn json_schema_outputs_always_parse_and_validate() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "answer": {"type": "string", "enum": ["yes", "no"]},
            "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
            "reason": {"type": "string", "maxLength": 60}
        },
        "required": ["answer", "confidence", "reason"],
        "additionalProperties": false
    });
    let format = ResponseFormat::JsonSchema { name: "verdict".into(), schema, strict: true };
    let questions = ["Is the sky blue?", "Is fire cold?", "Can fish swim?"];
    let mut n = 0;
    for (q, question) in questions.iter().enumerate() {
        for i in 0..8 {
            let req = ChatRequest::new(
                "local",
                vec![
                    Message::system("Answer with a JSON object: answer (yes or no), confidence (0-100), reason."),
                    Message::user(*question),
                ],
            )
            .with_response_format(format.clone())
            .with_temperature(if i == 0 { 0.0 } else { 1.0 })
            .with_seed(q as u64)
            .with_sample_index(i)
            .with_max_tokens(96);
            let resp = model().complete(&req).await.unwrap();
            assert_eq!(resp.finish_reason, FinishReason::Stop, "{:?}", resp.text);
            let value: serde_json::Value = serde_json::from_str(&resp.text)
                .unwrap_or_else(|e| panic!("sample {q}/{i} does not parse ({e}): {:?}", resp.text));
            check_verdict(&value).unwrap_or_else(|e| panic!("sample {q}/{i} breaks the schema ({e}): {value}"));
            n += 1;
        }
    }
    assert_eq!(n, 24);
    let obj = model()
        .complete(&ask("Describe a cat as JSON.").with_response_format(ResponseFormat::JsonObject).with_max_tokens(128))
        .await
        .unwrap();
    if obj.finish_reason == FinishReason::Stop {
        let v: serde_json::Value = serde_json::from_str(&obj.text).unwrap_or_else(|e| panic!("{e}: {:?}", obj.text));
        assert!(v.is_object());
    } else {
        assert!(obj.text.starts_with('{'), "{:?}", obj.text);
    }
}

#[test]
fn a_missing_or_corrupt_file_names_the_path_and_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(PINNED_FILE_NAME);
    let Err(err) = LocalModel::open_pinned(&missing, LocalConfig::default()) else { panic!("opened a missing file") };
    assert!(matches!(err, LocalError::Missing { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()) && msg.contains(PINNED_SHA256), "{msg}");
    assert!(msg.contains("cargo xtask fetch-model"), "{msg}");

    let corrupt = dir.path().join("corrupt.gguf");
    std::fs::write(&corrupt, b"GGUF but not really").unwrap();
    let Err(err) = LocalModel::open_pinned(&corrupt, LocalConfig::default()) else { panic!("opened a corrupt file") };
    assert!(matches!(err, LocalError::ChecksumMismatch { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&corrupt.display().to_string()) && msg.contains(PINNED_SHA256), "{msg}");
    // Without a checksum, the same file is refused as not being a GGUF model.
    let Err(err) = LocalModel::open(&corrupt, LocalConfig::default()) else { panic!("opened a corrupt file") };
    assert!(matches!(err, LocalError::Format { .. }), "{err}");
}

/// The numerics tag of the default configuration on this CPU (VNNI padding only where the CPU has
/// AVX-512 VNNI).
fn default_numerics() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni") {
        return DEFAULT_NUMERICS_VNNI;
    }
    DEFAULT_NUMERICS
}
const DEFAULT_NUMERICS: &str = "e4-dense-q8";
const DEFAULT_NUMERICS_VNNI: &str = "e4-dense-q8-vnni";

#[test]
fn identity_names_the_file_its_checksum_and_the_numerics() {
    let id = model().identity();
    let info = model().info();
    assert_eq!(id, format!("local:{}:{}:{}", info.file_name, &info.sha256[..16], default_numerics()));
    if std::env::var_os(MODEL_ENV).is_none() {
        assert_eq!(id, format!("local:{PINNED_FILE_NAME}:{}:{}", &PINNED_SHA256[..16], default_numerics()));
        assert_eq!(info.context_length, 8192);
    }
    // Options that change the arithmetic change the identity, so the response cache keeps their
    // answers apart.
    let plain =
        LocalConfig { dense_prefill: false, requantize_q8: false, vnni_padding: false, ..LocalConfig::default() };
    let other = LocalModel::open(&model_path(), plain).unwrap();
    assert_eq!(other.identity(), format!("local:{}:{}:e4", info.file_name, &info.sha256[..16]));
}

#[tokio::test]
async fn concurrent_requests_are_decoded_together_and_answer_as_they_do_alone() {
    // A model of its own, so that the decoding counts are this test's.
    let m = LocalModel::open(&model_path(), LocalConfig { prefix_cache_tokens: 0, ..LocalConfig::default() }).unwrap();
    let requests: Vec<ChatRequest> = ["rivers", "the moon", "bread"]
        .iter()
        .map(|topic| ask(&format!("Write a short poem about {topic}.")).with_max_tokens(10))
        .collect();
    let mut alone = Vec::new();
    for r in &requests {
        alone.push(m.complete(r).await.unwrap());
    }
    let before = m.decode_stats();
    assert_eq!(before.max_rows, 1, "one request at a time decodes alone: {before:?}");
    let together = futures::future::join_all(requests.iter().map(|r| m.complete(r))).await;
    let after = m.decode_stats();
    for (a, t) in alone.iter().zip(together) {
        let t = t.unwrap();
        assert_eq!((&a.text, a.usage), (&t.text, t.usage), "batched decoding changed an answer");
        assert_eq!(a.usage.completion_tokens, 10, "{:?}", a.text);
    }
    // 3 x 9 decoded tokens (the first comes from the prefill) in fewer forward passes.
    assert_eq!(after.rows - before.rows, 27, "{after:?}");
    assert!(after.max_rows >= 2 && after.steps - before.steps < 27, "the requests were not batched: {after:?}");
}

#[test]
fn tokenizer_splits_digits_and_round_trips() {
    let m = model();
    assert_eq!(m.tokenize("2024").unwrap().len(), 4, "each digit is its own token");
    let digits: Vec<u32> = "0123456789".chars().map(|d| m.tokenize(&d.to_string()).unwrap()[0]).collect();
    let ids = m.tokenize("In 2024 there were 365 days.").unwrap();
    assert_eq!(ids.iter().filter(|id| digits.contains(id)).count(), 7, "{ids:?}");
    for text in ["Hello world", "  two spaces, tabs\tand\nnew lines", "café 😀 ünïcödé", "x=1+2*3"] {
        assert_eq!(m.detokenize(&m.tokenize(text).unwrap()).unwrap(), text, "no prefix space, bytes kept");
    }
    assert_eq!(m.tokenize("<|im_start|>").unwrap().len(), 1, "special tokens are recognised");
}

#[test]
fn the_pin_matches_xtask() {
    let xtask = include_str!("../../../xtask/src/fetch_model.rs");
    assert!(xtask.contains(PINNED_SHA256) && xtask.contains(PINNED_FILE_NAME));
    assert!(xtask.contains(ann_llm_local::PINNED_REQUIREMENT));
    assert!(xtask.contains(&format!("{}", ann_llm_local::PINNED_SIZE).replace("98362432", "98_362_432")));
}

#[tokio::test]
async fn offered_tools_are_called_through_constrained_decoding() {
    let tools = vec![
        ann_llm::ToolDefinition::new(
            "calculator",
            "Evaluates an arithmetic expression exactly.",
            serde_json::json!({
                "type": "object",
                "properties": {"expression": {"type": "string", "maxLength": 24}},
                "required": ["expression"],
                "additionalProperties": false
            }),
        ),
        ann_llm::ToolDefinition::new(
            "python",
            "Runs Python code.",
            serde_json::json!({"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}),
        ),
    ];
    let req = ChatRequest::new("local", vec![Message::user("Use the calculator to compute 17 * 23.")])
        .with_tools(tools)
        .with_tool_choice(ann_llm::ToolChoice::Tool("calculator".into()))
        .with_max_tokens(48);
    let resp = model().complete(&req).await.unwrap();
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls, "{resp:?}");
    assert!(resp.text.is_empty());
    assert!(!resp.tool_calls.is_empty() && resp.tool_calls.len() <= 4, "{resp:?}");
    for call in &resp.tool_calls {
        assert_eq!(call.name, "calculator");
        let arguments = call.parsed_arguments().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(arguments.keys().collect::<Vec<_>>(), ["expression"], "{arguments:?}");
        assert!(arguments["expression"].as_str().is_some_and(|e| e.chars().count() <= 24), "{arguments:?}");
    }
    assert_eq!(resp.tool_calls[0].id, "call_0_0");
    eprintln!("the embedded model called: {:?}", resp.tool_calls);
}

#[tokio::test]
async fn ignoring_the_end_of_turn_generates_exactly_max_tokens_under_its_own_identity() {
    let config = LocalConfig { ignore_end_of_turn: true, ..LocalConfig::default() };
    let m = LocalModel::open(&model_path(), config).unwrap();
    assert_eq!(m.identity(), format!("{}-no-eot", model().identity()));
    let req = ask("Say hi.").with_max_tokens(40);
    let short = model().complete(&req).await.unwrap();
    assert!(short.usage.completion_tokens < 40, "the usual answer ends by itself: {short:?}");
    let long = m.complete(&req).await.unwrap();
    assert_eq!((long.usage.completion_tokens, &long.finish_reason), (40, &FinishReason::Length), "{long:?}");
}
