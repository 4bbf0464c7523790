//! The comparison's child processes, each started, watched and stopped by its id: the fake
//! server (`ann-fake-server`, asked for its request count with SIGUSR1 between runs) and one
//! workload process per measurement (timed to its `ready` line, killed past a deadline).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::table::Reported;

/// A running `ann-fake-server` on 127.0.0.1 that every framework uses in turn.
pub struct Server {
    child: Child,
    pub url: String,
    lines: Receiver<String>,
}

impl Server {
    /// Start `bin` in `learn` mode with `latency_ms` before every answer.
    pub fn start(bin: &Path, latency_ms: u64) -> Result<Server> {
        let mut child = Command::new(bin)
            .args(["--port", "0", "--mode", "learn", "--latency-ms", &latency_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let lines = read_lines(child.stdout.take().context("the server's stdout")?);
        let mut server = Server { child, url: String::new(), lines };
        let first = server.line(Duration::from_secs(10)).context("waiting for the server's URL")?;
        let Some(url) = first.strip_prefix("listening on ") else {
            bail!("the fake server said {first:?}, not its URL");
        };
        server.url = url.to_string();
        Ok(server)
    }

    fn line(&self, within: Duration) -> Result<String> {
        match self.lines.recv_timeout(within) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => bail!("the fake server said nothing for {within:?}"),
            Err(RecvTimeoutError::Disconnected) => bail!("the fake server stopped"),
        }
    }

    /// The requests it has answered so far (SIGUSR1 to its id; it prints `served N requests`).
    pub fn count(&self) -> Result<u64> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGUSR1).context("signalling the fake server")?;
        let line = self.line(Duration::from_secs(10))?;
        line.strip_prefix("served ")
            .and_then(|rest| rest.strip_suffix(" requests"))
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("the fake server said {line:?}, not its count"))
    }
}

impl Drop for Server {
    /// SIGINT to its id (it shuts down cleanly), SIGKILL past 10 s.
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGINT).is_err() {
            let _ = self.child.kill();
        }
        let started = Instant::now();
        while let Ok(None) = self.child.try_wait() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.wait();
    }
}

fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// What one workload process reported, with its startup as the caller timed it.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Spawn to its `ready` line, in seconds.
    pub startup_s: f64,
    pub reported: Reported,
}

/// Run `command` to its end: the time to its `ready` line, then its one JSON line; SIGKILL to its
/// id past `deadline`.
pub fn measure(mut command: Command, deadline: Duration) -> Result<Measured> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the workload")?;
    let lines = read_lines(child.stdout.take().context("the workload's stdout")?);
    let stderr = child.stderr.take().context("the workload's stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let mut startup = None;
    let mut last = None;
    let outcome = loop {
        let left = deadline.saturating_sub(started.elapsed());
        match lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) if line == "ready" && startup.is_none() => startup = Some(started.elapsed().as_secs_f64()),
            Ok(line) => last = Some(line),
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
            Err(RecvTimeoutError::Timeout) if started.elapsed() < deadline => {}
            Err(RecvTimeoutError::Timeout) => break Err(anyhow::anyhow!("killed past its {deadline:?} deadline")),
        }
    };
    if outcome.is_err() {
        // `Child::kill` sends SIGKILL to this child's id.
        let _ = child.kill();
    }
    let status = child.wait().context("waiting for the workload")?;
    let stderr = errors.join().unwrap_or_default();
    let tail =
        |text: &str| text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    outcome.with_context(|| tail(&stderr))?;
    if !status.success() {
        bail!("the workload failed ({status}):\n{}", tail(&stderr));
    }
    let startup_s = startup.with_context(|| format!("the workload never said `ready`:\n{}", tail(&stderr)))?;
    let line = last.context("the workload printed no result")?;
    Ok(Measured { startup_s, reported: Reported::parse(&line)? })
}
