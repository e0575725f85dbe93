//! The fixer's pure core: verdicts (with their regressions and deploys) → one
//! action per (service, revision), with the rule that fired and why.
//!
//! Walking-skeleton policy (the fixer issue adds SLO burn rates, cooldowns,
//! executors and recovery checks):
//! - a failed build → `fix_forward` (nothing is live to roll back);
//! - `not_caused` → `none`: a deploy that did not cause the errors is never rolled back;
//! - `caused` at or above `rollback_min_confidence` with a known previous revision
//!   → `rollback` to it;
//! - anything else (`inconclusive`, low confidence, unknown previous revision) →
//!   `notify` a human.
//!
//! Executors do not exist yet, so every action is recorded as `dry_run` (when the
//! global dry-run switch is on, the default) or `planned` with no executor:
//! nothing here claims to have done what it did not do.

use std::collections::{BTreeMap, BTreeSet};

use selfheal_common::config::FixerConfig;
use selfheal_common::ids::stable_id;
use selfheal_schemas::{
    Action, ActionKind, ActionStatus, AnyEvent, Decision, Deploy, Regression, RegressionKind,
    Verdict,
};

/// The fixer state.
#[derive(Debug, Default)]
pub struct Fixer {
    config: FixerConfig,
    deploys: BTreeMap<(String, String), Deploy>,
    regressions: BTreeMap<String, Regression>,
    /// (service, revision) pairs already acted on: one action each.
    acted: BTreeSet<(String, String)>,
}

