//! A batch of forwards as a stream: inputs start as others finish (at most `max_parallel_inputs`
//! at once, sharing the `max_parallel_calls` bound), and each result is handed over as soon as
//! it may be, so memory holds only what is in flight; the caller keeps or drops each trace.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ann_llm::SharedModel;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{ForwardInput, check, run, stops_the_batch, warn_if_capped};
use crate::call::CallGate;
use crate::{Extractor, ForwardConfig, ForwardResult, GraphError, Network};

/// In which order a [`ForwardStream`] hands over its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchOrder {
    /// In input order: a finished result waits for the inputs before it, while inputs after it
    /// start in its place (the look-ahead is bounded: no input starts more than twice
    /// `max_parallel_inputs` after the next one to hand over, so at most that many results wait).
    #[default]
    Input,
    /// As they finish.
    Finished,
}

/// An input's result, with its index.
type Indexed = (usize, Result<ForwardResult, GraphError>);

/// Finished results by index, waiting for their turn.
type Waiting = BTreeMap<usize, Result<ForwardResult, GraphError>>;

type Running<'a> = Pin<Box<dyn Future<Output = Indexed> + Send + 'a>>;

/// The started inputs: running (at most `max_parallel_inputs`), and in input order the
/// finished results that wait for an earlier one.
struct Queue<'a> {
    running: FuturesUnordered<Running<'a>>,
    /// `Some` in input order: finished results by index, and the next index to hand over.
    waiting: Option<(Waiting, usize)>,
}

impl<'a> Queue<'a> {
    fn new(order: BatchOrder) -> Self {
        let waiting = (order == BatchOrder::Input).then(|| (BTreeMap::new(), 0));
        Self { running: FuturesUnordered::new(), waiting }
    }

    fn push(&mut self, run: Running<'a>) {
        self.running.push(run);
    }

    /// Started and not handed over yet.
    fn len(&self) -> usize {
        self.running.len() + self.waiting.as_ref().map_or(0, |(w, _)| w.len())
    }

    /// Whether the input `index` may start: always as they finish; in input order, at most
    /// `2 * limit` after the next one to hand over.
    fn may_start(&self, index: usize, limit: usize) -> bool {
        self.running.len() < limit && self.waiting.as_ref().is_none_or(|(_, next)| index < next + 2 * limit)
    }

    /// In input order, the next result to hand over if it has finished.
    fn ready(&mut self) -> Option<Indexed> {
        let (waiting, next) = self.waiting.as_mut()?;
        let result = waiting.remove(next)?;
        *next += 1;
        Some((*next - 1, result))
    }

    /// A finished result: handed back as it finishes, or kept until its turn in input order.
    fn finished(&mut self, (index, result): Indexed) -> Option<Indexed> {
        match &mut self.waiting {
            None => Some((index, result)),
            Some((waiting, _)) => {
                waiting.insert(index, result);
                None
            }
        }
    }
}

/// Many inputs through one network, result by result ([`ForwardStream::next`]): the streaming
/// form of [`super::forward_batch`], whose memory is bounded by the inputs in flight rather than
/// by the batch. The stopping rules are the batch's: an exhausted budget (or an infrastructure
/// failure under the `stop` policy) stops the stream: no call (and no input) starts after it, the
/// calls already sent finish, their inputs' results are still handed over, and the stopping error
/// is kept for [`ForwardStream::stopped`] (the first in the stream's order), never handed over.
///
/// ```no_run
/// # async fn demo(model: ann_llm::SharedModel, net: ann_graph::Network, inputs: Vec<String>) -> Result<(), ann_graph::GraphError> {
/// use ann_graph::{BatchOrder, ForwardConfig, ForwardStream};
///
/// let config = ForwardConfig::default();
/// let mut stream = ForwardStream::new(&model, &net, &inputs, None, &config, BatchOrder::Finished)?;
/// while let Some((index, result)) = stream.next().await {
///     // Keep what you need; the trace is dropped here unless kept.
///     println!("{index}: {:?}", result.map(|r| r.output));
/// }
/// if let Some(stop) = stream.into_stopped() {
///     return Err(stop);
/// }
/// # Ok(()) }
/// ```
pub struct ForwardStream<'a> {
    model: &'a SharedModel,
    net: &'a Network,
    inputs: std::iter::Peekable<std::iter::Enumerate<std::vec::IntoIter<ForwardInput<'a>>>>,
    extractor: Option<&'a Extractor>,
    config: &'a ForwardConfig,
    gate: Arc<CallGate>,
    queue: Queue<'a>,
    limit: usize,
    stop: Option<GraphError>,
    /// A result that stops the batch has finished (it is kept in `stop` once handed over in
    /// order): no input starts.
    stopping: bool,
    closed: bool,
    held: bool,
}

