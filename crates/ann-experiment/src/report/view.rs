//! A run directory read back for the reports: `report.json`, the journal, the networks and the traces.
//!
//! Everything `report.html`, `ann blame` and `ann diff` show comes from these files, so a report
//! can be rebuilt from a run directory alone (`ann report RUN_DIR`).

use std::path::{Path, PathBuf};

use ann_graph::{CallRecord, LayerTrace, Network, RoutingDecision, Trace};
use ann_textgrad::{JournalEvent, RunFiles, StepRecord};
use anyhow::Context;
use serde::Deserialize;

use super::Report;
use crate::run::REPORT_JSON;

/// The starting network's file in a run directory.
pub const NETWORK_INITIAL: &str = "network-initial.json";
/// The trained network's file in a run directory.
pub const NETWORK_TRAINED: &str = "network-trained.json";

/// What a run directory holds, parsed.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The run directory's own name (`<name>-<UTC time>`).
    pub name: String,
    /// `None` for a run that has not finished.
    pub report: Option<Report>,
    pub journal: Vec<JournalEvent>,
    pub initial: Option<Network>,
    pub trained: Option<Network>,
    /// The forward traces of the starting validation, the training batches in batch order, then
    /// of the final evaluations (`test-trained`, `test-baseline-<name>`, ...) in name order.
    pub examples: Vec<ExampleTrace>,
}

/// One example's forward pass of a training batch, with its evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleTrace {
    /// The trace file's stem: `e<epoch>-b<batch>` (a training batch), `start-validation`, or an
    /// evaluation's name.
    pub batch: String,
    pub id: String,
    pub score: f64,
    pub passed: bool,
    pub feedback: String,
    pub excluded: bool,
    /// Absent when the forward made no call.
    pub trace: Option<Trace>,
}

impl RunView {
    /// Read the run directory `dir`; a missing file leaves its part empty, a garbled one is an
    /// error naming it.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            anyhow::bail!("{} is not a run directory", dir.display());
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let report = match std::fs::read_to_string(dir.join(REPORT_JSON)) {
            Ok(text) => Some(
                serde_json::from_str(&text).with_context(|| format!("reading {}", dir.join(REPORT_JSON).display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.join(REPORT_JSON).display())),
        };
        let files = RunFiles::new(dir).context("opening the run's files")?;
        let journal =
            if files.journal_path().is_file() { files.read_journal().context("reading the journal")? } else { vec![] };
        let network = |file: &str| -> anyhow::Result<Option<Network>> {
            let path = dir.join(file);
            if !path.is_file() {
                return Ok(None);
            }
            Network::load(&path).map(Some).with_context(|| format!("reading {}", path.display()))
        };
        let examples = read_traces(&dir.join(ann_textgrad::journal::TRACES_DIR))?;
        Ok(Self {
            name,
            report,
            journal,
            initial: network(NETWORK_INITIAL)?,
            trained: network(NETWORK_TRAINED)?,
            examples,
        })
    }

    /// The journal's backward steps, in order.
    pub fn steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.journal.iter().filter_map(|e| if let JournalEvent::Step(s) = e { Some(s.as_ref()) } else { None })
    }

    /// The starting validation score (the journal's `start` line).
    pub fn val_initial(&self) -> Option<f64> {
        self.journal
            .iter()
            .find_map(|e| if let JournalEvent::Start { val_initial, .. } = e { Some(*val_initial) } else { None })
    }
}

/// A trace file's place: (kind, epoch, batch, name).
type TraceOrder = (u8, usize, usize, String);

/// Where a trace file goes on the page: the starting validation, the training batches in batch
/// order, then the other sets of forwards (the final evaluations) by name. The gate's candidate
/// runs (`e<epoch>-b<batch>-s<step>-<label>`) are left to the files: a long run has many.
fn trace_order(stem: &str) -> Option<TraceOrder> {
    if stem == "start-validation" {
        return Some((0, 0, 0, String::new()));
    }
    if let Some(rest) = stem.strip_prefix('e')
        && let Some((e, b)) = rest.split_once("-b")
        && let Ok(e) = e.parse()
    {
        return match b.parse() {
            Ok(b) => Some((1, e, b, String::new())),
            Err(_) => None,
        };
    }
    Some((2, 0, 0, stem.to_string()))
}

