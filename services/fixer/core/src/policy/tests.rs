//! The policy table, the safety rails and the recovery check.

use super::*;
use crate::config::FixerServiceConfig;
use crate::config::{DispatcherKind, RollbackExecutorKind};
use selfheal_schemas::RateBasis;

const T0: i64 = 1_773_050_400_000;

fn deploy(rev: &str, prev: Option<&str>, at: i64) -> AnyEvent {
    AnyEvent::Deploy(Deploy {
        revision: rev.into(),
        previous_revision: prev.map(Into::into),
        repo: Some("/srv/checkout.git".into()),
        deployed_at_ms: at,
        ..selfheal_schemas::testing::deploy()
    })
}

fn regression(id: &str, rev: &str, kind: RegressionKind) -> Regression {
    Regression {
        id: id.into(),
        revision: rev.into(),
        kind,
        signature: format!("sig-{id}"),
        ..selfheal_schemas::testing::regression()
    }
}

fn verdict(rev: &str, decision: Decision, confidence: f64, regs: &[&str]) -> Verdict {
    Verdict {
        id: format!("v-{rev}-{}", regs.join("-")),
        revision: rev.into(),
        blamed_revision: (decision == Decision::Caused).then(|| rev.to_owned()),
        decision,
        confidence,
        signatures: regs.iter().map(|r| format!("sig-{r}")).collect(),
        regression_ids: regs.iter().map(|r| (*r).to_owned()).collect(),
        ..selfheal_schemas::testing::verdict()
    }
}

fn policy() -> Policy {
    Policy::new(FixerConfig::default())
}

fn live() -> FixerConfig {
    let mut c = FixerConfig {
        dry_run: false,
        ..FixerConfig::default()
    };
    c.rollback.executor = RollbackExecutorKind::Command;
    c.dispatch.dispatcher = DispatcherKind::Revert;
    c
}

/// Feeds the deploy of `b` (previous `a`) and a new-signature regression `r1`.
fn seeded(config: FixerConfig) -> Policy {
    let mut p = Policy::new(config);
    p.on_event(&deploy("a", None, T0 - 86_400_000));
    p.on_event(&deploy("b", Some("a"), T0));
    p.on_event(&AnyEvent::Regression(regression(
        "r1",
        "b",
        RegressionKind::New,
    )));
    p
}

fn decide(p: &mut Policy, v: &Verdict) -> Option<Decided> {
    let mut out = p.on_event(&AnyEvent::Verdict(v.clone()));
    assert!(out.len() <= 1, "{out:?}");
    out.pop()
}

fn with_requests(mut r: Regression, requests: i64, observed: i64) -> Regression {
    r.requests = Some(requests);
    r.observed = observed;
    r.rate_basis = RateBasis::PerRequest;
    r
}

#[test]
fn caused_rolls_back_to_previous_revision_in_dry_run() {
    let mut p = seeded(FixerConfig::default());
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    let a = &d.action;
    assert_eq!(a.action, ActionKind::Rollback);
    assert_eq!(a.target_revision.as_deref(), Some("a"));
    assert_eq!(a.status, ActionStatus::DryRun);
    assert_eq!(a.rule, "caused_rollback");
    assert_eq!(
        a.decided_at_ms,
        T0 + 120_000,
        "event time, not the wall clock"
    );
    assert!(
        a.executor.is_none() && d.job.is_none(),
        "dry run executes nothing"
    );
    assert!(a.reasons[0].contains("caused_rollback"), "{:?}", a.reasons);
    assert!(a.reasons.iter().any(|r| r.contains("severity unknown")));
}

#[test]
fn not_caused_never_rolls_back_even_if_a_rule_says_so() {
    let mut config = live();
    config.rules.insert(
        0,
        FixerRule {
            name: "reckless".into(),
            ..FixerRule::defaults().remove(2)
        },
    );
    config.rules[0].decisions = vec![];
    config.rules[0].severities = vec![];
    config.rules[0].externally_correlated = None;
    let mut p = seeded(config);
    let d = decide(&mut p, &verdict("b", Decision::NotCaused, 1.0, &["r1"])).unwrap();
    assert_eq!(d.action.action, ActionKind::None);
    assert_eq!(d.action.rule, "not_caused_never_rolls_back");
    assert!(d.job.is_none());
}

#[test]
fn default_not_caused_is_none() {
    let mut p = seeded(FixerConfig::default());
    let d = decide(&mut p, &verdict("b", Decision::NotCaused, 1.0, &["r1"])).unwrap();
    assert_eq!(d.action.action, ActionKind::None);
    assert_eq!(d.action.rule, "not_caused_never_rolls_back");
}

