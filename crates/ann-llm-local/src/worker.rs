//! The model's worker thread: it takes requests off the queue and decodes every request in progress
//! together, one token each per forward pass, so concurrent agents share each read of the weights.
//!
//! Requests that arrive together are prefilled together (`Engine::start_many`, one forward pass for
//! their prompts). A request joins the batch as soon as it arrives (after that prefill) and leaves it when its
//! answer is complete; each answer is the one the request gets alone (the batched forward pass is
//! row-independent, see `Llama::forward_decode`). A request whose caller has gone away is dropped
//! at the next step.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ann_llm::{ChatResponse, LlmError};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::engine::Engine;
use crate::sequence::{Sequence, Step};
use crate::{Job, guarded};

struct Active {
    seq: Sequence,
    reply: oneshot::Sender<Result<ChatResponse, LlmError>>,
}

/// Counts of the decoding steps, shared with [`crate::LocalModel::decode_stats`].
#[derive(Default)]
pub(crate) struct Counters {
    steps: AtomicU64,
    rows: AtomicU64,
    max_rows: AtomicU64,
}

/// How the worker has decoded so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeStats {
    /// Forward passes of the decoding loop.
    pub steps: u64,
    /// Tokens they decoded (one per sequence in each step).
    pub rows: u64,
    /// The largest batch decoded in one step.
    pub max_rows: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> DecodeStats {
        DecodeStats {
            steps: self.steps.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            max_rows: self.max_rows.load(Ordering::Relaxed),
        }
    }
}

/// Serve `jobs` until every sender is gone and every request in progress is answered.
pub(crate) fn run(mut engine: Engine, mut jobs: mpsc::Receiver<Job>, max_batch: usize, counters: Arc<Counters>) {
    let max_batch = max_batch.max(1);
    let mut active: Vec<Active> = Vec::new();
    let mut open = true;
    loop {
        let mut arrived = Vec::new();
        if active.is_empty() {
            match jobs.blocking_recv() {
                Some(job) => arrived.push(job),
                None => return,
            }
        }
        while open && active.len() + arrived.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => arrived.push(job),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        accept(&mut engine, arrived, &mut active);
        step(&engine, &mut active, &counters);
        if !open && active.is_empty() {
            return;
        }
    }
}

/// Answer prompt counts at once; prefill the arrived completions together (one forward pass) and
/// add them to the batch.
fn accept(engine: &mut Engine, jobs: Vec<Job>, active: &mut Vec<Active>) {
    let mut starting = Vec::new();
    for job in jobs {
        match job {
            Job::CountPrompt(messages, reply) => {
                let _ = reply.send(guarded(|| Ok(engine.prompt_tokens(&messages)?)));
            }
            Job::Complete(request, reply) if !reply.is_closed() => starting.push((request, reply)),
            Job::Complete(..) => {}
        }
    }
    if starting.is_empty() {
        return;
    }
    let requests: Vec<&ann_llm::ChatRequest> = starting.iter().map(|(r, _)| r.as_ref()).collect();
    let started = match guarded(|| Ok(engine.start_many(&requests))) {
        Ok(started) => started,
        Err(e) => starting.iter().map(|_| Err(e.clone())).collect(),
    };
    for ((_, reply), seq) in starting.into_iter().zip(started) {
        match seq {
            Ok(seq) => active.push(Active { seq, reply }),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

/// One token for every sequence in progress: each chooses its next token (finished ones are
/// answered), then the rest run through the model together.
fn step(engine: &Engine, active: &mut Vec<Active>, counters: &Counters) {
    let mut going = Vec::with_capacity(active.len());
    let mut tokens = Vec::with_capacity(active.len());
    for mut a in active.drain(..) {
        if a.reply.is_closed() {
            continue;
        }
        match guarded(|| engine.next(&mut a.seq)) {
            Ok(Step::Feed(token)) => {
                tokens.push(token);
                going.push(a);
            }
            Ok(Step::Done(finish)) => {
                let _ = a.reply.send(Ok(engine.finish(a.seq, finish)));
            }
            Err(e) => {
                let _ = a.reply.send(Err(e));
            }
        }
    }
    if going.is_empty() {
        return;
    }
    let rows = going.len() as u64;
    counters.steps.fetch_add(1, Ordering::Relaxed);
    counters.rows.fetch_add(rows, Ordering::Relaxed);
    counters.max_rows.fetch_max(rows, Ordering::Relaxed);
    let mut batch: Vec<(&mut Sequence, u32)> = going.iter_mut().map(|a| &mut a.seq).zip(tokens).collect();
    if let Err(e) = guarded(|| engine.feed(&mut batch)) {
        for a in going {
            let _ = a.reply.send(Err(e.clone()));
        }
        return;
    }
    *active = going;
}
