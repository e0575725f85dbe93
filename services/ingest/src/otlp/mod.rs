//! OTLP/HTTP logs (`ExportLogsServiceRequest`) → log records. Pure.
//!
//! # Layout
//! - [`json`]: the proto3 JSON encoding (`application/json`), parsed per
//!   record so one bad record is named and the rest kept.
//! - [`proto`]: the protobuf encoding (`application/x-protobuf`), decoded by
//!   `prost` with the `opentelemetry-proto` message types.
//! - [`response`]: the answers OTLP specifies (`ExportLogsServiceResponse`,
//!   `google.rpc.Status`), in the request's encoding.
//! - here: the mapping both encodings share, from one record's fields.
//!
//! Mapping: resource attributes `service.name` and the revision attributes
//! ([`RevisionPolicy`]) give service and revision; the body gives the message
//! (`exception.message` when there is no body); `exception.stacktrace` the
//! stack (`<exception.type>: <exception.message>` when there is none, so the
//! exception is kept next to the body); `exception.type` the type;
//! `timeUnixNano` (or `observedTimeUnixNano` when it is 0 or absent) the
//! event time; `severityText` (or `severityNumber`) the level; `traceId` the
//! trace. Log-record attributes override resource attributes of the same key.
//!
//! Errors are per log record, like the NDJSON lines: `line` is the record's
//! 1-based position in the request (resource, scope and record order) and
//! `field` its path (`resourceLogs[0].scopeLogs[1].logRecords[2].timeUnixNano`).

mod error;
pub mod json;
pub mod metrics;
pub mod proto;
pub mod response;

pub use error::OtlpError;

use crate::record::{LineError, LogRecord, Parsed};

pub use json::{parse_logs, parse_logs_checked};

/// Where a record's revision comes from when `service.version` is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionPolicy {
    /// Attributes tried in order (record attributes, then resource ones).
    pub attributes: Vec<String>,
    /// The revision when none is set; `None` rejects the record.
    pub fallback: Option<String>,
}

impl Default for RevisionPolicy {
    fn default() -> Self {
        Self::from_config(&selfheal_common::config::IngestConfig::default())
    }
}

impl RevisionPolicy {
    /// The policy `ingest.otlp_revision_attributes` / `_fallback` ask for.
    pub fn from_config(c: &selfheal_common::config::IngestConfig) -> Self {
        let fallback = c.otlp_revision_fallback.trim();
        Self {
            attributes: c.otlp_revision_attributes.clone(),
            fallback: (!fallback.is_empty()).then(|| fallback.to_owned()),
        }
    }
}

/// Which source gave the revision of each accepted record, for the
/// `selfheal_ingest_otlp_revision_total{source}` counter (bounded: the
/// configured attribute names plus `fallback`).
pub type RevisionSources = Vec<String>;

/// What an OTLP request yields: records and errors, and the revision source
/// of each record.
#[derive(Debug, Default)]
pub struct OtlpParsed {
    /// Records (with their ordinal) and rejected records.
    pub parsed: Parsed,
    /// The revision source of each accepted record, in order.
    pub revision_sources: RevisionSources,
}

/// The limits a parse applies: the intake's wall-clock check on event time
/// and the revision policy.
pub struct Checks<'a> {
    /// Refuses an event time (milliseconds) with a reason.
    pub check_ts: &'a dyn Fn(i64) -> Result<(), String>,
    /// Where revisions come from.
    pub revision: &'a RevisionPolicy,
}

/// One OTLP log record's fields, whatever the encoding.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub(crate) attributes: Vec<(String, String)>,
    /// `timeUnixNano`, 0 when unset.
    pub(crate) time_ns: u64,
    /// `observedTimeUnixNano`, 0 when unset.
    pub(crate) observed_ns: u64,
    pub(crate) severity_text: Option<String>,
    pub(crate) severity_number: Option<i64>,
    pub(crate) body: Option<String>,
    pub(crate) trace_id: Option<String>,
}

