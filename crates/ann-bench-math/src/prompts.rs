//! The MATH task description and the rendering of one problem (pure functions, snapshot-tested).

/// The task description `I` shared by every MATH example.
pub fn task_description() -> &'static str {
    "Solve a competition mathematics problem (the MATH benchmark: algebra, counting and probability, \
geometry, intermediate algebra, number theory, prealgebra, precalculus). Reason step by step and check \
the result. Give the final answer exactly once, at the very end, inside \\boxed{}, for example \
\\boxed{\\frac{3}{4}}. The answer must be exact and simplified: fractions, radicals and \\pi rather than \
decimal approximations unless the problem asks for a decimal; no units; several answers separated by \
commas; intervals and ordered pairs in their usual notation."
}

/// The input `x` of one example: the problem statement as given.
pub fn render_problem(problem: &str) -> String {
    format!("Problem:\n{}", problem.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_description_snapshot() {
        insta::assert_snapshot!(task_description());
    }

    #[test]
    fn rendered_problem_snapshot() {
        insta::assert_snapshot!(render_problem("  What is $1+1$?\n"));
    }
}
