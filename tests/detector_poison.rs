//! Poison at the detector (exactly-once mode, real broker): valid events of the
//! wrong type for their topic and events with absurd values go to the DLQ
//! with their reason and never into the state (no changelog record of their
//! service); garbage on the changelog and on the fleet topic is an error with
//! a metric and a log line, and the detector keeps running.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bootstrap, isolated_config, of, read_until};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, DeadLetter, SignatureCount, Traffic};

/// 2026-03-09T10:00:00Z.
const T0: i64 = 1_773_050_400_000;

fn count(f: impl FnOnce(&mut SignatureCount)) -> Vec<u8> {
    let mut s = SignatureCount {
        service: "poison".into(),
        revision: "a".into(),
        signature: "00000000000000aa".into(),
        template: "boom".into(),
        exception_type: None,
        level: "error".into(),
        count: 3,
        first_seen_ms: T0,
        last_seen_ms: T0 + 1_000,
        sample_message: "boom".into(),
        sample_stack: None,
        frames: vec![],
        trace_id: None,
    };
    f(&mut s);
    selfheal_schemas::encode(&s).unwrap()
}

fn traffic(window_s: i32) -> Vec<u8> {
    selfheal_schemas::encode(&Traffic {
        service: "poison".into(),
        revision: "a".into(),
        window_start_ms: T0,
        window_s,
        requests: 10,
        errors: None,
    })
    .unwrap()
}

async fn metric(http: &reqwest::Client, addr: std::net::SocketAddr, name: &str) -> f64 {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dlq_and_garbage_state_is_an_error_not_a_skip() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = Arc::new(isolated_config(&bootstrap));
    let t = &config.topics;
    selfheal_common::kafka::ensure_topics(&config)
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let send = |topic: &str, key: &str, payload: Vec<u8>| {
        let producer = producer.clone();
        let (topic, key) = (topic.to_owned(), key.to_owned());
        async move {
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    };
    // Garbage where the detector keeps its state and reads its peers.
    send(
        &t.detector_changelog,
        "ghost",
        b"\x01\x02 not a record".to_vec(),
    )
    .await;
    send(
        &t.detector_fleet,
        "someone",
        b"{\"not\": \"a summary\"".to_vec(),
    )
    .await;

    let shutdown = CancellationToken::new();
    let detector = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = detector.http_addr;
    while metric(&http, addr, "selfheal_detector_changelog_errors_total").await < 1.0
        || metric(&http, addr, "selfheal_detector_fleet_errors_total").await < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "changelog/fleet garbage not counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    send(&t.signatures, "poison", traffic(60)).await;
    send(&t.signatures, "poison", count(|s| s.count = i64::MAX)).await;
    send(
        &t.signatures,
        "poison",
        count(|s| s.first_seen_ms = i64::MIN),
    )
    .await;
    send(&t.signatures, "poison", count(|s| s.first_seen_ms = 0)).await;
    send(&t.traffic, "poison", traffic(0)).await;

    let events = read_until(&bootstrap, &t.dlq, Duration::from_secs(60), |e| {
        e.len() >= 5
    });
    let letters: Vec<DeadLetter> = of(&events, |e| match e {
        AnyEvent::DeadLetter(d) => Some(d),
        _ => None,
    });
    let reasons: Vec<&str> = letters.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(letters.len(), 5, "{reasons:?}");
    for needle in [
        "a Traffic event on",
        "count is 9223372036854775807",
        "first_seen_ms is -9223372036854775808",
        "days apart",
        "window_s is 0",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "{needle}: {reasons:?}"
        );
    }
    assert!(letters
        .iter()
        .all(|d| d.error_kind == "rejected" && d.stage == "detector"));

    // None of it reached the state: no changelog record of the service.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changelog = read_until(
        &bootstrap,
        &t.detector_changelog,
        Duration::from_secs(3),
        |_| false,
    );
    assert_eq!(changelog.len(), 1, "only the garbage written above");
    assert_eq!(
        reqwest::get(format!("http://{addr}/readyz"))
            .await
            .unwrap()
            .status(),
        200,
        "the detector still runs"
    );
    shutdown.cancel();
    detector.wait().await.unwrap();
}
