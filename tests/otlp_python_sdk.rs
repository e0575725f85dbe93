//! The OpenTelemetry **Python** SDK, set up the standard way (Python
//! `logging` through its LoggingHandler, the default OTLP exporter:
//! HTTP/protobuf), configured only by `OTEL_EXPORTER_OTLP_ENDPOINT` and
//! `OTEL_RESOURCE_ATTRIBUTES`, delivers its logged exceptions into
//! signature counts on a real broker: `examples/otel-python/emit.py`, run
//! with the venv `deploy/python-deps.sh` makes (PyPI packages).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, isolated_config, of, read_until};
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, SignatureCount};

fn python() -> Option<String> {
    match std::env::var("SELFHEAL_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => Some(p),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("SELFHEAL_TEST_PYTHON is not set: run the suite with ./deploy/test.sh")
        }
        _ => {
            eprintln!("SKIPPED: SELFHEAL_TEST_PYTHON unset (deploy/python-deps.sh prints one)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdks_default_exporter_delivers_exceptions_into_signatures() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(python) = python() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/otel-python/emit.py");
    let out = tokio::task::spawn_blocking({
        let endpoint = format!("http://{}", ingest.http_addr);
        move || {
            Command::new(python)
                .arg(script)
                .args(["--errors", "5"])
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=checkout,service.version=b2",
                )
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    // The SDK reports failed exports only on stderr: there must be none.
    assert!(!stderr.contains("Failed to export"), "{stderr}");

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
    assert_eq!(
        (c.service.as_str(), c.revision.as_str()),
        ("checkout", "b2")
    );
    assert_eq!(c.exception_type.as_deref(), Some("KeyError"), "{c:?}");
    // The SDK's exception.stacktrace became frames in the app's code.
    assert!(
        c.frames.iter().any(|f| f.file.contains("emit.py")),
        "frames from the stack: {c:?}"
    );
    // The log message is kept beside the exception.
    let sample = format!("{} {}", c.sample_message, c.template);
    assert!(
        sample.contains("usd") || sample.contains("quote failed"),
        "{c:?}"
    );
}
