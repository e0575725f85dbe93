//! Why a whole OTLP request is refused (HTTP 400): its body does not decode,
//! or it decodes but is not the request the path takes. Faults of single
//! records are [`crate::record::LineError`]s instead, and the rest is kept.

/// A refused OTLP request body. Its text is what the client reads in the
/// 400 answer.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The protobuf body does not decode as `message`.
    #[error("invalid OTLP protobuf body ({message}): {source}")]
    Protobuf {
        /// The request type (`ExportLogsServiceRequest`, …).
        message: &'static str,
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
    /// The JSON body does not parse as `message`.
    #[error("invalid OTLP JSON body ({message}): {source}")]
    Json {
        /// The request type.
        message: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The logs path's body is not JSON at all: most likely NDJSON sent to
    /// the OTLP path.
    #[error("invalid OTLP JSON body: {source} (selfheal NDJSON goes to /v1/ndjson/logs)")]
    LogsJson {
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but not shaped like the request.
    #[error("{reason}")]
    NotARequest {
        /// What is wrong with it.
        reason: &'static str,
    },
}
