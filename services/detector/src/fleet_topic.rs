//! The fleet topic (`topics.detector_fleet`) on Kafka: every detector
//! instance reads all of its partitions, outside the consumer group, and
//! writes its own summaries there inside its transactions (see
//! [`crate::exactly_once`]). The records are [`FleetSummary`] as JSON (like
//! the changelog's: an internal topic, not part of the Avro contract), keyed
//! by instance so one instance's summaries are read in the order written.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use selfheal_common::kafka::client_config;
use selfheal_common::{Config, Error, Result};

use crate::fleet::FleetSummary;
use crate::NAME;

/// A name for this detector instance, unique per process start:
/// `<group>.<host>.<pid>.<start ms>.<n>` (`$HOSTNAME`, e.g. the pod name;
/// several instances may run in one process, e.g. in tests). It is also the
/// instance's `transactional.id`, which must not be shared by two live
/// instances (containers often all run as pid 1): they would fence each other.
pub fn instance_id(group: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    format!(
        "{group}.{host}.{}.{}.{}",
        std::process::id(),
        selfheal_common::wall_clock_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Encodes a summary for the topic.
pub fn encode(summary: &FleetSummary) -> Result<Vec<u8>> {
    serde_json::to_vec(summary).map_err(Error::caused(NAME, "fleet summary"))
}

/// Reads every partition of the fleet topic from its beginning (the topic's
/// retention bounds that), `read_committed`: summaries of aborted
/// transactions are never seen, so the count deltas add up exactly.
pub struct FleetReader {
    consumer: BaseConsumer,
    topic: String,
    /// Records that did not decode since the last [`FleetReader::take_undecodable`].
    undecodable: u64,
}

impl FleetReader {
    /// Assigns every partition of `topics.detector_fleet` from the beginning.
    pub fn open(config: &Config, instance: &str) -> Result<Self> {
        let topic = config.topics.detector_fleet.clone();
        let err = |operation: &'static str| move |source| Error::Kafka { operation, source };
        let mut cc = client_config(&config.kafka)?;
        // librdkafka wants a group id even for manual assignment; this one
        // is per instance and nothing is ever committed under it.
        cc.set("group.id", format!("{instance}.fleet"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed");
        let consumer: BaseConsumer = cc.create().map_err(err("create fleet consumer"))?;
        // Right after creation the topic's metadata may not list it yet.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut tpl = TopicPartitionList::new();
        while tpl.count() == 0 {
            let md = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map_err(err("fleet topic metadata"))?;
            for t in md.topics() {
                for p in t.partitions() {
                    tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)
                        .map_err(err("assign fleet topic"))?;
                }
            }
            if tpl.count() == 0 {
                if Instant::now() > deadline {
                    return Err(Error::Stage {
                        stage: NAME,
                        message: format!(
                            "fleet topic `{topic}` has no partitions (does it exist? topics.create creates it)"
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        consumer.assign(&tpl).map_err(err("assign fleet topic"))?;
        Ok(Self {
            consumer,
            topic,
            undecodable: 0,
        })
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Reads up to the end of every partition as of the call (or until
    /// `timeout`: an open transaction of a crashed instance can hold
    /// `read_committed` readers back until it times out; the rest is then
    /// read as the detector runs). Calls `apply` on every summary.
    pub fn catch_up(
        &mut self,
        timeout: Duration,
        mut apply: impl FnMut(FleetSummary),
    ) -> Result<usize> {
        let err = |operation: &'static str| move |source| Error::Kafka { operation, source };
        let started = Instant::now();
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        let assignment = self.consumer.assignment().map_err(err("assignment"))?;
        for e in assignment.elements() {
            // Right after topic creation a partition may lack a leader briefly.
            let (low, high) = loop {
                match self.consumer.fetch_watermarks(
                    &self.topic,
                    e.partition(),
                    Duration::from_secs(5),
                ) {
                    Ok(w) => break w,
                    Err(_) if started.elapsed() < timeout => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(err("fleet watermarks")(e)),
                }
            };
            if high > low {
                ends.insert(e.partition(), high);
            }
        }
        let mut read = 0;
        while !ends.is_empty() {
            if started.elapsed() > timeout {
                tracing::warn!(topic = %self.topic, partitions = ?ends.keys().collect::<Vec<_>>(),
                    "fleet topic not read to its end in time; the rest is read while running");
                break;
            }
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    if let Some(s) = decode(&m, &mut self.undecodable) {
                        apply(s);
                        read += 1;
                    }
                    if ends
                        .get(&m.partition())
                        .is_some_and(|end| m.offset() + 1 >= *end)
                    {
                        ends.remove(&m.partition());
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "fleet topic read error"),
                None => {
                    // Transaction markers take offsets but are never delivered.
                    let pos = self.consumer.position().map_err(err("position"))?;
                    for e in pos.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            if ends.get(&e.partition()).is_some_and(|end| o >= *end) {
                                ends.remove(&e.partition());
                            }
                        }
                    }
                }
            }
        }
        Ok(read)
    }

    /// The summaries already fetched, without waiting (at most `max`).
    pub fn poll_ready(&mut self, max: usize) -> Vec<FleetSummary> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.consumer.poll(Duration::ZERO) {
                Some(Ok(m)) => out.extend(decode(&m, &mut self.undecodable)),
                Some(Err(e)) => tracing::warn!(error = %e, "fleet topic read error"),
                None => break,
            }
        }
        out
    }

    /// How many records did not decode since the last call (for a metric).
    pub fn take_undecodable(&mut self) -> u64 {
        std::mem::take(&mut self.undecodable)
    }
}

/// Decodes one record. An undecodable one (another version's, or garbage)
/// cannot be applied: it is logged as an error and counted, so the loss of
/// fleet evidence is visible, and the reader goes on.
fn decode(
    m: &rdkafka::message::BorrowedMessage<'_>,
    undecodable: &mut u64,
) -> Option<FleetSummary> {
    let Some(payload) = m.payload() else {
        *undecodable += 1;
        tracing::error!(
            topic = m.topic(),
            partition = m.partition(),
            offset = m.offset(),
            "fleet summary without a payload not applied"
        );
        return None;
    };
    match serde_json::from_slice::<FleetSummary>(payload) {
        Ok(s) => Some(s),
        Err(e) => {
            *undecodable += 1;
            tracing::error!(topic = m.topic(), partition = m.partition(), offset = m.offset(),
                bytes = payload.len(), error = %e, "undecodable fleet summary not applied");
            None
        }
    }
}
