//! The typed events: one Rust type per `.avsc` file, field for field.
//!
//! Field names, order and types mirror the schema files exactly (the tests in
//! `tests/contract.rs` compare the derived schema of every type with its file in
//! Parsing Canonical Form). The doc comments here are short; the `doc` strings
//! in the `.avsc` files are the contract other teams read.
//!
//! All times are event-time epoch milliseconds (`*_ms`).

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// One parsed frame of a stack trace (Avro `selfheal.Frame`, inlined in
/// `SignatureCount.avsc` and `Regression.avsc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Frame {
    /// Source file path as it appears in the trace.
    pub file: String,
    /// 1-based line number; `None` when the trace does not say.
    pub line: Option<i32>,
    /// Function or method name; empty when the trace does not say.
    pub function: String,
    /// True when the frame is in the service's own code.
    pub in_app: bool,
}

/// How many events of one error signature one service revision emitted
/// (`SignatureCount.avsc`, topic `selfheal.signatures`, ingest → detector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct SignatureCount {
    /// Service that emitted the events; the Kafka key.
    pub service: String,
    /// Revision of the service that emitted the events.
    pub revision: String,
    /// Signature id: 16 lowercase hex characters of the 64-bit id.
    pub signature: String,
    /// Scrubbed message template with placeholders for variable parts.
    pub template: String,
    /// Exception or error class, if known.
    pub exception_type: Option<String>,
    /// Log level, lowercase.
    pub level: String,
    /// Number of events counted between `first_seen_ms` and `last_seen_ms`.
    pub count: i64,
    /// Event time of the first counted event, epoch ms.
    pub first_seen_ms: i64,
    /// Event time of the last counted event, epoch ms.
    pub last_seen_ms: i64,
    /// One example message, secrets scrubbed (untrusted text).
    pub sample_message: String,
    /// Stack trace of the example, secrets scrubbed (untrusted text).
    pub sample_stack: Option<String>,
    /// Frames parsed from `sample_stack`, innermost first.
    pub frames: Vec<Frame>,
    /// Distributed-trace id of the example event.
    pub trace_id: Option<String>,
}

/// Requests one service revision served in one interval
/// (`Traffic.avsc`, topic `selfheal.traffic`, ingest → detector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Traffic {
    /// Service that served the requests; the Kafka key.
    pub service: String,
    /// Revision that served the requests.
    pub revision: String,
    /// Start of the interval (inclusive), event time, epoch ms.
    pub window_start_ms: i64,
    /// Length of the interval in seconds.
    pub window_s: i32,
    /// Requests served in the interval.
    pub requests: i64,
    /// Server errors (5xx, gRPC UNAVAILABLE) among them; `None`: unknown.
    pub errors: Option<i64>,
}

/// Request durations of one service revision on one route in one minute, as
/// an explicit-bucket histogram
/// (`LatencyHistogram.avsc`, topic `selfheal.latency`, ingest → detector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct LatencyHistogram {
    /// Service that served the requests; the Kafka key.
    pub service: String,
    /// Revision that served them.
    pub revision: String,
    /// Metric name, e.g. `http.server.request.duration`.
    pub metric: String,
    /// Unit of `bounds` and `sum` (`s` or `ms`).
    pub unit: String,
    /// `http.route`; `None` for the whole service.
    pub route: Option<String>,
    /// Start (inclusive) of the interval, event time, epoch ms.
    pub window_start_ms: i64,
    /// Length of the interval in seconds.
    pub window_s: i32,
    /// Bucket bounds, strictly increasing.
    pub bounds: Vec<f64>,
    /// Requests per bucket, `bounds.len() + 1` values.
    pub counts: Vec<i64>,
    /// Sum of the durations, if every merged record had it.
    pub sum: Option<f64>,
}

/// One instance's memory or CPU gauge at one time
/// (`InstanceGauge.avsc`, topic `selfheal.gauges`, ingest → detector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct InstanceGauge {
    /// Service of the instance; the Kafka key.
    pub service: String,
    /// Revision the instance runs.
    pub revision: String,
    /// Instance id.
    pub instance: String,
    /// Metric name (`process.memory.usage`, `process.cpu.utilization`).
    pub metric: String,
    /// Unit as sent (`By`, `1`).
    pub unit: String,
    /// Event time of the value, epoch ms.
    pub ts_ms: i64,
    /// The value, in `unit`.
    pub value: f64,
}