#[test]
fn fast_burn_rolls_back_a_caused_deploy_even_when_unlocalized() {
    let mut p = seeded(live());
    // 300 errors in 10 000 requests = 3% ≫ 14.4 × 0.1% budget.
    let r = with_requests(regression("r2", "b", RegressionKind::Spike), 10_000, 300);
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.7, &["r2"])).unwrap();
    assert_eq!(d.action.action, ActionKind::Rollback);
    assert_eq!(d.action.rule, "fast_burn_rollback");
    assert_eq!(d.action.status, ActionStatus::Planned);
    assert_eq!(d.action.executor.as_deref(), Some("rollback_command"));
    assert_eq!(
        d.job,
        Some(Job::Rollback(RollbackJob {
            action_id: d.action.id.clone(),
            service: "checkout".into(),
            revision: "b".into(),
            target_revision: "a".into(),
        }))
    );
    assert!(
        d.action
            .reasons
            .iter()
            .any(|r| r.contains("burn rate 30.0")),
        "{:?}",
        d.action.reasons
    );
}

#[test]
fn fast_burn_of_an_inconclusive_incident_pages_instead_of_rolling_back() {
    let mut p = seeded(live());
    let r = with_requests(regression("r2", "b", RegressionKind::Spike), 10_000, 300);
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Inconclusive, 0.5, &["r2"])).unwrap();
    assert_eq!(d.action.action, ActionKind::Notify);
    assert_eq!(d.action.rule, "inconclusive_notify");
}

#[test]
fn a_hold_asked_by_the_detector_delays_the_action_not_the_report() {
    let mut p = seeded(live());
    let mut r = with_requests(regression("r2", "b", RegressionKind::Spike), 10_000, 300);
    r.hold_remediation_until_ms = Some(T0 + 600_000);
    p.on_event(&AnyEvent::Regression(r));
    let v = verdict("b", Decision::Caused, 0.9, &["r2"]);
    assert!(p.on_event(&AnyEvent::Verdict(v)).is_empty(), "held");
    // Event time moves, still inside the hold.
    assert!(p.on_event(&traffic_b(T0 + 300_000)).is_empty());
    let out = p.on_event(&traffic_b(T0 + 600_000));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].action.action, ActionKind::Rollback);
    assert_eq!(out[0].action.decided_at_ms, T0 + 600_000);
}

#[test]
fn a_held_verdict_is_superseded_when_its_regression_went_away() {
    let mut p = seeded(live());
    let mut r = with_requests(regression("r2", "b", RegressionKind::Spike), 10_000, 300);
    r.hold_remediation_until_ms = Some(T0 + 600_000);
    p.on_event(&AnyEvent::Regression(r.clone()));
    let mut v = verdict("b", Decision::Caused, 0.9, &["r2"]);
    v.incident_id = Some("inc-b".into());
    assert!(p.on_event(&AnyEvent::Verdict(v.clone())).is_empty(), "held");
    // The detector's update (it went away), then triage's new verdict of
    // the same incident, both before the hold ends.
    r.externally_correlated = true;
    r.hold_remediation_until_ms = None;
    r.detected_at_ms = T0 + 420_000;
    p.on_event(&AnyEvent::Regression(r));
    let mut update = verdict("b", Decision::NotCaused, 0.8, &["r2"]);
    update.id = "v-b-update".into();
    update.incident_id = v.incident_id.clone();
    update.decided_at_ms = T0 + 420_000;
    let out = p.on_event(&AnyEvent::Verdict(update));
    assert!(
        out.iter().all(|d| d.action.action != ActionKind::Rollback),
        "{out:?}"
    );
    // The hold's end releases nothing: the held verdict was superseded.
    let out = p.on_event(&traffic_b(T0 + 600_000));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_held_verdict_whose_regressions_went_away_is_not_acted_on_at_the_hold_end() {
    let mut p = seeded(live());
    let mut r = with_requests(regression("r2", "b", RegressionKind::Spike), 10_000, 300);
    r.hold_remediation_until_ms = Some(T0 + 600_000);
    p.on_event(&AnyEvent::Regression(r.clone()));
    let v = verdict("b", Decision::Caused, 0.9, &["r2"]);
    assert!(p.on_event(&AnyEvent::Verdict(v)).is_empty(), "held");
    // The detector's update arrives; triage's new verdict has not yet.
    r.externally_correlated = true;
    r.hold_remediation_until_ms = None;
    p.on_event(&AnyEvent::Regression(r));
    let out = p.on_event(&traffic_b(T0 + 600_000));
    assert!(out.is_empty(), "{out:?}");
}

fn traffic_b(at: i64) -> AnyEvent {
    AnyEvent::Traffic(Traffic {
        service: "checkout".into(),
        revision: "b".into(),
        window_start_ms: at - 60_000,
        window_s: 60,
        requests: 1000,
        errors: None,
    })
}

#[test]
fn burn_rate_from_traffic_events_when_the_regression_has_no_requests() {
    let mut p = seeded(FixerConfig::default());
    for i in 0..2 {
        p.on_event(&AnyEvent::Traffic(Traffic {
            service: "checkout".into(),
            revision: "b".into(),
            window_start_ms: T0 + i * 30_000,
            window_s: 30,
            requests: 100,
            errors: None,
        }));
    }
    // 5 errors / 200 requests = 2.5% → burn 25: high.
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.65, &["r1"])).unwrap();
    assert_eq!(d.action.rule, "fast_burn_rollback");
}

