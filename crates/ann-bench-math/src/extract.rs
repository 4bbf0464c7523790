//! Finding the final answer in a solution or a model output: `\boxed{}` first, then documented fallbacks.
//!
//! Order of attempts (the first that yields a non-empty answer wins):
//! 1. the last complete, non-empty `\boxed{...}` or `\fbox{...}` (nested braces, escaped `\{ \}`
//!    ignored; the innermost when boxes nest), or `\boxed 5` (the token after a space, up to
//!    whitespace or `$`);
//! 2. the last "final answer is X" / "the answer is X" / "answer: X" phrase: its leading `$...$`
//!    formula, or the rest of its sentence (`$` and a trailing full stop dropped);
//! 3. the final non-empty line, when it is short (at most 40 characters once `$`, `\[ \]` and a
//!    trailing full stop are dropped) and holds a digit or a LaTeX command: a bare `42` or `$\frac12$`.

/// Where an answer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// The last `\boxed{}` / `\fbox{}`.
    Boxed,
    /// An "the answer is X" phrase.
    AnswerPhrase,
    /// The short final line.
    FinalLine,
}

/// An answer found in a text, still raw LaTeX (not normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub answer: String,
    pub source: AnswerSource,
}

/// Find the answer in `text` with the fallbacks of the module documentation.
pub fn extract(text: &str) -> Option<Extracted> {
    if let Some(answer) = last_boxed(text) {
        return Some(Extracted { answer, source: AnswerSource::Boxed });
    }
    if let Some(answer) = answer_phrase(text) {
        return Some(Extracted { answer, source: AnswerSource::AnswerPhrase });
    }
    final_line(text).map(|answer| Extracted { answer, source: AnswerSource::FinalLine })
}

/// The content of the last complete, non-empty `\boxed{}` / `\fbox{}` / `\boxed X` in `text`.
///
/// Linear in the text: a box whose group never closes leaves its brace open under every box before
/// it, so their groups cannot close past it either, and their scans stop at its start.
pub fn last_boxed(text: &str) -> Option<String> {
    let mut starts: Vec<(usize, usize)> = Vec::new();
    for pat in ["\\boxed", "\\fbox"] {
        starts.extend(text.match_indices(pat).map(|(i, m)| (i, i + m.len())));
    }
    starts.sort_unstable();
    let mut scan_end = text.len();
    for (start, after) in starts.into_iter().rev() {
        match boxed_content(&text[after..scan_end.max(after)]) {
            BoxArgument::Content(content) => return Some(content),
            BoxArgument::Unclosed => scan_end = start,
            BoxArgument::NotABox => {}
        }
    }
    None
}

/// What follows a `\boxed` command name.
enum BoxArgument {
    /// A complete, non-empty argument.
    Content(String),
    /// A `{` whose group does not close before the end of the text.
    Unclosed,
    /// Another command (`\boxedfoo`), an empty box, or no argument.
    NotABox,
}

/// The argument of a `\boxed` whose name ends just before `rest`.
fn boxed_content(rest: &str) -> BoxArgument {
    let non_empty = |s: &str| if s.is_empty() { BoxArgument::NotABox } else { BoxArgument::Content(s.to_string()) };
    // `\boxedfoo` is another command, not a box.
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return BoxArgument::NotABox;
    }
    let trimmed = rest.trim_start();
    if let Some(body) = trimmed.strip_prefix('{') {
        return match matching_brace(body) {
            Some(end) => non_empty(body[..end].trim()),
            None => BoxArgument::Unclosed,
        };
    }
    // `\boxed 5`: one token, up to whitespace or a `$`.
    if rest.starts_with(' ') {
        let token: String = trimmed.chars().take_while(|c| !c.is_whitespace() && *c != '$').collect();
        return non_empty(token.trim_end_matches(['.', ',']));
    }
    BoxArgument::NotABox
}

/// Byte index of the `}` closing a group whose `{` was just before `body`; escaped braces do not count.
pub(crate) fn matching_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The last "the answer is X" / "final answer: X" phrase of `text`.
fn answer_phrase(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let phrases = ["final answer is", "the answer is", "final answer:", "answer:", "answer is"];
    let (at, len) = phrases
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        // The latest phrase; at the same place the longest.
        .max_by_key(|&(i, len)| (i, len))?;
    let rest = text[at + len..].trim_start().trim_start_matches([':', '*']).trim_start();
    let line = rest.lines().next().unwrap_or("");
    let answer = strip_math_delimiters(first_formula_or_sentence(line));
    (!answer.is_empty()).then_some(answer)
}

/// `$x = 3$, since ...` -> `$x = 3$`; `12. Done` -> `12.`: the leading formula, or the sentence up to
/// a full stop followed by a space.
fn first_formula_or_sentence(line: &str) -> &str {
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(body) = line.strip_prefix(open)
            && let Some(end) = body.find(close)
        {
            return &line[..open.len() + end + close.len()];
        }
    }
    line.find(". ").map_or(line, |i| &line[..=i])
}

