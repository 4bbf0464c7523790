//! A model that asks the python tool to read secrets, through an agent's tool loop over HTTP and
//! the real sandbox: the canary API key (this process's environment, which the model client really
//! uses as its key) and a secret file (`0600`, outside the sandbox's writable areas) are out of
//! reach, and the canary appears in no tool output, trace, cache entry or request body. One test in
//! its own binary: it sets an environment variable before any other thread runs.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::Setup;

const CANARY_NAME: &str = "ANN_TEST_TOOLS_CANARY_API_KEY";

#[allow(unsafe_code)]
fn set_canary(value: &str) {
    // SAFETY: this binary holds this single test; it calls this before starting its runtime, while
    // no other thread of the process reads or writes the environment.
    unsafe { std::env::set_var(CANARY_NAME, value) };
}

#[test]
fn reading_secrets_finds_nothing_and_the_canary_leaks_nowhere() {
    let canary = format!("sk-canary-{}-tools-do-not-leak", std::process::id());
    set_canary(&canary);
    let secrets = tempfile::Builder::new().prefix("ann-secrets-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let secret_file = secrets.path().join("api-key.txt");
    std::fs::write(&secret_file, &canary).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let setup = Setup::new(CANARY_NAME).await;
        let code = format!(
            "import glob, os\nprint('env', sorted(os.environ.items()))\n\
for path in ['/proc/{me}/environ', '/proc/1/environ'] + glob.glob('/proc/[0-9]*/environ'):\n    \
try:\n        print(path, open(path, 'rb').read())\n    except OSError as e:\n        print(path, 'refused', e.errno)\n\
print(open({file:?}).read())\n",
            me = std::process::id(),
            file = secret_file.display().to_string(),
        );
        let result = setup.run(&code).await;
        // The secret file is refused: an error result, and the run goes on.
        let content = setup.assert_contained(&result, "PermissionError").await;
        // This process is not even visible from the sandbox's pid namespace.
        assert!(content.contains(&format!("/proc/{}/environ refused", std::process::id())), "{content}");
        // The key was really in use: the model client sent it to the server.
        let requests = setup.server.requests();
        assert!(requests.iter().all(|r| r.headers.get("authorization").is_some_and(|v| v.contains(&canary))));
        let trace = serde_json::to_string(&result.trace).unwrap();
        let cached = serde_json::to_string(&setup.cache.entries().unwrap()).unwrap();
        let bodies = serde_json::to_string(&requests.iter().map(|r| &r.body).collect::<Vec<_>>()).unwrap();
        for (what, text) in [
            ("tool output", &content),
            ("trace", &trace),
            ("cache", &cached),
            ("request bodies", &bodies),
            ("answer", &result.output),
        ] {
            assert!(!text.contains(&canary), "the canary leaked into the {what}: {text}");
            assert!(!text.contains(CANARY_NAME), "the canary's name reached the {what}: {text}");
        }
        assert!(trace.contains("PermissionError"), "the trace holds the tool result");
    });
}
