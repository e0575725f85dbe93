//! The HTTP intake (adapter): NDJSON in, events on Kafka, and a 2xx only after
//! Kafka acknowledged every event.
//!
//! Status codes: 200 all lines accepted; 400 some lines rejected (the body lists
//! each with line, field and reason; the valid lines *were* written, so a client
//! must not resend the whole body); 413 body too large; 415 unknown
//! `Content-Encoding`; 503 + `Retry-After` when Kafka did not acknowledge (nothing
//! is acknowledged that is not written; resending may duplicate, never lose).

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use prometheus::{IntCounterVec, Opts, Registry};
use selfheal_common::config::TopicsConfig;
use selfheal_common::kafka::{EventProducer, Outgoing};
use serde::Serialize;

use crate::events::{to_events, Events};
use crate::normalize::{Normalizer, NormalizerConfig};
use crate::record::{parse_body, DefaultType, LineError};

/// Shared state of the intake handlers.
#[derive(Clone)]
pub struct Intake {
    producer: EventProducer,
    topics: Arc<TopicsConfig>,
    normalizer: Arc<std::sync::Mutex<Normalizer>>,
    max_body_bytes: usize,
    metrics: IntakeMetrics,
}

impl Intake {
    /// Creates the intake state.
    pub fn new(
        producer: EventProducer,
        topics: TopicsConfig,
        normalizer: NormalizerConfig,
        max_body_bytes: usize,
        registry: &Registry,
    ) -> Self {
        Self {
            producer,
            topics: Arc::new(topics),
            normalizer: Arc::new(std::sync::Mutex::new(Normalizer::new(normalizer))),
            max_body_bytes,
            metrics: IntakeMetrics::new(registry),
        }
    }

    /// The intake routes.
    pub fn router(self) -> Router {
        let limit = self.max_body_bytes;
        Router::new()
            .route("/v1/logs", post(logs))
            .route("/v1/traffic", post(traffic))
            .route("/v1/deploys", post(deploys))
            .route("/v1/builds", post(builds))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self)
    }
}

#[derive(Clone)]
struct IntakeMetrics {
    records: IntCounterVec,
    rejected: IntCounterVec,
    responses: IntCounterVec,
}

impl IntakeMetrics {
    fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        Self {
            records: counter(
                "selfheal_ingest_records_accepted_total",
                "Records accepted and acknowledged by Kafka, by endpoint.",
                "endpoint",
            ),
            rejected: counter(
                "selfheal_ingest_lines_rejected_total",
                "Lines rejected as invalid, by field.",
                "field",
            ),
            responses: counter(
                "selfheal_ingest_http_responses_total",
                "Intake responses, by status code.",
                "status",
            ),
        }
    }
}

/// The response body of every intake request.
#[derive(Debug, Serialize)]
struct IntakeResponse {
    /// Lines accepted (and, for 2xx/400, durably written).
    accepted: usize,
    /// Events produced from them.
    events: usize,
    /// Rejected lines.
    rejected: Vec<LineError>,
    /// A human-readable summary when something went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn logs(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, DefaultType::Log, "logs", &headers, body).await
}
async fn traffic(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, DefaultType::Traffic, "traffic", &headers, body).await
}
async fn deploys(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, DefaultType::Deploy, "deploys", &headers, body).await
}
async fn builds(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, DefaultType::Build, "builds", &headers, body).await
}

async fn handle(
    s: Intake,
    default: DefaultType,
    endpoint: &'static str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let response = handle_inner(&s, default, endpoint, headers, body).await;
    s.metrics
        .responses
        .with_label_values(&[response.status().as_str()])
        .inc();
    response
}

async fn handle_inner(
    s: &Intake,
    default: DefaultType,
    endpoint: &'static str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let body = match decode_body(headers, &body, s.max_body_bytes) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(e) => {
            let line = body[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            return reply(
                StatusCode::BAD_REQUEST,
                0,
                0,
                vec![LineError {
                    line,
                    field: "(body)".to_owned(),
                    reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                }],
                None,
            );
        }
    };
    let (records, rejected) = parse_body(text, default);
    for e in &rejected {
        s.metrics.rejected.with_label_values(&[&e.field]).inc();
    }
    let accepted = records.len();
    let events = {
        // A poisoned lock only means another request panicked mid-batch; the
        // grouper's state is still consistent (every update is a single step).
        let mut normalizer = s.normalizer.lock().unwrap_or_else(|p| p.into_inner());
        to_events(&mut *normalizer, records.into_iter().map(|(_, r)| r))
    };
    let n_events = events.len();
    let outgoing = match encode(&s.topics, &events) {
        Ok(o) => o,
        Err(e) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                0,
                0,
                rejected,
                Some(format!("cannot encode events: {e}")),
            )
        }
    };
    if let Err(e) = s.producer.send_all(&outgoing).await {
        tracing::warn!(endpoint, error = %e, "intake write not acknowledged");
        let mut resp = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            0,
            0,
            rejected,
            Some(format!("not written, retry later: {e}")),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return resp;
    }
    s.metrics
        .records
        .with_label_values(&[endpoint])
        .inc_by(accepted as u64);
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let summary = (!rejected.is_empty()).then(|| {
        format!(
            "{} line(s) rejected; the {accepted} valid line(s) were written, resend only the rejected ones",
            rejected.len()
        )
    });
    reply(status, accepted, n_events, rejected, summary)
}

fn encode(
    topics: &TopicsConfig,
    events: &Events,
) -> Result<Vec<Outgoing>, selfheal_schemas::Error> {
    let mut out = Vec::with_capacity(events.len());
    for e in &events.deploys {
        out.push(Outgoing::event(&topics.deploys, e)?);
    }
    for e in &events.builds {
        out.push(Outgoing::event(&topics.builds, e)?);
    }
    for e in &events.traffic {
        out.push(Outgoing::event(&topics.traffic, e)?);
    }
    for e in &events.signatures {
        out.push(Outgoing::event(&topics.signatures, e)?);
    }
    Ok(out)
}

/// Undoes `Content-Encoding: gzip`, bounding the inflated size.
fn decode_body(headers: &HeaderMap, body: &Bytes, max: usize) -> Result<Bytes, Box<Response>> {
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
                return Err(Box::new(reply(
                    StatusCode::BAD_REQUEST,
                    0,
                    0,
                    vec![],
                    Some(format!("invalid gzip body: {e}")),
                )));
            }
            if out.len() > max {
                return Err(Box::new(reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    0,
                    0,
                    vec![],
                    Some(format!("inflated body exceeds {max} bytes")),
                )));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(Box::new(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            0,
            0,
            vec![],
            Some(format!(
                "unsupported Content-Encoding `{other}` (use gzip or none)"
            )),
        ))),
    }
}

fn reply(
    status: StatusCode,
    accepted: usize,
    events: usize,
    rejected: Vec<LineError>,
    error: Option<String>,
) -> Response {
    (
        status,
        Json(IntakeResponse {
            accepted,
            events,
            rejected,
            error,
        }),
    )
        .into_response()
}
