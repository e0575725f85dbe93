//! The OpenTelemetry Rust SDK with its OTLP/HTTP protobuf exporter, set up
//! the standard way (only `OTEL_EXPORTER_OTLP_ENDPOINT`), delivers error logs
//! into SignatureCounts on a real broker: the exporter posts protobuf to
//! `/v1/logs`, and a resource without `service.version` gets the fallback
//! revision instead of being lost.
//!
//! Its own test binary: it sets a process environment variable.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{bootstrap, isolated_config, of, read_until};
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::Resource;
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, SignatureCount};

/// Emits `n` error records through a provider with `resource` and shuts it
/// down (which exports them). On a plain thread: the blocking HTTP client
/// must not run inside the test's async runtime.
fn emit(resource: Resource, n: usize, body: &'static str) {
    std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .build()
            .expect("OTLP HTTP exporter");
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_simple_exporter(exporter)
            .build();
        let logger = provider.logger("selfheal-test");
        for i in 0..n {
            let mut r = logger.create_log_record();
            r.set_timestamp(SystemTime::now());
            r.set_severity_number(Severity::Error);
            r.set_severity_text("ERROR");
            r.set_body(AnyValue::from(body));
            r.add_attribute("exception.type", "KeyError");
            r.add_attribute("exception.message", format!("'XC{i}'"));
            r.add_attribute(
                "exception.stacktrace",
                "Traceback (most recent call last):\n  File \"/app/src/checkout/pricing.py\", \
                 line 216, in quote\nKeyError: 'XC'",
            );
            logger.emit(r);
        }
        provider.shutdown().expect("provider shutdown");
    })
    .join()
    .expect("emitting thread");
}

fn pick(e: &AnyEvent) -> Option<&SignatureCount> {
    match e {
        AnyEvent::SignatureCount(s) => Some(s),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_otel_sdk_http_protobuf_exporter_delivers_error_logs() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    // The standard set-up: a base URL; the exporter appends `/v1/logs`.
    std::env::set_var(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://{}", ingest.http_addr),
    );
    std::env::remove_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");

    let versioned = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "checkout"),
            KeyValue::new("service.version", "b"),
        ])
        .build();
    let unversioned = Resource::builder_empty()
        .with_attributes([KeyValue::new("service.name", "cart")])
        .build();
    tokio::task::spawn_blocking(move || {
        emit(versioned, 3, "quote failed");
        emit(unversioned, 2, "cart failed");
    })
    .await
    .unwrap();

    let count = |sigs: &[SignatureCount], service: &str, revision: &str| -> i64 {
        sigs.iter()
            .filter(|s| s.service == service && s.revision == revision)
            .map(|s| s.count)
            .sum()
    };
    let events = read_until(
        &bootstrap,
        &config.topics.signatures,
        Duration::from_secs(30),
        |evs| {
            let sigs: Vec<SignatureCount> = of(evs, pick);
            count(&sigs, "checkout", "b") >= 3 && count(&sigs, "cart", "unknown") >= 2
        },
    );
    let sigs: Vec<SignatureCount> = of(&events, pick);
    assert_eq!(count(&sigs, "checkout", "b"), 3, "{sigs:?}");
    assert_eq!(
        count(&sigs, "cart", "unknown"),
        2,
        "no service.version: the fallback revision, not a loss: {sigs:?}"
    );
    let checkout = sigs.iter().find(|s| s.service == "checkout").unwrap();
    assert_eq!(
        checkout.sample_message, "quote failed",
        "the body is the message"
    );
    assert_eq!(checkout.exception_type.as_deref(), Some("KeyError"));
    assert_eq!(checkout.frames[0].line, Some(216));
    assert_eq!(checkout.level, "error");

    // The fallback is counted by source on /metrics.
    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("selfheal_ingest_otlp_revision_total{source=\"fallback\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("selfheal_ingest_otlp_revision_total{source=\"service.version\"} 3"),
        "{metrics}"
    );

    shutdown.cancel();
    ingest.wait().await.unwrap();
}
