//! The raw topic (`topics.logs_raw`) as a second input (adapter): JSON lines as
//! Vector or Fluent Bit write them, one record per line (a message may hold
//! several lines), in the interchange format of the HTTP intake.
//!
//! At least once, on the one delivery loop ([`selfheal_common::delivery`]): messages are gathered into
//! batches (up to [`BATCH_MESSAGES`] or one flush interval), a batch's records go
//! through the same pre-aggregation as HTTP requests, and its offsets are stored
//! only when the flush carrying them *and* its dead letters are acknowledged,
//! strictly in consumption order. Bad lines become DeadLetters (source topic,
//! partition, offset, the line's bytes, `line N: field F: reason`) and the stream
//! goes on. A failed delivery stops ingest (a restart re-reads from the last
//! commit) rather than skip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::message::{BorrowedMessage, Message};
use selfheal_common::consumer::{meta_of, ConsumerSpec, MessageMeta};
use selfheal_common::delivery::{self, Handler, Settlement};
use selfheal_common::kafka::{EventProducer, Outgoing};
use selfheal_common::metrics::StageMetrics;
use selfheal_common::scrub::scrub;
use selfheal_common::{wall_clock_ms, CancellationToken, Config, Error, Result};
use selfheal_schemas::DeadLetter;
use tokio::time::Instant;

use crate::batch::Batcher;
use crate::event_time::{ts_of, EventTimeLimits};
use crate::events::to_events;
use crate::normalize::Normalizer;
use crate::record::{parse_line, DefaultType, LineError, Record};

/// Most messages in one batch.
pub const BATCH_MESSAGES: usize = 5_000;
/// Most batches awaiting acknowledgement before fetching pauses.
const MAX_PENDING_BATCHES: usize = 4;

#[derive(Default)]
struct Batch {
    metas: Vec<MessageMeta>,
    records: Vec<Record>,
    dead: Vec<Outgoing>,
}

/// Consumes the raw topic until `shutdown`; then stops fetching, submits what it
/// holds, waits for the acknowledgements, commits and closes (the one delivery
/// loop, [`selfheal_common::delivery`]).
pub async fn run(
    config: Arc<Config>,
    batcher: Batcher,
    normalizer: Arc<Mutex<Normalizer>>,
    producer: EventProducer,
    metrics: StageMetrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let spec = ConsumerSpec {
        group_id: format!("{}.{}.raw", config.kafka.group_prefix, crate::NAME),
        topics: vec![config.topics.logs_raw.clone()],
        dlq_topic: config.topics.dlq.clone(),
    };
    let mut handler = RawHandler {
        batcher,
        normalizer,
        producer,
        metrics: metrics.clone(),
        dlq_topic: spec.dlq_topic.clone(),
        limits: EventTimeLimits::from_config(&config.ingest),
        linger: Duration::from_millis(config.ingest.flush_interval_ms.max(1)),
        batch: Batch::default(),
        deadline: None,
    };
    delivery::consume(&config, &spec, metrics, &mut handler, shutdown).await
}

/// Gathers raw messages into batches (up to [`BATCH_MESSAGES`], or one flush
/// interval after the batch's first message) and submits each to the batcher.
struct RawHandler {
    batcher: Batcher,
    normalizer: Arc<Mutex<Normalizer>>,
    producer: EventProducer,
    metrics: StageMetrics,
    dlq_topic: String,
    limits: EventTimeLimits,
    linger: Duration,
    batch: Batch,
    /// When the batch must go: one linger after its first message.
    deadline: Option<Instant>,
}

impl RawHandler {
    async fn submit_batch(&mut self) -> Result<Option<Settlement>> {
        self.deadline = None;
        if self.batch.metas.is_empty() {
            return Ok(None);
        }
        let batch = std::mem::take(&mut self.batch);
        submit(
            batch,
            self.batcher.clone(),
            self.normalizer.clone(),
            self.producer.clone(),
            self.metrics.clone(),
        )
        .await
        .map(Some)
    }
}

