//! The structural check of a ToT creative-writing passage: 4 paragraphs, each ending with its sentence.
//!
//! Tolerances (each one documented and tested):
//! - a ToT-style `Plan: ... Passage:` answer is judged on the text after the last `Passage:` label;
//! - leading one-line preambles ending with `:` ("Here is the passage:") and leading markdown
//!   headings (`# A title`) are dropped;
//! - paragraphs are separated by blank lines; when there are none, by single line breaks;
//! - endings are compared after lower-casing, mapping curly quotes to straight ones, removing
//!   markdown `*` and `_` emphasis, collapsing whitespace and dropping trailing punctuation, quotes
//!   and brackets on both sides; the sentence must start at a word boundary of the paragraph.

/// Split a passage into its paragraphs, applying the tolerances above.
pub fn paragraphs(passage: &str) -> Vec<String> {
    let body = match passage.rfind("Passage:") {
        Some(at) => &passage[at + "Passage:".len()..],
        None => passage,
    };
    let lines: Vec<&str> = body.lines().map(str::trim).collect();
    let mut blocks: Vec<Vec<&str>> =
        lines.split(|l| l.is_empty()).filter(|b| !b.is_empty()).map(<[&str]>::to_vec).collect();
    if blocks.len() == 1 {
        blocks = lines.iter().filter(|l| !l.is_empty()).map(|l| vec![*l]).collect();
    }
    while blocks.len() > 1 && is_preamble(&blocks[0]) {
        blocks.remove(0);
    }
    blocks.into_iter().map(|b| b.join(" ")).collect()
}

/// A one-line block that introduces the passage rather than belonging to it.
fn is_preamble(block: &[&str]) -> bool {
    matches!(block, [line] if line.len() < 200 && (line.ends_with(':') || line.starts_with('#')))
}

/// Normalised text for ending comparison.
fn normalise(text: &str) -> String {
    let mapped: String = text
        .chars()
        .filter(|c| !matches!(c, '*' | '_'))
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '`' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    let collapsed = mapped.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.trim_end_matches(|c: char| ".!?\"') ]…".contains(c)).to_string()
}

/// Whether `paragraph` ends with `sentence` under the tolerances above.
pub fn ends_with_sentence(paragraph: &str, sentence: &str) -> bool {
    let (p, s) = (normalise(paragraph), normalise(sentence));
    let s = s.trim_start_matches(['"', '\'', '(']);
    if s.is_empty() || !p.ends_with(s) {
        return false;
    }
    let before = p[..p.len() - s.len()].chars().next_back();
    before.is_none_or(|c| !c.is_alphanumeric())
}

/// Check the passage's structure; `Err` holds short factual feedback.
pub fn check_structure(passage: &str, sentences: &[String]) -> Result<(), String> {
    let paragraphs = paragraphs(passage);
    if paragraphs.len() != sentences.len() {
        return Err(format!(
            "expected {} paragraphs separated by blank lines, found {}",
            sentences.len(),
            paragraphs.len()
        ));
    }
    let wrong: Vec<String> = paragraphs
        .iter()
        .zip(sentences)
        .enumerate()
        .filter(|(_, (p, s))| !ends_with_sentence(p, s))
        .map(|(i, (_, s))| format!("paragraph {} does not end with \"{}\"", i + 1, s.trim()))
        .collect();
    if wrong.is_empty() { Ok(()) } else { Err(wrong.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences() -> Vec<String> {
        ["The kettle sang.", "Nobody answered the door.", "\u{201c}Why?\u{201d} she asked.", "The heat"]
            .map(String::from)
            .to_vec()
    }

    fn check(cases: &[(&str, Result<(), &str>)]) {
        let sentences = sentences();
        for (passage, want) in cases {
            assert_eq!(check_structure(passage, &sentences), want.map_err(String::from), "passage: {passage:?}");
        }
    }

    const GOOD: &str = "Morning came slowly. The kettle sang.\n\nI knocked twice. Nobody answered the door.\n\n\
                        I told her we should leave. \"Why?\" she asked.\n\nOutside, the sun pressed down. The heat";

    #[test]
    fn structure_cases() {
        check(&[
            (GOOD, Ok(())),
            // tolerant of whitespace, quotes, case, emphasis and a final full stop
            (
                "  Morning came slowly.   the kettle  sang. \n \n I knocked twice.\nNobody answered the door!\n\n\n\
                 I told her. \u{201c}Why?\u{201d} she asked.\n\nOutside. **The heat.**  ",
                Ok(()),
            ),
            // ToT plan/passage layout and a preamble line
            (&format!("Plan:\n1. a\n\n2. b\n\nPassage:\n{GOOD}"), Ok(())),
            (&format!("Here is the passage:\n\n{GOOD}"), Ok(())),
            (&format!("## The Kettle\n\n{GOOD}"), Ok(())),
            // a heading glued to the first paragraph is part of it, which still ends right
            (&format!("## The Kettle\n{GOOD}"), Ok(())),
            // single line breaks when there are no blank lines
            (&GOOD.replace("\n\n", "\n"), Ok(())),
            // wrong counts
            (
                "The kettle sang.\n\nNobody answered the door.",
                Err("expected 4 paragraphs separated by blank lines, found 2"),
            ),
            ("", Err("expected 4 paragraphs separated by blank lines, found 0")),
            (&format!("{GOOD}\n\nAn epilogue."), Err("expected 4 paragraphs separated by blank lines, found 5")),
            // wrong endings, named by paragraph
            (
                &GOOD.replace("The kettle sang.", "The kettle sang. Then it stopped.").replace("The heat", "The heath"),
                Err("paragraph 1 does not end with \"The kettle sang.\"; paragraph 4 does not end with \"The heat\""),
            ),
            // swapped order
            (
                "A. Nobody answered the door.\n\nB. The kettle sang.\n\nC. \"Why?\" she asked.\n\nD. The heat",
                Err(
                    "paragraph 1 does not end with \"The kettle sang.\"; paragraph 2 does not end with \"Nobody answered the door.\"",
                ),
            ),
        ]);
    }

    #[test]
    fn sentence_must_start_at_a_word_boundary() {
        assert!(ends_with_sentence("It was the heat", "The heat"));
        assert!(!ends_with_sentence("It was atthe heat", "the heat"));
        assert!(ends_with_sentence("The heat", "The heat."));
        assert!(!ends_with_sentence("Anything", ""));
    }
}
