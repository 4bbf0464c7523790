//! What the examples share: the model they run on, chosen from the environment the way `ann` does.
//!
//! With `ANN_OPENAI_BASE_URL` and `ANN_OPENAI_MODEL` set (and the key in `ANN_OPENAI_API_KEY` or
//! `OPENAI_API_KEY`), an OpenAI-compatible endpoint; otherwise the embedded SmolLM2-135M model,
//! from `ANN_LOCAL_MODEL` or where `cargo xtask fetch-model` puts it (`$ANN_CACHE_DIR/models` or
//! `.cache/models` of the workspace).

use std::path::PathBuf;
use std::sync::Arc;

use ann_llm::SharedModel;
use ann_llm_local::{LocalConfig, LocalModel, MODEL_ENV, pinned_model_path};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use anyhow::{Context, Result};

/// The model and the model id to put in requests.
pub struct Chosen {
    pub model: SharedModel,
    pub name: String,
}

/// The endpoint of the environment, else the embedded model.
pub fn model_from_env() -> Result<Chosen> {
    if let Some(config) = OpenAiConfig::from_env().context("reading ANN_OPENAI_* from the environment")? {
        let name = config.model.clone();
        let model = OpenAiModel::from_env(config).context("the OpenAI-compatible endpoint")?;
        eprintln!("model: {name} at the endpoint of ANN_OPENAI_BASE_URL");
        return Ok(Chosen { model: Arc::new(model), name });
    }
    let path = match std::env::var_os(MODEL_ENV) {
        Some(path) => PathBuf::from(path),
        None => {
            let cache = std::env::var_os("ANN_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache"));
            pinned_model_path(&cache)
        }
    };
    let model = LocalModel::open_pinned(&path, LocalConfig::default()).with_context(|| {
        format!("opening the embedded model {} (fetch it with `cargo xtask fetch-model`)", path.display())
    })?;
    eprintln!("model: the embedded SmolLM2-135M-Instruct ({})", path.display());
    Ok(Chosen { model: Arc::new(model), name: "smollm2-135m-instruct".into() })
}
