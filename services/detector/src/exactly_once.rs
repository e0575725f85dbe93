//! The detector's exactly-once adapter for real brokers (Kafka Streams' EOS
//! design, by hand).
//!
//! Inputs are read in small batches. Each batch is one Kafka transaction
//! holding: the regressions it produced, the changed parts of every service
//! whose state changed (to the compacted `topics.detector_changelog`: a head
//! per service and a record per signature, each bounded, see
//! [`crate::changelog`]) and the consumer offsets after the batch. Either all of it is
//! committed or none: read-committed readers never see a regression whose
//! input offsets were not committed, and the changelog always matches the
//! committed offsets.
//!
//! When this instance is assigned input partitions (at start, or after a
//! rebalance), it restores the snapshots of the services on those partitions
//! before processing any of their records, so a restarted detector resumes
//! with its baselines and open windows instead of re-reading a week of events,
//! and its emitted-regression ids make replays emit nothing twice. The input
//! topics are co-partitioned by service (same key, same partition count), so a
//! service's records all arrive on one partition number.
//!
//! Any transaction error (broker failure, fencing after a rebalance) aborts
//! and stops the service: in-memory state may be ahead of what was committed,
//! and the restart restores from the changelog, which is exactly right.
//!
//! Several instances (with `detector.fleet_guard`): each transaction also
//! carries this instance's fleet summaries (per-template count deltas,
//! deploys, watermark) to `topics.detector_fleet`, so they are exactly-once
//! with the inputs they count. Before consuming, the instance reads that topic
//! from its beginning, then keeps reading it between batches (all partitions,
//! not through the group); summaries that release a held regression are
//! processed inside the next transaction, like inputs. On a clean stop it
//! publishes that it reports nothing any more, so nobody waits for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Gauge, IntCounter, IntGauge, Opts, Registry};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use selfheal_common::consumer::LagContext;
use selfheal_common::http::{self, Readiness};
use selfheal_common::kafka::{client_config, ensure_topics, Outgoing};
use selfheal_common::metrics::StageMetrics;
use selfheal_common::service::ServiceHandle;
use selfheal_common::{CancellationToken, Config, Error, Result};
use selfheal_schemas::{AnyEvent, DeadLetter};

use crate::changelog::{Reader, RestoredHead, Writer};
use crate::core::Detector;
use crate::fleet::FleetSummary;
use crate::fleet_topic::{self, FleetReader};
use crate::merge::Limits;
use crate::ordered_input::{Input, OrderedInput};
use crate::{validate, NAME};

/// Most records per transaction.
const BATCH_MAX: usize = 1_000;
/// Longest a batch waits to fill.
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// Timeout of transactional calls.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the changelog and fleet topics take to read at start. An
/// instance that crashed mid-transaction leaves it open, and `read_committed`
/// readers stop at it until the broker aborts it: after the transaction
/// timeout (librdkafka's default, 60 s) plus the broker's cleanup interval
/// (10 s). A shorter deadline would stop the restarted detector before that
/// and restart-loop it until the transaction expires.
const RESTORE_DEADLINE: Duration = Duration::from_secs(90);
/// Most fleet summaries applied between two batches.
const FLEET_MAX: usize = 10_000;

/// The exactly-once loop's metrics: the stage's, and the changelog's.
struct Metrics {
    stage: StageMetrics,
    /// Changelog records or parts that could not be read at restore.
    changelog_errors: IntCounter,
    /// Fleet-topic records that could not be decoded.
    fleet_errors: IntCounter,
    /// Duration of the latest restore.
    restore_seconds: Gauge,
    /// Signatures restored by the latest restore.
    restored_signatures: IntGauge,
    /// Empty input partitions passed over after their limit.
    input_idle_passes: IntCounter,
}

