//! The interchange format: newline-delimited JSON records (ARCHITECTURE.md), parsed
//! into typed records with errors that name the line, the field and the reason.
//!
//! Two parsers give the same answer: a fast one that reads the line straight
//! into typed fields, borrowing strings without escapes from the line
//! ([`parse_line_ref`]), and the precise one over [`serde_json::Value`] that
//! words the errors. A line the fast parser does not accept as it is goes
//! through the precise one, so a bad line's error never depends on the path.
//! The fast parser is its own module ([`fast`]); the histogram and gauge
//! records are in [`metric`].

mod fast;
mod metric;

use std::borrow::Cow;

pub use metric::{GaugeRecord, HistogramRecord, MAX_BOUNDS};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Largest `requests` a traffic record may carry (10¹²: no interval serves more).
pub const MAX_COUNT: i64 = 1_000_000_000_000;
/// Latest event time a record may carry: 9999-12-31T23:59:59.999Z, epoch ms
/// (event times before 1970 are rejected too).
pub const MAX_TS_MS: i64 = 253_402_300_799_999;
/// Longest traffic window, in seconds (one day).
pub const MAX_WINDOW_S: i64 = 86_400;

/// A log line as received, before normalization.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Event time, epoch milliseconds.
    pub ts_ms: i64,
    /// Emitting service.
    pub service: String,
    /// Revision (commit, image tag) of the emitting process.
    pub revision: String,
    /// Severity as sent (`error`, `warn` …), lower-cased; `error` when absent.
    pub level: String,
    /// The message text.
    pub message: String,
    /// Multi-line stack trace, if any.
    pub stack: Option<String>,
    /// Exception type, when the shipper sent it separately.
    pub exception_type: Option<String>,
    /// Trace id, if any.
    pub trace_id: Option<String>,
}

/// A request count over an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRecord {
    /// Start of the interval, epoch milliseconds.
    pub ts_ms: i64,
    /// Service.
    pub service: String,
    /// Revision that served the requests.
    pub revision: String,
    /// Requests served in the interval.
    pub requests: i64,
    /// Server errors among them (5xx, gRPC UNAVAILABLE); `None`: not sent.
    pub errors: Option<i64>,
    /// Interval length in seconds.
    pub window_s: i32,
}

/// A deploy of a revision.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployRecord {
    /// Deploy time, epoch milliseconds.
    pub ts_ms: i64,
    /// Service.
    pub service: String,
    /// The revision now deployed.
    pub revision: String,
    /// The revision it replaced.
    pub previous_revision: Option<String>,
    /// Repository (URL, path or `owner/name`).
    pub repo: Option<String>,
    /// Commit range (`a..b`).
    pub commit_range: Option<String>,
    /// Unified diff of the change, inline.
    pub diff: Option<String>,
    /// Where to fetch the diff from instead.
    pub diff_url: Option<String>,
}

/// A finished build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRecord {
    /// Finish time, epoch milliseconds.
    pub ts_ms: i64,
    /// Service.
    pub service: String,
    /// Revision built.
    pub revision: String,
    /// Whether it failed.
    pub failed: bool,
    /// Log excerpt.
    pub log: Option<String>,
}

/// One parsed interchange record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `"type":"log"` (the default).
    Log(LogRecord),
    /// `"type":"traffic"`.
    Traffic(TrafficRecord),
    /// `"type":"deploy"`.
    Deploy(DeployRecord),
    /// `"type":"build"`.
    Build(BuildRecord),
    /// `"type":"histogram"`.
    Histogram(HistogramRecord),
    /// `"type":"gauge"`.
    Gauge(GaugeRecord),
}

impl Record {
    /// The record's service.
    pub fn service(&self) -> &str {
        match self {
            Record::Log(l) => &l.service,
            Record::Traffic(t) => &t.service,
            Record::Deploy(d) => &d.service,
            Record::Build(b) => &b.service,
            Record::Histogram(h) => &h.service,
            Record::Gauge(g) => &g.service,
        }
    }

