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
    producer: FutureProducer,
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
    producer
        .init_transactions(CALL_TIMEOUT)
        .map_err(kafka_err("init transactions"))?;
    Ok(producer)
}

impl TxnWriter {
    /// Creates the producer and initializes its transactions (blocking: it
    /// waits for the transaction coordinator).
    pub fn new(kafka: &KafkaConfig, id_base: &str) -> Result<Self> {
        let producer = create(kafka, &unique_id(id_base))?;
        Ok(Self {
            kafka: kafka.clone(),
            id_base: id_base.to_owned(),
            producer,
        })
    }

    /// Writes `msgs` in one transaction (blocking). `Ok` once it committed;
    /// `Err` once it was aborted or never began, so nothing of it is visible
    /// to `read_committed` readers.
    pub fn write(&mut self, msgs: &[Outgoing]) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(kafka_err("begin transaction"))
            .or_else(|e| self.recover(e))?;
        let outcome = self.produce_and_commit(msgs);
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, records = msgs.len(), "flush transaction not committed; aborting it");
            if let Err(abort) = self.producer.abort_transaction(CALL_TIMEOUT) {
                // The broker aborts the open transaction after the
                // transaction timeout: readers see none of it either way
                // (and wait for it at most that long). Start over.
                self.replace(&kafka_err("abort transaction")(abort));
            }
        }
        outcome
    }

    fn produce_and_commit(&self, msgs: &[Outgoing]) -> Result<()> {
        for msg in msgs {
            let mut record = FutureRecord::to(&msg.topic)
                .key(&msg.key)
                .payload(&msg.payload);
            loop {
                match self.producer.send_result(record) {
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
            match self.producer.commit_transaction(CALL_TIMEOUT) {
                Ok(()) => return Ok(()),
                // Not known whether it committed: asking again is safe.
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && Instant::now() < deadline =>
                {
                    tracing::warn!(error = %e, "flush commit outcome unknown; retrying the commit");
                }
                Err(e) => return Err(kafka_err("commit transaction")(e)),
            }
        }
    }

    /// After a failed `begin` (the producer is fenced, fatally failed, or
    /// left in a state the last abort did not clear): a new producer and one
    /// more try.
    fn recover(&mut self, e: Error) -> Result<()> {
        self.replace(&e);
        self.producer
            .begin_transaction()
            .map_err(kafka_err("begin transaction"))
    }

    fn replace(&mut self, why: &Error) {
        tracing::warn!(error = %why, "replacing the intake's transactional producer");
        match create(&self.kafka, &unique_id(&self.id_base)) {
            Ok(p) => self.producer = p,
            Err(e) => {
                tracing::error!(error = %e, "could not create a new transactional producer; the next flush retries")
            }
        }
    }
}
