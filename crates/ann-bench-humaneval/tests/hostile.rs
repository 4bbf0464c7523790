//! Hostile programs in the real sandbox, with bubblewrap (`bwrap::*`, BubblewrapMode::Required) and
//! without (`plain::*`): each is contained within timeout + 1 s, and nothing is left behind: no
//! process of its session or leased uid, no process carrying its token, no file outside its
//! temporary directory, and the temporary directory itself is gone.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ann_bench_humaneval::{BubblewrapMode, RunOutput, Sandbox, SandboxConfig, Termination};

struct Harness {
    sandbox: Sandbox,
    scratch: tempfile::TempDir,
    token: String,
}

impl Harness {
    async fn new(mode: BubblewrapMode, name: &str) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let scratch = tempfile::Builder::new().prefix("ann-hostile-scratch-").tempdir().unwrap();
        // A leased uid must be able to reach its directory inside.
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Without bubblewrap as an ordinary user, these tests exercise the unisolated fallback on
        // purpose (as root, a leased uid isolates and the setting changes nothing).
        let config = SandboxConfig {
            bubblewrap: mode,
            scratch_dir: scratch.path().to_path_buf(),
            allow_unisolated: mode == BubblewrapMode::Off,
            ..Default::default()
        };
        let sandbox = Sandbox::new(config).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sandbox.uses_bubblewrap(), mode == BubblewrapMode::Required, "{}", sandbox.describe());
        let token = format!(
            "ann-hostile-{}-{name}-{}",
            std::process::id(),
            if sandbox.uses_bubblewrap() { "bwrap" } else { "plain" }
        );
        Self { sandbox, scratch, token }
    }

    /// Run `program` (with `TOKEN` replaced) and check the containment invariants.
    async fn run(&self, program: &str) -> RunOutput {
        let program = program.replace("TOKEN", &self.token);
        let started = Instant::now();
        let out = self.sandbox.run(&program).await.unwrap();
        let elapsed = started.elapsed();
        let limit = self.sandbox.config().timeout + Duration::from_secs(1);
        assert!(elapsed <= limit, "took {elapsed:?} > timeout + 1 s; {out:?}");
        let left: Vec<common::Proc> = common::processes()
            .into_iter()
            .filter(|p| {
                p.pgid == out.pgid
                    || p.session == out.pgid
                    || Some(p.uid) == out.uid
                    || p.cmdline.contains(&self.token)
                    || p.cwd.as_ref().is_some_and(|cwd| cwd.starts_with(self.scratch.path()))
            })
            .collect();
        assert!(left.is_empty(), "left behind: {left:#?}");
        let in_scratch: Vec<PathBuf> = std::fs::read_dir(self.scratch.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.ends_with("ann-sandbox-uid-locks"))
            .collect();
        assert!(in_scratch.is_empty(), "temporary directory not removed: {in_scratch:?}");
        out
    }
}

async fn infinite_loop(mode: BubblewrapMode) {
    let h = Harness::new(mode, "loop").await;
    let out = h.run("while True:\n    pass\n").await;
    assert_eq!(out.termination, Termination::TimedOut);
}

async fn fork_bomb(mode: BubblewrapMode) {
    let h = Harness::new(mode, "forkbomb").await;
    if !h.sandbox.isolates_uid() {
        // RLIMIT_NPROC only bounds a leased uid (see SandboxConfig::max_processes): not run as an
        // ordinary user, where a fork bomb would only be stopped by the timeout.
        eprintln!("skipped: not root, so no leased uid and no process limit");
        return;
    }
    let out = h.run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n").await;
    assert_eq!(out.termination, Termination::TimedOut);
    // The process limit is what bounds it (not only the timeout): forking stops below max_processes.
    let out = h
        .run("import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('refused after', n, e)\n")
        .await;
    let refused_after: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("refused after "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(refused_after < h.sandbox.config().max_processes, "{}", out.stdout);
}

async fn huge_allocation(mode: BubblewrapMode) {
    let h = Harness::new(mode, "alloc").await;
    // One allocation far past RLIMIT_AS.
    let out = h.run("x = bytearray(16 << 30)\n").await;
    assert_eq!(out.termination, Termination::Exited(1), "{out:?}");
    assert!(out.stderr.contains("MemoryError"), "{}", out.stderr);
    // Address space grabbed piece by piece (untouched, so quick): refused at the limit.
    let out = h.run("import mmap\nmaps = []\nwhile True:\n    maps.append(mmap.mmap(-1, 128 << 20))\n").await;
    assert_eq!(out.termination, Termination::Exited(1), "{out:?}");
    assert!(out.stderr.contains("Cannot allocate memory"), "{}", out.stderr);
    // Memory really touched, piece by piece: page faults are slow on this kind of VM (about 1 s per
    // GiB), so under load this may hit the timeout before the limit; either way it is contained.
    let out = h.run("hog = []\nwhile True:\n    hog.append(bytearray(256 << 20))\n").await;
    assert!(out.termination == Termination::TimedOut || out.stderr.contains("MemoryError"), "{out:?}");
}

async fn writing_outside_the_temporary_directory(mode: BubblewrapMode) {
    let h = Harness::new(mode, "write").await;
    let targets: Vec<PathBuf> = [
        PathBuf::from("/tmp"),
        PathBuf::from("/var/tmp"),
        PathBuf::from("/dev/shm"),
        PathBuf::from("/run/lock"),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        h.scratch.path().to_path_buf(),
    ]
    .iter()
    .map(|dir| dir.join(&h.token))
    .collect();
    let list = targets.iter().map(|p| format!("{:?}", p.display().to_string())).collect::<Vec<_>>().join(", ");
    let program = format!(
        "import os\nfor path in [{list}]:\n    try:\n        with open(path, 'w') as f:\n            f.write('escaped')\n        print('wrote', path)\n    except OSError as e:\n        print('refused', path, e)\nprint('cwd', os.getcwd())\nopen('inside.txt', 'w').write('fine')\nprint('inside ok')\n"
    );
    let out = h.run(&program).await;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("inside ok"), "the temporary directory is writable: {}", out.stdout);
    for target in &targets {
        assert!(!target.exists(), "{} was written: {}", target.display(), out.stdout);
    }
    if h.sandbox.uses_bubblewrap() {
        // Read-only root: nothing outside may even be opened for writing, except in the private,
        // throw-away /tmp and /dev of the namespace (writes there vanish with it).
        for target in targets.iter().filter(|t| !t.starts_with("/tmp") && !t.starts_with("/dev")) {
            assert!(out.stdout.contains(&format!("refused {}", target.display())), "{}", out.stdout);
        }
    }
}

