//! Prefill and generation speed of the embedded model, for a short and a ~450-token prompt.
//!
//! `cargo run --release -p ann-llm-local --example speed [-- [--quantized-prefill] [PATH.gguf]]`
//! (default: `$ANN_LOCAL_MODEL`, else the pinned model in `<workspace>/.cache`). The prefix cache is
//! off so every prompt is prefilled; `--quantized-prefill` turns the dense f32 prefill off.

use std::path::PathBuf;
use std::time::Instant;

use ann_llm::{ChatModel, ChatRequest, Message};
use ann_llm_local::{LocalConfig, LocalModel, MODEL_ENV};

const GENERATED: u32 = 64;

fn long_prompt() -> String {
    let sentence = "The committee reviewed the quarterly report on river water quality, noting that nitrate levels \
                    fell after new farming rules while phosphate stayed flat. ";
    sentence.repeat(16) + "\n"
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let dense = !args.iter().any(|a| a == "--quantized-prefill");
    let path = args
        .iter()
        .find(|a| *a != "--quantized-prefill")
        .cloned()
        .or_else(|| std::env::var_os(MODEL_ENV))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            ann_llm_local::pinned_model_path(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache"))
        });
    let config = LocalConfig { prefix_cache_tokens: 0, dense_prefill: dense, ..Default::default() };
    let model = LocalModel::open(&path, config).unwrap_or_else(|e| panic!("{e}\nRun `cargo xtask fetch-model` first."));
    let time = |req: ChatRequest| {
        let model = &model;
        async move {
            let start = Instant::now();
            let resp = model.complete(&req).await.expect("completion");
            (start.elapsed().as_secs_f64(), resp)
        }
    };
    // Warm up (first-touch of the weights, allocator).
    time(ChatRequest::new("local", vec![Message::user("Hi")]).with_max_tokens(4)).await;
    println!("model: {} ({}), dense prefill: {dense}", model.info().file_name, model.info().name);
    for (label, text) in [("short", String::new()), ("long", long_prompt())] {
        let ask = format!("{text}Count from 1 to 100, separated by commas.");
        let messages = vec![Message::system("You are a helpful assistant."), Message::user(ask)];
        let mut prefill = f64::MAX;
        let mut total = f64::MAX;
        let mut prompt_tokens = 0;
        let mut completion = 0;
        let mut sample = String::new();
        for _ in 0..3 {
            let (t1, r1) = time(ChatRequest::new("local", messages.clone()).with_max_tokens(1)).await;
            let (tn, rn) = time(ChatRequest::new("local", messages.clone()).with_max_tokens(GENERATED)).await;
            prefill = prefill.min(t1);
            total = total.min(tn);
            prompt_tokens = r1.usage.prompt_tokens;
            completion = rn.usage.completion_tokens;
            sample = rn.text.chars().take(40).collect();
        }
        let gen_rate = (completion.saturating_sub(1)) as f64 / (total - prefill).max(1e-9);
        println!(
            "{label:>5} prompt: {prompt_tokens:>4} tokens, prefill {:>7.1} tok/s; generation {:>6.1} tok/s ({completion} tokens: {sample:?}...)",
            prompt_tokens as f64 / prefill,
            gen_rate
        );
    }
}
