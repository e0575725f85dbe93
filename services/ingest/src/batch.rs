//! Pre-aggregation across requests with durable acknowledgement (adapter).
//!
//! Every request (and every batch of the raw-topic consumer) submits its events
//! with a reply channel. One task merges them ([`Accumulator`]) and, every
//! `ingest.flush_interval_ms`, encodes and produces the merged events; when
//! Kafka has acknowledged *every* message of that flush, each submitter is told
//! so, and only then answers 2xx (or stores its offsets). A failed flush is
//! reported to each of its submitters (503: resend; nothing is claimed written).
//!
//! The buffer is bounded in records: a submitter holds permits for its records
//! from submission until its flush is acknowledged or failed. The HTTP intake
//! takes them without waiting ([`Batcher::try_reserve`]: full means 503 at
//! once); the raw consumer waits ([`Batcher::reserve`]: back-pressure).
//!
//! With `ingest.transactional` each flush is one Kafka transaction
//! ([`crate::txn`]), one at a time: a flush that is not committed is
//! aborted, so the 503 means nothing of it is visible to `read_committed`
//! readers. Submissions that arrive meanwhile wait for the next flush.
//!
//! Shutdown: after the shutdown token, every submission is flushed at once;
//! [`Batcher::close`] (called when HTTP and the consumer have stopped) flushes
//! what is left and waits for the acknowledgements of every flush in flight.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use selfheal_common::config::TopicsConfig;
use selfheal_common::kafka::{EventProducer, Outgoing};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::events::{Accumulator, Events};
use crate::txn::TxnWriter;

/// How flushes reach Kafka.
#[derive(Clone)]
pub enum Writer {
    /// The idempotent producer; flushes overlap. A flush that fails half
    /// way may leave part of it written (a resend then counts it twice).
    Pipelined(EventProducer),
    /// One transaction per flush, one flush at a time: all or nothing.
    Transactional(Arc<Mutex<TxnWriter>>),
}

/// Why a submission was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// The bounded buffer is full (Kafka slow or unreachable).
    #[error("intake buffer full ({0} records awaiting Kafka acknowledgement)")]
    BufferFull(usize),
    /// Kafka did not acknowledge the flush carrying the records.
    #[error("kafka did not acknowledge: {0}")]
    NotAcknowledged(String),
    /// The batcher has stopped (shutdown).
    #[error("intake is shutting down")]
    Closed,
}

/// Room for records in the buffer; released when dropped, i.e. when the
/// flush carrying them is settled (or they were never submitted).
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    gauge: IntGauge,
}

impl Reservation {
    fn new(permit: Option<OwnedSemaphorePermit>, gauge: &IntGauge) -> Self {
        let n = permit.as_ref().map_or(0, |p| p.num_permits());
        gauge.add(n as i64);
        Self {
            permit,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let n = self.permit.as_ref().map_or(0, |p| p.num_permits());
        self.gauge.sub(n as i64);
    }
}

struct Submission {
    events: Events,
    _reservation: Reservation,
    done: oneshot::Sender<Result<(), FlushError>>,
}

/// Handle of the batching task; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<Submission>,
    permits: Arc<Semaphore>,
    capacity: usize,
    close: CancellationToken,
    buffered: IntGauge,
}

/// The running batching task.
pub struct BatcherTask(tokio::task::JoinHandle<()>);

impl BatcherTask {
    /// Waits until the task has flushed everything and seen every flush settled.
    pub async fn wait(self) {
        if let Err(e) = self.0.await {
            tracing::error!(error = %e, "batcher task failed");
        }
    }
}

impl Batcher {
    /// Starts the batching task.
    pub fn spawn(
        writer: Writer,
        topics: Arc<TopicsConfig>,
        flush_interval: Duration,
        capacity: usize,
        shutdown: CancellationToken,
        registry: &Registry,
    ) -> (Self, BatcherTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        let metrics = BatchMetrics::new(registry);
        let close = CancellationToken::new();
        let batcher = Self {
            tx,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            close: close.clone(),
            buffered: metrics.buffered.clone(),
        };
        let task = tokio::spawn(run(
            rx,
            writer,
            topics,
            flush_interval,
            // Under load a flush goes out before the interval ends, so the
            // buffer keeps moving instead of filling up.
            (capacity / 4).max(1),
            shutdown,
            close,
            metrics,
        ));
        (batcher, BatcherTask(task))
    }

    /// Reserves room for `records` without waiting; a request larger than the
    /// whole buffer reserves the whole buffer.
    pub fn try_reserve(&self, records: usize) -> Result<Reservation, FlushError> {
        let n = self.permits_for(records);
        if n == 0 {
            return Ok(Reservation::new(None, &self.buffered));
        }
        match self.permits.clone().try_acquire_many_owned(n) {
            Ok(p) => Ok(Reservation::new(Some(p), &self.buffered)),
            Err(_) => Err(FlushError::BufferFull(
                self.capacity - self.permits.available_permits(),
            )),
        }
    }

