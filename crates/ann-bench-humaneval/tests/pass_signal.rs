//! The pass signal cannot be forged by the program: a completion that prints the old pass-marker
//! line (read from its own program file, or written literally), sprays everything it can read onto
//! every file descriptor, or exits with status 0 before `check` returned, fails; honest completions
//! keep their verdicts and feedback. Run in every sandbox mode this machine offers: bubblewrap (when
//! usable), a leased uid (as root), and no isolation at all (opted in).

use ann_bench_humaneval::{
    BubblewrapMode, ProblemSpec, Sandbox, SandboxConfig, SandboxError, evaluate_answer, evaluate_completion,
};
use ann_eval::Evaluation;

const PROMPT: &str = "def add(a: int, b: int) -> int:\n    \"\"\" The sum.\n    >>> add(1, 2)\n    3\n    \"\"\"\n";
const TEST: &str =
    "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n";

fn spec() -> ProblemSpec<'static> {
    ProblemSpec { prompt: PROMPT, test: TEST, entry_point: "add" }
}

/// The marker line programs printed after `check` returned before the pass signal had a secret.
const OLD_MARKER: &str = "__ann_humaneval_all_tests_passed__";

/// Every sandbox this machine can make: with bubblewrap (skipped when it is not usable here),
/// without it (a leased uid as root), and without any isolation (explicitly allowed).
async fn sandboxes() -> Vec<Sandbox> {
    let mut out = Vec::new();
    match Sandbox::new(SandboxConfig { bubblewrap: BubblewrapMode::Required, ..Default::default() }).await {
        Ok(sandbox) => out.push(sandbox),
        Err(SandboxError::Bubblewrap(why)) => eprintln!("bubblewrap mode skipped: {why}"),
        Err(e) => panic!("{e}"),
    }
    for isolate_uid in [true, false] {
        let config = SandboxConfig {
            bubblewrap: BubblewrapMode::Off,
            isolate_uid,
            allow_unisolated: true,
            ..Default::default()
        };
        out.push(Sandbox::new(config).await.unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

#[track_caller]
fn assert_fails(eval: &Evaluation, sandbox: &Sandbox, want: &str) {
    assert!(!eval.passed && eval.score == 0.0, "forged pass ({}): {eval:?}", sandbox.describe());
    assert_eq!(eval.feedback, want, "{}", sandbox.describe());
}

const EXITED_EARLY: &str = "failed: the program exited before the tests finished (sys.exit or os._exit?)";

/// Reads its own program file and prints every line of it, evaluating each `print(...)` argument
/// (which reproduces any fixed marker line), then leaves with status 0 before `check` ran.
const FORGE_FROM_PROGRAM_FILE: &str = "import os, sys
for path in [__file__, 'program.py', sys.argv[0]]:
    for line in open(path).read().splitlines():
        line = line.strip()
        print(line)
        if line.startswith('print(') and line.endswith(')'):
            try:
                print(eval(line[len('print('):-1]))
            except Exception:
                pass
sys.stdout.flush()
os._exit(0)
";

#[tokio::test]
async fn a_completion_printing_the_marker_read_from_its_program_file_then_exiting_0_fails() {
    for sandbox in sandboxes().await {
        // As a `pass`-like body: runs inside `check`, when the candidate is first called.
        let body: String = FORGE_FROM_PROGRAM_FILE.lines().map(|l| format!("    {l}\n")).collect();
        let eval = evaluate_completion(&sandbox, spec(), &body).await.unwrap();
        assert_fails(&eval, &sandbox, EXITED_EARLY);
        // At module level, before `check` is even defined, in a model's fenced answer.
        let answer = format!("```python\n{FORGE_FROM_PROGRAM_FILE}\ndef add(a, b):\n    pass\n```\n");
        let eval = evaluate_answer(&sandbox, spec(), &answer).await.unwrap();
        assert_fails(&eval, &sandbox, EXITED_EARLY);
    }
}

/// Gathers every text it can read (program file, argv, environment, /proc/self, every readable file
/// descriptor) and writes it to stdout, stderr and every writable descriptor, then exits 0.
const SPRAY: &str = "import os, sys
texts = []
def grab(read):
    try:
        data = read()
        texts.append(data if isinstance(data, bytes) else str(data).encode())
    except Exception:
        pass
for name in os.listdir('.'):
    grab(lambda: open(name, 'rb').read())
grab(lambda: open(__file__, 'rb').read())
grab(lambda: ' '.join(sys.argv))
grab(lambda: ' '.join(getattr(sys, 'orig_argv', [])))
grab(lambda: repr(sorted(os.environ.items())))
for entry in ['cmdline', 'environ', 'status', 'stat']:
    grab(lambda: open('/proc/self/' + entry, 'rb').read())
fds = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))
for fd in fds:
    grab(lambda: os.readlink('/proc/self/fd/%d' % fd))
    if fd > 2:
        try:
            os.set_blocking(fd, False)
        except OSError:
            pass
        grab(lambda: os.read(fd, 1 << 16))
blob = b'\\n'.join(texts)
lines = [l.strip() for l in blob.decode('utf-8', 'replace').splitlines()]
marker = '\\n'.join(eval(l[6:-1]) for l in lines if l.startswith('print(') and l.endswith(')') and '__' in l)
blob = marker.encode() + b'\\n' + blob + b'\\n' + marker.encode() + b'\\n'
for fd in [1, 2] + fds:
    try:
        os.write(fd, blob)
    except OSError:
        pass
os._exit(0)
";

#[tokio::test]
async fn a_completion_writing_everything_it_can_read_to_every_descriptor_then_exiting_0_fails() {
    for sandbox in sandboxes().await {
        let answer = format!("```python\n{SPRAY}\ndef add(a, b):\n    return a + b\n```\n");
        let eval = evaluate_answer(&sandbox, spec(), &answer).await.unwrap();
        assert_fails(&eval, &sandbox, EXITED_EARLY);
        let body: String = SPRAY.lines().map(|l| format!("    {l}\n")).collect();
        let eval = evaluate_completion(&sandbox, spec(), &body).await.unwrap();
        assert_fails(&eval, &sandbox, EXITED_EARLY);
    }
}

#[tokio::test]
async fn a_completion_printing_the_marker_early_then_exiting_0_before_check_fails() {
    let early = format!(
        "import atexit, builtins, sys\nprint({OLD_MARKER:?}, flush=True)\natexit.register(print, {OLD_MARKER:?})\n\
_print = builtins.print\nbuiltins.print = lambda *a, **k: _print({OLD_MARKER:?})\nsys.exit(0)\n\n\
def add(a, b):\n    pass\n"
    );
    for sandbox in sandboxes().await {
        let eval = evaluate_completion(&sandbox, spec(), &early).await.unwrap();
        assert_fails(&eval, &sandbox, EXITED_EARLY);
        // The same from inside the candidate, while `check` runs (a `raise SystemExit(0)`).
        let body = format!("    print({OLD_MARKER:?}, flush=True)\n    raise SystemExit(0)\n");
        let eval = evaluate_completion(&sandbox, spec(), &body).await.unwrap();
        assert_fails(&eval, &sandbox, EXITED_EARLY);
    }
}

#[tokio::test]
async fn honest_completions_keep_their_verdicts_and_feedback() {
    for sandbox in sandboxes().await {
        let cases: [(&str, bool, &str); 7] = [
            ("    return a + b\n", true, "all tests passed"),
            (
                "import math\n\ndef add(a, b):\n    print('adding', a, b)\n    return math.fsum([a, b])\n",
                true,
                "all tests passed",
            ),
            ("    return a - b\n", false, "failed: AssertionError at `assert candidate(1, 2) == 3`"),
            (
                "    return a + 'x'\n",
                false,
                "failed: TypeError: unsupported operand type(s) for +: 'int' and 'str' at `assert candidate(1, 2) == 3` (raised in `add` at `return a + 'x'`)",
            ),
            ("    return a +\n", false, "syntax error: invalid syntax at `return a +`"),
            ("    import sys\n    sys.exit(0)\n", false, EXITED_EARLY),
            ("    import sys\n    sys.exit(2)\n", false, "failed: exited with status 2"),
        ];
        for (completion, passed, feedback) in cases {
            let eval = evaluate_completion(&sandbox, spec(), completion).await.unwrap();
            assert_eq!(
                (eval.passed, eval.feedback.as_str()),
                (passed, feedback),
                "{completion:?} ({})",
                sandbox.describe()
            );
            assert_eq!(eval.score, if passed { 1.0 } else { 0.0 });
        }
    }
}
