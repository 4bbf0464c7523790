//! InfiAgent-DABench: loader and closed-form scorer for files the user gives.
//!
//! Layout (the `da-dev-*` release): a questions JSONL (`id`, `question`, `constraints`, `format`,
//! `file_name`, optional `concepts` and `level`), a labels JSONL (`id`, `common_answers`: a list of
//! `[name, value]` pairs) and a folder of CSV tables named by `file_name`. Answers are closed-form
//! `@name[value]`; each expected name is compared with the response's last `@name[...]`: equal when the
//! trimmed, case-insensitive strings match or both parse as numbers within 1e-6 (relative to the
//! label for large values). Score = fraction of sub-answers right; passed = all right.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use ann_eval::data::read_jsonl;
use ann_eval::{Benchmark, EvalError, Evaluation, Evaluator, Example, Split, Splits};
use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::prompts;

/// Answer-format rule of the last layer.
pub const ANSWER_FORMAT: &str = "@name[value]";

/// The file names looked for in a DABench folder, release names first: questions, labels, tables.
pub const LAYOUTS: [[&str; 3]; 2] =
    [["da-dev-questions.jsonl", "da-dev-labels.jsonl", "da-dev-tables"], ["questions.jsonl", "labels.jsonl", "tables"]];

/// Lines of the CSV table shown in the example's input (header included).
pub const PREVIEW_LINES: usize = 6;

/// One question row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaQuestion {
    pub id: u64,
    pub question: String,
    #[serde(default)]
    pub concepts: Vec<String>,
    #[serde(default)]
    pub constraints: String,
    pub format: String,
    pub file_name: String,
    #[serde(default)]
    pub level: String,
}

/// One label row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaLabel {
    pub id: u64,
    /// `[name, value]` pairs.
    pub common_answers: Vec<(String, String)>,
}

static CLOSED_FORM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"@(\w+)\[([^\]]*)\]").expect("valid regex"));

/// Every `@name[value]` of a response; a name given twice keeps its last value.
pub fn parse_closed_form(output: &str) -> BTreeMap<String, String> {
    CLOSED_FORM.captures_iter(output).map(|c| (c[1].to_string(), c[2].trim().to_string())).collect()
}

/// Whether a response value equals a label value (see the module docs).
pub fn values_equal(got: &str, want: &str) -> bool {
    let strip = |s: &str| s.trim().trim_matches(['"', '\'']).trim().to_lowercase();
    let (g, w) = (strip(got), strip(want));
    if g == w {
        return true;
    }
    match (g.parse::<f64>(), w.parse::<f64>()) {
        (Ok(g), Ok(w)) if g.is_finite() && w.is_finite() => (g - w).abs() <= 1e-6 * w.abs().max(1.0),
        _ => false,
    }
}

/// Score a response against the expected `[name, value]` pairs.
pub fn score_response(output: &str, expected: &[(String, String)]) -> Evaluation {
    let got = parse_closed_form(output);
    let mut problems = Vec::new();
    for (name, want) in expected {
        match got.get(name) {
            Some(value) if values_equal(value, want) => {}
            Some(value) => problems.push(format!("@{name}: expected {want}, got {value}")),
            None => problems.push(format!("@{name}: missing")),
        }
    }
    let total = expected.len().max(1);
    let score = (expected.len() - problems.len()) as f64 / total as f64;
    if problems.is_empty() {
        Evaluation { score, passed: true, feedback: format!("all {} answers correct", expected.len()) }
    } else {
        Evaluation { score, passed: false, feedback: problems.join("; ") }
    }
}

/// Load questions, labels and tables into examples (id `dabench/<id>`; metadata `answers`,
/// `file_name`, `table_path`, `level`). A question without a label, a duplicate id or a missing table
/// is an error naming the questions file and line.
pub fn load(questions: &Path, labels: &Path, tables: &Path) -> Result<Vec<Example>, EvalError> {
    let rows: Vec<DaQuestion> = read_jsonl(questions)?;
    let label_rows: Vec<DaLabel> = read_jsonl(labels)?;
    let label_map: BTreeMap<u64, DaLabel> = label_rows.into_iter().map(|l| (l.id, l)).collect();
    let text =
        std::fs::read_to_string(questions).map_err(|source| EvalError::Io { path: questions.to_path_buf(), source })?;
    let lines: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, _)| i + 1).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut examples = Vec::with_capacity(rows.len());
    for (row, &line) in rows.iter().zip(&lines) {
        let bad = |message: String| EvalError::BadRow { path: questions.to_path_buf(), line, message };
        if !seen.insert(row.id) {
            return Err(bad(format!("duplicate id {}", row.id)));
        }
        let label =
            label_map.get(&row.id).ok_or_else(|| bad(format!("no label for id {} in {}", row.id, labels.display())))?;
        let table = tables.join(&row.file_name);
        let table_text = std::fs::read_to_string(&table)
            .map_err(|e| bad(format!("table {} cannot be read: {e}", table.display())))?;
        let preview: Vec<&str> = table_text.lines().take(PREVIEW_LINES).collect();
        let mut metadata = BTreeMap::new();
        metadata.insert("answers".into(), serde_json::json!(label.common_answers));
        metadata.insert("file_name".into(), serde_json::json!(row.file_name));
        metadata.insert("table_path".into(), serde_json::json!(table.display().to_string()));
        metadata.insert("level".into(), serde_json::json!(row.level));
        examples.push(Example {
            id: format!("dabench/{}", row.id),
            input: prompts::render_dabench(
                &row.question,
                &row.constraints,
                &row.format,
                &row.file_name,
                &preview.join("\n"),
            ),
            reference: Some(
                label.common_answers.iter().map(|(n, v)| format!("@{n}[{v}]")).collect::<Vec<_>>().join(" "),
            ),
            metadata,
        });
    }
    Ok(examples)
}

