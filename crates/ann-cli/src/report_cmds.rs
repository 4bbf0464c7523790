//! `ann report`, `ann blame` and `ann diff`: a run's HTML report rebuilt, prompt lineage, network differences.

use std::path::{Path, PathBuf};

use ann_experiment::report::lineage;
use ann_experiment::report::view::RunView;
use anyhow::Result;
use clap::Args;

/// `ann blame`'s arguments.
#[derive(Args)]
pub struct BlameArgs {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Only this layer's agents.
    #[arg(long)]
    pub layer: Option<String>,
    /// Only agents with this id.
    #[arg(long)]
    pub agent: Option<String>,
}

/// `ann diff`'s arguments.
#[derive(Args)]
pub struct DiffArgs {
    /// A network file (JSON or YAML), a `checkpoint.json` or a run directory (its trained network,
    /// else its checkpoint's, else its starting one).
    pub a: PathBuf,
    /// The same kinds as A.
    pub b: PathBuf,
}

/// Rebuild `report.html` in `run_dir` from its files and print its path.
pub fn report(run_dir: &Path, json: bool) -> Result<()> {
    let path = ann_experiment::report::write_html(run_dir)?;
    if json {
        println!("{}", serde_json::json!({ "report_html": path }));
    } else {
        println!("{}", path.display());
    }
    Ok(())
}

/// Print each line of the trained prompts with the step that introduced it.
pub fn blame(args: &BlameArgs, json: bool) -> Result<()> {
    let view = RunView::load(&args.run_dir)?;
    let blames = lineage::blame(&view, args.layer.as_deref(), args.agent.as_deref())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&blames)?);
    } else {
        print!("{}", lineage::blame_text(&blames));
    }
    Ok(())
}

/// Print what differs from network A to network B.
pub fn diff(args: &DiffArgs, json: bool) -> Result<()> {
    let changes = lineage::diff(&args.a, &args.b)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&changes)?);
    } else {
        print!("{}", lineage::diff_text(&changes));
    }
    Ok(())
}