#[test]
fn externally_correlated_fast_burn_does_not_roll_back_an_inconclusive_deploy() {
    let mut p = seeded(FixerConfig::default());
    let mut r = with_requests(regression("r2", "b", RegressionKind::Spike), 10_000, 300);
    r.externally_correlated = true;
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Inconclusive, 0.3, &["r2"])).unwrap();
    assert_eq!(d.action.action, ActionKind::Notify);
    assert_eq!(d.action.rule, "inconclusive_notify");
}

#[test]
fn new_crash_signature_is_high_severity_without_traffic() {
    let mut p = seeded(FixerConfig::default());
    let mut r = regression("r2", "b", RegressionKind::New);
    r.template = "thread 'main' panicked at src/lib.rs:3".into();
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.7, &["r2"])).unwrap();
    assert_eq!(d.action.rule, "fast_burn_rollback");
}

#[test]
fn well_attributed_low_severity_fixes_forward() {
    let mut p = seeded(live());
    // 5 errors in 100 000 requests = 0.005%: burn 0.05.
    let r = with_requests(regression("r2", "b", RegressionKind::Spike), 100_000, 5);
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r2"])).unwrap();
    assert_eq!(d.action.action, ActionKind::FixForward);
    assert_eq!(d.action.rule, "well_attributed_fix_forward");
    assert_eq!(d.action.executor.as_deref(), Some("revert"));
    let Some(Job::FixForward(req)) = d.job else {
        panic!("no fix-forward job")
    };
    assert_eq!(req.evidence[0].line, Some(216));
    assert_eq!(req.previous_revision.as_deref(), Some("a"));
    assert_eq!(req.repo.as_deref(), Some("/srv/checkout.git"));
    assert_eq!(req.regressions.len(), 1);
}

#[test]
fn weakly_attributed_low_severity_rolls_back() {
    let mut p = seeded(FixerConfig::default());
    let r = with_requests(regression("r2", "b", RegressionKind::Spike), 100_000, 5);
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.6, &["r2"])).unwrap();
    assert_eq!(d.action.rule, "caused_rollback");
}

#[test]
fn medium_burn_rolls_back_even_when_well_attributed() {
    let mut p = seeded(FixerConfig::default());
    // 10 errors in 3 600 requests: 0.28%, burn 2.8: over budget, not a fast burn.
    let r = with_requests(regression("r2", "b", RegressionKind::New), 3_600, 10);
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r2"])).unwrap();
    assert_eq!(d.action.rule, "caused_rollback");
    assert!(
        d.action
            .reasons
            .iter()
            .any(|r| r.contains("severity medium")),
        "{:?}",
        d.action.reasons
    );
}

#[test]
fn per_service_slo_changes_severity() {
    let mut config = FixerConfig::default();
    config.services.insert(
        "checkout".into(),
        FixerServiceConfig {
            slo: Some(0.99999),
            ..Default::default()
        },
    );
    let mut p = seeded(config);
    // 5 / 100 000 against a 0.001% budget: burn 5 … still < 14.4; 50 errors: 50.
    let r = with_requests(regression("r2", "b", RegressionKind::Spike), 100_000, 50);
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.7, &["r2"])).unwrap();
    assert_eq!(d.action.rule, "fast_burn_rollback");
}

#[test]
fn build_failure_fixes_forward() {
    let mut p = seeded(FixerConfig::default());
    p.on_event(&AnyEvent::Regression(regression(
        "rb",
        "b",
        RegressionKind::BuildFailure,
    )));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 1.0, &["rb"])).unwrap();
    assert_eq!(d.action.action, ActionKind::FixForward);
    assert_eq!(d.action.rule, "build_failure_fix_forward");
}

#[test]
fn inconclusive_and_low_confidence_notify() {
    let mut p = seeded(FixerConfig::default());
    let d = decide(&mut p, &verdict("b", Decision::Inconclusive, 0.3, &["r1"])).unwrap();
    assert_eq!(d.action.action, ActionKind::Notify);
    let mut p = seeded(FixerConfig::default());
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.2, &["r1"])).unwrap();
    assert_eq!(d.action.rule, "caused_low_confidence_notify");
}

#[test]
fn caused_without_known_previous_revision_fixes_forward_when_a_line_is_cited() {
    let mut p = policy();
    // The deploy is known but names no previous revision.
    p.on_event(&deploy("b", None, T0));
    let mut v = verdict("b", Decision::Caused, 0.9, &["unknown"]);
    v.regression_ids.clear();
    let d = decide(&mut p, &v).unwrap();
    assert_eq!(d.action.action, ActionKind::FixForward);
    assert_eq!(d.action.rule, "caused_no_previous_revision");
    // Without a cited line there is nothing to fix forward from: notify.
    let mut p = policy();
    p.on_event(&deploy("b", None, T0));
    let mut v = verdict("b", Decision::Caused, 0.9, &["unknown"]);
    v.regression_ids.clear();
    v.evidence.clear();
    let d = decide(&mut p, &v).unwrap();
    assert_eq!(d.action.action, ActionKind::Notify);
}

