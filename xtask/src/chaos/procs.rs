//! The campaign's child processes: the fake server (`ann-fake-server`, read back through its
//! request log) and `ann` runs, each started, watched and stopped by its process id.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;

/// The longest any one `ann` process may run before the campaign kills it (a hang is a failure).
pub const ANN_DEADLINE: Duration = Duration::from_secs(180);

/// How the fake server answers.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// `learn` or `hostile`.
    pub mode: &'static str,
    pub seed: u64,
    pub latency_ms: u64,
    pub fault_rate: f64,
    /// `--fault-kinds` (empty: the server's default).
    pub fault_kinds: &'static str,
    pub hostile_rate: f64,
}

impl ServerSpec {
    pub fn learn(latency_ms: u64) -> Self {
        ServerSpec { mode: "learn", seed: 0, latency_ms, fault_rate: 0.0, fault_kinds: "", hostile_rate: 0.0 }
    }
}

/// A running `ann-fake-server` child on 127.0.0.1.
pub struct Server {
    child: Child,
    pub url: String,
    log: PathBuf,
}

/// One line of the server's `--log`.
#[derive(Debug, Clone, Deserialize)]
pub struct Logged {
    pub index: u64,
    pub kind: String,
    pub fault: String,
    pub hostility: Option<String>,
    pub sha256: String,
}

impl Logged {
    /// Answered with a usable 200 reply: one the client keeps (a provider bills it). A body with no
    /// choices or past the size cap is retried like a fault, so its retry is no second payment.
    pub fn paid(&self) -> bool {
        self.fault == "ok" && !matches!(self.hostility.as_deref(), Some("missing-choices" | "oversize"))
    }
}

impl Server {
    /// Start the server binary `bin` with `spec`, logging requests to `log`.
    pub fn start(bin: &Path, spec: &ServerSpec, log: &Path) -> Result<Server> {
        let mut command = Command::new(bin);
        command
            .args(["--port", "0", "--mode", spec.mode, "--seed", &spec.seed.to_string()])
            .args(["--latency-ms", &spec.latency_ms.to_string()])
            .args(["--fault-rate", &spec.fault_rate.to_string()])
            .args(["--hostile-rate", &spec.hostile_rate.to_string()])
            .arg("--log")
            .arg(log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if !spec.fault_kinds.is_empty() {
            command.args(["--fault-kinds", spec.fault_kinds]);
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).context("reading the server's first line")?;
        let Some(url) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the fake server said {first:?}, not its URL");
        };
        Ok(Server { url: url.to_string(), child, log: log.to_path_buf() })
    }

    /// The requests logged so far (the server appends within milliseconds of their arrival).
    pub fn logged(&self) -> Result<Vec<Logged>> {
        read_log(&self.log)
    }

    /// Stop the server (SIGINT to its id: it writes the rest of its log), then read the log.
    pub fn stop(mut self) -> Result<Vec<Logged>> {
        let pid = Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGINT).is_err() {
            let _ = self.child.kill();
        }
        let started = Instant::now();
        while self.child.try_wait()?.is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the fake server did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        read_log(&self.log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_log(path: &Path) -> Result<Vec<Logged>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    // The last line may be half written while the server runs.
    let mut log: Vec<Logged> = text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    log.sort_by_key(|l| l.index);
    Ok(log)
}

/// What one `ann` process did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Killed by the campaign (a SIGKILL cycle or the deadline).
    pub killed: bool,
    pub stderr: String,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// A Rust panic or an abort (SIGABRT, SIGSEGV: a stack overflow).
    pub fn panicked(&self) -> bool {
        self.stderr.contains("panicked at") || (self.code.is_none() && !self.killed)
    }
}

/// An `ann` command in `home` against the endpoint `url`.
pub struct Ann {
    pub bin: PathBuf,
    pub home: PathBuf,
    pub url: String,
    /// Run under `sh -c 'ulimit -f BLOCKS'` with SIGXFSZ ignored: files past BLOCKS × 512 bytes
    /// cannot be written (EFBIG), the campaign's full disk.
    pub file_size_blocks: Option<u64>,
}

impl Ann {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = match self.file_size_blocks {
            None => Command::new(&self.bin),
            Some(blocks) => {
                let mut sh = Command::new("sh");
                sh.arg("-c").arg(format!("trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\"")).arg(&self.bin);
                sh
            }
        };
        command
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env("ANN_OPENAI_BASE_URL", &self.url)
            .env("ANN_OPENAI_MODEL", "chaos-model")
            .env("ANN_OPENAI_API_KEY", "sk-chaos-canary-0000")
            .env("RUST_LOG", "warn")
            .env_remove("ANN_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Start `ann ARGS` and return its child.
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        self.command(args).spawn().with_context(|| format!("starting {}", self.bin.display()))
    }

    /// Run `ann ARGS` to its end (killed by id past [`ANN_DEADLINE`]).
    pub fn run(&self, args: &[&str]) -> Result<Outcome> {
        let child = self.spawn(args)?;
        finish(child, |_| false)
    }
}

/// Wait for `child`, polling `kill_now(elapsed)`: when it says so, SIGKILL the child by its id.
/// Its output is read on threads, so a chatty child never blocks on a full pipe.
pub fn finish(mut child: Child, mut kill_now: impl FnMut(Duration) -> bool) -> Result<Outcome> {
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let started = Instant::now();
    let mut killed = false;
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if !killed && (kill_now(started.elapsed()) || started.elapsed() > ANN_DEADLINE) {
            // `Child::kill` sends SIGKILL to this child's id.
            child.kill().context("killing ann")?;
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stderr = stderr.join().unwrap_or_default();
    let mut stderr_text = stderr;
    if started.elapsed() > ANN_DEADLINE {
        stderr_text.push_str("\n[chaos] killed past the deadline\n");
    }
    let _ = stdout.join();
    Ok(Outcome { code: status.code(), killed, stderr: stderr_text })
}
