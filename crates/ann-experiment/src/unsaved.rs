//! Paid answers the response cache could not store: written to the run directory when a run stops,
//! imported into the cache by `ann resume` before any call, so that none is paid for twice.
//!
//! The file `unsaved-responses.jsonl` holds cassette lines (`ann_llm_cache::CassetteEntry`: key,
//! backend, canonical request, response), sorted by key; it is replaced atomically and merged with
//! what an earlier stop left there. A resume imports it all or nothing (a malformed line is named
//! with its file and line) and then removes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ann_llm_cache::{CassetteEntry, ResponseCache};
use anyhow::Context;

/// The run directory's file of paid answers the response cache could not store.
pub const UNSAVED_FILE: &str = "unsaved-responses.jsonl";

/// Write the answers `cache` received but could not store (if any) to `run_dir`'s
/// [`UNSAVED_FILE`], merged with the entries already there. Returns the file and how many entries
/// it holds, or `None` when there was nothing to keep.
pub fn save(cache: &ResponseCache, run_dir: &Path) -> anyhow::Result<Option<(PathBuf, usize)>> {
    let fresh = cache.unsaved();
    if fresh.is_empty() {
        return Ok(None);
    }
    let path = run_dir.join(UNSAVED_FILE);
    let mut entries: BTreeMap<String, CassetteEntry> = read(&path)?.into_iter().map(|e| (e.key.clone(), e)).collect();
    entries.extend(fresh.into_iter().map(|e| (e.key.clone(), e)));
    let text: String = entries.values().map(|e| e.to_line() + "\n").collect();
    ann_llm::write_atomic(&path, text.as_bytes()).with_context(|| {
        format!(
            "writing {} paid answers the response cache could not store to {}: they are lost",
            entries.len(),
            path.display()
        )
    })?;
    Ok(Some((path, entries.len())))
}

/// The entries of an existing [`UNSAVED_FILE`] (none when it does not exist).
fn read(path: &Path) -> anyhow::Result<Vec<CassetteEntry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            CassetteEntry::parse_line(line).map_err(|m| anyhow::anyhow!("{}:{}: {m}", path.display(), i + 1))
        })
        .collect()
}

/// Import `run_dir`'s [`UNSAVED_FILE`] into `cache` (before the run makes any call), then remove
/// the file. Returns a note for the user when there was one. Without a cache (`mode = "off"`) the
/// answers cannot be used: the file stays and the note says so.
pub fn import(cache: Option<&ResponseCache>, run_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = run_dir.join(UNSAVED_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let Some(cache) = cache else {
        return Ok(Some(format!(
            "{} holds paid answers, but the response cache is off: they are not used (turn the cache on to \
             import them)",
            path.display()
        )));
    };
    let report = cache.import_jsonl(&path).with_context(|| {
        format!(
            "importing the paid answers of {} into the response cache {} (the file is kept; fix the cache, then \
             resume again)",
            path.display(),
            cache.path().display()
        )
    })?;
    std::fs::remove_file(&path).with_context(|| format!("removing {} after importing it", path.display()))?;
    Ok(Some(format!(
        "imported {} paid answers from {} into the response cache ({} new); they will not be paid for again",
        report.entries,
        path.display(),
        report.added
    )))
}
