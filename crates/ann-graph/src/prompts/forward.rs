//! The prompts of the forward phase: agent calls, the peer blocks of multi-round aggregators, the
//! synthesiser, the judge, the critic and the routing call.

use std::borrow::Cow;
use std::fmt::Write;

use ann_llm::Message;

use crate::{Agent, AggregatorName, Layer};

/// One agent's answer as other prompts show it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub agent: &'a str,
    pub role: &'a str,
    pub text: &'a str,
}

/// A candidate aggregator and its running score, as routing statistics show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutingStat {
    pub aggregator: AggregatorName,
    pub mean_score: f64,
    pub uses: u64,
}

/// The task `I` every call sees: the task description with the example's input rendered in.
pub fn render_task(task_description: &str, input: &str) -> String {
    format!("{}\n\nInput:\n{}", task_description.trim_end(), input)
}

/// At most `max` characters of `s`, with a marker when cut.
pub fn truncate_chars(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((cut, _)) => Cow::Owned(format!("{}\n[... truncated]", &s[..cut])),
    }
}

/// Substitute `{task}`, `{input}` and `{peer_outputs}` in one pass (inserted text is never rescanned).
/// The task stays visible: when the template lacks `{task}` it is put first; peer outputs the
/// template has no place for are appended.
pub fn render_agent_prompt(template: &str, task: &str, input: &str, peer_outputs: Option<&str>) -> String {
    let mut out = String::with_capacity(template.len() + task.len() + input.len() + 64);
    let has_task = template.contains("{task}");
    let has_peers = template.contains("{peer_outputs}");
    if !has_task {
        out.push_str("Task:\n");
        out.push_str(task);
        out.push_str("\n\n");
    }
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (value, len) = if tail.starts_with("{task}") {
            (task, 6)
        } else if tail.starts_with("{input}") {
            (input, 7)
        } else if tail.starts_with("{peer_outputs}") {
            (peer_outputs.unwrap_or(""), 14)
        } else {
            ("{", 1)
        };
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    if let (false, Some(peers)) = (has_peers, peer_outputs) {
        out.push_str("\n\n");
        out.push_str(peers);
    }
    out
}

/// The system message of an agent: persona, team subtask and output spec.
pub fn agent_system(layer: &Layer, agent: &Agent) -> String {
    format!(
        "{}\nYou are agent `{}` of the team `{}`. The team's subtask: {}\nWhat your output must be: {}",
        agent.role.trim_end(),
        agent.id,
        layer.id,
        layer.subtask.trim_end(),
        layer.output_spec.trim_end()
    )
}

/// An agent's call: its system message and its rendered prompt.
pub fn agent_messages(layer: &Layer, agent: &Agent, task: &str, input: &str, peers: Option<&str>) -> Vec<Message> {
    vec![
        Message::system(agent_system(layer, agent)),
        Message::user(render_agent_prompt(&agent.prompt, task, input, peers)),
    ]
}

fn answers_block(answers: &[Answer<'_>], numbered: bool) -> String {
    let mut s = String::new();
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            s.push_str("\n\n");
        }
        if numbered {
            let _ = write!(s, "[{}] ", i + 1);
        }
        let _ = write!(s, "Agent `{}` ({}):\n{}", a.agent, a.role.trim_end(), a.text.trim_end());
    }
    s
}

/// The `{peer_outputs}` of a debate round: the other agents' latest answers.
pub fn debate_peers(others: &[Answer<'_>]) -> String {
    format!(
        "Answers of the other agents in the previous round:\n\n{}\n\nWeigh their reasoning against yours, then give your updated full answer.",
        answers_block(others, false)
    )
}

/// The `{peer_outputs}` of a refinement step: the previous agent's draft.
pub fn refine_peers(previous: &Answer<'_>) -> String {
    format!(
        "Draft from the previous agent `{}` ({}):\n{}\n\nImprove this draft: fix its errors and fill its gaps, then give the full improved answer.",
        previous.agent,
        previous.role.trim_end(),
        previous.text.trim_end()
    )
}

/// The `{peer_outputs}` of `tool_pipeline`'s planner: what to write so the program can be run.
pub fn pipeline_plan_peers() -> &'static str {
    "Plan how to solve this with a Python program: write the plan in a few lines, then one complete \
     Python 3 program in a ```python block that prints what the answer needs. The program will be run \
     in a sandbox (no network; the example's files, if any, are in its working directory) and its \
     output shown to the agent who gives the final answer."
}

