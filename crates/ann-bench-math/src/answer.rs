//! Answers as structures (numbers, lists, tuples, intervals, matrices, equations), their canonical
//! key for majority voting, and the equivalence used to score.
//!
//! Two answers are equivalent when
//! 1. their cleaned strings ([`crate::normalize::clean`]) are equal (the Hendrycks comparison; unlike
//!    Hendrycks a space between two numbers is kept, so `2 3` is not `23`), or
//! 2. their structures are equivalent:
//!    - expressions have the same exact value ([`crate::value::Val`]): `0.5` = `\frac12`,
//!      `10.0` = `10`, `\frac{\sqrt3}{2}` = `\frac{\sqrt{3}}{2}`, `2\cdot 3` = `6`; `0.333` ≠ `1/3`;
//!    - answer lists (`1, 2`, `\{1, 2\}`, `1 \pm \sqrt 2`, `3 and 4`) are compared as multisets;
//!    - tuples and intervals element-wise, with the same brackets: `(1,2]` ≠ `(1,2)`;
//!    - unions of intervals (`\cup`, or a letter `U` between brackets) as sets of intervals, matrices
//!      element-wise (a one-column matrix also matches a parenthesised tuple);
//!    - equations side by side, with sides swapped, or as `lhs - rhs`; `x = 3` matches `3` when the
//!      left side is one variable;
//!    - an inequality on one variable is the interval it describes: `x > 2` = `(2, \infty)`,
//!      `-2 \le x \le 7` = `[-2, 7]`;
//!    - `52_8` matches `52_{8}` and the bare digits `52`;
//!    - text (`\text{east}`) case-insensitively;
//!
//!    and in both cases their units agree: when both answers carry a trailing unit (`2\text{ hours}`,
//!    `5 cm`) the units must be the same after normalisation (case, spaces, a plural `s`:
//!    [`crate::normalize::unit_key`]), so `2\text{ hours}` = `2\text{ Hour}` but ≠ `2\text{ minutes}`
//!    and ≠ `2\text{ hrs}`; when only one carries a unit it is ignored (`2` = `2\text{ hours}`).
//!
//! An answer longer than [`limits::MAX_ANSWER_BYTES`], nested deeper than [`limits::MAX_DEPTH`], or
//! needing more work than the budget of [`crate::limits`] to parse is [`Answer::Unparsable`],
//! equivalent to nothing (itself included); a comparison that runs out of budget is "not equivalent".
//!
//! Deliberately not equivalent: a rounded decimal and an exact value (`0.333` vs `1/3`, `1.414` vs
//! `\sqrt2`: no tolerance), a factored polynomial and its expansion (`(x+2)(x+5)` vs `x^2+7x+10`, as
//! "factor" questions require; only a rational constant may move in or out: `2(x+1)` = `2x+2`), and
//! forms that need algebra beyond exact arithmetic over roots (`\sqrt[3]{2}\sqrt[3]{4}` vs `2`,
//! `\frac{x^2-1}{x-1}` vs `x+1`, trigonometric or logarithmic identities): those fall back to
//! comparing strings, so they are rejected rather than guessed.

mod compare;

pub use compare::equivalent;

use crate::expr::parse_expr;
use crate::limits;
use crate::normalize::{clean_with_unit, compact};
use crate::value::Val;

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// An expression with an exact value.
    Value(Val),
    /// A word answer (lower-cased) or an expression this crate cannot evaluate (compacted LaTeX).
    Text(String),
    /// A numeral in a base: `52_8`.
    Based { digits: String, base: String },
    /// An unordered list of answers.
    List(Vec<Answer>),
    /// An ordered tuple or an interval, with its brackets.
    Tuple { open: char, close: char, items: Vec<Answer> },
    /// A union of intervals.
    Union(Vec<Answer>),
    /// Rows of cells.
    Matrix(Vec<Vec<Answer>>),
    /// `lhs = rhs`.
    Equation(Box<Answer>, Box<Answer>),
    /// Too long, too deeply nested or too costly to parse (see [`crate::limits`]).
    Unparsable,
}

