//! The stage consumer every Kafka-fed service runs (triage, fixer; the
//! detector without exactly-once), on the one delivery loop ([`crate::delivery`]).
//!
//! For each message: decode → [`Stage::handle`] → produce the outputs → and only
//! when every output has been acknowledged, store the message's offset for the
//! next commit. Outputs of several messages are in flight at once (up to
//! `kafka.max_in_flight`), but offsets are stored strictly in consumption order,
//! so a crash replays from the oldest unacknowledged message: duplicates are
//! possible, losses are not.
//!
//! Undecodable messages and inputs the stage rejects are written to the DLQ topic
//! with the reason, and the stream goes on. A delivery failure is not skipped: the
//! loop stops with an error so the process restarts from the last stored offset.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Statistics};
use selfheal_schemas::{AnyEvent, DeadLetter};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::delivery::{self, Handler, Settlement};
use crate::kafka::{client_config, EventProducer, Outgoing};
use crate::metrics::StageMetrics;
use crate::{wall_clock_ms, Error, Result};

/// Where a message came from, for the stage and for dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// Why a stage could not process an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// The input is valid Avro but unusable (e.g. violates an invariant); it goes to
    /// the DLQ and the stream continues.
    #[error("rejected input: {0}")]
    Rejected(String),
    /// Processing cannot continue; the service stops without storing the offset.
    #[error("fatal: {0}")]
    Fatal(String),
}

/// A service's pure core, as seen by the consumer loop.
///
/// Implementations are synchronous and do no IO: they map one input event to the
/// events to publish. State lives inside the stage.
pub trait Stage: Send + 'static {
    /// The service name (`detector`, `triage` …), used in metrics and dead letters.
    fn name(&self) -> &'static str;

    /// Handles one decoded input and returns the messages to produce.
    fn handle(&mut self, event: AnyEvent, meta: &MessageMeta) -> Result<Vec<Outgoing>, StageError>;
}

/// What one consumer reads and where it dead-letters.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumer group id.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Dead-letter topic.
    pub dlq_topic: String,
}

/// Runs the consume loop until `shutdown` is cancelled or a fatal error occurs:
/// [`crate::delivery::run`] with the stage as its handler, at least once.
///
/// Shutdown order: stop fetching, wait for in-flight outputs to be acknowledged and
/// store their offsets, commit synchronously, then close the consumer (bounded by
/// `kafka.close_timeout_ms`, because librdkafka's close can hang).
pub async fn run<S: Stage>(
    config: &Config,
    spec: ConsumerSpec,
    stage: S,
    producer: EventProducer,
    metrics: StageMetrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut handler = StageHandler {
        stage,
        spec: spec.clone(),
        producer,
        metrics: metrics.clone(),
        max_in_flight: config.kafka.max_in_flight.max(1),
    };
    delivery::consume(config, &spec, metrics, &mut handler, shutdown).await
}

/// A [`Stage`] as a delivery [`Handler`]: one message, one settlement, which
/// resolves once every output of the message is acknowledged.
struct StageHandler<S> {
    stage: S,
    spec: ConsumerSpec,
    producer: EventProducer,
    metrics: StageMetrics,
    max_in_flight: usize,
}

impl<S: Stage> Handler for StageHandler<S> {
    fn name(&self) -> &'static str {
        self.stage.name()
    }

    fn max_pending(&self) -> usize {
        self.max_in_flight
    }

    async fn accept(&mut self, msg: &BorrowedMessage<'_>) -> Result<Option<Settlement>> {
        // An id first seen here is looked up before decoding; an unreachable
        // registry stops the loop, nothing is stored.
        crate::schema_registry::resolve_id_of(msg.payload().unwrap_or_default()).await?;
        let outputs = process(&mut self.stage, msg, &self.spec, &self.metrics)?;
        let meta = meta_of(msg);
        let acks = enqueue_all(&self.producer, &outputs, &self.metrics).await?;
        Ok(Some(Box::pin(async move {
            try_join_all(acks).await?;
            Ok(vec![meta])
        })))
    }
}