/// A revision of a service went live
/// (`Deploy.avsc`, topic `selfheal.deploys`, ingest → detector, triage, fixer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Deploy {
    /// Service that was deployed; the Kafka key.
    pub service: String,
    /// Revision now live.
    pub revision: String,
    /// Revision live before: the baseline and rollback target.
    pub previous_revision: Option<String>,
    /// Repository the revision comes from.
    pub repo: Option<String>,
    /// Commits the deploy brought in, e.g. `99f0e1a..a1b2c3d`.
    pub commit_range: Option<String>,
    /// Inlined unified diff from `previous_revision` to `revision` (untrusted text).
    pub diff: Option<String>,
    /// Where to fetch the diff when it is not inlined.
    pub diff_url: Option<String>,
    /// When the revision went live, event time, epoch ms.
    pub deployed_at_ms: i64,
}

/// How a build ended (Avro enum `selfheal.BuildStatus`).
///
/// Variants, with their Avro symbols:
/// - [`Succeeded`](Self::Succeeded): The build succeeded (`succeeded`).
/// - [`Failed`](Self::Failed): The build failed (`failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
#[serde(rename_all = "snake_case")]
// apache-avro's derive rejects doc comments on unit variants, so the
// variants are documented in the list above.
#[allow(missing_docs)]
pub enum BuildStatus {
    Succeeded,
    Failed,
}

/// A build of a service revision finished
/// (`Build.avsc`, topic `selfheal.builds`, ingest → detector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Build {
    /// Service that was built; the Kafka key.
    pub service: String,
    /// Revision that was built.
    pub revision: String,
    /// How the build ended.
    pub status: BuildStatus,
    /// The part of the build log that explains a failure, scrubbed (untrusted text).
    pub log_excerpt: Option<String>,
    /// When the build finished, event time, epoch ms.
    pub finished_at_ms: i64,
}

/// What kind of regression was detected (Avro enum `selfheal.RegressionKind`).
///
/// Variants, with their Avro symbols:
/// - [`New`](Self::New): A signature the baseline never had (`new`).
/// - [`Spike`](Self::Spike): A known signature at a significantly higher rate (`spike`).
/// - [`BuildFailure`](Self::BuildFailure): The revision's build failed (`build_failure`).
/// - [`Latency`](Self::Latency): A latency quantile rose (`latency`).
/// - [`ErrorRate`](Self::ErrorRate): The server-error share of requests rose (`error_rate`).
/// - [`Saturation`](Self::Saturation): Memory or CPU per instance grew (`saturation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
#[serde(rename_all = "snake_case")]
// apache-avro's derive rejects doc comments on unit variants, so the
// variants are documented in the list above.
#[allow(missing_docs)]
pub enum RegressionKind {
    New,
    Spike,
    BuildFailure,
    Latency,
    ErrorRate,
    Saturation,
}

impl RegressionKind {
    /// Whether this is a golden-signal kind (latency, error rate,
    /// saturation): a metric regressed, not an error signature or a build.
    pub fn is_metric(self) -> bool {
        matches!(self, Self::Latency | Self::ErrorRate | Self::Saturation)
    }

    /// The Avro symbol, e.g. `"build_failure"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Spike => "spike",
            Self::BuildFailure => "build_failure",
            Self::Latency => "latency",
            Self::ErrorRate => "error_rate",
            Self::Saturation => "saturation",
        }
    }
}

/// What a golden-signal regression measured, in the metric's own unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct MetricDetail {
    /// Metric name.
    pub name: String,
    /// Unit of the values.
    pub unit: String,
    /// Route the latency was measured on; `None`: the whole service.
    pub route: Option<String>,
    /// For latency: the quantile compared.
    pub quantile: Option<f64>,
    /// The new revision's value.
    pub observed_value: f64,
    /// The baseline's value.
    pub expected_value: f64,
    /// For saturation: the instances that grew.
    pub instances: Vec<String>,
    /// For latency: p50, p95 and p99, new revision against control.
    pub quantiles: Vec<QuantileValue>,
    /// For latency: the bucket bound above which a request was slow.
    pub threshold_value: Option<f64>,
}