async fn opening_a_socket_to_loopback(mode: BubblewrapMode) {
    let h = Harness::new(mode, "socket").await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let program = format!(
        "import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n    s.sendall(b'TOKEN')\n    print('connected')\nexcept OSError as e:\n    print('no connection:', e)\n"
    );
    let out = h.run(&program).await;
    let accepted = listener.accept();
    if h.sandbox.uses_bubblewrap() {
        assert!(out.stdout.contains("no connection"), "{}", out.stdout);
        assert_eq!(
            accepted.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "the listener saw a connection"
        );
    } else {
        // Documented weakness: without bubblewrap there is no network namespace, and loopback is
        // reachable (rlimits and a leased uid do not restrict sockets).
        assert!(out.stdout.contains("connected"), "{}", out.stdout);
        assert!(accepted.is_ok());
    }
}

async fn background_processes_outliving_the_program(mode: BubblewrapMode) {
    let h = Harness::new(mode, "background").await;
    // Three ways to outlive the program: a child in its group, a child in a new session, and a
    // double-forked daemon in a new session; all carry TOKEN in their command line.
    let program = "import os, subprocess, sys\n\
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', 'TOKEN-child'])\n\
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', 'TOKEN-session'], start_new_session=True)\n\
if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', 'TOKEN-daemon'])\n    os._exit(0)\n\
import time\ntime.sleep(0.5)\nprint('parent exits')\n";
    let out = h.run(program).await;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("parent exits"));
}

async fn printing_gigabytes(mode: BubblewrapMode) {
    let h = Harness::new(mode, "print").await;
    let out = h.run("import sys\nchunk = 'x' * (1 << 20)\nwhile True:\n    sys.stdout.write(chunk)\n").await;
    assert_eq!(out.termination, Termination::OutputLimit);
    assert_eq!(out.stdout.len(), h.sandbox.config().max_output_bytes);
    let out = h.run("import sys\nwhile True:\n    sys.stderr.write('y' * 4096)\n").await;
    assert_eq!(out.termination, Termination::OutputLimit);
    assert!(out.stderr.len() <= h.sandbox.config().max_output_bytes);
}

async fn writing_a_huge_file(mode: BubblewrapMode) {
    let h = Harness::new(mode, "bigfile").await;
    let out = h.run("with open('big.bin', 'wb') as f:\n    while True:\n        f.write(b'z' * (1 << 20))\n").await;
    assert!(!out.success() && out.termination != Termination::TimedOut, "{out:?}");
}

async fn a_cancelled_run(mode: BubblewrapMode) {
    let h = Harness::new(mode, "cancel").await;
    let program = "import subprocess, sys, time\n\
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', 'TOKEN-child'], start_new_session=True)\n\
print('started', flush=True)\nwhile True:\n    time.sleep(0.01)\n"
        .replace("TOKEN", &h.token);
    // The caller gives up on the run (its future is dropped) while the program is running.
    let cancelled = tokio::time::timeout(Duration::from_millis(1500), h.sandbox.run(&program)).await;
    assert!(cancelled.is_err(), "the program should still have been running: {cancelled:?}");
    // The drop path sends the kills at once; give the kernel up to a second to carry them out.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left: Vec<common::Proc> = common::processes()
            .into_iter()
            .filter(|p| {
                p.cmdline.contains(&h.token) || p.cwd.as_ref().is_some_and(|cwd| cwd.starts_with(h.scratch.path()))
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind after cancellation: {left:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        /// With bubblewrap (required: `.ci/run` installs it).
        mod bwrap {
            $( #[tokio::test] async fn $name() { super::$name(ann_bench_humaneval::BubblewrapMode::Required).await } )*
        }
        /// Without bubblewrap: session kill, rlimits and (as root) a leased uid.
        mod plain {
            $( #[tokio::test] async fn $name() { super::$name(ann_bench_humaneval::BubblewrapMode::Off).await } )*
        }
    };
}

in_both_modes!(
    infinite_loop,
    fork_bomb,
    huge_allocation,
    writing_outside_the_temporary_directory,
    opening_a_socket_to_loopback,
    background_processes_outliving_the_program,
    printing_gigabytes,
    writing_a_huge_file,
    a_cancelled_run,
);
