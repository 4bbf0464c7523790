//! `cargo xtask local-speed --vs-llama-cpp`: the embedded engine against llama.cpp on the same file.
//!
//! llama.cpp comes in through the `llama-cpp-2` crate in `bench/llama-cpp-compare/`, a package of its
//! own (own Cargo.lock, own target folder `target/llama-cpp-compare/`) that is not a member of the
//! workspace: the library and CI never compile llama.cpp. Building it needs cmake, a C++ compiler and
//! libclang (for the bindings); this step checks for them first and names the Debian packages.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, fetch_model, scrub_package_env, workspace_root};

/// Programs and libraries the llama.cpp build needs, with the Debian package that brings each.
fn missing_tools() -> Vec<&'static str> {
    let runs = |program: &str| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    let mut missing = Vec::new();
    if !runs("cmake") {
        missing.push("cmake");
    }
    if !runs("c++") && !runs("g++") && !runs("clang++") {
        missing.push("g++");
    }
    let libclang = std::env::var_os("LIBCLANG_PATH").is_some()
        || ["/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib"]
            .iter()
            .chain(&["/usr/lib/llvm-14/lib", "/usr/lib/llvm-15/lib", "/usr/lib/llvm-16/lib", "/usr/lib/llvm-19/lib"])
            .any(|dir| {
                std::fs::read_dir(dir).is_ok_and(|entries| {
                    entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libclang.so"))
                })
            });
    if !libclang {
        missing.push("libclang-dev");
    }
    missing
}

pub fn run(threads: u32, model: Option<&Path>) -> Result<()> {
    let missing = missing_tools();
    if !missing.is_empty() {
        bail!(
            "building llama.cpp for the comparison needs {}: install them (Debian/Ubuntu: `apt-get install {}`), \
             or set LIBCLANG_PATH to the folder holding libclang.so",
            missing.join(", "),
            missing.join(" ")
        );
    }
    let input = match model {
        Some(path) => path.to_path_buf(),
        None => {
            fetch_model::run(&fetch_model::Args::default()).context("fetching the embedded model")?;
            fetch_model::model_path()
        }
    };
    cargo(&["build", "--release", "--quiet", "-p", "ann-llm-local", "--example", "speed"], &[])?;
    let root = workspace_root();
    let target = root.join("target").join("llama-cpp-compare");
    eprintln!("building llama.cpp (bench/llama-cpp-compare; the first build takes several minutes)...");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    scrub_package_env(&mut build);
    let status = build
        .current_dir(&root)
        .args(["build", "--release", "--locked", "--manifest-path", "bench/llama-cpp-compare/Cargo.toml"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("running cargo build for bench/llama-cpp-compare")?;
    if !status.success() {
        bail!("building bench/llama-cpp-compare failed ({status})");
    }
    let status = Command::new(target.join("release").join("llama-cpp-compare"))
        .arg("table")
        .arg("--ours")
        .arg(root.join("target/release/examples/speed"))
        .arg("--model")
        .arg(&input)
        .arg("--work")
        .arg(target.join("work"))
        .arg("--threads")
        .arg(threads.to_string())
        .status()
        .context("running llama-cpp-compare")?;
    if !status.success() {
        bail!("the comparison failed ({status})");
    }
    Ok(())
}
