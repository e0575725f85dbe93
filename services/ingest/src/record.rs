//! The interchange format: newline-delimited JSON records (ARCHITECTURE.md), parsed
//! into typed records with errors that name the line, the field and the reason.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
    let err = |field: &str, reason: String| LineError {
        line: line_no,
        field: field.to_owned(),
        reason,
    };
    let value: Value =
        serde_json::from_str(line).map_err(|e| err("(json)", format!("invalid JSON: {e}")))?;
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
            let window_s = match obj.get("window_s") {
                None | Some(Value::Null) => 60,
                Some(_) => {
                    let w = f.req_i64("window_s")?;
                    i32::try_from(w).ok().filter(|w| *w > 0).ok_or_else(|| {
                        err("window_s", format!("must be 1..=2^31-1 seconds, got {w}"))
                    })?
                }
            };
            Ok(Record::Traffic(TrafficRecord {
                ts_ms: f.ts()?,
                service: f.req_str("service")?,
                revision: f.req_str("revision")?,
                requests,
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
                            "unknown build status `{other}` (expected `failed` or `succeeded`)"
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
        other => Err(err(
            "type",
            format!("unknown record type `{other}` (expected log, traffic, deploy or build)"),
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
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.err(field, format!("expected an integer, got {n}"))),
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
                .filter(|ms| *ms >= 0)
                .ok_or_else(|| self.err("ts", format!("expected epoch milliseconds, got {n}"))),
            Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|e| self.err("ts", format!("not an RFC 3339 timestamp ({e}): `{s}`"))),
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
}