#[test]
fn duplicate_verdicts_give_one_action() {
    let mut p = seeded(live());
    let v = verdict("b", Decision::Caused, 0.9, &["r1"]);
    assert!(decide(&mut p, &v).is_some());
    assert!(decide(&mut p, &v).is_none());
    assert!(decide(&mut p, &verdict("b", Decision::Caused, 0.99, &["r1"])).is_none());
    assert!(decide(&mut p, &verdict("b", Decision::Inconclusive, 0.1, &["r1"])).is_none());
}

#[test]
fn a_notification_is_escalated_once_by_a_stronger_verdict() {
    let mut p = seeded(live());
    let first = decide(&mut p, &verdict("b", Decision::Inconclusive, 0.3, &["r1"])).unwrap();
    assert_eq!(first.action.action, ActionKind::Notify);
    assert!(decide(&mut p, &verdict("b", Decision::Inconclusive, 0.4, &["r1"])).is_none());
    let second = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    assert_eq!(second.action.action, ActionKind::Rollback);
    assert_ne!(second.action.id, first.action.id);
    assert!(decide(&mut p, &verdict("b", Decision::Caused, 0.95, &["r1"])).is_none());
}

#[test]
fn duplicates_after_a_restart_give_no_action() {
    let mut p = seeded(live());
    let v = verdict("b", Decision::Caused, 0.9, &["r1"]);
    let d = decide(&mut p, &v).unwrap();
    // A fresh process restores from the actions topic, then sees the verdict again.
    let mut restarted = seeded(live());
    restarted.restore(&d.action);
    let mut done = d.action.clone();
    done.status = ActionStatus::Succeeded;
    restarted.restore(&done);
    assert!(restarted.finish_restore().is_empty());
    assert!(decide(&mut restarted, &v).is_none());
}

#[test]
fn restart_mid_action_marks_it_failed_and_does_not_rerun() {
    let mut p = seeded(live());
    let v = verdict("b", Decision::Caused, 0.9, &["r1"]);
    let d = decide(&mut p, &v).unwrap();
    let mut running = d.action.clone();
    running.status = ActionStatus::InProgress;

    let mut restarted = seeded(live());
    restarted.restore(&running);
    restarted.restore(&d.action); // older status, arriving late: ignored
    let out = restarted.finish_restore();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].action.id, d.action.id);
    assert_eq!(out[0].action.status, ActionStatus::Failed);
    assert!(out[0].job.is_none());
    assert!(out[0].action.reasons.last().unwrap().contains("restarted"));
    assert!(decide(&mut restarted, &v).is_none());
    assert!(restarted.finish_restore().is_empty(), "reported once");
}

#[test]
fn rolls_back_past_a_flagged_revision_to_the_last_known_good_one() {
    let mut p = Policy::new(live());
    p.on_event(&deploy("z", None, T0 - 2 * 86_400_000));
    p.on_event(&deploy("a", Some("z"), T0 - 86_400_000));
    p.on_event(&deploy("b", Some("a"), T0));
    p.on_event(&AnyEvent::Regression(regression(
        "ra",
        "a",
        RegressionKind::Spike,
    )));
    p.on_event(&AnyEvent::Regression(regression(
        "r1",
        "b",
        RegressionKind::New,
    )));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    assert_eq!(
        d.action.action,
        ActionKind::Rollback,
        "{:?}",
        d.action.reasons
    );
    assert_eq!(d.action.target_revision.as_deref(), Some("z"));
    assert!(
        d.action
            .reasons
            .iter()
            .any(|r| r.contains("last known good") && r.contains("a (")),
        "{:?}",
        d.action.reasons
    );

    // Skipping switched off: the old rail (fix forward instead).
    let mut p = Policy::new(FixerConfig {
        max_rollback_skip: 0,
        ..live()
    });
    p.on_event(&deploy("z", None, T0 - 2 * 86_400_000));
    p.on_event(&deploy("a", Some("z"), T0 - 86_400_000));
    p.on_event(&deploy("b", Some("a"), T0));
    p.on_event(&AnyEvent::Regression(regression(
        "ra",
        "a",
        RegressionKind::Spike,
    )));
    p.on_event(&AnyEvent::Regression(regression(
        "r1",
        "b",
        RegressionKind::New,
    )));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    assert_eq!(d.action.rule, "rollback_target_flagged");
}

#[test]
fn never_rolls_back_onto_a_flagged_revision() {
    let mut p = seeded(live());
    // The previous revision `a` had a regression of its own.
    p.on_event(&AnyEvent::Regression(regression(
        "ra",
        "a",
        RegressionKind::Spike,
    )));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    // No rollback onto `a`: the cited change is reverted forward instead.
    assert_eq!(d.action.action, ActionKind::FixForward);
    assert_eq!(d.action.rule, "rollback_target_flagged");
    assert_eq!(d.action.target_revision, None);
}

