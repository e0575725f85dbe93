//! Triage's pure core, apart from its IO: the `[triage]` configuration and
//! everything that decides a verdict from a deploy's diff and its regressions.
//! Sync, no IO, deterministic; it depends on the event contracts and serde
//! only, so its tests build and run without librdkafka or tokio. The adapter
//! crate (`selfheal-triage`) fetches diffs and source, asks the optional LLM,
//! and re-exports these modules.
//!
//! # Layout
//! - [`config`]: `[triage]` settings and per-repository class overrides.
//! - [`error`]: [`Error`](error::Error), the invalid configuration.
//! - [`diff`]: the unified-diff parser (fuzzed: never panics).
//! - [`classes`]: file classes (runtime, config, test, docs …) with overrides.
//! - [`frames`]: stack-frame paths → repository paths.
//! - [`functions`]: the functions a diff's hunks fall in, from source.
//! - [`link`]: evidence, scores, and how scores become confidences.
//! - [`settings`]: changed configuration that governs dependency calls.
//! - [`incident`]: one incident per deploy, pooled evidence.
//! - [`decide`]: the deploy's guilt, apart from the code's localization.
//! - [`judge`]: a verdict from the incident, the decision and the evidence.
//! - [`core`]: the triage state (recent deploys per service) and the rules.

pub mod classes;
pub mod config;
pub mod core;
pub mod decide;
pub mod diff;
pub mod error;
pub mod frames;
pub mod functions;
pub mod incident;
pub mod judge;
pub mod link;
pub mod settings;
