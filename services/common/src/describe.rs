//! What happened, in words a person reads: one-line summaries of regressions,
//! verdicts and actions for `selfheal up`'s log, the backtest's table and the
//! console. Pure functions over the events.
//!
//! Every time shown is **event time** (the time in the records), written as
//! RFC 3339 and, where the deploy is known, relative to it: "detected
//! 2026-03-09T11:12:00Z, 2m 0s after the deploy". The error text shown is the
//! event's sample, already scrubbed of secrets by ingest; only its first line
//! is shown, cut to [`TEXT_LIMIT`] characters.

use selfheal_schemas::{Action, ActionKind, ActionStatus, Decision, Regression, Verdict};

/// The longest error text (characters) a one-line summary shows.
pub const TEXT_LIMIT: usize = 160;

/// Event time (epoch ms) as RFC 3339 UTC with seconds (milliseconds only
/// when non-zero); the raw number if it is out of range.
pub fn event_time(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// A duration in ms as "2m 0s", "45s", "1h 3m", "-5s" (before).
pub fn duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let s = ms.unsigned_abs() / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) if ms.unsigned_abs() < 1000 && ms != 0 => format!("{sign}{}ms", ms.unsigned_abs()),
        (0, 0) => format!("{sign}{s}s"),
        (0, _) => format!("{sign}{m}m {s}s"),
        _ => format!("{sign}{h}h {m}m"),
    }
}

/// The first line of `text`, cut to [`TEXT_LIMIT`] characters (with "…").
pub fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim();
    if line.chars().count() > TEXT_LIMIT {
        let cut: String = line.chars().take(TEXT_LIMIT - 1).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

/// The error text of a regression: its scrubbed sample, else its template.
pub fn error_text(r: &Regression) -> String {
    let sample = first_line(&r.sample_message);
    if sample.is_empty() {
        first_line(&r.template)
    } else {
        sample
    }
}

/// "detected 2026-03-09T11:12:00Z (event time), 2m 0s after the deploy".
pub fn detection(r: &Regression) -> String {
    let at = event_time(r.detected_at_ms);
    match r.deployed_at_ms {
        Some(d) => format!(
            "detected {at} (event time), {} after the deploy",
            duration(r.detected_at_ms - d)
        ),
        None => format!("detected {at} (event time), no deploy known"),
    }
}

/// A regression in one line: kind, service, revision, error text, observed vs
/// expected, the statistics and the detection time.
pub fn regression(r: &Regression) -> String {
    let kind = format!("{:?}", r.kind).to_lowercase();
    let q = r
        .q_value
        .map(|q| format!(", q = {q:.2e}"))
        .unwrap_or_default();
    let external = if r.externally_correlated {
        " [externally correlated]"
    } else {
        ""
    };
    format!(
        "regression ({kind}) in {} {}: `{}` (signature {}): observed {} vs {:.2} expected \
         (rate x{:.1}), p = {:.2e}{q}; {}{external}",
        r.service,
        r.revision,
        error_text(r),
        r.signature,
        r.observed,
        r.expected,
        r.rate_ratio,
        r.p_value,
        detection(r)
    )
}

/// The first cited `file:line` (or `file`) of a verdict.
pub fn citation(v: &Verdict) -> Option<String> {
    v.evidence.first().map(|e| match e.line {
        Some(l) => format!("{}:{l}", e.file),
        None => e.file.clone(),
    })
}

/// The decision in the words of the contract (`caused`, `not_caused`, …).
pub fn decision(d: Decision) -> &'static str {
    match d {
        Decision::Caused => "caused",
        Decision::NotCaused => "not_caused",
        Decision::Inconclusive => "inconclusive",
    }
}

/// A verdict in one line: decision, confidence, localization and the cited
/// `file:line`, with the cited frame when there is one.
pub fn verdict(v: &Verdict) -> String {
    let loc = v.localization.unwrap_or_default().as_str();
    let cite = match (
        citation(v),
        v.evidence.first().and_then(|e| e.frame.as_ref()),
    ) {
        (Some(c), Some(f)) => format!("cites {c} (frame {f})"),
        (Some(c), None) => format!("cites {c}"),
        (None, _) => "no line cited".to_owned(),
    };
    format!(
        "verdict {} (confidence {:.2}, localization {loc}) for {} {}: {cite}; decided {} (event time)",
        decision(v.decision),
        v.confidence,
        v.service,
        v.revision,
        event_time(v.decided_at_ms)
    )
}

/// The action in the words of the contract (`rollback`, `fix_forward`, …).
pub fn action_kind(a: ActionKind) -> &'static str {
    match a {
        ActionKind::Rollback => "rollback",
        ActionKind::FixForward => "fix_forward",
        ActionKind::Notify => "notify",
        ActionKind::None => "none",
    }
}