    /// Reserves room for `records`, waiting while the buffer is full.
    pub async fn reserve(&self, records: usize) -> Result<Reservation, FlushError> {
        let n = self.permits_for(records);
        if n == 0 {
            return Ok(Reservation::new(None, &self.buffered));
        }
        let p = self
            .permits
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| FlushError::Closed)?;
        Ok(Reservation::new(Some(p), &self.buffered))
    }

    fn permits_for(&self, records: usize) -> u32 {
        u32::try_from(records.min(self.capacity)).unwrap_or(u32::MAX)
    }

    /// Submits `events`; resolves when Kafka acknowledged the flush that
    /// carries them (or it failed).
    pub async fn submit(&self, events: Events, reservation: Reservation) -> Result<(), FlushError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Submission {
                events,
                _reservation: reservation,
                done,
            })
            .map_err(|_| FlushError::Closed)?;
        rx.await.unwrap_or(Err(FlushError::Closed))
    }

    /// Ends batching: flushes what is left and waits for every flush's
    /// acknowledgement (then [`BatcherTask::wait`] returns). Submissions after
    /// this fail with [`FlushError::Closed`].
    pub fn close(&self) {
        self.close.cancel();
    }
}

#[derive(Clone)]
struct BatchMetrics {
    buffered: IntGauge,
    flushes: IntCounterVec,
    events: IntCounterVec,
    size: Histogram,
}

