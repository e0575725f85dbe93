//! Kafka clients: configuration, the idempotent producer and topic creation.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use selfheal_schemas::{AnyEvent, Event};

use crate::config::{Config, KafkaConfig};
use crate::{Error, Result};

/// Base librdkafka configuration shared by every client: bootstrap servers, then
/// the user's free-form `kafka.client` properties (which win).
pub fn client_config(kafka: &KafkaConfig) -> Result<ClientConfig> {
    let bootstrap = kafka.bootstrap.as_deref().ok_or(Error::NoBootstrap)?;
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap);
    for (k, v) in &kafka.client {
        cc.set(k, v);
    }
    Ok(cc)
}

/// One message ready to be produced: topic, key and encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination topic.
    pub topic: String,
    /// Message key (the service name, for per-service ordering).
    pub key: Vec<u8>,
    /// The encoded event: Avro single-object encoding, or Schema Registry
    /// framing when the topic is in registry mode.
    pub payload: Vec<u8>,
    /// What the event means for the metrics (regression, verdict, action).
    pub outcome: Option<crate::outcome::Outcome>,
}

impl Outgoing {
    /// Encodes `event` for `topic`, keyed by [`Event::key`]: in Schema
    /// Registry framing if `topic`'s schema was registered at start-up
    /// ([`crate::schema_registry`]), else in single-object encoding.
    pub fn event<E: Event>(topic: &str, event: &E) -> Result<Self, selfheal_schemas::Error> {
        let payload = match crate::schema_registry::writer_id(topic) {
            Some(id) => selfheal_schemas::encode_registry(event, id)?,
            None => selfheal_schemas::encode(event)?,
        };
        Ok(Self {
            topic: topic.to_owned(),
            key: event.key().as_bytes().to_vec(),
            payload,
            outcome: crate::outcome::of(event),
        })
    }
}

/// An idempotent (`enable.idempotence=true`, `acks=all`) producer.
///
/// [`EventProducer::send_all`] resolves only once the broker acknowledged the writes,
/// which is what lets the HTTP intake answer 2xx and consumers store offsets.
#[derive(Clone)]
pub struct EventProducer {
    inner: FutureProducer,
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer").finish_non_exhaustive()
    }
}

impl EventProducer {
    /// Creates the producer. `linger.ms` is short because every send on a hot
    /// path is awaited by an HTTP client or a consumer offset.
    pub fn new(kafka: &KafkaConfig) -> Result<Self> {
        let mut cc = ClientConfig::new();
        cc.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", kafka.delivery_timeout_ms.to_string());
        for (k, v) in client_config(kafka)?.config_map() {
            cc.set(k, v);
        }
        let inner = cc.create().map_err(|source| Error::Kafka {
            operation: "create producer",
            source,
        })?;
        Ok(Self { inner })
    }

    /// Enqueues `msg` and returns a future that resolves when Kafka acknowledged
    /// it (or finally failed). Fails fast with [`Error::QueueFull`] when the
    /// producer's local buffer is full (the broker is slow or unreachable).
    pub fn enqueue(
        &self,
        msg: &Outgoing,
    ) -> Result<impl std::future::Future<Output = Result<()>> + Send + 'static> {
        let record = FutureRecord::to(&msg.topic)
            .key(&msg.key)
            .payload(&msg.payload);
        let delivery = self.inner.send_result(record).map_err(|(e, _)| match e {
            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => Error::QueueFull {
                topic: msg.topic.clone(),
            },
            e => Error::Delivery {
                topic: msg.topic.clone(),
                reason: e.to_string(),
            },
        })?;
        let topic = msg.topic.clone();
        Ok(async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err(Error::Delivery {
                    topic,
                    reason: e.to_string(),
                }),
                Err(_canceled) => Err(Error::Delivery {
                    topic,
                    reason: "producer was shut down before acknowledgement".to_owned(),
                }),
            }
        })
    }

    /// Like [`EventProducer::enqueue`], but waits while the local buffer is full
    /// instead of failing: consumers apply back-pressure rather than error out.
    pub async fn enqueue_waiting(
        &self,
        msg: &Outgoing,
    ) -> Result<impl std::future::Future<Output = Result<()>> + Send + 'static> {
        loop {
            match self.enqueue(msg) {
                Err(Error::QueueFull { .. }) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => return other,
            }
        }
    }

    /// Produces every message and waits until all of them are acknowledged.
    pub async fn send_all(&self, msgs: &[Outgoing]) -> Result<()> {
        let futures = msgs
            .iter()
            .map(|m| self.enqueue(m))
            .collect::<Result<Vec<_>>>()?;
        try_join_all(futures).await.map(|_| ())
    }

    /// Waits up to `timeout` for every queued message to be delivered.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout).map_err(|source| Error::Kafka {
            operation: "flush producer",
            source,
        })
    }

    /// Asks the cluster for metadata, proving it is reachable.
    pub fn check_connected(&self, timeout: Duration) -> Result<()> {
        self.inner
            .client()
            .fetch_metadata(None, timeout)
            .map(|_| ())
            .map_err(|source| Error::Kafka {
                operation: "fetch metadata",
                source,
            })
    }
}

