//! selfheal ingest: turns raw error logs, traffic counts, deploys and builds into
//! the events the rest of selfheal consumes.
//!
//! # Layout
//! - [`record`] (pure): the NDJSON interchange format, with per-line errors.
//! - [`event_time`] (pure): the live inputs' event-time limits (wall clock).
//! - [`shown`] (pure): how a rejected value appears in an error (never verbatim).
//! - [`otlp`] (pure): OTLP/HTTP logs (protobuf and JSON) → the same records,
//!   and the answers OTLP specifies.
//! - [`cli`]: `selfheal normalize` (stdin → `<signature>\t<template>` lines).
//! - [`normalize`] (pure): message → template + signature, stack → frames, scrubbing.
//! - [`github`] (pure): GitHub `deployment_status` webhooks → deploy records.
//! - [`events`] (pure): records → SignatureCount / Traffic / Deploy / Build events,
//!   and their pre-aggregation across batches.
//! - [`batch`] (adapter): the shared flush loop: pre-aggregation, bounded buffer,
//!   durable acknowledgement of every submitter; [`txn`]: one Kafka
//!   transaction per flush (`ingest.transactional`).
//! - [`intake`] (adapter): the axum HTTP intake; [`auth`]: its tenants;
//!   [`request_body`]: content type, size, deadline and encoding of a body;
//!   [`idempotency`] (pure): `Idempotency-Key` results.
//! - [`server`] (adapter): the intake's HTTP/1 server: header timeout (also
//!   the keep-alive idle bound), connection cap, graceful shutdown.
//! - [`raw`] (adapter): the raw Kafka topic of JSON lines, at least once.
//! - [`spawn`] / [`run`]: wiring of config, Kafka, HTTP and shutdown.

pub mod auth;
pub mod batch;
pub mod cli;
pub mod event_time;
pub mod events;
pub mod github;
pub mod golden;
pub mod idempotency;
pub mod intake;
pub mod normalize;
pub mod otlp;
pub mod promql;
pub mod raw;
pub mod record;
pub mod request_body;
pub mod server;
pub mod shown;
pub mod txn;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::Registry;
use selfheal_common::http::{self, Readiness};
use selfheal_common::kafka::{ensure_topics, EventProducer};
use selfheal_common::metrics::StageMetrics;
use selfheal_common::service::ServiceHandle;
use selfheal_common::{CancellationToken, Config, Error, Result};

/// The service name.
pub const NAME: &str = "ingest";

