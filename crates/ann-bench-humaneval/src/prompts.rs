//! The texts HumanEval shows the network: the task description, the answer-format rule and the
//! rendering of one problem (pure functions, snapshot-tested).

/// The answer-format rule the last layer's `output_spec` must keep.
pub const ANSWER_FORMAT: &str = "a single ```python code block with the complete function";

/// The task description `I` shared by all HumanEval examples.
pub fn task_description() -> String {
    format!(
        "Write a correct Python 3 implementation of the function whose signature and docstring are given. \
The code is run against hidden unit tests with a time limit of a few seconds, using the standard library only \
(no third-party packages, no input(), no network, no files). Keep the given function name and parameters, \
and keep any helper function the prompt defines. Answer with {ANSWER_FORMAT} (its imports included), \
and nothing after the block."
    )
}

/// The example's own input `x`: the problem's code (signature, docstring, helpers) to complete.
pub fn render_problem(prompt: &str, entry_point: &str) -> String {
    format!("Complete the function `{entry_point}`:\n\n```python\n{}\n```", prompt.trim_matches('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_description_snapshot() {
        insta::assert_snapshot!(task_description());
    }

    #[test]
    fn render_problem_snapshot() {
        let prompt = "\n\ndef add(x: int, y: int) -> int:\n    \"\"\"Add two numbers x and y\n    >>> add(2, 3)\n    5\n    \"\"\"\n";
        insta::assert_snapshot!(render_problem(prompt, "add"));
    }
}
