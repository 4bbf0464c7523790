//! Why opening or running the embedded model failed.

use std::path::PathBuf;

use ann_llm::LlmError;

/// Errors of the embedded model. Model output is never an error.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The model file does not exist.
    #[error(
        "model file {path} not found (expected sha256 {expected_sha256}); run `cargo xtask fetch-model` to fetch it"
    )]
    Missing { path: PathBuf, expected_sha256: String },
    /// The model file is there but its checksum is wrong (truncated or corrupt download).
    #[error(
        "model file {path} has sha256 {actual}, expected {expected_sha256}; run `cargo xtask fetch-model` to fetch it again"
    )]
    ChecksumMismatch { path: PathBuf, expected_sha256: String, actual: String },
    /// Reading the file failed.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usable GGUF model (bad header, missing metadata, unsupported architecture).
    #[error("model file {path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// The tokenizer or chat template could not be built from the file's metadata.
    #[error("tokenizer or chat template: {0}")]
    Tokenizer(String),
    /// A tensor operation failed while running the model.
    #[error("model runtime: {0}")]
    Runtime(String),
    /// The request's response format could not be turned into a grammar.
    #[error("structured output: {0}")]
    Grammar(String),
}

impl From<candle_core::Error> for LocalError {
    fn from(e: candle_core::Error) -> Self {
        LocalError::Runtime(e.to_string())
    }
}

impl From<LocalError> for LlmError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::Grammar(_) => LlmError::Config(e.to_string()),
            LocalError::Runtime(_) => LlmError::Backend(e.to_string()),
            _ => LlmError::Config(e.to_string()),
        }
    }
}
