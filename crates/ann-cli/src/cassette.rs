//! `ann cache export` and `ann cache import`: a response cache as a JSONL cassette (one entry per
//! line, sorted by key, gzip-compressed when the file name ends in `.gz`) and back, so that a run's
//! calls can be kept beside its results and replayed elsewhere with no call made.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ann_experiment::reexports::ResponseCache;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use flate2::Compression;
use flate2::read::GzDecoder;

#[derive(Subcommand)]
pub enum CacheCmd {
    /// Write every entry of a response cache to a cassette (the same entries give the same bytes).
    Export {
        /// The SQLite response cache (a config's `cache.path`).
        cache: PathBuf,
        /// The cassette to write: JSONL, gzip when it ends in `.gz`.
        out: PathBuf,
    },
    /// Add a cassette's entries to a response cache (created if missing); all or nothing.
    Import {
        /// The cassette (JSONL, or gzip when it ends in `.gz`).
        cassette: PathBuf,
        /// The SQLite response cache.
        cache: PathBuf,
    },
}

/// `ann cache`; with `json`, `{"entries": N, "cassette": PATH}` (export) or
/// `{"added": N, "entries": M, "cache": PATH}` (import).
pub async fn run(cmd: CacheCmd, json: bool) -> Result<()> {
    tokio::task::spawn_blocking(move || match cmd {
        CacheCmd::Export { cache, out } => {
            let n = export(&cache, &out)?;
            if json {
                println!("{}", serde_json::json!({ "entries": n, "cassette": out }));
            } else {
                println!("{n} entries written to {}", out.display());
            }
            Ok(())
        }
        CacheCmd::Import { cassette, cache } => {
            let (added, total) = import(&cassette, &cache)?;
            if json {
                println!("{}", serde_json::json!({ "added": added, "entries": total, "cache": cache }));
            } else {
                println!("{added} of {total} entries added to {}", cache.display());
            }
            Ok(())
        }
    })
    .await
    .context("the cache command stopped")?
}

fn gzipped(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Export `cache` to `out`; the number of entries.
pub fn export(cache: &Path, out: &Path) -> Result<usize> {
    if !cache.is_file() {
        bail!("{} is not a response cache (no such file)", cache.display());
    }
    let store = ResponseCache::open(cache).with_context(|| format!("opening {}", cache.display()))?;
    let entries = store.entries().with_context(|| format!("reading {}", cache.display()))?;
    let mut text = String::new();
    for entry in &entries {
        text.push_str(&entry.to_line());
        text.push('\n');
    }
    let bytes = if gzipped(out) {
        // No file name or time in the header: the same entries always give the same bytes.
        let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), Compression::best());
        encoder.write_all(text.as_bytes()).context("compressing the cassette")?;
        encoder.finish().context("compressing the cassette")?
    } else {
        text.into_bytes()
    };
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(entries.len())
}

/// Import `cassette` into `cache`: (entries added, entries in the cassette).
pub fn import(cassette: &Path, cache: &Path) -> Result<(usize, usize)> {
    let store = ResponseCache::open(cache).with_context(|| format!("opening {}", cache.display()))?;
    let raw = std::fs::read(cassette).with_context(|| format!("reading {}", cassette.display()))?;
    let report = if gzipped(cassette) {
        let mut text = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut text)
            .with_context(|| format!("{}: not a gzip file", cassette.display()))?;
        let dir = cache.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut plain = tempfile::Builder::new()
            .suffix(".jsonl")
            .tempfile_in(dir)
            .with_context(|| format!("a temporary file in {}", dir.display()))?;
        plain.write_all(&text).context("writing the decompressed cassette")?;
        store.import_jsonl(plain.path()).map_err(|e| {
            // Name the cassette, not the temporary file, in the error.
            anyhow::anyhow!(
                "{}",
                e.to_string().replace(&plain.path().display().to_string(), &cassette.display().to_string())
            )
        })
    } else {
        store.import_jsonl(cassette).map_err(anyhow::Error::new)
    }
    .with_context(|| format!("importing {} into {}", cassette.display(), cache.display()))?;
    Ok((report.added + report.updated, report.entries))
}