impl BatchMetrics {
    fn new(registry: &Registry) -> Self {
        let buffered = IntGauge::new(
            "selfheal_ingest_buffered_records",
            "Records accepted and not yet acknowledged by Kafka.",
        )
        .expect("valid metric");
        let flushes = IntCounterVec::new(
            Opts::new(
                "selfheal_ingest_flushes_total",
                "Pre-aggregation flushes, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let events = IntCounterVec::new(
            Opts::new(
                "selfheal_ingest_events_produced_total",
                "Events produced by flushes and acknowledged, by topic.",
            ),
            &["topic"],
        )
        .expect("valid metric");
        let size = Histogram::with_opts(
            HistogramOpts::new(
                "selfheal_ingest_flush_size_messages",
                "Kafka messages per flush (merged events of every request in it).",
            )
            .buckets(vec![1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0]),
        )
        .expect("valid metric");
        for m in [
            Box::new(buffered.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(flushes.clone()),
            Box::new(events.clone()),
            Box::new(size.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Self {
            buffered,
            flushes,
            events,
            size,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut rx: mpsc::UnboundedReceiver<Submission>,
    writer: Writer,
    topics: Arc<TopicsConfig>,
    interval: Duration,
    flush_at_events: usize,
    shutdown: CancellationToken,
    close: CancellationToken,
    metrics: BatchMetrics,
) {
    let mut acc = Accumulator::default();
    let mut waiters: Vec<Submission> = Vec::new();
    let mut in_flight = JoinSet::new();
    let mut draining = false;
    // A flush came due while a transaction was in flight.
    let mut deferred = false;
    // The first tick one full interval from now: `interval` would fire at
    // once, flushing whatever the first requests submitted before their time
    // (and, under load, at a moment that depends on scheduling).
    let period = interval.max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Ticks before submissions, so a steady stream of submissions
            // cannot postpone a flush.
            biased;
            _ = close.cancelled() => break,
            // Shutdown: what waits is flushed now, and from here on every
            // submission is flushed as it arrives.
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                deferred = flush(&mut acc, &mut waiters, &writer, &topics, &metrics, &mut in_flight).await;
            }
            _ = ticker.tick() => {
                deferred = flush(&mut acc, &mut waiters, &writer, &topics, &metrics, &mut in_flight).await;
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {
                // A transactional flush settled: what waited behind it goes
                // now if its time came meanwhile.
                if deferred {
                    deferred = flush(&mut acc, &mut waiters, &writer, &topics, &metrics, &mut in_flight).await;
                }
            }
            sub = rx.recv() => {
                let Some(mut sub) = sub else { break };
                acc.add(std::mem::take(&mut sub.events));
                waiters.push(sub);
                // Draining: nothing waits for the interval any more.
                if draining || acc.len() >= flush_at_events {
                    deferred = flush(&mut acc, &mut waiters, &writer, &topics, &metrics, &mut in_flight).await;
                }
            }
        }
    }
    // Closed: take what was submitted before the close, flush it, and wait for
    // every flush in flight, so nothing accepted is abandoned.
    rx.close();
    while let Some(mut sub) = rx.recv().await {
        acc.add(std::mem::take(&mut sub.events));
        waiters.push(sub);
    }
    // Until every flush settled and nothing is left (a transactional flush
    // waits for the one in flight).
    loop {
        flush(
            &mut acc,
            &mut waiters,
            &writer,
            &topics,
            &metrics,
            &mut in_flight,
        )
        .await;
        if in_flight.join_next().await.is_none() {
            break;
        }
    }
}

/// Produces the accumulated events; a task reports the outcome to the
/// waiters once every message is acknowledged (or one failed), or once the
/// flush's transaction committed (or was aborted). Returns `true` when the
/// flush was put off: a transactional flush is in flight.
async fn flush(
    acc: &mut Accumulator,
    waiters: &mut Vec<Submission>,
    writer: &Writer,
    topics: &TopicsConfig,
    metrics: &BatchMetrics,
    in_flight: &mut JoinSet<()>,
) -> bool {
    if waiters.is_empty() && acc.is_empty() {
        return false;
    }
    if matches!(writer, Writer::Transactional(_)) && !in_flight.is_empty() {
        return true;
    }
    let events = acc.take();
    let subs = std::mem::take(waiters);
    let outgoing = match encode(topics, &events) {
        Ok(o) => o,
        Err(e) => {
            settle(
                subs,
                Err(FlushError::NotAcknowledged(format!("cannot encode: {e}"))),
                metrics,
            );
            return false;
        }
    };
    metrics.size.observe(outgoing.len() as f64);
    match writer {
        Writer::Pipelined(producer) => {
            pipelined(producer, outgoing, subs, metrics, in_flight).await;
        }
        Writer::Transactional(w) => {
            let (w, metrics) = (w.clone(), metrics.clone());
            in_flight.spawn(async move {
                let by_topic = count_by_topic(&outgoing);
                let outcome = tokio::task::spawn_blocking(move || {
                    w.lock().expect("writer lock not poisoned").write(&outgoing)
                })
                .await;
                let outcome = match outcome {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(FlushError::NotAcknowledged(e.to_string())),
                    Err(e) => Err(FlushError::NotAcknowledged(format!("writer failed: {e}"))),
                };
                if outcome.is_ok() {
                    for (topic, n) in &by_topic {
                        metrics.events.with_label_values(&[topic]).inc_by(*n);
                    }
                }
                settle(subs, outcome, &metrics);
            });
        }
    }
    false
}

/// The idempotent producer's flush. While the producer's own queue is full
/// this waits (its messages expire after the delivery timeout if Kafka stays
/// away); meanwhile the bounded buffer fills and the intake answers 503.
async fn pipelined(
    producer: &EventProducer,
    outgoing: Vec<Outgoing>,
    subs: Vec<Submission>,
    metrics: &BatchMetrics,
    in_flight: &mut JoinSet<()>,
) {
    let mut acks = Vec::with_capacity(outgoing.len());
    for msg in &outgoing {
        match producer.enqueue_waiting(msg).await {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                // Whatever was enqueued may still be written: a resend can
                // duplicate, never lose.
                settle(
                    subs,
                    Err(FlushError::NotAcknowledged(e.to_string())),
                    metrics,
                );
                return;
            }
        }
    }
    let metrics = metrics.clone();
    let by_topic: Vec<(String, u64)> = count_by_topic(&outgoing);
    in_flight.spawn(async move {
        match try_join_all(acks).await {
            Ok(_) => {
                for (topic, n) in &by_topic {
                    metrics.events.with_label_values(&[topic]).inc_by(*n);
                }
                settle(subs, Ok(()), &metrics);
            }
            Err(e) => {
                tracing::warn!(error = %e, "flush not acknowledged");
                settle(
                    subs,
                    Err(FlushError::NotAcknowledged(e.to_string())),
                    &metrics,
                );
            }
        }
    });
}

fn settle(subs: Vec<Submission>, outcome: Result<(), FlushError>, metrics: &BatchMetrics) {
    metrics
        .flushes
        .with_label_values(&[if outcome.is_ok() {
            "acknowledged"
        } else {
            "failed"
        }])
        .inc();
    for sub in subs {
        // The submitter may have gone (client disconnected); nothing to tell.
        let _ = sub.done.send(outcome.clone());
    }
}

fn count_by_topic(out: &[Outgoing]) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for o in out {
        match counts.iter_mut().find(|(t, _)| *t == o.topic) {
            Some((_, n)) => *n += 1,
            None => counts.push((o.topic.clone(), 1)),
        }
    }
    counts
}

/// Encodes events for their topics (deploys and builds first).
pub fn encode(
    topics: &TopicsConfig,
    events: &Events,
) -> Result<Vec<Outgoing>, selfheal_schemas::Error> {
    let mut out = Vec::with_capacity(events.len());
    for e in &events.deploys {
        out.push(Outgoing::event(&topics.deploys, e)?);
    }
    for e in &events.builds {
        out.push(Outgoing::event(&topics.builds, e)?);
    }
    for e in &events.traffic {
        out.push(Outgoing::event(&topics.traffic, e)?);
    }
    for e in &events.signatures {
        out.push(Outgoing::event(&topics.signatures, e)?);
    }
    for e in &events.latency {
        out.push(Outgoing::event(&topics.latency, e)?);
    }
    for e in &events.gauges {
        out.push(Outgoing::event(&topics.gauges, e)?);
    }
    Ok(out)
}
