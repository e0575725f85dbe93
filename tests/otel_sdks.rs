//! Real OpenTelemetry SDKs, set up the standard way and configured only by
//! `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_RESOURCE_ATTRIBUTES`, deliver their
//! logged exceptions into signature counts on a real broker:
//! - the **Python** SDK (Python `logging` through its LoggingHandler, the
//!   default OTLP exporter: HTTP/protobuf): `examples/otel-python/emit.py`,
//!   with the venv `deploy/python-deps.sh` makes (PyPI packages);
//! - the **JavaScript** SDK's OTLP/HTTP log exporter, which sends OTLP
//!   **JSON**: `examples/otel-node/emit.js`, with the npm packages
//!   `deploy/node-deps.sh` installs.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, external, isolated_config, of, read_until};
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, SignatureCount};

/// Runs `program args` (in `dir`) against a fresh intake with `resource` as
/// `OTEL_RESOURCE_ATTRIBUTES`; returns the signature counts on the topic
/// once they add up to `want`, and the program's stderr.
async fn deliver(
    bootstrap: &str,
    program: String,
    args: &[&str],
    dir: &str,
    resource: &str,
    want: i64,
) -> (Vec<SignatureCount>, String) {
    let mut config = isolated_config(bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let endpoint = format!("http://{}", ingest.http_addr);
    let (args, dir, resource) = (
        args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
        dir.to_owned(),
        resource.to_owned(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .current_dir(dir)
            .args(args)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_RESOURCE_ATTRIBUTES", resource)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let counts_of = |evs: &[Result<AnyEvent, Vec<u8>>]| -> Vec<SignatureCount> {
        of(evs, |e| match e {
            AnyEvent::SignatureCount(c) => Some(c),
            _ => None,
        })
    };
    let (bs, topic) = (bootstrap.to_owned(), config.topics.signatures.clone());
    let events = tokio::task::spawn_blocking(move || {
        read_until(&bs, &topic, Duration::from_secs(30), |evs| {
            counts_of(evs).iter().map(|c| c.count).sum::<i64>() >= want
        })
    })
    .await
    .unwrap();
    shutdown.cancel();
    ingest.wait().await.unwrap();
    let counts = counts_of(&events);
    assert_eq!(
        counts.iter().map(|c| c.count).sum::<i64>(),
        want,
        "{counts:?}"
    );
    let sigs: std::collections::BTreeSet<&str> =
        counts.iter().map(|c| c.signature.as_str()).collect();
    assert_eq!(sigs.len(), 1, "the errors are one signature: {counts:?}");
    (counts, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdks_default_exporter_delivers_exceptions_into_signatures() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(python) = external("SELFHEAL_TEST_PYTHON") else {
        return;
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/otel-python");
    let resource = "service.name=checkout,service.version=b2";
    let (counts, stderr) = deliver(
        &bootstrap,
        python,
        &["emit.py", "--errors", "5"],
        dir,
        resource,
        5,
    )
    .await;
    // The SDK reports failed exports only on stderr: there must be none.
    assert!(!stderr.contains("Failed to export"), "{stderr}");
    let c = &counts[0];
    assert_eq!(
        (c.service.as_str(), c.revision.as_str()),
        ("checkout", "b2")
    );
    assert_eq!(c.exception_type.as_deref(), Some("KeyError"), "{c:?}");
    // The SDK's exception.stacktrace became frames in the app's code.
    assert!(c.frames.iter().any(|f| f.file.contains("emit.py")), "{c:?}");
    // The log message is kept beside the exception.
    let text = format!("{} {}", c.sample_message, c.template);
    assert!(
        text.contains("usd") || text.contains("quote failed"),
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdks_json_exporter_delivers_exceptions_into_signatures() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(node) = external("SELFHEAL_TEST_NODE") else {
        return;
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/otel-node");
    let resource = "service.name=cart,service.version=c3";
    let (counts, stderr) = deliver(&bootstrap, node, &["emit.js", "5"], dir, resource, 5).await;
    assert!(!stderr.contains("Error"), "{stderr}");
    let c = &counts[0];
    assert_eq!((c.service.as_str(), c.revision.as_str()), ("cart", "c3"));
    assert_eq!(c.exception_type.as_deref(), Some("TypeError"), "{c:?}");
    // exception.stacktrace (a V8 stack) became frames in the app's code.
    assert!(c.frames.iter().any(|f| f.file.contains("emit.js")), "{c:?}");
    // The log body is the template; the exception is kept in the stack.
    assert_eq!(c.template, "cart total failed for cart <*>", "{c:?}");
    assert!(
        c.sample_stack
            .as_deref()
            .is_some_and(|s| s.contains("Cannot read properties")),
        "{c:?}"
    );
}
