//! Turning a sandbox run into an evaluation: pass only on exit 0 after the runner reported, with the
//! run's secret, that the test program ran to its end ([`RunOutput::ran_to_end`]); otherwise a
//! short feedback that names the failing assertion ("failed: AssertionError at `assert ...`"), the
//! timeout, the syntax error, or the limit that was hit (at most [`MAX_FEEDBACK_CHARS`] characters).

use ann_eval::Evaluation;

use crate::sandbox::{PROGRAM_FILE, RunOutput, Termination};

/// Feedback is cut to this many characters.
pub const MAX_FEEDBACK_CHARS: usize = 500;

/// One frame of a Python traceback that points into the program file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    line: usize,
    function: Option<String>,
}

fn parse_frame(line: &str) -> Option<Frame> {
    let rest = line.trim_start().strip_prefix("File \"")?;
    let (file, rest) = rest.split_once('"')?;
    if !(file == PROGRAM_FILE || file.ends_with(&format!("/{PROGRAM_FILE}"))) {
        return None;
    }
    let rest = rest.strip_prefix(", line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let number = digits.parse().ok()?;
    let function = rest[digits.len()..].strip_prefix(", in ").map(|f| f.trim().to_string());
    Some(Frame { line: number, function })
}

/// The exception line of a traceback: the last line that starts at column 0 and is not the
/// `Traceback` header (e.g. `AssertionError`, `TypeError: ...`, `SyntaxError: invalid syntax`).
fn exception_line(stderr: &str) -> Option<&str> {
    stderr.lines().rev().find(|l| {
        !l.is_empty() && !l.starts_with([' ', '\t']) && !l.starts_with("Traceback") && !l.starts_with("During")
    })
}

fn source_line(program: &str, number: usize) -> &str {
    program.lines().nth(number.saturating_sub(1)).unwrap_or("").trim()
}

/// Describe a run of `program` (the exact text that ran) as an evaluation.
pub fn evaluation_of(run: &RunOutput, program: &str, timeout_secs: f64) -> Evaluation {
    let feedback = match run.termination {
        Termination::TimedOut => format!("timed out after {} s", format_secs(timeout_secs)),
        Termination::OutputLimit => "failed: printed too much output (the limit was hit and the program killed)".into(),
        Termination::Exited(0) if run.ran_to_end => {
            return Evaluation::pass("all tests passed");
        }
        Termination::Exited(0) => "failed: the program exited before the tests finished (sys.exit or os._exit?)".into(),
        Termination::Signaled(signal) => match describe_traceback(&run.stderr, program) {
            Some(text) => text,
            None => {
                format!("failed: killed by {} (a resource limit: CPU time, memory, file size?)", signal_name(signal))
            }
        },
        Termination::Exited(code) => match describe_traceback(&run.stderr, program) {
            Some(text) => text,
            None if code > 128 => {
                format!(
                    "failed: killed by {} (a resource limit: CPU time, memory, file size?)",
                    signal_name(code - 128)
                )
            }
            None => {
                let tail = crate::sandbox::tail(run.stderr.trim(), 200);
                if tail.is_empty() {
                    format!("failed: exited with status {code}")
                } else {
                    format!("failed: exited with status {code}: {tail}")
                }
            }
        },
    };
    Evaluation::fail(truncate(&feedback, MAX_FEEDBACK_CHARS))
}

fn describe_traceback(stderr: &str, program: &str) -> Option<String> {
    let exception = exception_line(stderr)?.trim();
    let frames: Vec<Frame> = stderr.lines().filter_map(parse_frame).collect();
    let kind = exception.split(':').next().unwrap_or(exception);
    if matches!(kind, "SyntaxError" | "IndentationError" | "TabError") {
        let message = exception.split_once(": ").map_or("", |(_, m)| m);
        let at = frames.last().map(|f| format!(" at `{}`", source_line(program, f.line))).unwrap_or_default();
        return Some(format!("syntax error: {message}{at}"));
    }
    let innermost = frames.last();
    // The failing test line: the deepest frame in `check` (HumanEval's test function).
    let assertion = frames.iter().rev().find(|f| f.function.as_deref() == Some("check"));
    let mut text = format!("failed: {exception}");
    match (assertion, innermost) {
        (Some(a), Some(i)) if a == i => text.push_str(&format!(" at `{}`", source_line(program, a.line))),
        (Some(a), Some(i)) => text.push_str(&format!(
            " at `{}` (raised in `{}` at `{}`)",
            source_line(program, a.line),
            i.function.as_deref().unwrap_or("?"),
            source_line(program, i.line)
        )),
        (None, Some(i)) => text.push_str(&format!(" at `{}`", source_line(program, i.line))),
        _ => {}
    }
    Some(text)
}

fn signal_name(signal: i32) -> String {
    match signal {
        9 => "SIGKILL".into(),
        24 => "SIGXCPU".into(),
        25 => "SIGXFSZ".into(),
        11 => "SIGSEGV".into(),
        6 => "SIGABRT".into(),
        other => format!("signal {other}"),
    }
}

fn format_secs(secs: f64) -> String {
    if secs.fract() == 0.0 { format!("{secs:.0}") } else { format!("{secs}") }
}

/// At most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM: &str = "def f(x):\n    return g(x)\n\ndef g(x):\n    return x + 'a'\n\ndef check(candidate):\n    assert candidate(1) == 2\n\ncheck(f)\n";

    fn run(termination: Termination, stdout: &str, stderr: &str) -> RunOutput {
        run_to(termination, stdout, stderr, false)
    }

    fn run_to(termination: Termination, stdout: &str, stderr: &str, ran_to_end: bool) -> RunOutput {
        RunOutput { termination, stdout: stdout.into(), stderr: stderr.into(), ran_to_end, pgid: 1, uid: None }
    }

    #[track_caller]
    fn check(termination: Termination, stdout: &str, stderr: &str, want: &str) {
        check_to(termination, stdout, stderr, false, want);
    }

    #[track_caller]
    fn check_to(termination: Termination, stdout: &str, stderr: &str, ran_to_end: bool, want: &str) {
        let eval = evaluation_of(&run_to(termination, stdout, stderr, ran_to_end), PROGRAM, 3.0);
        assert_eq!(eval.feedback, want);
        assert_eq!(eval.passed, want == "all tests passed");
    }

    #[test]
    fn feedback() {
        let assertion = "Traceback (most recent call last):\n  File \"/tmp/x/program.py\", line 10, in <module>\n    check(f)\n  File \"/tmp/x/program.py\", line 8, in check\n    assert candidate(1) == 2\n           ^^^^^^^^^^^^^^^^^\nAssertionError\n";
        check(Termination::Exited(1), "", assertion, "failed: AssertionError at `assert candidate(1) == 2`");
        let type_error = "Traceback (most recent call last):\n  File \"/tmp/x/program.py\", line 10, in <module>\n    check(f)\n  File \"/tmp/x/program.py\", line 8, in check\n    assert candidate(1) == 2\n  File \"/tmp/x/program.py\", line 2, in f\n    return g(x)\n  File \"/tmp/x/program.py\", line 5, in g\n    return x + 'a'\nTypeError: unsupported operand type(s) for +: 'int' and 'str'\n";
        check(
            Termination::Exited(1),
            "",
            type_error,
            "failed: TypeError: unsupported operand type(s) for +: 'int' and 'str' at `assert candidate(1) == 2` (raised in `g` at `return x + 'a'`)",
        );
        let syntax =
            "  File \"/tmp/x/program.py\", line 5\n    return x + 'a'\n           ^\nSyntaxError: invalid syntax\n";
        check(Termination::Exited(1), "", syntax, "syntax error: invalid syntax at `return x + 'a'`");
        check(Termination::TimedOut, "", "", "timed out after 3 s");
        check_to(Termination::Exited(0), "hi\n", "", true, "all tests passed");
        let early = "failed: the program exited before the tests finished (sys.exit or os._exit?)";
        check(Termination::Exited(0), "hi\n", "", early);
        // Printed text is no verdict: the old fixed marker line, or anything else.
        check(Termination::Exited(0), "__ann_humaneval_all_tests_passed__\n", "", early);
        // A verdict needs exit status 0 as well (an atexit handler failing, a signal after the end).
        check_to(Termination::Exited(3), "", "", true, "failed: exited with status 3");
        check_to(Termination::TimedOut, "", "", true, "timed out after 3 s");
        check(
            Termination::Signaled(24),
            "",
            "",
            "failed: killed by SIGXCPU (a resource limit: CPU time, memory, file size?)",
        );
        check(
            Termination::Exited(137),
            "",
            "",
            "failed: killed by SIGKILL (a resource limit: CPU time, memory, file size?)",
        );
        check(Termination::Exited(3), "", "", "failed: exited with status 3");
        check(
            Termination::OutputLimit,
            "",
            "",
            "failed: printed too much output (the limit was hit and the program killed)",
        );
        let long =
            format!("Traceback:\n  File \"program.py\", line 8, in check\nAssertionError: {}\n", "x".repeat(900));
        let eval = evaluation_of(&run(Termination::Exited(1), "", &long), PROGRAM, 3.0);
        assert_eq!(eval.feedback.chars().count(), MAX_FEEDBACK_CHARS);
    }
}
