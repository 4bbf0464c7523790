//! The `python` tool in the real sandbox (bubblewrap): files read-only in the working directory,
//! failures, limits and the network are results the model reads.

use std::time::Duration;

use ann_llm::ToolCall;
use ann_sandbox::SandboxConfig;
use ann_tools::{PythonTool, PythonToolConfig, ToolContext, ToolRegistry, builtin_registry};
use serde_json::json;

async fn registry(timeout: Duration) -> ToolRegistry {
    let config = PythonToolConfig {
        sandbox: SandboxConfig { timeout, cpu_seconds: 3, ..PythonToolConfig::default().sandbox },
        ..PythonToolConfig::default()
    };
    builtin_registry(Some(PythonTool::new(config).await.unwrap_or_else(|e| panic!("{e}"))))
}

fn run(code: &str) -> ToolCall {
    ToolCall::new("call_7", "python", json!({ "code": code }).to_string())
}

#[tokio::test]
async fn programs_read_the_examples_files_and_report_status_and_streams() {
    let registry = registry(Duration::from_secs(10)).await;
    let data = tempfile::tempdir().unwrap();
    let csv = data.path().join("scores.csv");
    std::fs::write(&csv, "name,score\nada,3\nbob,4\n").unwrap();
    let context = ToolContext::with_files([csv.clone()]);
    let code = "import csv\nrows = list(csv.DictReader(open('scores.csv')))\nprint(sum(int(r['score']) for r in rows))\n\
                open('scores.csv', 'w').write('changed')\n";
    let outcome = registry.call(&run(code), &context).await;
    assert!(outcome.is_error, "writing the input fails: {}", outcome.content);
    assert!(
        outcome.content.starts_with("error from tool python: exit status 1\nstdout:\n7\nstderr:\n"),
        "{}",
        outcome.content
    );
    assert!(outcome.content.contains("Read-only file system") || outcome.content.contains("Permission denied"));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "name,score\nada,3\nbob,4\n");
    let ok = registry.call(&run("print(sum(range(10)))"), &ToolContext::default()).await;
    assert_eq!((ok.content.as_str(), ok.is_error), ("exit status 0\nstdout:\n45", false));
    let definition = registry.definitions(Some(&["python".to_string()])).unwrap();
    assert!(definition[0].description.contains("at most 10 s"), "{}", definition[0].description);
}

#[tokio::test]
async fn no_network_and_limits_are_clean_results() {
    let registry = registry(Duration::from_secs(2)).await;
    let context = ToolContext::default();
    // A listening socket of this process on loopback: unreachable from the sandbox's own network.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n    print('connected')\n\
         except OSError as e:\n    print('no network:', type(e).__name__)\n"
    );
    let net = registry.call(&run(&code), &context).await;
    assert!(net.content.contains("no network:"), "{}", net.content);
    let slow = registry.call(&run("while True:\n    pass\n"), &context).await;
    assert!(slow.is_error, "{slow:?}");
    assert!(slow.content.contains("ran past 2 s") || slow.content.contains("killed by signal"), "{}", slow.content);
    let loud = registry.call(&run("print('y' * 100000)"), &context).await;
    assert!(loud.is_error && loud.content.contains("printed more than 16384 bytes"), "{}", &loud.content[..200]);
    let memory = registry.call(&run("x = bytearray(4 << 30)\nprint(len(x))"), &context).await;
    assert!(memory.is_error && memory.content.contains("MemoryError"), "{}", memory.content);
    let bad = registry.call(&ToolCall::new("c", "python", r#"{"code": 5}"#), &context).await;
    assert!(bad.is_error && bad.content.contains("must be of type string"), "{}", bad.content);
}
