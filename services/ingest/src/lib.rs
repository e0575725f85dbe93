//! selfheal ingest: turns raw error logs, traffic counts, deploys and builds into
//! the events the rest of selfheal consumes.
//!
//! # Layout
//! - [`record`] (pure): the NDJSON interchange format, with per-line errors.
//! - [`cli`]: `selfheal normalize` (stdin → `<signature>\t<template>` lines).
//! - [`normalize`] (pure): message → template + signature, stack → frames, scrubbing.
//! - [`events`] (pure): records → SignatureCount / Traffic / Deploy / Build events.
//! - [`intake`] (adapter): the axum HTTP intake with durable acknowledgement.
//! - [`spawn`] / [`run`]: wiring of config, Kafka, HTTP and shutdown.

pub mod cli;
pub mod events;
pub mod intake;
pub mod normalize;
pub mod record;

use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use selfheal_common::http::{self, Readiness};
use selfheal_common::kafka::{ensure_topics, EventProducer};
use selfheal_common::service::ServiceHandle;
use selfheal_common::{CancellationToken, Config, Error, Result};

/// The service name.
pub const NAME: &str = "ingest";

/// Starts ingest: topics, producer, and the HTTP server with the intake and the
/// health/readiness/metrics routes. Stops on `shutdown`: the HTTP server stops
/// accepting, finishes in-flight requests (each waits for its Kafka acks), then
/// the producer flushes.
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let registry = Registry::new();
    let ready = Readiness::default();
    let producer = EventProducer::new(&config.kafka)?;
    ensure_topics(&config).await?;
    let normalizer = cli::normalizer_config(&config.ingest);
    let intake = intake::Intake::new(
        producer.clone(),
        config.topics.clone(),
        normalizer,
        config.ingest.max_body_bytes,
        &registry,
    );
    let router = http::ops_router(registry, ready.clone()).merge(intake.router());
    let listener = http::bind(config.http.ingest).await?;
    let addr = http::local_addr(&listener)?;
    let server = http::serve(listener, router, shutdown.clone());
    ready.set(true);
    tracing::info!(service = NAME, http_addr = %addr, "started");
    let task = tokio::spawn(async move {
        let served = server.await.map_err(|e| Error::Stage {
            stage: NAME,
            message: format!("http task: {e}"),
        })?;
        ready.set(false);
        producer.flush(Duration::from_millis(config.kafka.delivery_timeout_ms))?;
        tracing::info!(service = NAME, "stopped");
        served
    });
    Ok(ServiceHandle::new(NAME, addr, task))
}

/// Runs ingest until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}
