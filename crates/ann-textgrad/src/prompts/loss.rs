//! The language loss prompt: critique one final output, state what the last layer must produce.

use std::fmt::Write;

use ann_graph::prompts::truncate_chars;
use ann_llm::Message;

use super::{PromptLimits, system, verdict};

/// What the language loss sees of one example.
#[derive(Debug, Clone, Copy)]
pub struct LossInput<'a> {
    pub input: &'a str,
    pub output: &'a str,
    pub score: f64,
    pub passed: bool,
    pub feedback: &'a str,
    /// The reference answer (training examples only).
    pub reference: Option<&'a str>,
}

/// Language loss: critique one final output and state what the last layer must produce.
pub fn language_loss(task_description: &str, example: &LossInput<'_>, limits: &PromptLimits) -> Vec<Message> {
    let LossInput { input, output, score, passed, feedback, reference } = *example;
    let mut u = String::new();
    let _ = write!(
        u,
        "Task description:\n{}\n\nExample input:\n{}\n\nFinal output of the system:\n{}\n\nEvaluation: {}. Feedback: {}\n",
        task_description.trim_end(),
        truncate_chars(input, limits.input_chars),
        truncate_chars(output, limits.input_chars),
        verdict(score, passed),
        feedback.trim()
    );
    if let Some(reference) = reference {
        let _ = write!(u, "\nReference answer (training example, for your diagnosis only):\n{}\n", reference.trim());
    }
    u.push_str(
        "\nAnswer with two tagged sections:\n<critique>what is wrong with the final output and why (if it passed: what made it right)</critique>\n<requirement>what the output of the system's last layer must look like to pass, stated so that it holds for any input of this task</requirement>",
    );
    vec![
        system(
            "You are the loss function of a multi-layer multi-agent LLM system: you explain, for one example, how its final output falls short.",
        ),
        Message::user(u),
    ]
}
