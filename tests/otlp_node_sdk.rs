//! The OpenTelemetry **JavaScript** SDK's OTLP/HTTP log exporter, which
//! sends OTLP **JSON**, configured only by `OTEL_EXPORTER_OTLP_ENDPOINT` and
//! `OTEL_RESOURCE_ATTRIBUTES`, delivers its logged exceptions into signature
//! counts on a real broker: `examples/otel-node/emit.js`, with the npm
//! packages `deploy/node-deps.sh` installs.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, isolated_config, of, read_until};
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, SignatureCount};

fn node() -> Option<String> {
    match std::env::var("SELFHEAL_TEST_NODE") {
        Ok(p) if !p.trim().is_empty() => Some(p),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("SELFHEAL_TEST_NODE is not set: run the suite with ./deploy/test.sh")
        }
        _ => {
            eprintln!("SKIPPED: SELFHEAL_TEST_NODE unset (deploy/node-deps.sh prints one)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdks_json_exporter_delivers_exceptions_into_signatures() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(node) = node() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let app = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/otel-node");
    let out = tokio::task::spawn_blocking({
        let endpoint = format!("http://{}", ingest.http_addr);
        move || {
            Command::new(node)
                .current_dir(app)
                .args(["emit.js", "5"])
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=cart,service.version=c3",
                )
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(!stderr.contains("Error"), "{stderr}");

    let (bs, topic) = (bootstrap.clone(), config.topics.signatures.clone());
    let counts_of = |evs: &[Result<AnyEvent, Vec<u8>>]| -> Vec<SignatureCount> {
        of(evs, |e| match e {
            AnyEvent::SignatureCount(c) => Some(c),
            _ => None,
        })
    };
    let events = tokio::task::spawn_blocking(move || {
        read_until(&bs, &topic, Duration::from_secs(30), |evs| {
            counts_of(evs).iter().map(|c| c.count).sum::<i64>() >= 5
        })
    })
    .await
    .unwrap();
    shutdown.cancel();
    ingest.wait().await.unwrap();

    let counts = counts_of(&events);
    assert_eq!(counts.iter().map(|c| c.count).sum::<i64>(), 5, "{counts:?}");
    let sigs: std::collections::BTreeSet<&str> =
        counts.iter().map(|c| c.signature.as_str()).collect();
    assert_eq!(sigs.len(), 1, "the five are one error: {counts:?}");
    let c = &counts[0];
    assert_eq!((c.service.as_str(), c.revision.as_str()), ("cart", "c3"));
    assert_eq!(c.exception_type.as_deref(), Some("TypeError"), "{c:?}");
    // exception.stacktrace (a V8 stack) became frames in the app's code.
    assert!(
        c.frames.iter().any(|f| f.file.contains("emit.js")),
        "frames from the stack: {c:?}"
    );
    // The log body is the template; the exception is kept in the stack.
    assert_eq!(c.template, "cart total failed for cart <*>", "{c:?}");
    assert!(
        c.sample_stack
            .as_deref()
            .is_some_and(|s| s.contains("Cannot read properties")),
        "{c:?}"
    );
}
