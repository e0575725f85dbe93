//! A golden-signal finding as a Regression event.

use selfheal_schemas::{MetricDetail, QuantileValue, RateBasis, Regression, RegressionKind};

use super::context::Verdict;
use super::{Deployed, Finding};

/// The 16-hex id of a metric series (Regression.signature).
pub(super) fn series_id(key: &str) -> String {
    selfheal_schemas::ids::stable_id(&["golden", key])
}

fn describe(f: &Finding) -> (String, String) {
    let route = f
        .route
        .as_deref()
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    match f.kind {
        RegressionKind::Latency => {
            let q = f.quantile.unwrap_or(0.99);
            let qname = format!("p{}", (q * 100.0).round());
            (
                format!("{qname} {}{route}", f.metric),
                format!(
                    "{qname} of {}{route} rose from {:.3} {unit} to {:.3} {unit} (×{:.1}); {:.2}% of requests above the bound where the control has {:.2}%",
                    f.metric,
                    f.expected_value,
                    f.observed_value,
                    f.observed_value / f.expected_value,
                    100.0 * f.stat.share(),
                    100.0 * f.stat.p0,
                    unit = f.unit,
                ),
            )
        }
        RegressionKind::Saturation => (
            format!("memory leak ({})", f.metric),
            format!(
                "memory's floor grows {:.0} MB/h faster than the previous revision's instances at the same age, on {} of {} instances ({}); bar {:.0} MB/h",
                f.observed_value / 1_048_576.0,
                f.instances.len(),
                f.stat.n,
                f.instances.join(", "),
                f.expected_value / 1_048_576.0
            ),
        ),
        _ => (
            "server-error rate".to_owned(),
            format!(
                "server errors rose from {:.3}% to {:.3}% of requests (×{:.1}), no error log needed",
                100.0 * f.expected_value,
                100.0 * f.observed_value,
                f.observed_value / f.expected_value.max(f64::MIN_POSITIVE)
            ),
        ),
    }
}

/// The regression of `f` for deploy `d`, with the external check's verdict.
pub(in crate::core) fn regression(
    id: String,
    f: &Finding,
    d: &Deployed<'_>,
    v: Verdict,
) -> Regression {
    let (template, message) = describe(f);
    let control = if f.kind == RegressionKind::Saturation {
        "control: the previous revision's instances at the same age"
    } else if f.concurrent {
        "control: the previous revision serving at the same minutes"
    } else {
        "control: baseline hours at the same load"
    };
    let mut evidence = vec![control.to_owned()];
    evidence.extend(v.evidence);
    let correlation_evidence = Some(match &v.external {
        Some(why) => format!("{why}; {}", evidence.join("; ")),
        None => format!("attributed: {}", evidence.join("; ")),
    });
    Regression {
        id,
        service: d.service.to_owned(),
        revision: d.revision.to_owned(),
        previous_revision: d.previous.map(str::to_owned),
        kind: f.kind,
        signature: f.key.clone(),
        template,
        exception_type: None,
        detected_at_ms: d.at,
        deployed_at_ms: Some(d.t0),
        window_start_ms: d.t0,
        window_end_ms: d.at,
        observed: f.stat.k.round() as i64,
        expected: f.stat.expected(),
        rate_ratio: f.stat.share() / f.stat.p0,
        p_value: f.stat.p,
        q_value: Some(f.q),
        requests: Some(f.stat.n.round() as i64),
        baseline_requests: Some(f.stat.base_n.round() as i64),
        rate_basis: RateBasis::PerRequest,
        externally_correlated: v.external.is_some(),
        correlation_evidence,
        sample_message: message,
        sample_stack: None,
        frames: Vec::new(),
        onset_ms: Some(f.onset_ms),
        external_cues: v.cues,
        hold_remediation_until_ms: None,
        metric: Some(MetricDetail {
            name: f.metric.clone(),
            unit: f.unit.clone(),
            route: f.route.clone(),
            quantile: f.quantile,
            observed_value: f.observed_value,
            expected_value: f.expected_value,
            instances: f.instances.clone(),
            quantiles: f
                .quantiles
                .iter()
                .map(|(q, n, b)| QuantileValue {
                    quantile: *q,
                    observed_value: *n,
                    expected_value: *b,
                })
                .collect(),
            threshold_value: f.threshold_value,
        }),
    }
}
