//! The ingest service's pure core, apart from its IO: the `[ingest]`
//! configuration, with its range checks.
//!
//! This crate depends on serde and `selfheal-common-core` only, so its tests
//! build and run without librdkafka, axum or tokio. The adapter crate
//! (`selfheal-ingest`) runs the intake, the raw-topic consumer and the
//! batcher that read it.
//!
//! # Layout
//! - [`config`]: `[ingest]` settings, `PrometheusTrafficConfig`, `TenantConfig`.

pub mod config;
