//! Reading dataset files (JSONL, errors naming file and line) and seeded, deterministic splits.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;

use crate::EvalError;

/// Parse every non-blank line of a JSONL file as `T`; a bad row is an error naming file and line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, EvalError> {
    parse_jsonl(&read_data_file(path)?, path)
}

/// Read a dataset file as text; a missing file is [`EvalError::MissingData`] saying how to fetch it.
pub fn read_data_file(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            EvalError::MissingData { path: path.to_path_buf(), hint: "run `cargo xtask fetch-data`".into() }
        } else {
            EvalError::Io { path: path.to_path_buf(), source }
        }
    })
}

/// Parse JSONL text that came from `path` (used in error messages).
pub fn parse_jsonl<T: DeserializeOwned>(text: &str, path: &Path) -> Result<Vec<T>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| EvalError::BadRow {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// The fetched-data folder, `$ANN_CACHE_DIR/data` or else `<workspace>/.cache/data` (as `cargo xtask
/// fetch-data` writes it), for tests and binaries. Libraries take the folder as an argument instead.
pub fn workspace_data_dir() -> PathBuf {
    let cache = std::env::var_os("ANN_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
    cache.join("data")
}

/// Shuffle `items` with `seed` and cut consecutive parts of the given sizes (train, validation,
/// test, ...). Asking for more items than there are is an error; items beyond the sizes are unused.
pub fn seeded_split<T: Clone>(items: &[T], sizes: &[usize], seed: u64) -> Result<Vec<Vec<T>>, EvalError> {
    let wanted: usize = sizes.iter().sum();
    if wanted > items.len() {
        return Err(EvalError::Config(format!(
            "split sizes {sizes:?} need {wanted} items, only {} exist",
            items.len()
        )));
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut parts = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for &size in sizes {
        parts.push(order[start..start + size].iter().map(|&i| items[i].clone()).collect());
        start += size;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_row_names_file_and_line() {
        let err = parse_jsonl::<serde_json::Value>("{\"a\":1}\n\n{oops\n", Path::new("d/x.jsonl")).unwrap_err();
        assert!(err.to_string().starts_with("d/x.jsonl:3: "), "{err}");
    }

    #[test]
    fn missing_file_says_how_to_fetch() {
        let err = read_jsonl::<serde_json::Value>(Path::new("/nonexistent/x.jsonl")).unwrap_err();
        assert!(err.to_string().contains("cargo xtask fetch-data"), "{err}");
    }

    #[test]
    fn split_is_seeded_disjoint_and_sized() {
        let items: Vec<u32> = (0..112).collect();
        let a = seeded_split(&items, &[40, 20, 52], 7).unwrap();
        assert_eq!(a, seeded_split(&items, &[40, 20, 52], 7).unwrap());
        assert_ne!(a, seeded_split(&items, &[40, 20, 52], 8).unwrap());
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), [40, 20, 52]);
        let mut all: Vec<u32> = a.concat();
        all.sort();
        assert_eq!(all, items);
        assert!(seeded_split(&items, &[100, 20], 7).is_err());
    }
}
