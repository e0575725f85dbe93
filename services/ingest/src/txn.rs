//! One Kafka transaction per flush (adapter; `ingest.transactional`).
//!
//! Without it, a flush Kafka acknowledges only in part (a leader killed
//! mid-flush, a delivery timeout) leaves some of its records written while
//! every request in it is answered 503; the client's resend then counts
//! those twice. In a transaction the flush is all or nothing for
//! `read_committed` readers: commit, and every request in it is answered
//! 2xx; abort, and none of it is visible, so the 503 is exact and a resend
//! (with or without an `Idempotency-Key`) is counted once.
//!
//! The calls block (librdkafka's transactional API is synchronous), so the
//! batcher runs [`TxnWriter::write`] on a blocking thread, one flush at a
//! time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use selfheal_common::config::KafkaConfig;
use selfheal_common::kafka::{client_config, Outgoing};
use selfheal_common::{Error, Result};

/// Longest one transactional call (init, begin, commit, abort) waits.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Most time spent retrying a commit whose outcome is not known yet; the
/// broker aborts a transaction left open past `transaction.timeout.ms`.
const COMMIT_DEADLINE: Duration = Duration::from_secs(60);
/// The broker aborts a transaction left open this long (a crashed intake):
/// `read_committed` readers wait at most this for the records behind it. A
/// flush's transaction lasts milliseconds, so this is short.
const TRANSACTION_TIMEOUT_MS: &str = "15000";

/// A transactional producer that writes one flush per transaction.
pub struct TxnWriter {
    kafka: KafkaConfig,
    id_base: String,
    /// `None` until the first flush, and again after a producer had to be
    /// dropped: creating one waits for the transaction coordinator, which an
    /// intake started while Kafka is down must not do before it can answer.
    producer: Option<FutureProducer>,
}

impl std::fmt::Debug for TxnWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnWriter")
            .field("id_base", &self.id_base)
            .finish_non_exhaustive()
    }
}

fn kafka_err(operation: &'static str) -> impl Fn(KafkaError) -> Error {
    move |source| Error::Kafka { operation, source }
}

/// A `transactional.id` unique to this process and producer: each flush is
/// a transaction of its own, so no zombie needs fencing across restarts (a
/// crashed intake's open transaction expires after the transaction timeout).
fn unique_id(base: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{base}.{}.{}.{}",
        std::process::id(),
        selfheal_common::wall_clock_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn create(kafka: &KafkaConfig, id: &str) -> Result<FutureProducer> {
    let mut cc = client_config(kafka)?;
    cc.set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        // Transactions allow at most the transaction timeout for delivery.
        .set(
            "message.timeout.ms",
            kafka.delivery_timeout_ms.min(14_000).to_string(),
        );
    if cc.get("transaction.timeout.ms").is_none() {
        cc.set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
    }
    let producer: FutureProducer = cc.create().map_err(kafka_err("create producer"))?;
    // A flush waits for the coordinator no longer than for a delivery, so a
    // Kafka that is down is a 503 in `kafka.delivery_timeout_ms`.
    let wait = Duration::from_millis(kafka.delivery_timeout_ms).min(CALL_TIMEOUT);
    producer
        .init_transactions(wait)
        .map_err(kafka_err("init transactions"))?;
    Ok(producer)
}

impl TxnWriter {
    /// A writer whose producer is created (and its transactions
    /// initialized) by the first flush; the configuration is checked now.
    pub fn new(kafka: &KafkaConfig, id_base: &str) -> Result<Self> {
        client_config(kafka)?;
        Ok(Self {
            kafka: kafka.clone(),
            id_base: id_base.to_owned(),
            producer: None,
        })
    }

    /// Writes `msgs` in one transaction (blocking). `Ok` once it committed;
    /// `Err` once it was aborted or never began, so nothing of it is visible
    /// to `read_committed` readers.
    pub fn write(&mut self, msgs: &[Outgoing]) -> Result<()> {
        let producer = self.begin()?;
        let outcome = produce_and_commit(&producer, msgs);
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, records = msgs.len(), "flush transaction not committed; aborting it");
            match producer.abort_transaction(CALL_TIMEOUT) {
                Ok(()) => self.producer = Some(producer),
                // The broker aborts the open transaction after the
                // transaction timeout: readers see none of it either way
                // (and wait for it at most that long). The next flush
                // starts over with a new producer.
                Err(abort) => {
                    tracing::warn!(error = %abort, "abort failed; dropping the intake's transactional producer")
                }
            }
        } else {
            self.producer = Some(producer);
        }
        outcome
    }

    /// A producer inside a fresh transaction: the current one, or after a
    /// failed `begin` (fenced, fatally failed, or left in a state the last
    /// abort did not clear) a new one.
    fn begin(&mut self) -> Result<FutureProducer> {
        if let Some(p) = self.producer.take() {
            match p.begin_transaction() {
                Ok(()) => return Ok(p),
                Err(e) => {
                    tracing::warn!(error = %e, "begin failed; replacing the intake's transactional producer")
                }
            }
        }
        let p = create(&self.kafka, &unique_id(&self.id_base))?;
        p.begin_transaction()
            .map_err(kafka_err("begin transaction"))?;
        Ok(p)
    }
}

fn produce_and_commit(producer: &FutureProducer, msgs: &[Outgoing]) -> Result<()> {
    for msg in msgs {
        let mut record = FutureRecord::to(&msg.topic)
            .key(&msg.key)
            .payload(&msg.payload);
        loop {
            match producer.send_result(record) {
                // The delivery outcome is the commit's: a record that is
                // not delivered fails the commit.
                Ok(_delivery) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(Error::Delivery {
                        topic: msg.topic.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }
    let deadline = Instant::now() + COMMIT_DEADLINE;
    loop {
        match producer.commit_transaction(CALL_TIMEOUT) {
            Ok(()) => return Ok(()),
            // Not known whether it committed: asking again is safe.
            Err(KafkaError::Transaction(e)) if e.is_retriable() && Instant::now() < deadline => {
                tracing::warn!(error = %e, "flush commit outcome unknown; retrying the commit");
            }
            Err(e) => return Err(kafka_err("commit transaction")(e)),
        }
    }
}