/// A raw answer cleaned and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The cleaned string (what feedback shows).
    pub cleaned: String,
    /// The structure.
    pub answer: Answer,
    /// The trailing unit the cleaning dropped, normalised ([`crate::normalize::unit_key`]).
    pub unit: Option<String>,
}

/// Clean and parse a raw answer, within the bounds of [`crate::limits`].
pub fn normalize(raw: &str) -> Normalized {
    if raw.len() > limits::MAX_ANSWER_BYTES {
        let shown: String = raw.chars().take(100).collect();
        return Normalized { cleaned: format!("{shown}..."), answer: Answer::Unparsable, unit: None };
    }
    let ((cleaned, unit, answer), within) = limits::metered(|| {
        let (cleaned, unit) = clean_with_unit(raw);
        let answer = parse_answer(&cleaned, 0);
        (cleaned, unit, answer)
    });
    let answer = if within { answer } else { Answer::Unparsable };
    Normalized { cleaned, answer, unit }
}

/// Whether two raw answers are equivalent (see the module documentation).
pub fn is_equiv(a: &str, b: &str) -> bool {
    normalize(a).equivalent(&normalize(b))
}

impl Normalized {
    /// Whether the two answers are equivalent (see the module documentation), within the bounds of
    /// [`crate::limits`].
    pub fn equivalent(&self, other: &Normalized) -> bool {
        if matches!(self.answer, Answer::Unparsable) || matches!(other.answer, Answer::Unparsable) {
            return false;
        }
        if let (Some(u), Some(v)) = (&self.unit, &other.unit)
            && u != v
        {
            return false;
        }
        let (same, within) =
            limits::metered(|| self.cleaned == other.cleaned || equivalent(&self.answer, &other.answer));
        same && within
    }

    /// The canonical key majority voting compares: the answer's, then its unit in brackets.
    pub fn key(&self) -> String {
        match &self.unit {
            Some(unit) => format!("{} [{unit}]", self.answer.key()),
            None => self.answer.key(),
        }
    }
}

