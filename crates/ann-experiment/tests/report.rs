//! The run directory's reports: `report.html` (plots, diagrams, word diffs, traces; escaped; checked
//! in headless Chromium), `manifest.json`, `metrics.json` (byte-identical when replayed from the
//! cache), and prompt lineage (`blame`, `diff`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_experiment::report::changes::Field;
use ann_experiment::report::view::RunView;
use ann_experiment::report::{diagram, html, lineage};
use ann_experiment::{BackendSource, ExperimentConfig, RunOptions};
use ann_graph::Network;
use common::{CONFIG, Capitals, FIX, HOSTILE};

fn options(dir: &Path, backend: BackendSource) -> RunOptions {
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend,
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: Some(Capitals::shared()),
        interrupt: None,
    }
}

/// One finished capitals run with the scripted model: its directory.
async fn run(dir: &Path) -> PathBuf {
    let config = ExperimentConfig::from_toml(CONFIG, "capitals.toml").unwrap();
    let outcome =
        ann_experiment::start(&config, &options(dir, BackendSource::Model(common::scripted()))).await.unwrap();
    assert!(outcome.report.steps.accepted >= 1 && outcome.report.steps.rejected >= 1, "{:?}", outcome.report.steps);
    outcome.run_dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_run_writes_a_self_contained_report_html_with_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path()).await;
    let page = read(&run_dir.join("report.html"));
    // Plots (validation per step, scores per method, tokens, calls) and two diagrams.
    for title in
        ["Validation score per step", "Test score per method", "Tokens by phase and model", "Calls and cache hits"]
    {
        assert!(page.contains(title), "plot {title} is missing");
    }
    assert!(page.matches("<svg").count() >= 6, "four plots and two diagrams");
    assert!(page.contains("rejected: no_validation_gain"), "the rejected steps are marked with their reason");
    assert!(page.contains("baseline direct"), "each method has its score");
    // Word diffs of the accepted step, with the gradient that motivated it.
    assert!(page.contains("Write the answer in UPPERCASE letters.</ins>"), "the added words are marked");
    assert!(page.contains("precise") && page.contains("the prompt must ask for uppercase letters"));
    assert!(page.contains("<details id=\"step-"), "rejected steps are folded");
    // The drill-down: each layer's aggregator and reason, outputs, feedback.
    assert!(page.contains("aggregator <code>single</code> (model) — one agent is enough"), "routing reason shown");
    assert!(page.contains("right capital, but the answer must be written in uppercase letters"));
    assert!(page.contains("<h3>test-trained</h3>") && page.contains("q-egypt"), "the test examples' traces too");
    // Hostile model output is text, and nothing is fetched from elsewhere.
    assert!(!page.contains(HOSTILE) && !page.contains("<script") && !page.contains("<img"), "model output is escaped");
    assert!(page.contains(&html::escape(HOSTILE)));
    for external in ["<link", "@import", "url(http", "src=\"http", "<iframe"] {
        assert!(!page.contains(external), "the page refers to {external}");
    }
    let steps = &page[page.find("<h2 id=\"steps\">").unwrap()..page.find("<h2 id=\"examples\">").unwrap()];
    insta::assert_snapshot!("steps_section", steps.replace("</details>", "</details>\n").replace("<p>", "\n<p>"));
    // `ann report` rebuilds the same page from the files.
    let before = page.clone();
    ann_experiment::report::write_html(&run_dir).unwrap();
    let again = read(&run_dir.join("report.html"));
    let at = before.bytes().zip(again.bytes()).position(|(a, b)| a != b);
    assert!(
        at.is_none() && before.len() == again.len(),
        "differs at {at:?}: {:?}",
        at.map(|i| &again[i.saturating_sub(200)..(i + 200).min(again.len())])
    );
}