#[test]
fn a_ruled_out_regression_unflags_its_revision() {
    let mut p = seeded(live());
    p.on_event(&AnyEvent::Regression(regression(
        "ra",
        "a",
        RegressionKind::Spike,
    )));
    decide(&mut p, &verdict("a", Decision::NotCaused, 0.9, &["ra"]));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    assert_eq!(d.action.action, ActionKind::Rollback);
}

#[test]
fn never_rolls_back_past_a_newer_deploy() {
    let mut p = seeded(live());
    p.on_event(&deploy("c", Some("b"), T0 + 90_000));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    assert_eq!(d.action.rule, "rollback_superseded");
    assert_eq!(d.action.action, ActionKind::Notify);
}

#[test]
fn cooldown_between_actions_on_a_service() {
    let mut p = seeded(live());
    decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    p.on_event(&deploy("c", Some("a"), T0 + 130_000));
    p.on_event(&AnyEvent::Regression(regression(
        "r3",
        "c",
        RegressionKind::New,
    )));
    let mut v = verdict("c", Decision::Caused, 0.9, &["r3"]);
    v.decided_at_ms = T0 + 200_000;
    let d = decide(&mut p, &v).unwrap();
    assert_eq!(d.action.rule, "cooldown");
    // After the cooldown it acts again (onto `a`, not the rolled-back `b`).
    p.on_event(&deploy("d", Some("a"), T0 + 3_000_000));
    p.on_event(&AnyEvent::Regression(regression(
        "r4",
        "d",
        RegressionKind::New,
    )));
    let mut v = verdict("d", Decision::Caused, 0.9, &["r4"]);
    v.decided_at_ms = T0 + 3_100_000;
    assert_eq!(decide(&mut p, &v).unwrap().action.rule, "caused_rollback");
}

fn low_severity_fix(p: &mut Policy, service: &str, at: i64) -> Decided {
    let mut r = with_requests(
        regression(&format!("r-{service}"), "b", RegressionKind::Spike),
        100_000,
        5,
    );
    r.service = service.into();
    p.on_event(&AnyEvent::Regression(r));
    let mut v = verdict("b", Decision::Caused, 0.9, &[&format!("r-{service}")]);
    v.service = service.into();
    v.decided_at_ms = at;
    decide(p, &v).unwrap()
}

#[test]
fn concurrent_agent_runs_are_capped() {
    let mut p = Policy::new(live());
    let a = low_severity_fix(&mut p, "s1", T0);
    let b = low_severity_fix(&mut p, "s2", T0 + 1);
    assert_eq!(a.action.action, ActionKind::FixForward);
    assert_eq!(b.action.action, ActionKind::FixForward);
    let c = low_severity_fix(&mut p, "s3", T0 + 2);
    assert_eq!(c.action.rule, "agent_runs_capped");
    assert_eq!(c.action.action, ActionKind::Notify);
    // One finishes: capacity frees up.
    let mut done = a.action.clone();
    done.status = ActionStatus::Succeeded;
    p.on_event(&AnyEvent::Action(done));
    let d = low_severity_fix(&mut p, "s4", T0 + 3);
    assert_eq!(d.action.action, ActionKind::FixForward);
}

#[test]
fn dispatches_per_hour_are_capped_in_event_time() {
    let mut config = live();
    config.max_dispatches_per_hour = 2;
    config.max_concurrent_agent_runs = 100;
    let mut p = Policy::new(config);
    assert_eq!(
        low_severity_fix(&mut p, "s1", T0).action.action,
        ActionKind::FixForward
    );
    assert_eq!(
        low_severity_fix(&mut p, "s2", T0 + 1000).action.action,
        ActionKind::FixForward
    );
    assert_eq!(
        low_severity_fix(&mut p, "s3", T0 + 2000).action.rule,
        "dispatch_rate_capped"
    );
    assert_eq!(
        low_severity_fix(&mut p, "s4", T0 + HOUR_MS + 1)
            .action
            .action,
        ActionKind::FixForward
    );
}

#[test]
fn without_an_executor_the_action_is_planned_not_claimed_done() {
    let mut p = seeded(FixerConfig {
        dry_run: false,
        ..FixerConfig::default()
    });
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    assert_eq!(d.action.status, ActionStatus::Planned);
    assert!(d.job.is_none());
    assert!(d
        .action
        .reasons
        .iter()
        .any(|r| r.contains("no rollback executor")));
}

#[test]
fn rules_are_configurable_from_toml() {
    let text = r#"
        [[rules]]
        name = "always_notify"
        action = "notify"
    "#;
    #[derive(serde::Deserialize)]
    struct Rules {
        rules: Vec<FixerRule>,
    }
    let rules: Rules = toml::from_str(text).unwrap();
    let mut p = seeded(FixerConfig {
        rules: rules.rules,
        ..FixerConfig::default()
    });
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    assert_eq!(d.action.rule, "always_notify");
    assert_eq!(d.action.action, ActionKind::Notify);
}