/// What `tool_pipeline`'s answering agent is told about the run of the plan's program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineRun<'a> {
    /// The `python` tool's result (an error result, e.g. a traceback, is shown as it is).
    Ran { result: &'a str, is_error: bool },
    /// The plan held no program.
    NoProgram,
    /// No `python` tool was registered.
    NoTool,
}

/// The `{peer_outputs}` of `tool_pipeline`'s answering agent: the plan and what its program gave.
pub fn pipeline_answer_peers(plan: &Answer<'_>, run: PipelineRun<'_>) -> String {
    const USE: &str = "Use what the program printed (and the mistakes it reveals) to give the full final answer.";
    const ALONE: &str = "Give the full final answer from the plan and your own reasoning.";
    let (ran, then) = match run {
        PipelineRun::Ran { result, is_error: false } => {
            (format!("Running the program gave:\n{}", result.trim_end()), USE)
        }
        PipelineRun::Ran { result, is_error: true } => {
            (format!("Running the program failed:\n{}", result.trim_end()), USE)
        }
        PipelineRun::NoProgram => ("No program was run: the plan holds no ```python block.".to_string(), ALONE),
        PipelineRun::NoTool => ("No program was run: no python tool is available.".to_string(), ALONE),
    };
    format!(
        "Plan and program from agent `{}` ({}):\n{}\n\n{ran}\n\n{then}",
        plan.agent,
        plan.role.trim_end(),
        plan.text.trim_end()
    )
}

/// The body of the first fenced code block of `text` tagged `python`, `python3`, `py` or untagged.
pub fn python_program(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let line_end = after.find('\n')?;
        let tag = after[..line_end].trim();
        let body = &after[line_end + 1..];
        let end = body.find("```")?;
        if ["", "python", "python3", "py"].contains(&tag) {
            return Some(&body[..end]);
        }
        rest = &body[end + 3..];
    }
    None
}

