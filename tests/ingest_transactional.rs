//! `ingest.transactional` on the real broker: a flush Kafka cannot take in
//! full is aborted, so its 503 is exact (nothing of it is visible to a
//! `read_committed` reader) and the client's resend is counted once. The
//! pipelined writer, shown beside it, leaves the half that got through
//! visible, and the resend counts it twice.
//!
//! The fault: the deploys topic does not exist (and the broker does not
//! create topics), so the deploy record of the body is never delivered while
//! its log lines' SignatureCount could be.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, culprit_logs, ndjson, of, read_until};
use selfheal_common::kafka::create_topics;
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::AnyEvent;

const LINES: usize = 5;

fn body() -> String {
    let mut records = vec![serde_json::json!({
        "type": "deploy", "ts": "2026-03-09T10:00:00Z", "service": "checkout",
        "revision": "b", "previous_revision": "a",
    })];
    records.extend(culprit_logs("checkout", "b", LINES));
    ndjson(&records)
}

async fn post(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("Idempotency-Key", key)
        .body(body())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Sum of the `checkout` SignatureCount counts a `read_committed` reader sees.
fn counted(bootstrap: &str, topic: &str, at_least: u64, wait: Duration) -> u64 {
    let sum = |evs: &[Result<AnyEvent, Vec<u8>>]| -> u64 {
        of(evs, |e| match e {
            AnyEvent::SignatureCount(s) => Some(s),
            _ => None,
        })
        .iter()
        .filter(|s| s.service == "checkout")
        .map(|s| s.count as u64)
        .sum()
    };
    let events = read_until(bootstrap, topic, wait, |evs| {
        at_least > 0 && sum(evs) >= at_least
    });
    sum(&events)
}

/// Runs the scenario with `transactional` and returns (first status,
/// counted after the failure, resend status, counted after the resend).
async fn scenario(bs: &str, transactional: bool) -> (u16, u64, u16, u64) {
    let mut config = common::isolated_config(bs);
    config.ingest.transactional = transactional;
    config.kafka.delivery_timeout_ms = 3_000;
    config.topics.create = false;
    let missing = config.topics.deploys.clone();
    let names: Vec<&str> = config
        .topics
        .all()
        .into_iter()
        .filter(|t| **t != *missing)
        .collect();
    create_topics(&config.kafka, &names, 1, 1).await.unwrap();
    let config: Arc<Config> = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/ndjson/logs", ingest.http_addr);

    let first = post(&url, "batch-1").await;
    let after_failure = counted(bs, &config.topics.signatures, 0, Duration::from_secs(5));

    create_topics(&config.kafka, &[missing.as_str()], 1, 1)
        .await
        .unwrap();
    // The producer learns of the new topic from its next metadata refresh.
    let mut resend = 0;
    for _ in 0..20 {
        resend = post(&url, "batch-1").await;
        if resend == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after_resend = counted(
        bs,
        &config.topics.signatures,
        after_failure + LINES as u64,
        Duration::from_secs(20),
    );
    // Settle anything late, then read again: nothing more may appear.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = counted(bs, &config.topics.signatures, 0, Duration::from_secs(4));
    assert_eq!(settled, after_resend, "counts still moving");
    shutdown.cancel();
    ingest.wait().await.unwrap();
    (first, after_failure, resend, after_resend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_kafka_cannot_take_in_full_is_invisible_and_its_resend_counts_once() {
    let Some(bs) = bootstrap() else { return };
    let (first, after_failure, resend, after_resend) = scenario(&bs, true).await;
    assert_eq!(first, 503, "the deploy could not be written");
    assert_eq!(
        after_failure, 0,
        "an aborted flush is not visible to read_committed readers"
    );
    assert_eq!(resend, 200);
    assert_eq!(
        after_resend, LINES as u64,
        "the resend is counted once, the aborted attempt not at all"
    );
}

/// The contrast that shows what the transaction buys: without it the half
/// of the flush that Kafka took stays written behind the 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_transactions_the_half_written_flush_is_counted_twice() {
    let Some(bs) = bootstrap() else { return };
    let (first, after_failure, resend, after_resend) = scenario(&bs, false).await;
    assert_eq!(first, 503);
    assert_eq!(after_failure, LINES as u64, "the log half was written");
    assert_eq!(resend, 200);
    assert_eq!(after_resend, 2 * LINES as u64, "and is counted again");
}
