//! String clean-up of an answer before it is parsed: the Hendrycks `strip_string` rules and a few more.
//!
//! Rules, in order (Hendrycks' own are marked H):
//! - outer `$...$`, `\(...\)`, `\[...\]` dropped; line breaks become spaces (H);
//! - Unicode `−`, `×`, `·`, `π`, `∞`, `√` become `-`, `\times`, `\cdot`, `\pi`, `\infty`, `\sqrt`;
//! - a thousands separator written `,\!` (as MATH does: `10,\!080`), `\,` (`10\,000`) or a space
//!   (`10 000`) between a digit and a group of exactly three digits is dropped with the spaces after it;
//! - `{,}` becomes `,`; spacing commands `\!` (H) `\,` `\;` `\:` `\ ` `~` `\quad` `\qquad` `\displaystyle` become spaces;
//! - `\dfrac`, `\tfrac` become `\frac` (H), and `\cfrac`; `\dbinom`, `\tbinom` become `\binom`;
//! - `\left` and `\right` are dropped (H), `\left.`/`\right.` with their dot, also `\big` and friends;
//! - degree marks `^\circ`, `^{\circ}` (H), `°`, `\degree` are dropped;
//! - `\$` (H), `$`, `\%` (H), `%` are dropped;
//! - `\text{}`, `\textbf{}`, `\mbox{}`, `\mathrm{}` and similar are unwrapped; trailing text groups
//!   and trailing unit words of a fixed list (`cm`, `inches`, `square units`, `degrees`, `cents`, ...),
//!   optionally squared, are dropped while a number or formula stays before them (H drops what follows
//!   `\text{ `); a bare trailing word not in the list (`3 ab`) is kept; what was dropped is the
//!   answer's unit ([`clean_with_unit`], see [`unit_key`] for when two units are the same);
//! - the words `and` / `or` between two parts become a comma (an answer list);
//! - thousands separators `1,000,000` become `1000000` when the whole run of digits and commas is a
//!   well-formed grouping, there is no space after the commas, and it is not inside brackets (so
//!   `(0,100)`, `1, 000` and `(10,100,1000)` are left alone);
//! - a multiple-choice letter `(C)` becomes `C`;
//! - a leading `.5` becomes `0.5` (H), a trailing full stop is dropped, spaces are collapsed.

use crate::limits;

/// Clean `raw` with the rules of the module documentation.
pub fn clean(raw: &str) -> String {
    clean_with_unit(raw).0
}