/// `concatenate`: the answers joined, each labelled by agent and role.
pub fn concatenate(answers: &[Answer<'_>]) -> String {
    answers_block(answers, false)
}

fn layer_context(task: &str, layer: &Layer, input: &str) -> String {
    format!(
        "Overall task:\n{task}\n\nSubtask of team `{}`: {}\nWhat the output must be: {}\n\nInput of this step:\n{input}",
        layer.id,
        layer.subtask.trim_end(),
        layer.output_spec.trim_end()
    )
}

/// `llm_synthesis`: merge the team's answers into one (the synthesiser speaks as `persona`).
pub fn synthesis(task: &str, layer: &Layer, input: &str, persona: &str, answers: &[Answer<'_>]) -> Vec<Message> {
    vec![
        Message::system(format!("{}\nYou synthesise the answers of your team into one answer.", persona.trim_end())),
        Message::user(format!(
            "{}\n\nAnswers of the team, as references:\n\n{}\n\nWrite one answer that keeps what is correct in them and fixes what is wrong. Give the answer itself, in the required output form, not a comparison.",
            layer_context(task, layer, input),
            answers_block(answers, false)
        )),
    ]
}

/// `select_best`: the judge picks the best answer by its 1-based number.
pub fn judge(task: &str, layer: &Layer, input: &str, answers: &[Answer<'_>]) -> Vec<Message> {
    vec![
        Message::system(
            "You are a strict judge. You pick the best of several candidate answers. Answer with one line of JSON only.",
        ),
        Message::user(format!(
            "{}\n\nCandidate answers:\n\n{}\n\nWhich candidate is the most correct and complete? Answer with one line of JSON: {{\"best\": <number from 1 to {}>, \"reason\": \"<one sentence>\"}}",
            layer_context(task, layer, input),
            answers_block(answers, true),
            answers.len()
        )),
    ]
}

/// `critic_revise`: one critic reviews the draft (with one agent, the agent critiques its own draft).
pub fn critique(task: &str, layer: &Layer, input: &str, critic: &Agent, draft: &Answer<'_>) -> Vec<Message> {
    vec![
        Message::system(format!("{}\nYou review a draft critically and constructively.", critic.role.trim_end())),
        Message::user(format!(
            "{}\n\nDraft by agent `{}`:\n{}\n\nList the draft's concrete errors, gaps and format problems, most important first. Do not rewrite the draft. If it is fully correct, say so.",
            layer_context(task, layer, input),
            draft.agent,
            draft.text.trim_end()
        )),
    ]
}

/// `critic_revise`: the `{peer_outputs}` of the revision: the agent's draft and the critiques.
pub fn revise_peers(draft: &str, critiques: &[Answer<'_>]) -> String {
    format!(
        "Your draft:\n{}\n\nCritiques of your draft:\n\n{}\n\nRevise your draft once, addressing every valid critique, and give the full revised answer.",
        draft.trim_end(),
        answers_block(critiques, false)
    )
}

/// One candidate of a routing call as the prompt shows it: its name, its call count for the layer
/// and its one-line semantics.
#[derive(Debug, Clone, Copy)]
pub struct RoutingCandidate<'a> {
    /// The aggregator's name.
    pub name: AggregatorName,
    /// Its model calls for this layer (routing excluded, no failures).
    pub calls: usize,
    /// Its one-line semantics.
    pub description: &'a str,
}

/// DynamicRoutingSelect: pick one aggregator for this layer and input (candidates described by
/// their names alone; see [`routing_among`] for a registry's descriptions).
pub fn routing(task: &str, layer: &Layer, input: &str, debate_rounds: u32, stats: &[RoutingStat]) -> Vec<Message> {
    let candidates: Vec<RoutingCandidate<'_>> = layer
        .aggregators
        .iter()
        .map(|&name| RoutingCandidate {
            name,
            calls: name.calls(layer.agents.len(), debate_rounds),
            description: name.description(),
        })
        .collect();
    routing_among(task, layer, input, &candidates, stats)
}

/// DynamicRoutingSelect with the layer's candidates as given (in the layer's order).
pub fn routing_among(
    task: &str,
    layer: &Layer,
    input: &str,
    candidates: &[RoutingCandidate<'_>],
    stats: &[RoutingStat],
) -> Vec<Message> {
    let mut u = String::new();
    let _ = write!(
        u,
        "Overall task:\n{task}\n\nLayer `{}` must produce: {}\nOutput spec: {}\nTeam:\n",
        layer.id,
        layer.subtask.trim_end(),
        layer.output_spec.trim_end()
    );
    for a in &layer.agents {
        let _ = writeln!(u, "- {}: {}", a.id, a.role.trim_end());
    }
    let _ = write!(u, "\nLayer input:\n{input}\n\nCandidate aggregators (how the team's answers are combined):\n");
    for RoutingCandidate { name, calls, description } in candidates {
        let plural = if *calls == 1 { "" } else { "s" };
        let _ = writeln!(u, "- {name} ({calls} call{plural}): {description}");
    }
    if !layer.routing_hint.trim().is_empty() {
        let _ = write!(u, "\nHint: {}\n", layer.routing_hint.trim());
    }
    if !stats.is_empty() {
        u.push_str("\nPast results (mean score when chosen):\n");
        for s in stats {
            let _ = writeln!(u, "- {}: {:.2} over {} uses", s.aggregator, s.mean_score, s.uses);
        }
    }
    let names: Vec<_> = layer.aggregators.iter().map(|a| a.as_str()).collect();
    let _ = write!(
        u,
        "\nChoose the aggregator that fits this input best; spend calls only where the input is hard. Answer with one line of JSON: {{\"aggregator\": \"<one of: {}>\", \"reason\": \"<one sentence>\"}}",
        names.join(", ")
    );
    vec![
        Message::system(
            "You route one layer of a multi-agent system: you choose how the layer's agents combine their answers. Answer with one line of JSON only.",
        ),
        Message::user(u),
    ]
}
