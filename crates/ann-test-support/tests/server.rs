//! Tests of the fake OpenAI-compatible server over raw HTTP/1.1 on 127.0.0.1, and of its binary.

use std::time::Duration;

use ann_test_support::server::{FakeServer, FakeServerConfig, Fault, RetryAfter};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A raw exchange: the status, the headers (lower-case names) and the body bytes received.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

async fn post(addr: std::net::SocketAddr, body: &Value) -> Raw {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer sk-raw\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    // A cut-off body ends in a reset: keep what arrived.
    let _ = stream.read_to_end(&mut reply).await;
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw { status, headers, body: reply[split + 4..].to_vec() }
}

fn chat(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]})
}

#[tokio::test]
async fn answers_like_openai_with_usage_and_records_requests() {
    let server = FakeServer::start(FakeServerConfig::default()).await.unwrap();
    let reply = post(server.addr(), &chat("two plus two")).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "m");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("echo: ") && text.ends_with(" two plus two"), "{text}");
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens"], 5);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let again = post(server.addr(), &chat("two plus two")).await.json();
    assert_eq!(again["usage"]["prompt_tokens_details"]["cached_tokens"], 5);
    assert_eq!(again["choices"][0]["message"]["content"], text, "replies are deterministic");

    assert_eq!(server.request_count(), 2);
    let seen = server.requests();
    assert_eq!(seen[0].body, chat("two plus two"));
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-raw");
    assert_eq!(seen[1].index, 1);
}

#[tokio::test]
async fn a_reply_function_and_max_tokens_shape_the_answer() {
    let config = FakeServerConfig::default().with_reply(|body| format!("you said {}", body["messages"][1]["content"]));
    let server = FakeServer::start(config).await.unwrap();
    let body = post(server.addr(), &chat("hello")).await.json();
    assert_eq!(body["choices"][0]["message"]["content"], "you said \"hello\"");
    let mut short = chat("hello");
    short["max_tokens"] = json!(1);
    let body = post(server.addr(), &short).await.json();
    assert_eq!(body["choices"][0]["message"]["content"], "you");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn scripted_faults_come_in_order_then_normal_replies() {
    let script = [
        Fault::RateLimited(Some(RetryAfter::Seconds(3))),
        Fault::RateLimited(Some(RetryAfter::DateIn(60))),
        Fault::Status(503),
        Fault::MalformedJson,
        Fault::CutOffBody,
        Fault::Unauthorized,
    ];
    let server = FakeServer::start(FakeServerConfig::default().with_script(script)).await.unwrap();
    let addr = server.addr();

    let r = post(addr, &chat("a")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    let r = post(addr, &chat("a")).await;
    assert_eq!(r.status, 429);
    let date = httpdate::parse_http_date(r.header("retry-after").unwrap()).expect("an HTTP date");
    assert!(date > std::time::SystemTime::now());
    let r = post(addr, &chat("a")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "server_error");
    let r = post(addr, &chat("a")).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err(), "malformed JSON");
    let r = post(addr, &chat("a")).await;
    assert_eq!(r.status, 200);
    let declared: usize = r.header("content-length").unwrap().parse().unwrap();
    assert!(r.body.len() < declared, "cut off: {} of {declared} bytes", r.body.len());
    let r = post(addr, &chat("a")).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("sk-raw"), "quotes the key it got");
    assert_eq!(post(addr, &chat("a")).await.status, 200);
    let faults: Vec<Fault> = server.requests().iter().map(|r| r.fault).collect();
    assert_eq!(faults[..6], script);
    assert_eq!(faults[6], Fault::None);
}

#[tokio::test]
async fn a_hanging_request_is_released_at_shutdown() {
    let server = FakeServer::start(FakeServerConfig::default().with_script([Fault::Hang])).await.unwrap();
    let addr = server.addr();
    let pending = tokio::spawn(async move { post(addr, &chat("wait")).await.status });
    while server.request_count() == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(server.in_flight(), 1);
    assert!(!pending.is_finished());
    server.shutdown().await;
    assert_eq!(pending.await.unwrap(), 503);
}