fn count(sig: &str, rev: &str, at: i64, n: i64) -> AnyEvent {
    AnyEvent::SignatureCount(SignatureCount {
        service: "checkout".into(),
        revision: rev.into(),
        signature: sig.into(),
        template: "KeyError".into(),
        exception_type: None,
        level: "error".into(),
        count: n,
        first_seen_ms: at,
        last_seen_ms: at,
        sample_message: String::new(),
        sample_stack: None,
        frames: vec![],
        trace_id: None,
    })
}

fn traffic(at: i64) -> AnyEvent {
    AnyEvent::Traffic(Traffic {
        service: "checkout".into(),
        revision: "a".into(),
        window_start_ms: at,
        window_s: 60,
        requests: 1000,
        errors: None,
    })
}

/// A live rollback decided and reported succeeded by the executor.
fn rolled_back() -> (Policy, Action) {
    let mut p = seeded(live());
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    let mut ok = d.action.clone();
    ok.status = ActionStatus::Succeeded;
    assert!(p.on_event(&AnyEvent::Action(ok.clone())).is_empty());
    (p, ok)
}

#[test]
fn recovery_verified_when_the_signatures_stop() {
    let (mut p, ok) = rolled_back();
    let start = ok.decided_at_ms + 60_000;
    // Errors during the grace period (the rollout) do not count.
    p.on_event(&count("sig-r1", "b", ok.decided_at_ms + 1000, 4));
    let mut out = Vec::new();
    for m in 0..6 {
        out.extend(p.on_event(&traffic(start + m * 60_000)));
    }
    assert_eq!(out.len(), 2, "recovery, then the fix: {out:?}");
    let a = &out[0].action;
    assert_eq!(a.status, ActionStatus::RecoveryVerified);
    assert_eq!(a.recovery_verified, Some(true));
    assert_eq!(a.id, ok.id);
    assert_eq!(a.decided_at_ms, start + 300_000);
    // Heal, then fix: the rolled-back change is fixed forward (revert dispatcher).
    let fix = &out[1];
    assert_eq!(fix.action.action, ActionKind::FixForward);
    assert_eq!(fix.action.status, ActionStatus::Planned);
    assert_eq!(fix.action.rule, "fix_after_rollback");
    assert_eq!(fix.action.executor.as_deref(), Some("revert"));
    assert_ne!(fix.action.id, ok.id);
    assert_eq!(fix.action.verdict_id, ok.verdict_id);
    let Some(Job::FixForward(req)) = &fix.job else {
        panic!("a fix-forward job: {fix:?}");
    };
    assert_eq!(req.action_id, fix.action.id);
    assert_eq!(req.previous_revision.as_deref(), Some("a"));
    assert_eq!(req.evidence[0].line, Some(216));
    assert_eq!(req.repo.as_deref(), Some("/srv/checkout.git"));
    // Nothing more afterwards, not even for a later verdict.
    assert!(p.on_event(&traffic(start + 600_000)).is_empty());
    let mut later = verdict("b", Decision::Caused, 0.95, &["r1"]);
    later.id = "v-later".into();
    assert!(decide(&mut p, &later).is_none());
}

#[test]
fn no_fix_after_rollback_when_disabled_or_without_a_dispatcher() {
    for config in [
        FixerConfig {
            dispatch: crate::config::DispatchConfig {
                after_rollback: false,
                dispatcher: DispatcherKind::Revert,
                ..Default::default()
            },
            ..live()
        },
        FixerConfig {
            dispatch: Default::default(),
            ..live()
        },
    ] {
        let mut p = seeded(config);
        let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
        let mut ok = d.action.clone();
        ok.status = ActionStatus::Succeeded;
        p.on_event(&AnyEvent::Action(ok.clone()));
        let out = p.on_event(&traffic(ok.decided_at_ms + 400_000));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].action.status, ActionStatus::RecoveryVerified);
    }
}

/// Regression test: the window used to start `grace_ms` after the *decision*,
/// whose event time trails the stream by the detector's lateness; errors the
/// bad revision logged before the rollback ran were counted as a failed recovery.
#[test]
fn recovery_window_starts_after_the_rollback_completed_not_at_the_decision() {
    let mut p = seeded(live());
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    let decided = d.action.decided_at_ms;
    // The stream is already 4 minutes past the decision when the executor's
    // success is read; the bad revision erred until then.
    p.on_event(&traffic(decided + 3 * 60_000));
    p.on_event(&count("sig-r1", "b", decided + 90_000, 5));
    p.on_event(&count("sig-r1", "b", decided + 200_000, 5));
    let mut ok = d.action.clone();
    ok.status = ActionStatus::Succeeded;
    assert!(p.on_event(&AnyEvent::Action(ok)).is_empty());
    let completed = decided + 4 * 60_000;
    // Before the window (completed + grace + 5 min) ends, nothing is concluded.
    assert!(p
        .on_event(&traffic(completed + 60_000 + 240_000 - 60_000))
        .is_empty());
    let out = p.on_event(&traffic(completed + 60_000 + 240_000));
    assert_eq!(
        out[0].action.status,
        ActionStatus::RecoveryVerified,
        "{out:?}"
    );
    assert_eq!(out[0].action.decided_at_ms, completed + 60_000 + 300_000);
}

