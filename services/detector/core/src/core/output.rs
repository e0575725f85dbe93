//! Stage: output. Builds the Regression events (the public contract) from a
//! flagged candidate and the guard's assessment, and build failures.

use selfheal_schemas::ids::stable_id;
use selfheal_schemas::{Build, RateBasis, Regression, RegressionKind, SignatureCount};

use crate::core::guard::Assessment;
use crate::core::Candidate;

/// The stable id of a regression: one per (service, revision, signature, kind).
pub(crate) fn regression_id(
    service: &str,
    revision: &str,
    signature: &str,
    kind: RegressionKind,
) -> String {
    stable_id(&[service, revision, signature, kind.as_str()])
}

/// Where a regression came from.
pub(crate) struct Context<'a> {
    pub(crate) id: String,
    pub(crate) service: &'a str,
    pub(crate) revision: &'a str,
    pub(crate) previous_revision: Option<String>,
    pub(crate) deployed_at_ms: i64,
    pub(crate) at: i64,
    pub(crate) q: f64,
    /// Until when remediation should wait (ambiguous evidence).
    pub(crate) hold_remediation_until_ms: Option<i64>,
}

/// A spike or new-signature regression.
pub(crate) fn regression(
    ctx: Context<'_>,
    c: &Candidate,
    sample: &SignatureCount,
    a: Assessment,
) -> Regression {
    let mut evidence = a.external.clone();
    if evidence.is_none() && (a.ambiguous || !a.evidence.is_empty()) {
        let mut text = if a.ambiguous {
            "attributed, but an external cause is not ruled out (remediation held)".to_owned()
        } else {
            "attributed".to_owned()
        };
        if !a.evidence.is_empty() {
            text.push_str(": ");
            text.push_str(&a.evidence.join("; "));
        }
        evidence = Some(text);
    }
    Regression {
        id: ctx.id,
        service: ctx.service.to_owned(),
        revision: ctx.revision.to_owned(),
        previous_revision: ctx.previous_revision,
        kind: c.kind,
        signature: c.signature.clone(),
        template: sample.template.clone(),
        exception_type: sample.exception_type.clone(),
        detected_at_ms: ctx.at,
        deployed_at_ms: Some(ctx.deployed_at_ms),
        window_start_ms: ctx.deployed_at_ms,
        window_end_ms: ctx.at,
        observed: c.x.round() as i64,
        expected: c.mu,
        rate_ratio: c.x / c.mu,
        p_value: c.score.p,
        q_value: Some(ctx.q),
        requests: c.requests.map(|r| r.round() as i64),
        baseline_requests: c.per_request.then(|| c.baseline_exposure.round() as i64),
        rate_basis: if c.per_request {
            RateBasis::PerRequest
        } else {
            RateBasis::PerTime
        },
        externally_correlated: a.external.is_some(),
        correlation_evidence: evidence,
        sample_message: sample.sample_message.clone(),
        sample_stack: sample.sample_stack.clone(),
        frames: sample.frames.clone(),
        onset_ms: a.onset_ms,
        external_cues: a.cues,
        hold_remediation_until_ms: ctx.hold_remediation_until_ms,
        metric: None,
    }
}

/// A failed build: a regression at once.
pub(crate) fn build_failure(id: String, b: &Build) -> Regression {
    let excerpt = b.log_excerpt.clone().unwrap_or_default();
    let first_line = excerpt.lines().next().unwrap_or("build failed").to_owned();
    Regression {
        id,
        service: b.service.clone(),
        revision: b.revision.clone(),
        previous_revision: None,
        kind: RegressionKind::BuildFailure,
        signature: "build_failure".to_owned(),
        template: first_line.clone(),
        exception_type: None,
        detected_at_ms: b.finished_at_ms,
        deployed_at_ms: None,
        window_start_ms: b.finished_at_ms,
        window_end_ms: b.finished_at_ms,
        observed: 1,
        expected: 0.0,
        rate_ratio: f64::INFINITY,
        p_value: 0.0,
        q_value: None,
        requests: None,
        baseline_requests: None,
        rate_basis: RateBasis::PerTime,
        externally_correlated: false,
        correlation_evidence: None,
        sample_message: first_line,
        sample_stack: (!excerpt.is_empty()).then_some(excerpt),
        frames: Vec::new(),
        onset_ms: None,
        external_cues: Vec::new(),
        hold_remediation_until_ms: None,
        metric: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_failure_shows_the_first_log_line() {
        let r = build_failure(
            "x".into(),
            &Build {
                service: "a".into(),
                revision: "r".into(),
                status: selfheal_schemas::BuildStatus::Failed,
                log_excerpt: Some("error[E0425]: x\nmore".into()),
                finished_at_ms: 7,
            },
        );
        assert_eq!(r.sample_message, "error[E0425]: x");
        assert_eq!(r.detected_at_ms, 7);
        assert!(!r.externally_correlated);
    }

    #[test]
    fn ids_are_stable_per_kind() {
        let new = regression_id("s", "r", "g", RegressionKind::New);
        assert_eq!(new, regression_id("s", "r", "g", RegressionKind::New));
        assert_ne!(new, regression_id("s", "r", "g", RegressionKind::Spike));
    }
}
