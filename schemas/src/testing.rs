//! Events for tests: one sensible default of each, so a test writes only the
//! fields it is about (`Regression { observed: 9, ..testing::regression() }`)
//! and a new schema field touches this file alone.
//!
//! Compiled for this crate's own tests and, behind the `testing` feature, for
//! other crates' tests (enable it in their `[dev-dependencies]`).
//!
//! The defaults describe one story: service `checkout` deployed revision `b`
//! over `a` at [`T0`], and a new `KeyError` signature regressed a minute later.

use crate::{Decision, Deploy, Evidence, RateBasis, Regression, RegressionKind, Verdict};

/// The default deploy time: 2026-03-09T10:00:00Z, epoch milliseconds.
pub const T0: i64 = 1_773_050_400_000;

/// A new-signature regression of `checkout` revision `b` (over `a`), deployed
/// at [`T0`], detected a minute later: 5 errors where none were expected,
/// counted per unit of time, no request counts, no frames, no metric.
pub fn regression() -> Regression {
    Regression {
        id: "r1".into(),
        service: "checkout".into(),
        revision: "b".into(),
        previous_revision: Some("a".into()),
        kind: RegressionKind::New,
        signature: "sig-r1".into(),
        template: "KeyError: <str>".into(),
        exception_type: Some("KeyError".into()),
        detected_at_ms: T0 + 60_000,
        deployed_at_ms: Some(T0),
        window_start_ms: T0,
        window_end_ms: T0 + 60_000,
        observed: 5,
        expected: 0.0,
        rate_ratio: f64::INFINITY,
        p_value: 0.001,
        q_value: None,
        requests: None,
        baseline_requests: None,
        rate_basis: RateBasis::PerTime,
        externally_correlated: false,
        correlation_evidence: None,
        sample_message: "KeyError: 'XC'".into(),
        sample_stack: None,
        frames: Vec::new(),
        onset_ms: None,
        external_cues: Vec::new(),
        hold_remediation_until_ms: None,
        metric: None,
    }
}

/// The verdict on [`regression`]: the deploy `caused` it (confidence 0.9,
/// blamed revision `b`), citing [`evidence`], decided by the rules two
/// minutes after [`T0`]; no incident, no localization.
pub fn verdict() -> Verdict {
    Verdict {
        id: "v1".into(),
        service: "checkout".into(),
        revision: "b".into(),
        blamed_revision: Some("b".into()),
        decision: Decision::Caused,
        confidence: 0.9,
        reasoning: "frame pricing.py:216 touches a changed line".into(),
        evidence: vec![evidence()],
        signatures: vec!["sig-r1".into()],
        regression_ids: vec!["r1".into()],
        file_classes: Vec::new(),
        decided_at_ms: T0 + 120_000,
        adjudicator: "rules".into(),
        incident_id: None,
        incident_seq: 0,
        localization: None,
    }
}

/// A changed line cited by a stack frame: `src/pricing.py:216`.
pub fn evidence() -> Evidence {
    Evidence {
        file: "src/pricing.py".into(),
        line: Some(216),
        hunk_header: Some("@@ -214,7 +214,7 @@".into()),
        frame: None,
        token: None,
        strength: "frame".into(),
    }
}

/// The deploy of `checkout` revision `b` over `a` at [`T0`], with a one-line
/// diff inline; no repository, commit range or diff URL.
pub fn deploy() -> Deploy {
    Deploy {
        service: "checkout".into(),
        revision: "b".into(),
        previous_revision: Some("a".into()),
        repo: None,
        commit_range: None,
        diff: Some("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n".into()),
        diff_url: None,
        deployed_at_ms: T0,
    }
}
