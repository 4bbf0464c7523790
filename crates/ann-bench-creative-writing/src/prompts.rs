//! Task descriptions, example rendering and the coherence judge's prompt (pure functions).

/// The answer-format rule the last layer must keep (ToT creative writing).
pub const ANSWER_FORMAT: &str = "exactly 4 paragraphs separated by blank lines, paragraph i ending with end sentence i";

/// The Tree-of-Thoughts creative-writing task description (after ToT's `standard_prompt`).
pub fn task_description() -> &'static str {
    "Write a coherent passage of 4 short paragraphs. The end sentence of each paragraph must be the \
     corresponding given sentence, in order: paragraph 1 ends with sentence 1, paragraph 2 with sentence 2, \
     and so on, each copied exactly. Output only the passage: exactly 4 paragraphs separated by blank lines, \
     paragraph i ending with end sentence i."
}

/// The four end sentences of one example, numbered in order.
pub fn render_sentences(sentences: &[String]) -> String {
    let mut out = String::from("End sentences, in order:");
    for (i, s) in sentences.iter().enumerate() {
        out.push_str(&format!("\n{}. {}", i + 1, s.trim()));
    }
    out
}

/// The coherence judge's prompt for one passage (ToT's `score_prompt`, plus a one-line reason).
pub fn judge_prompt(passage: &str) -> String {
    format!(
        "Analyze the coherency of the following passage: whether its four paragraphs form one connected piece of \
         writing in which each paragraph, including its fixed final sentence, follows naturally from what comes \
         before. After your analysis, write one line \"Reason: <one sentence>\" summarising your judgement, then \
         at the last line conclude \"Thus the coherency score is {{s}}\", where s is an integer from 1 to 10.\n\n\
         Passage:\n{}",
        passage.trim()
    )
}

/// The Trivia Creative Writing task description (Solo-Performance-Prompting).
pub fn trivia_task_description() -> &'static str {
    "Write a short and coherent story about the given topic that incorporates the answers to all of the given \
     trivia questions. Do not list the answers separately: weave each one into the story by name."
}

/// One Trivia Creative Writing example: the topic and the numbered questions (SPP's prompt layout).
pub fn render_trivia(topic: &str, questions: &[String]) -> String {
    let mut out = format!(
        "Write a short and coherent story about {} that incorporates the answers to the following {} questions:",
        topic.trim(),
        questions.len()
    );
    for (i, q) in questions.iter().enumerate() {
        out.push_str(&format!("\n{}. {}", i + 1, q.trim()));
    }
    out
}

/// The DABench task description (closed-form answers `@name[value]`).
pub fn dabench_task_description() -> &'static str {
    "Answer a data-analysis question about the given CSV table. Follow the constraints exactly, and give every \
     requested value in the closed form @name[value] exactly as the format line asks."
}

/// One DABench example: question, constraints, answer format, a preview of the table and how to
/// load the whole table in Python (the `python` tool has it in its working directory).
pub fn render_dabench(question: &str, constraints: &str, format: &str, file_name: &str, preview: &str) -> String {
    format!(
        "Question: {}\n\nConstraints: {}\n\nFormat: {}\n\nTable {} (first lines):\n{}\n\n\
         The whole table is the file {file_name} in the python tool's working directory; this program loads it:\n\
         ```python\nimport csv\nrows = list(csv.DictReader(open({file_name:?}, newline=\"\")))\n\
         print(len(rows), \"rows; columns:\", list(rows[0]) if rows else [])\n```",
        question.trim(),
        constraints.trim(),
        format.trim(),
        file_name,
        preview.trim_end()
    )
}

/// Feedback for an answer holding no `@name[value]` at all (a garbled or unfinished answer).
pub fn dabench_no_closed_form(expected: &[(String, String)]) -> String {
    let names: Vec<String> = expected.iter().map(|(name, _)| format!("@{name}[...]")).collect();
    format!("no closed-form answer @name[value] found; the format asks for {}", names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences() -> Vec<String> {
        ["The kettle sang.", "Nobody answered the door.", "It was still raining.", "She laughed at last."]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn task_description_snapshot() {
        insta::assert_snapshot!(task_description());
    }

    #[test]
    fn render_sentences_snapshot() {
        insta::assert_snapshot!(render_sentences(&sentences()));
    }

    #[test]
    fn judge_prompt_snapshot() {
        insta::assert_snapshot!(judge_prompt("  First paragraph. The kettle sang.\n\nSecond paragraph.  "));
    }

    #[test]
    fn trivia_snapshots() {
        insta::assert_snapshot!(trivia_task_description());
        insta::assert_snapshot!(render_trivia(
            "Lady Gaga",
            &["Which planet is known as the Red Planet?".into(), "Who wrote Hamlet?".into()]
        ));
    }

    #[test]
    fn dabench_snapshots() {
        insta::assert_snapshot!(dabench_task_description());
        insta::assert_snapshot!(render_dabench(
            "What is the mean fare?",
            "Use the arithmetic mean, rounded to two decimals.",
            "@mean_fare[value] where value is a number.",
            "titanic.csv",
            "id,fare\n1,7.25\n2,71.28\n"
        ));
    }
}
