//! Shared helpers of the end-to-end tests: the real broker's address, isolated
//! per-test configuration, and reading events back from topics.

#![allow(dead_code, unreachable_pub)]

pub mod history;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use selfheal_common::Config;
use selfheal_schemas::{AnyEvent, Deploy, Event};

/// A deploy of revision `b` over `a` of `service` at `at_ms`, without a diff.
pub fn deploy(service: &str, at_ms: i64) -> Deploy {
    Deploy {
        service: service.into(),
        diff: None,
        deployed_at_ms: at_ms,
        ..selfheal_schemas::testing::deploy()
    }
}

/// A consumer of its own (fresh group, nothing committed) assigned every
/// partition of `topic` from the beginning; `read_committed` skips records of
/// aborted and open transactions.
pub fn assign_from_beginning(bootstrap: &str, topic: &str, read_committed: bool) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        )
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// A program a test needs that `deploy/test.sh` installs and names in the
/// environment variable `var` (a python venv, node, promtool, Prometheus).
/// Unset: the test is skipped locally, but fails under `CI=true`, like a
/// missing broker.
pub fn external(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if !p.trim().is_empty() => Some(p),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{var} is not set: run the suite with ./deploy/test.sh (it installs what the tests need)")
        }
        _ => {
            eprintln!("SKIPPED: {var} unset; run ./deploy/test.sh to run this test");
            None
        }
    }
}

/// The real broker's bootstrap address from `SELFHEAL_TEST_BOOTSTRAP` (set by
/// `deploy/test.sh`). Without it the test is skipped locally, but fails under
/// `CI=true`: CI must never count a Kafka test as passed without a broker.
pub fn bootstrap() -> Option<String> {
    match std::env::var("SELFHEAL_TEST_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => {
            assert_reachable(&b);
            Some(b)
        }
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!(
            "this test needs a real Kafka broker but SELFHEAL_TEST_BOOTSTRAP is not set; \
             run the suite with ./deploy/test.sh (it starts the broker)"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no real Kafka broker (SELFHEAL_TEST_BOOTSTRAP unset); \
                 run ./deploy/test.sh to run this test"
            );
            None
        }
    }
}

/// Fails loudly when the configured broker does not answer.
fn assert_reachable(bootstrap: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("kafka client");
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(20)) {
        panic!("SELFHEAL_TEST_BOOTSTRAP={bootstrap} is set but the broker does not answer: {e}");
    }
}

/// A configuration isolated from every other test: unique topic names and
/// consumer groups, HTTP on free ports.
pub fn isolated_config(bootstrap: &str) -> Config {
    let suffix = format!(".t{}", uuid::Uuid::new_v4().simple());
    let mut c = Config::default();
    c.kafka.bootstrap = Some(bootstrap.to_owned());
    c.kafka.group_prefix = format!("selfheal-test{suffix}");
    c.topics = c.topics.with_suffix(&suffix);
    c.topics.partitions = 3;
    // The fixtures replay history (March 2026) through the live intake.
    c.ingest.max_age_s = 0;
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    c.http.ingest = any;
    c.http.detector = any;
    c.http.triage = any;
    c.http.fixer = any;
    c
}

/// Reads `topic` from the beginning (all partitions, no consumer group) until
/// `done` holds for the events read so far, or `timeout` passes. Returns every
/// decoded event read; undecodable payloads are returned as `Err` bytes.
pub fn read_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Result<AnyEvent, Vec<u8>>]) -> bool,
) -> Vec<Result<AnyEvent, Vec<u8>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka wants a group id even for manual assignment; nothing is committed.
        .set(
            "group.id",
            format!("selfheal-test-reader-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("kafka consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while Instant::now() < deadline && !done(&out) {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(200)) {
            let payload = msg.payload().unwrap_or_default();
            out.push(selfheal_schemas::decode_any(payload).map_err(|_| payload.to_vec()));
        }
    }
    out
}

/// The events of type `E` among `events`.
pub fn of<E: Event>(
    events: &[Result<AnyEvent, Vec<u8>>],
    pick: impl Fn(&AnyEvent) -> Option<&E>,
) -> Vec<E> {
    events
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .filter_map(|e| pick(e).cloned())
        .collect()
}

/// An NDJSON body: one JSON value per line.
pub fn ndjson(values: &[serde_json::Value]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A bad deploy as NDJSON (`deploy/examples/bad-deploy.ndjson`): 70 minutes of
/// traffic and a known timeout at revision `a`, the deploy of `b` whose diff
/// changes `src/checkout/pricing.py:216`, then 12 minutes of traffic at `b` with
/// six KeyErrors raised at that line.
pub const BAD_DEPLOY: &str = include_str!("../../deploy/examples/bad-deploy.ndjson");

/// The demo diff: `quote` now raises KeyError on unknown currencies (line 216).
pub const CULPRIT_DIFF: &str = "diff --git a/src/checkout/pricing.py b/src/checkout/pricing.py\n--- a/src/checkout/pricing.py\n+++ b/src/checkout/pricing.py\n@@ -214,7 +214,7 @@ def quote(cart):\n     total = 0\n     for item in cart:\n-        rate = rates.get(item.currency, 1.0)\n+        rate = rates[item.currency]\n         total += item.price * rate\n     return total\n";

/// Log lines of the culprit's error, as a Python service would ship them.
pub fn culprit_logs(service: &str, revision: &str, n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "type": "log",
                "ts": format!("2026-03-09T10:{:02}:{:02}Z", 1 + i / 60, i % 60),
                "service": service,
                "revision": revision,
                "level": "error",
                "message": format!("KeyError: 'XC{i}' (request_id=req-{i}9f)"),
                "stack": "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/flask/app.py\", line 880, in dispatch\n  File \"/app/src/checkout/pricing.py\", line 216, in quote\nKeyError: 'XC'",
            })
        })
        .collect()
}
