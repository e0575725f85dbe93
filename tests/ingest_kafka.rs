//! Ingest's intake against a real broker: OTLP/HTTP (JSON and protobuf), pre-aggregation across
//! requests with durable acknowledgement, tenant auth, flush on shutdown, and
//! the raw topic of JSON lines (at least once, bad lines to the DLQ).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bootstrap, isolated_config, of, read_until};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use selfheal_common::config::TenantConfig;
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::{AnyEvent, SignatureCount};

/// `google.rpc.Status`, as an OTLP client decodes an error body.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

const WAIT: Duration = Duration::from_secs(30);

fn signatures(bootstrap: &str, config: &Config, total: i64) -> Vec<SignatureCount> {
    let events = read_until(bootstrap, &config.topics.signatures, WAIT, |evs| {
        sum(&of(evs, pick)) >= total
    });
    of(&events, pick)
}

fn pick(e: &AnyEvent) -> Option<&SignatureCount> {
    match e {
        AnyEvent::SignatureCount(s) => Some(s),
        _ => None,
    }
}

fn sum(s: &[SignatureCount]) -> i64 {
    s.iter().map(|s| s.count).sum()
}

fn otlp_body(n: usize) -> serde_json::Value {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "timeUnixNano": format!("{}", 1_773_050_403_000_000_000u64 + i as u64 * 1_000_000_000),
                "severityText": "ERROR",
                "body": {"stringValue": "unhandled exception"},
                "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "KeyError"}},
                    {"key": "exception.message", "value": {"stringValue": format!("'XC{i}'")}},
                    {"key": "exception.stacktrace", "value": {"stringValue": "Traceback (most recent call last):\n  File \"/app/src/checkout/pricing.py\", line 216, in quote\nKeyError: 'XC'"}}
                ]
            })
        })
        .chain(std::iter::once(serde_json::json!({"body": {"stringValue": "no time"}})))
        .collect();
    serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "service.version", "value": {"stringValue": "b"}}
        ]},
        "scopeLogs": [{"logRecords": records}]
    }]})
}

/// OTLP/HTTP JSON logs become SignatureCounts (service and revision from the
/// resource, the error from the exception attributes); a bad record is named
/// and the rest written (OTLP partial success).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_logs_become_signature_counts() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();

    // The OTLP path; the JSON answer is OTLP's `ExportLogsServiceResponse`.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/logs", ingest.http_addr))
        .json(&otlp_body(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "1", "{v}");
    let message = v["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("line 4: field `resourceLogs[0].scopeLogs[0].logRecords[3].timeUnixNano`"),
        "{message}"
    );

    // Acknowledged means already on the topic.
    let sigs = signatures(&bootstrap, &config, 3);
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    let s = &sigs[0];
    assert_eq!((s.service.as_str(), s.revision.as_str()), ("checkout", "b"));
    assert_eq!(s.count, 3);
    assert_eq!(s.exception_type.as_deref(), Some("KeyError"));
    assert_eq!(
        (s.first_seen_ms, s.last_seen_ms),
        (1_773_050_403_000, 1_773_050_405_000)
    );
    assert_eq!(s.frames[0].line, Some(216));

    // Protobuf is answered in protobuf: an empty request is a success, a
    // body that is not a request a `google.rpc.Status` (INVALID_ARGUMENT).
    let post_proto = |body: Vec<u8>| {
        reqwest::Client::new()
            .post(format!("http://{}/v1/logs", ingest.http_addr))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
    };
    let r = post_proto(vec![0x0a, 0x00]).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let bytes = r.bytes().await.unwrap();
    let ok = ExportLogsServiceResponse::decode(&bytes[..]).unwrap();
    assert!(ok.partial_success.is_none(), "{ok:?}");
    let r = post_proto(vec![0xff, 0xff, 0xff]).await.unwrap();
    assert_eq!(r.status(), 400);
    let status = RpcStatus::decode(&r.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(status.message.contains("protobuf"), "{status:?}");
    // JSON errors are a `google.rpc.Status` too, and an NDJSON record sent
    // to the OTLP path is refused, never an empty success.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/logs", ingest.http_addr))
        .header("content-type", "application/json")
        .body(r#"{"service":"checkout","revision":"b","message":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], 3, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("/v1/ndjson/logs"),
        "{v}"
    );

    // NDJSON with an NDJSON type on the old path: still taken, for one
    // release, marked deprecated with its successor.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/logs", ingest.http_addr))
        .header("content-type", "application/x-ndjson")
        .body(r#"{"ts":1773050403000,"service":"checkout","revision":"b","message":"old path"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["deprecation"], "true");
    assert!(r.headers()["link"]
        .to_str()
        .unwrap()
        .contains("/v1/ndjson/logs"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 1, "{v}");

    shutdown.cancel();
    ingest.wait().await.unwrap();
}

/// Concurrent requests are pre-aggregated into one SignatureCount per
/// (service, revision, signature) per flush, and every request is answered only
/// after that flush was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_flush_and_each_waits_for_it() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 1_500;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/ndjson/logs", ingest.http_addr);
    let http = reqwest::Client::new();
    let requests = (0..8).map(|i| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body = format!(
                "{{\"ts\":{},\"service\":\"cart\",\"revision\":\"r1\",\"message\":\"Timeout after {}ms calling payments\"}}\n{{\"ts\":{},\"service\":\"cart\",\"revision\":\"r1\",\"message\":\"Timeout after {}ms calling payments\"}}",
                1_000 + i,
                300 + i,
                2_000 + i,
                400 + i
            );
            let r = http.post(&url).body(body).send().await.unwrap();
            (r.status().as_u16(), Instant::now())
        }
    });
    let results = futures::future::join_all(requests).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");

    // Everything acknowledged is readable right away.
    let b = bootstrap.clone();
    let topic = config.topics.signatures.clone();
    let events = tokio::task::spawn_blocking(move || {
        read_until(&b, &topic, Duration::from_secs(5), |evs| {
            sum(&of(evs, pick)) >= 16
        })
    })
    .await
    .unwrap();
    let sigs = of(&events, pick);
    assert_eq!(sum(&sigs), 16, "{sigs:?}");
    assert!(
        sigs.len() <= 2,
        "16 lines of one signature from 8 requests pre-aggregate into one event per flush: {sigs:?}"
    );
    assert_eq!(sigs.iter().map(|s| s.first_seen_ms).min(), Some(1_000));
    assert_eq!(sigs.iter().map(|s| s.last_seen_ms).max(), Some(2_007));

    shutdown.cancel();
    ingest.wait().await.unwrap();
}

