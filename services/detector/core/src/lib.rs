//! The detector's pure core, apart from its IO: the `[detector]`
//! configuration and the statistics that judge each deploy in event time.
//! Sync, no IO, no wall clock; it depends on the event contracts, serde and
//! `tracing` only, so its tests build and run without librdkafka or tokio.
//! The adapter crate (`selfheal-detector`) runs it over Kafka and re-exports
//! these modules.
//!
//! # Layout
//! - [`config`]: `[detector]` and `[detector.golden]` settings.
//! - [`core`]: windows, baselines, the sequential test, the fleet guard.
//! - [`fleet`]: fleet summaries exchanged between detector instances, and the
//!   bounded view of the other instances' services.
//! - [`series`]: compact minute/hour event-time count series.
//! - [`stats`]: p-values, e-values, e-BH, dispersion.

pub mod config;
pub mod core;
pub mod fleet;
pub mod series;
pub mod stats;
