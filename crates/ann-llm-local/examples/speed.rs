//! Prefill and generation speed of the embedded model, for a short and a ~450-token prompt, and
//! concurrent requests decoded together against the same requests one after another.
//!
//! `cargo run --release -p ann-llm-local --example speed [-- [--json] PATH.gguf]` (default:
//! `$ANN_LOCAL_MODEL`, else the pinned model in `<workspace>/.cache`). Without `--json` it measures the
//! default configuration and, as the reference in the same run, the plain one (the file's own
//! quantized weights for every step), then prints the ratios. With `--json` it measures the default
//! configuration only and prints one JSON line (load time, the rendered prompts and their token
//! counts, rates, concurrency): `cargo xtask local-speed --vs-llama-cpp` compares it with llama.cpp.
//! `--baseline` measures the settings before VNNI padding and batched decoding instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ann_llm::{ChatModel, ChatRequest, Message};
use ann_llm_local::{LocalConfig, LocalModel, MODEL_ENV};
use serde_json::{Value, json};

const GENERATED: u32 = 64;
/// Concurrent requests in the batching measurement, and tokens each generates.
const CONCURRENT: usize = 3;
const CONCURRENT_TOKENS: u32 = 48;

fn long_prompt() -> String {
    let sentence = "The committee reviewed the quarterly report on river water quality, noting that nitrate levels \
                    fell after new farming rules while phosphate stayed flat. ";
    sentence.repeat(16) + "\n"
}

fn open(path: &Path, config: LocalConfig) -> (LocalModel, f64) {
    let start = Instant::now();
    let model = LocalModel::open(path, config).unwrap_or_else(|e| panic!("{e}\nRun `cargo xtask fetch-model` first."));
    (model, start.elapsed().as_secs_f64())
}

async fn time(model: &LocalModel, req: ChatRequest) -> (f64, ann_llm::ChatResponse) {
    let start = Instant::now();
    let resp = model.complete(&req).await.expect("completion");
    (start.elapsed().as_secs_f64(), resp)
}

/// Per prompt: the rendered prompt and its figures (best of three rounds).
async fn measure(model: &LocalModel, quiet: bool) -> (Vec<Value>, Vec<Value>) {
    // Warm up (first-touch of the weights, allocator).
    time(model, ChatRequest::new("local", vec![Message::user("Hi")]).with_max_tokens(4)).await;
    let (mut prompts, mut rates) = (Vec::new(), Vec::new());
    for (name, text) in [("short", String::new()), ("long", long_prompt())] {
        let ask = format!("{text}Count from 1 to 100, separated by commas.");
        // Best of three. Each round's prompt is new (its system message names the round), so its
        // first one-token answer prefills it all; the prefix cache then holds every message, and
        // generation is the difference between a 64-token and a one-token answer that both
        // prefill only the assistant header.
        let (mut prefill, mut generation) = (0f64, 0f64);
        let (mut prompt_tokens, mut completion, mut sample) = (0, 0, String::new());
        for round in 1..=3 {
            let system = format!("You are a helpful assistant (round {round}).");
            let messages = vec![Message::system(&system), Message::user(&ask)];
            if round == 1 {
                let ids = model.prompt_tokens(&messages).await.expect("prompt tokens").tokens;
                let text = model.detokenize_special(&ids).expect("detokenize");
                prompts.push(json!({"name": name, "text": text, "tokens": ids.len()}));
            }
            let request = |n| ChatRequest::new("local", messages.clone()).with_max_tokens(n);
            let (cold, r) = time(model, request(1)).await;
            let (t1, _) = time(model, request(1)).await;
            let (tn, rn) = time(model, request(GENERATED)).await;
            prompt_tokens = r.usage.prompt_tokens;
            completion = rn.usage.completion_tokens;
            sample = rn.text.chars().take(40).collect();
            prefill = prefill.max(prompt_tokens as f64 / cold);
            generation = generation.max(completion.saturating_sub(1) as f64 / (tn - t1).max(1e-9));
        }
        if !quiet {
            println!(
                "  {name:>5} prompt: {prompt_tokens:>4} tokens, prefill {prefill:>7.1} tok/s; generation \
                 {generation:>6.1} tok/s ({completion} tokens: {sample:?}...)"
            );
        }
        rates.push(json!({
            "name": name, "prompt_tokens": prompt_tokens, "prefill_tok_s": prefill,
            "generated_tokens": completion, "generation_tok_s": generation,
        }));
    }
    (prompts, rates)
}