#[test]
fn late_shipped_errors_of_the_rolled_back_revision_do_not_fail_recovery() {
    let (mut p, ok) = rolled_back();
    let start = ok.decided_at_ms + 60_000;
    // Logged by `b` before it was replaced, delivered with a later stamp.
    p.on_event(&count("sig-r1", "b", start + 10_000, 6));
    let out = p.on_event(&traffic(start + 300_000));
    assert_eq!(
        out[0].action.status,
        ActionStatus::RecoveryVerified,
        "{out:?}"
    );
}

#[test]
fn recovery_failed_escalates_when_the_signatures_persist() {
    let (mut p, ok) = rolled_back();
    let start = ok.decided_at_ms + 60_000;
    // The error persists on the revision rolled back to (`a`).
    p.on_event(&count("sig-r1", "a", start + 10_000, 3));
    // A duplicate delivery of the same count is not counted twice.
    p.on_event(&count("sig-r1", "a", start + 10_000, 3));
    let out = p.on_event(&traffic(start + 300_000));
    assert_eq!(
        out.len(),
        1,
        "recovery failed, and no fix of a change that did not heal: {out:?}"
    );
    let a = &out[0].action;
    assert_eq!(a.status, ActionStatus::RecoveryFailed);
    assert_eq!(a.recovery_verified, Some(false));
    assert!(
        a.reasons
            .iter()
            .any(|r| r.contains("not recovered: 3 event")),
        "{:?}",
        a.reasons
    );
    assert!(a.reasons.last().unwrap().contains("escalated"));
}

/// A rollback whose recovery failed, with triage's revised verdict after it.
fn failed_experiment(config: FixerConfig) -> (Policy, Verdict) {
    let mut p = seeded(config);
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r1"])).unwrap();
    let mut ok = d.action.clone();
    ok.status = ActionStatus::Succeeded;
    p.on_event(&AnyEvent::Action(ok.clone()));
    let start = ok.decided_at_ms + 60_000;
    p.on_event(&count("sig-r1", "a", start + 10_000, 9));
    let out = p.on_event(&traffic(start + 300_000));
    assert_eq!(out[0].action.status, ActionStatus::RecoveryFailed);
    let mut revised = verdict("b", Decision::NotCaused, 0.9, &["r1"]);
    revised.id = "v-revised".into();
    revised.decided_at_ms = start + 300_000;
    (p, revised)
}

#[test]
fn errors_persisting_after_a_rollback_notify_once_without_flapping() {
    let (mut p, revised) = failed_experiment(live());
    let d = decide(&mut p, &revised).expect("answered");
    assert_eq!(d.action.rule, "persisted_after_rollback");
    assert_eq!(d.action.action, ActionKind::Notify);
    assert!(d.job.is_none());
    assert!(
        d.action.reasons[0].contains("persisted on a"),
        "{:?}",
        d.action.reasons
    );
    // The same revision again (a duplicate or a later update): nothing more.
    assert!(decide(&mut p, &revised).is_none());
    let mut caused_again = revised.clone();
    caused_again.decision = Decision::Caused;
    assert!(decide(&mut p, &caused_again).is_none(), "no flapping back");
}

#[test]
fn errors_persisting_after_a_rollback_restore_the_revision_when_asked() {
    let mut config = live();
    config.restore_after_failed_rollback = true;
    let (mut p, revised) = failed_experiment(config);
    let d = decide(&mut p, &revised).expect("answered");
    assert_eq!(d.action.action, ActionKind::Rollback);
    assert_eq!(d.action.target_revision.as_deref(), Some("b"));
    assert_eq!(
        d.job,
        Some(Job::Rollback(RollbackJob {
            action_id: d.action.id.clone(),
            service: "checkout".into(),
            revision: "a".into(),
            target_revision: "b".into(),
        }))
    );
    assert!(decide(&mut p, &revised).is_none());
}

#[test]
fn recovery_tolerates_the_baseline_rate_of_a_spike() {
    let mut p = seeded(live());
    // A spike: baseline 10 per 10 000 requests, observed 300.
    let mut r = with_requests(regression("r2", "b", RegressionKind::Spike), 10_000, 300);
    r.expected = 10.0;
    p.on_event(&AnyEvent::Regression(r));
    let d = decide(&mut p, &verdict("b", Decision::Caused, 0.9, &["r2"])).unwrap();
    let mut ok = d.action.clone();
    ok.status = ActionStatus::Succeeded;
    p.on_event(&AnyEvent::Action(ok.clone()));
    let start = ok.decided_at_ms + 60_000;
    // 5 × 1000 requests → baseline predicts 5 errors; 7 ≤ 1.5 × 5.
    p.on_event(&count("sig-r2", "a", start + 1000, 7));
    let mut out = Vec::new();
    for m in 0..6 {
        out.extend(p.on_event(&traffic(start + m * 60_000)));
    }
    assert_eq!(
        out[0].action.status,
        ActionStatus::RecoveryVerified,
        "{out:?}"
    );
}

