//! `ann cache export|import` on the committed reproduction cassette: a round trip gives the same
//! bytes, and a damaged cassette is refused whole, naming its file and line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/tests/data/paper-mmlu-ml.jsonl.gz")
}

fn ann(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ann")).arg("cache").args(args).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_cassette_round_trips_through_a_cache_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("responses.sqlite");
    let said = ok(ann(&[Path::new("import"), &fixture(), &cache]));
    assert!(said.starts_with("105 of 105 entries added"), "{said}");
    let again = ok(ann(&[Path::new("import"), &fixture(), &cache]));
    assert!(again.starts_with("0 of 105 entries added"), "importing twice changes nothing: {again}");

    let (gz, plain) = (tmp.path().join("out.jsonl.gz"), tmp.path().join("out.jsonl"));
    ok(ann(&[Path::new("export"), &cache, &gz]));
    ok(ann(&[Path::new("export"), &cache, &plain]));
    assert_eq!(std::fs::read(&gz).unwrap(), std::fs::read(fixture()).unwrap());
    let lines: Vec<String> = std::fs::read_to_string(&plain).unwrap().lines().map(String::from).collect();
    assert_eq!(lines.len(), 105);
    let keys: Vec<&str> = lines.iter().map(|l| &l[8..72]).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted by key");

    // One edited answer: the key no longer matches, nothing is imported, the line is named.
    let mut damaged = lines.clone();
    damaged[1] = damaged[1].replacen("\"model\":\"gpt-4o-mini\"", "\"model\":\"gpt-4o\"", 1);
    assert_ne!(damaged[1], lines[1]);
    let bad = tmp.path().join("damaged.jsonl");
    std::fs::write(&bad, damaged.join("\n") + "\n").unwrap();
    let fresh = tmp.path().join("fresh.sqlite");
    let out = ann(&[Path::new("import"), &bad, &fresh]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2", bad.display())) && err.contains("does not match"), "{err}");
    let out = ann(&[Path::new("export"), &tmp.path().join("missing.sqlite"), &plain]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a response cache"));
}
