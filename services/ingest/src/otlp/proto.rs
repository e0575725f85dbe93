//! OTLP/HTTP protobuf logs (`application/x-protobuf`) → the shared record
//! fields. Pure. The messages are `opentelemetry-proto`'s prost types.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;

use super::{log_record, Checks, Fields, OtlpError, OtlpParsed};
use crate::record::Record;

/// Decodes a protobuf `ExportLogsServiceRequest`. `Err` when the body is not
/// one; otherwise every log record yields a record or an error (named by the
/// same paths as the JSON encoding).
pub fn parse_logs_checked(body: &[u8], checks: &Checks<'_>) -> Result<OtlpParsed, OtlpError> {
    let request = ExportLogsServiceRequest::decode(body).map_err(|source| OtlpError::Protobuf {
        message: "ExportLogsServiceRequest",
        source,
    })?;
    let mut out = OtlpParsed::default();
    let mut ordinal = 0usize;
    for (ri, rl) in request.resource_logs.into_iter().enumerate() {
        let resource_attrs = rl
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        for (si, sl) in rl.scope_logs.into_iter().enumerate() {
            for (li, lr) in sl.log_records.into_iter().enumerate() {
                ordinal += 1;
                let path = format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]");
                let fields = Fields {
                    attributes: attributes(lr.attributes),
                    time_ns: lr.time_unix_nano,
                    observed_ns: lr.observed_time_unix_nano,
                    severity_text: Some(lr.severity_text).filter(|t| !t.is_empty()),
                    severity_number: Some(i64::from(lr.severity_number)).filter(|n| *n != 0),
                    body: lr.body.and_then(any_value),
                    trace_id: (!lr.trace_id.is_empty()).then(|| hex(&lr.trace_id)),
                };
                match log_record(fields, &resource_attrs, &path, ordinal, checks) {
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

pub(crate) fn attributes(kvs: Vec<KeyValue>) -> Vec<(String, String)> {
    kvs.into_iter()
        .filter_map(|kv| Some((kv.key, any_value(kv.value?)?)))
        .collect()
}

/// An `AnyValue` as text: strings as they are, scalars printed, arrays and
/// maps in a JSON-like form (they are rare in error attributes).
fn any_value(v: AnyValue) -> Option<String> {
    Some(match v.value? {
        any_value::Value::StringValue(s) => s,
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BytesValue(b) => hex(&b),
        any_value::Value::ArrayValue(a) => {
            let items: Vec<String> = a.values.into_iter().filter_map(any_value).collect();
            format!("[{}]", items.join(","))
        }
        any_value::Value::KvlistValue(kv) => {
            let items: Vec<String> = attributes(kv.values)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        // A string-table index only means something in profiles.
        any_value::Value::StringValueStrindex(_) => return None,
    })
}

/// Trace ids are bytes on the wire and lower-case hex in OTLP JSON.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::RevisionPolicy;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.to_owned())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn protobuf_records_map_like_json_ones() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "checkout"), kv("service.version", "b")],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 1_773_050_403_120_000_000,
                            severity_number: 17,
                            body: Some(AnyValue {
                                value: Some(any_value::Value::StringValue("boom".to_owned())),
                            }),
                            attributes: vec![kv("exception.type", "KeyError")],
                            trace_id: vec![0xab; 16],
                            ..Default::default()
                        },
                        LogRecord::default(),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let policy = RevisionPolicy::default();
        let checks = Checks {
            check_ts: &|_| Ok(()),
            revision: &policy,
        };
        let got = parse_logs_checked(&request.encode_to_vec(), &checks).unwrap();
        let Record::Log(r) = &got.parsed.0[0].1 else {
            panic!()
        };
        assert_eq!((r.service.as_str(), r.revision.as_str()), ("checkout", "b"));
        assert_eq!((r.ts_ms, r.level.as_str()), (1_773_050_403_120, "error"));
        assert_eq!(r.message, "boom");
        assert_eq!(r.trace_id.as_deref(), Some("ab".repeat(16).as_str()));
        assert_eq!(
            got.parsed.1[0].field,
            "resourceLogs[0].scopeLogs[0].logRecords[1].timeUnixNano"
        );
        assert!(parse_logs_checked(b"\xff\xff\xff", &checks).is_err());
    }
}
