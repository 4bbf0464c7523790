//! The environment a nested cargo must not inherit from `cargo run` / `cargo test` (self-contained:
//! `xtask/tests/reproduce.rs` compiles this same file with `#[path]`).

use std::process::Command;

/// Remove the variables `cargo run` sets for the package it runs (xtask's manifest folder, name,
/// version, ...) from a nested cargo's environment: build scripts that watch one of them (ring
/// watches `CARGO_MANIFEST_DIR`) would otherwise rebuild, and everything above them, whenever a
/// build alternates between `cargo xtask ...` and a plain `cargo ...`.
pub fn scrub_package_env(command: &mut Command) {
    const PREFIXES: [&str; 3] = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"];
    const NAMES: [&str; 5] =
        ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"];
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name) {
            command.env_remove(name);
        }
    }
}
