//! llama.cpp's side: the Q8_0 conversion and the measurement of prefill, generation and load.

use std::ffi::CString;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use crate::report::{Measured, Rates, Workload};

fn backend() -> Result<LlamaBackend> {
    let mut backend = LlamaBackend::init().context("initialising llama.cpp")?;
    backend.void_logs();
    Ok(backend)
}

/// Write `output`: every weight matrix of `input` as Q8_0 (llama.cpp's quantizer, requantizing).
pub fn quantize_q8(input: &Path, output: &Path) -> Result<()> {
    let _backend = backend()?;
    let cstr = |p: &Path| CString::new(p.to_str().context("non-UTF-8 path")?).context("NUL in path");
    let (inp, out) = (cstr(input)?, cstr(output)?);
    // SAFETY: default parameters from llama.cpp itself, two valid C strings that outlive the call.
    let code = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.ftype = llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0;
        params.allow_requantize = true;
        params.pure_ = true;
        params.nthread = 2;
        llama_cpp_sys_2::llama_model_quantize(inp.as_ptr(), out.as_ptr(), &params)
    };
    if code != 0 {
        let _ = std::fs::remove_file(output);
        bail!("llama.cpp could not quantize {} (code {code})", input.display());
    }
    Ok(())
}

fn argmax(logits: &[f32]) -> LlamaToken {
    let best = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
    LlamaToken(best as i32)
}

/// Load time; then per prompt, best of three rounds on a cleared KV cache: the prompt prefilled in
/// one batch (its last position's logits), and `generate - 1` more tokens decoded one at a time,
/// greedy, never stopping early (our side's completions do not stop early either: checked).
pub fn measure(path: &Path, workload: &Workload, threads: i32) -> Result<Measured> {
    let started = Instant::now();
    let backend = backend()?;
    let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())
        .with_context(|| format!("loading {}", path.display()))?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(2048))
        .with_n_batch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params).context("creating a llama.cpp context")?;
    let load_s = started.elapsed().as_secs_f64();
    let vocab = model.vocab();

    let mut run = |tokens: &[LlamaToken], generate: usize| -> Result<(f64, f64)> {
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(tokens.len().max(1), 1);
        for (i, t) in tokens.iter().enumerate() {
            batch.add(*t, i as i32, &[0], i + 1 == tokens.len())?;
        }
        let t0 = Instant::now();
        ctx.decode(&mut batch)?;
        let mut next = argmax(ctx.get_logits_ith(batch.n_tokens() - 1));
        let prefill = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        for step in 1..generate {
            batch.clear();
            batch.add(next, (tokens.len() + step - 1) as i32, &[0], true)?;
            ctx.decode(&mut batch)?;
            next = argmax(ctx.get_logits_ith(0));
        }
        Ok((prefill, t1.elapsed().as_secs_f64()))
    };
    // Warm up (first touch of the weights, the allocator, the thread pool).
    let hi = vocab.tokenize(b"Hi", true, true);
    run(&hi, 4)?;

    let generate = workload.generate as usize;
    let mut rates = Vec::new();
    for case in &workload.prompts {
        let tokens = vocab.tokenize(case.text.as_bytes(), true, true);
        let (mut prefill, mut generation) = (0f64, 0f64);
        for _round in 0..3 {
            let (p, g) = run(&tokens, generate)?;
            prefill = prefill.max(tokens.len() as f64 / p);
            generation = generation.max((generate - 1) as f64 / g.max(1e-9));
        }
        rates.push(Rates {
            name: case.name.clone(),
            prompt_tokens: tokens.len(),
            prefill_tok_s: prefill,
            generated_tokens: generate,
            generation_tok_s: generation,
        });
    }
    Ok(Measured { engine: "llama.cpp".into(), load_s, workload: workload.clone(), rates, concurrency: None })
}