    /// The record's event time, epoch ms.
    pub fn ts_ms(&self) -> i64 {
        match self {
            Record::Log(l) => l.ts_ms,
            Record::Traffic(t) => t.ts_ms,
            Record::Deploy(d) => d.ts_ms,
            Record::Build(b) => b.ts_ms,
            Record::Histogram(h) => h.ts_ms,
            Record::Gauge(g) => g.ts_ms,
        }
    }
}

/// A log line as received, its strings borrowed from the input line where the
/// JSON text has no escapes. [`LogRef::into_owned`] gives the [`LogRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogRef<'a> {
    /// Event time, epoch milliseconds.
    pub ts_ms: i64,
    /// Emitting service.
    pub service: Cow<'a, str>,
    /// Revision (commit, image tag) of the emitting process.
    pub revision: Cow<'a, str>,
    /// Severity as sent, lower-cased; `error` when absent.
    pub level: Cow<'a, str>,
    /// The message text.
    pub message: Cow<'a, str>,
    /// Multi-line stack trace, if any.
    pub stack: Option<Cow<'a, str>>,
    /// Exception type, when the shipper sent it separately.
    pub exception_type: Option<Cow<'a, str>>,
    /// Trace id, if any.
    pub trace_id: Option<Cow<'a, str>>,
}

impl LogRef<'_> {
    /// The owned record.
    pub fn into_owned(self) -> LogRecord {
        LogRecord {
            ts_ms: self.ts_ms,
            service: self.service.into_owned(),
            revision: self.revision.into_owned(),
            level: self.level.into_owned(),
            message: self.message.into_owned(),
            stack: self.stack.map(Cow::into_owned),
            exception_type: self.exception_type.map(Cow::into_owned),
            trace_id: self.trace_id.map(Cow::into_owned),
        }
    }
}

impl From<LogRecord> for LogRef<'static> {
    fn from(l: LogRecord) -> Self {
        LogRef {
            ts_ms: l.ts_ms,
            service: Cow::Owned(l.service),
            revision: Cow::Owned(l.revision),
            level: Cow::Owned(l.level),
            message: Cow::Owned(l.message),
            stack: l.stack.map(Cow::Owned),
            exception_type: l.exception_type.map(Cow::Owned),
            trace_id: l.trace_id.map(Cow::Owned),
        }
    }
}

/// One parsed interchange record, log lines borrowing from the input line
/// (the other types are few and small, so they are owned).
#[derive(Debug, Clone, PartialEq)]
pub enum RecordRef<'a> {
    /// `"type":"log"` (the default).
    Log(LogRef<'a>),
    /// `"type":"traffic"`.
    Traffic(TrafficRecord),
    /// `"type":"deploy"`.
    Deploy(DeployRecord),
    /// `"type":"build"`.
    Build(BuildRecord),
    /// `"type":"histogram"`.
    Histogram(HistogramRecord),
    /// `"type":"gauge"`.
    Gauge(GaugeRecord),
}

impl RecordRef<'_> {
    /// The owned record.
    pub fn into_owned(self) -> Record {
        match self {
            RecordRef::Log(l) => Record::Log(l.into_owned()),
            RecordRef::Traffic(t) => Record::Traffic(t),
            RecordRef::Deploy(d) => Record::Deploy(d),
            RecordRef::Build(b) => Record::Build(b),
            RecordRef::Histogram(h) => Record::Histogram(h),
            RecordRef::Gauge(g) => Record::Gauge(g),
        }
    }

    /// The record's event time, epoch milliseconds.
    pub fn ts_ms(&self) -> i64 {
        match self {
            RecordRef::Log(l) => l.ts_ms,
            RecordRef::Traffic(t) => t.ts_ms,
            RecordRef::Deploy(d) => d.ts_ms,
            RecordRef::Build(b) => b.ts_ms,
            RecordRef::Histogram(h) => h.ts_ms,
            RecordRef::Gauge(g) => g.ts_ms,
        }
    }
}

