//! Without bubblewrap and without a leased uid a program would run as this process's user: the
//! sandbox refuses to start then, with an error naming the fixes, unless `allow_unisolated` is set.
//! "Not root" is simulated through the mode selection itself (`isolate_uid: false` gives no leased
//! uid, as for an ordinary user; a missing or broken `bwrap_path` stands for no bubblewrap). Also:
//! files a leased uid leaves in `/run/lock` are swept.

use ann_bench_humaneval::{BubblewrapMode, Sandbox, SandboxConfig, SandboxError};

fn unisolated(bubblewrap: BubblewrapMode, bwrap_path: &str) -> SandboxConfig {
    SandboxConfig { bubblewrap, bwrap_path: bwrap_path.into(), isolate_uid: false, ..Default::default() }
}

#[track_caller]
fn assert_refused(result: Result<Sandbox, SandboxError>, reason: &str) {
    match result {
        Err(e @ SandboxError::Unisolated(_)) => {
            let text = e.to_string();
            for needle in [reason, "install bubblewrap", "allow_unisolated", "environment"] {
                assert!(text.to_lowercase().contains(&needle.to_lowercase()), "{needle:?} not in: {text}");
            }
        }
        Err(e) => panic!("another error than Unisolated: {e}"),
        Ok(sandbox) => panic!("ran unisolated without being allowed: {}", sandbox.describe()),
    }
}

#[tokio::test]
async fn refuses_to_run_without_bubblewrap_or_a_leased_uid() {
    // Bubblewrap switched off.
    assert_refused(Sandbox::new(unisolated(BubblewrapMode::Off, "bwrap")).await, "bubblewrap is off");
    // Bubblewrap missing (Auto falls back to no bubblewrap only when that is allowed).
    assert_refused(
        Sandbox::new(unisolated(BubblewrapMode::Auto, "/nonexistent/ann-test-bwrap")).await,
        "is not installed",
    );
    // Bubblewrap installed but unusable: `true` answers `--version` and runs nothing.
    assert_refused(Sandbox::new(unisolated(BubblewrapMode::Auto, "true")).await, "bubblewrap is unusable");
    // Required bubblewrap keeps its own error.
    let required = Sandbox::new(unisolated(BubblewrapMode::Required, "/nonexistent/ann-test-bwrap")).await;
    assert!(matches!(required, Err(SandboxError::Bubblewrap(_))), "{required:?}");
}

#[tokio::test]
async fn runs_unisolated_only_when_explicitly_allowed() {
    let config = SandboxConfig { allow_unisolated: true, ..unisolated(BubblewrapMode::Off, "bwrap") };
    let sandbox = Sandbox::new(config).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!sandbox.uses_bubblewrap() && !sandbox.isolates_uid(), "{}", sandbox.describe());
    let out = sandbox.run("print('ran', 6 * 7)\n").await.unwrap();
    assert!(out.success() && out.ran_to_end && out.stdout.contains("ran 42"), "{out:?}");
}

#[tokio::test]
async fn files_a_leased_uid_leaves_in_run_lock_are_removed() {
    assert!(SandboxConfig::default().sweep_dirs.iter().any(|d| d.as_os_str() == "/run/lock"));
    let config = SandboxConfig { bubblewrap: BubblewrapMode::Off, ..Default::default() };
    let sandbox = match Sandbox::new(config).await {
        Ok(sandbox) if sandbox.isolates_uid() => sandbox,
        Ok(sandbox) => return eprintln!("skipped: no leased uid ({})", sandbox.describe()),
        Err(e) => return eprintln!("skipped: {e}"),
    };
    if !std::path::Path::new("/run/lock").is_dir() {
        return eprintln!("skipped: no /run/lock here");
    }
    let token = format!("ann-run-lock-{}", std::process::id());
    let program = format!(
        "import os\nos.makedirs('/run/lock/{token}-dir/inner')\nopen('/run/lock/{token}-dir/inner/f', 'w').write('x')\n\
open('/run/lock/{token}', 'w').write('left behind')\nprint('wrote')\n"
    );
    let out = sandbox.run(&program).await.unwrap();
    assert!(out.success() && out.stdout.contains("wrote"), "{out:?}");
    for leftover in [format!("/run/lock/{token}"), format!("/run/lock/{token}-dir")] {
        assert!(!std::path::Path::new(&leftover).exists(), "{leftover} was left behind");
    }
}
