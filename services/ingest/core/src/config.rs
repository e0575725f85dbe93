//! The ingest service's configuration (`[ingest]`, `[ingest.prometheus_traffic]`,
//! `[[ingest.tenants]]`). It lives here, beside the ingest core that reads it;
//! `selfheal_common::config` re-exports it so the one `selfheal.toml` still
//! parses into one `selfheal_common::Config` (unknown keys rejected,
//! environment overrides applied there).

use selfheal_common_core::ranges::{CheckRanges, Ranges};
use serde::{Deserialize, Serialize};

/// Settings of the ingest service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted request body in bytes; larger bodies get HTTP 413.
    pub max_body_bytes: usize,
    /// Maximum template length in characters; longer templates are truncated.
    pub max_template_chars: usize,
    /// Path or package prefixes of the services' own code (`/app/`, `src/`,
    /// `com.shop.`). When set, a stack frame is in-app iff its file or function
    /// starts with one; when empty, every frame outside well-known library paths
    /// (site-packages, node_modules, `java.`, the Go module cache …) is in-app.
    pub in_app_prefixes: Vec<String>,
    /// How many in-app function names (innermost first) enter a signature.
    pub fingerprint_frames: usize,
    /// Online grouping: share of a template's constant words a message must
    /// match to join it (Drain's similarity threshold); above 1.0 disables it.
    pub grouping_similarity: f64,
    /// Online grouping: most templates remembered; the least recently used are
    /// forgotten beyond it (bounded memory).
    pub max_groups: usize,
    /// Pre-aggregation: log records of all requests (and of the raw topic) are
    /// counted per (service, revision, signature) for this long, in
    /// milliseconds, then written as one SignatureCount each. A request is
    /// answered once the flush carrying its records is acknowledged, so this is
    /// also the added latency.
    pub flush_interval_ms: u64,
    /// Records accepted but not yet acknowledged by Kafka, across requests. When
    /// full (Kafka slow or unreachable) the intake answers 503 + `Retry-After`
    /// at once, and the raw-topic consumer waits.
    pub max_buffered_records: usize,
    /// Write each flush in one Kafka transaction. A flush Kafka does not
    /// acknowledge in full is then aborted, so `read_committed` readers (the
    /// detector, and subscribers told to read so) see none of it, and the
    /// 503 that tells the client to resend is exact: the resend is counted
    /// once. Off (for a cluster without transactions): a flush that fails
    /// half way may leave part of it written, and a resend can count those
    /// records twice (never lose them).
    pub transactional: bool,
    /// Consume `topics.logs_raw` (JSON lines from Vector, Fluent Bit …) as a
    /// second input, at least once, bad lines to the DLQ.
    pub consume_raw: bool,
    /// Live inputs (HTTP, OTLP, raw topic) reject a record whose event time
    /// is more than this many seconds ahead of the intake's wall clock (one
    /// far-future record would move the detector's watermark there).
    /// `selfheal backtest` input is not checked against the wall clock.
    pub max_future_skew_s: u64,
    /// Live inputs reject a record older than this many seconds (default 30
    /// days); 0: no limit. Not applied to `selfheal backtest` input.
    pub max_age_s: u64,
    /// Scrub IP addresses (IPv4, IPv6) from samples, stacks, build logs and
    /// dead letters, as personal data.
    pub scrub_ips: bool,
    /// HTTP: a connection must send a request's complete headers within this
    /// many milliseconds of opening (or of its previous response), else it is
    /// closed (slowloris).
    pub header_timeout_ms: u64,
    /// HTTP: a request's body must arrive completely within this many
    /// milliseconds after its headers, else 408 and the connection closes.
    pub body_timeout_ms: u64,
    /// HTTP: most connections open at once; further clients wait in the
    /// kernel's accept queue.
    pub max_connections: usize,
    /// HTTP: `Idempotency-Key` results remembered (most recent first); a
    /// resend with a remembered key is answered from memory, not written
    /// again. 0 disables.
    pub idempotency_keys: usize,
    /// Bearer-token auth of the HTTP intake, one entry per tenant. Empty: no
    /// auth. When set, a request without a known token gets 401, and one with
    /// a record of a service its tenant may not write gets 403.
    pub tenants: Vec<TenantConfig>,
    /// OTLP: attributes that give a log record's revision, first found wins
    /// (record attributes before resource attributes). `service.version` is
    /// optional in OpenTelemetry, so the default also looks at
    /// `deployment.revision` and `vcs.ref.head.revision`.
    pub otlp_revision_attributes: Vec<String>,
    /// OTLP: the revision of a record none of `otlp_revision_attributes`
    /// names (default `unknown`; counted in
    /// `selfheal_ingest_otlp_revision_total{source="fallback"}`). Empty:
    /// such a record is rejected (counted and logged, listed in the answer's
    /// `partialSuccess`).
    pub otlp_revision_fallback: String,
    /// Environment variable holding the secret of GitHub webhooks
    /// (`POST /v1/webhooks/github`, `X-Hub-Signature-256` checked); empty:
    /// the endpoint answers 404.
    pub github_webhook_secret_env: String,
    /// Traffic read from a Prometheus server instead of (or beside) pushed
    /// `traffic` records (`[ingest.prometheus_traffic]`; off while `url` is
    /// empty).
    pub prometheus_traffic: PrometheusTrafficConfig,
}

