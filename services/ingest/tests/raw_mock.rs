//! The raw-topic consumer (ingest's second input adapter) on librdkafka's
//! mock cluster: JSON lines in, SignatureCounts and Traffic out in order, a
//! bad line dead-lettered with its line and field while the stream goes on,
//! and the consumed offsets committed on shutdown only after all of it was
//! acknowledged. No broker is needed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use selfheal_common::config::Config;
use selfheal_common::embedded::EmbeddedKafka;
use selfheal_common::kafka::EventProducer;
use selfheal_common::metrics::StageMetrics;
use selfheal_common::CancellationToken;
use selfheal_ingest::batch::{Batcher, Writer};
use selfheal_ingest::normalize::Normalizer;
use selfheal_schemas::AnyEvent;

fn config(bootstrap: &str) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap = Some(bootstrap.to_owned());
    c.kafka.delivery_timeout_ms = 3_000;
    c.ingest.flush_interval_ms = 100;
    // The records carry fixed past timestamps.
    c.ingest.max_age_s = 0;
    c
}

fn produce(bootstrap: &str, topic: &str, values: &[String]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for v in values {
        p.send(BaseRecord::<(), str>::to(topic).payload(v)).unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();
}

/// Every decoded event on `topics` (partition 0), in topic order each.
fn read(bootstrap: &str, topic: &str, want: usize) -> Vec<AnyEvent> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "raw-mock-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < want && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(selfheal_schemas::decode_any(m.payload().unwrap_or_default()).unwrap());
        }
    }
    out
}

fn committed(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let c = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    match c.find_partition(topic, 0)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_lines_become_events_bad_lines_dead_letters_and_offsets_commit_on_drain() {
    let defaults = Config::default();
    let kafka = EmbeddedKafka::start(1, &defaults.topics.all(), 1).unwrap();
    let config = Arc::new(config(kafka.bootstrap()));
    let topics = config.topics.clone();
    let lines = [
        // One message, two records.
        concat!(
            r#"{"type":"traffic","ts":"2026-03-09T10:00:00Z","service":"checkout","revision":"b","requests":100,"window_s":60}"#,
            "\n",
            r#"{"type":"log","ts":"2026-03-09T10:00:03Z","service":"checkout","revision":"b","level":"error","message":"Timeout after 3001ms calling payments-api"}"#
        )
        .to_owned(),
        // A bad line: the stream goes on past it.
        r#"{"type":"traffic","ts":"2026-03-09T10:01:00Z","service":"checkout","revision":"b","requests":"many","window_s":60}"#.to_owned(),
        r#"{"type":"traffic","ts":"2026-03-09T10:01:00Z","service":"checkout","revision":"b","requests":120,"window_s":60}"#.to_owned(),
    ];
    produce(kafka.bootstrap(), &topics.logs_raw, &lines);

    let stop = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let producer = EventProducer::new(&config.kafka).unwrap();
    let (batcher, batcher_task) = Batcher::spawn(
        Writer::Pipelined(producer.clone()),
        Arc::new(topics.clone()),
        Duration::from_millis(100),
        1_000,
        stop.clone(),
        &registry,
    );
    let normalizer = Arc::new(Mutex::new(Normalizer::new(
        selfheal_ingest::cli::normalizer_config(&config.ingest),
    )));
    let run = tokio::spawn(selfheal_ingest::raw::run(
        config.clone(),
        batcher.clone(),
        normalizer,
        producer,
        StageMetrics::new(&registry, "ingest"),
        stop.clone(),
    ));

    let bs = kafka.bootstrap().to_owned();
    let (t, s, d) = (
        topics.traffic.clone(),
        topics.signatures.clone(),
        topics.dlq.clone(),
    );
    let (traffic, counts, dead) =
        tokio::task::spawn_blocking(move || (read(&bs, &t, 2), read(&bs, &s, 1), read(&bs, &d, 1)))
            .await
            .unwrap();
    let requests: Vec<i64> = traffic
        .iter()
        .map(|e| match e {
            AnyEvent::Traffic(t) => t.requests,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(requests, vec![100, 120], "in order");
    match &counts[..] {
        [AnyEvent::SignatureCount(c)] => {
            assert_eq!((c.service.as_str(), c.count), ("checkout", 1));
            assert!(c.template.contains("calling payments-api"), "{c:?}");
        }
        other => panic!("{other:?}"),
    }
    match &dead[..] {
        [AnyEvent::DeadLetter(l)] => {
            assert_eq!(l.source_topic, topics.logs_raw);
            assert_eq!(l.offset, 1, "the bad message's offset");
            assert!(
                l.reason.contains("line 1") && l.reason.contains("requests"),
                "{}",
                l.reason
            );
        }
        other => panic!("{other:?}"),
    }

    // Shutdown drains and commits every consumed message (3).
    stop.cancel();
    run.await.unwrap().unwrap();
    batcher.close();
    batcher_task.wait().await;
    let (bs, group, raw) = (
        kafka.bootstrap().to_owned(),
        format!("{}.ingest.raw", config.kafka.group_prefix),
        topics.logs_raw.clone(),
    );
    let offset = tokio::task::spawn_blocking(move || committed(&bs, &group, &raw))
        .await
        .unwrap();
    assert_eq!(offset, Some(3));
}
