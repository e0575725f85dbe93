//! The HTTP intake (adapter): NDJSON or OTLP/HTTP JSON in, events on Kafka, and
//! a 2xx only after Kafka acknowledged every event carrying the request's
//! records.
//!
//! Log records are pre-aggregated across requests ([`crate::batch`]): each
//! request waits for the flush that carries its records (at most
//! `ingest.flush_interval_ms` plus the acknowledgement).
//!
//! Status codes: 200 all lines accepted; 400 some lines rejected (the body lists
//! each with line, field and reason; the valid lines *were* written, so a client
//! must not resend the whole body); 401 missing or unknown bearer token (when
//! tenants are configured); 403 a record of a service the tenant may not write
//! (nothing written); 413 body too large; 415 unknown `Content-Encoding` or an
//! OTLP protobuf body; 503 + `Retry-After` when Kafka did not acknowledge or the
//! buffer is full (nothing is acknowledged that is not written; resending may
//! duplicate, never lose). OTLP follows its spec for partial success: 200 with
//! `partialSuccess` (and the same `rejected` list).

use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;

use selfheal_common::config::IngestConfig;

use crate::auth::Tenants;
use crate::batch::{Batcher, FlushError};
use crate::event_time::EventTimeLimits;
use crate::events::to_events;
use crate::normalize::Normalizer;
use crate::record::{parse_body, DefaultType, LineError, Parsed, Record};

/// Seconds a client is asked to wait before resending after a 503.
const RETRY_AFTER_S: &str = "5";

/// Shared state of the intake handlers.
#[derive(Clone)]
pub struct Intake {
    batcher: Batcher,
    tenants: Arc<Tenants>,
    normalizer: Arc<Mutex<Normalizer>>,
    max_body_bytes: usize,
    limits: EventTimeLimits,
    metrics: IntakeMetrics,
}

impl Intake {
    /// Creates the intake state. `normalizer` is shared with the raw-topic
    /// consumer, so both inputs group into the same signatures.
    pub fn new(
        batcher: Batcher,
        tenants: Tenants,
        normalizer: Arc<Mutex<Normalizer>>,
        config: &IngestConfig,
        registry: &Registry,
    ) -> Self {
        Self {
            batcher,
            tenants: Arc::new(tenants),
            normalizer,
            max_body_bytes: config.max_body_bytes,
            limits: EventTimeLimits::from_config(config),
            metrics: IntakeMetrics::new(registry),
        }
    }

    /// The intake routes.
    pub fn router(self) -> Router {
        let limit = self.max_body_bytes;
        Router::new()
            .route("/v1/logs", post(logs))
            .route("/v1/otlp/logs", post(otlp_logs))
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
#[derive(Debug, Default, Serialize)]
struct IntakeResponse {
    /// Lines accepted (and, for 2xx/400, durably written).
    accepted: usize,
    /// Events produced from them (before cross-request aggregation).
    events: usize,
    /// Rejected lines.
    rejected: Vec<LineError>,
    /// A human-readable summary when something went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// OTLP `ExportLogsServiceResponse.partial_success`, on the OTLP endpoint.
    #[serde(rename = "partialSuccess", skip_serializing_if = "Option::is_none")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PartialSuccess {
    rejected_log_records: usize,
    error_message: String,
}

/// What an endpoint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson(DefaultType),
    Otlp,
}

async fn logs(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, Format::Ndjson(DefaultType::Log), "logs", &headers, body).await
}
async fn otlp_logs(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, Format::Otlp, "otlp_logs", &headers, body).await
}
async fn traffic(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(
        s,
        Format::Ndjson(DefaultType::Traffic),
        "traffic",
        &headers,
        body,
    )
    .await
}
async fn deploys(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(
        s,
        Format::Ndjson(DefaultType::Deploy),
        "deploys",
        &headers,
        body,
    )
    .await
}
async fn builds(State(s): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    handle(
        s,
        Format::Ndjson(DefaultType::Build),
        "builds",
        &headers,
        body,
    )
    .await
}

async fn handle(
    s: Intake,
    format: Format,
    endpoint: &'static str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let response = handle_inner(&s, format, endpoint, headers, body).await;
    s.metrics
        .responses
        .with_label_values(&[response.status().as_str()])
        .inc();
    response
}

fn service_of(r: &Record) -> &str {
    match r {
        Record::Log(l) => &l.service,
        Record::Traffic(t) => &t.service,
        Record::Deploy(d) => &d.service,
        Record::Build(b) => &b.service,
    }
}

