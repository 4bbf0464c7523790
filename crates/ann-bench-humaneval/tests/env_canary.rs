//! A program cannot read the parent's secrets: a canary "API key" set in this test process's
//! environment appears neither in the program's environment nor through /proc. One test in its own
//! binary, because it has to set an environment variable before any other thread runs.
//!
//! Run as an ordinary user, bubblewrap is the only isolation: without it the program would share the
//! parent's uid and pid namespace and could read `/proc/<parent>/environ`, so the sandbox refuses to
//! start ([`SandboxError::Unisolated`]) unless `allow_unisolated` is set; the test accepts that
//! refusal (nothing runs, nothing leaks).

use ann_bench_humaneval::{BubblewrapMode, Sandbox, SandboxConfig, SandboxError};

const CANARY_NAME: &str = "ANN_TEST_CANARY_API_KEY";

#[allow(unsafe_code)]
fn set_canary(value: &str) {
    // SAFETY: this binary holds this single test; it calls this before starting its runtime, while
    // no other thread of the process reads or writes the environment.
    unsafe { std::env::set_var(CANARY_NAME, value) };
}

#[test]
fn the_parents_api_key_does_not_reach_the_program() {
    let canary = format!("sk-canary-{}-do-not-leak", std::process::id());
    set_canary(&canary);
    assert_eq!(std::env::var(CANARY_NAME).unwrap(), canary);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let program = format!(
            "import os\nprint(sorted(os.environ.items()))\n\
for path in ['/proc/{me}/environ', '/proc/%d/environ' % os.getppid(), '/proc/1/environ', '/proc/self/environ']:\n    \
try:\n        print(path, open(path, 'rb').read())\n    except OSError as e:\n        print(path, 'refused', e)\n\
print('keys', ','.join(sorted(os.environ)))\n",
            me = std::process::id()
        );
        for mode in [BubblewrapMode::Required, BubblewrapMode::Off] {
            let sandbox = match Sandbox::new(SandboxConfig { bubblewrap: mode, ..Default::default() }).await {
                Ok(sandbox) => sandbox,
                Err(SandboxError::Unisolated(why)) if mode == BubblewrapMode::Off => {
                    eprintln!("{mode:?}: refused to run unisolated: {why}");
                    continue;
                }
                Err(e) => panic!("{mode:?}: {e}"),
            };
            let out = sandbox.run(&program).await.unwrap();
            assert!(out.success(), "{out:?}");
            assert!(!out.stdout.contains(&canary) && !out.stderr.contains(&canary), "leaked ({mode:?}): {out:?}");
            assert!(!out.stdout.contains(CANARY_NAME), "{}", out.stdout);
            let keys = out.stdout.lines().find_map(|l| l.strip_prefix("keys ")).unwrap();
            // Python adds LC_CTYPE (locale coercion); bwrap may add PWD.
            for key in keys.split(',') {
                assert!(
                    ["HOME", "LANG", "LC_CTYPE", "PATH", "PWD"].contains(&key),
                    "unexpected variable {key}: {}",
                    out.stdout
                );
            }
            eprintln!("{}:\n{}", sandbox.describe(), out.stdout);
        }
    });
}