impl Metrics {
    fn new(registry: &Registry) -> Self {
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            registry.register(c).expect("metric registered once");
        };
        let changelog_errors = IntCounter::with_opts(Opts::new(
            "selfheal_detector_changelog_errors_total",
            "Changelog records or parts that could not be read at restore (each logged).",
        ))
        .expect("valid metric");
        let fleet_errors = IntCounter::with_opts(Opts::new(
            "selfheal_detector_fleet_errors_total",
            "Fleet-topic records that could not be decoded (each logged).",
        ))
        .expect("valid metric");
        let restore_seconds = Gauge::with_opts(Opts::new(
            "selfheal_detector_restore_seconds",
            "Duration of the latest changelog restore.",
        ))
        .expect("valid metric");
        let restored_signatures = IntGauge::with_opts(Opts::new(
            "selfheal_detector_restored_signatures",
            "Signatures restored from the changelog by the latest restore.",
        ))
        .expect("valid metric");
        let input_idle_passes = IntCounter::with_opts(Opts::new(
            "selfheal_detector_input_idle_passes_total",
            "Times an empty input partition that was not caught up was passed over after \
             holding the others back for its limit (its records may then count as late).",
        ))
        .expect("valid metric");
        reg(Box::new(input_idle_passes.clone()));
        reg(Box::new(changelog_errors.clone()));
        reg(Box::new(fleet_errors.clone()));
        reg(Box::new(restore_seconds.clone()));
        reg(Box::new(restored_signatures.clone()));
        Self {
            stage: StageMetrics::new(registry, NAME),
            changelog_errors,
            fleet_errors,
            restore_seconds,
            restored_signatures,
            input_idle_passes,
        }
    }
}

fn kafka_err(operation: &'static str) -> impl Fn(rdkafka::error::KafkaError) -> Error {
    move |source| Error::Kafka { operation, source }
}

/// Starts the detector with exactly-once processing (HTTP health/metrics too).
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let registry = Registry::new();
    let metrics = Metrics::new(&registry);
    crate::metrics::register(&registry);
    selfheal_common::metrics::register_build_info(&registry, NAME);
    let ready = Readiness::default();
    let listener = http::bind(config.http.detector).await?;
    let http_addr = http::local_addr(&listener)?;
    let http_stop = CancellationToken::new();
    let server = http::serve(
        listener,
        http::ops_router(registry, ready.clone()),
        http_stop.clone(),
    );
    ensure_topics(&config).await?;
    // The blocking loop checks the token itself: a task relaying it would
    // not run once the runtime shuts down (e.g. a test that panicked), and
    // the loop would then never stop.
    let stop = shutdown;
    tracing::info!(service = NAME, %http_addr, "started (exactly-once)");
    let task = tokio::spawn(async move {
        ready.set(true);
        let cfg = config.clone();
        let outcome = tokio::task::spawn_blocking(move || run_loop(&cfg, &stop, &metrics))
            .await
            .map_err(Error::caused(NAME, "detector loop"))
            .and_then(|r| r);
        ready.set(false);
        http_stop.cancel();
        let served = server.await.map_err(Error::caused(NAME, "http task"))?;
        tracing::info!(service = NAME, "stopped");
        outcome.and(served)
    });
    Ok(ServiceHandle::new(NAME, http_addr, task))
}