async fn handle_inner(
    s: &Intake,
    format: Format,
    endpoint: &'static str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let tenant = match s.tenants.authenticate(authorization) {
        Ok(t) => t,
        Err(e) => {
            let mut resp = reply(
                StatusCode::UNAUTHORIZED,
                IntakeResponse::error(e.to_string()),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    };
    let body = match decode_body(headers, &body, s.max_body_bytes) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let (records, rejected) = match format {
        Format::Ndjson(default) => match parse_ndjson(&body, default) {
            Ok(mut parsed) => {
                s.limits
                    .apply(&mut parsed, selfheal_common::wall_clock_ms(), "ts");
                parsed
            }
            Err(resp) => return *resp,
        },
        Format::Otlp => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if content_type.contains("protobuf") {
                return reply(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    IntakeResponse::error(
                        "OTLP protobuf is not supported; send OTLP/HTTP JSON (Content-Type: application/json)"
                            .to_owned(),
                    ),
                );
            }
            let now = selfheal_common::wall_clock_ms();
            let check = |ts| s.limits.check(ts, now);
            match crate::otlp::parse_logs_checked(&body, &check) {
                Ok(parsed) => parsed,
                Err(e) => return reply(StatusCode::BAD_REQUEST, IntakeResponse::error(e)),
            }
        }
    };
    for e in &rejected {
        s.metrics.rejected.with_label_values(&[&e.field]).inc();
    }
    if let Some(tenant) = tenant {
        let forbidden: Vec<LineError> = records
            .iter()
            .filter(|(_, r)| !tenant.allows(service_of(r)))
            .map(|(line, r)| LineError {
                line: *line,
                field: "service".to_owned(),
                reason: format!(
                    "tenant `{}` may not write service `{}`",
                    tenant.name,
                    service_of(r)
                ),
            })
            .collect();
        if !forbidden.is_empty() {
            return reply(
                StatusCode::FORBIDDEN,
                IntakeResponse {
                    rejected: forbidden,
                    error: Some("nothing written: the request has records of services this tenant may not write".to_owned()),
                    ..IntakeResponse::default()
                },
            );
        }
    }
    let accepted = records.len();
    let mut n_events = 0;
    if accepted > 0 {
        // Room first, so a full buffer answers at once, before any work.
        let reservation = match s.batcher.try_reserve(accepted) {
            Ok(r) => r,
            Err(e) => return unavailable(endpoint, &e, rejected),
        };
        let events = {
            // A poisoned lock only means another request panicked mid-batch; the
            // grouper's state is still consistent (every update is a single step).
            let mut normalizer = s.normalizer.lock().unwrap_or_else(|p| p.into_inner());
            to_events(&mut *normalizer, records.into_iter().map(|(_, r)| r))
        };
        n_events = events.len();
        if let Err(e) = s.batcher.submit(events, reservation).await {
            return unavailable(endpoint, &e, rejected);
        }
    }
    s.metrics
        .records
        .with_label_values(&[endpoint])
        .inc_by(accepted as u64);
    let summary = (!rejected.is_empty()).then(|| {
        format!(
            "{} {} rejected; the {accepted} valid one(s) were written, resend only the rejected ones",
            rejected.len(),
            if format == Format::Otlp { "log record(s)" } else { "line(s)" },
        )
    });
    let (status, partial_success) = match (format, &summary) {
        (_, None) => (StatusCode::OK, None),
        (Format::Otlp, Some(msg)) => (
            StatusCode::OK,
            Some(PartialSuccess {
                rejected_log_records: rejected.len(),
                error_message: msg.clone(),
            }),
        ),
        (Format::Ndjson(_), Some(_)) => (StatusCode::BAD_REQUEST, None),
    };
    reply(
        status,
        IntakeResponse {
            accepted,
            events: n_events,
            rejected,
            error: summary,
            partial_success,
        },
    )
}

impl IntakeResponse {
    fn error(message: String) -> Self {
        Self {
            error: Some(message),
            ..Self::default()
        }
    }
}

fn unavailable(endpoint: &str, e: &FlushError, rejected: Vec<LineError>) -> Response {
    tracing::warn!(endpoint, error = %e, "intake write not acknowledged");
    let mut resp = reply(
        StatusCode::SERVICE_UNAVAILABLE,
        IntakeResponse {
            rejected,
            error: Some(format!("not written, retry later: {e}")),
            ..IntakeResponse::default()
        },
    );
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(RETRY_AFTER_S),
    );
    resp
}

fn parse_ndjson(body: &Bytes, default: DefaultType) -> Result<Parsed, Box<Response>> {
    match std::str::from_utf8(body) {
        Ok(text) => Ok(parse_body(text, default)),
        Err(e) => {
            let line = body[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Err(Box::new(reply(
                StatusCode::BAD_REQUEST,
                IntakeResponse {
                    rejected: vec![LineError {
                        line,
                        field: "(body)".to_owned(),
                        reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    }],
                    ..IntakeResponse::default()
                },
            )))
        }
    }
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
                    IntakeResponse::error(format!("invalid gzip body: {e}")),
                )));
            }
            if out.len() > max {
                return Err(Box::new(reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    IntakeResponse::error(format!("inflated body exceeds {max} bytes")),
                )));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(Box::new(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IntakeResponse::error(format!(
                "unsupported Content-Encoding `{other}` (use gzip or none)"
            )),
        ))),
    }
}

fn reply(status: StatusCode, body: IntakeResponse) -> Response {
    (status, Json(body)).into_response()
}
