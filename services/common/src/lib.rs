//! Plumbing shared by the four selfheal services: configuration, Kafka clients and
//! the at-least-once consumer loop, HTTP health/readiness/metrics, and shutdown.
//!
//! Nothing here knows what a regression is: services plug their pure core into
//! [`consumer::Stage`] and get delivery guarantees, dead-lettering, metrics and an
//! orderly shutdown for free.
//!
//! # Layout
//! - [`config`]: the documented, typed configuration (TOML + `SELFHEAL__…` env).
//! - [`kafka`]: client configuration, the idempotent producer, topic creation.
//! - [`delivery`]: the one at-least-once delivery loop (a handler, settlements in
//!   consumption order, a commit policy, drain and close on shutdown).
//! - [`consumer`]: the stage consumer on it (decode → stage → produce → store offset),
//!   dead letters, the group consumer and its lag gauge.
//! - [`describe`]: one-line summaries of regressions, verdicts and actions for people.
//! - [`ids`]: stable content-derived ids (regressions, verdicts, actions),
//!   re-exported from `selfheal-schemas`.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics` (axum), mergeable with service routes.
//! - [`metrics`]: the Prometheus registry and the standard per-service metrics
//!   (messages, outcomes by kind, detection delay, consumer lag, build info).
//! - [`outcome`] (pure): what a produced event counts as in the metrics.
//! - [`schema_registry`]: the optional Schema Registry mode: subjects
//!   registered and checked at start-up, writer ids per topic, unknown ids
//!   resolved for consumers.
//! - [`service`]: a running service's handle, and shutdown signals.
//! - [`embedded`]: librdkafka's in-process mock cluster for the zero-setup run.
//! - [`telemetry`]: tracing set-up for binaries.

pub mod config;
pub mod consumer;
pub mod delivery;
pub mod describe;
pub mod embedded;
pub mod http;
/// Re-exported from the contracts crate, where subscribers can use it too.
pub use selfheal_schemas::ids;
pub mod kafka;
pub mod metrics;
pub mod outcome;
pub mod schema_registry;
pub use selfheal_common_core::scrub;
pub mod service;
pub mod telemetry;

pub use config::Config;
pub use tokio_util::sync::CancellationToken;

/// Errors of the shared plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration could not be loaded or is invalid.
    #[error("invalid configuration ({source_name}): {message}")]
    Config {
        /// Which source was being read: a file path, `environment` or `defaults`.
        source_name: String,
        /// What is wrong, including the key path.
        message: String,
    },
    /// A Kafka client operation failed.
    #[error("kafka {operation} failed: {source}")]
    Kafka {
        /// What was being attempted (create producer, subscribe, create topics …).
        operation: &'static str,
        /// The librdkafka error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Kafka did not acknowledge a produced message.
    #[error("kafka did not acknowledge a message to `{topic}`: {reason}")]
    Delivery {
        /// The topic written to.
        topic: String,
        /// Why the delivery failed.
        reason: String,
    },
    /// The producer's local buffer is full: Kafka is slow or unreachable.
    #[error("producer buffer full while writing to `{topic}` (Kafka slow or unreachable)")]
    QueueFull {
        /// The topic written to.
        topic: String,
    },
    /// No Kafka bootstrap address is configured for a service that needs one.
    #[error("no Kafka bootstrap servers configured: set kafka.bootstrap, SELFHEAL__KAFKA__BOOTSTRAP or --kafka (or use `selfheal up` for the embedded cluster)")]
    NoBootstrap,
    /// An HTTP listener could not be bound or served.
    #[error("http server on {addr}: {source}")]
    Http {
        /// The address.
        addr: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A stage's processing failed in a way that must stop the service.
    #[error("stage {stage} failed: {message}")]
    Stage {
        /// The service.
        stage: &'static str,
        /// What happened.
        message: String,
    },
    /// A stage's processing failed because of an underlying error, kept as
    /// the source (see [`Error::caused`]).
    #[error("stage {stage} failed: {context}: {source}")]
    Caused {
        /// The service.
        stage: &'static str,
        /// What was being attempted.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedded mock cluster could not be started.
    #[error("embedded Kafka: {0}")]
    Embedded(String),
    /// The Schema Registry refused a schema or could not be asked.
    #[error("schema registry {url}, subject `{subject}`: {reason}")]
    SchemaRegistry {
        /// The registry's base URL.
        url: String,
        /// The subject (`<topic>-value`), or `schema id N` for a look-up.
        subject: String,
        /// What the registry answered, or why it could not be reached.
        reason: String,
        /// Whether asking again later may succeed (unreachable, 5xx).
        retryable: bool,
    },
}

impl Error {
    /// `map_err(Error::caused(NAME, "snapshot of checkout"))`: a stage error
    /// that keeps `e` as its source (`Error::Stage` with a formatted message
    /// would lose it).
    pub fn caused<E>(stage: &'static str, context: impl Into<String>) -> impl FnOnce(E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let context = context.into();
        move |e| Error::Caused {
            stage,
            context,
            source: Box::new(e),
        }
    }

    /// Whether retrying the same operation later may succeed (broker down, timeouts),
    /// as opposed to poison input or a configuration mistake.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Kafka { .. }
                | Error::Delivery { .. }
                | Error::QueueFull { .. }
                | Error::SchemaRegistry {
                    retryable: true,
                    ..
                }
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch by the wall clock.
///
/// Only for operational timestamps (dead-letter time, metrics); event logic uses
/// the event time carried in the records.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod error_tests {
    use super::Error;

    #[test]
    fn a_caused_stage_error_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe closed");
        let e: Error = Err::<(), _>(io)
            .map_err(Error::caused("ingest", "http task"))
            .unwrap_err();
        assert_eq!(e.to_string(), "stage ingest failed: http task: pipe closed");
        let source = std::error::Error::source(&e).expect("kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(!e.is_retryable());
    }
}
