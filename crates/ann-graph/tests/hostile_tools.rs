//! A model that asks the python tool to do harm, through an agent's tool loop over HTTP (the fake
//! server's tool calls) and the real sandbox: opening sockets, a fork bomb, filling the disk and
//! running past the time limit each come back as a clean error result the model reads, the
//! forward pass goes on to an answer, and the tool still works afterwards. (Reading secrets:
//! `hostile_tools_secrets.rs`, which sets an environment variable and so has its own binary.)

mod common;

use common::{Setup, TIMEOUT_SECS};

#[tokio::test]
async fn opening_sockets_is_a_tool_error() {
    let setup = Setup::new("ANN_TEST_NO_SUCH_VARIABLE").await;
    let port = setup.server.addr().port();
    let code = format!(
        "import socket\nfor host, port in [('127.0.0.1', {port}), ('1.1.1.1', 80)]:\n    try:\n        \
         socket.create_connection((host, port), timeout=1)\n        print('connected to', host)\n    \
         except OSError as e:\n        print('no connection to', host, e)\n\
         socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
    );
    let result = setup.run(&code).await;
    // Two model calls, no request from the program.
    assert_eq!(setup.server.request_count(), 2);
    let content = setup.assert_contained(&result, "exit status 1").await;
    assert!(!content.contains("connected to"), "{content}");
    assert!(
        content.contains("no connection to 127.0.0.1") && content.contains("no connection to 1.1.1.1"),
        "{content}"
    );
}

#[tokio::test]
async fn a_fork_bomb_is_a_tool_error() {
    let setup = Setup::new("ANN_TEST_NO_SUCH_VARIABLE").await;
    let code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass";
    let result = setup.run(code).await;
    setup.assert_contained(&result, &format!("stopped: it ran past {TIMEOUT_SECS} s")).await;
}

#[tokio::test]
async fn filling_the_disk_is_a_tool_error() {
    let setup = Setup::new("ANN_TEST_NO_SUCH_VARIABLE").await;
    // Unbounded on purpose: the sandbox's scratch limit stops it (a sandbox that lost it would see
    // this test time out instead, after at most TIMEOUT_SECS of writing).
    let code =
        "n = 0\nwhile True:\n    with open('fill-%d' % n, 'wb') as f:\n        f.write(b'z' * (1 << 20))\n    n += 1";
    let result = setup.run(code).await;
    setup.assert_contained(&result, "No space left on device").await;
}

#[tokio::test]
async fn running_past_the_time_limit_is_a_tool_error() {
    let setup = Setup::new("ANN_TEST_NO_SUCH_VARIABLE").await;
    let result = setup.run("print('started', flush=True)\nwhile True:\n    pass").await;
    let content = setup.assert_contained(&result, &format!("stopped: it ran past {TIMEOUT_SECS} s")).await;
    assert!(content.contains("stdout:\nstarted"), "{content}");
}