/// One quantile of a latency regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct QuantileValue {
    /// The quantile, e.g. 0.99.
    pub quantile: f64,
    /// The new revision's value.
    pub observed_value: f64,
    /// The control's value.
    pub expected_value: f64,
}

/// What error rates are measured against (Avro enum `selfheal.RateBasis`).
///
/// Variants, with their Avro symbols:
/// - [`PerRequest`](Self::PerRequest): Errors per request; traffic data was available (`per_request`).
/// - [`PerTime`](Self::PerTime): Errors per unit of event time (`per_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
#[serde(rename_all = "snake_case")]
// apache-avro's derive rejects doc comments on unit variants, so the
// variants are documented in the list above.
#[allow(missing_docs)]
pub enum RateBasis {
    PerRequest,
    PerTime,
}

/// The detector's finding that a revision made a signature appear or grow,
/// or that its build failed
/// (`Regression.avsc`, topic `selfheal.regressions`, detector → triage, other teams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Regression {
    /// Unique id; `Verdict::regression_ids` refers to it.
    pub id: String,
    /// Service that regressed; the Kafka key.
    pub service: String,
    /// Revision in which the regression was observed.
    pub revision: String,
    /// Revision live before it (the baseline).
    pub previous_revision: Option<String>,
    /// New signature, spike, or build failure.
    pub kind: RegressionKind,
    /// Signature id (16 lowercase hex characters).
    pub signature: String,
    /// Message template of the signature (untrusted text).
    pub template: String,
    /// Exception or error class, if known.
    pub exception_type: Option<String>,
    /// Event time at which the detector decided, epoch ms.
    pub detected_at_ms: i64,
    /// When the revision went live, epoch ms.
    pub deployed_at_ms: Option<i64>,
    /// Start (inclusive) of the observation window, epoch ms.
    pub window_start_ms: i64,
    /// End (exclusive) of the observation window, epoch ms.
    pub window_end_ms: i64,
    /// Events of the signature observed in the window.
    pub observed: i64,
    /// Events the baseline rate predicts for the window.
    pub expected: f64,
    /// Observed rate divided by the baseline rate.
    pub rate_ratio: f64,
    /// One-sided p-value of observing at least `observed`.
    pub p_value: f64,
    /// False-discovery-rate adjusted p-value, if computed.
    pub q_value: Option<f64>,
    /// Requests served in the window, if traffic data exists.
    pub requests: Option<i64>,
    /// Requests served during the baseline, if traffic data exists.
    pub baseline_requests: Option<i64>,
    /// Whether rates are per request or per unit of time.
    pub rate_basis: RateBasis,
    /// True when the signature rose where nothing was deployed too.
    pub externally_correlated: bool,
    /// Human-readable account of that correlation.
    pub correlation_evidence: Option<String>,
    /// One example message, secrets scrubbed (untrusted text).
    pub sample_message: String,
    /// Stack trace of the example, secrets scrubbed (untrusted text).
    pub sample_stack: Option<String>,
    /// Frames parsed from `sample_stack`, innermost first.
    pub frames: Vec<Frame>,
    /// Event time of the first minute of the signature's rise on the new
    /// revision (its change point); `None` for build failures.
    pub onset_ms: Option<i64>,
    /// Cues for an external cause found, decisive or not (`onset_late`,
    /// `went_away`, `old_revision_rose`, `aligned:N`, `dependency:KIND`,
    /// `upstream:NAME`); the evidence is in `correlation_evidence`.
    pub external_cues: Vec<String>,
    /// Attributed, but an external cause is not ruled out: remediation
    /// should wait until this event time. `None`: act at once.
    pub hold_remediation_until_ms: Option<i64>,
    /// For latency, error-rate and saturation regressions: the metric and
    /// its values; `None` otherwise.
    pub metric: Option<MetricDetail>,
}

