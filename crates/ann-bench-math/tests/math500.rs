//! The normaliser on the real MATH-500 file (fetched by `cargo xtask fetch-data`).

use ann_bench_math::{
    Answer, MathBenchmark, MathConfig, extract, is_equiv, load_math_train, load_math500, normalize_answer,
};
use ann_eval::data::workspace_data_dir;

fn math500() -> Vec<ann_bench_math::MathProblem> {
    load_math500(&workspace_data_dir().join("math500.jsonl")).expect("MATH-500: run `cargo xtask fetch-data`")
}

/// The boxed answer of each gold solution, normalised, equals the normalised `answer` field.
#[test]
fn gold_solutions_match_their_answers() {
    let rows = math500();
    assert_eq!(rows.len(), 500);
    let mut misses = Vec::new();
    for row in &rows {
        let extracted = extract(&row.solution).map(|e| e.answer).unwrap_or_default();
        let got = normalize_answer(&extracted);
        let expected = normalize_answer(&row.answer);
        if got.key() != expected.key() || !got.equivalent(&expected) {
            misses.push(format!(
                "{}: extracted {extracted:?} -> {:?}, answer {:?} -> {:?}",
                row.id,
                got.key(),
                row.answer,
                expected.key()
            ));
        }
    }
    for m in &misses {
        println!("miss: {m}");
    }
    assert!(rows.len() - misses.len() >= 495, "{} misses:\n{}", misses.len(), misses.join("\n"));
}

/// A rewriting of an answer.
type Respell = fn(&str) -> String;

/// Meaning-preserving re-spellings of each gold answer stay equivalent to it.
#[test]
fn respelled_gold_answers_stay_equivalent() {
    let rows = math500();
    let respell: [(&str, Respell); 5] = [
        ("dollars", |a| format!("${a}$")),
        ("dfrac", |a| a.replace("\\frac", "\\dfrac")),
        ("spaces after list commas", spaced_list_commas),
        ("full stop", |a| format!("{a}.")),
        ("display math", |a| format!("\\[ {a} \\]")),
    ];
    let mut failures = Vec::new();
    for row in &rows {
        for (name, f) in &respell {
            let variant = f(&row.answer);
            if !is_equiv(&row.answer, &variant) {
                failures.push(format!("{name}: {:?} vs {variant:?}", row.answer));
            }
        }
    }
    for f in &failures {
        println!("failure: {f}");
    }
    let total = rows.len() * respell.len();
    assert!(failures.is_empty(), "{} of {total} re-spellings rejected", failures.len());
}

/// `1,-2` -> `1, -2`, leaving thousands separators (`10,\\!080`, `58,500`) alone.
fn spaced_list_commas(a: &str) -> String {
    let chars: Vec<char> = a.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        out.push(*c);
        let digit_before = i > 0 && chars[i - 1].is_ascii_digit();
        let thousands_after = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit() || *n == '\\');
        if *c == ',' && !(digit_before && thousands_after) {
            out.push(' ');
        }
    }
    out
}

/// Changing the first digit of a gold answer makes it wrong: the equivalence is not lax.
#[test]
fn perturbed_gold_answers_are_rejected() {
    let rows = math500();
    let mut accepted = Vec::new();
    let mut tried = 0;
    for row in &rows {
        let Some(pos) = row.answer.find(|c: char| c.is_ascii_digit()) else { continue };
        let digit = row.answer[pos..].chars().next().and_then(|c| c.to_digit(10)).unwrap_or(0);
        let mut variant = row.answer.clone();
        variant.replace_range(pos..pos + 1, &((digit + 1) % 10).to_string());
        tried += 1;
        if is_equiv(&row.answer, &variant) {
            accepted.push(format!("{:?} vs {variant:?}", row.answer));
        }
    }
    for a in &accepted {
        println!("accepted: {a}");
    }
    assert!(tried > 450, "only {tried} answers have a digit");
    assert!(accepted.is_empty(), "{} perturbed answers accepted:\n{}", accepted.len(), accepted.join("\n"));
}

/// Almost every gold answer is understood as a structure, not compared as a bare string.
#[test]
fn gold_answers_parse_into_structures() {
    let rows = math500();
    let unparsed: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(normalize_answer(&r.answer).answer, Answer::Text(_)))
        .map(|r| r.answer.as_str())
        .collect();
    println!("compared as text: {unparsed:?}");
    // Word answers (`\text{east}`) are text by design; a few more would mean the parser regressed.
    assert!(unparsed.len() <= 10, "{} answers left as text: {unparsed:?}", unparsed.len());
}

/// The default splits on the real files.
#[test]
fn default_splits_on_real_data() {
    let dir = workspace_data_dir();
    let train = load_math_train(&dir.join("math-train.jsonl")).expect("MATH train: run `cargo xtask fetch-data`");
    assert_eq!(train.len(), 7498, "7,500 rows, two with an empty \\boxed{{}}");
    let bench = MathBenchmark::load(&dir, &MathConfig::default()).unwrap();
    use ann_eval::{Benchmark, Split};
    assert_eq!(bench.examples(Split::Train).len(), 100);
    assert_eq!(bench.examples(Split::Validation).len(), 50);
    assert_eq!(bench.examples(Split::Test).len(), 500);
    let train_ids: std::collections::BTreeSet<&str> =
        bench.examples(Split::Train).iter().map(|e| e.id.as_str()).collect();
    assert!(bench.examples(Split::Validation).iter().all(|e| !train_ids.contains(e.id.as_str())));
    assert!(bench.examples(Split::Test).iter().all(|e| e.id.starts_with("math500/")));
}
