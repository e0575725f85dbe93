//! selfheal pipeline: the four services' pure cores chained in one process,
//! ingest → detector → triage → fixer (dry-run), fed in event time.
//!
//! The live services exchange these events over Kafka; here the same cores
//! are wired as the topics wire them and driven one event at a time, with no
//! broker, no threads and no IO. `selfheal backtest` (a file), `selfheal
//! replay` (the input topics) and tests run the loop through this crate, so
//! there is one place where the stages meet.
//!
//! ```no_run
//! use selfheal_common::Config;
//! use selfheal_pipeline::{Cores, Ingest, Input};
//! # fn records() -> Vec<Input<'static>> { Vec::new() }
//!
//! let config = Config::default();
//! let mut ingest = Ingest::new(&config.ingest);
//! let mut cores = Cores::new(&config)?;
//! let mut outcome = selfheal_pipeline::Outcome::default();
//! // One minute of records, in time order, at a time.
//! let events = ingest.minute(records());
//! cores.feed_all(&events, &mut outcome);
//! cores.finish(&mut outcome);
//! # Ok::<(), selfheal_pipeline::Error>(())
//! ```
//!
//! # Layout
//! - [`ingest`] (pure): [`Input`] records (parsed, log lines prepared) and
//!   [`Ingest`], which turns a minute of them into the events the intake
//!   would publish for it, in the order the topics deliver them.
//! - [`cores`] (pure): [`Cores`], the detector (one, or several instances
//!   exchanging fleet summaries), triage and the fixer forced to dry-run,
//!   fed one input event at a time.
//! - [`outcome`]: [`Outcome`], what a run produced, in emission order.
//! - [`error`]: [`Error`] and [`Result`].

pub mod cores;
pub mod error;
pub mod ingest;
pub mod outcome;

pub use cores::Cores;
pub use error::{Error, Result};
pub use ingest::{Ingest, Input};
pub use outcome::Outcome;
