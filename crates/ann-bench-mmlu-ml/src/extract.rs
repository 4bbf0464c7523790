//! Extracting the chosen letter (A-D) from a free-form answer.
//!
//! Rules, tried in order; the first rule that finds a letter decides (markdown `*` is removed first):
//! 1. The simple-evals pattern `Answer: X` (case-insensitive `answer`, optional `$` or parentheses
//!    around the letter), **first match**, as simple-evals does; unlike simple-evals the letter must
//!    end a word, so `Answer: Because ...` is not read as `B`, and a lower-case letter must end the
//!    line or be followed by punctuation, so `answer: a linear model` is not read as `A`.
//! 2. A concluding phrase, **last match**: "the answer is C", "correct option: (c)", "answer would
//!    be C", "I choose C", "so C.", "therefore (c)". A bare letter must be upper case there (so "the
//!    answer is a model" is not `A`); a parenthesised one may be lower case. A mention that is
//!    eliminated ("option B is wrong", "(d) can be ruled out") is not a choice, so "Option A is
//!    wrong, option B is wrong, so C." is `C`.
//! 3. The last non-empty line starting with the letter: `C`, `c`, `C.`, `C)`, `(c)`, `C. text`,
//!    `(c) text`; a bare letter followed by a word is not enough (`A linear model ...` is prose).
//! 4. Exactly one distinct parenthesised letter in the whole text, e.g. "I would pick (c) here".
//!
//! No match means no answer (scored as wrong with "no 'Answer: X' line").

use std::sync::LazyLock;

use regex::Regex;

/// Rule 1: the simple-evals `ANSWER_PATTERN_MULTICHOICE` with a word boundary after the letter.
static ANSWER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:answer)[ \t]*:[ \t]*\$?(?:\(([A-Da-d])\)|([A-D])\b|([a-d])\$?[ \t]*(?:[.),;:]|\r?\n|$))")
        .expect("valid regex")
});

/// Rule 2: a concluding phrase followed by the letter (upper case, or any case in parentheses); after
/// a connective ("so", "therefore") a bare letter must end the clause.
static PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)(?i:answer|option|choice)(?:[ \t]+(?i:is|would[ \t]+be|should[ \t]+be|must[ \t]+be))?[ \t]*:?[ \t]*(?:\(([A-Da-d])\)|([A-D])\b)|(?i:I[ \t]+(?:choose|pick|select|go[ \t]+with))[ \t]+(?i:option[ \t]+)?(?:\(([A-Da-d])\)|([A-D])\b)|\b(?i:so|therefore|thus|hence)[ \t]*,?[ \t]+(?:\(([A-Da-d])\)|([A-D])(?:[.,;!)]|[ \t]*$))",
    )
    .expect("valid regex")
});

/// What follows an eliminated option: "is wrong", "is not correct", "can be ruled out", ...
static ELIMINATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[ \t]*(?i:(?:is|are|seems|looks)[ \t]+(?:also[ \t]+)?(?:wrong|incorrect|false|not|out|invalid|eliminated)|can[ \t]+be[ \t]+(?:ruled|eliminated|excluded|discarded)|is[ \t]+ruled)")
        .expect("valid regex")
});

/// Rule 3: a line that starts with the letter.
static LEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[ \t>]*(?:\(([A-Da-d])\)[.:]?(?:[ \t]|$)|([A-D])[.):](?:[ \t]|$)|([A-Da-d])[.):]?$)")
        .expect("valid regex")
});

/// Rule 4: a parenthesised letter anywhere.
static PARENTHESISED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\(([A-Da-d])\)").expect("valid regex"));

/// The letter `A`-`D` the output chooses, if one can be found (always returned upper case).
pub fn extract_letter(output: &str) -> Option<char> {
    let text = output.replace('*', "");
    let first_group = |c: regex::Captures<'_>| c.iter().skip(1).flatten().next().map(|m| m.as_str().to_string());
    let letter = ANSWER_LINE
        .captures(&text)
        .and_then(first_group)
        .or_else(|| {
            let chosen = |c: &regex::Captures<'_>| !ELIMINATED.is_match(&text[c.get(0).map_or(0, |m| m.end())..]);
            PHRASE.captures_iter(&text).filter(chosen).filter_map(first_group).last()
        })
        .or_else(|| {
            let last = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
            LEADING.captures(last).and_then(first_group)
        })
        .or_else(|| {
            let mut found: Vec<String> =
                PARENTHESISED.captures_iter(&text).filter_map(first_group).map(|l| l.to_uppercase()).collect();
            found.sort();
            found.dedup();
            (found.len() == 1).then(|| found.remove(0))
        })?;
    letter.chars().next().map(|c| c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, Option<char>)]) {
        for (output, want) in cases {
            assert_eq!(extract_letter(output), *want, "output: {output:?}");
        }
    }

    #[test]
    fn extraction_table() {
        check(&[
            // rule 1: simple-evals line, first match
            ("Let me think.\nAnswer: C", Some('C')),
            ("answer: b", Some('B')),
            ("Answer : $D$", Some('D')),
            ("Answer: (A)", Some('A')),
            ("**Answer:** C", Some('C')),
            ("Answer: C\nWait, no. Answer: D", Some('C')),
            ("Final Answer: B. Because the gradient vanishes.", Some('B')),
            // the letter must end a word
            ("Answer: Because the loss is convex, the answer is D", Some('D')),
            ("Answer: Dropout helps.", None),
            ("The short answer: a linear model suffices.", None),
            ("answer: c\nbecause margins", Some('C')),
            ("Answer: (b) since it is convex", Some('B')),
            ("Answer: C because it is convex", Some('C')),
            // rule 2: concluding phrases, last match
            ("The answer is C.", Some('C')),
            ("So the correct answer is (c).", Some('C')),
            ("The correct option is: D", Some('D')),
            ("I first thought the answer is A, but the answer would be B", Some('B')),
            ("I choose option C", Some('C')),
            ("the answer is a linear model", None),
            // eliminations are not choices; a connective concludes
            ("Option A is wrong, option B is wrong, so C.", Some('C')),
            ("The answer is C; option D is incorrect.", Some('C')),
            ("Option (a) can be ruled out. Therefore (b).", Some('B')),
            ("Options A and B fail, hence D", Some('D')),
            ("So A linear model fits.", None),
            // rule 3: the last line starts with the letter
            ("Reasoning about margins.\nC. The margin grows", Some('C')),
            ("(c)", Some('C')),
            ("B)", Some('B')),
            ("Thinking...\nC.", Some('C')),
            ("d", Some('D')),
            ("  A  ", Some('A')),
            ("Margins matter.\nA linear model is enough here", None),
            ("a linear model", None),
            // rule 4: one parenthesised letter
            ("I would pick (b) because of the bias.", Some('B')),
            ("Either (a) or (b).", None),
            // nothing
            ("", None),
            ("I am not sure.", None),
            ("Answer: E", None),
        ]);
    }
}