impl Fixer {
    /// A fixer with the given settings.
    pub fn new(config: FixerConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// Feeds one event; returns the actions it decides.
    pub fn on_event(&mut self, event: &AnyEvent) -> Vec<Action> {
        match event {
            AnyEvent::Deploy(d) => {
                self.deploys
                    .insert((d.service.clone(), d.revision.clone()), d.clone());
                Vec::new()
            }
            AnyEvent::Regression(r) => {
                self.regressions.insert(r.id.clone(), r.clone());
                Vec::new()
            }
            AnyEvent::Verdict(v) => self.decide(v).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Decides the action for a verdict, or nothing if this (service, revision)
    /// was already acted on (duplicate or later verdicts).
    pub fn decide(&mut self, v: &Verdict) -> Option<Action> {
        let key = (v.service.clone(), v.revision.clone());
        if self.acted.contains(&key) {
            return None;
        }
        let build_failure = v.regression_ids.iter().any(|id| {
            self.regressions
                .get(id)
                .is_some_and(|r| r.kind == RegressionKind::BuildFailure)
        }) || v.signatures.iter().any(|s| s == "build_failure");
        let previous = self
            .deploys
            .get(&key)
            .and_then(|d| d.previous_revision.clone())
            .or_else(|| {
                v.regression_ids
                    .iter()
                    .find_map(|id| self.regressions.get(id)?.previous_revision.clone())
            });

        let (kind, rule, reason, target) = if build_failure {
            (
                ActionKind::FixForward,
                "build_failure_fix_forward",
                format!(
                    "the build of {} failed; nothing is live to roll back",
                    v.revision
                ),
                None,
            )
        } else {
            match v.decision {
                Decision::NotCaused => (
                    ActionKind::None,
                    "not_caused_never_rolls_back",
                    format!("triage found the deploy did not cause it: {}", v.reasoning),
                    None,
                ),
                Decision::Caused if v.confidence >= self.config.rollback_min_confidence => {
                    match previous {
                        Some(prev) => (
                            ActionKind::Rollback,
                            "caused_rollback",
                            format!(
                                "caused with confidence {:.2} (≥ {:.2}): {}",
                                v.confidence, self.config.rollback_min_confidence, v.reasoning
                            ),
                            Some(prev),
                        ),
                        None => (
                            ActionKind::Notify,
                            "caused_no_previous_revision",
                            "caused, but the previous revision is unknown, so there is nothing to roll back to".to_owned(),
                            None,
                        ),
                    }
                }
                Decision::Caused => (
                    ActionKind::Notify,
                    "caused_low_confidence_notify",
                    format!(
                        "caused with confidence {:.2} (< {:.2}): a human decides",
                        v.confidence, self.config.rollback_min_confidence
                    ),
                    None,
                ),
                Decision::Inconclusive => (
                    ActionKind::Notify,
                    "inconclusive_notify",
                    format!("triage was inconclusive: {}", v.reasoning),
                    None,
                ),
            }
        };
        self.acted.insert(key);
        let status = if self.config.dry_run {
            ActionStatus::DryRun
        } else {
            ActionStatus::Planned
        };
        let mut reasons = vec![reason];
        if !self.config.dry_run && kind != ActionKind::None {
            reasons.push("no executor is configured for this action yet".to_owned());
        }
        Some(Action {
            id: stable_id(&[&v.service, &v.revision]),
            service: v.service.clone(),
            revision: v.revision.clone(),
            action: kind,
            status,
            rule: rule.to_owned(),
            reasons,
            executor: None,
            target_revision: target,
            pr_url: None,
            recovery_verified: None,
            signatures: v.signatures.clone(),
            verdict_id: Some(v.id.clone()),
            decided_at_ms: v.decided_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(decision: Decision, confidence: f64) -> Verdict {
        Verdict {
            id: "v1".into(),
            service: "checkout".into(),
            revision: "b".into(),
            blamed_revision: None,
            decision,
            confidence,
            reasoning: "because".into(),
            evidence: vec![],
            signatures: vec!["s".into()],
            regression_ids: vec!["r1".into()],
            file_classes: vec![],
            decided_at_ms: 99,
            adjudicator: "rules".into(),
        }
    }

    fn deploy() -> AnyEvent {
        AnyEvent::Deploy(Deploy {
            service: "checkout".into(),
            revision: "b".into(),
            previous_revision: Some("a".into()),
            repo: None,
            commit_range: None,
            diff: None,
            diff_url: None,
            deployed_at_ms: 0,
        })
    }

    fn fixer() -> Fixer {
        Fixer::new(FixerConfig::default())
    }

    #[test]
    fn caused_rolls_back_to_previous_revision_in_dry_run() {
        let mut f = fixer();
        f.on_event(&deploy());
        let a = f.decide(&verdict(Decision::Caused, 0.9)).unwrap();
        assert_eq!(a.action, ActionKind::Rollback);
        assert_eq!(a.target_revision.as_deref(), Some("a"));
        assert_eq!(a.status, ActionStatus::DryRun);
        assert_eq!(a.rule, "caused_rollback");
        assert_eq!(a.decided_at_ms, 99);
    }

    #[test]
    fn not_caused_never_rolls_back() {
        let mut f = fixer();
        f.on_event(&deploy());
        let a = f.decide(&verdict(Decision::NotCaused, 1.0)).unwrap();
        assert_eq!(a.action, ActionKind::None);
    }

    #[test]
    fn one_action_per_service_revision() {
        let mut f = fixer();
        f.on_event(&deploy());
        assert!(f.decide(&verdict(Decision::Caused, 0.9)).is_some());
        assert!(f.decide(&verdict(Decision::Caused, 0.9)).is_none());
        assert!(f.decide(&verdict(Decision::Inconclusive, 0.1)).is_none());
    }

    #[test]
    fn inconclusive_and_low_confidence_notify() {
        assert_eq!(
            fixer()
                .decide(&verdict(Decision::Inconclusive, 0.3))
                .unwrap()
                .action,
            ActionKind::Notify
        );
        let mut f = fixer();
        f.on_event(&deploy());
        assert_eq!(
            f.decide(&verdict(Decision::Caused, 0.2)).unwrap().action,
            ActionKind::Notify
        );
    }

    #[test]
    fn caused_without_known_previous_revision_notifies() {
        let a = fixer().decide(&verdict(Decision::Caused, 0.9)).unwrap();
        assert_eq!(a.action, ActionKind::Notify);
        assert_eq!(a.rule, "caused_no_previous_revision");
    }

    #[test]
    fn build_failure_fixes_forward() {
        let mut v = verdict(Decision::Caused, 1.0);
        v.signatures = vec!["build_failure".into()];
        assert_eq!(fixer().decide(&v).unwrap().action, ActionKind::FixForward);
    }

    #[test]
    fn without_dry_run_the_action_is_planned_not_claimed_done() {
        let mut f = Fixer::new(FixerConfig {
            dry_run: false,
            ..Default::default()
        });
        f.on_event(&deploy());
        let a = f.decide(&verdict(Decision::Caused, 0.9)).unwrap();
        assert_eq!(a.status, ActionStatus::Planned);
        assert!(a.reasons.iter().any(|r| r.contains("no executor")));
    }
}