#[tokio::test]
async fn manifest_and_metrics_are_written_for_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path()).await;
    let manifest: serde_json::Value = serde_json::from_str(&read(&run_dir.join("manifest.json"))).unwrap();
    assert_eq!(manifest["models"][0]["backend"], "scripted:scripted");
    assert!(manifest["host"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(manifest["crates"]["ann-experiment"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["examples_sha256"]["test"].as_str().unwrap().len(), 64);
    assert_eq!(
        manifest["network_initial_sha256"].as_str().unwrap(),
        ann_experiment::report::artifacts::hash_file(&run_dir.join("network-initial.json")).unwrap().sha256
    );
    let metrics: serde_json::Value = serde_json::from_str(&read(&run_dir.join("metrics.json"))).unwrap();
    let methods: Vec<&str> =
        metrics["methods"].as_array().unwrap().iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["initial", "trained", "baseline:direct"]);
    let trained = &metrics["methods"][1];
    assert!(trained["score"]["mean"].as_f64().unwrap() > metrics["methods"][0]["score"]["mean"].as_f64().unwrap());
    assert!(trained["score"]["ci_low"].is_number() && trained["calls"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_run_replayed_from_its_cache_writes_byte_identical_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::server().await;
    let mut config = ExperimentConfig::from_toml(CONFIG, "capitals.toml").unwrap();
    config.model.backend = ann_experiment::Backend::Openai;
    config.model.name = "fake-model".into();
    config.cache.path = dir.path().join("responses.sqlite");
    let openai = ann_experiment::reexports::OpenAiConfig::new(server.url(), "fake-model");
    let source = || BackendSource::Open { local_model: PathBuf::new(), openai: Some(openai.clone()) };
    let first = ann_experiment::start(&config, &options(dir.path(), source())).await.unwrap();
    let sent = server.request_count();
    assert!(sent > 0);
    server.shutdown().await;

    // The same config against the same cache, replay only, the server gone.
    config.cache.mode = ann_llm_cache::CacheMode::ReplayOnly;
    let mut replay_options = options(dir.path(), source());
    replay_options.runs_dir = dir.path().join("replay");
    let second = ann_experiment::start(&config, &replay_options).await.unwrap();
    assert_eq!(second.report.cost.cache_hits, second.report.cost.calls, "every call came from the cache");
    assert_ne!(
        first.report.cost.cache_hits, second.report.cost.cache_hits,
        "which is why metrics.json has no cache hits"
    );
    let (a, b) = (read(&first.run_dir.join("metrics.json")), read(&second.run_dir.join("metrics.json")));
    assert!(a.contains("\"trained\""));
    assert_eq!(a, b, "metrics.json is byte-identical");
}

#[tokio::test]
async fn blame_names_the_step_that_introduced_each_prompt_line() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path()).await;
    let view = RunView::load(&run_dir).unwrap();
    let blame = lineage::blame(&view, Some("answer"), Some("a1")).unwrap();
    assert_eq!(blame.len(), 1);
    let lines = &blame[0].lines;
    assert_eq!(lines[0].text, "Answer the question: {input}");
    assert!(lines[0].origin.is_none(), "the first line is the starting network's");
    assert_eq!(lines[1].text, FIX);
    let origin = lines[1].origin.as_ref().expect("the fix came from a step");
    assert!(origin.gradient.contains("the prompt must ask for uppercase letters"), "{origin:?}");
    assert_eq!((origin.val_before, origin.val_after), (0.0, Some(0.75)));
    insta::assert_snapshot!("blame_answer_a1", lineage::blame_text(&blame));
    assert!(lineage::blame(&view, Some("nope"), None).unwrap_err().to_string().contains("no layer nope"));
}

#[tokio::test]
async fn diff_compares_networks_checkpoints_and_run_directories() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path()).await;
    let changes = lineage::diff(&run_dir.join("network-initial.json"), &run_dir).unwrap();
    let fields: Vec<Field> = changes.iter().map(|c| c.field).collect();
    assert_eq!(fields, [Field::Role, Field::Prompt]);
    insta::assert_snapshot!("diff_initial_trained", lineage::diff_text(&changes));
    let json = serde_json::to_value(&changes).unwrap();
    assert_eq!(json[1]["field"], "prompt");
    assert_eq!(json[1]["layer"], "answer");
    // The checkpoint holds the same trained network.
    assert!(lineage::diff(&run_dir.join("checkpoint.json"), &run_dir.join("network-trained.json")).unwrap().is_empty());
    let err = lineage::diff(&dir.path().join("missing.json"), &run_dir).unwrap_err();
    assert!(format!("{err:#}").contains("missing.json"), "{err:#}");
}

