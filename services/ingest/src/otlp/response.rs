//! The answers OTLP/HTTP specifies, in the request's encoding. Pure.
//!
//! Success is an `ExportLogsServiceResponse` (with `partial_success` when
//! some records were rejected); any 4xx/5xx body is a `google.rpc.Status`.
//! Only the specified fields are written: some exporters decode the body
//! strictly.

use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use prost::Message;

/// The encoding of an OTLP request, and so of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json` (proto3 JSON mapping).
    Json,
    /// `application/x-protobuf`.
    Protobuf,
}

impl Encoding {
    /// The answer's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Protobuf => "application/x-protobuf",
        }
    }
}

/// `google.rpc.Status` (`google/rpc/status.proto`). Written here because
/// `opentelemetry-proto` does not ship the `google.rpc` package and the
/// message is three fields; `details` (field 3) is always empty, so it is
/// left out.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The body of a 2xx answer: `rejected` records and why, if any.
pub fn success(encoding: Encoding, rejected: usize, message: Option<&str>) -> Vec<u8> {
    let partial = (rejected > 0 || message.is_some()).then(|| ExportLogsPartialSuccess {
        rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: message.unwrap_or_default().to_owned(),
    });
    match encoding {
        Encoding::Protobuf => ExportLogsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Encoding::Json => {
            let body = match partial {
                Some(p) => serde_json::json!({"partialSuccess": {
                    // int64 is a decimal string in proto3 JSON.
                    "rejectedLogRecords": p.rejected_log_records.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            body.to_string().into_bytes()
        }
    }
}

/// The body of a 2xx answer to `/v1/metrics`: `rejected` data points and
/// why, if any.
pub fn success_metrics(encoding: Encoding, rejected: usize, message: Option<&str>) -> Vec<u8> {
    let partial = (rejected > 0 || message.is_some()).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: message.unwrap_or_default().to_owned(),
    });
    match encoding {
        Encoding::Protobuf => ExportMetricsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Encoding::Json => match partial {
            Some(p) => serde_json::json!({"partialSuccess": {
                "rejectedDataPoints": p.rejected_data_points.to_string(),
                "errorMessage": p.error_message,
            }}),
            None => serde_json::json!({}),
        }
        .to_string()
        .into_bytes(),
    }
}

/// The body of a 4xx/5xx answer with `status`.
pub fn error(encoding: Encoding, status: StatusCode, message: &str) -> Vec<u8> {
    let code = rpc_code(status);
    match encoding {
        Encoding::Protobuf => RpcStatus {
            code,
            message: message.to_owned(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}

/// The gRPC code of an HTTP status (`google.rpc.Code`), as the OTLP/HTTP
/// spec pairs them.
fn rpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        408 => 4,             // DEADLINE_EXCEEDED
        409 | 422 => 9,       // FAILED_PRECONDITION
        429 => 8,             // RESOURCE_EXHAUSTED
        502..=504 => 14,      // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_as_the_specified_messages() {
        let ok = success(Encoding::Protobuf, 2, Some("2 rejected"));
        let decoded = ExportLogsServiceResponse::decode(&ok[..]).unwrap();
        let p = decoded.partial_success.unwrap();
        assert_eq!(
            (p.rejected_log_records, p.error_message.as_str()),
            (2, "2 rejected")
        );
        assert!(
            ExportLogsServiceResponse::decode(&success(Encoding::Protobuf, 0, None)[..])
                .unwrap()
                .partial_success
                .is_none()
        );
        let e = error(Encoding::Protobuf, StatusCode::BAD_REQUEST, "bad");
        let s = RpcStatus::decode(&e[..]).unwrap();
        assert_eq!((s.code, s.message.as_str()), (3, "bad"));
        let j: serde_json::Value =
            serde_json::from_slice(&error(Encoding::Json, StatusCode::SERVICE_UNAVAILABLE, "x"))
                .unwrap();
        assert_eq!(j, serde_json::json!({"code": 14, "message": "x"}));
        let j: serde_json::Value =
            serde_json::from_slice(&success(Encoding::Json, 1, Some("m"))).unwrap();
        assert_eq!(j["partialSuccess"]["rejectedLogRecords"], "1");
    }
}