/// A request waiting for its flush when shutdown starts is flushed at once,
/// answered 200, and its data is on Kafka: nothing accepted is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_waiting_requests_before_stopping() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 60_000;
    config.ingest.consume_raw = false;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/ndjson/logs", ingest.http_addr);
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .body(r#"{"ts":5,"service":"cart","revision":"r1","message":"disk full on /var"}"#)
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!request.is_finished(), "waits for its flush");
    let started = Instant::now();
    shutdown.cancel();
    assert_eq!(request.await.unwrap(), 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    ingest.wait().await.unwrap();
    assert_eq!(sum(&signatures(&bootstrap, &config, 1)), 1);
}

/// With tenants configured: 401 without or with an unknown token, 403 (nothing
/// written) when a record's service is not the tenant's, 200 otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_tokens_gate_the_intake() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 100;
    config.ingest.consume_raw = false;
    config.ingest.tenants = vec![TenantConfig {
        name: "shop".into(),
        token: "s3cret-shop-token".into(),
        token_env: String::new(),
        services: vec!["checkout".into()],
    }];
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/ndjson/logs", ingest.http_addr);
    let http = reqwest::Client::new();
    let line = |service: &str| {
        format!(r#"{{"ts":5,"service":"{service}","revision":"r1","message":"boom"}}"#)
    };
    let r = http.post(&url).body(line("checkout")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = http
        .post(&url)
        .bearer_auth("wrong")
        .body(line("checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .bearer_auth("s3cret-shop-token")
        .body(format!("{}\n{}", line("checkout"), line("payments")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["rejected"][0]["line"], 2, "{v}");
    assert_eq!(v["rejected"][0]["field"], "service");
    let r = http
        .post(&url)
        .bearer_auth("s3cret-shop-token")
        .body(line("checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    shutdown.cancel();
    ingest.wait().await.unwrap();
    let sigs = signatures(&bootstrap, &config, 1);
    assert_eq!(sum(&sigs), 1, "the 403 request wrote nothing: {sigs:?}");
}

/// The raw topic: good lines become SignatureCounts, bad lines DeadLetters
/// naming line, field and reason, and every offset is committed once the
/// outputs are acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_topic_lines_are_ingested_at_least_once_with_bad_lines_dead_lettered() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .create()
        .unwrap();
    let topic = config.topics.logs_raw.clone();
    let payloads: Vec<String> = vec![
        r#"{"ts":"2026-03-09T10:00:01Z","service":"cart","revision":"r1","message":"Timeout after 31ms"}"#.into(),
        r#"{"ts":"yesterday","service":"cart","revision":"r1","message":"Timeout after 32ms"}"#.into(),
        // Two lines in one message (shippers may batch).
        "{\"ts\":2000,\"service\":\"cart\",\"revision\":\"r1\",\"message\":\"Timeout after 33ms\"}\n{\"ts\":3000,\"service\":\"cart\",\"revision\":\"r1\",\"message\":\"Timeout after 34ms\"}".into(),
        "not json".into(),
    ];
    let mut partition = None;
    for p in &payloads {
        let delivered = producer
            .send(
                FutureRecord::to(&topic).key("cart").payload(p),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
        partition = Some(delivered.partition);
    }
    let partition = partition.unwrap();

    let sigs = signatures(&bootstrap, &config, 3);
    assert_eq!(sum(&sigs), 3, "{sigs:?}");
    assert!(sigs.iter().all(|s| s.service == "cart"));
    let dlq = read_until(&bootstrap, &config.topics.dlq, WAIT, |e| e.len() >= 2);
    let letters = of(&dlq, |e| match e {
        AnyEvent::DeadLetter(d) => Some(d),
        _ => None,
    });
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!((letters[0].partition, letters[0].offset), (partition, 1));
    assert!(
        letters[0].reason.starts_with("line 1: field `ts`"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].payload, payloads[1].as_bytes());
    assert_eq!(letters[0].stage, "ingest");
    assert!(
        letters[1].reason.contains("(json)"),
        "{}",
        letters[1].reason
    );

    shutdown.cancel();
    ingest.wait().await.unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set(
            "group.id",
            format!("{}.ingest.raw", config.kafka.group_prefix),
        )
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, partition);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed
            .find_partition(&topic, partition)
            .unwrap()
            .offset(),
        Offset::Offset(4)
    );
}