/// Scores a response against an example made by [`load`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DaBenchScorer;

#[async_trait]
impl Evaluator for DaBenchScorer {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let answers = example
            .metadata
            .get("answers")
            .cloned()
            .ok_or_else(|| EvalError::Config(format!("example {} has no `answers` metadata", example.id)))?;
        let expected: Vec<(String, String)> =
            serde_json::from_value(answers).map_err(|e| EvalError::Config(format!("example {}: {e}", example.id)))?;
        Ok(score_response(output, &expected))
    }
}

/// Load a DABench folder: the release's `da-dev-questions.jsonl`, `da-dev-labels.jsonl` and
/// `da-dev-tables/`, or `questions.jsonl`, `labels.jsonl` and `tables/` ([`LAYOUTS`]).
pub fn load_dir(dir: &Path) -> Result<Vec<Example>, EvalError> {
    for [questions, labels, tables] in LAYOUTS {
        if dir.join(questions).is_file() {
            return load(&dir.join(questions), &dir.join(labels), &dir.join(tables));
        }
    }
    Err(EvalError::MissingData {
        path: dir.join(LAYOUTS[0][0]),
        hint: format!("a DABench folder holds {} (or {}), its labels and its tables", LAYOUTS[0][0], LAYOUTS[1][0]),
    })
}

/// DABench as a benchmark over the user's files. Its answers need the table computed, which an
/// agent without a code tool cannot do beyond the preview: scores measure format and reasoning only.
#[derive(Debug, Clone)]
pub struct DaBench {
    splits: Splits,
}

impl DaBench {
    /// Split `examples` with `seed` into the given sizes.
    pub fn from_examples(examples: &[Example], sizes: &[usize; 3], seed: u64) -> Result<Self, EvalError> {
        Ok(Self { splits: Splits::seeded(examples, sizes, seed)? })
    }
}

#[async_trait]
impl Benchmark for DaBench {
    fn name(&self) -> &str {
        "dabench"
    }
    fn task_description(&self) -> &str {
        prompts::dabench_task_description()
    }
    fn answer_format(&self) -> &str {
        ANSWER_FORMAT
    }
    fn examples(&self, split: Split) -> &[Example] {
        self.splits.get(split)
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        let got = parse_closed_form(output);
        (!got.is_empty())
            .then(|| got.iter().map(|(n, v)| format!("@{n}[{}]", v.to_lowercase())).collect::<Vec<_>>().join(" "))
    }
    fn starting_network(&self) -> &str {
        include_str!("../network-dabench.json")
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        DaBenchScorer.evaluate(example, output).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn closed_form_parsing() {
        let got = parse_closed_form("First @mean[3.0], then @mean[ 34.65 ] and @city[Paris] @empty[]");
        assert_eq!(got["mean"], "34.65");
        assert_eq!(got["city"], "Paris");
        assert_eq!(got["empty"], "");
    }

    #[test]
    fn value_equality() {
        for (g, w, eq) in [
            ("34.65", "34.65", true),
            ("34.650", "34.65", true),
            ("34.66", "34.65", false),
            ("Paris", "paris", true),
            ("'male'", "male", true),
            ("1000000.0000001", "1000000", true),
            ("True", "true", true),
            ("nan", "nan", true),
            ("abc", "34", false),
        ] {
            assert_eq!(values_equal(g, w), eq, "{g} vs {w}");
        }
    }

    #[test]
    fn scoring() {
        let want = pairs(&[("mean_fare", "34.65"), ("max_age", "80")]);
        let all = score_response("The answers: @mean_fare[34.65] @max_age[80.0]", &want);
        assert_eq!((all.score, all.passed, all.feedback.as_str()), (1.0, true, "all 2 answers correct"));
        let half = score_response("@mean_fare[34.6]", &want);
        assert_eq!((half.score, half.passed), (0.0, false));
        assert_eq!(half.feedback, "@mean_fare: expected 34.65, got 34.6; @max_age: missing");
        let one = score_response("@max_age[80]", &want);
        assert_eq!(one.score, 0.5);
    }
}
