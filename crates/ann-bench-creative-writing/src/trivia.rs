//! Trivia Creative Writing (Solo-Performance-Prompting): loader and scorer for a file the user gives.
//!
//! Layout (SPP's `trivia_creative_writing_100_n_5.jsonl`): one JSON object a line with `topic`,
//! `questions` (N strings) and `answers` (N lists of accepted aliases); other fields are ignored.
//! Score = fraction of questions whose answer is mentioned in the story. "Mentioned" follows SPP's
//! `normalize_answer` (lower case, punctuation and the articles a/an/the removed, whitespace
//! collapsed) on both sides, then asks for the alias as whole words of the story (SPP asks for a
//! plain substring, which lets the alias "1" match inside "1990").

use std::collections::BTreeMap;
use std::path::Path;

use ann_eval::data::read_jsonl;
use ann_eval::{Benchmark, EvalError, Evaluation, Evaluator, Example, Split, Splits};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::prompts;

/// Default split of the SPP file (100 rows): 20 train / 10 validation / 70 test.
pub const SPLIT_SIZES: [usize; 3] = [20, 10, 70];
/// Answer-format rule of the last layer.
pub const ANSWER_FORMAT: &str = "one short coherent story that names the answer to every question";

/// One row of a Trivia Creative Writing file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRow")]
pub struct TriviaRow {
    pub topic: String,
    pub questions: Vec<String>,
    /// Accepted aliases of each question's answer (same length as `questions`, none empty).
    pub answers: Vec<Vec<String>>,
}

#[derive(Deserialize)]
struct RawRow {
    topic: String,
    questions: Vec<String>,
    answers: Vec<Vec<String>>,
}

impl TryFrom<RawRow> for TriviaRow {
    type Error = String;
    fn try_from(raw: RawRow) -> Result<Self, Self::Error> {
        if raw.questions.is_empty() {
            return Err("no questions".into());
        }
        if raw.questions.len() != raw.answers.len() {
            return Err(format!("{} questions but {} answer lists", raw.questions.len(), raw.answers.len()));
        }
        if let Some(i) = raw.answers.iter().position(|a| a.iter().all(|s| normalize_answer(s).is_empty())) {
            return Err(format!("question {} has no usable answer alias", i + 1));
        }
        Ok(Self { topic: raw.topic, questions: raw.questions, answers: raw.answers })
    }
}

/// SPP's `normalize_answer`: lower case, no punctuation, no articles, single spaces.
pub fn normalize_answer(text: &str) -> String {
    let lowered: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation() && !matches!(c, '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}'))
        .collect();
    lowered.split_whitespace().filter(|w| !matches!(*w, "a" | "an" | "the")).collect::<Vec<_>>().join(" ")
}

/// Whether one of `aliases` is mentioned in `story` (both normalised, whole words).
pub fn mentions(story: &str, aliases: &[String]) -> bool {
    let story = format!(" {} ", normalize_answer(story));
    aliases.iter().map(|a| normalize_answer(a)).filter(|a| !a.is_empty()).any(|a| story.contains(&format!(" {a} ")))
}

/// Score a story: fraction of questions answered; feedback names the missing questions.
pub fn score_story(story: &str, questions: &[String], answers: &[Vec<String>]) -> Evaluation {
    let missing: Vec<usize> = answers.iter().enumerate().filter(|(_, a)| !mentions(story, a)).map(|(i, _)| i).collect();
    let total = answers.len().max(1);
    let score = (total - missing.len()) as f64 / total as f64;
    if missing.is_empty() {
        return Evaluation { score, passed: true, feedback: format!("all {total} answers mentioned") };
    }
    let numbers: Vec<String> = missing.iter().map(|i| (i + 1).to_string()).collect();
    let texts: Vec<&str> = missing.iter().filter_map(|&i| questions.get(i).map(|q| q.trim())).collect();
    Evaluation {
        score,
        passed: false,
        feedback: format!("missing answers for questions {}: {}", numbers.join(", "), texts.join(" | ")),
    }
}

/// Read a Trivia Creative Writing file (errors name file and line).
pub fn load_rows(path: &Path) -> Result<Vec<TriviaRow>, EvalError> {
    read_jsonl(path)
}

