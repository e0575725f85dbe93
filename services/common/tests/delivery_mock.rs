//! The one delivery loop (`selfheal_common::delivery`) on librdkafka's mock
//! cluster, with handlers whose settlements resolve late, out of order, or
//! fail: offsets reach the commit policy strictly in consumption order, a
//! failed settlement stops the loop with nothing after it stored, shutdown
//! drains what is in flight and hands over what a handler holds, and the
//! committed offset a restarted consumer sees is exactly the settled prefix.
//! No broker is needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use selfheal_common::config::Config;
use selfheal_common::consumer::{
    create_consumer, meta_of, ConsumerSpec, GroupConsumer, MessageMeta,
};
use selfheal_common::delivery::{self, AtLeastOnce, Bounds, CommitPolicy, Handler, Settlement};
use selfheal_common::embedded::EmbeddedKafka;
use selfheal_common::{CancellationToken, Error};
use tokio::time::Instant;

const TOPIC: &str = "delivery.test";

/// A mock cluster with `n` messages (payloads "0", "1", …) on one partition.
fn cluster_with(n: usize) -> EmbeddedKafka {
    let kafka = EmbeddedKafka::start(1, &[TOPIC], 1).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .create()
        .unwrap();
    for i in 0..n {
        let payload = i.to_string();
        producer
            .send(BaseRecord::<(), _>::to(TOPIC).payload(&payload))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    kafka
}

fn config(bootstrap: &str) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap = Some(bootstrap.to_owned());
    c.kafka.delivery_timeout_ms = 5_000;
    c
}

fn subscribed(config: &Config, group: &str) -> GroupConsumer {
    let spec = ConsumerSpec {
        group_id: group.to_owned(),
        topics: vec![TOPIC.to_owned()],
        dlq_topic: "delivery.dlq".to_owned(),
    };
    let consumer = create_consumer(config, &spec, None).unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    consumer
}

/// The offset `group` committed on the partition, as a restarted consumer
/// of the group would resume from (`None`: nothing committed).
fn committed(bootstrap: &str, group: &str) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    match got.find_partition(TOPIC, 0).unwrap().offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// At least once, recording the offsets it is given, in order.
#[derive(Clone, Default)]
struct Recording {
    settled: Arc<Mutex<Vec<i64>>>,
}

impl Recording {
    fn offsets(&self) -> Vec<i64> {
        self.settled.lock().unwrap().clone()
    }
}

impl CommitPolicy for Recording {
    fn settled(&mut self, consumer: &GroupConsumer, meta: &MessageMeta) {
        self.settled.lock().unwrap().push(meta.offset);
        AtLeastOnce.settled(consumer, meta);
    }

    fn finish(&mut self, consumer: &GroupConsumer, name: &'static str) {
        AtLeastOnce.finish(consumer, name);
    }
}

/// One settlement per message, resolving after `delay(offset)`; the
/// settlement of `fail_at` fails.
struct Delayed {
    delay: fn(i64) -> Duration,
    fail_at: Option<i64>,
    max_pending: usize,
    accepted: Arc<Mutex<usize>>,
}

impl Handler for Delayed {
    fn name(&self) -> &'static str {
        "delayed"
    }

    fn max_pending(&self) -> usize {
        self.max_pending
    }

    async fn accept(
        &mut self,
        msg: &BorrowedMessage<'_>,
    ) -> selfheal_common::Result<Option<Settlement>> {
        let meta = meta_of(msg);
        let payload: i64 = std::str::from_utf8(msg.payload().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(payload, meta.offset, "messages arrive in partition order");
        *self.accepted.lock().unwrap() += 1;
        let (delay, fails) = ((self.delay)(meta.offset), self.fail_at == Some(meta.offset));
        Ok(Some(Box::pin(async move {
            tokio::time::sleep(delay).await;
            if fails {
                return Err(Error::Stage {
                    stage: "delayed",
                    message: format!("offset {} not acknowledged", meta.offset),
                });
            }
            Ok(vec![meta])
        })))
    }
}