/// The status in the words of the contract (`dry_run`, `succeeded`, …).
pub fn action_status(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::Planned => "planned",
        ActionStatus::DryRun => "dry_run",
        ActionStatus::InProgress => "in_progress",
        ActionStatus::Succeeded => "succeeded",
        ActionStatus::Failed => "failed",
        ActionStatus::RecoveryVerified => "recovery_verified",
        ActionStatus::RecoveryFailed => "recovery_failed",
    }
}

/// An action in one line: kind, status, service, revision, target revision,
/// the rule that decided, its reason and the latest outcome.
pub fn action(a: &Action) -> String {
    let target = match (&a.target_revision, a.action) {
        (Some(t), _) => format!(" to {t}"),
        (None, ActionKind::Rollback) => " (no target revision known)".to_owned(),
        (None, _) => String::new(),
    };
    let pr = a
        .pr_url
        .as_ref()
        .map(|u| format!(" PR {u};"))
        .unwrap_or_default();
    let why = match a.reasons.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [first, .., last] => format!("{first}; then {last}"),
    };
    format!(
        "action {}{target} [{}] for {} {} by rule {}:{pr} {why}",
        action_kind(a.action),
        action_status(a.status),
        a.service,
        a.revision,
        a.rule,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfheal_schemas::{Evidence, Localization, RateBasis};

    const DEPLOY: i64 = 1_773_050_400_000; // 2026-03-09T10:00:00Z

    fn regression_at(detected: i64) -> Regression {
        Regression {
            signature: "b379e3b0a5102f78".into(),
            detected_at_ms: detected,
            deployed_at_ms: Some(DEPLOY),
            window_start_ms: DEPLOY,
            window_end_ms: detected,
            observed: 6,
            expected: 0.04,
            rate_ratio: 146.4,
            p_value: 7.37e-13,
            requests: Some(20),
            rate_basis: RateBasis::PerRequest,
            sample_message: "KeyError: 'usd'\nmore".into(),
            ..selfheal_schemas::testing::regression()
        }
    }

    #[test]
    fn a_regression_line_has_text_counts_and_both_times() {
        let line = regression(&regression_at(DEPLOY + 120_000));
        assert!(line.contains("checkout b"), "{line}");
        assert!(line.contains("`KeyError: 'usd'`"), "{line}");
        assert!(!line.contains("more"), "only the first line: {line}");
        assert!(line.contains("observed 6 vs 0.04 expected"), "{line}");
        assert!(
            line.contains("detected 2026-03-09T10:02:00Z (event time)"),
            "{line}"
        );
        assert!(line.contains("2m 0s after the deploy"), "{line}");
    }

    #[test]
    fn the_template_stands_in_for_a_missing_sample_and_long_text_is_cut() {
        let mut r = regression_at(DEPLOY);
        r.sample_message.clear();
        assert_eq!(error_text(&r), "KeyError: <str>");
        r.sample_message = "x".repeat(500);
        assert_eq!(error_text(&r).chars().count(), TEXT_LIMIT);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(3_723_000), "1h 2m");
        assert_eq!(duration(-5_000), "-5s");
        assert_eq!(duration(250), "250ms");
        assert_eq!(duration(0), "0s");
        assert_eq!(event_time(DEPLOY + 5), "2026-03-09T10:00:00.005Z");
    }

    #[test]
    fn a_verdict_cites_file_and_line_and_an_action_its_target() {
        let v = Verdict {
            id: "v".into(),
            confidence: 0.98,
            reasoning: String::new(),
            evidence: vec![Evidence {
                file: "src/checkout/pricing.py".into(),
                line: Some(216),
                hunk_header: None,
                frame: Some("quote".into()),
                token: None,
                strength: "line".into(),
            }],
            signatures: vec![],
            regression_ids: vec![],
            decided_at_ms: DEPLOY,
            localization: Some(Localization::Line),
            ..selfheal_schemas::testing::verdict()
        };
        let line = verdict(&v);
        assert!(line.contains("verdict caused (confidence 0.98"), "{line}");
        assert!(
            line.contains("cites src/checkout/pricing.py:216 (frame quote)"),
            "{line}"
        );
        let a = Action {
            id: "a".into(),
            service: "checkout".into(),
            revision: "b".into(),
            action: ActionKind::Rollback,
            status: ActionStatus::DryRun,
            rule: "caused_rollback".into(),
            reasons: vec!["rule caused_rollback matched".into()],
            executor: None,
            target_revision: Some("a".into()),
            pr_url: None,
            recovery_verified: None,
            signatures: vec![],
            verdict_id: None,
            decided_at_ms: DEPLOY,
            incident_id: None,
        };
        let line = action(&a);
        assert!(
            line.starts_with(
                "action rollback to a [dry_run] for checkout b by rule caused_rollback"
            ),
            "{line}"
        );
    }
}