fn run_loop(config: &Config, stop: &CancellationToken, metrics: &Metrics) -> Result<()> {
    let inputs = config.topics.detector_inputs();
    let group = format!("{}.{}", config.kafka.group_prefix, NAME);
    let instance = match config.detector.instance_name.trim() {
        "" => fleet_topic::instance_id(&group),
        name => format!("{group}.{name}"),
    };
    let producer = transactional_producer(config, &instance)?;
    let consumer = input_consumer(config, &group, metrics)?;
    let mut detector = Detector::new(config.detector.clone());
    let mut fleet = open_fleet(config, &instance, &mut detector, metrics)?;
    consumer
        .subscribe(&inputs)
        .map_err(kafka_err("subscribe"))?;
    let mut owned: BTreeSet<i32> = BTreeSet::new();
    let mut changelog = Writer::default();
    let mut input = OrderedInput::new(
        &config.topics,
        Limits {
            caught_up: Duration::from_millis(config.detector.input_wait_ms),
            ..Limits::default()
        },
        metrics.input_idle_passes.clone(),
    );
    let result = loop {
        if stop.is_cancelled() {
            break Ok(());
        }
        // Fetch what is there; rebalances happen inside poll.
        let polled = poll_batch(&consumer);
        // Assignment changes are applied before any record is buffered.
        let owners = Owners {
            config,
            metrics,
            detector: &mut detector,
            changelog: &mut changelog,
        };
        let assignment = owners.follow(&consumer, &mut owned)?;
        input.assign(&consumer, &assignment, TXN_TIMEOUT)?;
        input.push(&consumer, polled)?;
        let batch = input.take(&consumer, BATCH_MAX)?;
        let remote = fleet
            .as_mut()
            .map(|f| {
                let ready = f.poll_ready(FLEET_MAX);
                metrics.fleet_errors.inc_by(f.take_undecodable());
                ready
            })
            .unwrap_or_default();
        let (offsets, offsets_moved) = input.offsets(&consumer)?;
        if let Err(e) = process_batch(
            config,
            &producer,
            &consumer,
            &mut detector,
            &mut changelog,
            Batch {
                inputs: &batch,
                offsets: offsets.clone(),
                offsets_moved,
                remote: &remote,
                reporting: !owned.is_empty(),
            },
            &metrics.stage,
        ) {
            let _ = producer.abort_transaction(TXN_TIMEOUT);
            break Err(e);
        }
        input.committed(&offsets);
        crate::metrics::observe(&detector.stats());
    };
    if result.is_ok() && fleet.is_some() {
        // Leaving: nobody should wait for this instance's reports any more.
        if let Err(e) = leave(config, &producer, &mut detector) {
            let _ = producer.abort_transaction(TXN_TIMEOUT);
            tracing::warn!(error = %e, "could not tell the fleet this instance is leaving; others wait for it at most detector.fleet_wait_s");
        }
    }
    close_bounded(
        consumer,
        Duration::from_millis(config.kafka.close_timeout_ms),
    );
    result
}

/// The producer of the loop's transactions, its transactional id fenced
/// and initialised.
fn transactional_producer(config: &Config, instance: &str) -> Result<BaseProducer> {
    let mut pc = client_config(&config.kafka)?;
    pc.set("transactional.id", instance)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // A write that cannot be acknowledged fails the transaction within the
        // configured delivery timeout (transactions allow at most 60 s).
        .set(
            "message.timeout.ms",
            config.kafka.delivery_timeout_ms.min(55_000).to_string(),
        );
    let producer: BaseProducer = pc.create().map_err(kafka_err("create producer"))?;
    producer
        .init_transactions(TXN_TIMEOUT)
        .map_err(kafka_err("init transactions"))?;
    Ok(producer)
}

/// The input consumer: manual commits (through the transaction), committed
/// reads only, lag reported to the stage metrics.
fn input_consumer(
    config: &Config,
    group: &str,
    metrics: &Metrics,
) -> Result<BaseConsumer<LagContext>> {
    let mut cc = client_config(&config.kafka)?;
    cc.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false");
    if cc.get("statistics.interval.ms").is_none() {
        cc.set("statistics.interval.ms", "10000");
    }
    cc.create_with_context(LagContext::new(Some(metrics.stage.clone())))
        .map_err(kafka_err("create consumer"))
}

/// With the fleet guard on: the fleet topic's reader, caught up. The other
/// instances' summaries are read before any input, so the guard knows their
/// services (and whom to wait for) from the first evaluation.
fn open_fleet(
    config: &Config,
    instance: &str,
    detector: &mut Detector,
    metrics: &Metrics,
) -> Result<Option<FleetReader>> {
    if !config.detector.fleet_guard {
        return Ok(None);
    }
    detector.enable_fleet(instance);
    let mut reader = FleetReader::open(config, instance)?;
    let read = reader.catch_up(RESTORE_DEADLINE, |s| {
        // Nothing is held before any input: no regression can come out.
        let _ = detector.on_fleet(&s);
    })?;
    metrics.fleet_errors.inc_by(reader.take_undecodable());
    tracing::info!(%instance, summaries = read, topic = reader.topic(), "read the fleet topic");
    Ok(Some(reader))
}

/// What is there to read, up to [`BATCH_MAX`] records or [`BATCH_WAIT`].
fn poll_batch(consumer: &BaseConsumer<LagContext>) -> Vec<OwnedMessage> {
    let mut polled: Vec<OwnedMessage> = Vec::new();
    let deadline = Instant::now() + BATCH_WAIT;
    while polled.len() < BATCH_MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left) {
            Some(Ok(m)) => polled.push(m.detach()),
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => break,
        }
    }
    polled
}

