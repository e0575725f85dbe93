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
    config.http.ingest = "127.0.0.1:0".parse().unwrap();
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(Arc::new(config), shutdown.clone())
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/logs", ingest.http_addr))
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
