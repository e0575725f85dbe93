//! selfheal's public event contract: the Avro schemas the four services
//! (ingest, detector, triage, fixer) and other teams exchange over Kafka, the
//! Rust types that mirror them, and the codec that puts them on the wire.
//!
//! Every Kafka message value is Avro **single-object encoding**: the marker
//! `C3 01`, the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of the
//! writer schema's Parsing Canonical Form, then the Avro binary datum. The
//! writer schema is always the `.avsc` file, so any Avro library that reads
//! that file can decode a message, and [`decode_any`] can tell the events
//! apart by fingerprint alone.
//!
//! ```
//! use selfheal_schemas::{decode, decode_any, encode, AnyEvent, Event, Traffic};
//!
//! let traffic = Traffic {
//!     service: "checkout".into(),
//!     revision: "a1b2c3d".into(),
//!     window_start_ms: 1_773_050_400_000,
//!     window_s: 60,
//!     requests: 8105,
//!     errors: Some(37),
//! };
//! let bytes = encode(&traffic)?;
//! assert_eq!(&bytes[..2], &[0xC3, 0x01]);
//! assert_eq!(&bytes[2..10], &Traffic::fingerprint());
//! assert_eq!(decode::<Traffic>(&bytes)?, traffic);
//! assert!(matches!(decode_any(&bytes)?, AnyEvent::Traffic(_)));
//! # Ok::<(), selfheal_schemas::Error>(())
//! ```
//!
//! Decoding never panics, whatever the bytes: every failure is an [`Error`],
//! and every [`Error`] is poison ([`Error::is_poison`]): send the message to the
//! dead-letter topic, do not retry it. The first use of the codec caps any
//! single allocation apache-avro makes while decoding at 16 MiB (a process-wide
//! setting that the first caller fixes), so a garbage length fails fast.
//!
//! All times in the events are event-time epoch milliseconds (`*_ms`).
//!
//! # Layout
//!
//! - `*.avsc` (crate root): one self-contained schema per event, namespace
//!   `selfheal`, a `doc` on every record and field. Named types used by more
//!   than one event (`Frame`) are defined inline in each file that uses them.
//! - `events`: the Rust types, field for field the same as the files; a test
//!   compares each type's derived schema with its file so they cannot drift.
//! - `codec`: the [`Event`] trait, [`encode`], [`decode`], [`decode_any`],
//!   [`AnyEvent`] and [`schema_files`]; schemas are parsed once per process.
//! - `registry_framing`: the optional Schema Registry wire format (magic byte
//!   `00`, 4-byte big-endian schema id, datum): [`encode_registry`], and the
//!   table of registry ids [`learn_schema_id`] fills. [`decode`] and
//!   [`decode_any`] read both framings.
//! - `error`: [`Error`] and [`Result`].
//! - `testing` (the `testing` feature, for other crates' tests): one default
//!   `Regression`, `Verdict` and `Deploy` that tests modify, so a new field
//!   touches one file.
//! - `README.md`: the contract as other teams read it (topics, wire format,
//!   fingerprints, a Python reader).
//! - `tests/contract.rs`: round trips, schema/type agreement, docs, the Rabin
//!   test vectors, and garbage/truncated/bit-flipped input.

mod codec;
mod error;
mod events;
pub mod ids;
mod registry_framing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use codec::{decode, decode_any, encode, schema_files, AnyEvent, Event};
pub use error::{Error, Result};
pub use events::{
    Action, ActionKind, ActionStatus, Build, BuildStatus, DeadLetter, Decision, Deploy, Evidence,
    Frame, InstanceGauge, LatencyHistogram, Localization, MetricDetail, QuantileValue, RateBasis,
    Regression, RegressionKind, SignatureCount, Traffic, Verdict,
};
pub use registry_framing::{
    encode_registry, learn_schema_id, registry_schema_id, schema_id_known, REGISTRY_MAGIC,
};