impl Handler for RawHandler {
    fn name(&self) -> &'static str {
        crate::NAME
    }

    fn max_pending(&self) -> usize {
        MAX_PENDING_BATCHES
    }

    async fn accept(&mut self, msg: &BorrowedMessage<'_>) -> Result<Option<Settlement>> {
        if self.batch.metas.is_empty() {
            self.deadline = Some(Instant::now() + self.linger);
        }
        add(
            &mut self.batch,
            msg,
            &self.dlq_topic,
            &self.limits,
            &self.metrics,
        )?;
        if self.batch.metas.len() >= BATCH_MESSAGES {
            return self.submit_batch().await;
        }
        Ok(None)
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    async fn flush(&mut self) -> Result<Option<Settlement>> {
        self.submit_batch().await
    }
}

/// Parses one message into the batch; bad lines become dead letters.
fn add(
    batch: &mut Batch,
    msg: &BorrowedMessage<'_>,
    dlq_topic: &str,
    limits: &EventTimeLimits,
    metrics: &StageMetrics,
) -> Result<()> {
    let meta = meta_of(msg);
    let now = wall_clock_ms();
    metrics.consumed(&meta.topic);
    let payload = msg.payload().unwrap_or_default();
    let failed_at_ms = msg.timestamp().to_millis().unwrap_or_else(wall_clock_ms);
    let mut dead = |line: &[u8], reason: String, kind: &str| -> Result<()> {
        tracing::warn!(service = crate::NAME, topic = %meta.topic, partition = meta.partition,
            offset = meta.offset, %reason, "dead-lettering raw line");
        metrics.dead_lettered(kind);
        let letter = DeadLetter {
            source_topic: meta.topic.clone(),
            partition: meta.partition,
            offset: meta.offset,
            key: msg.key().map(<[u8]>::to_vec),
            // Dead letters are read by operators: scrubbed like every sample
            // (an invalid UTF-8 payload is kept as its lossy text, scrubbed).
            payload: scrub(&String::from_utf8_lossy(line))
                .into_owned()
                .into_bytes(),
            reason,
            error_kind: kind.to_owned(),
            stage: crate::NAME.to_owned(),
            failed_at_ms,
        };
        let out = Outgoing::event(dlq_topic, &letter)
            .map_err(Error::caused(crate::NAME, "cannot encode dead letter"))?;
        batch.dead.push(out);
        Ok(())
    };
    match std::str::from_utf8(payload) {
        _ if payload.iter().all(u8::is_ascii_whitespace) => dead(
            payload,
            "empty payload (tombstone, null value or blank line)".to_owned(),
            "poison",
        )?,
        Err(e) => dead(
            payload,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            "poison",
        )?,
        Ok(text) => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = parse_line(line, i + 1, DefaultType::Log).and_then(|r| {
                    limits
                        .check(ts_of(&r), now)
                        .map(|()| r)
                        .map_err(|reason| LineError {
                            line: i + 1,
                            field: "ts".to_owned(),
                            reason,
                        })
                });
                match parsed {
                    Ok(r) => batch.records.push(r),
                    Err(e) => dead(line.as_bytes(), e.to_string(), "rejected")?,
                }
            }
        }
    }
    batch.metas.push(meta);
    Ok(())
}

/// Normalizes a batch, hands its dead letters to the producer and its events
/// to the batcher; the returned future resolves with the batch's offsets once
/// all of it is acknowledged.
async fn submit(
    batch: Batch,
    batcher: Batcher,
    normalizer: Arc<Mutex<Normalizer>>,
    producer: EventProducer,
    metrics: StageMetrics,
) -> Result<Settlement> {
    let not_acked =
        |e: crate::batch::FlushError| Error::caused(crate::NAME, "raw batch not written")(e);
    // Waits while the buffer is full: back-pressure, never a drop.
    let reservation = batcher
        .reserve(batch.records.len())
        .await
        .map_err(not_acked)?;
    let events = {
        let mut n = normalizer.lock().unwrap_or_else(|p| p.into_inner());
        to_events(&mut *n, batch.records)
    };
    let mut dead_acks = Vec::with_capacity(batch.dead.len());
    for out in &batch.dead {
        dead_acks.push(producer.enqueue_waiting(out).await?);
        metrics.produced(&out.topic);
    }
    let metas = batch.metas;
    Ok(Box::pin(async move {
        batcher
            .submit(events, reservation)
            .await
            .map_err(not_acked)?;
        try_join_all(dead_acks).await?;
        Ok(metas)
    }))
}
