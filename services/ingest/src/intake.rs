//! The HTTP intake (adapter): NDJSON or OTLP/HTTP JSON in, events on Kafka, and
//! a 2xx only after Kafka acknowledged every event carrying the request's
//! records.
//!
//! Log records are pre-aggregated across requests ([`crate::batch`]): each
//! request waits for the flush that carries its records (at most
//! `ingest.flush_interval_ms` plus the acknowledgement).
//!
//! Order: authentication (before any of the body is read), content type, the
//! body (bounded, with a deadline: [`crate::request_body`]), the
//! `Idempotency-Key` ([`crate::idempotency`]), then the records.
//!
//! Status codes: 200 all lines accepted; 400 some lines rejected (the body lists
//! each with line, field and reason; the valid lines *were* written, so a client
//! must not resend the whole body), or an empty body; 401 missing or unknown
//! bearer token (when tenants are configured); 403 a record of a service the
//! tenant may not write (nothing written); 408 the body was too slow; 413 body
//! too large; 415 unsupported `Content-Type` or `Content-Encoding`, or an OTLP
//! protobuf body; 422 an idempotency key reused with another body; 503 +
//! `Retry-After` when Kafka did not acknowledge or the
//! buffer is full (nothing is acknowledged that is not written; resending may
//! duplicate, never lose). OTLP follows its spec for partial success: 200 with
//! `partialSuccess` (and the same `rejected` list).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;

use selfheal_common::config::IngestConfig;

use crate::auth::{Tenant, Tenants};
use crate::batch::{Batcher, FlushError};
use crate::event_time::EventTimeLimits;
use crate::events::to_events;
use crate::idempotency::{self, Claim, Idempotency};
use crate::normalize::Normalizer;
use crate::record::{parse_body, DefaultType, LineError, Parsed, Record};
use crate::request_body::{self, BodyError};

/// Seconds a client is asked to wait before resending after a 503.
const RETRY_AFTER_S: &str = "5";
/// The request header naming a request for safe resends.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header of an answer replayed for a resend.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Shared state of the intake handlers.
#[derive(Clone)]
pub struct Intake {
    batcher: Batcher,
    tenants: Arc<Tenants>,
    normalizer: Arc<Mutex<Normalizer>>,
    max_body_bytes: usize,
    body_timeout: Duration,
    limits: EventTimeLimits,
    idempotency: Idempotency,
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
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            limits: EventTimeLimits::from_config(config),
            idempotency: Idempotency::new(config.idempotency_keys),
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
    replays: IntCounterVec,
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
            replays: counter(
                "selfheal_ingest_idempotent_replays_total",
                "Resends answered from a remembered Idempotency-Key, by endpoint.",
                "endpoint",
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

// The handlers take the body unread: it is read only once the request is
// authenticated (see `respond`).
async fn logs(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    handle(s, Format::Ndjson(DefaultType::Log), "logs", headers, body).await
}
async fn otlp_logs(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    handle(s, Format::Otlp, "otlp_logs", headers, body).await
}
async fn traffic(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    let format = Format::Ndjson(DefaultType::Traffic);
    handle(s, format, "traffic", headers, body).await
}
async fn deploys(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    let format = Format::Ndjson(DefaultType::Deploy);
    handle(s, format, "deploys", headers, body).await
}
async fn builds(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    let format = Format::Ndjson(DefaultType::Build);
    handle(s, format, "builds", headers, body).await
}

async fn handle(
    s: Intake,
    format: Format,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = respond(&s, format, endpoint, headers, body).await;
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

/// Authentication, content type and the body, in that order (nothing of an
/// unauthenticated request's body is read), then the records.
async fn respond(
    s: &Intake,
    format: Format,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tenant = match authenticate(s, &headers) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    if let Err(e) = request_body::check_content_type(&headers, format == Format::Otlp) {
        return body_error(e);
    }
    let raw = match request_body::read(&headers, body, s.max_body_bytes, s.body_timeout).await {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    match idempotency_key(&headers) {
        Ok(Some(key)) if s.idempotency.enabled() => {
            idempotent(s, format, endpoint, headers, raw, tenant, key).await
        }
        Ok(_) => process(s, format, endpoint, &headers, raw, tenant.as_ref()).await,
        Err(resp) => *resp,
    }
}

fn body_error(e: BodyError) -> Response {
    let mut resp = reply(e.status, IntakeResponse::error(e.message));
    if e.status == StatusCode::REQUEST_TIMEOUT {
        // A client this slow does not get to keep the connection.
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

fn authenticate(s: &Intake, headers: &HeaderMap) -> Result<Option<Tenant>, Box<Response>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match s.tenants.authenticate(authorization) {
        Ok(t) => Ok(t.cloned()),
        Err(e) => {
            let mut resp = reply(
                StatusCode::UNAUTHORIZED,
                IntakeResponse::error(e.to_string()),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Err(Box::new(resp))
        }
    }
}

/// The `Idempotency-Key` header, if any: 1..=255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        _ => Err(Box::new(reply(
            StatusCode::BAD_REQUEST,
            IntakeResponse::error(
                "Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned(),
            ),
        ))),
    }
}

/// A request with an `Idempotency-Key` (semantics in [`crate::idempotency`]).
async fn idempotent(
    s: &Intake,
    format: Format,
    endpoint: &'static str,
    headers: HeaderMap,
    raw: Bytes,
    tenant: Option<Tenant>,
    key: String,
) -> Response {
    let scope = tenant.as_ref().map_or("", |t| t.name.as_str());
    let scoped = format!("{scope}\u{0}{endpoint}\u{0}{key}");
    let digest = idempotency::digest(&raw);
    loop {
        match s.idempotency.claim(&scoped, digest) {
            Claim::Replay(stored) => {
                s.metrics.replays.with_label_values(&[endpoint]).inc();
                let mut resp = (
                    stored.status,
                    [(header::CONTENT_TYPE, "application/json")],
                    stored.body,
                )
                    .into_response();
                resp.headers_mut().insert(
                    IDEMPOTENT_REPLAYED,
                    header::HeaderValue::from_static("true"),
                );
                return resp;
            }
            Claim::Conflict => {
                return reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    IntakeResponse::error(
                        "Idempotency-Key already used for a different body".to_owned(),
                    ),
                )
            }
            // Wakes when the first request is answered or gives up.
            Claim::Wait(mut rx) => {
                let _ = rx.changed().await;
            }
            Claim::New(guard) => {
                // Processed to the end even if this client goes away (a
                // timeout): its records are written anyway, and the resend
                // must find the result.
                let s = s.clone();
                let task = tokio::spawn(async move {
                    let resp = process(&s, format, endpoint, &headers, raw, tenant.as_ref()).await;
                    let (parts, body) = resp.into_parts();
                    let bytes = axum::body::to_bytes(body, usize::MAX)
                        .await
                        .unwrap_or_default();
                    guard.complete(parts.status, bytes.clone());
                    Response::from_parts(parts, Body::from(bytes))
                });
                return task.await.unwrap_or_else(|e| {
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        IntakeResponse::error(format!("intake task failed: {e}")),
                    )
                });
            }
        }
    }
}

/// Decodes, parses, checks and writes the records of one request.
async fn process(
    s: &Intake,
    format: Format,
    endpoint: &'static str,
    headers: &HeaderMap,
    raw: Bytes,
    tenant: Option<&Tenant>,
) -> Response {
    let body = match request_body::decode(headers, &raw, s.max_body_bytes) {
        Ok(b) => b,
        Err(e) => return body_error(e),
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

fn reply(status: StatusCode, body: IntakeResponse) -> Response {
    (status, Json(body)).into_response()
}
