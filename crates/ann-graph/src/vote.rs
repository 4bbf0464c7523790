//! Answer extraction and voting: the caller's answer extractor and the majority vote that
//! `majority_vote` and `debate` (and any custom aggregator) use to pick one answer of a team.

/// The caller's answer extractor for voting: the normalised final answer of an output, if any.
/// The graph does not know benchmarks; the caller passes the benchmark's extractor.
pub type Extractor = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The vote key of a text without an extractor: the text with whitespace normalised.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Majority vote: the key of each text is `extractor(text)` (without an extractor, the text with
/// whitespace normalised); texts with no key abstain. The most frequent key wins; ties go to the key
/// whose first voter has the lowest index. Returns the index of the first text with the winning key
/// (the first text when no key was found) and notes recording the tally and any tie.
pub fn majority_vote(ids: &[&str], texts: &[&str], extractor: Option<&Extractor>) -> (usize, Vec<String>) {
    let keys: Vec<Option<String>> =
        texts.iter().map(|t| if let Some(f) = extractor { f(t) } else { Some(normalise(t)) }).collect();
    // (key, voter indices) in order of first appearance.
    let mut tally: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(key) = key else { continue };
        match tally.iter_mut().find(|(k, _)| *k == key.as_str()) {
            Some((_, voters)) => voters.push(i),
            None => tally.push((key, vec![i])),
        }
    }
    let mut notes = Vec::new();
    let abstained: Vec<&str> = keys.iter().zip(ids).filter(|(k, _)| k.is_none()).map(|(_, id)| *id).collect();
    let Some(best) = tally.iter().map(|(_, v)| v.len()).max() else {
        notes.push(format!("vote: no answer could be extracted; the output of `{}` is used", ids[0]));
        return (0, notes);
    };
    let mut line = String::from("vote:");
    for (key, voters) in &tally {
        let who: Vec<&str> = voters.iter().map(|&i| ids[i]).collect();
        line.push_str(&format!(" `{key}` <- {};", who.join(", ")));
    }
    if !abstained.is_empty() {
        line.push_str(&format!(" no answer <- {};", abstained.join(", ")));
    }
    let leaders: Vec<&(&str, Vec<usize>)> = tally.iter().filter(|(_, v)| v.len() == best).collect();
    let winner = leaders[0].1[0];
    line.push_str(&format!(" winner `{}` ({} of {})", ids[winner], best, texts.len()));
    notes.push(line);
    if leaders.len() > 1 {
        let keys: Vec<String> = leaders.iter().map(|(k, _)| format!("`{k}`")).collect();
        notes.push(format!(
            "tie between {} ({} votes each), broken by the lowest agent index: `{}`",
            keys.join(", "),
            best,
            ids[winner]
        ));
    }
    (winner, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::boxed;

    const EXTRACT: &Extractor = &boxed;

    #[test]
    fn vote_counts_breaks_ties_by_index_and_abstains() {
        let ids = ["a1", "a2", "a3", "a4"];
        let check = |texts: &[&str], extractor: Option<&Extractor>, winner: usize, expected: &[&str]| {
            let (w, notes) = majority_vote(&ids[..texts.len()], texts, extractor);
            let notes: Vec<&str> = notes.iter().map(String::as_str).collect();
            assert_eq!((w, notes.as_slice()), (winner, expected), "{texts:?}");
        };
        check(
            &["\\boxed{4}", "\\boxed{5}", "\\boxed{5}"],
            Some(EXTRACT),
            1,
            &["vote: `4` <- a1; `5` <- a2, a3; winner `a2` (2 of 3)"],
        );
        check(
            &["\\boxed{5}", "\\boxed{4}", "\\boxed{4}", "\\boxed{5}"],
            Some(EXTRACT),
            0,
            &[
                "vote: `5` <- a1, a4; `4` <- a2, a3; winner `a1` (2 of 4)",
                "tie between `5`, `4` (2 votes each), broken by the lowest agent index: `a1`",
            ],
        );
        check(
            &["no answer", "\\boxed{7}"],
            Some(EXTRACT),
            1,
            &["vote: `7` <- a2; no answer <- a1; winner `a2` (1 of 2)"],
        );
        check(
            &["none", "nothing"],
            Some(EXTRACT),
            0,
            &["vote: no answer could be extracted; the output of `a1` is used"],
        );
        check(&["x  y", "z", "x y"], None, 0, &["vote: `x y` <- a1, a3; `z` <- a2; winner `a1` (2 of 3)"]);
    }
}