impl From<Record> for RecordRef<'static> {
    fn from(r: Record) -> Self {
        match r {
            Record::Log(l) => RecordRef::Log(l.into()),
            Record::Traffic(t) => RecordRef::Traffic(t),
            Record::Deploy(d) => RecordRef::Deploy(d),
            Record::Build(b) => RecordRef::Build(b),
            Record::Histogram(h) => RecordRef::Histogram(h),
            Record::Gauge(g) => RecordRef::Gauge(g),
        }
    }
}

/// Why one line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// 1-based line number within the request body.
    pub line: usize,
    /// The offending field (`(json)` when the line is not a JSON object).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: field `{}`: {}",
            self.line, self.field, self.reason
        )
    }
}

/// Record types an endpoint accepts when a line has no `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultType {
    /// `/v1/logs`.
    Log,
    /// `/v1/traffic`.
    Traffic,
    /// `/v1/deploys`.
    Deploy,
    /// `/v1/builds`.
    Build,
}

impl DefaultType {
    fn name(self) -> &'static str {
        match self {
            DefaultType::Log => "log",
            DefaultType::Traffic => "traffic",
            DefaultType::Deploy => "deploy",
            DefaultType::Build => "build",
        }
    }
}

/// Parsed records with their line numbers, and the rejected lines.
pub type Parsed = (Vec<(usize, Record)>, Vec<LineError>);

/// Parses an NDJSON body. Blank lines are skipped; every other line yields a
/// record or an error, so nothing is silently dropped.
pub fn parse_body(body: &str, default: DefaultType) -> Parsed {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, line_no, default) {
            Ok(r) => records.push((line_no, r)),
            Err(e) => errors.push(e),
        }
    }
    (records, errors)
}

/// Parses one NDJSON line.
pub fn parse_line(line: &str, line_no: usize, default: DefaultType) -> Result<Record, LineError> {
    parse_line_ref(line, line_no, default).map(RecordRef::into_owned)
}

/// Parses one NDJSON line, log strings borrowed from `line` where they have
/// no escapes. Same records and same errors as [`parse_line`].
pub fn parse_line_ref(
    line: &str,
    line_no: usize,
    default: DefaultType,
) -> Result<RecordRef<'_>, LineError> {
    match fast::parse(line, default) {
        Some(r) => Ok(r),
        None => parse_line_precise(line, line_no, default).map(RecordRef::from),
    }
}

/// serde_json counts lines and columns within the one line it was given, so
/// its "at line 1 column 42" is dropped for the column alone: the line is the
/// error's `line` (the body's; chunked parsers shift it afterwards).
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let what = text.strip_suffix(&position).unwrap_or(&text);
    format!("invalid JSON at column {}: {what}", e.column())
}