/// A group consumer whose librdkafka statistics feed the lag gauge.
pub type GroupConsumer = StreamConsumer<LagContext>;

/// librdkafka's statistics (every `statistics.interval.ms`, default here
/// 10 s; `kafka.client` may override it) → `consumer_lag_messages{topic}`.
pub struct LagContext {
    metrics: Option<StageMetrics>,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        let Some(metrics) = &self.metrics else { return };
        for (topic, t) in &statistics.topics {
            // -1: a partition this instance does not own (or no position yet).
            let lag: i64 = t
                .partitions
                .iter()
                .filter(|(p, _)| **p >= 0)
                .map(|(_, p)| p.consumer_lag)
                .filter(|l| *l >= 0)
                .sum();
            metrics.set_lag(topic, lag);
        }
    }
}

impl ConsumerContext for LagContext {}

impl LagContext {
    /// A context feeding `metrics` (none: statistics are ignored).
    pub fn new(metrics: Option<StageMetrics>) -> Self {
        Self { metrics }
    }
}

/// Creates a group consumer for `spec` with at-least-once settings: offsets are
/// stored by hand ([`crate::delivery::AtLeastOnce`]) and auto-committed, reads are `read_committed`.
/// With `metrics`, its statistics set the consumer-lag gauge.
pub fn create_consumer(
    config: &Config,
    spec: &ConsumerSpec,
    metrics: Option<StageMetrics>,
) -> Result<GroupConsumer> {
    let mut cc = rdkafka::ClientConfig::new();
    cc.set("group.id", &spec.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        // Offsets are stored by hand, only after outputs are acknowledged.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", "10000");
    for (k, v) in client_config(&config.kafka)?.config_map() {
        cc.set(k, v);
    }
    cc.create_with_context(LagContext { metrics })
        .map_err(|source| Error::Kafka {
            operation: "create consumer",
            source,
        })
}

/// Where `msg` came from.
pub fn meta_of(msg: &BorrowedMessage<'_>) -> MessageMeta {
    MessageMeta {
        topic: msg.topic().to_owned(),
        partition: msg.partition(),
        offset: msg.offset(),
    }
}

/// Decodes and handles one message; poison becomes a dead letter.
fn process<S: Stage>(
    stage: &mut S,
    msg: &BorrowedMessage<'_>,
    spec: &ConsumerSpec,
    metrics: &StageMetrics,
) -> Result<Vec<Outgoing>> {
    let meta = meta_of(msg);
    let stage_name = stage.name();
    metrics.consumed(&meta.topic);
    let payload = msg.payload().unwrap_or_default();
    let dead = |reason: String, kind: &str| -> Result<Vec<Outgoing>> {
        tracing::warn!(stage = stage_name, topic = %meta.topic, partition = meta.partition,
            offset = meta.offset, %reason, "dead-lettering message");
        metrics.dead_lettered(kind);
        let letter = DeadLetter {
            source_topic: meta.topic.clone(),
            partition: meta.partition,
            offset: meta.offset,
            key: msg.key().map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            reason,
            error_kind: kind.to_owned(),
            stage: stage_name.to_owned(),
            // The record's own timestamp keeps dead letters replayable; the wall
            // clock only when the record has none.
            failed_at_ms: msg.timestamp().to_millis().unwrap_or_else(wall_clock_ms),
        };
        Ok(vec![Outgoing::event(&spec.dlq_topic, &letter).map_err(
            Error::caused(stage_name, "cannot encode dead letter"),
        )?])
    };
    if payload.is_empty() {
        return dead(
            "empty payload (tombstone or null value)".to_owned(),
            "poison",
        );
    }
    let event = match selfheal_schemas::decode_any(payload) {
        Ok(event) => event,
        Err(e) => return dead(format!("undecodable: {e}"), "poison"),
    };
    match stage.handle(event, &meta) {
        Ok(outputs) => Ok(outputs),
        Err(StageError::Rejected(reason)) => dead(reason, "rejected"),
        Err(StageError::Fatal(message)) => Err(Error::Stage {
            stage: stage.name(),
            message,
        }),
    }
}

/// Hands every output to the producer, waiting (not failing) while its local
/// queue is full, and returns the acknowledgement futures.
async fn enqueue_all(
    producer: &EventProducer,
    outputs: &[Outgoing],
    metrics: &StageMetrics,
) -> Result<VecDeque<impl Future<Output = Result<()>> + Send + 'static>> {
    let mut acks = VecDeque::with_capacity(outputs.len());
    for out in outputs {
        acks.push_back(producer.enqueue_waiting(out).await?);
        metrics.produced_outgoing(out);
    }
    Ok(acks)
}

