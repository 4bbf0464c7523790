//! The bare client: tokio + reqwest, no cache, no budget, no trace; the floor the frameworks are
//! compared with. The same 5 requests per question as the others (3 solvers at once, aggregator,
//! formatter).

use anyhow::{Context, Result};
use futures::StreamExt;
use serde_json::{Value, json};

pub struct Client {
    http: reqwest::Client,
    endpoint: String,
}

impl Client {
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder().build().context("building the HTTP client")?;
        Ok(Self { http, endpoint: format!("{}/chat/completions", base_url.trim_end_matches('/')) })
    }

    /// One chat completion: the reply's text.
    async fn chat(&self, system: &str, user: String) -> Result<String> {
        let body = json!({
            "model": "peer-model",
            "temperature": 0.0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        });
        let reply: Value = self.http.post(&self.endpoint).json(&body).send().await?.error_for_status()?.json().await?;
        reply["choices"][0]["message"]["content"].as_str().map(str::to_string).context("a reply without content")
    }

    async fn question(&self, i: usize) -> Result<u64> {
        let q = crate::question(i);
        let solve = |k: usize| {
            let (system, user) = (format!("You are solver {k} of a team."), format!("Solve the question.\n\n{q}"));
            async move { self.chat(&system, user).await }
        };
        let (a, b, c) = tokio::try_join!(solve(1), solve(2), solve(3))?;
        let merged = self
            .chat(
                "You merge the solvers' answers.",
                format!("{q}\n\nSolutions:\n[1] {a}\n[2] {b}\n[3] {c}\n\nGive the best answer."),
            )
            .await?;
        self.chat("You format the final answer.", format!("{q}\n\n{merged}\n\nEnd with 'Answer: X'.")).await?;
        Ok(5)
    }
}

/// One question (5 requests).
pub async fn forward_one(client: &Client, i: usize) -> Result<u64> {
    client.question(i).await
}

/// Run the workload: `questions` questions, `in_flight` at once; returns the requests sent.
pub async fn forward(client: &Client, questions: usize, in_flight: usize) -> Result<u64> {
    let mut done = futures::stream::iter(0..questions).map(|i| client.question(i)).buffer_unordered(in_flight);
    let mut requests = 0;
    while let Some(sent) = done.next().await {
        requests += sent?;
    }
    Ok(requests)
}