#[tokio::test]
async fn fault_rate_draws_are_seeded() {
    let run = |seed| async move {
        let server = FakeServer::start(FakeServerConfig::default().with_fault_rate(0.5, seed)).await.unwrap();
        for _ in 0..40 {
            post(server.addr(), &chat("x")).await;
        }
        server.requests().iter().map(|r| r.fault).collect::<Vec<_>>()
    };
    let first = run(11).await;
    assert_eq!(first, run(11).await, "same seed, same faults");
    assert_ne!(first, run(12).await);
    let faulty = first.iter().filter(|f| **f != Fault::None).count();
    assert!((5..=35).contains(&faulty), "{faulty} of 40");
    assert!(first.iter().all(|f| *f != Fault::Hang), "hang is not drawn by default");
}

#[tokio::test]
async fn the_binary_serves_on_the_port_it_prints() {
    let dir = std::env::temp_dir().join(format!("ann-fake-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script.txt");
    std::fs::write(&script, "# first request fails\n503\nok\n").unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ann-fake-server"))
        .args(["--port", "0", "--model", "served-model", "--script"])
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url = first.strip_prefix("listening on http://").unwrap().strip_suffix("/v1").unwrap();
    let addr: std::net::SocketAddr = url.parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert_eq!(post(addr, &chat("hi")).await.status, 503);
    let ok = post(addr, &chat("hi")).await;
    assert_eq!((ok.status, ok.json()["model"].clone()), (200, json!("served-model")));
    child.kill().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_hostile_server_rewrites_replies_as_drawn() {
    use ann_test_support::hostile::{self, Hostility};
    let config = FakeServerConfig { reshape: Some(hostile::hostile(1.0, 3)), ..FakeServerConfig::default() };
    let server = FakeServer::start(config).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let body = chat(&format!("question {i}"));
        let reply = post(server.addr(), &body).await;
        assert_eq!(reply.status, 200);
        let drawn = hostile::draw(1.0, 3, &body, i).expect("every reply is hostile at rate 1");
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        match drawn {
            Hostility::Oversize => assert!(reply.body.len() > 2 << 20),
            Hostility::AbsurdUsage => assert_eq!(reply.json()["usage"]["prompt_tokens"], u64::MAX),
            Hostility::NullContent => assert!(reply.json()["choices"][0]["message"]["content"].is_null()),
            Hostility::MissingChoices => assert_eq!(reply.json()["choices"], json!([])),
            _ => assert!(reply.json()["choices"][0]["message"]["content"].is_string(), "{text:.200}"),
        }
        seen.insert(drawn);
    }
    assert!(seen.len() >= 5, "{seen:?}");
}

#[tokio::test]
async fn the_binary_in_learn_mode_logs_every_request() {
    let dir = std::env::temp_dir().join(format!("ann-fake-server-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ann-fake-server"))
        .args(["--port", "0", "--mode", "learn", "--log"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
    let addr: std::net::SocketAddr =
        first.strip_prefix("listening on http://").unwrap().strip_suffix("/v1").unwrap().parse().unwrap();
    let agent = json!({"model": "m", "messages": [
        {"role": "system", "content": "You are agent `a1` of the team `solve`."},
        {"role": "user", "content": "Which choice?"}]});
    let reply = post(addr, &agent).await.json();
    assert!(reply["choices"][0]["message"]["content"].as_str().unwrap().ends_with("Answer: A"));
    // SIGINT by the child's id: the server writes the rest of its log and exits.
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert!(child.wait().await.unwrap().success());
    let logged: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(logged.len(), 1);
    assert_eq!((logged[0]["kind"].as_str(), logged[0]["fault"].as_str()), (Some("agent"), Some("ok")));
    assert_eq!(logged[0]["sha256"].as_str().unwrap().len(), 64);
    std::fs::remove_dir_all(&dir).unwrap();
}
