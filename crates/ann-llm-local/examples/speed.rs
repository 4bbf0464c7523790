//! Prefill and generation speed of the embedded model, for a short and a ~450-token prompt.
//!
//! `cargo run --release -p ann-llm-local --example speed [-- PATH.gguf]` (default: `$ANN_LOCAL_MODEL`,
//! else the pinned model in `<workspace>/.cache`). Measures the default configuration and, as the
//! reference in the same run, the plain one (the file's own quantized weights for every step, as
//! candle's quantized llama runs them), then prints the ratios.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ann_llm::{ChatModel, ChatRequest, Message};
use ann_llm_local::{LocalConfig, LocalModel, MODEL_ENV};

const GENERATED: u32 = 64;

fn long_prompt() -> String {
    let sentence = "The committee reviewed the quarterly report on river water quality, noting that nitrate levels \
                    fell after new farming rules while phosphate stayed flat. ";
    sentence.repeat(16) + "\n"
}

/// Prefill and generation tokens per second for the short and the long prompt.
async fn measure(path: &Path, label: &str, config: LocalConfig) -> [(f64, f64); 2] {
    let model = LocalModel::open(path, config).unwrap_or_else(|e| panic!("{e}\nRun `cargo xtask fetch-model` first."));
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
    println!("{label}: {} ({})", model.info().file_name, model.info().name);
    let mut rates = [(0.0, 0.0); 2];
    for (i, (name, text)) in [("short", String::new()), ("long", long_prompt())].into_iter().enumerate() {
        let ask = format!("{text}Count from 1 to 100, separated by commas.");
        // Best of three. Each round's prompt is new (its system message names the round), so its
        // first one-token answer prefills it all; the prefix cache then holds every message, and
        // generation is the difference between a 64-token and a one-token answer that both
        // prefill only the assistant header.
        let (mut prefill, mut generation) = (0f64, 0f64);
        let (mut prompt_tokens, mut completion, mut sample) = (0, 0, String::new());
        for round in 1..=3 {
            let system = format!("You are a helpful assistant (round {round}).");
            let request =
                |n| ChatRequest::new("local", vec![Message::system(&system), Message::user(&ask)]).with_max_tokens(n);
            let (cold, r) = time(request(1)).await;
            let (t1, _) = time(request(1)).await;
            let (tn, rn) = time(request(GENERATED)).await;
            prompt_tokens = r.usage.prompt_tokens;
            completion = rn.usage.completion_tokens;
            sample = rn.text.chars().take(40).collect();
            prefill = prefill.max(prompt_tokens as f64 / cold);
            generation = generation.max(completion.saturating_sub(1) as f64 / (tn - t1).max(1e-9));
        }
        rates[i] = (prefill, generation);
        println!(
            "  {name:>5} prompt: {prompt_tokens:>4} tokens, prefill {:>7.1} tok/s; generation {:>6.1} tok/s ({completion} tokens: {sample:?}...)",
            rates[i].0, rates[i].1
        );
    }
    rates
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path =
        std::env::args_os().nth(1).or_else(|| std::env::var_os(MODEL_ENV)).map(PathBuf::from).unwrap_or_else(|| {
            ann_llm_local::pinned_model_path(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache"))
        });
    let base = LocalConfig::default();
    let ours = measure(&path, "default (dense prefill, Q8_0 decode)", base.clone()).await;
    let plain = LocalConfig { dense_prefill: false, requantize_q8: false, ..base };
    let reference = measure(&path, "reference (the file's quantized weights throughout)", plain).await;
    for (name, (o, r)) in ["short", "long"].iter().zip(ours.iter().zip(&reference)) {
        println!("  {name:>5} prompt: prefill {:.2}x, generation {:.2}x the reference", o.0 / r.0, o.1 / r.1);
    }
}
