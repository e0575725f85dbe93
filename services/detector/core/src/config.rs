//! The detector's configuration (`[detector]`, `[detector.golden]`). It
//! lives here, beside the statistics that read it; `selfheal_common::config`
//! re-exports it so the one `selfheal.toml` still parses into one
//! `selfheal_common::Config` (unknown keys rejected, environment overrides
//! applied there).

use selfheal_common_core::ranges::{CheckRanges, Ranges};
use serde::{Deserialize, Serialize};

/// Settings of the detector service.
///
/// Defaults are the production statistics; [`DetectorConfig::simple_recipe`] is
/// the naive baseline method the defaults are measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Days of history before a deploy that form its baseline.
    pub baseline_days: u32,
    /// Minutes after a deploy during which its revision is watched. Three
    /// hours by default: a ×3 spike of a bursty error (one whose hourly
    /// counts vary well beyond Poisson) needs more than one hour of the
    /// revision's traffic to stand out from hour-to-hour noise (the test
    /// multiplies per-hour evidence, see `stats::nb_block_e_value`); new
    /// errors and large spikes are still found in the first minutes.
    pub window_minutes: u32,
    /// Event-time lateness tolerated before a minute is evaluated, in seconds.
    /// The watermark is the latest event time seen minus this.
    pub allowed_lateness_s: u32,
    /// False-discovery rate across the signatures tested for one deploy
    /// (e-BH); with `fdr = false` the per-signature significance level.
    pub alpha: f64,
    /// Smallest observed/expected rate ratio reported as a spike.
    pub min_rate_ratio: f64,
    /// Smallest post-deploy count for a spike.
    pub min_count: i64,
    /// A signature never seen in the baseline is a regression once the new
    /// revision has produced it at least this many times.
    pub new_signature_min_count: i64,
    /// Evaluate every minute with an anytime-valid test (true), or once when the
    /// window closes (false, the simple recipe).
    pub sequential: bool,
    /// Control the false-discovery rate across a deploy's signatures (e-BH).
    pub fdr: bool,
    /// Estimate over-dispersion from the baseline (quasi-Poisson) instead of
    /// assuming Poisson counts.
    pub dispersion: bool,
    /// Normalize by request counts when Traffic events exist.
    pub per_request: bool,
    /// Mark regressions whose template rose at the same time in services or
    /// revisions that did not deploy as externally correlated. With several
    /// instances (exactly-once mode), each publishes per-template summaries to
    /// `topics.detector_fleet` and reads all the others'.
    pub fleet_guard: bool,
    /// Longest a flagged regression is held, in event-time seconds beyond the
    /// guard's own hold, for other detector instances whose fleet summaries
    /// have not reached its evaluation yet (they may still report the same
    /// error rising). An instance further behind than this is taken for down
    /// and not waited for, so a dead instance delays detection at most this
    /// long, once. Irrelevant with a single instance.
    pub fleet_wait_s: u32,
    /// How far (event-time seconds) a service's error counts may run ahead
    /// of its traffic before its evaluations go on without the traffic: its
    /// watermark is held back to its latest traffic window's end while the
    /// traffic lags by less than this, so no evaluation is decided on a
    /// partial request count. Traffic that stops delays the service's
    /// evaluations by this much. 0: never wait for traffic.
    pub traffic_wait_s: u32,
    /// Exactly-once mode: how long (wall-clock milliseconds) a record waits
    /// for an input partition that is empty but caught up with its log end,
    /// before it is handed over in event-time order without it. Records of
    /// one intake flush reach the consumer a fetch apart, so this is short;
    /// it is the detector's added latency.
    pub input_wait_ms: u64,
    /// How long remediation of a regression is held, in event-time seconds
    /// after its detection, when the evidence for an external cause is
    /// ambiguous (a late onset; a dependency error with a weak witness, or
    /// naming its upstream): the regression is reported at once, with
    /// `hold_remediation_until_ms` set, and re-published as external if it
    /// goes away before then (`core/went_away.rs`; checked at the hold's end
    /// minus `allowed_lateness_s` and a minute). 0: never hold.
    pub hold_remediation_s: u32,
    /// Signatures tracked per service before the least recently seen are
    /// evicted (bounds memory under a signature explosion).
    pub max_signatures_per_service: usize,
    /// Exactly-once processing on a real broker: regressions, state snapshots
    /// (to `topics.detector_changelog`) and input offsets are committed in one
    /// Kafka transaction, so a restarted detector resumes from its snapshot and
    /// emits exactly what an uninterrupted run would. Off: at-least-once with
    /// in-memory state, inputs read in arrival order (for a cluster without
    /// transactions).
    pub exactly_once: bool,
    /// A stable name for this detector instance (e.g. a StatefulSet pod name,
    /// `$HOSTNAME` in Kubernetes), used as its Kafka `transactional.id`
    /// (`<group>.<name>`). With one, a restart after a crash fences the dead
    /// process and aborts its open transaction at once; without one (the
    /// default) each process start gets a unique id, and a restarted
    /// detector's read of its changelog waits until the dead process's open
    /// transaction times out (`transaction.timeout.ms`, 60 s). Two live
    /// instances must never share a name: they would fence each other.
    pub instance_name: String,
    /// Golden signals: latency histograms and server-error rates.
    pub golden: GoldenConfig,
}