fn delayed(delay: fn(i64) -> Duration, fail_at: Option<i64>) -> Delayed {
    Delayed {
        delay,
        fail_at,
        max_pending: 8,
        accepted: Arc::default(),
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_settled_in_consumption_order_when_acks_come_back_reversed() {
    let kafka = cluster_with(20);
    let config = config(kafka.bootstrap());
    let consumer = subscribed(&config, "order");
    // Message 0 is acknowledged last of each window of 8: 160 ms, 150 ms, …
    let mut handler = delayed(
        |o| Duration::from_millis(160 - 10 * (o as u64 % 8) * 2),
        None,
    );
    let policy = Recording::default();
    let stop = CancellationToken::new();
    let run = {
        let (mut policy, stop) = (policy.clone(), stop.clone());
        tokio::spawn(async move {
            delivery::run(
                consumer,
                &mut handler,
                &mut policy,
                Bounds::of(&config.kafka),
                stop,
            )
            .await
        })
    };
    wait_for("20 settled offsets", || policy.offsets().len() == 20).await;
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(policy.offsets(), (0..20).collect::<Vec<_>>());
    // store_offset(o) commits o + 1: the next one to read.
    assert_eq!(committed(kafka.bootstrap(), "order"), Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_stops_the_loop_and_nothing_after_it_is_committed() {
    let kafka = cluster_with(10);
    let config = config(kafka.bootstrap());
    let consumer = subscribed(&config, "fail");
    // Later messages settle first; offset 4 fails.
    let mut handler = delayed(|o| Duration::from_millis(100 - 8 * o as u64), Some(4));
    let mut policy = Recording::default();
    let stop = CancellationToken::new();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        delivery::run(
            consumer,
            &mut handler,
            &mut policy,
            Bounds::of(&config.kafka),
            stop,
        ),
    )
    .await
    .expect("the loop stops by itself, without a shutdown");
    let err = outcome.expect_err("a failed delivery is the loop's error");
    assert!(
        err.to_string().contains("offset 4 not acknowledged"),
        "{err}"
    );
    assert_eq!(policy.offsets(), vec![0, 1, 2, 3]);
    assert_eq!(committed(kafka.bootstrap(), "fail"), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_the_settlements_in_flight_before_committing() {
    let kafka = cluster_with(5);
    let config = config(kafka.bootstrap());
    let consumer = subscribed(&config, "drain");
    let mut handler = delayed(|_| Duration::from_millis(600), None);
    let accepted = handler.accepted.clone();
    let policy = Recording::default();
    let stop = CancellationToken::new();
    let run = {
        let (mut policy, stop) = (policy.clone(), stop.clone());
        tokio::spawn(async move {
            delivery::run(
                consumer,
                &mut handler,
                &mut policy,
                Bounds::of(&config.kafka),
                stop,
            )
            .await
        })
    };
    wait_for("5 accepted messages", || *accepted.lock().unwrap() == 5).await;
    assert!(policy.offsets().is_empty(), "nothing is acknowledged yet");
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(policy.offsets(), vec![0, 1, 2, 3, 4]);
    assert_eq!(committed(kafka.bootstrap(), "drain"), Some(5));
}

/// Holds every message until its deadline (far away) or shutdown, then
/// settles them all at once.
#[derive(Default)]
struct Holding {
    held: Vec<MessageMeta>,
    seen: Arc<Mutex<HashMap<i64, ()>>>,
}

impl Handler for Holding {
    fn name(&self) -> &'static str {
        "holding"
    }

    fn max_pending(&self) -> usize {
        1
    }

    async fn accept(
        &mut self,
        msg: &BorrowedMessage<'_>,
    ) -> selfheal_common::Result<Option<Settlement>> {
        self.held.push(meta_of(msg));
        self.seen.lock().unwrap().insert(msg.offset(), ());
        Ok(None)
    }

    fn deadline(&self) -> Option<Instant> {
        (!self.held.is_empty()).then(|| Instant::now() + Duration::from_secs(3_600))
    }

    async fn flush(&mut self) -> selfheal_common::Result<Option<Settlement>> {
        let held = std::mem::take(&mut self.held);
        Ok((!held.is_empty()).then(|| Box::pin(async move { Ok(held) }) as Settlement))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_handler_holds_is_handed_over_and_committed_at_shutdown() {
    let kafka = cluster_with(7);
    let config = config(kafka.bootstrap());
    let consumer = subscribed(&config, "hold");
    let mut handler = Holding::default();
    let seen = handler.seen.clone();
    let policy = Recording::default();
    let stop = CancellationToken::new();
    let run = {
        let (mut policy, stop) = (policy.clone(), stop.clone());
        tokio::spawn(async move {
            delivery::run(
                consumer,
                &mut handler,
                &mut policy,
                Bounds::of(&config.kafka),
                stop,
            )
            .await
        })
    };
    wait_for("7 held messages", || seen.lock().unwrap().len() == 7).await;
    assert!(policy.offsets().is_empty(), "held, not settled");
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(policy.offsets(), (0..7).collect::<Vec<_>>());
    assert_eq!(committed(kafka.bootstrap(), "hold"), Some(7));
}
