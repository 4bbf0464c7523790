//! The library of trained networks: finished run directories read as examples for team
//! construction (`ann construct --from`, `ann adapt --from`), each with its validation score.

use std::path::{Path, PathBuf};

use ann_graph::{LibraryNetwork, Network};
use anyhow::{Context, bail};

/// The trained network of a finished run.
pub const TRAINED_FILE: &str = "network-trained.json";

/// Read each run directory's trained network and, from its `report.json` when it has one, the
/// trained network's mean validation score. The entry's name is the directory's own name.
pub fn load_library(run_dirs: &[PathBuf]) -> anyhow::Result<Vec<LibraryNetwork>> {
    run_dirs.iter().map(|dir| load_entry(dir)).collect()
}

fn load_entry(dir: &Path) -> anyhow::Result<LibraryNetwork> {
    let path = dir.join(TRAINED_FILE);
    if !path.is_file() {
        bail!("{} is not a finished run directory: it has no {TRAINED_FILE}", dir.display());
    }
    let network = Network::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let report = dir.join(crate::run::REPORT_JSON);
    let validation = match std::fs::read_to_string(&report) {
        Ok(text) => {
            let value: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("reading {}", report.display()))?;
            value["validation"]["trained"]["mean"].as_f64()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", report.display())),
    };
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok(LibraryNetwork { name, validation, network })
}
