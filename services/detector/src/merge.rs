//! Reading several input partitions in event-time order (Kafka Streams'
//! partition group, `max.task.idle.ms`).
//!
//! The detector reads six topics. A consumer hands their records over in
//! fetch order: over a backlog, whole stretches of one topic arrive before
//! another's, and what the core decides (and emits, which cannot be taken
//! back) would then depend on fetch timing. So the adapter buffers each
//! assigned partition here and hands the core the record with the smallest
//! [`Key`] among the partitions' heads, the order `selfheal backtest` feeds
//! its core in: by event minute, then deploys, builds, traffic, latency,
//! gauges and signatures, then partition and offset.
//!
//! A partition whose buffer is empty holds every other one back (its next
//! record may be the smallest), unless the caller says it may be passed over:
//! it is caught up with its log end, or it has been empty for too long (see
//! [`Skip`]). Over finished input, every partition is either buffered or at
//! its end, so the order is a function of the input alone: two runs, or a
//! run killed and restored from its committed offsets, process the same
//! sequence. Live, a partition that is caught up is passed over at once, so
//! fresh data waits for nothing.
//!
//! Pure: no clock (the caller passes `now`), no Kafka types.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::series::MINUTE_MS;

/// An input partition: the topic's rank in the processing order (see
/// [`Key`]) and the partition number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartId {
    /// The topic's place in the order records of one minute are processed.
    pub rank: u8,
    /// The partition number.
    pub partition: i32,
}

/// The processing order of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The record's event minute; `i64::MIN` for a record without an event
    /// time (undecodable or of the wrong type: dead-lettered at once).
    pub minute: i64,
    /// The topic's rank: within a minute, deploys and builds before the
    /// traffic that rates the minute, before the counts judged against it.
    pub rank: u8,
    /// Then partition and offset: a total, input-determined order.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

impl Key {
    /// The key of a record at `offset` of `part` with event time `time_ms`.
    pub fn new(part: PartId, offset: i64, time_ms: Option<i64>) -> Self {
        Self {
            minute: time_ms.map_or(i64::MIN, |t| t.div_euclid(MINUTE_MS)),
            rank: part.rank,
            partition: part.partition,
            offset,
        }
    }
}

/// Whether an empty partition may be passed over, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Its next offset is at its log end: nothing more to read now.
    CaughtUp,
    /// Records are known to be waiting at the broker: hold the others back,
    /// up to [`Limits::lagging`].
    Lagging,
    /// Not known (nothing fetched yet): hold the others back up to
    /// [`Limits::unknown`].
    Unknown,
}

/// How long an empty partition may hold the others back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// When its position is not known yet.
    pub unknown: Duration,
    /// When the broker has records it has not delivered (a slow fetch, an
    /// unavailable leader): a bound, so one stuck partition cannot stop
    /// detection for every service.
    pub lagging: Duration,
    /// How long a record waits for a caught-up empty partition: records
    /// written together (one intake flush to several topics) reach the
    /// consumer a fetch round apart, and the log end it knows for a
    /// partition is that old. So the smallest head is handed over only once
    /// it has been buffered this long, unless no partition is empty.
    pub caught_up: Duration,
    /// Records buffered per partition above which the caller should pause
    /// fetching it.
    pub buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Unknown lasts until the partition's first fetch response (well
        // under a second on a healthy broker); the bound only matters when
        // its leader is unreachable.
        Self {
            unknown: Duration::from_secs(10),
            lagging: Duration::from_secs(30),
            caught_up: Duration::from_millis(500),
            buffered: 1_000,
        }
    }
}

struct Part<T> {
    /// Buffered records, each with when it was buffered.
    queue: VecDeque<(Key, Instant, T)>,
    /// Next offset to accept (older deliveries are duplicates).
    next: Option<i64>,
    /// Since when the queue has been empty.
    empty_since: Option<Instant>,
    /// Whether it was already reported passed over in this empty spell.
    passed: bool,
}

