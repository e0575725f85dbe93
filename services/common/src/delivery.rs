//! The one at-least-once delivery loop every async Kafka consumer runs: the
//! stage consumer of triage and fixer ([`crate::consumer`]) and ingest's raw
//! topic. What differs between them is a [`Handler`] (what a message turns
//! into); the rule that makes delivery safe is written once, here:
//!
//! - a handler turns messages into a [`Settlement`]: a future that resolves
//!   with the messages' positions once *every* output they caused is
//!   acknowledged by Kafka (or fails);
//! - settlements resolve in any order, but are settled strictly in
//!   consumption order, and only a settled message's offset reaches the
//!   [`CommitPolicy`]. A crash replays from the oldest unsettled message:
//!   duplicates are possible, losses are not;
//! - a failed settlement stops the loop with its error and nothing after it
//!   is stored, so the restart re-reads it instead of skipping it;
//! - at shutdown the loop stops fetching, hands over what the handler holds,
//!   drains every settlement in flight (bounded by the delivery timeout),
//!   commits synchronously and closes the consumer (bounded too: librdkafka's
//!   close can hang).
//!
//! The detector's exactly-once adapter (`services/detector/src/exactly_once.rs`)
//! is the other commit policy in the code base: its outputs and offsets are one
//! Kafka transaction per batch, on librdkafka's blocking transactional API, so
//! it runs its own blocking loop rather than this one.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::BorrowedMessage;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, KafkaConfig};
use crate::consumer::{close_consumer, create_consumer, ConsumerSpec, GroupConsumer, MessageMeta};
use crate::metrics::StageMetrics;
use crate::{Error, Result};

/// Resolves with the positions of the messages it covers once all their
/// outputs are acknowledged; an `Err` stops the loop.
pub type Settlement = Pin<Box<dyn Future<Output = Result<Vec<MessageMeta>>> + Send>>;

/// What a consumer does with its messages.
pub trait Handler: Send {
    /// The service or input name, for logs.
    fn name(&self) -> &'static str;

    /// Most settlements awaiting acknowledgement before fetching pauses.
    fn max_pending(&self) -> usize;

    /// Takes one message. Returns a settlement when outputs were handed to
    /// the producer; `None` when the handler holds the message for a batch
    /// (it is then covered by a later settlement, from this or [`Handler::flush`]).
    /// An `Err` stops the loop; the message is not stored.
    fn accept(
        &mut self,
        msg: &BorrowedMessage<'_>,
    ) -> impl Future<Output = Result<Option<Settlement>>> + Send;

    /// When the messages the handler holds must be handed over; `None` when
    /// it holds none.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Hands over what the handler holds: at its deadline and at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<Option<Settlement>>> + Send {
        async { Ok(None) }
    }
}

/// What happens to the offsets of settled messages.
pub trait CommitPolicy: Send {
    /// `meta` is settled: all its outputs are acknowledged, and so are those
    /// of every message consumed before it.
    fn settled(&mut self, consumer: &GroupConsumer, meta: &MessageMeta);

    /// The loop ends: make what was settled durable.
    fn finish(&mut self, consumer: &GroupConsumer, name: &'static str);
}

/// At least once: settled offsets are stored for librdkafka's auto commit
/// (`enable.auto.offset.store = false`, see
/// [`crate::consumer::create_consumer`]) and committed synchronously at the end.
#[derive(Debug, Default, Clone, Copy)]
pub struct AtLeastOnce;

impl CommitPolicy for AtLeastOnce {
    fn settled(&mut self, consumer: &GroupConsumer, meta: &MessageMeta) {
        // Fails only when the partition was revoked meanwhile; its new owner
        // re-reads from the last commit, which is the at-least-once contract.
        if let Err(e) = consumer.store_offset(&meta.topic, meta.partition, meta.offset) {
            tracing::debug!(topic = %meta.topic, partition = meta.partition, offset = meta.offset,
                error = %e, "offset not stored");
        }
    }

    fn finish(&mut self, consumer: &GroupConsumer, name: &'static str) {
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            // NoOffset just means nothing new was stored since the last commit.
            tracing::debug!(name, error = %e, "final commit");
        }
    }
}