fn read_traces(dir: &Path) -> anyhow::Result<Vec<ExampleTrace>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files: Vec<(TraceOrder, String, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            Some((trace_order(&stem)?, stem, p))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for (_, label, path) in files {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        out.extend(parse_traces(&label, &text).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(out)
}

/// A `layer` line of a trace.
#[derive(Deserialize)]
struct LayerLine {
    layer: String,
    input: String,
    routing: RoutingDecision,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    error: Option<String>,
    output: String,
}

/// An `example` line of a trace file.
#[derive(Deserialize)]
struct ExampleLine {
    id: String,
    score: f64,
    passed: bool,
    #[serde(default)]
    feedback: String,
    #[serde(default)]
    excluded: bool,
}

/// Rebuild the examples and traces of one batch file (the lines `RunFiles::write_traces` writes).
pub fn parse_traces(batch: &str, text: &str) -> anyhow::Result<Vec<ExampleTrace>> {
    let mut out: Vec<ExampleTrace> = Vec::new();
    let mut calls: Vec<CallRecord> = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("line {}", n + 1);
        let value: serde_json::Value = serde_json::from_str(line).with_context(at)?;
        let event = value["event"].as_str().unwrap_or_default().to_string();
        let current = out.last_mut();
        match (event.as_str(), current) {
            ("example", _) => {
                let e: ExampleLine = serde_json::from_value(value).with_context(at)?;
                out.push(ExampleTrace {
                    batch: batch.to_string(),
                    id: e.id,
                    score: e.score,
                    passed: e.passed,
                    feedback: e.feedback,
                    excluded: e.excluded,
                    trace: None,
                });
            }
            ("forward", Some(example)) => {
                let text = |k: &str| value[k].as_str().unwrap_or_default().to_string();
                example.trace =
                    Some(Trace { task: text("task"), input: text("input"), layers: vec![], output: String::new() });
            }
            ("call", Some(_)) => calls.push(serde_json::from_value(value).with_context(at)?),
            ("layer", Some(ExampleTrace { trace: Some(trace), .. })) => {
                let l: LayerLine = serde_json::from_value(value).with_context(at)?;
                trace.layers.push(LayerTrace {
                    layer: l.layer,
                    input: l.input,
                    routing: l.routing,
                    calls: std::mem::take(&mut calls),
                    notes: l.notes,
                    error: l.error,
                    output: l.output,
                });
            }
            ("output", Some(ExampleTrace { trace: Some(trace), .. })) => {
                trace.output = value["output"].as_str().unwrap_or_default().to_string();
            }
            (other, _) => anyhow::bail!("{}: unexpected `{other}` event", at()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"event":"example","id":"q1","score":0.5,"passed":false,"feedback":"half"}"#;

    #[test]
    fn a_garbled_trace_line_is_named() {
        let err = parse_traces("e0-b0", &format!("{EXAMPLE}\nnot json")).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        let err = parse_traces("e0-b0", &format!("{EXAMPLE}\n{{\"event\":\"weird\"}}")).unwrap_err();
        assert!(format!("{err:#}").contains("line 2: unexpected `weird` event"), "{err:#}");
    }

    #[test]
    fn an_example_without_a_forward_has_no_trace() {
        let examples = parse_traces("eval-test-trained", EXAMPLE).unwrap();
        assert_eq!(examples.len(), 1);
        assert_eq!((examples[0].id.as_str(), examples[0].score, examples[0].trace.is_none()), ("q1", 0.5, true));
    }

    #[test]
    fn trace_files_sort_start_batches_then_evaluations() {
        let mut stems = ["test-trained", "e10-b2", "e2-b10", "start-validation", "e0-b0-s1-candidate", "e2-b3"];
        stems.sort_by_key(|s| trace_order(s));
        let shown: Vec<&str> = stems.iter().copied().filter(|s| trace_order(s).is_some()).collect();
        assert_eq!(shown, ["start-validation", "e2-b3", "e2-b10", "e10-b2", "test-trained"]);
    }
}