/// A record handed to the core.
#[derive(Debug)]
pub struct Popped<T> {
    /// Its partition.
    pub part: PartId,
    /// Its offset.
    pub offset: i64,
    /// The record.
    pub item: T,
    /// Partitions passed over for it because they had been empty too long
    /// (not because they were caught up), each once per empty spell.
    pub passed_idle: Vec<PartId>,
}

/// Buffers of the assigned partitions, merged by [`Key`].
pub struct Merge<T> {
    parts: BTreeMap<PartId, Part<T>>,
    limits: Limits,
}

impl<T> Merge<T> {
    /// An empty merge with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            parts: BTreeMap::new(),
            limits,
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Makes `parts` the assigned set: new ones start empty (since `now`),
    /// gone ones are dropped with what they buffered (their new owner reads
    /// it again from the committed offset).
    pub fn assign(&mut self, parts: impl IntoIterator<Item = PartId>, now: Instant) {
        let wanted: BTreeMap<PartId, ()> = parts.into_iter().map(|p| (p, ())).collect();
        self.parts.retain(|p, _| wanted.contains_key(p));
        for p in wanted.into_keys() {
            self.parts.entry(p).or_insert_with(|| Part {
                queue: VecDeque::new(),
                next: None,
                empty_since: Some(now),
                passed: false,
            });
        }
    }

    /// The assigned partitions.
    pub fn parts(&self) -> impl Iterator<Item = PartId> + '_ {
        self.parts.keys().copied()
    }

    /// Buffers a record of `part`, delivered at `now`. Returns false (and
    /// drops it) when the partition is not assigned or the offset was
    /// already buffered (a re-delivery after a pause).
    pub fn push(
        &mut self,
        part: PartId,
        offset: i64,
        time_ms: Option<i64>,
        item: T,
        now: Instant,
    ) -> bool {
        let Some(p) = self.parts.get_mut(&part) else {
            return false;
        };
        if p.next.is_some_and(|n| offset < n) {
            return false;
        }
        p.next = Some(offset + 1);
        p.empty_since = None;
        p.passed = false;
        p.queue
            .push_back((Key::new(part, offset, time_ms), now, item));
        true
    }

    /// Records buffered for `part`.
    pub fn buffered(&self, part: PartId) -> usize {
        self.parts.get(&part).map_or(0, |p| p.queue.len())
    }

    /// Records buffered in all.
    pub fn len(&self) -> usize {
        self.parts.values().map(|p| p.queue.len()).sum()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next record in [`Key`] order, if no empty partition holds it back.
    /// `skip` says how an empty partition stands; `now` measures how long it
    /// has been empty.
    pub fn pop(&mut self, now: Instant, skip: impl Fn(PartId) -> Skip) -> Option<Popped<T>> {
        // The smallest head first: with nothing buffered, nobody is asked.
        let (key, since, id) = self
            .parts
            .iter()
            .filter_map(|(id, p)| p.queue.front().map(|(k, t, _)| (*k, *t, *id)))
            .min()?;
        let waited = now.saturating_duration_since(since);
        let mut idle_parts = Vec::new();
        for (&id, p) in &self.parts {
            if !p.queue.is_empty() {
                continue;
            }
            let idle = p
                .empty_since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
            match skip(id) {
                Skip::CaughtUp if waited >= self.limits.caught_up => {}
                Skip::Lagging if idle >= self.limits.lagging => idle_parts.push(id),
                Skip::Unknown if idle >= self.limits.unknown => idle_parts.push(id),
                Skip::CaughtUp | Skip::Lagging | Skip::Unknown => return None,
            }
        }
        let mut passed_idle = Vec::new();
        for i in idle_parts {
            let p = self.parts.get_mut(&i).expect("listed from the map");
            if !p.passed {
                p.passed = true;
                passed_idle.push(i);
            }
        }
        let p = self.parts.get_mut(&id).expect("chosen from the map");
        let (_, _, item) = p.queue.pop_front().expect("non-empty");
        if p.queue.is_empty() {
            p.empty_since = Some(now);
        }
        Some(Popped {
            part: id,
            offset: key.offset,
            item,
            passed_idle,
        })
    }
}

#[cfg(test)]
mod tests;
