//! Event-time hygiene at the live inputs (real broker): a record stamped far
//! in the future (or older than `ingest.max_age_s`) is rejected with its line,
//! field and reason, in the HTTP 400 and, for the raw topic, in the DLQ; dead
//! letters of the raw topic carry the line scrubbed, never a token verbatim.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, isolated_config, of, read_until};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use selfheal_common::{wall_clock_ms, CancellationToken};
use selfheal_schemas::AnyEvent;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "ghp_a1B2c3D4e5f6G7h8i9J0k1L2m3N4o5P6q7R8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_future_and_too_old_records_are_rejected_and_dead_letters_are_scrubbed() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.max_age_s = 30 * 86_400;
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let now = wall_clock_ms();
    let line = |ts: String, msg: &str| {
        format!(r#"{{"ts":{ts},"service":"cart","revision":"r1","message":"{msg}"}}"#)
    };

    // HTTP: the valid line is written, the others named.
    let body = [
        line(now.to_string(), "Timeout after 31ms"),
        line("\"2099-01-01T00:00:00Z\"".into(), "from the future"),
        line((now - 40 * 86_400_000).to_string(), "from last month"),
        line((now + 60_000).to_string(), "a minute of clock skew is fine"),
    ]
    .join("\n");
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/ndjson/logs", ingest.http_addr))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 2, "{v}");
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{v}");
    assert_eq!(
        (rejected[0]["line"].as_u64(), rejected[0]["field"].as_str()),
        (Some(2), Some("ts"))
    );
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("ahead of the intake's clock"),
        "{v}"
    );
    assert_eq!(rejected[1]["line"], 3);
    assert!(
        rejected[1]["reason"].as_str().unwrap().contains("days old"),
        "{v}"
    );

    // Raw topic: the same rules, bad lines to the DLQ, scrubbed.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let payloads = [
        line(
            "\"2099-01-01T00:00:00Z\"".into(),
            &format!("auth failed for token {TOKEN}"),
        ),
        format!("not json, password=hunter2hunter2 {TOKEN}"),
    ];
    for p in &payloads {
        producer
            .send(
                FutureRecord::to(&config.topics.logs_raw)
                    .key("cart")
                    .payload(p),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let dlq = read_until(&bootstrap, &config.topics.dlq, WAIT, |e| e.len() >= 2);
    let letters = of(&dlq, |e| match e {
        AnyEvent::DeadLetter(d) => Some(d),
        _ => None,
    });
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters[0].reason.starts_with("line 1: field `ts`"),
        "{}",
        letters[0].reason
    );
    assert!(letters[0].reason.contains("ahead"), "{}", letters[0].reason);
    for d in &letters {
        let payload = String::from_utf8_lossy(&d.payload);
        assert!(
            !payload.contains(TOKEN) && !payload.contains("hunter2"),
            "{payload}"
        );
        assert!(
            !d.reason.contains(TOKEN) && !d.reason.contains("hunter2"),
            "{}",
            d.reason
        );
        assert!(payload.contains("[REDACTED:"), "{payload}");
    }
    shutdown.cancel();
    ingest.wait().await.unwrap();
}
