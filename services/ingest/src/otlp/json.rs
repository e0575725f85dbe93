//! OTLP/HTTP JSON logs (proto3 JSON `ExportLogsServiceRequest`) → the
//! shared record fields. Pure.
//!
//! Parsed by hand over `serde_json` values rather than through the
//! `opentelemetry-proto` serde types: those fail a whole request on one bad
//! record, and selfheal names each bad record and keeps the rest.

use serde_json::{Map, Value};

use super::{log_record, Checks, Fields, OtlpError, OtlpParsed, RevisionPolicy};
use crate::record::{LineError, Record};

/// Parses an OTLP/HTTP JSON logs body with the default revision policy and
/// no wall-clock limits. `Err` when the body as a whole is not a JSON
/// `ExportLogsServiceRequest`; otherwise every log record yields a record or
/// an error.
pub fn parse_logs(body: &[u8]) -> Result<crate::record::Parsed, OtlpError> {
    let policy = RevisionPolicy::default();
    let checks = Checks {
        check_ts: &|_| Ok(()),
        revision: &policy,
    };
    parse_logs_checked(body, &checks).map(|p| p.parsed)
}

/// [`parse_logs`] under `checks`: a record whose event time `check_ts`
/// refuses is rejected with that reason under the path of the field the time
/// came from; revisions follow `checks.revision`.
pub fn parse_logs_checked(body: &[u8], checks: &Checks<'_>) -> Result<OtlpParsed, OtlpError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|source| OtlpError::LogsJson { source })?;
    let Value::Object(root) = value else {
        return Err(OtlpError::NotARequest {
            reason: "expected a JSON object (ExportLogsServiceRequest)",
        });
    };
    let resource_logs = match root
        .get("resourceLogs")
        .or_else(|| root.get("resource_logs"))
    {
        // `{}` is a valid empty request; an object with other keys is most
        // likely a selfheal NDJSON record sent to the OTLP path, and
        // answering 200 with nothing written would lose it.
        None if root.is_empty() => return Ok(OtlpParsed::default()),
        None | Some(Value::Null) => {
            return Err(OtlpError::NotARequest {
                reason: "not an OTLP ExportLogsServiceRequest: no `resourceLogs` \
                 (selfheal NDJSON goes to /v1/ndjson/logs)",
            })
        }
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(OtlpError::NotARequest {
                reason: "`resourceLogs` must be an array",
            })
        }
    };
    let mut out = OtlpParsed::default();
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
                let mapped = fields(lr, &path, ordinal)
                    .map_err(|e| vec![e])
                    .and_then(|f| log_record(f, &resource_attrs, &path, ordinal, checks));
                match mapped {
                    Ok((r, source)) => {
                        out.parsed.0.push((ordinal, Record::Log(r)));
                        out.revision_sources.push(source);
                    }
                    Err(faults) => out.parsed.1.extend(faults),
                }
            }
        }
    }
    Ok(out)
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