/// Whether a deploy caused its regressions (Avro enum `selfheal.Decision`).
///
/// Variants, with their Avro symbols:
/// - [`Caused`](Self::Caused): A change in the deploy explains the regressions (`caused`).
/// - [`NotCaused`](Self::NotCaused): The deploy is ruled out (`not_caused`).
/// - [`Inconclusive`](Self::Inconclusive): The evidence does not decide (`inconclusive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
#[serde(rename_all = "snake_case")]
// apache-avro's derive rejects doc comments on unit variants, so the
// variants are documented in the list above.
#[allow(missing_docs)]
pub enum Decision {
    Caused,
    NotCaused,
    Inconclusive,
}

/// One changed line (or file) of a deploy's diff cited by a verdict
/// (Avro `selfheal.Evidence`, inlined in `Verdict.avsc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Evidence {
    /// Path of the changed file as in the diff (new path).
    pub file: String,
    /// 1-based line in the new version of the file; `None` cites the whole file.
    pub line: Option<i32>,
    /// Header of the hunk holding the line (`@@ -a,b +c,d @@ …`).
    pub hunk_header: Option<String>,
    /// Stack frame linking the error to the change.
    pub frame: Option<String>,
    /// Identifier or literal shared by the error and the changed line.
    pub token: Option<String>,
    /// Link strength label set by triage.
    pub strength: String,
}

/// Triage's judgement of whether a revision caused its regressions
/// (`Verdict.avsc`, topic `selfheal.verdicts`, triage → fixer, other teams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Verdict {
    /// Unique id; `Action::verdict_id` refers to it.
    pub id: String,
    /// Service the verdict is about; the Kafka key.
    pub service: String,
    /// Revision in which the regressions were observed.
    pub revision: String,
    /// Revision whose change caused them, when `decision` is `Caused`.
    pub blamed_revision: Option<String>,
    /// Caused, not caused, or inconclusive.
    pub decision: Decision,
    /// Confidence in the decision, 0.0 to 1.0.
    pub confidence: f64,
    /// Human-readable explanation (may quote untrusted text).
    pub reasoning: String,
    /// Changed lines cited; each exists in the deploy's diff.
    pub evidence: Vec<Evidence>,
    /// Signature ids the verdict attributes.
    pub signatures: Vec<String>,
    /// Ids of the regressions judged.
    pub regression_ids: Vec<String>,
    /// Kinds of files the deploy changed, as classified by triage.
    pub file_classes: Vec<String>,
    /// Event time of the decision, epoch ms.
    pub decided_at_ms: i64,
    /// What made the decision (rules or an LLM's name).
    pub adjudicator: String,
    /// The deploy's incident (service + revision); updates supersede earlier ones.
    #[serde(default)]
    pub incident_id: Option<String>,
    /// Update number within the incident, 0 first.
    #[serde(default)]
    pub incident_seq: i32,
    /// How precisely the cause is located in the code (apart from `decision`).
    #[serde(default)]
    pub localization: Option<Localization>,
}

/// How precisely a verdict locates the cause in the code (Avro enum
/// `selfheal.Localization`).
///
/// Variants, with their Avro symbols:
/// - [`Line`](Self::Line): a stack frame on or within a few lines of a changed line (`line`).
/// - [`Function`](Self::Function): a frame inside a changed function (`function`).
/// - [`File`](Self::File): a frame in a changed file, or an identifier of the error on a changed line (`file`).
/// - [`None`](Self::None): nothing in the code points at the change (`none`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, AvroSchema,
)]
#[avro(namespace = "selfheal")]
#[serde(rename_all = "snake_case")]
// apache-avro's derive rejects doc comments on unit variants, so the
// variants are documented in the list above.
#[allow(missing_docs)]
pub enum Localization {
    Line,
    Function,
    File,
    None,
}

impl Default for Localization {
    /// Nothing located.
    fn default() -> Self {
        Localization::None
    }
}

impl Localization {
    /// The Avro symbol, e.g. `"line"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Localization::Line => "line",
            Localization::Function => "function",
            Localization::File => "file",
            Localization::None => "none",
        }
    }
}