/// Closes `consumer` on a separate thread, abandoning it after `timeout`.
///
/// Dropping a group consumer runs librdkafka's `consumer_close`, which has been
/// seen to hang forever (rust-rdkafka #509). The process must still exit, and the
/// offsets were committed synchronously before this point, so nothing is lost by
/// walking away from a stuck close.
pub async fn close_consumer(consumer: GroupConsumer, timeout: Duration, stage: &'static str) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("{stage}-consumer-close"))
        .spawn(move || {
            consumer.unsubscribe();
            drop(consumer);
            let _ = tx.send(());
        });
    if spawned.is_err() {
        tracing::warn!(stage, "could not spawn the consumer-close thread");
        return;
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(_) => tracing::info!(stage, "consumer closed"),
        Err(_) => tracing::warn!(
            stage,
            timeout_ms = timeout.as_millis() as u64,
            "consumer close did not finish in time; abandoning it (offsets were already committed)"
        ),
    }
}

/// A service's pure core seen as a function from input events to output events
/// of one type; [`CoreStage`] adapts it to the consumer loop.
pub trait Core: Send + 'static {
    /// The event type this core emits.
    type Output: selfheal_schemas::Event;

    /// Feeds one event; returns the events to publish.
    fn on_event(&mut self, event: &AnyEvent) -> Vec<Self::Output>;

    /// Checks an event read from `topic` before [`Core::on_event`]: an `Err`
    /// (the reason) dead-letters it as rejected instead. Accepts everything
    /// by default.
    fn check(&self, topic: &str, event: &AnyEvent) -> Result<(), String> {
        let _ = (topic, event);
        Ok(())
    }

    /// A one-line summary of an output for the log.
    fn describe(output: &Self::Output) -> String;
}

/// Adapts a [`Core`] to a [`Stage`]: outputs go to one topic, keyed by service.
#[derive(Debug)]
pub struct CoreStage<C> {
    name: &'static str,
    core: C,
    output_topic: String,
}

impl<C: Core> CoreStage<C> {
    /// Wraps `core`, publishing its outputs to `output_topic`.
    pub fn new(name: &'static str, core: C, output_topic: impl Into<String>) -> Self {
        Self {
            name,
            core,
            output_topic: output_topic.into(),
        }
    }
}

impl<C: Core> Stage for CoreStage<C> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn handle(&mut self, event: AnyEvent, meta: &MessageMeta) -> Result<Vec<Outgoing>, StageError> {
        self.core
            .check(&meta.topic, &event)
            .map_err(StageError::Rejected)?;
        self.core
            .on_event(&event)
            .iter()
            .map(|out| {
                tracing::info!(
                    stage = self.name,
                    event = <C::Output as selfheal_schemas::Event>::NAME,
                    key = selfheal_schemas::Event::key(out),
                    "{}",
                    C::describe(out)
                );
                Outgoing::event(&self.output_topic, out).map_err(|e| {
                    StageError::Fatal(format!(
                        "cannot encode {}: {e}",
                        <C::Output as selfheal_schemas::Event>::NAME
                    ))
                })
            })
            .collect()
    }
}