impl<'a> ForwardStream<'a> {
    /// Check the network (as [`super::forward`] does) and prepare the stream; nothing starts
    /// before the first [`ForwardStream::next`].
    pub fn new(
        model: &'a SharedModel,
        net: &'a Network,
        inputs: &'a [String],
        extractor: Option<&'a Extractor>,
        config: &'a ForwardConfig,
        order: BatchOrder,
    ) -> Result<Self, GraphError> {
        let inputs = inputs.iter().map(|text| ForwardInput::text(text)).collect();
        Self::of_inputs(model, net, inputs, extractor, config, order)
    }

    /// [`ForwardStream::new`] over inputs that may carry files for their agents' tools.
    pub fn of_inputs(
        model: &'a SharedModel,
        net: &'a Network,
        inputs: Vec<ForwardInput<'a>>,
        extractor: Option<&'a Extractor>,
        config: &'a ForwardConfig,
        order: BatchOrder,
    ) -> Result<Self, GraphError> {
        check(net, config)?;
        warn_if_capped(model, config);
        let queue = Queue::new(order);
        Ok(Self {
            model,
            net,
            inputs: inputs.into_iter().enumerate().peekable(),
            extractor,
            config,
            gate: Arc::new(CallGate::new(config.max_parallel_calls, config.on_infrastructure_failure)),
            queue,
            limit: config.max_parallel_inputs.max(1),
            stop: None,
            stopping: false,
            closed: false,
            held: false,
        })
    }

    /// Start no further input: those in flight finish and are still handed over (the caller
    /// drains the stream, as after a stop, so no call in flight is dropped). For a consumer that
    /// cannot use the rest (its own sink failed).
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// While `held`, start no input; those in flight go on and are handed over. For a consumer
    /// whose own work on the results is full, which must still drive the calls in flight (its
    /// work may wait on them: a judge's call on the backend's concurrency limit).
    /// While held with nothing in flight, [`ForwardStream::next`] is `None` although inputs
    /// remain: check [`ForwardStream::in_flight`] first.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// How many inputs are started and not handed over yet.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Start inputs up to the limit (none once the stream stopped or was closed, or while held).
    fn fill(&mut self) {
        while self.stop.is_none() && !self.stopping && !self.closed && !self.held {
            let Some((index, _)) = self.inputs.peek() else { return };
            if !self.queue.may_start(*index, self.limit) {
                return;
            }
            let Some((index, input)) = self.inputs.next() else { return };
            let (model, net, extractor, config, gate) =
                (self.model, self.net, self.extractor, self.config, self.gate.clone());
            self.queue.push(Box::pin(async move { (index, run(model, net, input, extractor, config, &gate).await) }));
        }
    }

    /// The next result, with its input's index; `None` once every started input is done.
    pub async fn next(&mut self) -> Option<(usize, Result<ForwardResult, GraphError>)> {
        loop {
            let (index, result) = match self.queue.ready() {
                Some(ready) => ready,
                None => {
                    // Inputs start only while the next result is awaited.
                    self.fill();
                    let finished = self.queue.running.next().await?;
                    // A stop is known as soon as it finishes: no input starts after it.
                    self.stopping |= matches!(&finished.1, Err(e) if stops_the_batch(e, self.config));
                    match self.queue.finished(finished) {
                        Some(handed) => handed,
                        None => continue,
                    }
                }
            };
            match result {
                Err(e) if stops_the_batch(&e, self.config) => {
                    self.stop.get_or_insert(e);
                }
                other => return Some((index, other)),
            }
        }
    }

    /// The error that stopped the stream, if one did.
    pub fn stopped(&self) -> Option<&GraphError> {
        self.stop.as_ref()
    }

    /// The error that stopped the stream, if one did (call after the last result).
    pub fn into_stopped(self) -> Option<GraphError> {
        self.stop
    }
}

#[cfg(test)]
mod tests;
