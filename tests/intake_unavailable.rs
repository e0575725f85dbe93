//! When Kafka does not acknowledge, the intake says so: 503 with `Retry-After`,
//! never a 2xx for data that was not written. Needs no broker: it points ingest
//! at a port where nothing listens.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{culprit_logs, ndjson};
use selfheal_common::{CancellationToken, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_writes_get_503_with_retry_after() {
    // Bind and drop a listener to find a port with nothing behind it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = Config::default();
    config.kafka.bootstrap = Some(dead.to_string());
    config.kafka.delivery_timeout_ms = 1_500;
    config.topics.create = false;
    // The records are history: past the default max age.
    config.ingest.max_age_s = 0;
    config.http.ingest = "127.0.0.1:0".parse().unwrap();
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(Arc::new(config), shutdown.clone())
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/ndjson/logs", ingest.http_addr))
        .body(ndjson(&culprit_logs("checkout", "b", 3)))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 0, "nothing is claimed accepted: {v}");
    assert!(v["error"].as_str().unwrap().contains("retry"), "{v}");
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "waited for the delivery timeout"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), ingest.wait())
        .await
        .expect("ingest stops even with Kafka down")
        .expect("clean stop");
}

/// When Kafka is unreachable and the bounded buffer is full, a request gets 503
/// with `Retry-After` at once (it does not wait for a delivery timeout), and the
/// request holding the buffer still gets its honest 503 after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_buffer_gets_503_at_once() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = Config::default();
    config.kafka.bootstrap = Some(dead.to_string());
    config.kafka.delivery_timeout_ms = 3_000;
    config.topics.create = false;
    // The records are history: past the default max age.
    config.ingest.max_age_s = 0;
    config.ingest.consume_raw = false;
    config.ingest.flush_interval_ms = 100;
    config.ingest.max_buffered_records = 3;
    config.http.ingest = "127.0.0.1:0".parse().unwrap();
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(Arc::new(config), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/ndjson/logs", ingest.http_addr);
    let http = reqwest::Client::new();

    let holder = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            http.post(url)
                .body(ndjson(&culprit_logs("checkout", "b", 3)))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let r = http
        .post(&url)
        .body(ndjson(&culprit_logs("checkout", "b", 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "answered at once"
    );
    assert_eq!(r.headers()["retry-after"], "5");
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("buffer full"), "{v}");
    assert_eq!(holder.await.unwrap(), 503, "never a 2xx for unwritten data");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), ingest.wait())
        .await
        .expect("ingest stops even with Kafka down")
        .expect("clean stop");
}
