//! The table a person reads at the end of `selfheal backtest`: one row per
//! deploy that drew a regression, verdict or action (service, revision, its
//! regressions, the latest verdict with the cited line, the latest action with
//! its target). Pure: built from the backtest's [`Outcome`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use selfheal_common::describe;

use selfheal_pipeline::Outcome;

/// The longest cell (characters) before it is cut with "…".
const CELL: usize = 60;

#[derive(Default)]
struct Row {
    deployed_at_ms: Option<i64>,
    regressions: usize,
    first_error: Option<String>,
    verdict: Option<String>,
    action: Option<String>,
}

fn cut(s: &str) -> String {
    if s.chars().count() > CELL {
        let c: String = s.chars().take(CELL - 1).collect();
        format!("{c}…")
    } else {
        s.to_owned()
    }
}

fn rows(outcome: &Outcome) -> BTreeMap<(String, String), Row> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in &outcome.regressions {
        let row = rows
            .entry((r.service.clone(), r.revision.clone()))
            .or_default();
        row.regressions += 1;
        row.deployed_at_ms = row.deployed_at_ms.or(r.deployed_at_ms);
        row.first_error
            .get_or_insert_with(|| describe::error_text(r));
    }
    for v in &outcome.verdicts {
        let row = rows
            .entry((v.service.clone(), v.revision.clone()))
            .or_default();
        let cite = describe::citation(v).unwrap_or_else(|| "no line".to_owned());
        row.verdict = Some(format!(
            "{} {:.2} {cite}",
            describe::decision(v.decision),
            v.confidence
        ));
    }
    for a in &outcome.actions {
        let row = rows
            .entry((a.service.clone(), a.revision.clone()))
            .or_default();
        let target = a
            .target_revision
            .as_ref()
            .map(|t| format!(" → {t}"))
            .unwrap_or_default();
        row.action = Some(format!(
            "{}{target} ({})",
            describe::action_kind(a.action),
            a.rule
        ));
    }
    rows
}

/// The per-deploy table, or a line saying no deploy drew a regression.
pub(crate) fn deploy_table(outcome: &Outcome) -> String {
    let rows = rows(outcome);
    if rows.is_empty() {
        return "no deploy drew a regression, verdict or action\n".to_owned();
    }
    let header = [
        "service",
        "revision",
        "deployed (event time)",
        "regressions",
        "first error",
        "verdict",
        "action",
    ];
    let cells: Vec<[String; 7]> = rows
        .into_iter()
        .map(|((service, revision), r)| {
            [
                cut(&service),
                cut(&revision),
                r.deployed_at_ms
                    .map(describe::event_time)
                    .unwrap_or_else(|| "-".into()),
                r.regressions.to_string(),
                cut(r.first_error.as_deref().unwrap_or("-")),
                cut(r.verdict.as_deref().unwrap_or("-")),
                cut(r.action.as_deref().unwrap_or("-")),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[&str]| {
        let padded: Vec<String> = cols
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in &cells {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfheal_schemas::{Action, ActionKind, ActionStatus, Evidence, Regression, Verdict};

    fn regression(service: &str, revision: &str) -> Regression {
        Regression {
            id: "r".into(),
            service: service.into(),
            revision: revision.into(),
            previous_revision: None,
            signature: "s".into(),
            exception_type: None,
            detected_at_ms: 1_773_050_520_000,
            deployed_at_ms: Some(1_773_050_400_000),
            window_start_ms: 0,
            window_end_ms: 0,
            observed: 6,
            expected: 0.1,
            rate_ratio: 60.0,
            p_value: 1e-9,
            sample_message: "KeyError: 'usd'".into(),
            ..selfheal_schemas::testing::regression()
        }
    }

    #[test]
    fn one_row_per_deploy_with_its_regressions_verdict_and_action() {
        let outcome = Outcome {
            regressions: vec![
                regression("checkout", "b"),
                regression("checkout", "b"),
                regression("search", "x"),
            ],
            verdicts: vec![Verdict {
                id: "v".into(),
                blamed_revision: None,
                reasoning: String::new(),
                evidence: vec![Evidence {
                    file: "src/p.py".into(),
                    line: Some(23),
                    hunk_header: None,
                    frame: None,
                    token: None,
                    strength: "line".into(),
                }],
                signatures: vec![],
                regression_ids: vec![],
                decided_at_ms: 0,
                ..selfheal_schemas::testing::verdict()
            }],
            actions: vec![Action {
                id: "a".into(),
                service: "checkout".into(),
                revision: "b".into(),
                action: ActionKind::Rollback,
                status: ActionStatus::DryRun,
                rule: "caused_rollback".into(),
                reasons: vec![],
                executor: None,
                target_revision: Some("a".into()),
                pr_url: None,
                recovery_verified: None,
                signatures: vec![],
                verdict_id: None,
                decided_at_ms: 0,
                incident_id: None,
            }],
            ..Outcome::default()
        };
        let table = deploy_table(&outcome);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("service"), "{table}");
        let checkout = lines[1];
        for part in [
            "checkout",
            "2026-03-09T10:00:00Z",
            "  2  ",
            "KeyError: 'usd'",
            "caused 0.90 src/p.py:23",
            "rollback → a (caused_rollback)",
        ] {
            assert!(checkout.contains(part), "`{part}` missing: {table}");
        }
        assert!(
            lines[2].starts_with("search") && lines[2].ends_with('-'),
            "{table}"
        );
    }

    #[test]
    fn an_empty_outcome_says_so() {
        assert!(deploy_table(&Outcome::default()).starts_with("no deploy"));
    }
}