#[test]
fn a_restored_succeeded_rollback_resumes_its_recovery_watch() {
    let (_, ok) = rolled_back();
    let mut restarted = seeded(live());
    restarted.restore(&ok);
    assert!(restarted.finish_restore().is_empty());
    let out = restarted.on_event(&traffic(ok.decided_at_ms + 400_000));
    assert_eq!(out[0].action.status, ActionStatus::RecoveryVerified);
}

#[test]
fn backtest_replays_identically() {
    let events = [
        deploy("a", None, T0 - 1000),
        deploy("b", Some("a"), T0),
        AnyEvent::Regression(regression("r1", "b", RegressionKind::New)),
        AnyEvent::Verdict(verdict("b", Decision::Caused, 0.9, &["r1"])),
    ];
    let run = || {
        let mut p = policy();
        events
            .iter()
            .flat_map(|e| p.actions_for(e))
            .map(|a| backtest_record(&a))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["action"], "rollback");
    assert_eq!(first[0]["service"], "checkout");
    assert_eq!(first[0]["decided_at"], T0 + 120_000);
    assert!(first[0]["reasons"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
}

#[test]
fn a_verdict_read_before_its_deploy_and_regressions_waits_for_them() {
    let mut p = policy();
    let v = verdict("b", Decision::Caused, 0.9, &["r1"]);
    assert!(
        p.on_event(&AnyEvent::Verdict(v)).is_empty(),
        "held, not decided blind"
    );
    assert!(
        p.on_event(&deploy("b", Some("a"), T0)).len() == 1,
        "decided once the deploy arrives"
    );
    let a = p
        .action(&p.acted[&("checkout".to_owned(), "b".to_owned())][0])
        .unwrap();
    assert_ne!(a.rule, "caused_no_previous_revision");
}

/// A latency regression's recovery is judged on the latency: the slow
/// requests of its histograms after the rollback, against its baseline
/// share of them.
#[test]
fn a_latency_rollback_recovers_when_the_slow_share_returns() {
    use selfheal_schemas::{LatencyHistogram, MetricDetail};
    let bounds = vec![0.1, 0.25, 0.5, 1.0];
    let series = selfheal_schemas::ids::metric_series_id(
        "http.server.request.duration",
        Some("/quote"),
        &bounds,
    );
    let mut r = regression("r1", "b", RegressionKind::Latency);
    r.signature = series.clone();
    r.rate_basis = RateBasis::PerRequest;
    r.requests = Some(1000);
    r.observed = 300;
    r.expected = 10.0; // 1% of requests slower than 0.25 s at baseline
    r.metric = Some(MetricDetail {
        name: "http.server.request.duration".into(),
        unit: "s".into(),
        route: Some("/quote".into()),
        quantile: Some(0.99),
        observed_value: 0.9,
        expected_value: 0.2,
        instances: vec![],
        quantiles: vec![],
        threshold_value: Some(0.25),
    });
    let action = Action {
        id: "a1".into(),
        service: "checkout".into(),
        revision: "b".into(),
        action: ActionKind::Rollback,
        status: ActionStatus::Succeeded,
        rule: "caused_rollback".into(),
        reasons: vec![],
        executor: None,
        target_revision: Some("a".into()),
        pr_url: None,
        recovery_verified: None,
        signatures: vec![series.clone()],
        verdict_id: None,
        decided_at_ms: T0,
        incident_id: None,
    };
    let config = crate::config::RecoveryConfig::default();
    let hist = |rev: &str, at: i64, slow: i64| LatencyHistogram {
        service: "checkout".into(),
        revision: rev.into(),
        metric: "http.server.request.duration".into(),
        unit: "s".into(),
        route: Some("/quote".into()),
        window_start_ms: at,
        window_s: 60,
        bounds: bounds.clone(),
        counts: vec![900 - slow, 100, slow, 0, 0],
        sum: None,
    };
    for (slow, recovered) in [(10, true), (100, false)] {
        let mut w = recovery::Watch::start(&action, &[&r], &config, Some(T0));
        let mut served = 0;
        let mut t = w.start_ms;
        while t < w.end_ms() {
            w.on_histogram(&hist("a", t, slow));
            // The rolled-back revision's late histograms say nothing.
            w.on_histogram(&hist("b", t, 900));
            served += 1000;
            t += 60_000;
        }
        let out = w.conclude(Some(served), &config);
        assert_eq!(out.recovered, recovered, "{slow}: {}", out.reason);
    }
}