/// `CONCURRENT` different requests one after another, then the same requests at once, on a model
/// without a prefix cache (both runs prefill everything); the answers must be the same.
async fn concurrency(path: &Path, config: &LocalConfig) -> Value {
    let (model, _) = open(path, LocalConfig { prefix_cache_tokens: 0, ..config.clone() });
    let topics = ["rivers", "mountains", "forests", "deserts", "oceans", "cities", "islands", "lakes"];
    let requests: Vec<ChatRequest> = topics[..CONCURRENT]
        .iter()
        .map(|t| {
            let messages = vec![
                Message::system("You are a helpful assistant."),
                Message::user(format!("Write a long essay about {t}.")),
            ];
            ChatRequest::new("local", messages).with_max_tokens(CONCURRENT_TOKENS)
        })
        .collect();
    time(&model, ChatRequest::new("local", vec![Message::user("Hi")]).with_max_tokens(4)).await;
    let start = Instant::now();
    let mut alone = Vec::new();
    for r in &requests {
        alone.push(model.complete(r).await.expect("completion"));
    }
    let sequential = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let together = futures::future::join_all(requests.iter().map(|r| model.complete(r))).await;
    let concurrent = start.elapsed().as_secs_f64();
    for (a, t) in alone.iter().zip(together) {
        let t = t.expect("completion");
        assert_eq!(a.text, t.text, "a request decoded in a batch answered differently than alone");
        assert_eq!(a.usage.completion_tokens, u64::from(CONCURRENT_TOKENS), "an answer stopped early: {:?}", a.text);
    }
    json!({"requests": CONCURRENT, "tokens_each": CONCURRENT_TOKENS, "sequential_s": sequential, "concurrent_s": concurrent})
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let as_json = args.iter().any(|a| a == "--json");
    // The settings before VNNI padding and batched decoding, to compare within one run.
    let baseline = args.iter().any(|a| a == "--baseline");
    args.retain(|a| a != "--json" && a != "--baseline");
    let path =
        args.first().map(PathBuf::from).or_else(|| std::env::var_os(MODEL_ENV).map(PathBuf::from)).unwrap_or_else(
            || ann_llm_local::pinned_model_path(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache")),
        );
    // Every answer is exactly as long as asked (llama.cpp's side ignores its end-of-turn token too).
    let measured = LocalConfig { ignore_end_of_turn: true, ..LocalConfig::default() };
    let base =
        if baseline { LocalConfig { vnni_padding: false, max_batch: 1, ..measured.clone() } } else { measured.clone() };
    if as_json {
        let (model, load_s) = open(&path, base.clone());
        let (prompts, rates) = measure(&model, true).await;
        drop(model);
        let concurrency = concurrency(&path, &base).await;
        let report = json!({
            "engine": "ann-llm-local", "load_s": load_s,
            "workload": {"prompts": prompts, "generate": GENERATED},
            "rates": rates, "concurrency": concurrency,
        });
        println!("{report}");
        return;
    }
    let mut all = Vec::new();
    let plain = LocalConfig { dense_prefill: false, requantize_q8: false, ..base.clone() };
    for (label, config) in [("default", base), ("reference (the file's quantized weights throughout)", plain)] {
        let (model, load_s) = open(&path, config);
        println!("{label}: {} ({}), loaded in {load_s:.2} s", model.info().file_name, model.info().name);
        all.push(measure(&model, false).await.1);
    }
    for (o, r) in all[0].iter().zip(&all[1]) {
        let ratio = |k: &str| o[k].as_f64().unwrap_or(0.0) / r[k].as_f64().unwrap_or(1.0);
        println!(
            "  {:>5} prompt: prefill {:.2}x, generation {:.2}x the reference",
            o["name"].as_str().unwrap_or(""),
            ratio("prefill_tok_s"),
            ratio("generation_tok_s")
        );
    }
    let c = concurrency(&path, &measured).await;
    println!(
        "{CONCURRENT} concurrent requests of {CONCURRENT_TOKENS} tokens: {:.2} s together, {:.2} s one after another",
        c["concurrent_s"], c["sequential_s"]
    );
}
