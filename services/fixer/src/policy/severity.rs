//! How bad a verdict's regressions are: the error-budget burn rate, new crash
//! signatures, and the facts the rule table matches on.
//!
//! Burn rate is the SRE one: the error ratio of the regressed signatures
//! (events / requests in the detection window) divided by the error budget
//! `1 - slo`. A burn rate of 1 spends the budget exactly over the SLO period;
//! 14.4 spends 2% of a 30-day budget in an hour (Google SRE workbook, ch. 5).

use selfheal_common::config::{FixerConfig, Severity};
use selfheal_schemas::{Regression, RegressionKind};

/// The facts about a verdict's regressions that rules match on.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// High, low or unknown.
    pub severity: Severity,
    /// Error-budget burn rate, when requests are known.
    pub burn_rate: Option<f64>,
    /// Share of requests that hit a regressed signature, when requests are known.
    pub share: Option<f64>,
    /// A new signature looks like a crash.
    pub crash: bool,
    /// A regression is a failed build.
    pub build_failure: bool,
    /// Every regression also rose where nothing was deployed.
    pub externally_correlated: bool,
    /// Event time from the deploy to the verdict.
    pub since_deploy_ms: Option<i64>,
    /// Every regression is a latency one: the share is of *slow* requests
    /// (above the baseline's bucket bound), which spend a latency SLO's
    /// budget as failed requests spend an availability SLO's.
    pub latency_only: bool,
}

impl Assessment {
    /// A short human-readable account (`high: burn rate 20.0 ≥ 14.4, …`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(b), Some(s)) = (self.burn_rate, self.share) {
            let what = if self.latency_only {
                "slower than the baseline's bound"
            } else {
                "failing"
            };
            parts.push(format!(
                "burn rate {b:.1} ({:.3}% of requests {what})",
                s * 100.0
            ));
        } else {
            parts.push("no request counts".to_owned());
        }
        if self.crash {
            parts.push("new crash signature".to_owned());
        }
        if self.externally_correlated {
            parts.push("also rose where nothing was deployed".to_owned());
        }
        let sev = match self.severity {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Unknown => "unknown",
        };
        format!("{sev}: {}", parts.join(", "))
    }
}

/// Assesses `regressions`. `requests` gives the requests served in a
/// regression's window (its own count, or the traffic the fixer saw).
pub fn assess(
    regressions: &[Regression],
    requests: impl Fn(&Regression) -> Option<i64>,
    slo: f64,
    config: &FixerConfig,
    since_deploy_ms: Option<i64>,
    build_failure_signature: bool,
) -> Assessment {
    let (fast_burn_rate, slow_burn_rate) = (config.fast_burn_rate, config.slow_burn_rate);
    let crash_markers = &config.crash_markers;
    let build_failure = build_failure_signature || super::is_build_failure(regressions);
    let runtime: Vec<&Regression> = regressions
        .iter()
        .filter(|r| r.kind != RegressionKind::BuildFailure)
        .collect();
    let errors: i64 = runtime.iter().map(|r| r.observed.max(0)).sum();
    // Regressions of one verdict share a deploy's window: the largest request
    // count is the denominator (summing would count the same requests twice).
    let served = runtime.iter().filter_map(|r| requests(r)).max();
    let share = served
        .filter(|n| *n > 0)
        .map(|n| (errors as f64 / n as f64).min(1.0));
    let budget = (1.0 - slo).max(1e-9);
    let burn_rate = share.map(|s| s / budget);
    let crash = runtime.iter().any(|r| {
        r.kind == RegressionKind::New && {
            let text = format!(
                "{} {}",
                r.exception_type.as_deref().unwrap_or_default(),
                r.template
            )
            .to_lowercase();
            crash_markers
                .iter()
                .any(|m| !m.is_empty() && text.contains(&m.to_lowercase()))
        }
    });
    let severity = if crash || burn_rate.is_some_and(|b| b >= fast_burn_rate) {
        Severity::High
    } else if burn_rate.is_some_and(|b| b >= slow_burn_rate) {
        Severity::Medium
    } else if burn_rate.is_some() {
        Severity::Low
    } else {
        Severity::Unknown
    };
    Assessment {
        severity,
        burn_rate,
        share,
        crash,
        build_failure,
        externally_correlated: !runtime.is_empty()
            && runtime.iter().all(|r| r.externally_correlated),
        since_deploy_ms,
        latency_only: !runtime.is_empty()
            && runtime.iter().all(|r| r.kind == RegressionKind::Latency),
    }
}
