//! Input files in the real sandbox: a program reads them from its working directory and cannot
//! change them or their originals, with bubblewrap and under a leased uid alone.

use ann_sandbox::{BubblewrapMode, InputFile, Sandbox, SandboxConfig, SandboxError, Termination};

async fn sandbox(mode: BubblewrapMode) -> Option<Sandbox> {
    match Sandbox::new(SandboxConfig { bubblewrap: mode, ..Default::default() }).await {
        Ok(sandbox) => Some(sandbox),
        // Off without root has no isolation at all: that mode is refused, nothing to test here.
        Err(SandboxError::Unisolated(why)) if mode == BubblewrapMode::Off => {
            eprintln!("skipping the mode without bubblewrap: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

const PROGRAM: &str = r#"
import csv, os
rows = list(csv.DictReader(open('sales.csv')))
print(sum(int(r['amount']) for r in rows))
for attempt in ('write', 'append', 'remove', 'chmod'):
    try:
        if attempt == 'write':
            open('sales.csv', 'w').write('x')
        elif attempt == 'append':
            open('sales.csv', 'a').write('x')
        elif attempt == 'remove':
            os.remove('sales.csv')
            open('sales.csv', 'w').write('forged')
        else:
            os.chmod('sales.csv', 0o666)
            open('sales.csv', 'w').write('x')
        print(attempt, 'succeeded')
    except OSError as e:
        print(attempt, 'refused')
print(sorted(os.listdir('.')))
"#;

#[tokio::test]
async fn input_files_are_readable_and_read_only_in_every_mode() {
    let data = tempfile::tempdir().unwrap();
    let original = data.path().join("sales.csv");
    std::fs::write(&original, "region,amount\nnorth,40\nsouth,2\n").unwrap();
    for mode in [BubblewrapMode::Required, BubblewrapMode::Off] {
        let Some(sandbox) = sandbox(mode).await else { continue };
        let out = sandbox.run_with_files(PROGRAM, &[InputFile::from_path(&original)]).await.unwrap();
        assert_eq!(out.termination, Termination::Exited(0), "{mode:?}: {}", out.stderr);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "42", "{mode:?}: {}", out.stdout);
        assert_eq!(lines[1..3], ["write refused", "append refused"], "{mode:?}");
        if sandbox.uses_bubblewrap() {
            // A read-only mount: not even the owner of the folder can replace or re-mode it.
            assert_eq!(lines[3..5], ["remove refused", "chmod refused"], "{mode:?}");
        }
        assert!(lines.last().unwrap().contains("'program.py', 'sales.csv'"), "{mode:?}: {}", out.stdout);
        assert_eq!(
            std::fs::read_to_string(&original).unwrap(),
            "region,amount\nnorth,40\nsouth,2\n",
            "{mode:?}: the original never changes"
        );
    }
}

#[tokio::test]
async fn unusable_input_names_and_missing_files_are_errors_before_any_run() {
    let sandbox = sandbox(BubblewrapMode::Auto).await.unwrap();
    for name in ["", "../x.csv", ".hidden", "program.py", "a/b"] {
        let file = InputFile { name: name.into(), source: "/etc/hostname".into() };
        let err = sandbox.run_with_files("print(1)", &[file]).await.unwrap_err();
        assert!(matches!(err, SandboxError::InputFile(_)), "{name:?}: {err}");
    }
    let missing = InputFile::from_path("/no/such/data.csv");
    let err = sandbox.run_with_files("print(1)", &[missing]).await.unwrap_err();
    assert!(err.to_string().contains("/no/such/data.csv"), "{err}");
}