#[test]
fn the_built_in_diagram_draws_layers_agents_and_routing_candidates() {
    let net = Network::from_json(common::NETWORK).unwrap();
    let svg = diagram::builtin_svg(&net);
    assert!(svg.contains("routing: single | concatenate (default single)") && svg.contains("aggregator: single"));
    insta::assert_snapshot!("builtin_diagram", svg);
    let dot = diagram::to_dot(&net);
    assert!(dot.contains("subgraph cluster_1") && dot.contains("n1_0 -> agg1"));
}

/// Graphviz, installed by CI (`.ci/run`), lays the network out.
#[test]
fn graphviz_draws_the_network_when_installed() {
    let net = Network::from_json(common::NETWORK).unwrap();
    let (svg, layout) = diagram::render(&net);
    assert_eq!(layout, diagram::Layout::Graphviz, "Graphviz `dot` is not installed (Debian package graphviz)");
    assert!(svg.starts_with("<svg") && svg.contains("routing: single | concatenate"), "{svg}");
}

/// A real browser (Debian's `chromium`, installed by CI) opens the report offline: the page loads,
/// no script runs (the hostile one stays text), the plots and diagrams are in the DOM, and the
/// screenshot is not blank.
#[tokio::test]
async fn chromium_renders_the_report_with_its_plots_and_diagrams() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path()).await;
    let page = run_dir.join("report.html");
    let profile = dir.path().join("chromium-profile");
    let chromium = |page: &Path, args: &[&str]| {
        std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr", "--v=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs (Debian package chromium; .ci/run installs it)")
    };
    // The check sees a console message: a page with a failing script shows up.
    let bad = dir.path().join("bad.html");
    std::fs::write(&bad, "<html><body><script>undefinedThing.call()</script></body></html>").unwrap();
    let out = chromium(&bad, &["--dump-dom", "--virtual-time-budget=2000"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(":CONSOLE"), "console messages are logged");

    let dom = chromium(&page, &["--dump-dom", "--virtual-time-budget=2000"]);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        text.contains("<title>Run capitals: capitals</title>"),
        "no script changed the page: {}",
        &text[..200.min(text.len())]
    );
    assert!(text.matches("<svg").count() >= 6, "plots and diagrams are in the DOM");
    let log = String::from_utf8_lossy(&dom.stderr);
    let console: Vec<&str> =
        log.lines().filter(|l| l.contains(":CONSOLE") || l.contains("ERR_FILE_NOT_FOUND")).collect();
    assert!(console.is_empty(), "the page logged to the console: {console:?}");
    let shot = dir.path().join("report.png");
    let out =
        chromium(&page, &[&format!("--screenshot={}", shot.display()), "--window-size=1280,2400", "--hide-scrollbars"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    assert!(png.len() > 30_000, "a blank page compresses to a few kilobytes: {} bytes", png.len());
    if let Some(keep) = std::env::var_os("ANN_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, &keep).unwrap();
        std::fs::copy(&page, PathBuf::from(keep).with_extension("html")).unwrap();
    }
}

/// A network whose texts are markup: every diagram shows them as text.
#[test]
fn diagrams_escape_hostile_network_text() {
    let mut net = Network::from_json(common::NETWORK).unwrap();
    net.layers[0].subtask = "<script>alert(1)</script> & more".into();
    net.layers[0].agents[0].role = "\"quoted\" <b>bold</b> \\ back".into();
    net.layers[0].agents[0].prompt = "{input} <img src=x onerror=alert(2)>".into();
    for svg in [diagram::builtin_svg(&net), diagram::render(&net).0] {
        assert!(!svg.contains("<script") && !svg.contains("<b>") && !svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") || svg.contains("&lt;script&gt"), "{svg}");
    }
}

/// `ann report` on a run that has not finished (no `report.json`): the training part and the
/// diagrams, without scores.
#[tokio::test]
async fn an_unfinished_run_still_gets_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path()).await;
    for file in ["report.json", "network-trained.json"] {
        std::fs::remove_file(run_dir.join(file)).unwrap();
    }
    let view = RunView::load(&run_dir).unwrap();
    let page = html::render(&view, &diagram::builtin_svg);
    assert!(page.contains("(unfinished)") && page.contains("Validation score per step"));
    assert!(page.contains("not written yet") && !page.contains("Test score per method"));
    assert!(page.contains("<section class=\"step\" id=\"step-1\">"), "the accepted step is shown");
}

