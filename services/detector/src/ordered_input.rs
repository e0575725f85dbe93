//! The exactly-once loop's input, in event-time order (adapter): the
//! consumer's records go into [`crate::merge`]'s per-partition buffers and
//! come out in the order `selfheal backtest` processes them. Only what was
//! handed to the core counts as consumed: the offsets committed with a
//! transaction are those after the last record *processed* per partition, so
//! buffered records are read again after a crash, never lost.
//!
//! A partition's buffer above [`Limits::buffered`] pauses its fetching, so a
//! topic whose records lie far ahead in event time costs bounded memory.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use selfheal_common::config::TopicsConfig;
use selfheal_common::{Error, Result};
use selfheal_schemas::AnyEvent;

use crate::merge::{Limits, Merge, PartId, Skip};

/// One input record and what its payload decodes to.
pub struct Input {
    /// The record.
    pub msg: OwnedMessage,
    /// The event, or why the payload does not decode.
    pub event: std::result::Result<AnyEvent, String>,
}

/// The input topics in the order one event minute is processed (the
/// backtest's: deploys and builds, then the traffic and latency that rate
/// the minute, gauges, then the counts judged against them).
fn ranked(t: &TopicsConfig) -> Vec<String> {
    [
        &t.deploys,
        &t.builds,
        &t.traffic,
        &t.latency,
        &t.gauges,
        &t.signatures,
    ]
    .into_iter()
    .cloned()
    .collect()
}

/// The ordered input of one consumer.
pub struct OrderedInput {
    merge: Merge<Input>,
    /// Topic names by rank.
    topics: Vec<String>,
    /// Next offset the consumer will deliver, per partition (from the
    /// committed offset at assignment, then from each record fetched).
    fetched: BTreeMap<PartId, i64>,
    /// Offset after the last record handed to the core, per partition: what
    /// the next transaction commits.
    processed: BTreeMap<PartId, i64>,
    /// The offsets the last transaction committed.
    committed: BTreeMap<PartId, i64>,
    paused: BTreeSet<PartId>,
    passed_idle: IntCounter,
}

fn kafka_err(operation: &'static str) -> impl Fn(rdkafka::error::KafkaError) -> Error {
    move |source| Error::Kafka { operation, source }
}

impl OrderedInput {
    /// Ordered input over `topics`' detector inputs; `passed_idle` counts
    /// partitions passed over after their limit.
    pub fn new(topics: &TopicsConfig, limits: Limits, passed_idle: IntCounter) -> Self {
        Self {
            merge: Merge::new(limits),
            topics: ranked(topics),
            fetched: BTreeMap::new(),
            processed: BTreeMap::new(),
            committed: BTreeMap::new(),
            paused: BTreeSet::new(),
            passed_idle,
        }
    }

    fn part(&self, topic: &str, partition: i32) -> Option<PartId> {
        let rank = self.topics.iter().position(|t| t == topic)?;
        Some(PartId {
            rank: u8::try_from(rank).expect("six topics"),
            partition,
        })
    }

    fn topic(&self, part: PartId) -> &str {
        &self.topics[usize::from(part.rank)]
    }

