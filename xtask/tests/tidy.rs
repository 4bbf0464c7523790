//! Tidy checks that keep the docs true: dependency rules of ARCHITECTURE.md, `//!` headers, README commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The code-map table of ARCHITECTURE.md: crate -> allowed internal dependencies (`None` = anything).
fn code_map() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section = text.split("## Code map").nth(1).expect("ARCHITECTURE.md has a code map");
    let mut map = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        let allowed = match cells[3] {
            "anything" => None,
            "-" => Some(BTreeSet::new()),
            deps => Some(deps.split(',').map(|d| d.trim().to_string()).collect()),
        };
        map.insert(name, allowed);
    }
    map
}

struct Package {
    name: String,
    manifest: PathBuf,
    /// (dependency name, kind: "normal" | "dev" | "build")
    deps: Vec<(String, String)>,
}

fn packages() -> Vec<Package> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().unwrap().to_string(),
            manifest: PathBuf::from(p["manifest_path"].as_str().unwrap()),
            deps: p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (d["name"].as_str().unwrap().to_string(), d["kind"].as_str().unwrap_or("normal").to_string()))
                .collect(),
        })
        .collect()
}

#[test]
fn every_crate_is_in_the_code_map_and_named_after_its_folder() {
    let map = code_map();
    for p in packages() {
        assert!(map.contains_key(&p.name), "crate {} is missing from ARCHITECTURE.md's code map", p.name);
        let folder = p.manifest.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
        if p.name.starts_with("ann-") {
            assert_eq!(folder, p.name, "folder name = crate name");
        }
    }
}

/// A library people can pick up: every crate of `crates/` has a README (what it is for, its main
/// types, an example), named by its manifest's `readme` so registries and `cargo doc` show it.
#[test]
fn every_crate_has_a_readme() {
    for p in packages().iter().filter(|p| p.manifest.starts_with(root().join("crates"))) {
        let dir = p.manifest.parent().unwrap();
        let readme =
            std::fs::read_to_string(dir.join("README.md")).unwrap_or_else(|_| panic!("{} has no README.md", p.name));
        assert!(readme.starts_with(&format!("# {}\n", p.name)), "{}'s README starts with its name", p.name);
        assert!(readme.contains("```"), "{}'s README shows an example", p.name);
        let manifest = std::fs::read_to_string(&p.manifest).unwrap();
        assert!(manifest.contains("readme = \"README.md\""), "{} sets readme = \"README.md\"", p.name);
    }
}

#[test]
fn dependencies_follow_the_code_map() {
    let map = code_map();
    for p in packages() {
        for (dep, kind) in &p.deps {
            if dep == "ann-test-support" {
                assert_eq!(kind, "dev", "{} may use ann-test-support only as a dev-dependency", p.name);
                continue;
            }
            if !dep.starts_with("ann-") || kind == "dev" {
                continue;
            }
            if let Some(Some(allowed)) = map.get(&p.name) {
                assert!(allowed.contains(dep), "{} depends on {dep}, which ARCHITECTURE.md does not allow", p.name);
            }
        }
        let names: BTreeSet<&str> = p.deps.iter().map(|(d, _)| d.as_str()).collect();
        let knows = |a: &str, b: &str| p.name == a && names.contains(b);
        assert!(
            !knows("ann-graph", "ann-eval") && !knows("ann-eval", "ann-graph"),
            "ann-graph and ann-eval never know each other"
        );
        let http = ["reqwest", "hyper", "axum", "ureq", "opentelemetry-otlp"];
        if !["ann-llm-openai", "ann-test-support", "ann-telemetry", "benches"].contains(&p.name.as_str()) {
            for (dep, kind) in &p.deps {
                assert!(!(http.contains(&dep.as_str()) && kind == "normal"), "{} uses the HTTP crate {dep}", p.name);
            }
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with("snapshots") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_doc_line() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "benches"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("//! "), "{} must start with a `//!` line saying what it is for", f.display());
    }
}

#[test]
fn readme_starts_with_two_commands_and_ci_runs_the_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(commands.len(), 2, "README starts with exactly two set-up commands");
    let test_command = commands[1].split('#').next().unwrap().trim();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == test_command), ".ci/run must run `{test_command}`");
}

/// The crates where the method lives stay readable: no file holds more than one idea's worth.
#[test]
fn method_files_stay_small() {
    const MAX_LINES: usize = 500;
    let mut files = Vec::new();
    for krate in ["ann-graph", "ann-textgrad"] {
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 10);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files above {MAX_LINES} lines; split them along a seam: {long:?}");
}

/// Comments cite the method's own terms (ARCHITECTURE.md's glossary), never section numbers of a
/// document a reader of the repository cannot open.
#[test]
fn comments_cite_no_outside_sections() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "benches", "examples"] {
        rust_files(&root().join(dir), &mut files);
    }
    let cites = |line: &str| {
        let lower = line.to_lowercase();
        lower.contains("of the design")
            || lower.contains("../shared/")
            || lower.contains('§')
            || ["design ", "method ", "section "].iter().any(|word| {
                lower.match_indices(word).any(|(i, w)| lower[i + w.len()..].starts_with(|c: char| c.is_ascii_digit()))
            })
    };
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with("tidy.rs")) {
        for (n, line) in std::fs::read_to_string(f).unwrap().lines().enumerate() {
            let comment = line.trim_start().starts_with("//");
            if comment && cites(line) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "comments citing outside sections:\n{}", found.join("\n"));
}

/// A source file compiled into a second crate through `#[path]` is visible here: it must be listed,
/// and self-contained (no `crate::`/`super::` paths outside its tests), so both crates compile the
/// same rule without one depending on the other.
#[test]
fn path_includes_are_listed_and_self_contained() {
    // (including file, included file), relative to the workspace root.
    const LISTED: &[(&str, &str)] = &[
        ("xtask/src/reproduce/plan.rs", "crates/ann-experiment/src/overrides.rs"),
        ("xtask/tests/reproduce.rs", "xtask/src/scrub.rs"),
        ("examples/tests/examples.rs", "xtask/src/scrub.rs"),
    ];
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "benches", "examples"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut seen = Vec::new();
    for f in &files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let Some(rest) = line.trim().strip_prefix("#[path = \"") else { continue };
            let target = rest.split('"').next().unwrap();
            let included = f.parent().unwrap().join(target).canonicalize().unwrap();
            let rel = |p: &Path| p.strip_prefix(root().canonicalize().unwrap()).unwrap().display().to_string();
            seen.push((rel(&f.canonicalize().unwrap()), rel(&included)));
        }
    }
    let listed: Vec<(String, String)> = LISTED.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(seen, listed, "every #[path] include is listed in this test (and in ARCHITECTURE.md)");
    for (_, included) in LISTED {
        let text = std::fs::read_to_string(root().join(included)).unwrap();
        let body = text.split("#[cfg(test)]").next().unwrap();
        assert!(
            !body.contains("crate::") && !body.contains("super::"),
            "{included} is compiled into two crates and must not name either crate's modules"
        );
    }
}