/// The final non-empty line, when it is short and looks like a formula or number.
fn final_line(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let answer = strip_math_delimiters(line);
    let looks_like_math = answer.chars().any(|c| c.is_ascii_digit() || c == '\\');
    (looks_like_math && !answer.is_empty() && answer.chars().count() <= 40).then_some(answer)
}

/// Drop `$`, `\[ \]`, `\( \)`, `**`, a leading `:` and a trailing full stop around an answer.
fn strip_math_delimiters(s: &str) -> String {
    let mut s = s.trim().trim_start_matches(':').trim().to_string();
    for (open, close) in [("\\[", "\\]"), ("\\(", "\\)")] {
        if let Some(inner) = s.strip_prefix(open).and_then(|x| x.strip_suffix(close)) {
            s = inner.to_string();
        }
    }
    let s = s.trim().trim_end_matches('.').trim();
    let s = s.trim_matches('*').trim();
    let s = s.trim_matches('$').trim();
    s.trim_end_matches('.').trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<(&str, AnswerSource)>) {
        let got = extract(text);
        let got = got.as_ref().map(|e| (e.answer.as_str(), e.source));
        assert_eq!(got, expected, "text: {text:?}");
    }

    #[test]
    fn unclosed_boxes_bound_the_scans_before_them() {
        assert_eq!(last_boxed("\\boxed{1} \\boxed{2").as_deref(), Some("1"));
        assert_eq!(last_boxed("\\boxed{a \\boxed{b}").as_deref(), Some("b"));
        assert_eq!(last_boxed("\\boxed{a} \\boxed{b \\boxed{").as_deref(), Some("a"));
        assert_eq!(last_boxed("\\boxed{\\{x\\}} \\fbox{").as_deref(), Some("\\{x\\}"));
        // 100,000 unclosed boxes after a complete one: each scan stops at the box after it.
        let hostile = format!("\\boxed{{42}} {}", "\\boxed{ {".repeat(100_000));
        assert_eq!(last_boxed(&hostile).as_deref(), Some("42"));
    }

    #[test]
    fn extraction_table() {
        use AnswerSource::*;
        let rows: &[(&str, Option<(&str, AnswerSource)>)] = &[
            ("so $\\boxed{5}$.", Some(("5", Boxed))),
            ("first \\boxed{1} then \\boxed{2}", Some(("2", Boxed))),
            ("\\boxed{\\frac{1}{\\sqrt{2}}}", Some(("\\frac{1}{\\sqrt{2}}", Boxed))),
            ("\\fbox{7}", Some(("7", Boxed))),
            ("\\boxed{\\boxed{8}}", Some(("8", Boxed))),
            // The last `\boxed` of the text is the innermost one when boxes nest (as Hendrycks' rfind).
            ("\\boxed{\\boxed{1} + \\boxed{2}}", Some(("2", Boxed))),
            ("\\boxed{1} and finally \\fbox{3}", Some(("3", Boxed))),
            ("$x^2+y^2 = \\boxed 9$.", Some(("9", Boxed))),
            ("our answer is $\\boxed 2$.", Some(("2", Boxed))),
            ("\\boxed{\\{1,2\\}}", Some(("\\{1,2\\}", Boxed))),
            ("\\boxed{\\left\\{ 1 \\right\\}}", Some(("\\left\\{ 1 \\right\\}", Boxed))),
            (
                "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}",
                Some(("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", Boxed)),
            ),
            // An unterminated last box (truncated output) falls back to the previous complete one.
            ("\\boxed{4} ... \\boxed{5", Some(("4", Boxed))),
            // An empty box (an echoed instruction) is not an answer.
            ("Put it in \\boxed{}. The answer is 12.", Some(("12", AnswerPhrase))),
            ("The answer is $\\frac{3}{4}$.", Some(("\\frac{3}{4}", AnswerPhrase))),
            ("So the final answer is: 17\nDone", Some(("17", AnswerPhrase))),
            ("**Answer:** 2, 3", Some(("2, 3", AnswerPhrase))),
            ("The answer is: $x = \\frac{1}{2}$, which is positive.", Some(("x = \\frac{1}{2}", AnswerPhrase))),
            ("So the answer is 3.5. We are done.", Some(("3.5", AnswerPhrase))),
            ("Therefore\n\\[ \\frac{1}{2} \\]", Some(("\\frac{1}{2}", FinalLine))),
            ("work...\n\n42\n", Some(("42", FinalLine))),
            ("I do not know.", None),
            ("", None),
            ("a long last line that mentions 3 things but is surely not an answer at all", None),
        ];
        for (text, expected) in rows {
            check(text, *expected);
        }
    }
}
