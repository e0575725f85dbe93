//! A backtest's output directory as console events: the rows of
//! `regressions.ndjson`, `verdicts.ndjson`, `actions.ndjson` and
//! `deploys.ndjson` (the contract in the README, extra fields ignored) become
//! [`AnyEvent`]s, fields the rows lack left empty. Also the one place that
//! builds a blank event of each kind (the tests start from these too).

use std::path::Path;

use anyhow::Context;
use selfheal_schemas::{
    Action, ActionKind, ActionStatus, AnyEvent, Decision, Deploy, Evidence, RateBasis, Regression,
    RegressionKind, Verdict,
};
use serde_json::Value;

/// A regression of `service` at `revision` with every other field empty.
pub(crate) fn blank_regression(service: &str, revision: &str) -> Regression {
    Regression {
        id: String::new(),
        service: service.to_owned(),
        revision: revision.to_owned(),
        previous_revision: None,
        kind: RegressionKind::New,
        signature: String::new(),
        template: String::new(),
        exception_type: None,
        detected_at_ms: 0,
        deployed_at_ms: None,
        window_start_ms: 0,
        window_end_ms: 0,
        observed: 0,
        expected: 0.0,
        rate_ratio: 0.0,
        p_value: 1.0,
        q_value: None,
        requests: None,
        baseline_requests: None,
        rate_basis: RateBasis::PerTime,
        externally_correlated: false,
        correlation_evidence: None,
        sample_message: String::new(),
        sample_stack: None,
        frames: vec![],
        onset_ms: None,
        external_cues: vec![],
        hold_remediation_until_ms: None,
        metric: None,
    }
}

/// A verdict on `service` at `revision` with every other field empty.
pub(crate) fn blank_verdict(service: &str, revision: &str, decision: Decision) -> Verdict {
    Verdict {
        id: String::new(),
        service: service.to_owned(),
        revision: revision.to_owned(),
        blamed_revision: None,
        decision,
        confidence: 0.0,
        reasoning: String::new(),
        evidence: vec![],
        signatures: vec![],
        regression_ids: vec![],
        file_classes: vec![],
        decided_at_ms: 0,
        adjudicator: String::new(),
        incident_id: None,
        incident_seq: 0,
        localization: None,
    }
}

/// An action on `service` at `revision` with every other field empty.
pub(crate) fn blank_action(
    service: &str,
    revision: &str,
    action: ActionKind,
    status: ActionStatus,
) -> Action {
    Action {
        id: String::new(),
        service: service.to_owned(),
        revision: revision.to_owned(),
        action,
        status,
        rule: String::new(),
        reasons: vec![],
        executor: None,
        target_revision: None,
        pr_url: None,
        recovery_verified: None,
        signatures: vec![],
        verdict_id: None,
        decided_at_ms: 0,
        incident_id: None,
    }
}

/// A deploy of `service` at `revision` with every other field empty.
pub(crate) fn blank_deploy(service: &str, revision: &str, at_ms: i64) -> Deploy {
    Deploy {
        service: service.to_owned(),
        revision: revision.to_owned(),
        previous_revision: None,
        repo: None,
        commit_range: None,
        diff: None,
        diff_url: None,
        deployed_at_ms: at_ms,
    }
}

fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn opt_s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn i(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn enum_of<T: serde::de::DeserializeOwned>(v: &Value, k: &str) -> Option<T> {
    v.get(k)
        .and_then(|x| serde_json::from_value(x.clone()).ok())
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn regression(v: &Value, n: usize) -> Regression {
    let mut r = blank_regression(&s(v, "service"), &s(v, "revision"));
    r.id = format!("row-{n}");
    r.kind = enum_of(v, "kind").unwrap_or(RegressionKind::New);
    r.signature = s(v, "signature");
    r.template = s(v, "template");
    r.detected_at_ms = i(v, "detected_at_ms").unwrap_or_default();
    r.deployed_at_ms = i(v, "deployed_at_ms");
    r.observed = i(v, "observed").unwrap_or_default();
    r.expected = f(v, "expected");
    r.rate_ratio = f(v, "rate_ratio");
    r.p_value = f(v, "p_value");
    r.q_value = v.get("q_value").and_then(Value::as_f64);
    r.requests = i(v, "requests");
    r.externally_correlated = v
        .get("externally_correlated")
        .and_then(Value::as_bool)
        .unwrap_or_default();
    r.correlation_evidence = opt_s(v, "correlation_evidence");
    r.sample_message = s(v, "sample");
    r.external_cues = strings(v, "external_cues");
    r
}

fn verdict(v: &Value) -> Verdict {
    let decision = enum_of(v, "decision").unwrap_or(Decision::Inconclusive);
    let mut out = blank_verdict(&s(v, "service"), &s(v, "revision"), decision);
    out.confidence = f(v, "confidence");
    out.reasoning = s(v, "reasoning");
    out.signatures = strings(v, "signatures");
    out.blamed_revision = opt_s(v, "blamed_revision");
    out.decided_at_ms = i(v, "decided_at_ms").unwrap_or_default();
    out.localization = enum_of(v, "localization");
    out.incident_id = opt_s(v, "incident_id");
    out.incident_seq = i(v, "incident_seq")
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or_default();
    out.evidence = v
        .get("evidence")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Evidence {
                    file: s(e, "file"),
                    line: i(e, "line").and_then(|l| i32::try_from(l).ok()),
                    hunk_header: opt_s(e, "hunk"),
                    frame: opt_s(e, "frame"),
                    token: None,
                    strength: s(e, "strength"),
                })
                .collect()
        })
        .unwrap_or_default();
    out
}