    /// Makes the consumer's current assignment the merged set. New
    /// partitions learn their committed offsets (so a caught-up partition is
    /// known as such before anything is fetched); revoked ones drop their
    /// buffers and positions.
    pub fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        assignment: &TopicPartitionList,
        timeout: Duration,
    ) -> Result<()> {
        let parts: BTreeSet<PartId> = assignment
            .elements()
            .iter()
            .filter_map(|e| self.part(e.topic(), e.partition()))
            .collect();
        self.fetched.retain(|p, _| parts.contains(p));
        self.processed.retain(|p, _| parts.contains(p));
        self.paused.retain(|p| parts.contains(p));
        let new: Vec<PartId> = parts
            .iter()
            .copied()
            .filter(|p| !self.merge.parts().any(|q| q == *p))
            .collect();
        self.merge.assign(parts.iter().copied(), Instant::now());
        if new.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in &new {
            tpl.add_partition(self.topic(*p), p.partition);
        }
        let committed = consumer
            .committed_offsets(tpl, timeout)
            .map_err(kafka_err("committed offsets"))?;
        for e in committed.elements() {
            if let (Some(p), Offset::Offset(o)) = (self.part(e.topic(), e.partition()), e.offset())
            {
                self.fetched.insert(p, o);
            }
        }
        Ok(())
    }

    /// Buffers records the consumer delivered (those of partitions no longer
    /// assigned are dropped: their new owner reads them again), pausing
    /// partitions whose buffer is full.
    pub fn push<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        polled: Vec<OwnedMessage>,
    ) -> Result<()> {
        let now = Instant::now();
        for msg in polled {
            let Some(part) = self.part(msg.topic(), msg.partition()) else {
                continue;
            };
            // A registry schema id first seen here is looked up before
            // decoding; an unreachable registry stops the loop (nothing of
            // this batch is committed, so nothing is lost).
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.block_on(selfheal_common::schema_registry::resolve_id_of(
                    msg.payload().unwrap_or_default(),
                ))?;
            }
            let event = selfheal_schemas::decode_any(msg.payload().unwrap_or_default())
                .map_err(|e| format!("undecodable: {e}"));
            let time = event.as_ref().ok().and_then(AnyEvent::input_time_ms);
            let offset = msg.offset();
            if let Some(expected) = self.fetched.get(&part).filter(|n| offset > **n) {
                // Inputs are neither compacted nor transactional: a gap means
                // records the consumer skipped (say so; nothing else would).
                tracing::warn!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    expected,
                    got = offset,
                    "input offsets skipped: records between them were not delivered"
                );
            }
            if self
                .merge
                .push(part, offset, time, Input { msg, event }, now)
            {
                self.fetched.insert(part, offset + 1);
            }
        }
        let full: Vec<PartId> = self
            .merge
            .parts()
            .filter(|p| !self.paused.contains(p))
            .filter(|p| self.merge.buffered(*p) >= self.merge.limits().buffered)
            .collect();
        if !full.is_empty() {
            consumer
                .pause(&self.list(&full))
                .map_err(kafka_err("pause"))?;
            self.paused.extend(full);
        }
        Ok(())
    }

    /// Up to `max` records in event-time order, as far as no empty partition
    /// holds them back; resumes partitions that drained.
    pub fn take<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        max: usize,
    ) -> Result<Vec<Input>> {
        let mut out = Vec::new();
        let now = Instant::now();
        // The application positions, read once per call and only if a
        // partition is empty (a local read of every assigned partition).
        let positions = std::cell::OnceCell::new();
        while out.len() < max {
            let (topics, fetched) = (&self.topics, &self.fetched);
            let skip = |p: PartId| {
                let topic = &topics[usize::from(p.rank)];
                let position = positions
                    .get_or_init(|| app_positions(consumer))
                    .get(&(topic.clone(), p.partition))
                    .copied();
                let next = match (fetched.get(&p).copied(), position) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                standing(consumer, topic, p.partition, next)
            };
            let Some(popped) = self.merge.pop(now, skip) else {
                break;
            };
            for p in &popped.passed_idle {
                self.passed_idle.inc();
                tracing::warn!(
                    topic = self.topic(*p),
                    partition = p.partition,
                    "input partition passed over: it was empty and not known to be caught up \
                     for its limit; its next records may count as late"
                );
            }
            self.processed.insert(popped.part, popped.offset + 1);
            out.push(popped.item);
        }
        let drained: Vec<PartId> = self
            .paused
            .iter()
            .copied()
            .filter(|p| self.merge.buffered(*p) <= self.merge.limits().buffered / 2)
            .collect();
        if !drained.is_empty() {
            consumer
                .resume(&self.list(&drained))
                .map_err(kafka_err("resume"))?;
            for p in drained {
                self.paused.remove(&p);
            }
        }
        Ok(out)
    }

    /// The offsets to commit with the next transaction: after the last
    /// record processed, per partition that processed one; for a partition
    /// with nothing buffered, the consumer's position when it is further (it
    /// stepped past a transaction marker, which no record carries: without
    /// it the committed offset would stay one behind the log end, and the
    /// group would show lag forever). The flag says whether any offset moved
    /// since the last [`OrderedInput::committed`], so that markers alone
    /// still get committed.
    pub fn offsets<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(TopicPartitionList, bool)> {
        let mut next = self.processed.clone();
        for ((topic, partition), position) in app_positions(consumer) {
            let Some(p) = self.part(&topic, partition) else {
                continue;
            };
            if self.merge.buffered(p) == 0 && next.get(&p).is_none_or(|o| *o < position) {
                next.insert(p, position);
            }
        }
        let moved = next.iter().any(|(p, o)| self.committed.get(p) != Some(o));
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &next {
            tpl.add_partition_offset(self.topic(*p), p.partition, Offset::Offset(*o))
                .map_err(kafka_err("offsets to commit"))?;
        }
        Ok((tpl, moved))
    }

    /// Notes that `offsets` were committed.
    pub fn committed(&mut self, offsets: &TopicPartitionList) {
        for e in offsets.elements() {
            if let (Some(p), Offset::Offset(o)) = (self.part(e.topic(), e.partition()), e.offset())
            {
                self.committed.insert(p, o);
            }
        }
    }

    fn list(&self, parts: &[PartId]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            tpl.add_partition(self.topic(*p), p.partition);
        }
        tpl
    }
}

/// How an empty partition stands: caught up when its next offset (`next`,
/// or the log start without a committed offset, as `auto.offset.reset =
/// earliest` starts) reached the log end librdkafka last saw in a fetch
/// response (a local read, no broker round trip).
fn standing<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    next: Option<i64>,
) -> Skip {
    let Some((low, high)) = cached_watermarks(consumer, topic, partition) else {
        return Skip::Unknown;
    };
    if next.unwrap_or(low) >= high {
        Skip::CaughtUp
    } else {
        Skip::Lagging
    }
}

/// The application's next offset per assigned partition, as librdkafka
/// keeps it. Unlike the offset after the last record fetched, it steps past
/// a transaction's commit marker (a record the application never sees) once
/// the fetch reached it: with a transactional writer (the intake's
/// `ingest.transactional`) the last record is followed by a marker, and the
/// log end would otherwise stay one ahead, so a caught-up partition would
/// look lagging.
fn app_positions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
) -> std::collections::HashMap<(String, i32), i64> {
    let Ok(tpl) = consumer.position() else {
        return std::collections::HashMap::new();
    };
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

/// The low and high watermarks librdkafka cached for a partition from its
/// last fetch response, without asking the broker; `None` before the first.
fn cached_watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: `rd_kafka_get_watermark_offsets` only reads librdkafka's
    // cache under its own locks; the client pointer is alive for the
    // borrow of `consumer`, and the out-pointers are valid locals.
    // rust-rdkafka exposes only the broker round trip (`fetch_watermarks`),
    // too slow to ask per empty partition per batch.
    #[allow(unsafe_code)]
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        && low >= 0
        && high >= 0)
        .then_some((low, high))
}
