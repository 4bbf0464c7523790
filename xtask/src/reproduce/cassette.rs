//! The record and replay modes of `cargo xtask reproduce`.
//!
//! `record` gives the reproduction its own response cache (`responses.sqlite` beside the run
//! directories), so that it holds exactly the reproduction's calls, and exports it with `ann cache
//! export` to a sorted, gzip-compressed cassette. `replay` imports a cassette into a fresh cache
//! and runs every experiment with `cache.mode = "replay_only"` against the endpoint the cassette
//! was recorded on (read from its entries: the backend identity is part of every key), which need
//! not be reachable: no call is made, and a request the cassette does not hold is an error naming it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// How `cargo xtask reproduce` gets its answers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Call the endpoint (through the workspace's shared response cache).
    #[default]
    Live,
    /// Call the endpoint through a fresh cache of the reproduction's own, then export it as a cassette.
    Record,
    /// Answer every call from a cassette; nothing is called.
    Replay,
}

/// The backend a cassette was recorded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// `openai-compatible:<model>@<base url>`.
    Endpoint { model: String, base_url: String },
    /// The embedded model (`local:...`).
    Local,
}

/// The backend of the cassette's first entry (all of a reproduction's calls share it).
pub fn recorded_backend(cassette: &Path) -> Result<Recorded> {
    let file = std::fs::File::open(cassette).with_context(|| format!("opening the cassette {}", cassette.display()))?;
    let reader: Box<dyn Read> = if cassette.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut first = String::new();
    BufReader::new(reader).read_line(&mut first).with_context(|| format!("reading {}", cassette.display()))?;
    if first.trim().is_empty() {
        bail!("{}: an empty cassette replays nothing", cassette.display());
    }
    let entry: serde_json::Value =
        serde_json::from_str(&first).with_context(|| format!("{}:1: not a cassette entry", cassette.display()))?;
    let backend = entry["backend"].as_str().with_context(|| format!("{}:1: no `backend`", cassette.display()))?;
    parse_backend(backend).with_context(|| format!("{}:1", cassette.display()))
}

fn parse_backend(backend: &str) -> Result<Recorded> {
    if backend.starts_with("local:") {
        return Ok(Recorded::Local);
    }
    let rest = backend.strip_prefix("openai-compatible:").with_context(|| format!("unknown backend `{backend}`"))?;
    let (model, base_url) = rest.split_once('@').with_context(|| format!("no `@<base url>` in `{backend}`"))?;
    Ok(Recorded::Endpoint { model: model.into(), base_url: base_url.into() })
}

/// The `--set` overrides that point a run at the reproduction's own cache in `mode`.
pub fn cache_sets(cache: &Path, mode: Mode) -> Vec<String> {
    let cache_mode = if mode == Mode::Replay { "replay_only" } else { "read_write" };
    vec![format!("cache.path={}", cache.display()), format!("cache.mode={cache_mode}")]
}

/// Run `ann cache <args>` and fail with its output when it fails.
pub fn ann_cache(ann: &Path, args: &[&Path], verb: &str) -> Result<()> {
    let out = Command::new(ann)
        .arg("cache")
        .arg(verb)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} cache {verb}", ann.display()))?;
    if !out.status.success() {
        bail!("`ann cache {verb}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// Where `record` writes its cassette unless `--cassette` names a file.
pub fn default_cassette(out: &Path) -> PathBuf {
    out.join("cassette.jsonl.gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_identity_names_the_recorded_endpoint() {
        assert_eq!(
            parse_backend("openai-compatible:gpt-4o-mini@http://127.0.0.1:4242/v1").unwrap(),
            Recorded::Endpoint { model: "gpt-4o-mini".into(), base_url: "http://127.0.0.1:4242/v1".into() }
        );
        assert_eq!(parse_backend("local:smollm2.gguf:0123456789abcdef:q8").unwrap(), Recorded::Local);
        assert!(parse_backend("scripted:x").unwrap_err().to_string().contains("unknown backend"));
        assert_eq!(
            cache_sets(Path::new("/r/responses.sqlite"), Mode::Replay),
            ["cache.path=/r/responses.sqlite", "cache.mode=replay_only"]
        );
    }
}
