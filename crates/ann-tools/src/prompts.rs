//! Every text of this crate that a model reads: tool descriptions, results and errors.

use ann_sandbox::{RunOutput, SandboxConfig, Termination};

use crate::tool::ToolError;

/// The `calculator` tool's description.
pub const CALCULATOR_DESCRIPTION: &str = "Evaluates one arithmetic expression exactly: integers and decimals, \
     + - * / ^ (integer exponents) and parentheses. Fractions stay exact (1/3 + 1/6 = 1/2).";

/// The `python` tool's description, with its limits.
pub fn python_description(timeout_secs: u64, max_output_bytes: usize) -> String {
    format!(
        "Runs a Python 3 program in a sandbox and returns its exit status, stdout and stderr. The \
         example's files are in the working directory, read-only. No network; at most {timeout_secs} s; \
         at most {max_output_bytes} bytes of output per stream. Print what you need to see."
    )
}

/// What the model reads of a program's run.
pub fn python_result(run: &RunOutput, limits: &SandboxConfig) -> String {
    let status = match run.termination {
        Termination::Exited(code) => format!("exit status {code}"),
        Termination::Signaled(signal) => format!("killed by signal {signal} (a CPU, memory or file limit?)"),
        Termination::TimedOut => format!("stopped: it ran past {} s", limits.timeout.as_secs()),
        Termination::OutputLimit => {
            format!("stopped: it printed more than {} bytes on one stream", limits.max_output_bytes)
        }
    };
    let mut text = status;
    for (name, stream) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if !stream.is_empty() {
            text.push_str(&format!("\n{name}:\n{}", stream.trim_end()));
        }
    }
    text
}

/// A failed call, as the model reads it.
pub fn tool_error(name: &str, error: &ToolError) -> String {
    format!("error from tool {name}: {error}")
}

/// The error for a tool name that is not registered.
pub fn unknown_tool(name: &str, known: &[String]) -> String {
    format!("there is no tool named {name:?}; the tools are: {}", known.join(", "))
}

/// `text` cut to `max` characters, saying how much was left out.
pub fn capped(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}\n[... {} more characters cut]", total - max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let limits = SandboxConfig::default();
        let run = |termination, stdout: &str, stderr: &str| RunOutput {
            termination,
            stdout: stdout.into(),
            stderr: stderr.into(),
            ran_to_end: true,
            pgid: 1,
            uid: None,
        };
        let texts = [
            CALCULATOR_DESCRIPTION.to_string(),
            python_description(10, 16384),
            python_result(&run(Termination::Exited(0), "42\n", ""), &limits),
            python_result(
                &run(Termination::Exited(1), "", "Traceback ...\nZeroDivisionError: division by zero\n"),
                &limits,
            ),
            python_result(&run(Termination::TimedOut, "partial", ""), &limits),
            python_result(&run(Termination::Signaled(9), "", ""), &limits),
            python_result(&run(Termination::OutputLimit, "yyyy", ""), &limits),
            tool_error("calculator", &ToolError::Failed("division by zero".into())),
            unknown_tool("shell", &["calculator".into(), "python".into()]),
            capped("abcdef", 4),
        ];
        insta::assert_snapshot!(texts.join("\n---\n"));
    }
}
