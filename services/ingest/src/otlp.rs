//! OTLP/HTTP JSON logs (`ExportLogsServiceRequest`) → log records. Pure.
//!
//! Mapping: resource attributes `service.name` / `service.version` give service
//! and revision; log-record attributes `exception.type`, `exception.message`,
//! `exception.stacktrace` give the error (the message falls back to the body);
//! `timeUnixNano` (or `observedTimeUnixNano` when it is 0 or absent) gives the
//! event time; `severityText` (or `severityNumber`) the level; `traceId` the
//! trace. Log-record attributes override resource attributes of the same key.
//!
//! Errors are per log record, like the NDJSON lines: `line` is the record's
//! 1-based position in the request (resource, scope and record order) and
//! `field` its path (`resourceLogs[0].scopeLogs[1].logRecords[2].timeUnixNano`).

use serde_json::{Map, Value};

use crate::record::{LineError, LogRecord, Parsed, Record};

/// Parses an OTLP/HTTP JSON logs body. `Err` when the body as a whole is not a
/// JSON `ExportLogsServiceRequest`; otherwise every log record yields a record
/// or an error.
pub fn parse_logs(body: &[u8]) -> Result<Parsed, String> {
    parse_logs_checked(body, &|_| Ok(()))
}

/// [`parse_logs`], and a record whose event time `check_ts` refuses (the
/// intake's wall-clock limits) is rejected with that reason under the path
/// of the field the time came from.
pub fn parse_logs_checked(
    body: &[u8],
    check_ts: &dyn Fn(i64) -> Result<(), String>,
) -> Result<Parsed, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid OTLP JSON body: {e}"))?;
    let Value::Object(root) = value else {
        return Err("expected a JSON object (ExportLogsServiceRequest)".to_owned());
    };
    let resource_logs = match root
        .get("resourceLogs")
        .or_else(|| root.get("resource_logs"))
    {
        None | Some(Value::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("`resourceLogs` must be an array".to_owned()),
    };
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut ordinal = 0usize;
    for (ri, rl) in resource_logs.iter().enumerate() {
        let rpath = format!("resourceLogs[{ri}]");
        let resource_attrs = rl
            .get("resource")
            .and_then(|r| r.get("attributes"))
            .map(attributes)
            .unwrap_or_default();
        let scopes = array(rl, &["scopeLogs", "scope_logs"]);
        for (si, sl) in scopes.iter().enumerate() {
            let spath = format!("{rpath}.scopeLogs[{si}]");
            for (li, lr) in array(sl, &["logRecords", "log_records"]).iter().enumerate() {
                ordinal += 1;
                let path = format!("{spath}.logRecords[{li}]");
                match log_record(lr, &resource_attrs, &path, ordinal, check_ts) {
                    Ok(r) => records.push((ordinal, Record::Log(r))),
                    Err(faults) => errors.extend(faults),
                }
            }
        }
    }
    Ok((records, errors))
}

