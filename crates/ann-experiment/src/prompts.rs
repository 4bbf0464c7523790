//! The prompts of the baseline networks (the comparisons of a trained network), as pure functions of the answer format,
//! and those of specialisation (`ann adapt --specialise-by`): a slice's task and the router in front.
//!
//! Every baseline agent sees the task `I` (the benchmark's task description with the example's
//! input rendered in, as every agent of every network does), an instruction, then its layer input
//! `{input}` (for a one-layer network, the example's input). The instruction repeats the
//! benchmark's answer-format rule, so that a baseline is held to the same output format as the
//! starting network's last layer.

use ann_llm::Message;

/// The `direct` agent's persona.
pub const DIRECT_ROLE: &str = "An expert who answers precisely and directly.";
/// The persona of every chain-of-thought agent (`cot`, `self_consistency`, `debate`).
pub const REASONER_ROLE: &str = "A careful expert who reasons step by step before answering.";

/// The `direct` agent's instruction: the final answer only, no reasoning.
pub fn direct_prompt(answer_format: &str) -> String {
    format!(
        "{{task}}\n\nAnswer directly: give only the final answer, without any reasoning or explanation, in the \
         required format ({answer_format}).\n\n{{input}}"
    )
}

/// The chain-of-thought instruction (`cot`, each `self_consistency` sample, each `debate` agent):
/// reasoning step by step, then the answer at the end.
pub fn chain_of_thought_prompt(answer_format: &str) -> String {
    format!(
        "{{task}}\n\nThink step by step: work through the task carefully, showing your reasoning, and check it. \
         Then give the final answer at the very end, in the required format ({answer_format}).\n\n{{input}}"
    )
}

/// The `direct` layer's subtask.
pub const DIRECT_SUBTASK: &str = "Answer the task directly.";
/// The `cot` layer's subtask.
pub const COT_SUBTASK: &str = "Solve the task, reasoning step by step.";
/// The `self_consistency` layer's subtask.
pub const SELF_CONSISTENCY_SUBTASK: &str = "Solve the task, reasoning step by step; each agent is one independent sample, and the most common final \
     answer wins.";
/// The `debate` layer's subtask.
pub const DEBATE_SUBTASK: &str = "Solve the task, reasoning step by step; in later rounds, weigh the other agents' \
                                  answers against your own and give an updated answer.";

/// The output spec of the `direct` layer (it keeps the answer-format rule, as validation demands).
pub fn direct_output_spec(answer_format: &str) -> String {
    format!("Only the final answer, in the required format: {answer_format}.")
}

/// The output spec of the chain-of-thought layers.
pub fn chain_of_thought_output_spec(answer_format: &str) -> String {
    format!("Step-by-step reasoning, then the final answer in the required format: {answer_format}.")
}

/// The task description of a network specialised to one slice of a benchmark (`field` = `value`).
pub fn specialised_task(task_description: &str, field: &str, value: &str) -> String {
    format!("{}\n\nThis network handles only the inputs whose {field} is {value}.", task_description.trim_end())
}

/// The router in front of specialised networks: which slice does this input belong to? Each slice
/// is shown with one example input, on one line of at most 300 characters.
pub fn specialist_routing(task_description: &str, field: &str, slices: &[(&str, &str)], input: &str) -> Vec<Message> {
    let mut u = format!(
        "Task:\n{}\n\nSpecialist networks, one per {field}; an example input of each:\n",
        task_description.trim_end()
    );
    for (value, example) in slices {
        let short: String = example.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect();
        u.push_str(&format!("- {value}: {short}\n"));
    }
    u.push_str(&format!(
        "\nInput:\n{}\n\nWhich {field} does this input have? Reply with JSON only: {{\"specialist\": \"<one of the \
         {field} values above, exactly as written>\"}}",
        input.trim()
    ));
    vec![
        Message::system("You route each input to the specialist network for its kind. You answer with JSON only."),
        Message::user(u),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specialisation_prompts_snapshot() {
        let plain = "Solve the problem. End with \\boxed{}.";
        let task = specialised_task(plain, "subject", "Algebra");
        let slices = [("Algebra", "Solve\n x + 2 = 5."), ("Geometry", "A square has side 3. Its area?")];
        let route = specialist_routing(plain, "subject", &slices, "What is the area of a circle of radius 1?");
        let shown: Vec<String> = route.iter().map(|m| format!("--- {:?} ---\n{}", m.role, m.content)).collect();
        insta::assert_snapshot!(format!("{task}\n=====\n{}", shown.join("\n")));
    }

    const FORMAT: &str = "Answer: X";

    #[test]
    fn direct_prompt_snapshot() {
        insta::assert_snapshot!(direct_prompt(FORMAT));
    }

    #[test]
    fn chain_of_thought_prompt_snapshot() {
        insta::assert_snapshot!(chain_of_thought_prompt(FORMAT));
    }

    #[test]
    fn output_specs_keep_the_answer_format() {
        for spec in [direct_output_spec(FORMAT), chain_of_thought_output_spec(FORMAT)] {
            assert!(spec.contains(FORMAT), "{spec}");
        }
        for prompt in [direct_prompt(FORMAT), chain_of_thought_prompt(FORMAT)] {
            assert!(prompt.contains("{task}") && prompt.contains("{input}") && prompt.contains(FORMAT), "{prompt}");
        }
    }
}
