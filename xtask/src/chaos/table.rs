//! One row per scenario: what was injected and what held; printed as a Markdown table.

use std::fmt::Write;

/// What one scenario injected and what it measured.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub scenario: String,
    pub injected: String,
    /// Exit codes of the `ann` processes in order (`kill` for a SIGKILL, `sig` for another signal).
    pub exits: Vec<String>,
    /// Requests the server received.
    pub sent: u64,
    /// Requests answered with a normal reply (billed by a provider).
    pub paid: u64,
    /// Paid requests of the uninterrupted baseline (`None`: not comparable).
    pub baseline: Option<u64>,
    /// Bodies paid again whose first answer was not in flight at a SIGKILL.
    pub duplicates: u64,
    /// Bodies paid again whose first answer was in flight when the process was killed (cannot be
    /// stored by a killed process).
    pub in_flight_repaid: u64,
    /// Whether the compared files equal the reference run's (`None`: not compared).
    pub files_equal: Option<bool>,
    pub panics: u64,
    /// Runs that exited 0 with scores other than the reference's, or with no report.
    pub silent_score_changes: u64,
    /// What did not hold, in words.
    pub problems: Vec<String>,
    /// Findings that are not failures, in words.
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(scenario: &str, injected: impl Into<String>) -> Self {
        Row { scenario: scenario.into(), injected: injected.into(), ..Row::default() }
    }

    /// Whether everything held.
    pub fn held(&self) -> bool {
        self.problems.is_empty()
            && self.duplicates == 0
            && self.panics == 0
            && self.silent_score_changes == 0
            && self.files_equal != Some(false)
    }

    pub fn problem(&mut self, what: impl Into<String>) {
        self.problems.push(what.into());
    }
}

/// The table, then one line per problem.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | injected | exits | sent | paid / baseline | paid twice | re-paid after kill (in flight) | files equal | panics | silent score changes | held |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let baseline = r.baseline.map(|b| b.to_string()).unwrap_or_else(|| "-".into());
        let equal = match r.files_equal {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.injected,
            r.exits.join(","),
            r.sent,
            r.paid,
            baseline,
            r.duplicates,
            r.in_flight_repaid,
            equal,
            r.panics,
            r.silent_score_changes,
            if r.held() { "yes" } else { "NO" }
        );
    }
    for r in rows {
        for p in &r.problems {
            let _ = writeln!(out, "- {}: {p}", r.scenario);
        }
        for n in &r.notes {
            let _ = writeln!(out, "- {} (note): {n}", r.scenario);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_holds_only_without_problems_duplicates_panics_or_changes() {
        let mut row = Row::new("x", "y");
        row.files_equal = Some(true);
        assert!(row.held());
        row.in_flight_repaid = 3;
        assert!(row.held(), "answers in flight at a SIGKILL cannot be stored");
        row.duplicates = 1;
        assert!(!row.held());
        let mut row = Row::new("x", "y");
        row.files_equal = Some(false);
        assert!(!row.held());
        assert!(render(&[row]).contains("| NO |"));
    }
}
