//! Specialised teams within one benchmark (`ann adapt --specialise-by FIELD`): one network per
//! slice of the training examples (by a metadata field such as MATH's `subject` or `level`), built
//! by team construction with the trained networks as a library; a router in front (one call per
//! input) that picks the slice's network; evaluated on the test split against the single network
//! (the first `--from` run's trained network), with a paired bootstrap.
//!
//! The output folder holds `single.json`, one `<slice>.json` per slice (with its
//! `<slice>.provenance.json`), `router.json` (the field, the slices and their files) and
//! `specialise.json` ([`SpecialiseReport`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ann_eval::stats::{PairedComparison, Summary, bootstrap_ci};
use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use ann_llm::{CallSettings, ResponseFormat};
use anyhow::{Context, bail};
use async_trait::async_trait;
use futures::StreamExt;
use serde::Serialize;

use crate::adapt::{LayerProvenance, LibrarySource, layer_provenance};
use crate::config::ExperimentConfig;
use crate::construct::{ConstructionRecord, Constructor, construct_for};
use crate::report::{paired_present, present};
use crate::run::{Prepared, RunOptions, check_network_with};

/// One slice's specialised network and how it was built.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceReport {
    pub value: String,
    /// The network file, relative to the output folder.
    pub file: String,
    pub train_examples: usize,
    pub fallback_used: bool,
    pub attempts: usize,
    pub layers: Vec<LayerProvenance>,
    /// Test examples the router sent to this slice.
    pub routed: usize,
}

/// What the router did on the test split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterStats {
    /// Test examples routed to a slice network.
    pub routed: usize,
    /// Test examples whose router answer named no slice: the single network answered them.
    pub unrouted: usize,
    /// Of the test examples whose field is known, the fraction routed to their own slice.
    pub accuracy: Option<f64>,
}

/// `specialise.json`: the slices, the router and the comparison with the single network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecialiseReport {
    pub benchmark: String,
    pub field: String,
    pub from: Vec<LibrarySource>,
    pub slices: Vec<SliceReport>,
    /// Training examples without the field (used by no slice).
    pub train_without_field: usize,
    pub router: RouterStats,
    /// Test scores of the single network and of router + specialised networks.
    pub single: Option<Summary>,
    pub specialised: Option<Summary>,
    /// Paired bootstrap of specialised (b) against single (a) on the same test examples.
    pub paired: Option<PairedComparison>,
    /// Per slice (the example's own field value): mean test scores of both.
    pub by_slice: BTreeMap<String, SliceScores>,
}

/// Mean test scores on the examples of one slice (scored by both).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SliceScores {
    pub n: usize,
    pub single: f64,
    pub specialised: f64,
}