/// The JSON record's fields; errors name the field under `path`.
fn fields(lr: &Value, path: &str, ordinal: usize) -> Result<Fields, LineError> {
    let err = |field: &str, reason: String| LineError {
        line: ordinal,
        field: format!("{path}.{field}"),
        reason,
    };
    let Value::Object(obj) = lr else {
        return Err(err("(record)", "expected a JSON object".to_owned()));
    };
    let time_ns = nanos(obj, "timeUnixNano").map_err(|r| err("timeUnixNano", r))?;
    let observed_ns =
        nanos(obj, "observedTimeUnixNano").map_err(|r| err("observedTimeUnixNano", r))?;
    Ok(Fields {
        attributes: obj.get("attributes").map(attributes).unwrap_or_default(),
        time_ns: time_ns.unwrap_or(0),
        observed_ns: observed_ns.unwrap_or(0),
        severity_text: obj
            .get("severityText")
            .and_then(Value::as_str)
            .map(str::to_owned),
        severity_number: obj.get("severityNumber").and_then(Value::as_i64),
        body: obj.get("body").and_then(any_value),
        trace_id: obj
            .get("traceId")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
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
        assert_eq!(records.len(), 3, "{errors:?}");
        let Record::Log(first) = &records[0].1 else {
            panic!()
        };
        assert_eq!(
            (first.service.as_str(), first.revision.as_str()),
            ("checkout", "b")
        );
        assert_eq!(first.ts_ms, 1_773_050_403_120);
        assert_eq!(first.level, "error");
        assert_eq!(first.message, "boom", "the body stays the message");
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
            ]
        );
        let Record::Log(fallback) = &records[2].1 else {
            panic!()
        };
        assert_eq!(
            (fallback.service.as_str(), fallback.revision.as_str()),
            ("cart", "unknown"),
            "no service.version: the fallback revision, not a loss"
        );
    }

    #[test]
    fn revision_attributes_in_order_then_reject_when_no_fallback() {
        let body = |attrs: &str| {
            format!(
                r#"{{"resourceLogs":[{{"resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"cart"}}}}{attrs}]}},
                "scopeLogs":[{{"logRecords":[{{"timeUnixNano":"1","body":{{"stringValue":"x"}}}}]}}]}}]}}"#
            )
        };
        let mut policy = RevisionPolicy::default();
        let checks = Checks {
            check_ts: &|_| Ok(()),
            revision: &policy,
        };
        let deployed = body(r#",{"key":"deployment.revision","value":{"stringValue":"d1"}}"#);
        let got = parse_logs_checked(deployed.as_bytes(), &checks).unwrap();
        let Record::Log(r) = &got.parsed.0[0].1 else {
            panic!()
        };
        assert_eq!(r.revision, "d1");
        assert_eq!(got.revision_sources, vec!["deployment.revision".to_owned()]);
        policy.fallback = None;
        let checks = Checks {
            check_ts: &|_| Ok(()),
            revision: &policy,
        };
        let got = parse_logs_checked(body("").as_bytes(), &checks).unwrap();
        assert!(got.parsed.0.is_empty());
        assert_eq!(
            got.parsed.1[0].field,
            "resourceLogs[0].scopeLogs[0].logRecords[0].resource.attributes[service.version]"
        );
    }

    #[test]
    fn the_exception_is_kept_beside_the_body_without_a_stacktrace() {
        let body = r#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"cart"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":"1","body":{"stringValue":"quote failed"},
            "attributes":[{"key":"exception.type","value":{"stringValue":"KeyError"}},
            {"key":"exception.message","value":{"stringValue":"'XC'"}}]}]}]}]}"#;
        let (records, _) = parse_logs(body.as_bytes()).unwrap();
        let Record::Log(r) = &records[0].1 else {
            panic!()
        };
        assert_eq!(r.message, "quote failed");
        assert_eq!(r.stack.as_deref(), Some("KeyError: 'XC'"));
    }

    #[test]
    fn a_refused_event_time_is_rejected_under_its_field_path() {
        let policy = RevisionPolicy::default();
        let checks = Checks {
            check_ts: &|_| Err("too far ahead".to_owned()),
            revision: &policy,
        };
        let (records, errors) = parse_logs_checked(BODY.as_bytes(), &checks).unwrap().parsed;
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
                // No revision is no fault by default: the fallback applies.
                format!("{at}.resource.attributes[service.name]"),
                format!("{at}.timeUnixNano"),
                format!("{at}.body"),
            ]
        );
        assert!(errors.iter().all(|e| e.line == 1), "{errors:?}");
    }

    #[test]
    fn a_body_that_is_not_a_request_is_one_error() {
        let not_json = parse_logs(b"{not json").unwrap_err();
        assert!(matches!(not_json, OtlpError::LogsJson { .. }), "{not_json}");
        assert!(
            std::error::Error::source(&not_json).is_some(),
            "the cause is kept"
        );
        assert!(matches!(
            parse_logs(b"[1]"),
            Err(OtlpError::NotARequest { .. })
        ));
        assert_eq!(parse_logs(b"{}").unwrap().0.len(), 0);
        let ndjson = br#"{"service":"cart","revision":"r","message":"x"}"#;
        assert!(
            parse_logs(ndjson)
                .unwrap_err()
                .to_string()
                .contains("/v1/ndjson/logs"),
            "an NDJSON record on the OTLP path is an error, not an empty 200"
        );
    }
}