/// How long the loop's shutdown may take.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most time spent draining settlements in flight at shutdown.
    pub drain: Duration,
    /// Most time the consumer's close may take before it is abandoned.
    pub close: Duration,
}

impl Bounds {
    /// The drain waits one delivery timeout (and a second); the close
    /// `kafka.close_timeout_ms`.
    pub fn of(kafka: &KafkaConfig) -> Self {
        Self {
            drain: Duration::from_millis(kafka.delivery_timeout_ms + 1_000),
            close: Duration::from_millis(kafka.close_timeout_ms),
        }
    }
}

/// Creates the group consumer of `spec`, subscribes it to `spec.topics` and
/// runs the at-least-once loop on it with `handler` (what every async
/// consumer's start-up is).
pub async fn consume<H: Handler>(
    config: &Config,
    spec: &ConsumerSpec,
    metrics: StageMetrics,
    handler: &mut H,
    shutdown: CancellationToken,
) -> Result<()> {
    let consumer = create_consumer(config, spec, Some(metrics))?;
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|source| Error::Kafka {
        operation: "subscribe",
        source,
    })?;
    tracing::info!(consumer = handler.name(), group = %spec.group_id, topics = ?spec.topics, "consuming");
    run(
        consumer,
        handler,
        &mut AtLeastOnce,
        Bounds::of(&config.kafka),
        shutdown,
    )
    .await
}

/// Runs the loop on a subscribed `consumer` until `shutdown` or an error;
/// then drains, commits through `policy` and closes the consumer.
pub async fn run<H: Handler, P: CommitPolicy>(
    consumer: GroupConsumer,
    handler: &mut H,
    policy: &mut P,
    bounds: Bounds,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut pending: FuturesOrdered<Settlement> = FuturesOrdered::new();
    let mut outcome = fetch(&consumer, handler, policy, &mut pending, &shutdown).await;
    // What was read is still handed over: fewer duplicates after the restart.
    if outcome.is_ok() {
        outcome = handler.flush().await.map(|s| pending.extend(s));
    }
    drain(
        &consumer,
        handler.name(),
        policy,
        &mut pending,
        &mut outcome,
        bounds.drain,
    )
    .await;
    policy.finish(&consumer, handler.name());
    close_consumer(consumer, bounds.close, handler.name()).await;
    outcome
}

/// The fetch loop: until shutdown (`Ok`) or the first error.
async fn fetch<H: Handler, P: CommitPolicy>(
    consumer: &GroupConsumer,
    handler: &mut H,
    policy: &mut P,
    pending: &mut FuturesOrdered<Settlement>,
    shutdown: &CancellationToken,
) -> Result<()> {
    loop {
        let deadline = handler.deadline();
        let room = pending.len() < handler.max_pending().max(1);
        let handed = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            Some(done) = pending.next(), if !pending.is_empty() => {
                done?.iter().for_each(|m| policy.settled(consumer, m));
                continue;
            }
            _ = sleep_until(deadline), if deadline.is_some() => handler.flush().await?,
            received = consumer.recv(), if room => match received {
                Ok(msg) => handler.accept(&msg).await?,
                Err(e) => {
                    // Transport errors are reported here but librdkafka keeps
                    // retrying by itself; back off briefly and go on.
                    tracing::warn!(name = handler.name(), error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    None
                }
            },
        };
        pending.extend(handed);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Lets every settlement in flight resolve (within `limit`), settling them in
/// order while nothing failed; the first failure becomes the outcome.
async fn drain<P: CommitPolicy>(
    consumer: &GroupConsumer,
    name: &'static str,
    policy: &mut P,
    pending: &mut FuturesOrdered<Settlement>,
    outcome: &mut Result<()>,
    limit: Duration,
) {
    let drained = tokio::time::timeout(limit, async {
        while let Some(done) = pending.next().await {
            match done {
                Ok(metas) if outcome.is_ok() => {
                    metas.iter().for_each(|m| policy.settled(consumer, m))
                }
                Ok(_) => {}
                Err(e) => {
                    if outcome.is_ok() {
                        *outcome = Err(e);
                    }
                }
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            name,
            "outputs in flight not acknowledged before the drain deadline; their inputs will be re-read"
        );
    }
}
