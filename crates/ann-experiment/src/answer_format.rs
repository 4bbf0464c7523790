//! `answer-format`: the project's own tiny benchmark, where what must be learnt is the answer's form.
//!
//! Each example is an easy yes/no question written for this project (no external data); a reply
//! scores 1 when its first word is the right `Yes` or `No`, 0.5 when it starts with the wrong one,
//! 0 when it starts with anything else, and the feedback says which. A small model left to itself
//! opens with a sentence ("The answer is ..."), so a starting network that never mentions the form
//! scores 0, and one prompt edit that states it raises the score: the main job (`ann demo`) shows
//! the backward phase learning on the embedded model with this task.

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use async_trait::async_trait;

/// The answer format: what a reply must start with.
pub const FORMAT: &str = "Yes or No";

const TASK: &str = "Answer an easy yes/no question about everyday things. The reply must start with Yes or No.";

/// The questions with their answers, in split order: 8 training, 16 validation, 16 test
/// questions (yes and no about even in each).
const QUESTIONS: [(&str, &str); 40] = [
    ("Is fire hot?", "yes"),
    ("Can a fish fly to the moon?", "no"),
    ("Is snow cold?", "yes"),
    ("Do cats bark?", "no"),
    ("Is the sky blue on a clear day?", "yes"),
    ("Can a dog read books?", "no"),
    ("Do birds have wings?", "yes"),
    ("Is ice made of fire?", "no"),
    ("Is water wet?", "yes"),
    ("Can a stone swim?", "no"),
    ("Do fish live in water?", "yes"),
    ("Is the sun cold?", "no"),
    ("Is grass green?", "yes"),
    ("Do cows lay eggs?", "no"),
    ("Does the sun rise in the morning?", "yes"),
    ("Is a mouse bigger than an elephant?", "no"),
    ("Is sugar sweet?", "yes"),
    ("Can a car fly like a bird?", "no"),
    ("Do people sleep at night?", "yes"),
    ("Is a rock soft like a pillow?", "no"),
    ("Is milk white?", "yes"),
    ("Do trees walk around?", "no"),
    ("Can babies drive cars?", "no"),
    ("Does rain fall from the sky?", "yes"),
    ("Is a lemon sour?", "yes"),
    ("Do dogs have four legs?", "yes"),
    ("Is the moon made of cheese?", "no"),
    ("Can you drink sand?", "no"),
    ("Do bees make honey?", "yes"),
    ("Is an apple a fruit?", "yes"),
    ("Do snakes have legs?", "no"),
    ("Is night darker than day?", "yes"),
    ("Can a chair talk?", "no"),
    ("Is the ocean salty?", "yes"),
    ("Do horses eat grass?", "yes"),
    ("Is a feather heavier than a brick?", "no"),
    ("Do plants need water?", "yes"),
    ("Can a cat write letters?", "no"),
    ("Is a circle square?", "no"),
    ("Do ducks swim?", "yes"),
];

const SPLITS: [usize; 3] = [8, 16, 16];

/// The starting network: one agent whose prompt says nothing of the answer's form.
const NETWORK: &str = include_str!("answer_format_network.json");

/// The `answer-format` benchmark.
pub struct AnswerFormat {
    splits: [Vec<Example>; 3],
}

impl Default for AnswerFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl AnswerFormat {
    pub fn new() -> Self {
        let mut examples = QUESTIONS.iter().enumerate().map(|(i, (question, answer))| {
            let mut e = Example::new(format!("answer-format/{}", i + 1), *question);
            e.reference = Some(answer.to_string());
            e
        });
        let mut take = |n: usize| examples.by_ref().take(n).collect::<Vec<_>>();
        let splits = [take(SPLITS[0]), take(SPLITS[1]), take(SPLITS[2])];
        Self { splits }
    }
}

/// `yes` or `no` when the reply's first word is one of them (any case, any punctuation after it).
fn answer_of(output: &str) -> Option<&'static str> {
    let first = output.split(|c: char| !c.is_alphanumeric()).find(|w| !w.is_empty())?;
    ["yes", "no"].into_iter().find(|a| first.eq_ignore_ascii_case(a))
}

#[async_trait]
impl Benchmark for AnswerFormat {
    fn name(&self) -> &str {
        "answer-format"
    }
    fn task_description(&self) -> &str {
        TASK
    }
    fn answer_format(&self) -> &str {
        FORMAT
    }
    fn examples(&self, split: Split) -> &[Example] {
        match split {
            Split::Train => &self.splits[0],
            Split::Validation => &self.splits[1],
            Split::Test => &self.splits[2],
        }
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        answer_of(output).map(str::to_string)
    }
    fn starting_network(&self) -> &str {
        NETWORK
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let expected = example.reference.as_deref().unwrap_or("");
        let Some(answer) = answer_of(output) else {
            let got: String = output.trim().chars().take(30).collect();
            return Ok(Evaluation {
                score: 0.0,
                passed: false,
                feedback: format!("Wrong format: the reply must start with Yes or No, but it starts with {got:?}."),
            });
        };
        if answer == expected {
            Ok(Evaluation::pass(format!("Right form and right answer ({answer}).")))
        } else {
            Ok(Evaluation {
                score: 0.5,
                passed: false,
                feedback: format!("Right form, wrong answer: expected {expected}, got {answer}."),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(output: &str) -> Evaluation {
        let b = AnswerFormat::new();
        let e = &b.examples(Split::Train)[1];
        futures_block_on(b.evaluate(e, output))
    }

    fn futures_block_on<F: std::future::Future<Output = Result<Evaluation, EvalError>>>(f: F) -> Evaluation {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
    }

    #[test]
    fn form_and_answer_are_scored_apart() {
        // Training example 2: "Can a fish fly to the moon?" (no).
        assert_eq!(eval("No, it cannot.").score, 1.0);
        assert_eq!(eval("  no").score, 1.0);
        let wrong = eval("Yes.");
        assert_eq!((wrong.score, wrong.passed), (0.5, false));
        assert!(wrong.feedback.contains("expected no, got yes"), "{}", wrong.feedback);
        let missing = eval("The answer is no.");
        assert_eq!(missing.score, 0.0);
        assert!(missing.feedback.contains("must start with Yes or No"), "{}", missing.feedback);
        assert_eq!(eval("Nope").score, 0.0);
        assert_eq!(eval("").score, 0.0);
    }

    #[test]
    fn splits_and_network_are_valid() {
        let b = AnswerFormat::new();
        assert_eq!([Split::Train, Split::Validation, Split::Test].map(|s| b.examples(s).len()), SPLITS);
        let net = ann_graph::Network::from_json(b.starting_network()).unwrap();
        net.validate(&ann_graph::ValidationRules::with_answer_format(FORMAT)).unwrap();
        assert_eq!(b.extract_answer("Yes!"), Some("yes".into()));
        assert_eq!(b.extract_answer("The answer is yes"), None);
    }
}