/// Starts ingest: topics, producer, the batcher, the HTTP server with the
/// intake and the health/readiness/metrics routes, and (with
/// `ingest.consume_raw`) the raw-topic consumer.
///
/// Stops on `shutdown`, in order: the raw consumer stops fetching, the HTTP
/// server stops accepting, while the batcher flushes every submission at once;
/// when both inputs are done (each in-flight request has its answer, the
/// consumer has committed), the batcher flushes the rest and waits for its
/// acknowledgements, then the producer flushes. A failing raw consumer stops
/// the whole service with its error.
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let registry = Registry::new();
    selfheal_common::metrics::register_build_info(&registry, NAME);
    let ready = Readiness::default();
    selfheal_common::scrub::set_ip_scrubbing(config.ingest.scrub_ips);
    let tenants = auth::Tenants::from_config(&config.ingest.tenants, |k| std::env::var(k).ok())
        .map_err(|e| Error::Config {
            source_name: "ingest.tenants".to_owned(),
            message: e.to_string(),
        })?;
    let producer = EventProducer::new(&config.kafka)?;
    ensure_topics(&config).await?;
    // Stopping is internal too: a failed raw consumer takes HTTP down with it.
    let stop = shutdown.child_token();
    let normalizer = Arc::new(Mutex::new(normalize::Normalizer::new(
        cli::normalizer_config(&config.ingest),
    )));
    let (batcher, batcher_task) = batch::Batcher::spawn(
        writer(&config, &producer)?,
        Arc::new(config.topics.clone()),
        Duration::from_millis(config.ingest.flush_interval_ms),
        config.ingest.max_buffered_records,
        stop.clone(),
        &registry,
    );
    let raw_task = config.ingest.consume_raw.then(|| {
        tokio::spawn(raw::run(
            config.clone(),
            batcher.clone(),
            normalizer.clone(),
            producer.clone(),
            StageMetrics::new(&registry, NAME),
            stop.clone(),
        ))
    });
    let prom_task = (!config.ingest.prometheus_traffic.url.is_empty()).then(|| {
        let (cfg, batcher, normalizer, registry, stop) = (
            config.ingest.prometheus_traffic.clone(),
            batcher.clone(),
            normalizer.clone(),
            registry.clone(),
            stop.clone(),
        );
        tokio::spawn(async move { promql::run(cfg, batcher, normalizer, &registry, stop).await })
    });
    let github_secret = github_secret(&config)?;
    let intake = intake::Intake::new(
        batcher.clone(),
        tenants,
        normalizer,
        &config.ingest,
        &registry,
    )
    .with_github_secret(github_secret);
    let router = http::ops_router(registry, ready.clone()).merge(intake.router());
    let listener = http::bind(config.http.ingest).await?;
    let addr = http::local_addr(&listener)?;
    let limits = server::Limits {
        header_timeout: Duration::from_millis(config.ingest.header_timeout_ms),
        max_connections: config.ingest.max_connections,
    };
    let server = server::serve(listener, router, limits, stop.clone());
    ready.set(true);
    tracing::info!(service = NAME, http_addr = %addr, "started");
    let task = tokio::spawn(async move {
        let raw = input_task(raw_task, "raw consumer", &stop);
        let http = async { server.await.map_err(Error::caused(NAME, "http task"))? };
        let prom = input_task(prom_task, "prometheus traffic", &stop);
        let (raw, served, prom) = tokio::join!(raw, http, prom);
        ready.set(false);
        batcher.close();
        batcher_task.wait().await;
        producer.flush(Duration::from_millis(config.kafka.delivery_timeout_ms))?;
        tracing::info!(service = NAME, "stopped");
        served.and(raw).and(prom)
    });
    Ok(ServiceHandle::new(NAME, addr, task))
}

/// The batcher's writer: one Kafka transaction per flush
/// (`ingest.transactional`), or the pipelined producer.
fn writer(config: &Config, producer: &EventProducer) -> Result<batch::Writer> {
    if !config.ingest.transactional {
        return Ok(batch::Writer::Pipelined(producer.clone()));
    }
    let id = format!("{}.{NAME}", config.kafka.group_prefix);
    let w = txn::TxnWriter::new(&config.kafka, &id)?;
    Ok(batch::Writer::Transactional(Arc::new(
        std::sync::Mutex::new(w),
    )))
}

/// The GitHub webhook secret from the variable `ingest.github_webhook_secret_env`
/// names; a named variable that is unset or empty is a config error.
fn github_secret(config: &Config) -> Result<Option<Vec<u8>>> {
    match config.ingest.github_webhook_secret_env.as_str() {
        "" => Ok(None),
        name => std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| Some(v.into_bytes()))
            .ok_or_else(|| Error::Config {
                source_name: "ingest.github_webhook_secret_env".to_owned(),
                message: format!("the environment variable {name} is not set"),
            }),
    }
}

/// Waits for an input task (the raw consumer, the Prometheus traffic poll),
/// if it runs; when it ends, for whatever reason, the whole service stops
/// (`stop`), and a failure is logged and returned.
async fn input_task(
    task: Option<tokio::task::JoinHandle<Result<()>>>,
    what: &'static str,
    stop: &CancellationToken,
) -> Result<()> {
    let Some(t) = task else { return Ok(()) };
    let r = t
        .await
        .unwrap_or_else(|e| Err(Error::caused(NAME, format!("{what} task"))(e)));
    if let Err(e) = &r {
        tracing::error!(service = NAME, error = %e, "{what} failed; stopping ingest");
    }
    stop.cancel();
    r
}

/// Runs ingest until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}
