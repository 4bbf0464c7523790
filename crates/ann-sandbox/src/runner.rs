//! The trusted runner and its pipes: the run's secret in, the verdict out, capped output reading.

use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::Notify;

use crate::SandboxError;
use crate::error::io_err;

/// The trusted runner, run as `python3 -I -c RUNNER <verdict fd> <secret fd>` in the temporary
/// directory. It reads the run's secret from its pipe and closes it, then runs `program.py` as the
/// `__main__` module (as `python3 -I program.py` would: same `__file__`, `sys.argv`, tracebacks and
/// recursion headroom), and only when that code ran to its end writes the secret to the verdict
/// descriptor, which it keeps from programs the code executes. An exception or `sys.exit` leaves as
/// it would from a script.
pub(crate) const RUNNER: &str = r#"import sys
def _ann_runner(verdict_fd, secret_fd):
    import builtins, importlib.machinery, os, types
    secret = os.read(secret_fd, 4096)
    os.close(secret_fd)
    os.set_inheritable(verdict_fd, False)
    path = os.path.abspath('program.py')
    runner_module = sys.modules['__main__']
    main = types.ModuleType('__main__')
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.SourceFileLoader('__main__', path)
    sys.modules['__main__'] = main
    sys.argv = ['program.py']
    sys.setrecursionlimit(sys.getrecursionlimit() + 2)
    with open(path, 'rb') as f:
        code = compile(f.read(), path, 'exec')
    exec(code, main.__dict__)
    os.write(verdict_fd, secret)
    del runner_module
_ann_runner(int(sys.argv[1]), int(sys.argv[2]))
"#;

/// Bytes of the verdict pipe kept (the runner writes a 64-character secret, once per process that
/// ran the code to its end).
pub(crate) const VERDICT_CAP: usize = 4096;

/// The child's ends of the secret and verdict pipes (close-on-exec here; the child hook clears that
/// flag in the child only).
pub(crate) struct ChildFds {
    pub(crate) secret: OwnedFd,
    pub(crate) verdict: OwnedFd,
}

/// `fd`, or a duplicate numbered 3 or above: descriptors 0 to 2 are replaced by the child's stdio.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 { Ok(fd) } else { fd.try_clone() }
}

/// A fresh secret per run: 32 bytes of `/dev/urandom`, in hex.
pub(crate) fn run_secret() -> Result<String, SandboxError> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading /dev/urandom for the run's secret"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How long to wait for the output pipes to close once everything was killed.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_millis(500);

pub(crate) async fn read_capped<R: AsyncRead + Unpin>(
    mut stream: R,
    cap: usize,
    overflow: Arc<Notify>,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return (kept, false),
            Ok(n) => {
                let room = cap - kept.len();
                if n > room {
                    kept.extend_from_slice(&chunk[..room]);
                    overflow.notify_one();
                    return (kept, true);
                }
                kept.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

pub(crate) async fn join_reader(task: tokio::task::JoinHandle<(Vec<u8>, bool)>) -> (String, bool) {
    let abort = task.abort_handle();
    match tokio::time::timeout(DRAIN_GRACE, task).await {
        Ok(Ok((bytes, over))) => (String::from_utf8_lossy(&bytes).into_owned(), over),
        // A process that escaped every kill still holds the pipe (only possible without bubblewrap
        // and without a leased uid): give up on this stream.
        _ => {
            abort.abort();
            (String::new(), false)
        }
    }
}