/// The state that follows the partitions this instance owns.
struct Owners<'a> {
    config: &'a Config,
    metrics: &'a Metrics,
    detector: &'a mut Detector,
    changelog: &'a mut Writer,
}

impl Owners<'_> {
    /// Applies an assignment change: forgets the services of partitions
    /// gone, restores those of partitions gained; returns the assignment.
    fn follow(
        self,
        consumer: &BaseConsumer<LagContext>,
        owned: &mut BTreeSet<i32>,
    ) -> Result<TopicPartitionList> {
        let assignment = consumer.assignment().map_err(kafka_err("assignment"))?;
        let assigned: BTreeSet<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        if assigned != *owned {
            for gone in owned.difference(&assigned) {
                for s in self.changelog.services_on(*gone) {
                    self.detector.forget(&s);
                    self.changelog.forget(&s);
                }
            }
            let new: BTreeSet<i32> = assigned.difference(owned).copied().collect();
            if !new.is_empty() {
                restore(
                    self.config,
                    &new,
                    self.detector,
                    self.changelog,
                    self.metrics,
                )?;
            }
            *owned = assigned;
        }
        Ok(assignment)
    }
}

/// Closes the consumer off-thread, waiting at most `timeout` (rust-rdkafka #509).
fn close_bounded(consumer: BaseConsumer<LagContext>, timeout: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        consumer.unsubscribe();
        drop(consumer);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(timeout);
}

/// What one transaction processes.
struct Batch<'a> {
    /// Input records in event-time order (may be empty).
    inputs: &'a [Input],
    /// The input offsets this transaction commits: after the last record
    /// processed per partition (buffered ones are read again after a crash).
    offsets: TopicPartitionList,
    /// Whether `offsets` moved since the last commit (past transaction
    /// markers alone, possibly).
    offsets_moved: bool,
    /// Fleet summaries read since the last batch (any instance's, own too).
    remote: &'a [FleetSummary],
    /// Whether this instance owns input partitions (reports a watermark).
    reporting: bool,
}

