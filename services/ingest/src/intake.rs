//! The HTTP intake (adapter): OTLP/HTTP logs (protobuf or JSON) or selfheal
//! NDJSON in, events on Kafka, and a 2xx only after Kafka acknowledged every
//! event carrying the request's records.
//!
//! Paths: `/v1/logs` is OTLP's (`application/x-protobuf` or
//! `application/json`, answered in the same encoding); NDJSON log records go
//! to `/v1/ndjson/logs`. For one release `/v1/logs` still takes NDJSON when
//! the `Content-Type` is an NDJSON one other than `application/json`
//! (`application/x-ndjson`, `text/plain`, curl's form type, or none),
//! answered with a `Deprecation` header. `/v1/otlp/logs` stays an OTLP alias.
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
//! too large; 415 unsupported `Content-Type` or `Content-Encoding`; 422 an idempotency key reused with another body; 503 +
//! `Retry-After` when Kafka did not acknowledge or the
//! buffer is full (nothing is acknowledged that is not written; resending may
//! duplicate, never lose). OTLP follows its spec: 200 with `partialSuccess`
//! when some records were rejected (their positions, fields and reasons in
//! `errorMessage`), every other answer a `google.rpc.Status`
//! ([`crate::otlp::response`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use serde::Serialize;

use selfheal_common::config::IngestConfig;

use crate::auth::{Tenant, Tenants};
use crate::batch::{Batcher, FlushError};
use crate::event_time::EventTimeLimits;
use crate::events::to_events;
use crate::idempotency::{self, Claim, Idempotency};
use crate::normalize::Normalizer;
use crate::otlp::response::{self as otlp_response, Encoding};
use crate::otlp::{Checks, RevisionPolicy};
use crate::record::{parse_body, DefaultType, LineError, Parsed, Record};
use crate::request_body::{self, BodyError};

/// Seconds a client is asked to wait before resending after a 503.
const RETRY_AFTER_S: &str = "5";
/// The request header naming a request for safe resends.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header of an answer replayed for a resend.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Rejected records listed in an OTLP answer's message; the rest are counted.
const OTLP_LISTED_REJECTIONS: usize = 10;

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
    revision: Arc<RevisionPolicy>,
    github_secret: Option<Arc<Vec<u8>>>,
    /// The previous point of each cumulative OTLP metric series.
    cumulative: Arc<Mutex<crate::otlp::metrics::Cumulative>>,
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
            revision: Arc::new(RevisionPolicy::from_config(config)),
            github_secret: None,
            cumulative: Arc::new(Mutex::new(crate::otlp::metrics::Cumulative::new(
                CUMULATIVE_SERIES,
            ))),
            metrics: IntakeMetrics::new(registry),
        }
    }

    /// Accepts GitHub webhooks signed with `secret` on `/v1/webhooks/github`.
    pub fn with_github_secret(mut self, secret: Option<Vec<u8>>) -> Self {
        self.github_secret = secret.map(Arc::new);
        self
    }

    /// The intake routes.
    pub fn router(self) -> Router {
        let limit = self.max_body_bytes;
        Router::new()
            .route("/v1/logs", post(logs))
            .route("/v1/otlp/logs", post(otlp_logs))
            .route("/v1/metrics", post(otlp_metrics))
            .route("/v1/ndjson/logs", post(ndjson_logs))
            .route("/v1/traffic", post(traffic))
            .route("/v1/deploys", post(deploys))
            .route("/v1/builds", post(builds))
            .route("/v1/webhooks/github", post(github))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self)
    }
}

/// Cumulative OTLP metric series remembered (a few hundred bytes each).
const CUMULATIVE_SERIES: usize = 100_000;

