//! A batch of forwards as a stream: inputs start as others finish (at most `max_parallel_inputs`
//! at once, sharing the `max_parallel_calls` bound), and each result is handed over as soon as
//! it may be, so memory holds only what is in flight; the caller keeps or drops each trace.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ann_llm::SharedModel;
use futures::StreamExt;
use futures::stream::{FuturesOrdered, FuturesUnordered};

use super::{ForwardInput, check, run, stops_the_batch, warn_if_capped};
use crate::call::CallGate;
use crate::{Extractor, ForwardConfig, ForwardResult, GraphError, Network};

/// In which order a [`ForwardStream`] hands over its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchOrder {
    /// In input order: a finished result waits for the inputs before it (the look-ahead is
    /// bounded by `max_parallel_inputs`: no input starts while that many are unfinished or
    /// waiting).
    #[default]
    Input,
    /// As they finish.
    Finished,
}

type Running<'a> = Pin<Box<dyn Future<Output = (usize, Result<ForwardResult, GraphError>)> + Send + 'a>>;

enum Queue<'a> {
    Input(FuturesOrdered<Running<'a>>),
    Finished(FuturesUnordered<Running<'a>>),
}

impl<'a> Queue<'a> {
    fn push(&mut self, run: Running<'a>) {
        match self {
            Queue::Input(q) => q.push_back(run),
            Queue::Finished(q) => q.push(run),
        }
    }

    fn len(&self) -> usize {
        match self {
            Queue::Input(q) => q.len(),
            Queue::Finished(q) => q.len(),
        }
    }

    async fn next(&mut self) -> Option<(usize, Result<ForwardResult, GraphError>)> {
        match self {
            Queue::Input(q) => q.next().await,
            Queue::Finished(q) => q.next().await,
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
    inputs: std::iter::Enumerate<std::vec::IntoIter<ForwardInput<'a>>>,
    extractor: Option<&'a Extractor>,
    config: &'a ForwardConfig,
    gate: Arc<CallGate>,
    queue: Queue<'a>,
    limit: usize,
    stop: Option<GraphError>,
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
        let queue = match order {
            BatchOrder::Input => Queue::Input(FuturesOrdered::new()),
            BatchOrder::Finished => Queue::Finished(FuturesUnordered::new()),
        };
        Ok(Self {
            model,
            net,
            inputs: inputs.into_iter().enumerate(),
            extractor,
            config,
            gate: Arc::new(CallGate::new(config.max_parallel_calls, config.on_infrastructure_failure)),
            queue,
            limit: config.max_parallel_inputs.max(1),
            stop: None,
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
        while self.stop.is_none() && !self.closed && !self.held && self.queue.len() < self.limit {
            let Some((index, input)) = self.inputs.next() else { return };
            let (model, net, extractor, config, gate) =
                (self.model, self.net, self.extractor, self.config, self.gate.clone());
            self.queue.push(Box::pin(async move { (index, run(model, net, input, extractor, config, &gate).await) }));
        }
    }

    /// The next result, with its input's index; `None` once every started input is done.
    pub async fn next(&mut self) -> Option<(usize, Result<ForwardResult, GraphError>)> {
        loop {
            self.fill();
            let (index, result) = self.queue.next().await?;
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