/// Split `s` at top-level occurrences of `sep` (outside any bracket, `\{ \}` included).
fn split_top(s: &str, sep: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with("\\{") || rest.starts_with("\\begin") {
            depth += 1;
            i += if rest.starts_with("\\{") { 2 } else { 6 };
            continue;
        }
        if rest.starts_with("\\}") || rest.starts_with("\\end") {
            depth -= 1;
            i += if rest.starts_with("\\}") { 2 } else { 4 };
            continue;
        }
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if depth == 0 && rest.starts_with(sep) && !(sep.starts_with('\\') && command_continues(rest, sep)) {
            parts.push(s[start..i].trim().to_string());
            i += sep.len();
            start = i;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    parts.push(s[start..].trim().to_string());
    parts
}

/// `\pmatrix` is not `\pm`.
fn command_continues(rest: &str, cmd: &str) -> bool {
    rest[cmd.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
}

/// The byte index of the bracket closing the one at the start of `s` (any bracket kind).
fn closing_of_first(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The structure of a cleaned answer; [`Answer::Unparsable`] past [`limits::MAX_DEPTH`] levels or
/// once the work budget is spent (each level charges its length: it scans it a few times).
fn parse_answer(s: &str, depth: usize) -> Answer {
    if limits::within_depth(depth).and_then(|()| limits::spend(s.len() as u64 + 1)).is_none() {
        return Answer::Unparsable;
    }
    let parse = |p: &str| parse_answer(p, depth + 1);
    let s = s.trim();
    if let Some(m) = parse_matrix(s, depth) {
        return m;
    }
    let union = split_top(&union_letters(s), "\\cup");
    if union.len() > 1 {
        return Answer::Union(union.iter().map(|p| parse(p)).collect());
    }
    let items = split_top(s, ",");
    if items.len() > 1 && items.iter().all(|p| !p.is_empty()) {
        return Answer::List(flatten(items.iter().map(|p| parse(p))));
    }
    if let Some(inner) = s.strip_prefix("\\{").and_then(|x| x.strip_suffix("\\}"))
        && split_top(s, ",").len() == 1
    {
        return Answer::List(flatten([parse(inner)]));
    }
    let membership = split_top(s, "\\in");
    if membership.len() == 2 {
        return parse(&membership[1]);
    }
    if let Some(interval) = parse_inequality(s) {
        return interval;
    }
    let sides = split_top(s, "=");
    if sides.len() == 2 {
        return Answer::Equation(Box::new(parse(&sides[0])), Box::new(parse(&sides[1])));
    }
    if sides.len() > 2 {
        return parse(sides.last().map_or("", String::as_str));
    }
    if let Some(t) = parse_tuple(s, depth) {
        return t;
    }
    for pm in ["\\pm", "\\mp"] {
        let parts = split_top(s, pm);
        if parts.len() == 2 {
            let plus = format!("{}+{}", parts[0], parts[1]);
            let minus = format!("{}-{}", parts[0], parts[1]);
            return Answer::List(vec![parse(&plus), parse(&minus)]);
        }
    }
    if let Some(b) = parse_based(s) {
        return b;
    }
    if is_word_answer(s) {
        return Answer::Text(s.to_lowercase());
    }
    match parse_expr(s) {
        Some(v) => Answer::Value(v),
        None => Answer::Text(compact(s)),
    }
}

/// A top-level comparison sign: `(is_less, is_strict)` and its length, at the start of `rest`.
fn relation_at(rest: &str) -> Option<((bool, bool), usize)> {
    let table: [(&str, (bool, bool)); 10] = [
        ("\\leq", (true, false)),
        ("\\le", (true, false)),
        ("\\lt", (true, true)),
        ("<=", (true, false)),
        ("<", (true, true)),
        ("\\geq", (false, false)),
        ("\\ge", (false, false)),
        ("\\gt", (false, true)),
        (">=", (false, false)),
        (">", (false, true)),
    ];
    table
        .iter()
        .find(|(sign, _)| rest.starts_with(sign) && !(sign.starts_with('\\') && command_continues(rest, sign)))
        .map(|(sign, rel)| (*rel, sign.len()))
}

/// `x > 2` -> `(2, \infty)`, `-2 \le x \le 7` -> `[-2, 7]`, `x \leq 0` -> `(-\infty, 0]`: an
/// inequality on one variable as the interval it describes.
fn parse_inequality(s: &str) -> Option<Answer> {
    let mut parts = Vec::new();
    let mut relations = Vec::new();
    let (mut depth, mut start, mut i) = (0i32, 0usize, 0usize);
    while i < s.len() {
        let rest = &s[i..];
        match rest.as_bytes()[0] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if depth == 0
            && let Some((rel, len)) = relation_at(rest)
        {
            parts.push(&s[start..i]);
            relations.push(rel);
            i += len;
            start = i;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    parts.push(&s[start..]);
    if relations.is_empty() || relations.len() > 2 {
        return None;
    }
    let values: Vec<Val> = parts.iter().map(|p| parse_expr(p.trim())).collect::<Option<_>>()?;
    let infinity = Val::atom("#inf");
    // Bounds as (value, closed); the variable must be alone on its side.
    let (lower, upper) = match (values.as_slice(), relations.as_slice()) {
        ([a, b], [(less, strict)]) if a.is_single_variable() && !b.is_single_variable() => {
            if *less {
                (None, Some((b.clone(), !strict)))
            } else {
                (Some((b.clone(), !strict)), None)
            }
        }
        ([a, b], [(less, strict)]) if b.is_single_variable() && !a.is_single_variable() => {
            if *less {
                (Some((a.clone(), !strict)), None)
            } else {
                (None, Some((a.clone(), !strict)))
            }
        }
        ([a, x, b], [(l1, s1), (l2, s2)]) if x.is_single_variable() && l1 == l2 => {
            if *l1 {
                (Some((a.clone(), !s1)), Some((b.clone(), !s2)))
            } else {
                (Some((b.clone(), !s2)), Some((a.clone(), !s1)))
            }
        }
        _ => return None,
    };
    let (lo, open) = lower.map_or((infinity.neg(), '('), |(v, closed)| (v, if closed { '[' } else { '(' }));
    let (hi, close) = upper.map_or((infinity, ')'), |(v, closed)| (v, if closed { ']' } else { ')' }));
    Some(Answer::Tuple { open, close, items: vec![Answer::Value(lo), Answer::Value(hi)] })
}

/// `(0,1) U (2,3)` -> `(0,1) \cup (2,3)`: a letter U between two intervals.
fn union_letters(s: &str) -> String {
    let mut out = s.to_string();
    for close in [")", "]"] {
        for open in ["(", "["] {
            for gap in [" U ", "U"] {
                out = out.replace(&format!("{close}{gap}{open}"), &format!("{close} \\cup {open}"));
            }
        }
    }
    out
}

fn flatten(items: impl IntoIterator<Item = Answer>) -> Vec<Answer> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Answer::List(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    out
}

/// `(a, b]`: a bracketed, comma-separated sequence whose first bracket closes at the end.
fn parse_tuple(s: &str, depth: usize) -> Option<Answer> {
    let open = s.chars().next().filter(|c| matches!(c, '(' | '['))?;
    let end = closing_of_first(s)?;
    if end + 1 != s.len() {
        return None;
    }
    let close = s[end..].chars().next()?;
    if !matches!(close, ')' | ']') {
        return None;
    }
    let parts = split_top(&s[1..end], ",");
    if parts.len() < 2 || parts.iter().any(String::is_empty) {
        return None;
    }
    Some(Answer::Tuple { open, close, items: parts.iter().map(|p| parse_answer(p, depth + 1)).collect() })
}

/// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (also `bmatrix`, `matrix`, `array`).
fn parse_matrix(s: &str, depth: usize) -> Option<Answer> {
    let rest = s.strip_prefix("\\begin{")?;
    let (env, rest) = rest.split_once('}')?;
    let body = rest.strip_suffix(&format!("\\end{{{env}}}"))?;
    let body = if env == "array" { body.trim_start().strip_prefix('{')?.split_once('}')?.1 } else { body };
    let rows: Vec<Vec<Answer>> = body
        .split("\\\\")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.split('&').map(|c| parse_answer(c.trim(), depth + 1)).collect())
        .collect();
    (!rows.is_empty()).then_some(Answer::Matrix(rows))
}

/// `52_8`, `4210_{5}`, `A2_{16}`, `-37_8`, `0.0011_{2}`.
fn parse_based(s: &str) -> Option<Answer> {
    let (digits, base) = s.split_once('_')?;
    let base = base.trim().trim_start_matches('{').trim_end_matches('}').trim();
    let digits = digits.trim();
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    let ok = !unsigned.is_empty()
        && unsigned.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit())
        && !base.is_empty()
        && base.chars().all(|c| c.is_ascii_digit());
    ok.then(|| Answer::Based { digits: digits.to_string(), base: base.to_string() })
}

/// Words only, one of them at least three letters long (or `no`): `east`, `Evelyn`, `no solution`.
fn is_word_answer(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '\'' || c == '-')
        && (s.split([' ', '-']).any(|w| w.len() >= 3) || s.eq_ignore_ascii_case("no"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_agree_for_equivalent_answers() {
        for (a, b) in [("x = 5", "5"), ("1, 2", "2,1"), ("0.5", "\\frac12"), ("1,000", "1000"), ("\\{3\\}", "3")] {
            assert_eq!(normalize(a).key(), normalize(b).key(), "{a:?} vs {b:?}");
        }
        assert_ne!(normalize("(1,2]").key(), normalize("(1,2)").key());
    }
}
