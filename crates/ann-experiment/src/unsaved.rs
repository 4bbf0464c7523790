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

/// Write `fresh`, answers a cache received but could not store ([`ResponseCache::unsaved`]), to
/// `run_dir`'s [`UNSAVED_FILE`], merged with the entries already there. Returns the file and how
/// many entries it holds, or `None` when there was nothing to keep.
pub fn save(fresh: Vec<CassetteEntry>, run_dir: &Path) -> anyhow::Result<Option<(PathBuf, usize)>> {
    if fresh.is_empty() {
        return Ok(None);
    }
    let path = run_dir.join(UNSAVED_FILE);
    let earlier = read(&path).with_context(|| {
        format!("{} paid answers the response cache could not store are not written, the file is damaged", fresh.len())
    })?;
    let mut entries: BTreeMap<String, CassetteEntry> = earlier.into_iter().map(|e| (e.key.clone(), e)).collect();
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

/// After a run in `run_dir` ended with `result`: write the answers `cache` could not store (if
/// any) with [`save`]. A stopped run's error then names the file (or says why it could not be
/// written); a finished run's note does.
pub fn keep<T>(
    cache: &ResponseCache,
    run_dir: &Path,
    result: anyhow::Result<T>,
) -> (anyhow::Result<T>, Option<String>) {
    let kept = |path: &Path, n: usize| {
        format!(
            "{n} paid answers the response cache could not store are kept in {}: `ann resume {}` imports them \
             into the cache before any call, so none is paid for again",
            path.display(),
            run_dir.display()
        )
    };
    match (save(cache.unsaved(), run_dir), result) {
        (Ok(None), result) => (result, None),
        (Ok(Some((path, n))), Err(e)) => (Err(e.context(kept(&path, n))), None),
        (Ok(Some((path, n))), Ok(outcome)) => (Ok(outcome), Some(kept(&path, n))),
        (Err(lost), Err(e)) => (Err(e.context(format!("{lost:#}"))), None),
        (Err(lost), Ok(_)) => (Err(lost), None),
    }
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

#[cfg(test)]
mod tests {
    use ann_llm::{ChatRequest, ChatResponse, Message};

    use super::*;

    fn entry(question: &str) -> CassetteEntry {
        let request = ChatRequest::new("m", vec![Message::user(question)]);
        CassetteEntry::new("openai-compatible:m@http://127.0.0.1:1/v1", &request, &ChatResponse::text("m", "paid"))
    }

    fn keys(path: &Path) -> Vec<String> {
        read(path).unwrap().into_iter().map(|e| e.key).collect()
    }

    #[test]
    fn nothing_to_keep_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(save(Vec::new(), dir.path()).unwrap().is_none());
        assert!(!dir.path().join(UNSAVED_FILE).exists());
    }

    #[test]
    fn a_later_stop_merges_with_what_an_earlier_one_kept_sorted_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (entry("a"), entry("b"), entry("c"));
        let (path, n) = save(vec![b.clone(), a.clone()], dir.path()).unwrap().unwrap();
        assert_eq!((path.clone(), n), (dir.path().join(UNSAVED_FILE), 2));
        assert_eq!(save(vec![c.clone(), a.clone()], dir.path()).unwrap().unwrap().1, 3);
        let mut want = vec![a.key, b.key, c.key];
        want.sort();
        assert_eq!(keys(&path), want);
    }

    #[test]
    fn a_damaged_file_is_named_with_its_line_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(UNSAVED_FILE);
        let damaged = format!("{}\n{{\"key\": 1\n", entry("a").to_line());
        std::fs::write(&path, &damaged).unwrap();
        let err = save(vec![entry("b")], dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains(&format!("{}:2: malformed entry", path.display())), "{err:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), damaged);
        let cache = ResponseCache::open(&dir.path().join("responses.sqlite")).unwrap();
        let err = import(Some(&cache), dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("the file is kept"), "{err:#}");
        assert!(path.is_file());
    }

    #[tokio::test]
    async fn import_fills_the_cache_then_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (entry("a"), entry("b"));
        save(vec![a.clone(), b.clone()], dir.path()).unwrap();
        assert!(import(None, dir.path()).unwrap().unwrap().contains("cache is off"));
        assert!(dir.path().join(UNSAVED_FILE).is_file(), "kept while the cache is off");

        let cache = ResponseCache::open(&dir.path().join("responses.sqlite")).unwrap();
        let note = import(Some(&cache), dir.path()).unwrap().unwrap();
        assert!(note.contains("imported 2 paid answers"), "{note}");
        assert!(!dir.path().join(UNSAVED_FILE).exists());
        for e in [a, b] {
            assert_eq!(cache.get(&e.key).await.unwrap(), Some(e.response));
        }
        assert_eq!(import(Some(&cache), dir.path()).unwrap(), None, "nothing left to import");
    }
}
