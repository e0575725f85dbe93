//! Test events for the console's tests, built on the blank events of
//! [`super::rows`].

use selfheal_schemas::{
    Action, ActionKind, ActionStatus, Decision, Deploy, Evidence, Localization, Regression,
    SignatureCount, Traffic, Verdict,
};

use super::rows::{blank_action, blank_deploy, blank_regression, blank_verdict};

pub(crate) const DIFF: &str = "diff --git a/src/shop/pricing.py b/src/shop/pricing.py
--- a/src/shop/pricing.py
+++ b/src/shop/pricing.py
@@ -21,3 +21,3 @@ def quote(params):
     subtotal = params[\"subtotal\"]
-    total = convert(subtotal, params.get(\"currency\", \"USD\"))
+    total = convert(subtotal, params.get(\"currency\", \"usd\"))
     return total
";

pub(crate) fn deploy(service: &str, revision: &str, at_ms: i64) -> Deploy {
    let mut d = blank_deploy(service, revision, at_ms);
    d.diff = Some(DIFF.to_owned());
    d
}

pub(crate) fn regression(service: &str, revision: &str, detected_at_ms: i64) -> Regression {
    let mut r = blank_regression(service, revision);
    r.id = format!("{service}-{revision}-{detected_at_ms}");
    r.signature = "56dd474cb87036dd".into();
    r.template = "KeyError: <str>".into();
    r.sample_message = "KeyError: 'usd' <script>alert(1)</script>".into();
    r.detected_at_ms = detected_at_ms;
    r.deployed_at_ms = Some(600_000);
    r.observed = 6;
    r.expected = 0.04;
    r.p_value = 6.4e-12;
    r
}

pub(crate) fn verdict(service: &str, revision: &str, decision: Decision) -> Verdict {
    let mut v = blank_verdict(service, revision, decision);
    v.id = "v1".into();
    v.confidence = 0.89;
    v.reasoning = "the frame quote is on the changed line".into();
    v.localization = Some(Localization::Line);
    v.evidence = vec![Evidence {
        file: "src/shop/pricing.py".into(),
        line: Some(22),
        hunk_header: Some("@@ -21,3 +21,3 @@ def quote(params):".into()),
        frame: Some("quote".into()),
        token: None,
        strength: "line".into(),
    }];
    v
}

pub(crate) fn action(
    service: &str,
    revision: &str,
    kind: ActionKind,
    status: ActionStatus,
) -> Action {
    let mut a = blank_action(service, revision, kind, status);
    a.id = "act1".into();
    a.rule = "caused_rollback".into();
    a.target_revision = Some("a".into());
    a.reasons = vec!["rule caused_rollback matched".into()];
    a
}

pub(crate) fn count(service: &str, revision: &str, at_ms: i64, n: i64) -> SignatureCount {
    SignatureCount {
        service: service.into(),
        revision: revision.into(),
        signature: "56dd474cb87036dd".into(),
        template: "KeyError: <str>".into(),
        exception_type: None,
        level: "error".into(),
        count: n,
        first_seen_ms: at_ms,
        last_seen_ms: at_ms,
        sample_message: String::new(),
        sample_stack: None,
        frames: vec![],
        trace_id: None,
    }
}

pub(crate) fn traffic(service: &str, revision: &str, at_ms: i64, requests: i64) -> Traffic {
    Traffic {
        service: service.into(),
        revision: revision.into(),
        window_start_ms: at_ms,
        window_s: 60,
        requests,
        errors: None,
    }
}