fn action(v: &Value, n: usize) -> Action {
    let kind = enum_of(v, "action").unwrap_or(ActionKind::None);
    let status = enum_of(v, "status").unwrap_or(ActionStatus::DryRun);
    let mut a = blank_action(&s(v, "service"), &s(v, "revision"), kind, status);
    // A backtest writes each action once: the row is its identity.
    a.id = opt_s(v, "id").unwrap_or_else(|| format!("row-{n}"));
    a.rule = s(v, "rule");
    a.reasons = strings(v, "reasons");
    a.target_revision = opt_s(v, "target_revision");
    a.pr_url = opt_s(v, "pr_url");
    a.decided_at_ms = i(v, "decided_at_ms").unwrap_or_default();
    a
}

fn deploy(v: &Value) -> Deploy {
    let mut d = blank_deploy(
        &s(v, "service"),
        &s(v, "revision"),
        i(v, "deployed_at_ms").unwrap_or_default(),
    );
    d.previous_revision = opt_s(v, "previous_revision");
    d.repo = opt_s(v, "repo");
    d.diff = opt_s(v, "diff");
    d
}

/// Reads a backtest output directory into events (deploys first, then
/// regressions, verdicts, actions, each in file order). A missing
/// `deploys.ndjson` (older backtests) is allowed; a bad line is an error
/// naming the file and line.
pub(crate) fn read_dir(dir: &Path) -> anyhow::Result<Vec<AnyEvent>> {
    let mut out = Vec::new();
    let files: [(&str, bool); 4] = [
        ("deploys.ndjson", false),
        ("regressions.ndjson", true),
        ("verdicts.ndjson", true),
        ("actions.ndjson", true),
    ];
    for (name, required) in files {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{}: not a backtest output directory?", path.display())
                })
            }
        };
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line).with_context(|| {
                format!("{}: line {}: not a JSON object", path.display(), n + 1)
            })?;
            out.push(match name {
                "deploys.ndjson" => AnyEvent::Deploy(deploy(&v)),
                "regressions.ndjson" => AnyEvent::Regression(regression(&v, n)),
                "verdicts.ndjson" => AnyEvent::Verdict(verdict(&v)),
                _ => AnyEvent::Action(action(&v, n)),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backtest_directory_reads_back_into_events() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        w(
            "deploys.ndjson",
            r#"{"service":"checkout","revision":"b","previous_revision":"a","deployed_at_ms":5,"diff":"--- a/x"}"#,
        );
        w(
            "regressions.ndjson",
            r#"{"service":"checkout","revision":"b","kind":"new","detected_at_ms":9,"observed":6,"expected":0.1,"p_value":1e-9,"sample":"KeyError: 'usd'"}"#,
        );
        w(
            "verdicts.ndjson",
            r#"{"service":"checkout","revision":"b","decision":"caused","confidence":0.9,"evidence":[{"file":"src/p.py","line":23,"hunk":"@@ -20 +20 @@"}],"localization":"line"}"#,
        );
        w(
            "actions.ndjson",
            r#"{"service":"checkout","revision":"b","action":"rollback","status":"dry_run","rule":"caused_rollback","target_revision":"a","reasons":["r"]}"#,
        );
        let events = read_dir(dir.path()).unwrap();
        let names: Vec<&str> = events.iter().map(AnyEvent::name).collect();
        assert_eq!(names, ["Deploy", "Regression", "Verdict", "Action"]);
        let AnyEvent::Verdict(v) = &events[2] else {
            panic!()
        };
        assert_eq!(
            (v.decision, v.evidence[0].line),
            (Decision::Caused, Some(23))
        );
        let AnyEvent::Action(a) = &events[3] else {
            panic!()
        };
        assert_eq!(
            (a.action, a.status, a.target_revision.as_deref()),
            (ActionKind::Rollback, ActionStatus::DryRun, Some("a"))
        );
        let AnyEvent::Regression(r) = &events[1] else {
            panic!()
        };
        assert_eq!(
            (r.observed, r.sample_message.as_str()),
            (6, "KeyError: 'usd'")
        );
    }

    #[test]
    fn a_bad_line_names_file_and_line_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_dir(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("regressions.ndjson"), "{err:#}");
        std::fs::write(dir.path().join("regressions.ndjson"), "{}\nnope\n").unwrap();
        let err = format!("{:#}", read_dir(dir.path()).unwrap_err());
        assert!(err.contains("regressions.ndjson: line 2"), "{err}");
    }
}
