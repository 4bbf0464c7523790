//! Loading the MATH files of `cargo xtask fetch-data`: `math-train.jsonl`, `math-test.jsonl`, `math500.jsonl`.
//!
//! MATH-500 rows carry their `answer`; the train and test rows get theirs from the last non-empty
//! `\boxed{}` of `solution`. Malformed rows are errors naming file and line.

use std::path::Path;

use ann_eval::EvalError;
use ann_eval::data::read_jsonl;
use serde::Deserialize;

use crate::extract::last_boxed;

/// File names inside the data folder.
pub const TRAIN_FILE: &str = "math-train.jsonl";
pub const TEST_FILE: &str = "math-test.jsonl";
pub const MATH500_FILE: &str = "math500.jsonl";

/// One MATH problem with its reference answer (raw LaTeX, as in the data).
#[derive(Debug, Clone, PartialEq)]
pub struct MathProblem {
    /// Stable id: `math-train/<line>`, `math-test/<idx>`, `math500/<subject>/<n>`.
    pub id: String,
    pub problem: String,
    pub solution: String,
    pub answer: String,
    /// `Algebra`, `Intermediate Algebra`, `Counting & Probability`, ...
    pub subject: String,
    /// 1..=5; `None` where the data says `Level ?`.
    pub level: Option<u32>,
}

#[derive(Deserialize)]
struct HendrycksRow {
    problem: String,
    solution: String,
    level: serde_json::Value,
    #[serde(rename = "type")]
    subject: String,
    #[serde(default)]
    idx: Option<u64>,
}

#[derive(Deserialize)]
struct Math500Row {
    problem: String,
    solution: String,
    answer: String,
    subject: String,
    level: serde_json::Value,
    unique_id: String,
}

/// `"Level 3"`, `3` -> `Some(3)`; `"Level ?"` -> `None`.
fn parse_level(v: &serde_json::Value) -> Option<u32> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim_start_matches("Level").trim().parse().ok(),
        _ => None,
    }
}

/// The 1-based line of the `index`-th non-blank line of `path` (for errors found after parsing).
fn line_of_row(path: &Path, index: usize) -> usize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).nth(index).map(|(i, _)| i + 1))
        .unwrap_or(index + 1)
}

/// Rows of a train/test file. A row whose solution has no non-empty `\boxed{}` has no answer and is
/// skipped (the pinned train file has two: lines 5342 and 5344 end with an empty `\boxed{}`); when more than
/// one row in a hundred lacks an answer the file is not a MATH file, and the first such row is
/// reported as a bad row.
fn hendrycks_file(path: &Path, id_prefix: &str) -> Result<Vec<MathProblem>, EvalError> {
    let rows: Vec<HendrycksRow> = read_jsonl(path)?;
    let total = rows.len();
    let mut unanswered = Vec::new();
    let mut problems = Vec::with_capacity(total);
    for (i, row) in rows.into_iter().enumerate() {
        let Some(answer) = last_boxed(&row.solution) else {
            unanswered.push(i);
            continue;
        };
        let id = match row.idx {
            Some(idx) => format!("{id_prefix}/{idx}"),
            None => format!("{id_prefix}/{}", i + 1),
        };
        problems.push(MathProblem {
            id,
            problem: row.problem,
            solution: row.solution,
            answer,
            subject: row.subject,
            level: parse_level(&row.level),
        });
    }
    if let Some(&first) = unanswered.first()
        && unanswered.len() * 100 > total
    {
        return Err(EvalError::BadRow {
            path: path.to_path_buf(),
            line: line_of_row(path, first),
            message: format!("solution has no \\boxed{{}} answer ({} of {total} rows lack one)", unanswered.len()),
        });
    }
    Ok(problems)
}

/// `math-train.jsonl` (7,500 rows, 7,498 with an answer); ids `math-train/<1-based row>`.
pub fn load_math_train(path: &Path) -> Result<Vec<MathProblem>, EvalError> {
    hendrycks_file(path, "math-train")
}

/// `math-test.jsonl` (5,000 rows); ids `math-test/<idx>`.
pub fn load_math_test(path: &Path) -> Result<Vec<MathProblem>, EvalError> {
    hendrycks_file(path, "math-test")
}

/// `math500.jsonl` (500 rows); ids `math500/<subject>/<n>` from `unique_id` (`test/algebra/1.json`).
pub fn load_math500(path: &Path) -> Result<Vec<MathProblem>, EvalError> {
    let rows: Vec<Math500Row> = read_jsonl(path)?;
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            if row.answer.trim().is_empty() {
                return Err(EvalError::BadRow {
                    path: path.to_path_buf(),
                    line: line_of_row(path, i),
                    message: "empty `answer`".into(),
                });
            }
            let stem = row.unique_id.trim_start_matches("test/").trim_end_matches(".json");
            Ok(MathProblem {
                id: format!("math500/{stem}"),
                problem: row.problem,
                solution: row.solution,
                answer: row.answer,
                subject: row.subject,
                level: parse_level(&row.level),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        for (v, expected) in [
            (serde_json::json!("Level 5"), Some(5)),
            (serde_json::json!("Level ?"), None),
            (serde_json::json!(2), Some(2)),
            (serde_json::json!(null), None),
        ] {
            assert_eq!(parse_level(&v), expected, "{v}");
        }
    }
}
