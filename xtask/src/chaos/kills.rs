//! SIGKILL/resume cycles: one run killed at seeded moments (after the k-th request reaches the
//! server), each kill named by the run's phase and the kind of call in flight, then resumed until
//! it finishes; the result must equal the uninterrupted baseline and no stored answer be paid twice.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};

use super::experiment;
use super::procs::{ServerSpec, finish};
use super::table::Row;
use super::{Baseline, Campaign, count_requests, record};

/// SplitMix64: the campaign's seeded draws (no dependency for one function).
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `cycles` kill moments: request counts in `1..sent`, ascending (repeats dropped).
pub fn kill_points(seed: u64, cycles: usize, sent: u64) -> Vec<u64> {
    if sent < 2 {
        return Vec::new();
    }
    let mut state = seed ^ 0x6b69_6c6c;
    let mut points: Vec<u64> = (0..cycles).map(|_| 1 + splitmix(&mut state) % (sent - 1)).collect();
    points.sort_unstable();
    points.dedup();
    points
}

pub fn cycles(campaign: &Campaign, baseline: &Baseline, cycles: usize) -> Result<Row> {
    let points = kill_points(campaign.seed, cycles, baseline.log.len() as u64);
    let mut row = Row::new("SIGKILL cycles", format!("{} kills (seeded), each followed by `ann resume`", points.len()));
    row.baseline = Some(baseline.paid);
    let dir = campaign.dir("kills")?;
    let home = experiment::home(&dir, &campaign.settings(&dir))?;
    // Each answer takes a few milliseconds, so that a kill lands with calls in flight.
    let server = campaign.start_server(&ServerSpec::learn(10), &dir)?;
    let ann = campaign.ann(&dir, &server.url);
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    let mut kills_at: Vec<usize> = Vec::new();
    let mut pending = points.iter().copied().peekable();
    let mut first = true;
    let mut last = None;
    for _ in 0..points.len() + 8 {
        let args: Vec<String> = if first {
            home.train_args()
        } else {
            let run_dir = home.run_dir().context("no run directory to resume")?;
            vec!["resume".into(), run_dir.display().to_string()]
        };
        first = false;
        let target = pending.peek().copied();
        let child = ann.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let mut killed_at: Option<(String, usize)> = None;
        let outcome = finish(child, |_elapsed: Duration| {
            let Some(target) = target else { return false };
            let logged = server.logged().unwrap_or_default();
            if (logged.len() as u64) < target {
                return false;
            }
            let kind = baseline.log.get(target as usize - 1).map(|l| l.kind.clone()).unwrap_or_default();
            let phase = experiment::phase(home.run_dir().as_deref());
            killed_at = Some((format!("{phase}/{kind}"), logged.len()));
            true
        })?;
        record(&mut row, &outcome);
        if outcome.panicked() {
            last = Some(outcome);
            break;
        }
        if outcome.killed {
            pending.next();
            // Let the server log what the killed process had sent, then note where the kill was.
            std::thread::sleep(Duration::from_millis(30));
            let (phase, _) = killed_at.clone().unwrap_or_else(|| ("deadline".into(), 0));
            *phases.entry(phase).or_insert(0) += 1;
            kills_at.push(server.logged()?.len());
            continue;
        }
        let done = outcome.ok();
        last = Some(outcome);
        if done {
            break;
        }
    }
    let log = server.stop()?;
    count_requests(&mut row, &log, &kills_at);
    let phases: Vec<String> = phases.iter().map(|(p, n)| format!("{p} ×{n}")).collect();
    row.injected = format!("{} (at {})", row.injected, phases.join(", "));
    match last {
        Some(outcome) => super::scenarios::compare(&mut row, baseline, &home, &outcome),
        None => row.problem("the run never finished"),
    }
    if row.paid != baseline.paid + row.in_flight_repaid && row.duplicates == 0 {
        row.problem(format!(
            "paid {} calls, the baseline {} (+{} in flight)",
            row.paid, baseline.paid, row.in_flight_repaid
        ));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_points_are_seeded_sorted_and_within_the_run() {
        let a = kill_points(7, 31, 55);
        assert_eq!(a, kill_points(7, 31, 55));
        assert_ne!(a, kill_points(8, 31, 55));
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|&k| (1..55).contains(&k)), "{a:?}");
        assert!(kill_points(0, 3, 1).is_empty());
    }
}
