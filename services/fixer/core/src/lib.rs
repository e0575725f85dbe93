//! The fixer's pure core, apart from its IO: the `[fixer]` configuration with
//! its domain enums, and the remediation policy that reads them.
//!
//! This crate depends on the event contracts and serde only, so its tests
//! build and run without librdkafka, axum or tokio. The adapter crate
//! (`selfheal-fixer`) re-exports [`policy`] and runs the executors,
//! dispatchers and notifiers the policy asks for.
//!
//! # Layout
//! - [`config`]: `[fixer]` settings, `Severity`, `FixerRule`,
//!   `RollbackExecutorKind`, `DispatcherKind`.
//! - [`policy`]: the rule table, the safety rails, severity and the recovery
//!   watch.

pub mod config;
pub mod policy;