#[derive(Clone)]
struct IntakeMetrics {
    records: IntCounterVec,
    rejected: IntCounterVec,
    responses: IntCounterVec,
    replays: IntCounterVec,
    revisions: IntCounterVec,
    ignored_points: IntCounter,
    duration: HistogramVec,
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
            revisions: counter(
                "selfheal_ingest_otlp_revision_total",
                "OTLP log records accepted, by where their revision came from \
                 (a configured attribute, or `fallback`).",
                "source",
            ),
            ignored_points: {
                let c = IntCounter::new(
                    "selfheal_ingest_otlp_metric_points_ignored_total",
                    "OTLP metric data points of metrics selfheal does not read.",
                )
                .expect("valid metric");
                registry
                    .register(Box::new(c.clone()))
                    .expect("metric registered once");
                c
            },
            duration: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "selfheal_ingest_request_duration_seconds",
                        "Intake request latency, from the handler's start to the answer \
                         (includes waiting for the flush and Kafka's acknowledgement).",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0,
                    ]),
                    &["endpoint"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
        }
    }
}

/// The metric label of a rejected field: its path with record positions
/// taken out (`resourceLogs[].scopeLogs[].logRecords[].timeUnixNano`), so the
/// label takes as many values as there are field names, never one per
/// record. Field names are the parsers' own (never a client's key).
pub fn field_label(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(']') {
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
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
}

/// What an endpoint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson(DefaultType),
    /// NDJSON on the OTLP path `/v1/logs`: accepted for one more release.
    DeprecatedNdjson,
    Otlp(Encoding),
    /// OTLP metrics (`/v1/metrics`).
    OtlpMetrics(Encoding),
    /// A GitHub webhook delivery (`deployment_status` → a deploy).
    Github,
}

impl Format {
    fn is_otlp(self) -> bool {
        self.otlp().is_some()
    }
    /// The OTLP encoding, for either signal.
    fn otlp(self) -> Option<Encoding> {
        match self {
            Self::Otlp(e) | Self::OtlpMetrics(e) => Some(e),
            _ => None,
        }
    }
    /// Distinguishes idempotency keys of one endpoint's encodings.
    fn name(self) -> &'static str {
        match self {
            Self::Ndjson(_) | Self::DeprecatedNdjson | Self::Github => "ndjson",
            Self::Otlp(Encoding::Json) => "otlp-json",
            Self::Otlp(Encoding::Protobuf) => "otlp-protobuf",
            Self::OtlpMetrics(Encoding::Json) => "otlp-metrics-json",
            Self::OtlpMetrics(Encoding::Protobuf) => "otlp-metrics-protobuf",
        }
    }
}