/// Clean `raw` and return the trailing unit it dropped, if any, as [`unit_key`] spells it:
/// `2\text{ hours}` -> (`2`, `hour`). A raw answer longer than [`limits::MAX_ANSWER_BYTES`] is
/// returned as it is.
pub fn clean_with_unit(raw: &str) -> (String, Option<String>) {
    if raw.len() > limits::MAX_ANSWER_BYTES {
        return (raw.to_string(), None);
    }
    // A row break `\\` must survive the rules for `\ ` and `\,`: park it in a control character.
    let mut s = strip_outer_math(raw.trim()).replace(['\n', '\r'], " ").replace("\\\\", ROW_BREAK);
    s = drop_thousands_markers(&s);
    for (from, to) in [
        ("\u{2212}", "-"),
        ("\u{00d7}", "\\times "),
        ("\u{00b7}", "\\cdot "),
        ("\u{22c5}", "\\cdot "),
        ("\u{03c0}", "\\pi "),
        ("\u{221e}", "\\infty "),
        ("\u{221a}", "\\sqrt"),
        ("{,}", ","),
        ("\\!", ""),
        ("\\,", " "),
        ("\\;", " "),
        ("\\:", " "),
        ("\\ ", " "),
        ("~", " "),
        ("\\qquad", " "),
        ("\\quad", " "),
        ("\\displaystyle", " "),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\dbinom", "\\binom"),
        ("\\tbinom", "\\binom"),
        ("\\left.", ""),
        ("\\right.", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("°", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\%", ""),
        ("%", ""),
    ] {
        s = s.replace(from, to);
    }
    for cmd in ["left", "right", "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "degree", "circ"] {
        s = remove_command(&s, cmd);
    }
    let s = unwrap_text(&s, 0);
    let s = collapse_spaces(&s);
    let s = s.trim_end_matches('.').trim_end().to_string();
    let (s, unit) = drop_trailing_units(&s);
    let s = words_to_commas(&s).replace([TEXT_START, TEXT_END], "");
    let s = drop_thousands_commas(&s);
    let s = s.trim().trim_end_matches('.').trim().to_string();
    let s = multiple_choice(&s).unwrap_or(s);
    let s = if s.starts_with('.') { format!("0{s}") } else { s };
    let s = collapse_spaces(&s.replace(" .", " 0.").replace("{.", "{0.")).replace(ROW_BREAK, "\\\\");
    (s, unit_key(&unit))
}

const ROW_BREAK: &str = "\u{1}";

/// `s` without whitespace: how an answer that cannot be parsed is compared (as Hendrycks compares all).
pub fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn strip_outer_math(s: &str) -> &str {
    let mut s = s;
    loop {
        let inner = [("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")]
            .iter()
            .find_map(|(open, close)| s.strip_prefix(open).and_then(|x| x.strip_suffix(close)));
        match inner {
            Some(inner) if s.len() >= 2 => s = inner.trim(),
            _ => return s,
        }
    }
}

/// `10,\!080` -> `10080`, `11,\! 111` -> `11111`, `10\,000` -> `10000`, `10 000` -> `10000`.
fn drop_thousands_markers(s: &str) -> String {
    let mut s = s.to_string();
    for marker in [",\\!", "\\,", "\\!", " "] {
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        // `out.len()` right after the last join: a chain `2 345 678` goes on from there.
        let mut joined_at = usize::MAX;
        while let Some(i) = rest.find(marker) {
            out.push_str(&rest[..i]);
            let after = rest[i + marker.len()..].trim_start();
            // The integer before the separator: 1 to 3 digits not after a decimal point, or a chain.
            let run = out.len() - out.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            let before_run = out[..out.len() - run].chars().next_back();
            let leading_group = (1..=3).contains(&run) && before_run != Some('.');
            let chained = i == 0 && joined_at == out.len();
            let group_after = after.len() >= 3
                && after.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                && !after.as_bytes().get(3).is_some_and(u8::is_ascii_digit);
            if run > 0 && (leading_group || chained) && group_after {
                out.push_str(&after[..3]);
                joined_at = out.len();
                rest = &after[3..];
            } else {
                out.push_str(marker);
                rest = &rest[i + marker.len()..];
            }
        }
        out.push_str(rest);
        s = out;
    }
    s
}

/// Remove the command `\name` where it is not the start of a longer command name.
fn remove_command(s: &str, name: &str) -> String {
    let pat = format!("\\{name}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&pat) {
        let after = &rest[i + pat.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&pat);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

const TEXT_COMMANDS: [&str; 11] = [
    "\\textnormal",
    "\\textbf",
    "\\textit",
    "\\textrm",
    "\\textsf",
    "\\text",
    "\\mbox",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
    "\\emph",
];

/// Marks around the content of a text group, so that a trailing unit group can be recognised.
const TEXT_START: char = '\u{2}';
const TEXT_END: char = '\u{3}';

/// `\text{ cm}` -> ` ⟨ cm⟩ `: the content of every text-like group is kept between marks, the
/// command dropped; `\text{ and }` / `\text{or}` become plain words. Groups nested deeper than
/// [`limits::MAX_DEPTH`] are left as they are (and the answer being parsed is unparsable).
fn unwrap_text(s: &str, depth: usize) -> String {
    if limits::within_depth(depth).is_none() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    'outer: while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        for cmd in TEXT_COMMANDS {
            if let Some(after) = tail.strip_prefix(cmd)
                && !after.starts_with(|c: char| c.is_ascii_alphabetic())
                && let Some(body) = after.trim_start().strip_prefix('{')
                && let Some(end) = crate::extract::matching_brace(body)
            {
                let content = unwrap_text(&body[..end], depth + 1).replace([TEXT_START, TEXT_END], "");
                let word = content.trim_matches([' ', ',']);
                if matches!(word, "and" | "or") {
                    out.push_str(&format!(" {word} "));
                } else {
                    out.push_str(&format!(" {TEXT_START}{content}{TEXT_END} "));
                }
                rest = &body[end + 1..];
                continue 'outer;
            }
        }
        // Not a text command: copy the backslash and what follows it.
        let mut chars = tail.char_indices();
        chars.next();
        let next = chars.next().map_or(tail.len(), |(j, c)| j + c.len_utf8());
        out.push_str(&tail[..next]);
        rest = &tail[next..];
    }
    out.push_str(rest);
    out
}

fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Units recognised when written without `\text{}` (`5 cm`); text groups are units anywhere.
const UNITS: [&str; 48] = [
    "cm", "mm", "km", "meter", "meters", "metre", "metres", "inch", "inches", "ft", "foot", "feet", "yard", "yards",
    "mile", "miles", "mph", "unit", "units", "square", "sq", "cubic", "degree", "degrees", "radian", "radians", "cent",
    "cents", "dollar", "dollars", "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week",
    "weeks", "year", "years", "pound", "pounds", "gram", "grams", "kg", "percent",
];

/// `s` without a trailing power `^2`, `^{3}` (with any spaces before it).
fn strip_power_suffix(s: &str) -> &str {
    let t = s.trim_end();
    let t2 = t.strip_suffix('}').and_then(|x| x.rsplit_once("^{")).map(|(b, p)| (b, p.to_string()));
    let t2 = t2.or_else(|| t.rsplit_once('^').map(|(b, p)| (b, p.to_string())));
    match t2 {
        Some((base, power)) if !power.is_empty() && power.chars().all(|c| c.is_ascii_digit()) => base.trim_end(),
        _ => t,
    }
}

/// `5.4 ⟨ cents⟩` -> `5.4`, `864 ⟨ inches⟩^2` -> `864`, `15 square units` -> `15`: trailing unit
/// groups and unit words are dropped while a number or formula stays before them; the second
/// part is what was dropped (` ⟨ inches⟩^2`, ` square units`).
fn drop_trailing_units(s: &str) -> (String, String) {
    let mut s = s.trim().to_string();
    let mut dropped = String::new();
    loop {
        let with_power = s.trim_end();
        let body = if with_power.ends_with(TEXT_END) { with_power } else { strip_power_suffix(with_power) };
        let cut = if body.ends_with(TEXT_END) {
            body.rfind(TEXT_START)
        } else {
            body.rsplit_once(' ')
                .filter(|(_, word)| UNITS.contains(&word.to_ascii_lowercase().as_str()))
                .map(|(before, _)| before.len())
        };
        let Some(cut) = cut else { break };
        let before = body[..cut].trim_end();
        let keeps_value = before.chars().any(|c| c.is_ascii_digit() || c == '\\')
            && !before.ends_with(['=', '+', '-', '(', '[', ',', TEXT_START]);
        if !keeps_value {
            break;
        }
        dropped.insert_str(0, &format!(" {}", &with_power[before.len()..]));
        s = before.to_string();
    }
    (s, dropped)
}

/// A unit as units are compared (`\text{}`, `\mbox{}` and the like already unwrapped): braces gone, lower case,
/// spaces collapsed (none before `^`), and each word's plural dropped (`hours` -> `hour`,
/// `inches` -> `inch`: a final `s`, or `es` after `ch`, `sh`, `x`, `ss`). Nothing else: `hrs` is not
/// `hours`, `feet` is not `foot`, `cm^2` is not `square cm`. `None` for no unit.
pub fn unit_key(dropped: &str) -> Option<String> {
    let plain = dropped.replace([TEXT_START, TEXT_END], " ").replace(['{', '}'], "").to_lowercase();
    let words: Vec<String> = plain.split_whitespace().map(singular).collect();
    let unit = words.join(" ").replace(" ^", "^");
    (!unit.is_empty()).then_some(unit)
}

/// `hours` -> `hour`, `inches^2` -> `inch^2`, `glass` stays.
fn singular(word: &str) -> String {
    let (stem, power) = word.split_at(word.find('^').unwrap_or(word.len()));
    let stem = if ["ches", "shes", "xes", "sses"].iter().any(|e| stem.ends_with(e)) {
        &stem[..stem.len() - 2]
    } else if stem.len() > 2 && stem.ends_with('s') && !stem.ends_with("ss") {
        &stem[..stem.len() - 1]
    } else {
        stem
    };
    format!("{stem}{power}")
}

/// `3 and 4` -> `3, 4`, `2, 3, and 4` -> `2, 3, 4`; only between two non-empty parts.
fn words_to_commas(s: &str) -> String {
    let mut out = s.replace(", and ", " and ").replace(", or ", " or ");
    for word in [" and ", " or "] {
        let parts: Vec<&str> = out.split(word).collect();
        if parts.len() > 1 && parts.iter().all(|p| p.chars().any(|c| c.is_ascii_digit() || c == '\\')) {
            out = parts.join(", ");
        }
    }
    out
}

/// `1,000,000` -> `1000000` outside brackets, when the grouping is well formed and unspaced.
fn drop_thousands_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0i32;
    let mut prev: Option<char> = None;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if c.is_ascii_digit() && depth == 0 && !matches!(prev, Some('.' | '_' | '^') | Some('0'..='9')) {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ',')).unwrap_or(rest.len());
            let run = &rest[..end];
            if is_thousands_grouping(run) {
                out.push_str(&run.replace(',', ""));
            } else {
                out.push_str(run);
            }
            prev = run.chars().last();
            rest = &rest[end..];
            continue;
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn is_thousands_grouping(run: &str) -> bool {
    let groups: Vec<&str> = run.split(',').collect();
    groups.len() >= 2
        && (1..=3).contains(&groups[0].len())
        && !groups[0].starts_with('0')
        && groups[1..].iter().all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit()))
}

