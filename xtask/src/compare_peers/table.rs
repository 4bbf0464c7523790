//! What a workload process reports, the medians over repetitions, and the Markdown tables:
//! workload wall, ideal, overhead and client CPU per request, peak RSS, startup, and the ratios
//! to the bare client and to each peer.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The one JSON line a workload process prints at its end (`benches/src/bin/peer-workload`,
/// `xtask/peers/workload.py`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reported {
    /// Model calls the client made in the workload.
    pub requests: u64,
    /// Requests of the warm-up question before `ready` (not in the workload's figures).
    pub warmup_requests: u64,
    /// Workload wall time (after `ready`), seconds.
    pub wall_s: f64,
    /// The process's user + system CPU during the workload, seconds.
    pub cpu_s: f64,
    /// Peak resident set size, KiB.
    pub max_rss_kb: u64,
}

impl Reported {
    pub fn parse(line: &str) -> Result<Self> {
        serde_json::from_str(line).with_context(|| format!("the workload's result line `{line}`"))
    }
}

/// Who runs the workload, in the tables' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Framework {
    /// agentic-nn as `ann` stacks it (cache on, the run's budget ledger on).
    Ann,
    AnnNoCache,
    /// Cache off and no run ledger: what `ann eval` runs.
    AnnNoLedger,
    Bare,
    Dspy,
    TextGrad,
}

impl Framework {
    pub fn label(self) -> &'static str {
        match self {
            Framework::Ann => "agentic-nn (ann defaults)",
            Framework::AnnNoCache => "agentic-nn (cache off)",
            Framework::AnnNoLedger => "agentic-nn (cache off, no ledger)",
            Framework::Bare => "bare tokio + reqwest",
            Framework::Dspy => "DSPy",
            Framework::TextGrad => "TextGrad",
        }
    }
}

/// One measurement's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Setting {
    pub latency_ms: u64,
    pub in_flight: usize,
    pub framework: Framework,
}

/// One process's measurement.
#[derive(Debug, Clone)]
pub struct Sample {
    pub setting: Setting,
    pub questions: usize,
    pub startup_s: f64,
    pub reported: Reported,
}

/// The medians of a setting's repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub setting: Setting,
    pub questions: usize,
    pub requests: u64,
    pub runs: usize,
    pub wall_s: f64,
    pub ideal_s: f64,
    pub startup_s: f64,
    pub cpu_per_request_ms: f64,
    pub max_rss_mib: f64,
}

impl Row {
    /// Wall time past the ideal, per request, in milliseconds.
    pub fn overhead_per_request_ms(&self) -> f64 {
        (self.wall_s - self.ideal_s).max(0.0) * 1e3 / self.requests.max(1) as f64
    }
}

/// The shortest possible wall time: every question is 3 calls in a row (solvers at once, then the
/// aggregator, then the formatter), `in_flight` questions at a time.
pub fn ideal_s(questions: usize, in_flight: usize, latency_ms: u64) -> f64 {
    questions.div_ceil(in_flight.max(1)) as f64 * 3.0 * latency_ms as f64 / 1e3
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One row per setting: the medians of its samples.
pub fn rows(samples: &[Sample]) -> Vec<Row> {
    // A setting run at several sizes (the scale run) gives one row per size.
    let mut by: BTreeMap<(Setting, usize), Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by.entry((s.setting, s.questions)).or_default().push(s);
    }
    by.into_iter()
        .map(|((setting, questions), group)| {
            let pick = |f: &dyn Fn(&Sample) -> f64| median(group.iter().map(|s| f(s)).collect());
            Row {
                setting,
                questions,
                requests: group[0].reported.requests,
                runs: group.len(),
                wall_s: pick(&|s| s.reported.wall_s),
                ideal_s: ideal_s(questions, setting.in_flight, setting.latency_ms),
                startup_s: pick(&|s| s.startup_s),
                cpu_per_request_ms: pick(&|s| s.reported.cpu_s * 1e3 / s.reported.requests.max(1) as f64),
                max_rss_mib: pick(&|s| s.reported.max_rss_kb as f64 / 1024.0),
            }
        })
        .collect()
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// The forward table: per latency and concurrency, each framework's medians and its client CPU
/// per request relative to the bare client, DSPy and TextGrad (and its wall time to the bare
/// client's).
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| latency | in flight | framework | requests | wall s | ideal s | overhead ms/req | client CPU ms/req | CPU × bare | CPU × DSPy | CPU × TextGrad | wall × bare | peak RSS MiB | startup s |\n",
    );
    out.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let s = r.setting;
        let peer = |f: Framework| {
            rows.iter().find(|o| o.setting == Setting { framework: f, ..s }).map(|o| (o.cpu_per_request_ms, o.wall_s))
        };
        let cpu = |f: Framework| {
            if f == s.framework { "-".into() } else { ratio(r.cpu_per_request_ms, peer(f).map(|p| p.0)) }
        };
        let _ = writeln!(
            out,
            "| {} ms | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {:.0} | {:.2} |",
            s.latency_ms,
            s.in_flight,
            s.framework.label(),
            r.requests,
            r.wall_s,
            r.ideal_s,
            r.overhead_per_request_ms(),
            r.cpu_per_request_ms,
            cpu(Framework::Bare),
            cpu(Framework::Dspy),
            cpu(Framework::TextGrad),
            if s.framework == Framework::Bare {
                "-".into()
            } else {
                ratio(r.wall_s, peer(Framework::Bare).map(|p| p.1))
            },
            r.max_rss_mib,
            r.startup_s,
        );
    }
    out
}