fn process_batch(
    config: &Config,
    producer: &BaseProducer,
    consumer: &BaseConsumer<LagContext>,
    detector: &mut Detector,
    changelog: &mut Writer,
    batch: Batch<'_>,
    metrics: &StageMetrics,
) -> Result<()> {
    let t = &config.topics;
    let mut outgoing: Vec<Outgoing> = Vec::new();
    // Other instances' news first: it can release held regressions, and the
    // inputs below are then judged with it.
    for s in batch.remote {
        metrics.consumed(&t.detector_fleet);
        for r in detector.on_fleet(s) {
            tracing::info!(service = %r.service, revision = %r.revision, kind = ?r.kind,
                observed = r.observed, externally_correlated = r.externally_correlated,
                "{} (released by a fleet summary)", selfheal_common::describe::regression(&r));
            outgoing.push(encode(Outgoing::event(&t.regressions, &r))?);
        }
    }
    for Input { msg: m, event } in batch.inputs {
        metrics.consumed(m.topic());
        let payload = m.payload().unwrap_or_default();
        let event = event
            .as_ref()
            .map_err(|e| (e.clone(), "poison"))
            .and_then(|event| {
                validate::check(t, m.topic(), event)
                    .map(|()| event)
                    .map_err(|reason| (reason, "rejected"))
            });
        match event {
            Ok(event) => {
                if let Some(service) = service_of(event) {
                    changelog.set_partition(service, m.partition());
                }
                for r in detector.on_event(event) {
                    tracing::info!(service = %r.service, revision = %r.revision, kind = ?r.kind,
                        observed = r.observed, externally_correlated = r.externally_correlated,
                        "{}", selfheal_common::describe::regression(&r));
                    outgoing.push(encode(Outgoing::event(&t.regressions, &r))?);
                }
            }
            Err((reason, kind)) => {
                tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(),
                    %reason, "dead-lettering input");
                metrics.dead_lettered(kind);
                let letter = DeadLetter {
                    source_topic: m.topic().to_owned(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: payload.to_vec(),
                    reason,
                    error_kind: kind.to_owned(),
                    stage: NAME.to_owned(),
                    failed_at_ms: m
                        .timestamp()
                        .to_millis()
                        .unwrap_or_else(selfheal_common::wall_clock_ms),
                };
                outgoing.push(encode(Outgoing::event(&t.dlq, &letter))?);
            }
        }
    }
    let summaries = detector.take_fleet_summaries(batch.reporting);
    let touched = detector.take_touched();
    if batch.inputs.is_empty()
        && outgoing.is_empty()
        && summaries.is_empty()
        && touched.is_empty()
        && !batch.offsets_moved
    {
        return Ok(());
    }
    producer
        .begin_transaction()
        .map_err(kafka_err("begin transaction"))?;
    for out in &outgoing {
        send(producer, &out.topic, &out.key, Some(&out.payload))?;
        metrics.produced_outgoing(out);
    }
    for s in &summaries {
        send(
            producer,
            &t.detector_fleet,
            s.instance.as_bytes(),
            Some(&fleet_topic::encode(s)?),
        )?;
        metrics.produced(&t.detector_fleet);
    }
    let mut records = Vec::new();
    for service in touched {
        // `None` (evicted): tombstones let compaction drop its records.
        let parts = detector
            .snapshot_parts(&service)
            .transpose()
            .map_err(Error::caused(NAME, format!("snapshot of {service}")))?;
        changelog.update(&service, parts.as_ref(), &mut records);
    }
    for r in &records {
        send(producer, &t.detector_changelog, &r.key, r.value.as_deref())?;
        metrics.produced(&t.detector_changelog);
    }
    let group = consumer.group_metadata().ok_or_else(|| Error::Stage {
        stage: NAME,
        message: "no consumer group metadata".to_owned(),
    })?;
    producer
        .send_offsets_to_transaction(&batch.offsets, &group, TXN_TIMEOUT)
        .map_err(kafka_err("send offsets to transaction"))?;
    producer
        .commit_transaction(TXN_TIMEOUT)
        .map_err(kafka_err("commit transaction"))?;
    Ok(())
}

/// Publishes, in its own transaction, that this instance reports nothing any
/// more (a clean stop).
fn leave(config: &Config, producer: &BaseProducer, detector: &mut Detector) -> Result<()> {
    let summaries = detector.take_fleet_summaries(false);
    if summaries.is_empty() {
        return Ok(());
    }
    producer
        .begin_transaction()
        .map_err(kafka_err("begin transaction"))?;
    for s in &summaries {
        send(
            producer,
            &config.topics.detector_fleet,
            s.instance.as_bytes(),
            Some(&fleet_topic::encode(s)?),
        )?;
    }
    producer
        .commit_transaction(TXN_TIMEOUT)
        .map_err(kafka_err("commit transaction"))
}

fn encode(o: Result<Outgoing, selfheal_schemas::Error>) -> Result<Outgoing> {
    o.map_err(Error::caused(NAME, "cannot encode"))
}

/// Enqueues one record, waiting while the local queue is full.
fn send(producer: &BaseProducer, topic: &str, key: &[u8], payload: Option<&[u8]>) -> Result<()> {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic).key(key);
    if let Some(p) = payload {
        record = record.payload(p);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                r,
            )) => {
                producer.poll(Duration::from_millis(10));
                record = r;
            }
            Err((e, _)) => {
                return Err(Error::Delivery {
                    topic: topic.to_owned(),
                    reason: e.to_string(),
                })
            }
        }
    }
}

fn service_of(e: &AnyEvent) -> Option<&str> {
    match e {
        AnyEvent::SignatureCount(x) => Some(&x.service),
        AnyEvent::Traffic(x) => Some(&x.service),
        AnyEvent::Deploy(x) => Some(&x.service),
        AnyEvent::Build(x) => Some(&x.service),
        AnyEvent::LatencyHistogram(x) => Some(&x.service),
        AnyEvent::InstanceGauge(x) => Some(&x.service),
        _ => None,
    }
}