/// `(C)` -> `C`.
fn multiple_choice(s: &str) -> Option<String> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?.trim();
    let mut chars = inner.chars();
    let letter = chars.next()?;
    (chars.next().is_none() && letter.is_ascii_uppercase()).then(|| letter.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: &str) {
        assert_eq!(clean(raw), expected, "raw: {raw:?}");
    }

    #[test]
    fn cleaning_table() {
        let rows = [
            ("10\\,000", "10000"),
            ("2 345 678", "2345678"),
            ("3.5 100", "3.5 100"),
            ("1234 567", "1234 567"),
            ("3 ab", "3 ab"),
            ("5 cm", "5"),
            ("15 square units", "15"),
            ("\\text{no solution}", "no solution"),
            ("10,\\!080", "10080"),
            ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
            ("\\$32,\\!348", "32348"),
            ("58,500", "58500"),
            ("3, 5, 7", "3, 5, 7"),
            ("(0,100)", "(0,100)"),
            ("10,100,1000", "10,100,1000"),
            ("1,-2", "1,-2"),
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            ("\\left( 3, \\frac{\\pi}{2} \\right)", "( 3, \\frac{\\pi}{2} )"),
            ("90^\\circ", "90"),
            ("90^{\\circ}", "90"),
            ("50\\%", "50"),
            ("\\frac{270}7\\text{ degrees}", "\\frac{270}7"),
            ("864 \\mbox{ inches}^2", "864"),
            ("15\\mbox{ cm}^2", "15"),
            ("5.4 \\text{ cents}", "5.4"),
            ("\\text{Evelyn}", "Evelyn"),
            ("\\text{(C)}", "C"),
            ("(C)", "C"),
            (".0000672", "0.0000672"),
            ("$\\frac12$", "\\frac12"),
            ("5.", "5"),
            ("3 \\text{ and } 4", "3, 4"),
            ("2, 3, \\text{ and } 4", "2, 3, 4"),
            ("6, 8\\text{, and }10", "6, 8, 10"),
            ("\\leftarrow", "\\leftarrow"),
            ("x \\in [-2,7]", "x \\in [-2,7]"),
        ];
        for (raw, expected) in rows {
            check(raw, expected);
        }
    }
}