/// The training-step table: one step (forward of the batch, loss, backward, optimiser step).
pub fn render_train(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| latency | framework | batch | requests | wall s | client CPU s | CPU ms/req | peak RSS MiB | startup s |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} ms | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.0} | {:.2} |",
            r.setting.latency_ms,
            r.setting.framework.label(),
            r.questions,
            r.requests,
            r.wall_s,
            r.cpu_per_request_ms * r.requests as f64 / 1e3,
            r.cpu_per_request_ms,
            r.max_rss_mib,
            r.startup_s,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(framework: Framework, wall_s: f64, cpu_s: f64, startup_s: f64) -> Sample {
        Sample {
            setting: Setting { latency_ms: 50, in_flight: 16, framework },
            questions: 200,
            startup_s,
            reported: Reported { requests: 1000, warmup_requests: 5, wall_s, cpu_s, max_rss_kb: 20 * 1024 },
        }
    }

    #[test]
    fn a_result_line_parses_and_a_garbled_one_is_refused_with_the_line() {
        let line = r#"{"requests":1000,"warmup_requests":5,"wall_s":1.5,"cpu_s":0.07,"max_rss_kb":20480}"#;
        let reported = Reported::parse(line).unwrap();
        assert_eq!(
            reported,
            Reported { requests: 1000, warmup_requests: 5, wall_s: 1.5, cpu_s: 0.07, max_rss_kb: 20480 }
        );
        let err = Reported::parse(r#"{"requests":1000,"wall":1}"#).unwrap_err();
        assert!(format!("{err:#}").contains(r#""wall":1"#), "{err:#}");
    }

    #[test]
    fn the_ideal_counts_three_calls_in_a_row_per_wave_of_questions() {
        assert_eq!(ideal_s(200, 16, 50), 13.0 * 0.15);
        assert!((ideal_s(200, 1, 50) - 30.0).abs() < 1e-9);
        assert_eq!(ideal_s(200, 16, 0), 0.0);
    }

    #[test]
    fn rows_take_the_median_of_the_repetitions_and_the_table_shows_the_ratios() {
        let samples = vec![
            sample(Framework::Ann, 2.2, 0.30, 0.05),
            sample(Framework::Ann, 2.0, 0.10, 0.04),
            sample(Framework::Ann, 9.0, 0.20, 0.06),
            sample(Framework::Bare, 2.0, 0.05, 0.01),
            sample(Framework::Dspy, 4.0, 2.0, 3.0),
        ];
        let rows = rows(&samples);
        assert_eq!(rows.len(), 3);
        let ann = &rows[0];
        assert_eq!((ann.setting.framework, ann.runs, ann.wall_s, ann.startup_s), (Framework::Ann, 3, 2.2, 0.05));
        assert!((ann.cpu_per_request_ms - 0.2).abs() < 1e-12);
        assert!((ann.overhead_per_request_ms() - (2.2 - 1.95)).abs() < 1e-9);
        let table = render(&rows);
        let line = table.lines().find(|l| l.contains("ann defaults")).unwrap();
        // 0.2 ms against the bare client's 0.05 and DSPy's 2.0; no TextGrad row: no ratio.
        assert!(line.contains("| 0.200 | 4.00x | 0.10x | - | 1.10x | 20 | 0.05 |"), "{line}");
        let bare = table.lines().find(|l| l.contains("bare tokio")).unwrap();
        assert!(bare.contains("| 0.050 | - | 0.03x | - | - |"), "{bare}");
        assert_eq!(table.lines().count(), 2 + 3);
    }

    #[test]
    fn one_setting_at_two_sizes_gives_two_rows() {
        let mut big = sample(Framework::Ann, 12.0, 2.0, 0.05);
        big.questions = 2000;
        let rows = rows(&[sample(Framework::Ann, 2.0, 0.1, 0.05), big]);
        assert_eq!(
            rows.iter().map(|r| (r.questions, r.runs, r.wall_s)).collect::<Vec<_>>(),
            [(200, 1, 2.0), (2000, 1, 12.0)]
        );
    }
}
