//! The Python peers' environment: a virtual environment under `target/peers/venv` with DSPy and
//! TextGrad at pinned versions from PyPI (made once, remade when the pins change), and the
//! command that runs `xtask/peers/workload.py` in it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The pinned peers, as pip takes them.
pub const PINS: &[&str] = &["dspy==3.4.1", "textgrad==0.1.8"];

pub struct Env {
    python: PathBuf,
    script: PathBuf,
    /// The installed versions of the peers and of what they call the endpoint with.
    pub versions: String,
}

impl Env {
    /// The environment, made (`python3 -m venv`, `pip install PINS`) unless it holds the pins.
    pub fn ensure() -> Result<Env> {
        let root = crate::workspace_root();
        let dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let venv = dir.join("peers").join("venv");
        let python = venv.join("bin").join("python");
        let marker = venv.join("ann-peers-pins.txt");
        let wanted = PINS.join("\n") + "\n";
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) || !python.is_file() {
            eprintln!("[compare-peers] making {} with {}", venv.display(), PINS.join(", "));
            run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv), "python3 -m venv")?;
            run(
                Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                    .args(PINS),
                "pip install",
            )?;
            std::fs::write(&marker, &wanted).with_context(|| format!("writing {}", marker.display()))?;
        }
        let output = Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in ['dspy', 'textgrad', 'litellm', 'openai']))",
            ])
            .output()
            .context("asking the environment for its versions")?;
        if !output.status.success() {
            bail!("the Python environment {} is broken: {}", venv.display(), String::from_utf8_lossy(&output.stderr));
        }
        let versions = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok(Env { python, script: root.join("xtask").join("peers").join("workload.py"), versions })
    }

    /// `python workload.py --framework FRAMEWORK`.
    pub fn command(&self, framework: &str) -> Command {
        let mut command = Command::new(&self.python);
        command.arg(&self.script).args(["--framework", framework]);
        command
    }
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
