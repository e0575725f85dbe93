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
//! sends unless told otherwise); anything else is 415. The OTLP endpoints
//! choose their encoding by the media type ([`media_type`]).

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
pub const NDJSON_TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
];

/// The request's media type: `Content-Type` lower-cased without parameters
/// (`charset` …); empty when there is none.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Checks an NDJSON endpoint's `Content-Type`: 415 unless accepted.
pub fn check_ndjson_type(headers: &HeaderMap) -> Result<(), BodyError> {
    let media = media_type(headers);
    if media.is_empty() || NDJSON_TYPES.contains(&media.as_str()) {
        return Ok(());
    }
    Err(unsupported_type(&media, NDJSON_TYPES))
}

/// The 415 for `media`, listing what `accepted` holds.
pub fn unsupported_type(media: &str, accepted: &[&str]) -> BodyError {
    fail(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "unsupported Content-Type {} (accepted: {}, or none)",
            crate::shown::value(media),
            accepted.join(", ")
        ),
    )
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

/// Undoes `Content-Encoding: gzip` or `deflate` (zlib-wrapped as HTTP says,
/// or raw deflate as some clients send it), bounding the inflated size.
pub fn decode(headers: &HeaderMap, body: &Bytes, max: usize) -> Result<Bytes, BodyError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(body.clone()),
        Some("gzip") | Some("x-gzip") => {
            inflate(flate2::read::MultiGzDecoder::new(&body[..]), "gzip", max)
        }
        Some("deflate") => {
            // A zlib stream starts with a header naming deflate (CM = 8)
            // whose first 16 bits are a multiple of 31; anything else is
            // taken as raw deflate.
            let zlib = body.len() >= 2
                && body[0] & 0x0f == 8
                && u16::from_be_bytes([body[0], body[1]]).is_multiple_of(31);
            if zlib {
                inflate(flate2::read::ZlibDecoder::new(&body[..]), "deflate", max)
            } else {
                inflate(flate2::read::DeflateDecoder::new(&body[..]), "deflate", max)
            }
        }
        Some(other) => Err(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Encoding {} (use gzip, deflate or none)",
                crate::shown::value(other)
            ),
        )),
    }
}

fn inflate(reader: impl Read, name: &str, max: usize) -> Result<Bytes, BodyError> {
    let mut out = Vec::new();
    if let Err(e) = reader.take(max as u64 + 1).read_to_end(&mut out) {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("invalid {name} body: {e}"),
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
        assert!(check_ndjson_type(&HeaderMap::new()).is_ok());
        for t in [
            "application/x-ndjson",
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
        ] {
            assert!(check_ndjson_type(&with_type(t)).is_ok(), "{t}");
        }
        for t in [
            "application/xml",
            "multipart/form-data; boundary=x",
            "image/png",
        ] {
            let e = check_ndjson_type(&with_type(t)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{t}");
        }
        assert_eq!(
            media_type(&with_type("Application/X-Protobuf; x=1")),
            "application/x-protobuf"
        );
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_bodies_inflate() {
        use std::io::Write;
        let text = b"{\"resourceLogs\":[]}";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(text).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(text).unwrap();
        for (encoding, body) in [
            ("gzip", gz.finish().unwrap()),
            ("deflate", zlib.finish().unwrap()),
            ("deflate", raw.finish().unwrap()),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_ENCODING, encoding.parse().unwrap());
            let out = decode(&h, &Bytes::from(body), 1000).unwrap();
            assert_eq!(&out[..], text, "{encoding}");
            assert_eq!(
                decode(&h, &Bytes::from_static(b"\x01\x02garbage"), 1000)
                    .unwrap_err()
                    .status,
                StatusCode::BAD_REQUEST
            );
        }
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert_eq!(
            decode(&h, &Bytes::from_static(b"x"), 10)
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
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