/// Creates every configured topic that does not exist yet (when `topics.create`),
/// then, with `schema_registry.url` set, registers and checks the topics' value
/// schemas ([`crate::schema_registry::prepare`]).
///
/// Existing topics are left alone whatever their partition count: changing the
/// partitioning of a keyed topic reshuffles keys, an operator's decision.
pub async fn ensure_topics(config: &Config) -> Result<()> {
    create_configured_topics(config).await?;
    crate::schema_registry::prepare(config).await
}

async fn create_configured_topics(config: &Config) -> Result<()> {
    if !config.topics.create {
        return Ok(());
    }
    let changelog = config.topics.detector_changelog.as_str();
    let fleet = config.topics.detector_fleet.as_str();
    let names: Vec<&str> = config
        .topics
        .all()
        .into_iter()
        .filter(|t| *t != changelog && *t != fleet)
        .collect();
    create_topics(
        &config.kafka,
        &names,
        config.topics.partitions,
        config.topics.replication_factor,
    )
    .await?;
    create_topics_with(
        &config.kafka,
        &[changelog],
        config.topics.partitions,
        config.topics.replication_factor,
        &[("cleanup.policy", "compact")],
    )
    .await?;
    // Every detector instance reads the fleet topic from its beginning at
    // start; the fleet guard needs hours of it, so a day bounds that read.
    create_topics_with(
        &config.kafka,
        &[fleet],
        config.topics.partitions,
        config.topics.replication_factor,
        &[("retention.ms", FLEET_RETENTION_MS)],
    )
    .await
}

/// Retention of `topics.detector_fleet` when selfheal creates it (one day).
pub const FLEET_RETENTION_MS: &str = "86400000";

/// Creates `names` with the given partitions and replication factor (`-1`: the
/// broker's default), treating "already exists" as success.
pub async fn create_topics(
    kafka: &KafkaConfig,
    names: &[&str],
    partitions: i32,
    replication_factor: i32,
) -> Result<()> {
    create_topics_with(kafka, names, partitions, replication_factor, &[]).await
}

/// [`create_topics`] with topic configuration (e.g. `cleanup.policy=compact`).
pub async fn create_topics_with(
    kafka: &KafkaConfig,
    names: &[&str],
    partitions: i32,
    replication_factor: i32,
    topic_config: &[(&str, &str)],
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(kafka)?
            .create()
            .map_err(|source| Error::Kafka {
                operation: "create admin client",
                source,
            })?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| {
            topic_config.iter().fold(
                NewTopic::new(n, partitions, TopicReplication::Fixed(replication_factor)),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(topics.iter(), &opts)
        .await
        .map_err(|source| Error::Kafka {
            operation: "create topics",
            source,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::Kafka {
                    operation: "create topic",
                    source: KafkaError::AdminOp(code),
                })
                .inspect_err(|_| tracing::error!(%topic, ?code, "topic creation failed"));
            }
        }
    }
    Ok(())
}

/// Reads `topic` from the beginning to its end as of the call (all
/// partitions, no consumer group offsets), decoding every record; undecodable
/// ones are skipped (the live consumers dead-letter them). For services that
/// rebuild a table at start-up, like a Kafka Streams global table: triage's
/// deploys, the fixer's deploys, regressions and actions.
///
/// Blocking: call it from `spawn_blocking`.
pub fn read_to_end(
    kafka: &KafkaConfig,
    group_prefix: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<AnyEvent>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let err = |operation: &'static str| move |source| Error::Kafka { operation, source };
    let mut cc = client_config(kafka)?;
    cc.set("group.id", format!("{group_prefix}.bootstrap"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = cc.create().map_err(err("create bootstrap consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(err("fetch metadata"))?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = std::collections::BTreeMap::new();
    let started = std::time::Instant::now();
    for t in metadata.topics() {
        for p in t.partitions() {
            // Right after topic creation a partition may lack a leader briefly.
            let (low, high) = loop {
                match consumer.fetch_watermarks(topic, p.id(), timeout) {
                    Ok(w) => break w,
                    Err(_) if started.elapsed() < timeout => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(err("fetch watermarks")(e)),
                }
            };
            if high > low {
                ends.insert(p.id(), high);
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .map_err(err("assign"))?;
            }
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl).map_err(err("assign"))?;
    let deadline = std::time::Instant::now() + timeout;
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(Error::Stage {
                stage: "bootstrap",
                message: format!("reading {topic} to its end did not finish within {timeout:?}"),
            });
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            // Transactional topics end with a commit marker that takes an
            // offset but is never delivered: done once the position is there.
            let positions = consumer.position().map_err(err("position"))?;
            for e in positions.elements() {
                if let Offset::Offset(o) = e.offset() {
                    if ends.get(&e.partition()).is_some_and(|end| o >= *end) {
                        ends.remove(&e.partition());
                    }
                }
            }
            continue;
        };
        let msg = msg.map_err(err("bootstrap poll"))?;
        if let Ok(event) = selfheal_schemas::decode_any(msg.payload().unwrap_or_default()) {
            out.push(event);
        }
        if ends
            .get(&msg.partition())
            .is_some_and(|end| msg.offset() + 1 >= *end)
        {
            ends.remove(&msg.partition());
        }
    }
    Ok(out)
}
