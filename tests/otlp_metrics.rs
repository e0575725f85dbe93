//! OTLP metrics on `POST /v1/metrics` against a real broker:
//! - the OpenTelemetry Python SDK's default metric exporter (HTTP/protobuf,
//!   cumulative temporality, env-only setup; `examples/otel-python/metrics.py`)
//!   sends `http.server.request.duration` and `process.memory.usage`: the
//!   traffic topic counts every request once and its 5xx as errors (the
//!   cumulative points turned into deltas), the latency topic gets the
//!   route's histogram, the gauges topic the memory;
//! - an OTLP JSON body (delta temporality, written per the spec) is read
//!   the same way, and a metric selfheal does not read is ignored.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, external, isolated_config, of, read_until};
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, Traffic};

fn traffic_of(evs: &[Result<AnyEvent, Vec<u8>>], service: &str) -> Vec<Traffic> {
    of(evs, |e| match e {
        AnyEvent::Traffic(t) if t.service == service => Some(t),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_metrics_become_traffic_latency_and_gauges() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(python) = external("SELFHEAL_TEST_PYTHON") else {
        return;
    };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let endpoint = format!("http://{}", ingest.http_addr);

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/otel-python/metrics.py"
    );
    let out = tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || {
            Command::new(python)
                .arg(script)
                .args(["--requests", "30", "--errors", "3"])
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=checkout,service.version=b2,service.instance.id=checkout-1",
                )
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(!stderr.contains("Failed to export"), "{stderr}");

    // OTLP JSON, delta temporality, as the spec writes it; plus a metric
    // selfheal ignores.
    let now_ns = u128::from(selfheal_common::wall_clock_ms().unsigned_abs()) * 1_000_000;
    let json = serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "cart"}},
            {"key": "service.version", "value": {"stringValue": "c3"}}]},
        "scopeMetrics": [{"scope": {"name": "http"}, "metrics": [
            {"name": "http.server.request.duration", "unit": "s", "histogram": {
                "aggregationTemporality": 1,
                "dataPoints": [{
                    "startTimeUnixNano": (now_ns - 60_000_000_000).to_string(),
                    "timeUnixNano": now_ns.to_string(),
                    "count": "12", "sum": 1.5,
                    "bucketCounts": ["2", "8", "2"], "explicitBounds": [0.05, 0.25],
                    "attributes": [
                        {"key": "http.route", "value": {"stringValue": "/cart"}},
                        {"key": "http.response.status_code", "value": {"intValue": "500"}}]}]}},
            {"name": "jvm.threads.count", "gauge": {"dataPoints": [
                {"timeUnixNano": now_ns.to_string(), "asInt": "42"}]}}]}]}]});
    let r = reqwest::Client::new()
        .post(format!("{endpoint}/v1/metrics"))
        .header("content-type", "application/json")
        .body(json.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{}", "a full success");
    // A body that is not OTLP: 400 with a google.rpc.Status.
    let r = reqwest::Client::new()
        .post(format!("{endpoint}/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let t = &config.topics;
    let (bs, topic) = (bootstrap.clone(), t.traffic.clone());
    let traffic = tokio::task::spawn_blocking(move || {
        read_until(&bs, &topic, Duration::from_secs(20), |evs| {
            traffic_of(evs, "checkout")
                .iter()
                .map(|t| t.requests)
                .sum::<i64>()
                >= 30
                && !traffic_of(evs, "cart").is_empty()
        })
    })
    .await
    .unwrap();
    let checkout = traffic_of(&traffic, "checkout");
    assert_eq!(
        checkout.iter().map(|t| t.requests).sum::<i64>(),
        30,
        "{checkout:?}"
    );
    assert_eq!(
        checkout.iter().filter_map(|t| t.errors).sum::<i64>(),
        3,
        "{checkout:?}"
    );
    assert!(checkout.iter().all(|t| t.revision == "b2"));
    let cart = traffic_of(&traffic, "cart");
    assert_eq!(
        (cart[0].requests, cart[0].errors, cart[0].window_s),
        (12, Some(12), 60)
    );

    let (bs, topic) = (bootstrap.clone(), t.latency.clone());
    let latency = tokio::task::spawn_blocking(move || {
        read_until(&bs, &topic, Duration::from_secs(10), |_| false)
    })
    .await
    .unwrap();
    let routes: Vec<String> = latency
        .iter()
        .filter_map(|e| match e {
            Ok(AnyEvent::LatencyHistogram(h)) => Some(format!(
                "{}{}",
                h.service,
                h.route.clone().unwrap_or_default()
            )),
            _ => None,
        })
        .collect();
    assert!(routes.contains(&"checkout/quote".to_owned()), "{routes:?}");
    assert!(routes.contains(&"cart/cart".to_owned()), "{routes:?}");

    let (bs, topic) = (bootstrap.clone(), t.gauges.clone());
    let gauges = tokio::task::spawn_blocking(move || {
        read_until(&bs, &topic, Duration::from_secs(10), |evs| !evs.is_empty())
    })
    .await
    .unwrap();
    let mem: Vec<(String, String)> = gauges
        .iter()
        .filter_map(|e| match e {
            Ok(AnyEvent::InstanceGauge(g)) => Some((g.metric.clone(), g.instance.clone())),
            _ => None,
        })
        .collect();
    assert!(
        mem.contains(&("process.memory.usage".to_owned(), "checkout-1".to_owned())),
        "{mem:?}"
    );
    shutdown.cancel();
    ingest.wait().await.unwrap();
}
