//! `report.html`: one self-contained page (inline CSS and SVG, no script, font or image fetched)
//! rendered from a run directory's files by pure functions. Every text from a file is escaped:
//! model output is hostile.

use std::fmt::Write as _;

use ann_graph::{CallKind, Network, Trace};
use ann_textgrad::{ComponentStatus, Decision, StepRecord};

use super::changes::{Change, StepView, replay, word_diff_html};
use super::plots::{Bar, StepPoint, bar_chart, validation_plot};
use super::view::{ExampleTrace, RunView};
use super::{Report, cost_rows};

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;\
color:#222;line-height:1.45}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;\
vertical-align:top}th{background:#f3f5f9}pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;\
padding:.5em;border-radius:4px;margin:.3em 0}del{background:#fdd;text-decoration:line-through}ins{background:#dfd;\
text-decoration:none}.accepted{color:#2a7d2a;font-weight:bold}.rejected{color:#b52a2a;font-weight:bold}\
details{border:1px solid #ddd;border-radius:4px;padding:.3em .7em;margin:.5em 0}summary{cursor:pointer}\
.plots svg,.diagrams svg{max-width:100%;height:auto}.diagrams{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}\
.diagrams figure{margin:0;flex:1 1 420px;overflow-x:auto}.step{border-left:4px solid #2a7d2a;padding-left:.8em;margin:1em 0}\
.muted{color:#666}.error{color:#b52a2a}";

/// Examples shown per training batch or evaluation (the rest stay in `traces/`), so the page of a
/// large run stays small enough to open.
const MAX_EXAMPLES: usize = 25;

/// The whole page for `view`; `draw` turns a network into an SVG diagram.
pub fn render(view: &RunView, draw: &dyn Fn(&Network) -> String) -> String {
    let mut h = String::new();
    let title = match &view.report {
        Some(r) => format!("Run {}: {}", r.name, r.benchmark),
        None => format!("Run {} (unfinished)", view.name),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head><body>\n\
         <h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    if let Some(r) = &view.report {
        summary(&mut h, r);
    }
    let steps: Vec<StepView> = match &view.initial {
        Some(initial) => replay(initial, view.steps()),
        None => vec![],
    };
    h.push_str("<h2 id=\"training\">Training</h2>\n<div class=\"plots\">");
    let points: Vec<StepPoint> = view.steps().map(step_point).collect();
    h.push_str(&validation_plot(view.val_initial().unwrap_or(0.0), &points));
    h.push_str("</div>\n");
    step_table(&mut h, view);
    if let Some(r) = &view.report {
        scores(&mut h, r);
        costs(&mut h, r);
    }
    h.push_str("<h2 id=\"network\">The network before and after training</h2>\n<div class=\"diagrams\">");
    for (caption, net) in [("before training", &view.initial), ("after training", &view.trained)] {
        match net {
            Some(net) => {
                let _ = write!(h, "<figure><figcaption><b>{caption}</b></figcaption>{}</figure>", draw(net));
            }
            None => {
                let _ = write!(
                    h,
                    "<figure><figcaption><b>{caption}</b></figcaption><p class=\"muted\">not written yet</p></figure>"
                );
            }
        }
    }
    h.push_str("</div>\n<h2 id=\"steps\">Steps: gradients and changes</h2>\n");
    if steps.is_empty() {
        h.push_str("<p class=\"muted\">No backward step was taken.</p>\n");
    }
    for step in &steps {
        step_section(&mut h, step);
    }
    h.push_str("<h2 id=\"examples\">Examples (training batches, then the final evaluations, from the traces)</h2>\n");
    if view.examples.is_empty() {
        h.push_str("<p class=\"muted\">No trace was written.</p>\n");
    }
    for group in view.examples.chunk_by(|a, b| a.batch == b.batch) {
        let _ = writeln!(h, "<h3>{}</h3>", escape(&group[0].batch));
        for example in group.iter().take(MAX_EXAMPLES) {
            example_section(&mut h, example);
        }
        if group.len() > MAX_EXAMPLES {
            let _ = writeln!(
                h,
                "<p class=\"muted\">{} more examples: see traces/ in the run directory.</p>",
                group.len() - MAX_EXAMPLES
            );
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn step_point(s: &StepRecord) -> StepPoint {
    StepPoint {
        step: s.step,
        before: s.val_before,
        candidate: s.val_candidate,
        outcome: s.decision.word().into_owned(),
    }
}

fn summary(h: &mut String, r: &Report) {
    let examples: Vec<String> = r.examples.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let stop =
        serde_json::to_value(&r.stop).ok().and_then(|v| v["stop"].as_str().map(String::from)).unwrap_or_default();
    let _ = writeln!(
        h,
        "<ul><li>backend <code>{}</code>, model <code>{}</code></li><li>started {}, finished {}</li>\
         <li>examples: {}</li><li>{} steps: {} accepted, {} rejected, {} skipped (perfect batches); stopped: {}; \
         network changed: {}</li></ul>",
        escape(&r.backend),
        escape(&r.model),
        escape(&r.started_at),
        escape(&r.finished_at),
        escape(&examples.join(", ")),
        r.steps.steps,
        r.steps.accepted,
        r.steps.rejected,
        r.steps.skipped,
        escape(&stop),
        if r.network_changed { "yes" } else { "no" }
    );
}

fn decision_html(d: &Decision) -> String {
    match d {
        Decision::Accepted => "<span class=\"accepted\">accepted</span>".into(),
        Decision::Rejected { reason } => {
            format!("<span class=\"rejected\">rejected: {}</span>", escape(&reason.as_str()))
        }
    }
}

fn score(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

fn step_table(h: &mut String, view: &RunView) {
    h.push_str("<table><tr><th>step</th><th>epoch / batch</th><th>validation before</th><th>candidate</th><th>pre-check (current, candidate)</th><th>decision</th></tr>\n");
    for s in view.steps() {
        let pre = s.pre_check.map(|(a, b)| format!("{a:.3}, {b:.3}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#step-{}\">{}</a></td><td>{} / {}</td><td>{:.3}</td><td>{}</td><td>{pre}</td><td>{}</td></tr>",
            s.step,
            s.step,
            s.epoch,
            s.batch,
            s.val_before,
            score(s.val_candidate),
            decision_html(&s.decision)
        );
    }
    h.push_str("</table>\n");
}

fn interval(s: &Option<ann_eval::stats::Summary>) -> (f64, Option<(f64, f64)>, String) {
    match s {
        Some(s) => (
            s.mean,
            Some((s.ci_low, s.ci_high)),
            format!("{:.3} [{:.3}, {:.3}] (n={})", s.mean, s.ci_low, s.ci_high, s.n),
        ),
        None => (0.0, None, "n/a (no examples)".into()),
    }
}

fn scores(h: &mut String, r: &Report) {
    let mut methods =
        vec![("initial network".to_string(), &r.test.initial), ("trained network".to_string(), &r.test.trained)];
    methods.extend(r.baselines.iter().map(|b| (format!("baseline {}", b.baseline), &b.test)));
    let level =
        r.test.initial.as_ref().map(|s| format!("{:.0}%", 100.0 * s.confidence)).unwrap_or_else(|| "95%".into());
    let bars: Vec<Bar> = methods
        .iter()
        .map(|(label, s)| {
            let (value, interval, _) = interval(s);
            Bar { label: label.clone(), value, inner: None, interval }
        })
        .collect();
    let _ = write!(
        h,
        "<h2 id=\"scores\">Score per method (test split, {level} bootstrap intervals)</h2>\n<div class=\"plots\">"
    );
    h.push_str(&bar_chart("Test score per method", "score", &bars, Some(1.1), None));
    h.push_str("</div>\n<table><tr><th>method</th><th>test score</th></tr>\n");
    for (label, s) in &methods {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(label), interval(s).2);
    }
    h.push_str("</table>\n");
}

fn costs(h: &mut String, r: &Report) {
    let rows = cost_rows(r);
    h.push_str("<h2 id=\"cost\">Cost, tokens and cache hits</h2>\n<div class=\"plots\">");
    let tokens: Vec<Bar> = rows
        .iter()
        .map(|row| Bar {
            label: row.label.clone(),
            value: row.totals.prompt_tokens as f64
                + row.totals.completion_tokens as f64
                + row.totals.saved_tokens as f64,
            inner: Some(row.totals.saved_tokens as f64),
            interval: None,
        })
        .collect();
    h.push_str(&bar_chart("Tokens by phase and model", "tokens", &tokens, None, Some("served by the response cache")));
    let calls: Vec<Bar> = rows
        .iter()
        .map(|row| Bar {
            label: row.label.clone(),
            value: row.totals.calls as f64,
            inner: Some(row.totals.cache_hits as f64),
            interval: None,
        })
        .collect();
    h.push_str(&bar_chart("Calls and cache hits by phase and model", "calls", &calls, None, Some("cache hits")));
    h.push_str("</div>\n<p class=\"muted\">Metered in the process that finished the run: every call, cache hits included \
                (a cache hit costs no token and no dollar).</p>\n<table><tr><th>phase / model</th><th>calls</th><th>cache hits</th>\
                <th>errors</th><th>prompt tokens</th><th>completion tokens</th><th>tokens saved by the cache</th><th>dollars</th></tr>\n");
    for row in &rows {
        let t = &row.totals;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>${:.4}</td></tr>",
            escape(&row.label),
            t.calls,
            t.cache_hits,
            t.errors,
            t.prompt_tokens,
            t.completion_tokens,
            t.saved_tokens,
            t.dollars
        );
    }
    h.push_str(
        "</table>\n<h3>What each part of the run cost</h3>\n<table><tr><th>part of the run</th><th>calls</th>\
                <th>tokens</th><th>dollars</th><th>how counted</th></tr>\n",
    );
    for line in super::costs::part_lines(r).iter().chain(&super::costs::other_lines(r)) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>${:.4}</td><td class=\"muted\">{}</td></tr>",
            escape(&line.label),
            line.calls,
            line.tokens,
            line.dollars,
            escape(&line.note)
        );
    }
    h.push_str("</table>\n");
}

fn change_html(h: &mut String, change: &Change) {
    let place = escape(&change.place());
    match (&change.before, &change.after) {
        (Some(a), Some(b)) => {
            let _ = write!(h, "<p><b>{place}</b></p><pre>{}</pre>", word_diff_html(a, b));
        }
        (None, Some(b)) => {
            let _ = write!(h, "<p><b>{place}</b> added</p><pre><ins>{}</ins></pre>", escape(b));
        }
        (Some(a), None) => {
            let _ = write!(h, "<p><b>{place}</b> removed</p><pre><del>{}</del></pre>", escape(a));
        }
        (None, None) => {}
    }
}

/// Lines of a gradient shown before the rest is folded away.
const FOLD_AFTER_LINES: usize = 8;
/// Characters of a gradient shown before the rest is folded away (a small model may repeat one
/// sentence for pages).
const FOLD_AFTER_CHARS: usize = 800;

/// `text` in a `<pre>`; past [`FOLD_AFTER_LINES`] lines or [`FOLD_AFTER_CHARS`] characters the rest
/// goes into a closed `<details>` that says how much it holds.
fn folded_pre(h: &mut String, text: &str) {
    let by_lines = text.match_indices('\n').nth(FOLD_AFTER_LINES - 1).map_or(text.len(), |(i, _)| i + 1);
    let by_chars = match text.char_indices().nth(FOLD_AFTER_CHARS) {
        // Cut after the last space before the limit, or at the limit in a text without one.
        Some((limit, _)) => text[..limit].rfind(' ').map_or(limit, |i| i + 1),
        None => text.len(),
    };
    let cut = by_lines.min(by_chars);
    let (shown, rest) = text.split_at(cut);
    let _ = write!(h, "<pre>{}</pre>", escape(shown.trim_end()));
    if !rest.trim().is_empty() {
        let _ = write!(
            h,
            "<details><summary>the rest ({} more lines, {} characters)</summary><pre>{}</pre></details>",
            rest.lines().count(),
            rest.chars().count(),
            escape(rest)
        );
    }
}

fn step_body(h: &mut String, step: &StepView) {
    let s = step.record;
    let g = &s.global;
    h.push_str("<p><b>Global gradient</b> (diagnosis):</p>");
    folded_pre(h, &g.diagnosis);
    let blamed: Vec<String> = g
        .layers
        .iter()
        .filter(|l| l.blame > 0.0)
        .map(|l| {
            let said: Vec<String> = [("issue", &l.issue), ("direction", &l.direction)]
                .iter()
                .filter(|(_, t)| !t.trim().is_empty())
                .map(|(k, t)| format!("{k}: {}", escape(t)))
                .collect();
            format!("<li>{} (blame {:.2}) {}</li>", escape(&l.layer), l.blame, said.join("; "))
        })
        .collect();
    if !blamed.is_empty() {
        let _ = write!(h, "<ul>{}</ul>", blamed.join(""));
    }
    for c in &s.components {
        let status = match &c.status {
            ComponentStatus::Merged => "merged into the candidate".to_string(),
            ComponentStatus::Rejected(reason) => {
                format!("<span class=\"rejected\">rejected: {}</span>", escape(&reason.as_str()))
            }
        };
        let ops: Vec<String> = c.ops.iter().map(|o| escape(&o.summary())).collect();
        let _ = write!(
            h,
            "<p><b>{}</b>: {status}; ops: {}",
            escape(&c.scope.to_string()),
            if ops.is_empty() { "none".into() } else { ops.join(", ") }
        );
        if !c.detail.is_empty() {
            let _ = write!(h, " <span class=\"muted\">({})</span>", escape(&c.detail));
        }
        h.push_str("</p>");
        if let Some(text) = &c.text {
            h.push_str("<p class=\"muted\">local gradient:</p>");
            folded_pre(h, &text.gradient);
        }
    }
    match &step.candidate {
        None => h.push_str("<p class=\"muted\">Nothing was merged.</p>"),
        Some(Err(e)) => {
            let _ = write!(h, "<p class=\"error\">The journal's patch does not apply here: {}</p>", escape(e));
        }
        Some(Ok(_)) => {
            let changes = step.changes();
            h.push_str("<p><b>Changes</b> (removed words struck out, added words highlighted):</p>");
            for change in &changes {
                change_html(h, change);
            }
        }
    }
}

fn step_section(h: &mut String, step: &StepView) {
    let s = step.record;
    let head = format!(
        "Step {} (epoch {}, batch {}): {} — validation {:.3}, candidate {}",
        s.step,
        s.epoch,
        s.batch,
        decision_html(&s.decision),
        s.val_before,
        score(s.val_candidate)
    );
    if s.decision.is_accepted() {
        let _ = write!(h, "<section class=\"step\" id=\"step-{}\"><h3>{head}</h3>", s.step);
        step_body(h, step);
        h.push_str("</section>\n");
    } else {
        let _ = write!(h, "<details id=\"step-{}\"><summary>{head}</summary>", s.step);
        step_body(h, step);
        h.push_str("</details>\n");
    }
}

fn trace_html(h: &mut String, trace: &Trace) {
    let _ = write!(h, "<p><b>Input</b></p><pre>{}</pre>", escape(&trace.input));
    for layer in &trace.layers {
        let r = &layer.routing;
        let _ = write!(
            h,
            "<p><b>Layer {}</b>: aggregator <code>{}</code> ({}) — {}</p>",
            escape(&layer.layer),
            escape(&r.aggregator.to_string()),
            escape(&serde_json::to_value(r.source).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()),
            escape(&r.reason)
        );
        if let Some(why) = &r.fallback {
            let _ = write!(h, "<p class=\"muted\">routing fell back: {}</p>", escape(why));
        }
        for call in layer.calls.iter().filter(|c| c.kind != CallKind::Routing) {
            let who = call.agent.as_deref().unwrap_or("(aggregator)");
            let kind = format!("{:?}", call.kind).to_lowercase();
            let text = call.output.as_deref().or(call.error.as_deref()).unwrap_or("");
            let hit = if call.cache_hit { ", from the cache" } else { "" };
            let _ = write!(
                h,
                "<p class=\"muted\">{} ({kind}, round {}{hit}):</p><pre>{}</pre>",
                escape(who),
                call.round,
                escape(text)
            );
        }
        for note in &layer.notes {
            let _ = write!(h, "<p class=\"muted\">note: {}</p>", escape(note));
        }
        if let Some(e) = &layer.error {
            let _ = write!(h, "<p class=\"error\">{}</p>", escape(e));
        }
        let _ = write!(h, "<p>layer output:</p><pre>{}</pre>", escape(&layer.output));
    }
    let _ = write!(h, "<p><b>Final answer</b></p><pre>{}</pre>", escape(&trace.output));
}

fn example_section(h: &mut String, e: &ExampleTrace) {
    let verdict = if e.excluded {
        "excluded".to_string()
    } else {
        format!("score {:.2}{}", e.score, if e.passed { ", passed" } else { "" })
    };
    let _ = write!(h, "<details><summary>{} · {} · {}</summary>", escape(&e.batch), escape(&e.id), escape(&verdict));
    let _ = write!(h, "<p><b>Feedback</b></p><pre>{}</pre>", escape(&e.feedback));
    match &e.trace {
        Some(trace) => trace_html(h, trace),
        None => h.push_str("<p class=\"muted\">No forward trace.</p>"),
    }
    h.push_str("</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_gradient_is_shown_whole() {
        let mut h = String::new();
        folded_pre(&mut h, "The answer must be Yes.\nIt was No.");
        assert_eq!(h, "<pre>The answer must be Yes.\nIt was No.</pre>");
    }

    #[test]
    fn a_long_gradient_shows_its_first_lines_and_folds_the_rest() {
        let text: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let mut h = String::new();
        folded_pre(&mut h, &text);
        assert!(h.starts_with("<pre>line 1\n"), "{h}");
        assert!(h.contains("line 8</pre><details><summary>the rest (12 more lines, "), "{h}");
        assert!(h.ends_with("line 20\n</pre></details>"), "{h}");
    }

    #[test]
    fn one_endless_line_is_cut_at_a_space_before_the_limit() {
        let text = "The answer must be Yes. ".repeat(100);
        let mut h = String::new();
        folded_pre(&mut h, &text);
        let shown = h.strip_prefix("<pre>").unwrap().split("</pre>").next().unwrap();
        assert!(shown.len() < FOLD_AFTER_CHARS && shown.len() > FOLD_AFTER_CHARS - 12, "{shown}");
        assert!(text.starts_with(shown) && text[shown.len()..].starts_with(' '), "{shown}");
        assert!(h.contains("<details><summary>the rest (1 more lines, "), "{h}");
    }
}