/// The value of `field` in an example's metadata, as text.
fn slice_of(example: &Example, field: &str) -> Option<String> {
    example.metadata.get(field).map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A file-name slug of a slice value.
fn slug(value: &str) -> String {
    let s: String =
        value.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect::<String>();
    let s = s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    if s.is_empty() { "slice".into() } else { s }
}

/// The benchmark seen through one slice: its training examples only, and the task description
/// saying which slice the network handles.
struct SliceView {
    inner: Arc<dyn Benchmark>,
    task: String,
    train: Vec<Example>,
}

#[async_trait]
impl Benchmark for SliceView {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn task_description(&self) -> &str {
        &self.task
    }
    fn answer_format(&self) -> &str {
        self.inner.answer_format()
    }
    fn examples(&self, split: Split) -> &[Example] {
        if split == Split::Train { &self.train } else { &[] }
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        self.inner.extract_answer(output)
    }
    fn starting_network(&self) -> &str {
        self.inner.starting_network()
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        self.inner.evaluate(example, output).await
    }
}

/// Which slice a router reply names: `{"specialist": "<value>"}`, or a reply that is just a value
/// (case and surrounding quotes ignored); `None` otherwise.
pub fn parse_specialist(reply: &str, values: &[String]) -> Option<usize> {
    let named = ann_llm::answer::first_json_object(reply)
        .and_then(|o| o.get("specialist").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| reply.to_string());
    let named = named.trim().trim_matches(['"', '\'', '.']).trim().to_lowercase();
    values.iter().position(|v| v.to_lowercase() == named)
}

/// Build, route and compare: see the module docs. `config.benchmark` is the benchmark to slice.
pub async fn specialise_to_dir(
    config: &ExperimentConfig,
    from: &[PathBuf],
    field: &str,
    out_dir: &Path,
    options: &RunOptions,
) -> anyhow::Result<SpecialiseReport> {
    if from.is_empty() {
        bail!("specialisation needs a trained run directory of the benchmark (--from RUN_DIR)");
    }
    let library = crate::library::load_library(from)?;
    let mut config = config.clone();
    config.benchmark.network = None;
    config.baselines.clear();
    let prepared = crate::run::prepare(&config, options).await?;
    let benchmark = prepared.benchmark.clone();
    let single = library[0].network.clone();
    check_network_with(&single, benchmark.as_ref(), &config.validation_rules(benchmark.answer_format()))
        .with_context(|| format!("the single network (the trained network of {})", from[0].display()))?;

    let train = benchmark.examples(Split::Train);
    let mut slices: BTreeMap<String, Vec<Example>> = BTreeMap::new();
    for e in train {
        if let Some(value) = slice_of(e, field) {
            slices.entry(value).or_default().push(e.clone());
        }
    }
    if slices.is_empty() {
        let keys: std::collections::BTreeSet<&String> = train.iter().flat_map(|e| e.metadata.keys()).collect();
        bail!(
            "no training example of {} has the field `{field}` (fields: {})",
            benchmark.name(),
            keys.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ")
        );
    }
    let train_without_field = train.len() - slices.values().map(Vec::len).sum::<usize>();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    single.save(&out_dir.join("single.json")).context("writing single.json")?;

    let constructor = Constructor::of(&config, &prepared);
    let sources: Vec<LibrarySource> = from
        .iter()
        .zip(&library)
        .map(|(dir, l)| LibrarySource { name: l.name.clone(), run_dir: dir.clone(), validation: l.validation })
        .collect();
    let mut networks = Vec::new();
    let mut reports = Vec::new();
    for (value, examples) in &slices {
        options.say(&format!("constructing the network of {field} = {value} ({} training examples)", examples.len()));
        let view = SliceView {
            inner: benchmark.clone(),
            task: crate::prompts::specialised_task(benchmark.task_description(), field, value),
            train: examples.clone(),
        };
        let record: ConstructionRecord =
            construct_for(&view, library.clone(), Some(single.clone()), &constructor).await?;
        let file = format!("{}.json", slug(value));
        let path = out_dir.join(&file);
        record.network.save(&path).with_context(|| format!("writing {}", path.display()))?;
        let layers = layer_provenance(&record.network, &library);
        let provenance = crate::adapt::Provenance {
            target: format!("{} {field}={value}", benchmark.name()),
            from: sources.clone(),
            layers: layers.clone(),
            construction: record.clone(),
        };
        let prov_path = crate::adapt::provenance_path(&path);
        std::fs::write(&prov_path, serde_json::to_string_pretty(&provenance)? + "\n")
            .with_context(|| format!("writing {}", prov_path.display()))?;
        reports.push(SliceReport {
            value: value.clone(),
            file,
            train_examples: examples.len(),
            fallback_used: record.fallback_used,
            attempts: record.attempts,
            layers,
            routed: 0,
        });
        networks.push(record.network);
    }
    let values: Vec<String> = slices.keys().cloned().collect();
    let router = serde_json::json!({
        "field": field,
        "slices": reports.iter().map(|r| serde_json::json!({"value": r.value, "network": r.file})).collect::<Vec<_>>(),
        "fallback": "single.json",
    });
    std::fs::write(out_dir.join("router.json"), serde_json::to_string_pretty(&router)? + "\n")
        .context("writing router.json")?;

    // The test split: route each input, run the chosen network, and the single network on all.
    let test = benchmark.examples(Split::Test).to_vec();
    options.say(&format!("routing {} test examples among {} specialised networks", test.len(), values.len()));
    let examples: Vec<(&str, &str)> =
        slices.iter().map(|(v, e)| (v.as_str(), e.first().map(|e| e.input.as_str()).unwrap_or(""))).collect();
    let routes = route_all(&prepared, &config, field, &examples, &values, &test).await?;
    let mut specialised_scores = vec![None; test.len()];
    for (slice, network) in networks.iter().enumerate().map(|(i, n)| (Some(i), n)).chain([(None, &single)]) {
        let picked: Vec<usize> = (0..test.len()).filter(|&i| routes[i] == slice).collect();
        if picked.is_empty() {
            continue;
        }
        let group: Vec<Example> = picked.iter().map(|&i| test[i].clone()).collect();
        let evaluated = prepared
            .evaluate_streaming(network, &group, None, &ann_graph::RoutingRecord::default(), None)
            .await
            .context("evaluating the specialised networks")?;
        for (&i, score) in picked.iter().zip(evaluated.scores()) {
            specialised_scores[i] = score;
        }
    }
    let single_scores = prepared
        .evaluate_streaming(&single, &test, None, &ann_graph::RoutingRecord::default(), None)
        .await
        .context("evaluating the single network")?
        .scores();

    for (i, r) in reports.iter_mut().enumerate() {
        r.routed = routes.iter().filter(|&&s| s == Some(i)).count();
    }
    let known: Vec<(usize, usize)> = test
        .iter()
        .enumerate()
        .filter_map(|(i, e)| slice_of(e, field).and_then(|v| values.iter().position(|x| *x == v)).map(|s| (i, s)))
        .collect();
    let accuracy = (!known.is_empty())
        .then(|| known.iter().filter(|(i, s)| routes[*i] == Some(*s)).count() as f64 / known.len() as f64);
    let mut by_slice: BTreeMap<String, SliceScores> = BTreeMap::new();
    for (i, e) in test.iter().enumerate() {
        if let (Some(v), Some(a), Some(b)) = (slice_of(e, field), single_scores[i], specialised_scores[i]) {
            let entry = by_slice.entry(v).or_insert(SliceScores { n: 0, single: 0.0, specialised: 0.0 });
            (entry.n, entry.single, entry.specialised) = (entry.n + 1, entry.single + a, entry.specialised + b);
        }
    }
    for entry in by_slice.values_mut() {
        (entry.single, entry.specialised) = (entry.single / entry.n as f64, entry.specialised / entry.n as f64);
    }
    let bootstrap = config.report.bootstrap();
    let report = SpecialiseReport {
        benchmark: benchmark.name().to_string(),
        field: field.to_string(),
        from: sources,
        slices: reports,
        train_without_field,
        router: RouterStats {
            routed: routes.iter().filter(|r| r.is_some()).count(),
            unrouted: routes.iter().filter(|r| r.is_none()).count(),
            accuracy,
        },
        single: bootstrap_ci(&present(&single_scores).0, &bootstrap).ok(),
        specialised: bootstrap_ci(&present(&specialised_scores).0, &bootstrap).ok(),
        paired: paired_present(&single_scores, &specialised_scores, &bootstrap),
        by_slice,
    };
    std::fs::write(out_dir.join("specialise.json"), serde_json::to_string_pretty(&report)? + "\n")
        .context("writing specialise.json")?;
    Ok(report)
}

/// One router call per test input; `None`: the reply named no slice (the single network answers).
/// A budget stop or an infrastructure failure is an error; any other failed call is `None`.
async fn route_all(
    prepared: &Prepared,
    config: &ExperimentConfig,
    field: &str,
    examples: &[(&str, &str)],
    values: &[String],
    test: &[Example],
) -> anyhow::Result<Vec<Option<usize>>> {
    let call = CallSettings {
        model: config.model.name.clone(),
        temperature: 0.0,
        max_tokens: Some(64),
        seed: config.model.seed,
    };
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"specialist": {"type": "string", "enum": values}},
        "required": ["specialist"],
        "additionalProperties": false
    });
    let format = ResponseFormat::JsonSchema { name: "specialist".into(), schema, strict: false };
    let task = prepared.benchmark.task_description();
    let parallel = config.forward.max_parallel_inputs.max(1);
    let results: Vec<anyhow::Result<Option<usize>>> = futures::stream::iter(test)
        .map(|e| {
            let request = call
                .request(crate::prompts::specialist_routing(task, field, examples, &e.input))
                .with_response_format(format.clone())
                .with_tag("phase", "specialise-route");
            let model = prepared.stack.model.clone();
            async move {
                match model.complete(&request).await {
                    Ok(response) => Ok(parse_specialist(&response.text, values)),
                    Err(e) if e.budget_exhausted().is_some() || e.is_infrastructure() => {
                        Err(anyhow::Error::new(e).context("routing a test example"))
                    }
                    Err(_) => Ok(None),
                }
            }
        })
        .buffered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_replies_and_slugs() {
        let values = vec!["Algebra".to_string(), "Number Theory".to_string()];
        assert_eq!(parse_specialist(r#"{"specialist": "Number Theory"}"#, &values), Some(1));
        assert_eq!(parse_specialist("algebra.", &values), Some(0));
        assert_eq!(parse_specialist(r#"{"specialist": "Geometry"}"#, &values), None);
        assert_eq!(parse_specialist("I think it is algebra", &values), None);
        assert_eq!(slug("Number Theory"), "number-theory");
        assert_eq!(slug("5"), "5");
        assert_eq!(slug("!!"), "slice");
    }
}