/// The example for row `index`: id `trivia-cw/<index>`, metadata `questions` and `answers`.
pub fn to_example(index: usize, row: &TriviaRow) -> Example {
    let mut metadata = BTreeMap::new();
    metadata.insert("topic".into(), serde_json::json!(row.topic));
    metadata.insert("questions".into(), serde_json::json!(row.questions));
    metadata.insert("answers".into(), serde_json::json!(row.answers));
    Example {
        id: format!("trivia-cw/{index}"),
        input: prompts::render_trivia(&row.topic, &row.questions),
        reference: None,
        metadata,
    }
}

/// Scores a story against an example made by [`to_example`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TriviaScorer;

#[async_trait]
impl Evaluator for TriviaScorer {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let field = |name: &str| {
            example
                .metadata
                .get(name)
                .cloned()
                .ok_or_else(|| EvalError::Config(format!("example {} has no `{name}` metadata", example.id)))
        };
        let bad = |e: serde_json::Error| EvalError::Config(format!("example {}: {e}", example.id));
        let questions: Vec<String> = serde_json::from_value(field("questions")?).map_err(bad)?;
        let answers: Vec<Vec<String>> = serde_json::from_value(field("answers")?).map_err(bad)?;
        Ok(score_story(output, &questions, &answers))
    }
}

/// Trivia Creative Writing as a benchmark over a user-given file.
#[derive(Debug, Clone)]
pub struct TriviaCreativeWriting {
    splits: Splits,
}

impl TriviaCreativeWriting {
    /// Load `path` and split it with `seed` into the given sizes (default [`SPLIT_SIZES`]).
    pub fn from_file(path: &Path, sizes: &[usize; 3], seed: u64) -> Result<Self, EvalError> {
        let rows = load_rows(path)?;
        let examples: Vec<Example> = rows.iter().enumerate().map(|(i, r)| to_example(i, r)).collect();
        Self::from_examples(&examples, sizes, seed)
    }

    /// Split examples made by [`to_example`] with `seed` into the given sizes.
    pub fn from_examples(examples: &[Example], sizes: &[usize; 3], seed: u64) -> Result<Self, EvalError> {
        Ok(Self { splits: Splits::seeded(examples, sizes, seed)? })
    }
}

#[async_trait]
impl Benchmark for TriviaCreativeWriting {
    fn name(&self) -> &str {
        "trivia-cw"
    }
    fn task_description(&self) -> &str {
        prompts::trivia_task_description()
    }
    fn answer_format(&self) -> &str {
        ANSWER_FORMAT
    }
    fn examples(&self, split: Split) -> &[Example] {
        self.splits.get(split)
    }
    fn extract_answer(&self, _output: &str) -> Option<String> {
        None
    }
    fn starting_network(&self) -> &str {
        include_str!("../network-trivia.json")
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        TriviaScorer.evaluate(example, output).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_spp() {
        assert_eq!(normalize_answer("The  Beatles!"), "beatles");
        assert_eq!(normalize_answer("J.R.R. Tolkien"), "jrr tolkien");
        assert_eq!(normalize_answer("A Tale of Two Cities"), "tale of two cities");
    }

    #[test]
    fn mentions_whole_words_only() {
        let aliases = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(mentions("They listened to the Beatles all night.", &aliases(&["The Beatles"])));
        assert!(mentions("Mars, the red one.", &aliases(&["Planet Mars", "Mars"])));
        assert!(!mentions("It happened in 1990.", &aliases(&["1", "one"])));
        assert!(!mentions("Marshmallows.", &aliases(&["Mars"])));
    }

    #[test]
    fn score_and_feedback() {
        let q = vec!["Red planet?".to_string(), "Author of Hamlet?".to_string(), "Largest ocean?".to_string()];
        let a = vec![
            vec!["Mars".to_string()],
            vec!["Shakespeare".into(), "William Shakespeare".into()],
            vec!["Pacific".into()],
        ];
        let e = score_story("Shakespeare dreamt of Mars.", &q, &a);
        assert!((e.score - 2.0 / 3.0).abs() < 1e-12 && !e.passed);
        assert_eq!(e.feedback, "missing answers for questions 3: Largest ocean?");
        let e = score_story("Nothing here.", &q, &a);
        assert_eq!(
            (e.score, e.feedback.as_str()),
            (0.0, "missing answers for questions 1, 2, 3: Red planet? | Author of Hamlet? | Largest ocean?")
        );
        let e = score_story("Shakespeare sailed the Pacific to Mars.", &q, &a);
        assert_eq!((e.score, e.passed, e.feedback.as_str()), (1.0, true, "all 3 answers mentioned"));
    }
}
