//! Reading an intake request's body (adapter): its content type, its size
//! bound, its deadline and its encoding, each with the status it earns.
//!
//! The body is read only after the request is authenticated (an
//! unauthenticated client's bytes are never buffered), at most
//! `ingest.max_body_bytes` of it (413, checked against `Content-Length` before
//! reading anything; the refused body is then read and discarded up to that
//! size again, so the client reads the 413 rather than a reset), within
//! `ingest.body_timeout_ms` (408). Accepted content
//! types: `application/x-ndjson`, `application/json`, `text/plain`, none at
//! all, and `application/x-www-form-urlencoded` (what `curl --data-binary`
//! sends unless told otherwise); anything else is 415. OTLP takes JSON only.

use std::io::Read;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use futures::StreamExt;

/// Why a body was not read; the status and the message of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// The answer's status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
}

fn fail(status: StatusCode, message: impl Into<String>) -> BodyError {
    BodyError {
        status,
        message: message.into(),
    }
}

/// NDJSON endpoints' accepted media types.
const NDJSON_TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
];

/// Checks `Content-Type` (parameters such as `charset` ignored): 415 unless
/// accepted; `otlp` endpoints take JSON only.
pub fn check_content_type(headers: &HeaderMap, otlp: bool) -> Result<(), BodyError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if otlp && media.contains("protobuf") {
        return Err(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "OTLP protobuf is not supported; send OTLP/HTTP JSON (Content-Type: application/json)",
        ));
    }
    let accepted: &[&str] = if otlp {
        &["application/json"]
    } else {
        NDJSON_TYPES
    };
    if media.is_empty() || accepted.contains(&media.as_str()) {
        return Ok(());
    }
    Err(fail(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "unsupported Content-Type {} (accepted: {}, or none)",
            crate::shown::value(&media),
            accepted.join(", ")
        ),
    ))
}

/// Reads the whole body: at most `max` bytes, within `timeout`.
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|n| n > max as u64) {
        let _ = tokio::time::timeout(timeout, drain(&mut stream, max)).await;
        return Err(too_large(max));
    }
    let collect = async {
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fail(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
            if out.len() + chunk.len() > max {
                drop(out);
                drain(&mut stream, max).await;
                return Err(too_large(max));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    let body = tokio::time::timeout(timeout, collect).await.map_err(|_| {
        fail(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within ingest.body_timeout_ms ({} ms)",
                timeout.as_millis()
            ),
        )
    })??;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "empty body: nothing to ingest",
        ));
    }
    Ok(body)
}

/// Reads and discards up to `limit` bytes of a refused body, keeping none,
/// so that a client still sending it reads the 413 instead of a connection
/// reset (closing a socket with unread data resets it). Bounded by `limit`
/// and the caller's deadline: a larger body is cut off.
async fn drain(stream: &mut axum::body::BodyDataStream, limit: usize) {
    let mut seen = 0usize;
    while seen <= limit {
        match stream.next().await {
            Some(Ok(chunk)) => seen += chunk.len(),
            _ => return,
        }
    }
}

fn too_large(max: usize) -> BodyError {
    fail(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body exceeds ingest.max_body_bytes ({max} bytes)"),
    )
}

/// Undoes `Content-Encoding: gzip`, bounding the inflated size.
pub fn decode(headers: &HeaderMap, body: &Bytes, max: usize) -> Result<Bytes, BodyError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(body.clone()),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            let mut reader = flate2::read::MultiGzDecoder::new(&body[..]).take(max as u64 + 1);
            if let Err(e) = reader.read_to_end(&mut out) {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!("invalid gzip body: {e}"),
                ));
            }
            if out.len() > max {
                return Err(fail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("inflated body exceeds {max} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Encoding {} (use gzip or none)",
                crate::shown::value(other)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, t.parse().unwrap());
        h
    }

    #[test]
    fn content_types_are_accepted_or_415() {
        assert!(check_content_type(&HeaderMap::new(), false).is_ok());
        for t in [
            "application/x-ndjson",
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
        ] {
            assert!(check_content_type(&with_type(t), false).is_ok(), "{t}");
        }
        for t in [
            "application/xml",
            "multipart/form-data; boundary=x",
            "image/png",
        ] {
            let e = check_content_type(&with_type(t), false).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{t}");
        }
        assert!(check_content_type(&with_type("application/json"), true).is_ok());
        let e = check_content_type(&with_type("application/x-protobuf"), true).unwrap_err();
        assert!(e.message.contains("protobuf"));
        assert!(check_content_type(&with_type("text/plain"), true).is_err());
    }

    #[tokio::test]
    async fn empty_large_and_slow_bodies_are_refused() {
        let h = HeaderMap::new();
        let t = Duration::from_secs(5);
        let e = read(&h, Body::from("  \n"), 100, t).await.unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = read(&h, Body::from("x".repeat(101)), 100, t)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, "8388608".parse().unwrap());
        let e = read(&declared, Body::empty(), 100, t).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let never = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let e = read(&h, never, 100, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(read(&h, Body::from("{}"), 100, t).await.unwrap(), "{}");
    }
}
