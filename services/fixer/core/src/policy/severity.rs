//! How bad a verdict's regressions are: the error-budget burn rate, new crash
//! signatures, and the facts the rule table matches on.
//!
//! Burn rate is the SRE one: the error ratio of the regressed signatures
//! (events / requests in the detection window) divided by the error budget
//! `1 - slo`. A burn rate of 1 spends the budget exactly over the SLO period;
//! 14.4 spends 2% of a 30-day budget in an hour (Google SRE workbook, ch. 5).

use crate::config::{FixerConfig, LatencySlo, Severity};
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
    /// The service's latency SLO against the regressions' quantiles, when
    /// one is configured and a latency regression reports its quantile:
    /// `(breached, account)`.
    pub latency_slo: Option<(bool, String)>,
    /// Every regression is a memory leak (saturation).
    pub leak_only: bool,
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
        } else if self.leak_only {
            parts.push(
                "memory leak on the new revision's instances (no request failing yet)".to_owned(),
            );
        } else {
            parts.push("no request counts".to_owned());
        }
        if let Some((_, account)) = &self.latency_slo {
            parts.push(account.clone());
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
    latency_slo: Option<LatencySlo>,
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
    // A leak's `observed` counts instances, not requests: it spends no
    // error budget yet (it ends in OOM kills, later).
    let per_request: Vec<&Regression> = runtime
        .iter()
        .copied()
        .filter(|r| r.kind != RegressionKind::Saturation)
        .collect();
    let leak_only = !runtime.is_empty() && per_request.is_empty();
    let errors: i64 = per_request.iter().map(|r| r.observed.max(0)).sum();
    // Regressions of one verdict share a deploy's window: the largest request
    // count is the denominator (summing would count the same requests twice).
    let served = per_request.iter().filter_map(|r| requests(r)).max();
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
    let latency_only =
        !runtime.is_empty() && runtime.iter().all(|r| r.kind == RegressionKind::Latency);
    let slo_check = latency_slo.and_then(|s| check_latency_slo(&runtime, s));
    // A latency-only incident with a latency SLO is judged by the SLO: a
    // slower revision that keeps it is not an emergency, one that breaks it
    // is whatever the share of slow requests.
    let severity = match (&slo_check, latency_only) {
        (Some((true, _)), _) => Severity::High,
        (Some((false, _)), true) => Severity::Low,
        // A memory leak: no request fails yet, but the instances will be
        // killed; not an emergency, not nothing.
        _ if leak_only => Severity::Medium,
        _ if crash || burn_rate.is_some_and(|b| b >= fast_burn_rate) => Severity::High,
        _ if burn_rate.is_some_and(|b| b >= slow_burn_rate) => Severity::Medium,
        _ if burn_rate.is_some() => Severity::Low,
        _ => Severity::Unknown,
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
        latency_only,
        latency_slo: slo_check,
        leak_only,
    }
}

/// The worst latency regression against the SLO: the new revision's value
/// at the SLO's quantile (the nearest reported one at or above it).
fn check_latency_slo(runtime: &[&Regression], slo: LatencySlo) -> Option<(bool, String)> {
    let worst = runtime
        .iter()
        .filter(|r| r.kind == RegressionKind::Latency)
        .filter_map(|r| {
            let m = r.metric.as_ref()?;
            let scale = if m.unit == "ms" { 0.001 } else { 1.0 };
            let q = m
                .quantiles
                .iter()
                .filter(|q| q.quantile >= slo.quantile - 1e-9)
                .min_by(|a, b| a.quantile.total_cmp(&b.quantile))?;
            Some((q.quantile, q.observed_value * scale, m.route.clone()))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let (q, value, route) = worst;
    let on = route.map(|r| format!(" on {r}")).unwrap_or_default();
    let qname = format!("p{}", (q * 100.0).round());
    let breached = value > slo.threshold_s;
    let verb = if breached { "breaks" } else { "keeps" };
    Some((
        breached,
        format!(
            "{qname}{on} {value:.3} s {verb} the latency SLO ({qname} ≤ {} s)",
            slo.threshold_s
        ),
    ))
}

#[cfg(test)]
mod latency_slo_tests {
    use selfheal_schemas::{MetricDetail, QuantileValue, RateBasis};

    use super::*;

    fn latency(p99: f64, requests: i64, slow: i64) -> Regression {
        Regression {
            id: "r".into(),
            kind: RegressionKind::Latency,
            signature: "0123456789abcdef".into(),
            template: "p99 http.server.request.duration on /quote".into(),
            exception_type: None,
            detected_at_ms: 60_000,
            deployed_at_ms: Some(0),
            window_start_ms: 0,
            window_end_ms: 60_000,
            observed: slow,
            expected: 1.0,
            rate_ratio: 10.0,
            p_value: 1e-9,
            q_value: Some(1e-9),
            requests: Some(requests),
            baseline_requests: Some(100_000),
            rate_basis: RateBasis::PerRequest,
            sample_message: String::new(),
            onset_ms: Some(0),
            metric: Some(MetricDetail {
                name: "http.server.request.duration".into(),
                unit: "s".into(),
                route: Some("/quote".into()),
                quantile: Some(0.99),
                observed_value: p99,
                expected_value: 0.2,
                instances: Vec::new(),
                quantiles: vec![
                    QuantileValue {
                        quantile: 0.5,
                        observed_value: 0.05,
                        expected_value: 0.05,
                    },
                    QuantileValue {
                        quantile: 0.99,
                        observed_value: p99,
                        expected_value: 0.2,
                    },
                ],
                threshold_value: None,
            }),
            ..selfheal_schemas::testing::regression()
        }
    }

    fn run(r: &Regression, slo: Option<LatencySlo>) -> Assessment {
        assess(
            std::slice::from_ref(r),
            |r| r.requests,
            0.999,
            slo,
            &FixerConfig::default(),
            Some(60_000),
            false,
        )
    }

    #[test]
    fn a_latency_slo_decides_a_latency_only_incident() {
        let slo = LatencySlo {
            quantile: 0.99,
            threshold_s: 0.5,
        };
        // 6% of requests slow: a high "burn" as if they failed, but p99
        // 0.45 s keeps the SLO: low severity.
        let kept = run(&latency(0.45, 1000, 60), Some(slo));
        assert_eq!(kept.severity, Severity::Low, "{}", kept.describe());
        assert!(
            kept.describe().contains("keeps the latency SLO"),
            "{}",
            kept.describe()
        );
        let broken = run(&latency(1.2, 1000, 3), Some(slo));
        assert_eq!(broken.severity, Severity::High, "{}", broken.describe());
        assert!(
            broken.describe().contains("p99 on /quote 1.200 s breaks"),
            "{}",
            broken.describe()
        );
        // Without an SLO the share of slow requests decides, as for errors.
        let none = run(&latency(0.45, 1000, 60), None);
        assert_eq!(none.severity, Severity::High);
        assert!(none.describe().contains("slower than the baseline's bound"));
    }
}