/// The OTLP encoding a media type asks for.
fn otlp_encoding(media: &str) -> Option<Encoding> {
    match media {
        "application/x-protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

// The handlers take the body unread: it is read only once the request is
// authenticated (see `respond`).
async fn logs(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    let media = request_body::media_type(&headers);
    let format = match otlp_encoding(&media) {
        Some(encoding) => Format::Otlp(encoding),
        None if media.is_empty() || request_body::NDJSON_TYPES.contains(&media.as_str()) => {
            Format::DeprecatedNdjson
        }
        None => {
            let accepted = ["application/x-protobuf", "application/json"];
            let e = request_body::unsupported_type(&media, &accepted);
            return body_error(Format::Otlp(Encoding::Json), e);
        }
    };
    let endpoint = if format.is_otlp() {
        "otlp_logs"
    } else {
        "logs"
    };
    handle(s, format, endpoint, headers, body).await
}
async fn otlp_logs(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    let media = request_body::media_type(&headers);
    let format = match otlp_encoding(&media) {
        Some(encoding) => Format::Otlp(encoding),
        // Before protobuf was supported, this path took JSON without a type.
        None if media.is_empty() => Format::Otlp(Encoding::Json),
        None => {
            let accepted = ["application/x-protobuf", "application/json"];
            let e = request_body::unsupported_type(&media, &accepted);
            return body_error(Format::Otlp(Encoding::Json), e);
        }
    };
    handle(s, format, "otlp_logs", headers, body).await
}
async fn otlp_metrics(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    let media = request_body::media_type(&headers);
    let format = match otlp_encoding(&media) {
        Some(encoding) => Format::OtlpMetrics(encoding),
        None => {
            let accepted = ["application/x-protobuf", "application/json"];
            let e = request_body::unsupported_type(&media, &accepted);
            return body_error(Format::OtlpMetrics(Encoding::Json), e);
        }
    };
    handle(s, format, "otlp_metrics", headers, body).await
}
async fn github(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    handle(s, Format::Github, "github", headers, body).await
}
async fn ndjson_logs(State(s): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    handle(s, Format::Ndjson(DefaultType::Log), "logs", headers, body).await
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
    let started = Instant::now();
    let mut response = respond(&s, format, endpoint, headers, body).await;
    s.metrics
        .responses
        .with_label_values(&[response.status().as_str()])
        .inc();
    s.metrics
        .duration
        .with_label_values(&[endpoint])
        .observe(started.elapsed().as_secs_f64());
    if format == Format::DeprecatedNdjson {
        let h = response.headers_mut();
        h.insert("deprecation", header::HeaderValue::from_static("true"));
        h.insert(
            header::LINK,
            header::HeaderValue::from_static("</v1/ndjson/logs>; rel=\"successor-version\""),
        );
    }
    response
}

fn service_of(r: &Record) -> &str {
    r.service()
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
    // GitHub cannot send a bearer token: its deliveries are signed instead.
    let github_secret = match (format, &s.github_secret) {
        (Format::Github, None) => {
            return reply(
                format,
                StatusCode::NOT_FOUND,
                IntakeResponse::error(
                    "GitHub webhooks are off: set ingest.github_webhook_secret_env".to_owned(),
                ),
            )
        }
        (Format::Github, Some(secret)) => Some(secret.clone()),
        _ => None,
    };
    let tenant = match github_secret {
        Some(_) => None,
        None => match authenticate(s, format, &headers) {
            Ok(t) => t,
            Err(resp) => return *resp,
        },
    };
    if !format.is_otlp() {
        if let Err(e) = request_body::check_ndjson_type(&headers) {
            return body_error(format, e);
        }
    }
    let raw = match request_body::read(&headers, body, s.max_body_bytes, s.body_timeout).await {
        Ok(b) => b,
        Err(e) => return body_error(format, e),
    };
    if let Some(secret) = github_secret {
        let signature = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if let Err(e) = crate::github::verify(&secret, &raw, signature) {
            return reply(format, StatusCode::UNAUTHORIZED, IntakeResponse::error(e));
        }
    }
    match idempotency_key(format, &headers) {
        Ok(Some(key)) if s.idempotency.enabled() => {
            idempotent(s, format, endpoint, headers, raw, tenant, key).await
        }
        Ok(_) => process(s, format, endpoint, &headers, raw, tenant.as_ref()).await,
        Err(resp) => *resp,
    }
}

fn body_error(format: Format, e: BodyError) -> Response {
    let mut resp = reply(format, e.status, IntakeResponse::error(e.message));
    if e.status == StatusCode::REQUEST_TIMEOUT {
        // A client this slow does not get to keep the connection.
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

fn authenticate(
    s: &Intake,
    format: Format,
    headers: &HeaderMap,
) -> Result<Option<Tenant>, Box<Response>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match s.tenants.authenticate(authorization) {
        Ok(t) => Ok(t.cloned()),
        Err(e) => {
            let mut resp = reply(
                format,
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
fn idempotency_key(format: Format, headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    // A GitHub redelivery carries the same delivery id: answered once.
    let name = if format == Format::Github {
        "x-github-delivery"
    } else {
        IDEMPOTENCY_KEY
    };
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        _ => Err(Box::new(reply(
            format,
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
    let scoped = format!("{scope}\u{0}{endpoint}\u{0}{}\u{0}{key}", format.name());
    let digest = idempotency::digest(&raw);
    loop {
        match s.idempotency.claim(&scoped, digest) {
            Claim::Replay(stored) => {
                s.metrics.replays.with_label_values(&[endpoint]).inc();
                let mut resp = (
                    stored.status,
                    [(header::CONTENT_TYPE, content_type(format))],
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
                    format,
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
                        format,
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
        Err(e) => return body_error(format, e),
    };
    let (records, rejected) = match parse(s, format, headers, &body) {
        Ok(parsed) => parsed,
        Err(resp) => return *resp,
    };
    for e in &rejected {
        s.metrics
            .rejected
            .with_label_values(&[&field_label(&e.field)])
            .inc();
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
                format,
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
            Err(e) => return unavailable(format, endpoint, &e, rejected),
        };
        let events = {
            // A poisoned lock only means another request panicked mid-batch; the
            // grouper's state is still consistent (every update is a single step).
            let mut normalizer = s.normalizer.lock().unwrap_or_else(|p| p.into_inner());
            to_events(&mut *normalizer, records.into_iter().map(|(_, r)| r))
        };
        n_events = events.len();
        if let Err(e) = s.batcher.submit(events, reservation).await {
            return unavailable(format, endpoint, &e, rejected);
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
            match format {
                Format::Otlp(_) => "log record(s)",
                Format::OtlpMetrics(_) => "data point(s)",
                _ => "line(s)",
            },
        )
    });
    let status = if summary.is_some() && !format.is_otlp() {
        StatusCode::BAD_REQUEST
    } else {
        // OTLP: a partly rejected request is a success with `partialSuccess`.
        StatusCode::OK
    };
    reply(
        format,
        status,
        IntakeResponse {
            accepted,
            events: n_events,
            rejected,
            error: summary,
        },
    )
}

/// The records and rejected records of a decoded body.
fn parse(
    s: &Intake,
    format: Format,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Parsed, Box<Response>> {
    let now = selfheal_common::wall_clock_ms();
    let encoding = match format {
        Format::Github => {
            let mut parsed = parse_github(headers, body)?;
            s.limits
                .apply(&mut parsed, now, "deployment_status.created_at");
            return Ok(parsed);
        }
        Format::Ndjson(_) | Format::DeprecatedNdjson => {
            let default = match format {
                Format::Ndjson(d) => d,
                _ => DefaultType::Log,
            };
            let mut parsed = parse_ndjson(format, body, default)?;
            s.limits.apply(&mut parsed, now, "ts");
            return Ok(parsed);
        }
        Format::Otlp(encoding) => encoding,
        Format::OtlpMetrics(encoding) => return parse_metrics(s, body, encoding, now),
    };
    let check = |ts| s.limits.check(ts, now);
    let checks = Checks {
        check_ts: &check,
        revision: &s.revision,
    };
    let parsed = match encoding {
        Encoding::Json => crate::otlp::json::parse_logs_checked(body, &checks),
        Encoding::Protobuf => crate::otlp::proto::parse_logs_checked(body, &checks),
    }
    .map_err(|e| {
        Box::new(reply(
            format,
            StatusCode::BAD_REQUEST,
            IntakeResponse::error(e.to_string()),
        ))
    })?;
    for source in &parsed.revision_sources {
        s.metrics.revisions.with_label_values(&[source]).inc();
    }
    for e in &parsed.parsed.1 {
        // Nothing is dropped quietly: the client is told in `partialSuccess`,
        // and the operator here.
        tracing::warn!(
            service = crate::NAME,
            line = e.line,
            field = %e.field,
            reason = %e.reason,
            "OTLP log record rejected"
        );
    }
    Ok(parsed.parsed)
}

/// `/v1/metrics`: the data points selfheal reads, as records.
fn parse_metrics(
    s: &Intake,
    body: &Bytes,
    encoding: Encoding,
    now: i64,
) -> Result<Parsed, Box<Response>> {
    let format = Format::OtlpMetrics(encoding);
    let request = crate::otlp::metrics::decode(body, encoding).map_err(|e| {
        Box::new(reply(
            format,
            StatusCode::BAD_REQUEST,
            IntakeResponse::error(e.to_string()),
        ))
    })?;
    let check = |ts| s.limits.check(ts, now);
    let checks = Checks {
        check_ts: &check,
        revision: &s.revision,
    };
    let out = {
        let mut state = s.cumulative.lock().unwrap_or_else(|p| p.into_inner());
        crate::otlp::metrics::records(request, &checks, &mut state)
    };
    s.metrics
        .ignored_points
        .inc_by(u64::try_from(out.ignored).unwrap_or(0));
    for e in &out.parsed.1 {
        tracing::warn!(
            service = crate::NAME,
            line = e.line,
            field = %e.field,
            reason = %e.reason,
            "OTLP data point rejected"
        );
    }
    Ok(out.parsed)
}

impl IntakeResponse {
    fn error(message: String) -> Self {
        Self {
            error: Some(message),
            ..Self::default()
        }
    }
}

fn unavailable(
    format: Format,
    endpoint: &str,
    e: &FlushError,
    rejected: Vec<LineError>,
) -> Response {
    tracing::warn!(endpoint, error = %e, "intake write not acknowledged");
    let mut resp = reply(
        format,
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

/// A GitHub delivery: one deploy, or nothing for other events and states.
fn parse_github(headers: &HeaderMap, body: &Bytes) -> Result<Parsed, Box<Response>> {
    let bad = |reason: String| {
        Box::new(reply(
            Format::Github,
            StatusCode::BAD_REQUEST,
            IntakeResponse {
                rejected: vec![LineError {
                    line: 1,
                    field: "(payload)".to_owned(),
                    reason,
                }],
                ..IntakeResponse::default()
            },
        ))
    };
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("missing X-GitHub-Event".to_owned()))?;
    let payload: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    match crate::github::deploy_of(event, &payload) {
        Ok(Some(deploy)) => Ok((vec![(1, Record::Deploy(deploy))], Vec::new())),
        Ok(None) => Ok((Vec::new(), Vec::new())),
        Err(reason) => Err(bad(reason)),
    }
}

fn parse_ndjson(
    format: Format,
    body: &Bytes,
    default: DefaultType,
) -> Result<Parsed, Box<Response>> {
    match std::str::from_utf8(body) {
        Ok(text) => Ok(parse_body(text, default)),
        Err(e) => {
            let line = body[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Err(Box::new(reply(
                format,
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

/// The answer in the request's format: selfheal's JSON for NDJSON, the
/// OTLP messages in the request's encoding for OTLP.
fn reply(format: Format, status: StatusCode, body: IntakeResponse) -> Response {
    let Some(encoding) = format.otlp() else {
        return (status, Json(body)).into_response();
    };
    let mut message = body.error.unwrap_or_default();
    for e in body.rejected.iter().take(OTLP_LISTED_REJECTIONS) {
        message.push_str(&format!("; {e}"));
    }
    if body.rejected.len() > OTLP_LISTED_REJECTIONS {
        message.push_str(&format!(
            "; and {} more",
            body.rejected.len() - OTLP_LISTED_REJECTIONS
        ));
    }
    let bytes = if status.is_success() {
        let message = (!body.rejected.is_empty()).then_some(message.as_str());
        match format {
            Format::OtlpMetrics(_) => {
                otlp_response::success_metrics(encoding, body.rejected.len(), message)
            }
            _ => otlp_response::success(encoding, body.rejected.len(), message),
        }
    } else {
        otlp_response::error(encoding, status, &message)
    };
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        bytes,
    )
        .into_response()
}

/// The `Content-Type` of the answers to `format`.
fn content_type(format: Format) -> &'static str {
    match format {
        Format::Otlp(encoding) | Format::OtlpMetrics(encoding) => encoding.content_type(),
        _ => "application/json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_labels_carry_names_never_positions() {
        assert_eq!(
            field_label("resourceLogs[12].scopeLogs[0].logRecords[345].timeUnixNano"),
            "resourceLogs[].scopeLogs[].logRecords[].timeUnixNano"
        );
        assert_eq!(
            field_label(
                "resourceLogs[1].scopeLogs[0].logRecords[0].resource.attributes[service.version]"
            ),
            "resourceLogs[].scopeLogs[].logRecords[].resource.attributes[service.version]"
        );
        assert_eq!(field_label("ts"), "ts");
        assert_eq!(field_label("a[1x]"), "a[1x]");
    }
}
