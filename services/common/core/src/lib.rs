//! What every selfheal core shares, with no IO: its tests build without
//! librdkafka, axum or tokio (`tests/core_crates_are_pure.rs`).
//!
//! # Layout
//! - [`scrub`]: secret and personal-data scrubbing, one implementation for
//!   everything that leaves a service (`pii.rs` holds the personal-data
//!   detectors).
//! - [`ranges`]: range checks of configuration values, each section checking
//!   its own keys.

mod pii;
pub mod ranges;
pub mod scrub;