/// Maps one record's fields (and its resource's attributes) to a log record.
/// `path` names the record in errors; `ordinal` is its position.
pub(crate) fn log_record(
    f: Fields,
    resource: &[(String, String)],
    path: &str,
    ordinal: usize,
    checks: &Checks<'_>,
) -> Result<(LogRecord, String), Vec<LineError>> {
    let err = |field: &str, reason: String| LineError {
        line: ordinal,
        field: format!("{path}.{field}"),
        reason,
    };
    let attr = |key: &str| {
        f.attributes
            .iter()
            .chain(resource)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    };
    // Every fault of the record is reported, so a sender fixes them in one
    // round.
    let mut faults = Vec::new();
    let service = attr("service.name");
    if service.is_none() {
        faults.push(err(
            "resource.attributes[service.name]",
            "required attribute is missing".to_owned(),
        ));
    }
    let revision = match checks
        .revision
        .attributes
        .iter()
        .find_map(|k| attr(k).map(|v| (v.to_owned(), k.clone())))
    {
        Some(found) => Some(found),
        None => match &checks.revision.fallback {
            Some(fallback) => Some((fallback.clone(), "fallback".to_owned())),
            None => {
                faults.push(err(
                    "resource.attributes[service.version]",
                    format!(
                        "no revision: none of the attributes {:?} is set and \
                         ingest.otlp_revision_fallback is empty",
                        checks.revision.attributes
                    ),
                ));
                None
            }
        },
    };
    let ts = match (f.time_ns, f.observed_ns) {
        (t, _) if t > 0 => Some((t, "timeUnixNano")),
        (_, o) if o > 0 => Some((o, "observedTimeUnixNano")),
        _ => {
            faults.push(err(
                "timeUnixNano",
                "neither timeUnixNano nor observedTimeUnixNano is set".to_owned(),
            ));
            None
        }
    };
    // u64 nanoseconds end in 2554: within the parser's years 1970..=9999.
    let ts_ms = ts.and_then(|(ns, field)| {
        let ms = i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX);
        match (checks.check_ts)(ms) {
            Ok(()) => Some(ms),
            Err(r) => {
                faults.push(err(field, r));
                None
            }
        }
    });
    let exception_message = attr("exception.message");
    let exception_type = attr("exception.type");
    // The body is what the program logged ("failed to quote"); the exception
    // is what went wrong. Both are kept: the body as the message, the
    // exception in the stack (which usually ends with it anyway).
    let message = f
        .body
        .filter(|m| !m.trim().is_empty())
        .or_else(|| exception_message.map(str::to_owned));
    if message.is_none() {
        faults.push(err(
            "body",
            "no body and no exception.message attribute".to_owned(),
        ));
    }
    let (Some(service), Some((revision, source)), Some(ts_ms), Some(message)) =
        (service, revision, ts_ms, message)
    else {
        return Err(faults);
    };
    let stack = attr("exception.stacktrace").map(str::to_owned).or_else(|| {
        exception_message
            .filter(|m| *m != message)
            .map(|m| match exception_type {
                Some(t) => format!("{t}: {m}"),
                None => m.to_owned(),
            })
    });
    let level = match f.severity_text.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_ascii_lowercase(),
        _ => severity_name(f.severity_number).to_owned(),
    };
    let record = LogRecord {
        ts_ms,
        service: service.to_owned(),
        revision,
        level,
        message,
        stack,
        exception_type: exception_type.map(str::to_owned),
        trace_id: f.trace_id.filter(|t| !t.is_empty()),
    };
    Ok((record, source))
}

/// OTLP severity numbers: 1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20
/// error, 21–24 fatal; unspecified counts as an error (what is shipped to an
/// error intake usually is one).
fn severity_name(n: Option<i64>) -> &'static str {
    match n {
        Some(1..=4) => "trace",
        Some(5..=8) => "debug",
        Some(9..=12) => "info",
        Some(13..=16) => "warn",
        Some(21..=24) => "fatal",
        _ => "error",
    }
}
