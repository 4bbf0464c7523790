//! The MMLU task description and the rendering of one question with lettered choices.

/// The four choice letters, in order.
pub const LETTERS: [char; 4] = ['A', 'B', 'C', 'D'];

/// The answer-format rule the last layer must keep.
pub const ANSWER_FORMAT: &str = "Answer: X";

/// The task description `I` shared by all questions (the simple-evals multiple-choice instruction).
pub fn task_description() -> &'static str {
    "Answer a multiple-choice question about machine learning (MMLU). Think step by step, then end \
     your response with a last line of the form 'Answer: X' (without quotes), where X is one of A, B, C, D."
}

/// One question with its choices lettered `A)` to `D)`, as the simple-evals template lays them out.
pub fn render_question(question: &str, choices: &[String; 4]) -> String {
    let mut out = question.trim().to_string();
    out.push_str("\n\n");
    for (letter, choice) in LETTERS.iter().zip(choices) {
        out.push_str(&format!("{letter}) {}\n", choice.trim()));
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_description_snapshot() {
        insta::assert_snapshot!(task_description());
    }

    #[test]
    fn render_question_snapshot() {
        let choices = ["True, True", "False, False", "True, False", "False, True"].map(String::from);
        insta::assert_snapshot!(render_question(
            "Statement 1| Linear regression estimator has the smallest variance. Statement 2| AdaBoost weights are non-negative. ",
            &choices
        ));
    }
}
