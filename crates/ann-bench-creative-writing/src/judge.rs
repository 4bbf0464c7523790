//! The LLM coherence judge: n samples of a 1-10 score, parsed robustly, averaged.
//!
//! Each passage is judged `samples` times (sample indices `0..samples`, so a response cache keeps
//! them apart). A reply without a parsable score in 1..=10 is data, not an error: it is re-asked up to
//! `max_reasks` times in total per passage (sample indices `samples..`, in order), and a sample that
//! stays garbled counts as 0 in the mean and is named in the verdict's note. Only a failing model
//! call (budget, backend down) is an error.

use std::sync::{Arc, LazyLock};

use ann_eval::EvalError;
use ann_llm::{CallSettings, ChatModel, ChatRequest, Message};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::prompts;

/// How the judge asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JudgeConfig {
    /// Model name sent in requests (empty: the backend's default).
    pub model: String,
    /// Number of judge samples averaged (Symbolic Learning used 5, ToT 5; default 3).
    pub samples: u32,
    /// Sampling temperature of the judge (default 0.7, so that samples differ).
    pub temperature: f32,
    /// Token limit of a judge reply.
    pub max_tokens: Option<u32>,
    /// Extra requests allowed per passage to replace garbled replies (default 2).
    pub max_reasks: u32,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self { model: String::new(), samples: 3, temperature: 0.7, max_tokens: Some(600), max_reasks: 2 }
    }
}

/// The judge's verdict on one passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// One entry per sample: the score 1-10, or `None` when the reply stayed garbled.
    pub scores: Vec<Option<f64>>,
    /// Mean over the samples, garbled ones counted as 0.
    pub mean: f64,
    /// The first one-line reason the judge gave, if any.
    pub reason: Option<String>,
    /// Number of replies that had no parsable score (including re-asked ones).
    pub garbled_replies: usize,
}

/// Parsed content of one judge reply.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeReply {
    pub score: f64,
    pub reason: Option<String>,
}

static TOT_SCORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)coherency\s+score\s+is\s*:?\s*\**\s*(\d+(?:\.\d+)?)").expect("valid regex"));
static SCORE_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bscore\b\s*(?:is|of|=|:)?\s*:?\s*\**\s*(\d+(?:\.\d+)?)").expect("valid regex"));
static OUT_OF_TEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*10\b").expect("valid regex"));
static BARE_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\W*(\d+(?:\.\d+)?)\W*$").expect("valid regex"));
static REASON: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?im)^\W*reason\W*:\s*(.+?)\s*$").expect("valid regex"));

/// Parse a judge reply. Rules in order, the first that matches decides (last match within a rule):
/// ToT's "coherency score is N"; "score: N" / "score of N"; "N/10" / "N out of 10"; a last line
/// that is only a number. A score outside 1..=10 makes the reply garbled (`None`).
pub fn parse_reply(reply: &str) -> Option<JudgeReply> {
    let text = reply.replace('*', "");
    let last = |re: &Regex| re.captures_iter(&text).last().map(|c| c[1].to_string());
    let raw = last(&TOT_SCORE).or_else(|| last(&SCORE_WORD)).or_else(|| last(&OUT_OF_TEN)).or_else(|| {
        let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
        BARE_NUMBER.captures(line).map(|c| c[1].to_string())
    })?;
    let score: f64 = raw.parse().ok()?;
    if !(1.0..=10.0).contains(&score) {
        return None;
    }
    let reason = REASON.captures(&text).map(|c| c[1].to_string()).filter(|r| !r.is_empty());
    Some(JudgeReply { score, reason })
}

/// The coherence judge over a shared chat model.
#[derive(Clone)]
pub struct CoherenceJudge {
    model: Arc<dyn ChatModel>,
    config: JudgeConfig,
}

impl CoherenceJudge {
    pub fn new(model: Arc<dyn ChatModel>, config: JudgeConfig) -> Self {
        Self { model, config }
    }

    pub fn config(&self) -> &JudgeConfig {
        &self.config
    }

    fn request(&self, passage: &str, sample_index: u32) -> ChatRequest {
        let call = CallSettings {
            model: self.config.model.clone(),
            temperature: self.config.temperature,
            max_tokens: self.config.max_tokens,
            seed: None,
        };
        call.request(vec![Message::user(prompts::judge_prompt(passage))])
            .with_sample_index(sample_index)
            .with_tag("phase", "judge")
    }

    async fn ask(&self, passage: &str, sample_index: u32) -> Result<Option<JudgeReply>, EvalError> {
        let response = self.model.complete(&self.request(passage, sample_index)).await?;
        Ok(parse_reply(&response.text))
    }

    /// Judge one passage: `samples` replies in parallel, garbled ones re-asked in order.
    pub async fn judge(&self, passage: &str) -> Result<Verdict, EvalError> {
        let n = self.config.samples.max(1);
        // Every sent call is awaited even when one fails (an exhausted budget), so that no answer
        // already paid for is dropped before it reaches the response cache.
        let first = futures::future::join_all((0..n).map(|i| self.ask(passage, i)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let mut garbled_replies = first.iter().filter(|r| r.is_none()).count();
        let mut replies = first;
        let mut next_index = n;
        let mut reasks_left = self.config.max_reasks;
        for slot in replies.iter_mut() {
            while slot.is_none() && reasks_left > 0 {
                reasks_left -= 1;
                *slot = self.ask(passage, next_index).await?;
                next_index += 1;
                if slot.is_none() {
                    garbled_replies += 1;
                }
            }
        }
        let scores: Vec<Option<f64>> = replies.iter().map(|r| r.as_ref().map(|r| r.score)).collect();
        let mean = scores.iter().map(|s| s.unwrap_or(0.0)).sum::<f64>() / f64::from(n);
        let reason = replies.iter().flatten().find_map(|r| r.reason.clone());
        Ok(Verdict { scores, mean, reason, garbled_replies })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, Option<f64>)]) {
        for (reply, want) in cases {
            assert_eq!(parse_reply(reply).map(|r| r.score), *want, "reply: {reply:?}");
        }
    }

    #[test]
    fn score_parsing_table() {
        check(&[
            ("The passage flows well.\nThus the coherency score is 7", Some(7.0)),
            ("Thus the coherency score is **8**.", Some(8.0)),
            ("thus the Coherency Score is: 10", Some(10.0)),
            ("I first thought the coherency score is 4, but on reflection the coherency score is 6.", Some(6.0)),
            ("Score: 5", Some(5.0)),
            ("Overall I give it a score of 6.5.", Some(6.5)),
            ("Coherent but abrupt. 7/10", Some(7.0)),
            ("I'd rate it 9 out of 10.", Some(9.0)),
            ("Analysis...\n\n8", Some(8.0)),
            ("Analysis...\n**3**", Some(3.0)),
            // garbled or out of range
            ("Thus the coherency score is 0", None),
            ("Thus the coherency score is 11", None),
            ("score: 85", None),
            ("I cannot judge this passage.", None),
            ("", None),
            ("The four paragraphs each end with the sentence 2 of 4.", None),
        ]);
    }

    #[test]
    fn reason_line_is_kept() {
        let r =
            parse_reply("Analysis.\nReason: the second paragraph jumps topic.\nThus the coherency score is 5").unwrap();
        assert_eq!((r.score, r.reason.as_deref()), (5.0, Some("the second paragraph jumps topic.")));
        assert_eq!(parse_reply("Thus the coherency score is 5").unwrap().reason, None);
    }
}
