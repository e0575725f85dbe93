//! The batcher (the intake's Kafka adapter) on librdkafka's mock cluster,
//! with both writers: every submission resolves only once its flush is
//! acknowledged, in submission order on the topic; a writer that cannot
//! deliver fails the submissions of that flush (the intake's 503); closing
//! drains what is buffered before the task ends. No broker is needed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use selfheal_common::config::Config;
use selfheal_common::embedded::EmbeddedKafka;
use selfheal_common::kafka::EventProducer;
use selfheal_common::CancellationToken;
use selfheal_ingest::batch::{Batcher, FlushError, Writer};
use selfheal_ingest::events::to_events;
use selfheal_ingest::normalize::Normalizer;
use selfheal_ingest::record::{Record, TrafficRecord};
use selfheal_ingest::txn::TxnWriter;

fn traffic(n: i64) -> Record {
    Record::Traffic(TrafficRecord {
        ts_ms: 1_772_000_000_000 + n * 60_000,
        service: "checkout".into(),
        revision: "b".into(),
        requests: n,
        errors: None,
        window_s: 60,
    })
}

fn config(bootstrap: &str) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap = Some(bootstrap.to_owned());
    c.kafka.delivery_timeout_ms = 3_000;
    c
}

/// The `requests` of every Traffic on the topic, in partition order
/// (one partition), as a `read_committed` reader sees them.
fn read_requests(bootstrap: &str, topic: &str, want: usize) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "batcher-mock-reader")
        .set("isolation.level", "read_committed")
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
            if let Ok(selfheal_schemas::AnyEvent::Traffic(t)) =
                selfheal_schemas::decode_any(m.payload().unwrap_or_default())
            {
                out.push(t.requests);
            }
        }
    }
    out
}

async fn run(writer_of: impl Fn(&Config) -> Writer) {
    let c = Config::default();
    let kafka = EmbeddedKafka::start(1, &[c.topics.traffic.as_str()], 1).unwrap();
    let config = config(kafka.bootstrap());
    let stop = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let (batcher, task) = Batcher::spawn(
        writer_of(&config),
        Arc::new(config.topics.clone()),
        Duration::from_millis(100),
        1_000,
        stop.clone(),
        &registry,
    );
    let normalizer = Arc::new(Mutex::new(Normalizer::new(
        selfheal_ingest::cli::normalizer_config(&config.ingest),
    )));
    let submit = |b: Batcher, n: i64| {
        let normalizer = normalizer.clone();
        async move {
            let reservation = b.try_reserve(1).unwrap();
            let events = {
                let mut g = normalizer.lock().unwrap();
                to_events(&mut *g, [traffic(n)])
            };
            b.submit(events, reservation).await
        }
    };
    // In order, each acknowledged before the next is submitted.
    for n in 1..=5 {
        submit(batcher.clone(), n).await.unwrap();
    }
    // Submitted, then the batcher closed at once: drained before the end.
    let last = tokio::spawn(submit(batcher.clone(), 6));
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop.cancel();
    batcher.close();
    task.wait().await;
    last.await.unwrap().unwrap();
    let (bs, topic) = (kafka.bootstrap().to_owned(), config.topics.traffic.clone());
    let seen = tokio::task::spawn_blocking(move || read_requests(&bs, &topic, 6))
        .await
        .unwrap();
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_flushes_are_acknowledged_in_order_and_drained_on_close() {
    run(|c| Writer::Pipelined(EventProducer::new(&c.kafka).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_flushes_are_committed_in_order_and_drained_on_close() {
    run(|c| {
        Writer::Transactional(Arc::new(std::sync::Mutex::new(
            TxnWriter::new(&c.kafka, "selfheal.test.batcher").unwrap(),
        )))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_kafka_does_not_take_fails_its_submissions() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = config(&dead.local_addr().unwrap().to_string());
    config.kafka.delivery_timeout_ms = 1_000;
    for transactional in [false, true] {
        let writer = if transactional {
            Writer::Transactional(Arc::new(std::sync::Mutex::new(
                TxnWriter::new(&config.kafka, "selfheal.test.dead").unwrap(),
            )))
        } else {
            Writer::Pipelined(EventProducer::new(&config.kafka).unwrap())
        };
        let stop = CancellationToken::new();
        let (batcher, task) = Batcher::spawn(
            writer,
            Arc::new(config.topics.clone()),
            Duration::from_millis(50),
            1_000,
            stop.clone(),
            &prometheus::Registry::new(),
        );
        let mut n = Normalizer::new(selfheal_ingest::cli::normalizer_config(&config.ingest));
        let events = to_events(&mut n, [traffic(1)]);
        let r = batcher
            .submit(events, batcher.try_reserve(1).unwrap())
            .await;
        assert!(
            matches!(r, Err(FlushError::NotAcknowledged(_))),
            "transactional={transactional}: {r:?}"
        );
        stop.cancel();
        batcher.close();
        task.wait().await;
    }
}