/// The precise parser: every line the fast one does not take, and the wording
/// of every error.
fn parse_line_precise(
    line: &str,
    line_no: usize,
    default: DefaultType,
) -> Result<Record, LineError> {
    let err = |field: &str, reason: String| LineError {
        line: line_no,
        field: field.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_str(line).map_err(|e| err("(json)", json_reason(&e)))?;
    let Value::Object(obj) = value else {
        return Err(err("(json)", "expected a JSON object".to_owned()));
    };
    let f = Fields {
        obj: &obj,
        line: line_no,
    };
    let kind = f.opt_str("type")?.unwrap_or(default.name());
    match kind {
        "log" => Ok(Record::Log(LogRecord {
            ts_ms: f.ts()?,
            service: f.req_str("service")?,
            revision: f.req_str("revision")?,
            level: f
                .opt_str("level")?
                .map(str::to_ascii_lowercase)
                .unwrap_or_else(|| "error".to_owned()),
            message: f.req_str("message")?,
            stack: f.opt_str("stack")?.map(str::to_owned),
            exception_type: f.opt_str("exception_type")?.map(str::to_owned),
            trace_id: f.opt_str("trace_id")?.map(str::to_owned),
        })),
        "traffic" => {
            let requests = f.req_i64("requests")?;
            if requests < 0 {
                return Err(err("requests", "must not be negative".to_owned()));
            }
            if requests > MAX_COUNT {
                return Err(err(
                    "requests",
                    format!(
                        "must be at most {MAX_COUNT}, got {}",
                        crate::shown::value(&requests.to_string())
                    ),
                ));
            }
            let window_s = metric::window_s(&f)?;
            let errors = match obj.get("errors") {
                None | Some(Value::Null) => None,
                Some(_) => {
                    let e = f.req_i64("errors")?;
                    if !(0..=requests).contains(&e) {
                        return Err(err(
                            "errors",
                            format!(
                                "must be 0..=requests ({requests}), got {}",
                                crate::shown::value(&e.to_string())
                            ),
                        ));
                    }
                    Some(e)
                }
            };
            Ok(Record::Traffic(TrafficRecord {
                ts_ms: f.ts()?,
                service: f.req_str("service")?,
                revision: f.req_str("revision")?,
                requests,
                errors,
                window_s,
            }))
        }
        "deploy" => Ok(Record::Deploy(DeployRecord {
            ts_ms: f.ts()?,
            service: f.req_str("service")?,
            revision: f.req_str("revision")?,
            previous_revision: f.opt_str("previous_revision")?.map(str::to_owned),
            repo: f.opt_str("repo")?.map(str::to_owned),
            commit_range: f.opt_str("commit_range")?.map(str::to_owned),
            diff: f.opt_str("diff")?.map(str::to_owned),
            diff_url: f.opt_str("diff_url")?.map(str::to_owned),
        })),
        "build" => {
            let status = f.req_str("status")?;
            let failed = match status.to_ascii_lowercase().as_str() {
                "failed" | "failure" | "error" | "errored" | "broken" => true,
                "succeeded" | "success" | "passed" | "ok" | "fixed" => false,
                other => {
                    return Err(err(
                        "status",
                        format!(
                            "unknown build status {} (expected `failed` or `succeeded`)",
                            crate::shown::value(other)
                        ),
                    ))
                }
            };
            Ok(Record::Build(BuildRecord {
                ts_ms: f.ts()?,
                service: f.req_str("service")?,
                revision: f.req_str("revision")?,
                failed,
                log: f.opt_str("log")?.map(str::to_owned),
            }))
        }
        "histogram" => metric::histogram(&f).map(Record::Histogram),
        "gauge" => metric::gauge(&f).map(Record::Gauge),
        other => Err(err(
            "type",
            format!(
                "unknown record type {} (expected log, traffic, histogram, gauge, deploy or build)",
                crate::shown::value(other)
            ),
        )),
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    line: usize,
}

impl Fields<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> LineError {
        LineError {
            line: self.line,
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    fn opt_str(&self, field: &str) -> Result<Option<&str>, LineError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(field, format!("expected a string, got {}", kind(other)))),
        }
    }

    fn req_str(&self, field: &str) -> Result<String, LineError> {
        match self.opt_str(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s.to_owned()),
            Some(_) => Err(self.err(field, "must not be empty")),
            None => Err(self.err(field, "required field is missing")),
        }
    }

    fn req_i64(&self, field: &str) -> Result<i64, LineError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Err(self.err(field, "required field is missing")),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                let shown = crate::shown::value(&n.to_string());
                self.err(field, format!("expected an integer, got {shown}"))
            }),
            Some(other) => {
                Err(self.err(field, format!("expected an integer, got {}", kind(other))))
            }
        }
    }

    /// `ts`: RFC 3339 string or epoch milliseconds.
    fn ts(&self) -> Result<i64, LineError> {
        match self.obj.get("ts") {
            None | Some(Value::Null) => Err(self.err("ts", "required field is missing")),
            Some(Value::Number(n)) => n
                .as_i64()
                .filter(|ms| (0..=MAX_TS_MS).contains(ms))
                .ok_or_else(|| {
                    self.err(
                        "ts",
                        format!(
                            "expected epoch milliseconds within years 1970..=9999, got {}",
                            crate::shown::value(&n.to_string())
                        ),
                    )
                }),
            Some(Value::String(s)) => match OffsetDateTime::parse(s, &Rfc3339) {
                Ok(t) if t.year() >= 1970 => Ok((t.unix_timestamp_nanos() / 1_000_000) as i64),
                Ok(t) => Err(self.err(
                    "ts",
                    format!(
                        "year {} is before 1970 (epoch milliseconds are unsigned)",
                        t.year()
                    ),
                )),
                Err(e) => Err(self.err(
                    "ts",
                    format!(
                        "not an RFC 3339 timestamp ({e}): {}",
                        crate::shown::value(s)
                    ),
                )),
            },
            Some(other) => Err(self.err(
                "ts",
                format!(
                    "expected an RFC 3339 string or epoch milliseconds, got {}",
                    kind(other)
                ),
            )),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_record_type_from_the_architecture_examples() {
        let body = r#"{"type":"log","ts":"2026-03-09T10:00:03.120Z","service":"checkout","revision":"a1b2c3d","level":"error","message":"Timeout after 3001ms","stack":"Traceback","trace_id":"t","attributes":{}}
{"type":"traffic","ts":"2026-03-09T10:00:00Z","service":"checkout","revision":"a1b2c3d","requests":8105,"window_s":60}

{"type":"deploy","ts":1773050400000,"service":"checkout","revision":"a1b2c3d","previous_revision":"99f0e1a","repo":"git@example.com:shop/checkout.git","diff":"--- a/x"}
{"type":"build","ts":"2026-03-09T09:58:00Z","service":"checkout","revision":"a1b2c3d","status":"failed","log":"error[E0425]"}"#;
        let (records, errors) = parse_body(body, DefaultType::Log);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(records.len(), 4);
        assert_eq!(records[2].0, 4, "line numbers count blank lines");
        match &records[0].1 {
            Record::Log(l) => {
                assert_eq!(l.ts_ms, 1_773_050_403_120);
                assert_eq!(l.level, "error");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&records[3].1, Record::Build(b) if b.failed));
    }

    #[test]
    fn errors_name_line_field_and_reason() {
        let body = "{\"service\":\"a\",\"revision\":\"r\",\"message\":\"m\",\"ts\":\"yesterday\"}\n{not json\n{\"ts\":1,\"service\":\"a\",\"revision\":\"r\"}\n{\"type\":\"traffic\",\"ts\":1,\"service\":\"a\",\"revision\":\"r\",\"requests\":\"many\"}\n{\"type\":\"alert\"}";
        let (records, errors) = parse_body(body, DefaultType::Log);
        assert!(records.is_empty());
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (1, "ts"),
                (2, "(json)"),
                (3, "message"),
                (4, "requests"),
                (5, "type")
            ]
        );
        assert!(errors[0].reason.contains("RFC 3339"));
        assert!(errors[2].reason.contains("missing"));
        // The position is the body's line, not serde_json's "line 1".
        assert_eq!(
            errors[1].to_string(),
            "line 2: field `(json)`: invalid JSON at column 2: key must be a string"
        );
    }

    #[test]
    fn values_outside_plausible_ranges_are_rejected_without_echoing_them() {
        let body = [
            r#"{"ts":253402300800000,"service":"a","revision":"r","message":"m"}"#,
            r#"{"ts":"1969-12-31T23:59:59Z","service":"a","revision":"r","message":"m"}"#,
            r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":1000000000001}"#,
            r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"window_s":86401}"#,
            r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"window_s":0}"#,
            r#"{"ts":"password=hunter2hunter2","service":"a","revision":"r","message":"m"}"#,
            r#"{"type":"build","ts":1,"service":"a","revision":"r","status":"ghp_a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4"}"#,
        ]
        .join("\n");
        let (records, errors) = parse_body(&body, DefaultType::Log);
        assert!(records.is_empty());
        let got: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            got,
            ["ts", "ts", "requests", "window_s", "window_s", "ts", "status"]
        );
        assert!(errors[0].reason.contains("1970..=9999"), "{:?}", errors[0]);
        assert!(errors[1].reason.contains("before 1970"), "{:?}", errors[1]);
        assert!(errors[2].reason.contains("at most"), "{:?}", errors[2]);
        for e in &errors {
            assert!(!e.reason.contains("hunter2"), "{e:?}");
            assert!(!e.reason.contains("a1B2c3D4e5"), "{e:?}");
        }
        assert!(errors[5].reason.contains("bytes)"), "{:?}", errors[5]);
    }

    #[test]
    fn endpoint_default_type_applies_when_type_is_absent() {
        let (records, errors) = parse_body(
            r#"{"ts":5,"service":"a","revision":"r","requests":10}"#,
            DefaultType::Traffic,
        );
        assert!(errors.is_empty());
        assert!(
            matches!(&records[0].1, Record::Traffic(t) if t.window_s == 60 && t.requests == 10)
        );
    }

    /// Lines at the edges of the format: the fast parser either gives exactly
    /// what the precise one gives, or leaves the line to it.
    const EDGE_LINES: &[&str] = &[
        r#"{"ts":1,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","level":"WARN"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","level":null,"stack":null}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","level":3}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"tab\there \u00e9 \"q\""}"#,
        r#"{"ts":1,"serv\u0069ce":"a","revision":"r","message":"m"}"#,
        r#"{"ts":1,"service":"a","service":"b","revision":"r","message":"m"}"#,
        r#"{"ts":1,"service":"a","service":null,"revision":"r","message":"m"}"#,
        r#"{"ts":1,"service":null,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":1,"service":"  ","revision":"r","message":"m"}"#,
        r#"{"ts":1.0,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":-1,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":-0,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":9223372036854775807,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":9223372036854775808,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":"2026-03-09T10:00:03.120+01:00","service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":"2026-03-09","service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":true,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","attributes":{"x":[1,2.5,null,{"y":"z"}]}}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","attributes":{"x":1e999}}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","attributes":"\ud800"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","requests":"many"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m"} trailing"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m",}"#,
        r#"[1,2]"#,
        r#""just a string""#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"window_s":null}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"window_s":0}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"window_s":4294967296}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":-5}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5.5}"#,
        r#"{"type":"deploy","ts":1,"service":"a","revision":"r","diff":"--- a/x\n+++ b/x","repo":null}"#,
        r#"{"type":"deploy","ts":1,"service":"a","revision":"r","diff":7}"#,
        r#"{"type":"build","ts":1,"service":"a","revision":"r","status":"FAILED","log":"e"}"#,
        r#"{"type":"build","ts":1,"service":"a","revision":"r","status":"meh"}"#,
        r#"{"type":"Log","ts":1,"service":"a","revision":"r","message":"m"}"#,
        r#"{"type":null,"ts":1,"service":"a","revision":"r","message":"m"}"#,
        r#"{"type":5,"ts":1,"service":"a","revision":"r","message":"m"}"#,
        " {\t\"ts\" :\r1 ,\n\"service\":\"a\",\"revision\":\"r\",\"message\":\"m\" } ",
        r#"{"ts":01,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":1e3,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"a\u0041\u00e9\u20ac\/\b\f\n\r\t"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"\ud83d\ude00 pair"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"\ud83d lone"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"bad \x escape"}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"short \u12"}"#,
        "{\"ts\":1,\"service\":\"a\",\"revision\":\"r\",\"message\":\"raw\ttab\"}",
        r#"{"ts":1,"service":"a","revision":"r","message":"unterminated}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","flag":true,"off":false,"n":null}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m","level":nul}"#,
        r#"{"ts":1,"service":"a","revision":"r","message":"m"}}"#,
        r#"{"ts":1 2,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":123456789012345678901,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":253402300799999,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":253402300800000,"service":"a","revision":"r","message":"m"}"#,
        r#"{"ts":"1969-12-31T23:59:59Z","service":"a","revision":"r","message":"m"}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":1000000000000}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":1000000000001}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"window_s":86400}"#,
        r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"window_s":86401}"#,
        r#"{}"#,
        r#"{"#,
        "",
    ];

    #[test]
    fn fast_parser_agrees_with_the_precise_one() {
        for default in [DefaultType::Log, DefaultType::Traffic] {
            for (i, line) in EDGE_LINES.iter().enumerate() {
                let precise = parse_line_precise(line, i + 1, default);
                for fast in [
                    fast::parse(line, default),
                    fast::parse_serde(line, default),
                    fast::parse_scan(line, default),
                ]
                .into_iter()
                .flatten()
                {
                    assert_eq!(Ok(fast.into_owned()), precise, "{line}");
                }
                assert_eq!(parse_line(line, i + 1, default), precise, "{line}");
            }
        }
        // The common shapes do take the fast path, borrowing what has no escapes.
        let Some(RecordRef::Log(l)) = fast::parse(EDGE_LINES[0], DefaultType::Log) else {
            panic!("fast path not taken");
        };
        assert!(matches!(l.service, Cow::Borrowed("a")));
        assert!(fast::parse(EDGE_LINES[4], DefaultType::Log).is_some());
        // The scanner takes the common shapes itself, whitespace and escapes too.
        for i in [0, 1, 4, 26, 32, 39, 42, 49] {
            assert!(
                fast::parse_scan(EDGE_LINES[i], DefaultType::Log).is_some(),
                "{}",
                EDGE_LINES[i]
            );
        }
        assert!(fast::parse(EDGE_LINES[26], DefaultType::Log).is_some());
    }

    proptest::proptest! {
        /// The word-at-a-time search finds what a byte loop finds.
        #[test]
        fn special_bytes_are_found_like_a_byte_loop(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xff, 0x00, b'!']),
                0..40,
            )
        ) {
            let want = bytes.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            proptest::prop_assert_eq!(fast::special_for_test(&bytes), want);
        }

        /// Lines built from the format's keys with values of every JSON type.
        #[test]
        fn fast_parser_agrees_on_generated_lines(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "type", "ts", "service", "revision", "level", "message", "stack",
                        "requests", "window_s", "status", "diff", "x",
                    ]),
                    proptest::sample::select(vec![
                        "null", "true", "0", "-3", "17", "1.5", "1e400", "18446744073709551615",
                        "\"\"", "\" \"", "\"a\"", "\"Err\\u00e9\"", "\"log\"", "\"traffic\"",
                        "\"deploy\"", "\"build\"", "\"failed\"", "\"2026-03-09T10:00:00Z\"",
                        "[1,{}]", "{\"a\":[]}", "\"\\udc00\"", "false", "01", "-0", "1e2",
                        "\"a\\nb\\\"c\"", "\"\\u0041\"", "\"\\ud83d\\ude00\"", "\"tab\there\"",
                        "\"\\q\"", " \"spaced\" ", "\"WARN\"", "nul", "\"é€\"",
                    ]),
                ),
                0..10,
            )
        ) {
            let line = format!(
                "{{{}}}",
                fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",")
            );
            for default in [DefaultType::Log, DefaultType::Traffic, DefaultType::Build] {
                let precise = parse_line_precise(&line, 1, default);
                for fast in [
                    fast::parse(&line, default),
                    fast::parse_serde(&line, default),
                    fast::parse_scan(&line, default),
                ]
                .into_iter()
                .flatten()
                {
                    proptest::prop_assert_eq!(Ok(fast.into_owned()), precise.clone(), "{}", line);
                }
                proptest::prop_assert_eq!(parse_line(&line, 1, default), precise, "{}", line);
            }
        }
    }
}