/// Traffic from PromQL (`[ingest.prometheus_traffic]`): at the end of every
/// window the intake asks Prometheus for each (service, revision)'s requests
/// and server errors in it and writes them as `traffic` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusTrafficConfig {
    /// The Prometheus base URL (`http://prometheus:9090`); empty: off.
    pub url: String,
    /// Instant query giving requests per window, one series per service and
    /// revision; `{window}` is replaced by the window (`60s`).
    pub requests_query: String,
    /// Same for server errors (5xx); empty: traffic without `errors`.
    pub errors_query: String,
    /// The series label holding the service.
    pub service_label: String,
    /// The series label holding the revision.
    pub revision_label: String,
    /// Window length, seconds.
    pub window_s: u32,
    /// How long after a window's end it is queried (scrape interval plus
    /// margin, so the window's samples are in).
    pub lag_s: u32,
    /// Timeout of one query, ms.
    pub timeout_ms: u64,
    /// Windows missed while Prometheus was unreachable that are queried
    /// when it is back (it still has them); older ones are logged and
    /// counted as lost.
    pub max_catch_up_windows: u32,
}

impl Default for PrometheusTrafficConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            requests_query: "sum by (service, revision) (increase(http_server_request_duration_seconds_count[{window}]))".to_owned(),
            errors_query: "sum by (service, revision) (increase(http_server_request_duration_seconds_count{http_response_status_code=~\"5..\"}[{window}]))".to_owned(),
            service_label: "service".to_owned(),
            revision_label: "revision".to_owned(),
            window_s: 60,
            lag_s: 30,
            timeout_ms: 10_000,
            max_catch_up_windows: 60,
        }
    }
}

/// One tenant of the HTTP intake (`[[ingest.tenants]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Tenant name (logs and metrics).
    pub name: String,
    /// The bearer token, inline. Prefer `token_env`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// Environment variable holding the bearer token (read at start-up).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_env: String,
    /// Services the tenant may write; `"*"` allows any.
    pub services: Vec<String>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_template_chars: 200,
            in_app_prefixes: Vec::new(),
            fingerprint_frames: 3,
            grouping_similarity: 0.65,
            max_groups: 100_000,
            flush_interval_ms: 1_000,
            max_buffered_records: 1_000_000,
            transactional: true,
            consume_raw: true,
            max_future_skew_s: 300,
            max_age_s: 30 * 86_400,
            scrub_ips: true,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1_024,
            idempotency_keys: 10_000,
            tenants: Vec::new(),
            otlp_revision_attributes: vec![
                "service.version".to_owned(),
                "deployment.revision".to_owned(),
                "vcs.ref.head.revision".to_owned(),
            ],
            otlp_revision_fallback: "unknown".to_owned(),
            github_webhook_secret_env: String::new(),
            prometheus_traffic: PrometheusTrafficConfig::default(),
        }
    }
}

impl CheckRanges for IngestConfig {
    fn check_ranges(&self, r: &mut Ranges) {
        r.at_least_one("max_body_bytes", self.max_body_bytes);
        r.at_least_one("max_connections", self.max_connections);
        r.non_negative("grouping_similarity", self.grouping_similarity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_in_range_and_zero_connections_is_not() {
        let mut r = Ranges::new();
        r.section("ingest", &IngestConfig::default());
        assert_eq!(r.finish(), vec![]);
        let bad = IngestConfig {
            max_connections: 0,
            ..IngestConfig::default()
        };
        let mut r = Ranges::new();
        r.section("ingest", &bad);
        let keys: Vec<String> = r.finish().into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["ingest.max_connections"]);
    }
}