/// Reads the whole changelog and restores the services that live on
/// `partitions`, logging and counting every record that cannot be read.
fn restore(
    config: &Config,
    partitions: &BTreeSet<i32>,
    detector: &mut Detector,
    changelog: &mut Writer,
    metrics: &Metrics,
) -> Result<()> {
    let started = Instant::now();
    let reader = read_changelog(config)?;
    let bytes = reader.bytes();
    let found = reader.finish();
    let topic = config.topics.detector_changelog.as_str();
    for e in &found.errors {
        metrics.changelog_errors.inc();
        tracing::error!(topic, error = %e, "changelog record not restored");
    }
    if found.orphans > 0 {
        tracing::warn!(
            topic,
            parts = found.orphans,
            "signature parts without their service's head ignored"
        );
    }
    let (mut services, mut signatures) = (0usize, 0usize);
    for (service, r) in found.services {
        if !partitions.contains(&r.partition) {
            continue;
        }
        let restored = match &r.head {
            RestoredHead::Legacy(snapshot) => {
                detector.restore((**snapshot).clone());
                Ok(snapshot.signatures())
            }
            RestoredHead::Parts(head) => detector.restore_parts(
                &service,
                head,
                r.signatures
                    .iter()
                    .map(|(sig, b, _)| (sig.as_str(), b.as_slice())),
            ),
        };
        match restored {
            Ok(n) => {
                changelog.note_restored(&service, &r);
                services += 1;
                signatures += n;
            }
            Err(e) => {
                metrics.changelog_errors.inc();
                tracing::error!(topic, %service, error = %e, "service state in the changelog does not decode; starting it empty");
            }
        }
    }
    let elapsed = started.elapsed();
    metrics.restore_seconds.set(elapsed.as_secs_f64());
    metrics.restored_signatures.set(signatures as i64);
    tracing::info!(partitions = ?partitions, services, signatures, changelog_bytes = bytes,
        elapsed_ms = elapsed.as_millis() as u64, "restored detector state from the changelog");
    Ok(())
}

/// Reads the whole changelog topic (read-committed) up to its end.
fn read_changelog(config: &Config) -> Result<Reader> {
    let topic = config.topics.detector_changelog.as_str();
    let mut cc = client_config(&config.kafka)?;
    cc.set(
        "group.id",
        format!("{}.detector-restore", config.kafka.group_prefix),
    )
    .set("enable.auto.commit", "false")
    .set("isolation.level", "read_committed");
    let reader: BaseConsumer = cc.create().map_err(kafka_err("create restore consumer"))?;
    let md = reader
        .fetch_metadata(Some(topic), TXN_TIMEOUT)
        .map_err(kafka_err("changelog metadata"))?;
    let mut tpl = TopicPartitionList::new();
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for t in md.topics() {
        for p in t.partitions() {
            let (low, high) = reader
                .fetch_watermarks(topic, p.id(), TXN_TIMEOUT)
                .map_err(kafka_err("changelog watermarks"))?;
            if high > low {
                ends.insert(p.id(), high);
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .map_err(kafka_err("assign changelog"))?;
            }
        }
    }
    let mut latest = Reader::default();
    if ends.is_empty() {
        return Ok(latest);
    }
    reader.assign(&tpl).map_err(kafka_err("assign changelog"))?;
    let deadline = Instant::now() + RESTORE_DEADLINE;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(Error::Stage {
                stage: NAME,
                message: format!("reading {topic} did not finish within {RESTORE_DEADLINE:?}"),
            });
        }
        let Some(m) = reader.poll(Duration::from_millis(500)) else {
            // Transaction markers occupy offsets; past the last record we
            // may see none: check positions.
            let pos = reader.position().map_err(kafka_err("position"))?;
            for e in pos.elements() {
                if let Offset::Offset(o) = e.offset() {
                    if ends.get(&e.partition()).is_some_and(|end| o >= *end) {
                        ends.remove(&e.partition());
                    }
                }
            }
            continue;
        };
        let m = m.map_err(kafka_err("read changelog"))?;
        latest.apply(m.key().unwrap_or_default(), m.payload());
        if ends
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            ends.remove(&m.partition());
        }
    }
    Ok(latest)
}