fn array<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_array))
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// OTLP `KeyValue` list → (key, value) pairs, values rendered as strings.
fn attributes(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|kv| {
                    let key = kv.get("key")?.as_str()?;
                    let value = any_value(kv.get("value")?)?;
                    Some((key.to_owned(), value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An OTLP `AnyValue` as text (strings as they are; other kinds as JSON).
fn any_value(v: &Value) -> Option<String> {
    let Value::Object(o) = v else {
        return v.as_str().map(str::to_owned);
    };
    if let Some(s) = o.get("stringValue").or_else(|| o.get("string_value")) {
        return s.as_str().map(str::to_owned);
    }
    for k in [
        "intValue",
        "doubleValue",
        "boolValue",
        "int_value",
        "double_value",
        "bool_value",
    ] {
        if let Some(x) = o.get(k) {
            return Some(match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    o.values().next().map(|x| x.to_string())
}

/// One log record, or every fault it has (a record missing its service and
/// its body reports both, so a sender fixes them in one round).
fn log_record(
    lr: &Value,
    resource: &[(String, String)],
    path: &str,
    ordinal: usize,
    check_ts: &dyn Fn(i64) -> Result<(), String>,
) -> Result<LogRecord, Vec<LineError>> {
    let err = |field: &str, reason: String| LineError {
        line: ordinal,
        field: format!("{path}.{field}"),
        reason,
    };
    let Value::Object(obj) = lr else {
        return Err(vec![err("(record)", "expected a JSON object".to_owned())]);
    };
    let attrs = obj.get("attributes").map(attributes).unwrap_or_default();
    let attr = |key: &str| {
        attrs
            .iter()
            .chain(resource)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    };
    let mut faults = Vec::new();
    let service = attr("service.name");
    if service.is_none() {
        faults.push(err(
            "resource.attributes[service.name]",
            "required attribute is missing".to_owned(),
        ));
    }
    let revision = attr("service.version");
    if revision.is_none() {
        faults.push(err(
            "resource.attributes[service.version]",
            "required attribute is missing (the revision: commit or image tag)".to_owned(),
        ));
    }
    let ts_ms = match event_time(obj, check_ts) {
        Ok(t) => Some(t),
        Err((field, reason)) => {
            faults.push(err(field, reason));
            None
        }
    };
    let message = attr("exception.message")
        .map(str::to_owned)
        .or_else(|| obj.get("body").and_then(any_value))
        .filter(|m| !m.trim().is_empty());
    if message.is_none() {
        faults.push(err(
            "body",
            "no body and no exception.message attribute".to_owned(),
        ));
    }
    let (Some(service), Some(revision), Some(ts_ms), Some(message)) =
        (service, revision, ts_ms, message)
    else {
        return Err(faults);
    };
    let level = match obj.get("severityText").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => t.trim().to_ascii_lowercase(),
        _ => severity_name(obj.get("severityNumber").and_then(Value::as_i64)).to_owned(),
    };
    let trace_id = obj
        .get("traceId")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Ok(LogRecord {
        ts_ms,
        service: service.to_owned(),
        revision: revision.to_owned(),
        level,
        message,
        stack: attr("exception.stacktrace").map(str::to_owned),
        exception_type: attr("exception.type").map(str::to_owned),
        trace_id,
    })
}

/// A record's event time (ms): `timeUnixNano`, else `observedTimeUnixNano`,
/// checked by `check_ts`; or the field at fault and why.
fn event_time(
    obj: &Map<String, Value>,
    check_ts: &dyn Fn(i64) -> Result<(), String>,
) -> Result<i64, (&'static str, String)> {
    let (ts_ms, ts_field) = match nanos(obj, "timeUnixNano").map_err(|r| ("timeUnixNano", r))? {
        Some(ns) if ns > 0 => (ns / 1_000_000, "timeUnixNano"),
        _ => match nanos(obj, "observedTimeUnixNano").map_err(|r| ("observedTimeUnixNano", r))? {
            Some(ns) if ns > 0 => (ns / 1_000_000, "observedTimeUnixNano"),
            _ => {
                return Err((
                    "timeUnixNano",
                    "neither timeUnixNano nor observedTimeUnixNano is set".to_owned(),
                ))
            }
        },
    };
    // u64 nanoseconds end in 2554: within the parser's years 1970..=9999.
    let ts_ms = i64::try_from(ts_ms).unwrap_or(i64::MAX);
    check_ts(ts_ms).map_err(|r| (ts_field, r))?;
    Ok(ts_ms)
}

/// A `fixed64` field: proto3 JSON writes it as a decimal string; numbers are
/// accepted too.
fn nanos(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse::<u64>().map(Some).map_err(|_| {
            format!(
                "expected nanoseconds since the epoch, got {}",
                crate::shown::value(s)
            )
        }),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            format!(
                "expected nanoseconds since the epoch, got {}",
                crate::shown::value(&n.to_string())
            )
        }),
        Some(_) => Err("expected a decimal string of nanoseconds".to_owned()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"resourceLogs":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"checkout"}},
        {"key":"service.version","value":{"stringValue":"b"}}]},
      "scopeLogs":[{"scope":{"name":"app"},"logRecords":[
        {"timeUnixNano":"1773050403120000000","severityNumber":17,"body":{"stringValue":"boom"},
         "traceId":"5b8efff798038103d269b633813fc60c",
         "attributes":[{"key":"exception.type","value":{"stringValue":"KeyError"}},
           {"key":"exception.message","value":{"stringValue":"'XC'"}},
           {"key":"exception.stacktrace","value":{"stringValue":"Traceback (most recent call last):\n  File \"/app/src/pricing.py\", line 216, in quote\nKeyError: 'XC'"}}]},
        {"timeUnixNano":"0","observedTimeUnixNano":1773050404000000000,"severityText":"WARN","body":{"stringValue":"slow"}},
        {"body":{"stringValue":"no time"}},
        {"timeUnixNano":"1773050403120000000","attributes":[{"key":"service.version","value":{"stringValue":"c"}}]}
      ]}]},
      {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
       "scopeLogs":[{"logRecords":[{"timeUnixNano":"1","body":{"stringValue":"x"}}]}]}]}"#;

    #[test]
    fn maps_resource_and_exception_attributes_and_names_bad_records() {
        let (records, errors) = parse_logs(BODY.as_bytes()).unwrap();
        assert_eq!(records.len(), 2, "{errors:?}");
        let Record::Log(first) = &records[0].1 else {
            panic!()
        };
        assert_eq!(
            (first.service.as_str(), first.revision.as_str()),
            ("checkout", "b")
        );
        assert_eq!(first.ts_ms, 1_773_050_403_120);
        assert_eq!(first.level, "error");
        assert_eq!(
            first.message, "'XC'",
            "exception.message wins over the body"
        );
        assert_eq!(first.exception_type.as_deref(), Some("KeyError"));
        assert!(first.stack.as_deref().unwrap().contains("line 216"));
        assert_eq!(
            first.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        let Record::Log(second) = &records[1].1 else {
            panic!()
        };
        assert_eq!(
            second.ts_ms, 1_773_050_404_000,
            "observed time when time is 0"
        );
        assert_eq!(
            (second.level.as_str(), second.message.as_str()),
            ("warn", "slow")
        );
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (3, "resourceLogs[0].scopeLogs[0].logRecords[2].timeUnixNano"),
                (4, "resourceLogs[0].scopeLogs[0].logRecords[3].body"),
                (
                    5,
                    "resourceLogs[1].scopeLogs[0].logRecords[0].resource.attributes[service.version]"
                ),
            ]
        );
    }

    #[test]
    fn a_refused_event_time_is_rejected_under_its_field_path() {
        let (records, errors) =
            parse_logs_checked(BODY.as_bytes(), &|_| Err("too far ahead".to_owned())).unwrap();
        assert!(records.is_empty());
        assert!(errors.iter().any(|e| e.field
            == "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano"
            && e.reason == "too far ahead"));
    }

    #[test]
    fn every_fault_of_a_record_is_listed() {
        let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[]}]}]}]}"#;
        let (records, errors) = parse_logs(body.as_bytes()).unwrap();
        assert!(records.is_empty());
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let at = "resourceLogs[0].scopeLogs[0].logRecords[0]";
        assert_eq!(
            fields,
            [
                format!("{at}.resource.attributes[service.name]"),
                format!("{at}.resource.attributes[service.version]"),
                format!("{at}.timeUnixNano"),
                format!("{at}.body"),
            ]
        );
        assert!(errors.iter().all(|e| e.line == 1), "{errors:?}");
    }

    #[test]
    fn a_body_that_is_not_a_request_is_one_error() {
        assert!(parse_logs(b"{not json").is_err());
        assert!(parse_logs(b"[1]").is_err());
        assert_eq!(parse_logs(b"{}").unwrap().0.len(), 0);
    }
}