/// What remediation was chosen (Avro enum `selfheal.ActionKind`).
///
/// Variants, with their Avro symbols:
/// - [`Rollback`](Self::Rollback): Go back to the previous revision (`rollback`).
/// - [`FixForward`](Self::FixForward): Dispatch a coding agent to open a fix PR (`fix_forward`).
/// - [`Notify`](Self::Notify): Tell people, change nothing (`notify`).
/// - [`None`](Self::None): Nothing to do (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
#[serde(rename_all = "snake_case")]
// apache-avro's derive rejects doc comments on unit variants, so the
// variants are documented in the list above.
#[allow(missing_docs)]
pub enum ActionKind {
    Rollback,
    FixForward,
    Notify,
    None,
}

/// Where an action stands (Avro enum `selfheal.ActionStatus`).
///
/// Variants, with their Avro symbols:
/// - [`Planned`](Self::Planned): Decided, not started (`planned`).
/// - [`DryRun`](Self::DryRun): Decided, deliberately not executed (`dry_run`).
/// - [`InProgress`](Self::InProgress): Executing (`in_progress`).
/// - [`Succeeded`](Self::Succeeded): The executor succeeded (`succeeded`).
/// - [`Failed`](Self::Failed): The executor failed (`failed`).
/// - [`RecoveryVerified`](Self::RecoveryVerified): The regressed signatures went back to baseline (`recovery_verified`).
/// - [`RecoveryFailed`](Self::RecoveryFailed): They did not (`recovery_failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
#[serde(rename_all = "snake_case")]
// apache-avro's derive rejects doc comments on unit variants, so the
// variants are documented in the list above.
#[allow(missing_docs)]
pub enum ActionStatus {
    Planned,
    DryRun,
    InProgress,
    Succeeded,
    Failed,
    RecoveryVerified,
    RecoveryFailed,
}

/// What the fixer decided to do about a verdict, and how it went
/// (`Action.avsc`, topic `selfheal.actions`, fixer → other teams).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct Action {
    /// Id of the action, the same on every status change.
    pub id: String,
    /// Service acted on; the Kafka key.
    pub service: String,
    /// Revision the action is about.
    pub revision: String,
    /// Rollback, fix forward, notify, or none.
    pub action: ActionKind,
    /// Where the action stands.
    pub status: ActionStatus,
    /// Name of the fixer policy rule that chose the action.
    pub rule: String,
    /// Why the action was chosen, one sentence each.
    pub reasons: Vec<String>,
    /// Rollback executor or agent dispatcher carrying it out.
    pub executor: Option<String>,
    /// For a rollback, the revision rolled back to.
    pub target_revision: Option<String>,
    /// For a fix forward, the fix PR's URL once open.
    pub pr_url: Option<String>,
    /// Whether the signatures went back to baseline; `None` until checked.
    pub recovery_verified: Option<bool>,
    /// Signature ids the action addresses.
    pub signatures: Vec<String>,
    /// Id of the verdict the action answers.
    pub verdict_id: Option<String>,
    /// Event time of this status change, epoch ms.
    pub decided_at_ms: i64,
    /// The incident (`Verdict::incident_id`) the action answers.
    #[serde(default)]
    pub incident_id: Option<String>,
}

/// A Kafka message that could not be decoded or was refused, kept whole
/// (`DeadLetter.avsc`, topic `selfheal.dlq`, every service → operators).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "selfheal")]
pub struct DeadLetter {
    /// Topic the message was consumed from; the Kafka key of the dead letter.
    pub source_topic: String,
    /// Partition of `source_topic`.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// Kafka key of the message, byte for byte (Avro `bytes`).
    #[serde(with = "apache_avro::serde::bytes_opt")]
    #[avro(with)]
    pub key: Option<Vec<u8>>,
    /// Kafka value of the message, byte for byte (Avro `bytes`).
    #[serde(with = "apache_avro::serde::bytes")]
    #[avro(with)]
    pub payload: Vec<u8>,
    /// Why the message was dead-lettered, in words.
    pub reason: String,
    /// `poison` (retrying will not help) or `rejected` (processed and refused).
    pub error_kind: String,
    /// Which selfheal service dead-lettered it.
    pub stage: String,
    /// When it failed, epoch ms (the source message's timestamp when it has one).
    pub failed_at_ms: i64,
}