/// `report.md` says what each step did and why, and has one cost table whose named rows add up.
#[tokio::test]
async fn report_md_explains_each_step_and_names_each_cost_row() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path()).await;
    let md = read(&run_dir.join("report.md"));
    // Each step: the gate's decision with its reason in words, the gradient, the patch, the change.
    assert!(md.contains("## Training steps") && md.contains("The starting network scored"), "{md}");
    assert!(md.contains("**accepted**: validation"), "{md}");
    assert!(
        md.contains("**rejected** (`no_validation_gain`): the candidate network's validation score did not beat"),
        "a rejected step says why: {md}"
    );
    assert!(md.contains("- global gradient: ") && md.contains("- patch for `answer`: "), "{md}");
    assert!(md.contains(&format!("{FIX}+}}")), "the accepted change as a word diff: {md}");
    assert!(md.lines().any(|l| l.starts_with("- change: ") && l.contains("geographer")), "the role change: {md}");

    // One cost table; its part rows add up to its total row, and training's parts to training.
    let report: ann_experiment::Report = serde_json::from_str(&read(&run_dir.join("report.json"))).unwrap();
    let c = &report.costs;
    let parts = &c.training_parts;
    assert!(parts.initial_validation.calls > 0 && parts.optimizer.calls > 0 && parts.gate.calls > 0, "{c:?}");
    let forwards = parts.forwards(&c.training);
    assert!(forwards.calls > 0);
    assert_eq!(
        parts.initial_validation.calls + forwards.calls + parts.optimizer.calls + parts.gate.calls,
        c.training.calls
    );
    // The optimiser's part is exactly the backward-phase calls the meter saw in this one process.
    assert_eq!(parts.optimizer.calls, report.cost_by_tag["phase=backward"].calls);
    assert!(c.validation.calls > 0, "the report's validation forwards are counted too");
    let table = &md[md.find("## Cost").expect("one cost table")..];
    assert_eq!(md.matches("## Cost").count(), 1, "{md}");
    for row in [
        "| training: starting network on the validation split |",
        "| training: forward passes of the training batches |",
        "| training: optimiser (losses, gradients, patches) |",
        "| training: validation gate (candidate networks) |",
        "| report: starting and trained network on the validation split |",
        "| test: starting network |",
        "| test: trained network |",
        "| baseline direct |",
        "| metered in this process |",
        "| budget: paid backend requests |",
    ] {
        assert!(table.contains(row), "{row} missing from {table}");
    }
    let total = c.training.calls
        + c.validation.calls
        + c.test_initial.calls
        + c.test_trained.calls
        + report.baselines.iter().map(|b| b.cost.calls).sum::<u64>();
    assert!(table.contains(&format!("| total of the rows above | {total} |")), "{table}");

    // report.html holds the same table: the same named rows, the same total.
    let page = read(&run_dir.join("report.html"));
    let at = page.find("<h3>What each part of the run cost</h3>").expect("the cost table in report.html");
    let html_table = &page[at..at + page[at..].find("</table>").unwrap()];
    for row in [
        "training: starting network on the validation split",
        "training: optimiser (losses, gradients, patches)",
        "training: validation gate (candidate networks)",
        "test: trained network",
        "baseline direct",
        "budget: paid backend requests",
    ] {
        assert!(html_table.contains(&format!("<tr><td>{row}</td>")), "{row} missing from {html_table}");
    }
    assert!(html_table.contains(&format!("<tr><td>total of the rows above</td><td>{total}</td>")), "{html_table}");
}
