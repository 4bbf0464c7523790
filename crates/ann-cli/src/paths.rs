//! Where `ann` finds the fetched model and data, so that it also works outside the checkout.
//!
//! In order: `$ANN_CACHE_DIR`; the home folder's `.cache` (the checkout, by default the current
//! folder) when it holds fetched files; the user's cache folder `$XDG_CACHE_HOME/agentic-nn` or
//! `~/.cache/agentic-nn` when it holds them; the `.cache` of the checkout this binary was built
//! from (as `cargo install --path crates/ann-cli` leaves it) when it still holds them; else the
//! home folder's `.cache`, where a missing file is then reported with what to set.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The variable naming the folder that holds `models/` and `data/` (as `cargo xtask fetch-*` does).
pub const CACHE_ENV: &str = "ANN_CACHE_DIR";

static CACHE: OnceLock<PathBuf> = OnceLock::new();

/// Whether `dir` holds what `cargo xtask fetch-model` / `fetch-data` write.
fn holds_fetched(dir: &Path) -> bool {
    dir.join("models").is_dir() || dir.join("data").is_dir()
}

/// The user's own cache folder for agentic-nn (`$XDG_CACHE_HOME/agentic-nn`, `~/.cache/agentic-nn`).
fn user_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("agentic-nn"))
}

/// The checkout this binary was built from (its `.cache`).
fn build_checkout_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache")
}

/// The cache folder for `home` (see the module's order); decided once per process.
pub fn resolve(home: &Path) -> &'static Path {
    CACHE.get_or_init(|| {
        if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
        let local = home.join(".cache");
        let candidates = [Some(local.clone()), user_cache(), Some(build_checkout_cache())];
        candidates.into_iter().flatten().find(|dir| holds_fetched(dir)).unwrap_or(local)
    })
}

/// The folder [`resolve`] chose (the current folder's `.cache` before it ran).
pub fn cache_dir() -> PathBuf {
    CACHE.get().cloned().unwrap_or_else(|| PathBuf::from(".cache"))
}