/// How the detector judges golden signals (latency, server-error rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoldenConfig {
    /// Judge latency histograms, traffic's server errors and instances'
    /// memory at all. Off by default for now: on the golden simulator its
    /// precision is 0.33–0.82 and a clean deploy or two per 140 gets rolled
    /// back (README), which no fleet should get without asking for it.
    pub enabled: bool,
    /// Fewest new-revision requests (in a latency series, or with known
    /// errors) before a golden signal is judged.
    pub min_requests: u32,
    /// Fewest new-revision server errors for an error-rate regression.
    pub min_errors: u32,
    /// Smallest rise of the share of requests above a bucket bound (slow
    /// requests, or failed ones) over the control's share.
    pub min_tail_ratio: f64,
    /// Smallest rise of the worst of p50, p95 and p99 for a latency
    /// regression (so a statistically clear but tiny shift is not one).
    pub min_quantile_ratio: f64,
    /// Smallest absolute rise of the server-error share of requests
    /// (0.001: a tenth of a percentage point).
    pub min_error_rate_increase: f64,
    /// Smallest memory growth per instance, bytes per hour, for a leak
    /// (saturation) regression; also at least the previous revision's.
    pub min_leak_bytes_per_hour: f64,
    /// Minutes after a deploy during which its golden signals are judged
    /// (at most `detector.window_minutes`). An hour: the golden test
    /// corrects for every minute it looks (Bonferroni over the looks), so a
    /// longer watch would make each look stricter, and its measured figures
    /// (README) are for an hour.
    pub window_minutes: u32,
    /// How long a new instance warms up (JIT, caches, pools), in event-time
    /// seconds: a revision is judged from this long after its latest
    /// instance appeared (instances are known from their gauges).
    pub warmup_s: u32,
}

impl Default for GoldenConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            min_requests: 100,
            min_errors: 10,
            min_tail_ratio: 1.5,
            min_quantile_ratio: 1.2,
            min_error_rate_increase: 0.001,
            min_leak_bytes_per_hour: 20.0 * 1_048_576.0,
            window_minutes: 60,
            warmup_s: 300,
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            baseline_days: 7,
            window_minutes: 180,
            allowed_lateness_s: 120,
            alpha: 0.05,
            min_rate_ratio: 1.5,
            min_count: 3,
            new_signature_min_count: 2,
            sequential: true,
            fdr: true,
            dispersion: true,
            per_request: true,
            fleet_guard: true,
            fleet_wait_s: 180,
            traffic_wait_s: 180,
            input_wait_ms: 500,
            hold_remediation_s: 600,
            max_signatures_per_service: 5_000,
            exactly_once: true,
            instance_name: String::new(),
            golden: GoldenConfig::default(),
        }
    }
}

impl DetectorConfig {
    /// The simple recipe: 7-day baseline, one evaluation 60 minutes after the
    /// deploy, a one-sided Poisson test at p < 0.05 per signature, per-time
    /// rates, no over-dispersion, no FDR control, no fleet guard, new
    /// signatures flagged at 3 occurrences.
    pub fn simple_recipe() -> Self {
        Self {
            min_rate_ratio: 1.0,
            min_count: 1,
            sequential: false,
            fdr: false,
            dispersion: false,
            per_request: false,
            fleet_guard: false,
            // The recipe looks once, an hour after the deploy.
            window_minutes: 60,
            ..Self::default()
        }
    }
}

impl CheckRanges for DetectorConfig {
    fn check_ranges(&self, r: &mut Ranges) {
        r.open_unit("alpha", self.alpha);
        r.at_least_one("window_minutes", self.window_minutes);
        r.at_least_one("golden.window_minutes", self.golden.window_minutes);
        r.non_negative("min_rate_ratio", self.min_rate_ratio);
    }
}
