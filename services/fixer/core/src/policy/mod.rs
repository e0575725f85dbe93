//! The fixer's pure core: verdicts, regressions, deploys, traffic, signature
//! counts and the fixer's own action updates in; actions out.
//!
//! Sync, no IO, no wall clock: every time here is the event time carried by the
//! inputs, so a backtest replays exactly what a live run decided.
//!
//! # Decisions
//! For each verdict the [rule table](crate::config::FixerRule) picks
//! an action (first match wins) from the verdict's decision and confidence, the
//! severity of its regressions ([`severity`]: error-budget burn rate from
//! requests, new crash signatures), whether it cites changed lines, external
//! correlation and the time since the deploy. Then the safety rails, which no
//! rule can override, may turn it into a notification:
//! - a `not_caused` verdict is never rolled back;
//! - one action per (service, revision), whatever the duplicates and restarts
//!   (a notify/none may be escalated once to a rollback or fix-forward by a later,
//!   stronger verdict; never the other way);
//! - never roll back onto a revision that is itself flagged (it regressed, a
//!   verdict blamed it, or it was rolled back from), nor past a newer deploy;
//! - a cooldown per service between executed actions;
//! - caps on fix-forward dispatches per hour and on agent runs in progress.
//!
//! Every action records the rule that chose it (or the rail that overrode it)
//! and the reasons, one sentence each.
//!
//! # Lifecycle
//! The decision is published with status `dry_run` (global dry-run), `planned`
//! (an executor will run: the adapter gets a [`Job`]) or `succeeded` (notify and
//! none are complete once published). Executor outcomes come back as action
//! updates (same id) through [`Policy::on_event`]; a succeeded rollback starts a
//! [`recovery`] watch that ends in `recovery_verified` or `recovery_failed`.
//!
//! # Layout
//! - this file: [`Policy`] state, rule evaluation and rails.
//! - [`severity`]: burn rates and crash detection.
//! - [`recovery`]: the recovery watch.

pub mod recovery;
pub mod severity;

use std::collections::{BTreeMap, VecDeque};

use crate::config::{FixerConfig, FixerRule};
use selfheal_schemas::ids::stable_id;
use selfheal_schemas::{
    Action, ActionKind, ActionStatus, AnyEvent, Decision, Deploy, Evidence, Regression,
    RegressionKind, SignatureCount, Traffic, Verdict,
};

use self::recovery::Watch;
use self::severity::Assessment;

/// Event time in one hour.
const HOUR_MS: i64 = 3_600_000;
/// Regressions and deploys kept per service (oldest evicted first).
const KEPT_PER_SERVICE: usize = 512;

/// Most verdicts held waiting for their deploy and regressions; beyond it the
/// oldest is decided with what is known (bounded memory).
const MAX_HELD_VERDICTS: usize = 10_000;

/// What the adapter must carry out for a planned action.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Roll `service` back from `revision` to `target_revision`.
    Rollback(RollbackJob),
    /// Dispatch a coding agent (or the built-in revert) to fix forward.
    FixForward(Box<FixRequest>),
}

/// A rollback to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackJob {
    /// The action's id.
    pub action_id: String,
    /// The service.
    pub service: String,
    /// The revision being rolled back from.
    pub revision: String,
    /// The revision rolled back to.
    pub target_revision: String,
}

/// Everything a fix-forward dispatcher needs. Text fields marked untrusted come
/// from error messages and diffs: they are data, never commands.
#[derive(Debug, Clone, PartialEq)]
pub struct FixRequest {
    /// The action's id.
    pub action_id: String,
    /// The service.
    pub service: String,
    /// The revision that regressed.
    pub revision: String,
    /// The revision before it.
    pub previous_revision: Option<String>,
    /// The revision whose change triage blamed.
    pub blamed_revision: Option<String>,
    /// Repository (URL or path) from the deploy.
    pub repo: Option<String>,
    /// Commit range from the deploy.
    pub commit_range: Option<String>,
    /// Changed lines the verdict cites.
    pub evidence: Vec<Evidence>,
    /// The regressions behind the verdict.
    pub regressions: Vec<Regression>,
    /// The deploy's diff (untrusted).
    pub diff: Option<String>,
    /// Triage's reasoning (untrusted: may quote error text).
    pub reasoning: String,
    /// Why the fixer chose to fix forward.
    pub reasons: Vec<String>,
}

/// One decision or status change: the action to publish and, when it is newly
/// planned with an executor, the job to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The action (update) to publish.
    pub action: Action,
    /// What to execute, if anything.
    pub job: Option<Job>,
}

/// The fixer's state. Feed it every input in order with [`Policy::on_event`].
#[derive(Debug, Default)]
pub struct Policy {
    config: FixerConfig,
    deploys: BTreeMap<(String, String), Deploy>,
    deploy_order: BTreeMap<String, VecDeque<String>>,
    /// Latest deploy per service: (deployed_at_ms, revision).
    live: BTreeMap<String, (i64, String)>,
    regressions: BTreeMap<String, Regression>,
    regression_order: BTreeMap<String, VecDeque<String>>,
    /// Requests per (service, revision, window start).
    traffic: BTreeMap<(String, String), BTreeMap<i64, i64>>,
    /// Revisions that must not be rolled back onto, with why.
    flagged: BTreeMap<(String, String), Flag>,
    /// The latest known state of every action, by id.
    actions: BTreeMap<String, Action>,
    /// Ids of the action per (service, revision), in order (an escalation adds one).
    acted: BTreeMap<(String, String), Vec<String>>,
    /// Event time of the last executed (rollback / fix-forward) decision per service.
    last_executed: BTreeMap<String, i64>,
    /// Event times of fix-forward dispatch decisions, oldest first.
    dispatches: VecDeque<i64>,
    /// Recovery watches by action id.
    watches: BTreeMap<String, Watch>,
    /// Latest event time seen per service.
    watermark: BTreeMap<String, i64>,
    /// Verdicts waiting for their deploy or regressions, by verdict id.
    held: BTreeMap<String, Verdict>,
    /// Fix-forwards to dispatch once a rollback's recovery watch concludes, by
    /// the rollback's action id (heal, then fix). Not restored after a restart:
    /// a rollback watched across a restart gets no automatic follow-up.
    follow_ups: BTreeMap<String, FixRequest>,
}

impl Policy {
    /// A policy with the given settings.
    pub fn new(config: FixerConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// The settings.
    pub fn config(&self) -> &FixerConfig {
        &self.config
    }

    /// The latest known state of an action.
    pub fn action(&self, id: &str) -> Option<&Action> {
        self.actions.get(id)
    }

    /// Feeds one event; returns the actions (and jobs) it decides.
    pub fn on_event(&mut self, event: &AnyEvent) -> Vec<Decided> {
        match event {
            AnyEvent::Deploy(d) => {
                self.on_deploy(d);
                self.advance(&d.service, d.deployed_at_ms)
            }
            AnyEvent::Regression(r) => {
                self.on_regression(r);
                self.advance(&r.service, r.detected_at_ms)
            }
            AnyEvent::Verdict(v) => {
                let mut out = self.advance(&v.service, v.decided_at_ms);
                // A newer update of the same incident supersedes a held one
                // (e.g. `not_caused` once the detector saw the rise go away).
                if let Some(inc) = &v.incident_id {
                    self.held.retain(|_, h| h.incident_id.as_ref() != Some(inc));
                }
                if self.lacks_context(v) || self.on_hold(v).is_some() {
                    self.held.insert(v.id.clone(), v.clone());
                    if self.held.len() > MAX_HELD_VERDICTS {
                        let oldest = self
                            .held
                            .values()
                            .min_by_key(|h| (h.decided_at_ms, h.id.clone()))
                            .map(|h| h.id.clone());
                        if let Some(v) = oldest.and_then(|id| self.held.remove(&id)) {
                            out.extend(self.decide(&v));
                        }
                    }
                } else {
                    out.extend(self.decide(v));
                }
                out
            }
            AnyEvent::Traffic(t) => {
                self.on_traffic(t);
                for w in self.watches.values_mut() {
                    w.on_traffic(t);
                }
                let end = t.window_start_ms + i64::from(t.window_s) * 1000;
                self.advance(&t.service, end)
            }
            AnyEvent::SignatureCount(c) => {
                self.on_signature_count(c);
                self.advance(&c.service, c.last_seen_ms)
            }
            AnyEvent::LatencyHistogram(h) => {
                for w in self.watches.values_mut() {
                    w.on_histogram(h);
                }
                let end = h.window_start_ms + i64::from(h.window_s) * 1000;
                self.advance(&h.service, end)
            }
            AnyEvent::Action(a) => self.on_action(a),
            _ => Vec::new(),
        }
    }

    /// Records a deploy or regression read at start-up (a table rebuilt from
    /// its topic) without deciding anything or moving event time.
    pub fn remember(&mut self, event: &AnyEvent) {
        match event {
            AnyEvent::Deploy(d) => self.on_deploy(d),
            AnyEvent::Regression(r) => self.on_regression(r),
            _ => {}
        }
    }

    /// Only the actions of [`Policy::on_event`]: what a backtest records.
    pub fn actions_for(&mut self, event: &AnyEvent) -> Vec<Action> {
        self.on_event(event).into_iter().map(|d| d.action).collect()
    }

    /// Restores state from the fixer's own earlier action updates (read from the
    /// actions topic at start-up), without deciding anything.
    pub fn restore(&mut self, action: &Action) {
        let _ = self.on_action(action);
    }

    /// Ends a restore: actions that were planned or in progress when the fixer
    /// stopped are marked failed, because they may have partly happened and
    /// running them twice (two rollbacks, two PRs) is worse than asking a human.
    pub fn finish_restore(&mut self) -> Vec<Decided> {
        let interrupted: Vec<Action> = self
            .actions
            .values()
            .filter(|a| {
                a.executor.is_some()
                    && matches!(a.status, ActionStatus::Planned | ActionStatus::InProgress)
            })
            .cloned()
            .collect();
        interrupted
            .into_iter()
            .map(|mut a| {
                a.status = ActionStatus::Failed;
                a.reasons.push(
                    "the fixer restarted while this action was executing; it is not retried \
                     automatically (it may have partly happened): a human must check"
                        .to_owned(),
                );
                self.actions.insert(a.id.clone(), a.clone());
                Decided {
                    action: a,
                    job: None,
                }
            })
            .collect()
    }

    fn on_deploy(&mut self, d: &Deploy) {
        let key = (d.service.clone(), d.revision.clone());
        if self.deploys.insert(key, d.clone()).is_none() {
            let order = self.deploy_order.entry(d.service.clone()).or_default();
            order.push_back(d.revision.clone());
            if order.len() > KEPT_PER_SERVICE {
                if let Some(old) = order.pop_front() {
                    self.deploys.remove(&(d.service.clone(), old));
                }
            }
        }
        let newer = self
            .live
            .get(&d.service)
            .is_none_or(|(at, _)| d.deployed_at_ms >= *at);
        if newer {
            self.live
                .insert(d.service.clone(), (d.deployed_at_ms, d.revision.clone()));
        }
    }

    fn on_regression(&mut self, r: &Regression) {
        if !r.externally_correlated {
            self.flagged
                .entry((r.service.clone(), r.revision.clone()))
                .or_insert_with(|| Flag::Regressed {
                    kind: r.kind,
                    signature: r.signature.clone(),
                });
        }
        let key = (r.service.clone(), r.revision.clone());
        let unflag = r.externally_correlated
            && matches!(self.flagged.get(&key), Some(Flag::Regressed { signature, kind })
                if *signature == r.signature && *kind == r.kind);
        if unflag {
            // An update (it went away): the revision stays flagged only if
            // another of its regressions is still the deploy's.
            self.flagged.remove(&key);
            let other = self.regressions.values().find(|x| {
                x.id != r.id
                    && !x.externally_correlated
                    && (x.service.as_str(), x.revision.as_str()) == (key.0.as_str(), key.1.as_str())
            });
            if let Some(x) = other {
                let flag = Flag::Regressed {
                    kind: x.kind,
                    signature: x.signature.clone(),
                };
                self.flagged.insert(key, flag);
            }
        }
        if self.regressions.insert(r.id.clone(), r.clone()).is_none() {
            let order = self.regression_order.entry(r.service.clone()).or_default();
            order.push_back(r.id.clone());
            if order.len() > KEPT_PER_SERVICE {
                if let Some(old) = order.pop_front() {
                    self.regressions.remove(&old);
                }
            }
        }
    }

    fn on_traffic(&mut self, t: &Traffic) {
        let windows = self
            .traffic
            .entry((t.service.clone(), t.revision.clone()))
            .or_default();
        // Keyed by window start: a duplicate delivery overwrites, not doubles.
        windows.insert(t.window_start_ms, t.requests);
        while windows.len() > 4 * KEPT_PER_SERVICE {
            windows.pop_first();
        }
    }

    fn on_signature_count(&mut self, c: &SignatureCount) {
        for w in self.watches.values_mut() {
            w.on_count(c);
        }
    }

    /// Moves a service's event-time watermark and closes the recovery watches
    /// whose window has passed.
    fn advance(&mut self, service: &str, at_ms: i64) -> Vec<Decided> {
        // Runs on every event: the key is cloned only for a new service.
        let mark = match self.watermark.get_mut(service) {
            Some(mark) => {
                *mark = (*mark).max(at_ms);
                *mark
            }
            None => *self.watermark.entry(service.to_owned()).or_insert(at_ms),
        };
        let mut released = Vec::new();
        let ready: Vec<String> = self
            .held
            .values()
            .filter(|v| v.service == service)
            .filter(|v| !self.lacks_context(v))
            .filter(|v| self.on_hold(v).is_none_or(|until| until <= mark))
            .map(|v| v.id.clone())
            .collect();
        for id in ready {
            if let Some(mut v) = self.held.remove(&id) {
                if self.withdrawn(&v) {
                    // Every error it was judged on went away (the detector's
                    // update arrived, triage's new verdict not yet): acting
                    // on it now would roll back an outage.
                    continue;
                }
                if let Some(until) = self.on_hold(&v) {
                    // Decided when the hold ended, in event time.
                    v.decided_at_ms = v.decided_at_ms.max(until);
                    v.reasoning = format!(
                        "{} (remediation was held until {until} for an external cause to show; none did)",
                        v.reasoning
                    );
                }
                released.extend(self.decide(&v));
            }
        }
        let done: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, w)| w.service == service && w.is_due(mark))
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in done {
            let Some(watch) = self.watches.remove(&id) else {
                continue;
            };
            let Some(mut action) = self.actions.get(&id).cloned() else {
                continue;
            };
            let requests = self.requests_in(service, watch.start_ms, watch.end_ms());
            let outcome = watch.conclude(requests, &self.config.recovery);
            action.status = if outcome.recovered {
                ActionStatus::RecoveryVerified
            } else {
                ActionStatus::RecoveryFailed
            };
            action.recovery_verified = Some(outcome.recovered);
            action.decided_at_ms = watch.end_ms();
            action.reasons.push(outcome.reason);
            if !outcome.recovered {
                action
                    .reasons
                    .push("escalated: a human must look (notify)".to_owned());
            }
            self.actions.insert(id.clone(), action.clone());
            let follow_up = self.follow_ups.remove(&id);
            out.push(Decided {
                action: action.clone(),
                job: None,
            });
            // Heal, then fix, only when the rollback healed: errors that went
            // on on the previous revision say the deploy was not their cause
            // (triage revises the incident; see `after_experiment`), so its
            // change is not reverted.
            if let Some(req) = follow_up.filter(|_| outcome.recovered) {
                out.extend(self.follow_up(req, &action, outcome.recovered));
            }
        }
        released.extend(out);
        released
    }

    /// Whether a verdict arrived before everything it is judged with: neither
    /// its deploy nor any of its regressions is known yet. Build failures are
    /// decided at once (there is no deploy to wait for).
    fn lacks_context(&self, v: &Verdict) -> bool {
        let build = v.signatures.iter().any(|s| s == "build_failure");
        !build
            && !self
                .deploys
                .contains_key(&(v.service.clone(), v.revision.clone()))
            && !v
                .regression_ids
                .iter()
                .any(|id| self.regressions.contains_key(id))
    }

    /// The event time until which the detector asked to hold remediation of
    /// a verdict's regressions (an external cause not yet ruled out), if it
    /// is still ahead of the verdict. Reports are never held, only actions.
    fn on_hold(&self, v: &Verdict) -> Option<i64> {
        if v.decision == Decision::NotCaused {
            return None;
        }
        v.regression_ids
            .iter()
            .filter_map(|id| self.regressions.get(id))
            .filter_map(|r| r.hold_remediation_until_ms)
            .max()
            .filter(|until| *until > v.decided_at_ms)
    }

    /// Whether every regression of a held verdict known here was re-published
    /// as external since (went away), so the verdict no longer stands.
    fn withdrawn(&self, v: &Verdict) -> bool {
        let known: Vec<&Regression> = v
            .regression_ids
            .iter()
            .filter_map(|id| self.regressions.get(id))
            .collect();
        v.decision != Decision::NotCaused
            && !known.is_empty()
            && known.iter().all(|r| r.externally_correlated)
    }

    /// Requests served by `service` (any revision) in windows starting in [from, to).
    fn requests_in(&self, service: &str, from: i64, to: i64) -> Option<i64> {
        let mut total = None;
        for ((s, _), windows) in &self.traffic {
            if s != service {
                continue;
            }
            for (_, n) in windows.range(from..to) {
                *total.get_or_insert(0) += n;
            }
        }
        total
    }

    /// Requests served by (service, revision) in windows starting in [from, to).
    fn revision_requests(&self, service: &str, revision: &str, from: i64, to: i64) -> Option<i64> {
        let windows = self
            .traffic
            .get(&(service.to_owned(), revision.to_owned()))?;
        let mut it = windows.range(from..to).peekable();
        it.peek()?;
        Some(it.map(|(_, n)| n).sum())
    }

    /// Merges an action update (ours, from the topic): the most advanced status
    /// wins, so updates from different producers may arrive in any order.
    fn on_action(&mut self, a: &Action) -> Vec<Decided> {
        let key = (a.service.clone(), a.revision.clone());
        let ids = self.acted.entry(key).or_default();
        if !ids.contains(&a.id) {
            ids.push(a.id.clone());
        }
        // The decision itself (planned or dry run) starts the service's cooldown.
        if matches!(a.action, ActionKind::Rollback | ActionKind::FixForward)
            && matches!(a.status, ActionStatus::Planned | ActionStatus::DryRun)
        {
            let last = self
                .last_executed
                .entry(a.service.clone())
                .or_insert(a.decided_at_ms);
            *last = (*last).max(a.decided_at_ms);
        }
        if a.action == ActionKind::Rollback {
            self.flagged
                .entry((a.service.clone(), a.revision.clone()))
                .or_insert(Flag::RolledBack);
        }
        let known = self.actions.get(&a.id);
        if known.is_some_and(|k| rank(k.status) >= rank(a.status)) {
            return Vec::new();
        }
        if known.is_none()
            && a.action == ActionKind::FixForward
            && matches!(a.status, ActionStatus::Planned | ActionStatus::DryRun)
        {
            self.dispatches.push_back(a.decided_at_ms);
        }
        self.actions.insert(a.id.clone(), a.clone());
        if a.action == ActionKind::Rollback
            && a.status == ActionStatus::Succeeded
            && !self.watches.contains_key(&a.id)
        {
            let baseline: Vec<&Regression> = self
                .regressions
                .values()
                .filter(|r| {
                    r.service == a.service
                        && r.revision == a.revision
                        && a.signatures.contains(&r.signature)
                })
                .collect();
            let completed = self.watermark.get(&a.service).copied();
            let watch = Watch::start(a, &baseline, &self.config.recovery, completed);
            self.watches.insert(a.id.clone(), watch);
        }
        Vec::new()
    }

    /// Decides the action for a verdict, or nothing if this (service, revision)
    /// was already acted on (duplicate or later verdicts). The steps: note
    /// what the verdict says about the revision (`Policy::note_verdict`);
    /// a rollback that the incident's revision to `not_caused` answers
    /// (`Policy::after_experiment`); at most one action per revision, plus
    /// one escalation; the rule; the safety rails (`Policy::apply_rails`);
    /// the action and its job.
    pub fn decide(&mut self, v: &Verdict) -> Option<Decided> {
        let key = (v.service.clone(), v.revision.clone());
        self.note_verdict(v);
        let prior: Vec<Action> = self
            .acted
            .get(&key)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.actions.get(id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(done) = self.after_experiment(v, &prior) {
            return done;
        }
        let escalation = match prior.as_slice() {
            [] => false,
            [only] if matches!(only.action, ActionKind::Notify | ActionKind::None) => true,
            _ => return None,
        };
        let regressions: Vec<Regression> = v
            .regression_ids
            .iter()
            .filter_map(|id| self.regressions.get(id).cloned())
            .collect();
        let deploy = self.deploys.get(&key).cloned();
        let previous = deploy
            .as_ref()
            .and_then(|d| d.previous_revision.clone())
            .or_else(|| regressions.iter().find_map(|r| r.previous_revision.clone()));
        let mut choice = self.choose(v, &regressions, deploy.as_ref());
        self.apply_rails(v, previous.as_deref(), &mut choice);
        if escalation && !choice.executes() {
            // Already notified; only an escalation to a real action is news.
            return None;
        }
        let id = if escalation {
            stable_id(&[&v.service, &v.revision, "escalation"])
        } else {
            stable_id(&[&v.service, &v.revision])
        };
        let action = self.publish(id, v, choice);
        let request = FixRequest {
            action_id: action.id.clone(),
            service: v.service.clone(),
            revision: v.revision.clone(),
            previous_revision: previous,
            blamed_revision: v.blamed_revision.clone(),
            repo: deploy.as_ref().and_then(|d| d.repo.clone()),
            commit_range: deploy.as_ref().and_then(|d| d.commit_range.clone()),
            evidence: v.evidence.clone(),
            regressions,
            diff: deploy.as_ref().and_then(|d| d.diff.clone()),
            reasoning: v.reasoning.clone(),
            reasons: action.reasons.clone(),
        };
        let job = self.job_for(&action, request);
        let _ = self.on_action(&action);
        Some(Decided { action, job })
    }

    /// What a verdict says about its revision as a rollback target.
    fn note_verdict(&mut self, v: &Verdict) {
        let key = (v.service.clone(), v.revision.clone());
        match v.decision {
            Decision::Caused => {
                self.flagged.entry(key).or_insert(Flag::Blamed);
            }
            Decision::NotCaused => {
                // Ruled out: its regressions no longer make it unsafe to return to.
                if matches!(self.flagged.get(&key), Some(Flag::Regressed { .. })) {
                    self.flagged.remove(&key);
                }
            }
            Decision::Inconclusive => {}
        }
    }

    /// A rollback is also an experiment: when its recovery check failed (the
    /// errors went on on the previous revision) and triage revises the
    /// incident to `not_caused`, the deploy was not the cause. Then, once:
    /// restore the rolled-back revision (`restore_after_failed_rollback`,
    /// opt-in) or notify. `Some(None)`: answered already, nothing more;
    /// `None`: not that case.
    fn after_experiment(&mut self, v: &Verdict, prior: &[Action]) -> Option<Option<Decided>> {
        let rollback = prior.iter().find(|a| {
            a.action == ActionKind::Rollback && a.status == ActionStatus::RecoveryFailed
        })?;
        if v.decision != Decision::NotCaused {
            return Some(None);
        }
        let id = stable_id(&[&v.service, &v.revision, "persisted_after_rollback"]);
        if self.actions.contains_key(&id) {
            return Some(None);
        }
        let back_on = rollback.target_revision.clone().unwrap_or_default();
        let restore = self.config.restore_after_failed_rollback
            && self.executor_for(ActionKind::Rollback).is_some()
            && !back_on.is_empty();
        let mut reasons = vec![format!(
            "the errors persisted on {back_on} after the rollback of {}: the deploy was not their cause (incident revised to not_caused)",
            v.revision
        )];
        let kind = if restore {
            reasons.push(format!(
                "restoring {} (restore_after_failed_rollback)",
                v.revision
            ));
            ActionKind::Rollback
        } else {
            reasons.push(format!(
                "{} can be redeployed; set fixer.restore_after_failed_rollback to restore it automatically",
                v.revision
            ));
            ActionKind::Notify
        };
        let choice = Choice {
            kind,
            rule: "persisted_after_rollback".to_owned(),
            reasons,
            target: restore.then(|| v.revision.clone()),
        };
        let action = self.publish(id, v, choice);
        let job = (restore && !self.config.dry_run).then(|| {
            Job::Rollback(RollbackJob {
                action_id: action.id.clone(),
                service: v.service.clone(),
                revision: back_on,
                target_revision: v.revision.clone(),
            })
        });
        let _ = self.on_action(&action);
        Some(Some(Decided { action, job }))
    }

    /// The rule's choice for a verdict (first match wins).
    fn choose(&self, v: &Verdict, regressions: &[Regression], deploy: Option<&Deploy>) -> Choice {
        let assessment = self.assess(v, regressions, deploy);
        let (kind, rule, mut reasons) = match self.match_rule(v, &assessment) {
            Some(rule) => (
                rule.action,
                rule.name.clone(),
                vec![explain(rule, v, &assessment)],
            ),
            None => (
                ActionKind::Notify,
                "no_rule_matched".to_owned(),
                vec!["no rule matched: a human decides".to_owned()],
            ),
        };
        reasons.push(format!("severity {}", assessment.describe()));
        if !v.reasoning.is_empty() {
            reasons.push(format!("triage: {}", one_line(&v.reasoning, 300)));
        }
        Choice {
            kind,
            rule,
            reasons,
            target: None,
        }
    }

    /// The safety rails no rule can override: a rollback that must not
    /// happen becomes a fix-forward (when the cause is located and there is
    /// nothing safe to roll back to), a none (`not_caused`) or a
    /// notification; a fix-forward over the caps becomes a notification.
    fn apply_rails(&mut self, v: &Verdict, previous: Option<&str>, c: &mut Choice) {
        if c.kind == ActionKind::Rollback {
            let (target, skip_reason) = self.rollback_target(&v.service, previous);
            let previous = target.as_deref();
            if let Some(why) = skip_reason.filter(|_| self.rollback_rail(v, previous).is_none()) {
                c.reasons.push(why);
            }
            match self.rollback_rail(v, previous) {
                Some((rail, why)) => {
                    c.reasons.push(why);
                    c.rule = rail.name().to_owned();
                    let cited = v.decision == Decision::Caused && !v.evidence.is_empty();
                    c.kind = if v.decision == Decision::NotCaused {
                        ActionKind::None
                    } else if cited && rail.nothing_to_roll_back_to() {
                        // Nothing safe to roll back to, but the cause is known to
                        // the line: revert it forward instead of only paging.
                        c.reasons.push(
                            "no safe rollback target: fixing forward (revert of the cited change)"
                                .to_owned(),
                        );
                        ActionKind::FixForward
                    } else {
                        ActionKind::Notify
                    };
                }
                None => c.target = previous.map(str::to_owned),
            }
        }
        if c.kind == ActionKind::FixForward {
            if let Some((name, why)) = self.dispatch_rail(v) {
                c.reasons.push(why);
                c.rule = name.to_owned();
                c.kind = ActionKind::Notify;
            }
        }
    }

    /// The action for a choice, with its status (dry run, planned, or done
    /// for a notification) and executor.
    fn publish(&self, id: String, v: &Verdict, mut c: Choice) -> Action {
        let executes = c.executes();
        let executor = self.executor_for(c.kind);
        let (status, job_executor) = if self.config.dry_run {
            if let Some(e) = executor {
                c.reasons.push(format!("dry run: {e} would have run"));
            } else {
                c.reasons.push("dry run: nothing executed".to_owned());
            }
            (ActionStatus::DryRun, None)
        } else if executes {
            if executor.is_none() {
                c.reasons.push(format!(
                    "no {} executor is configured: a human carries it out",
                    if c.kind == ActionKind::Rollback {
                        "rollback"
                    } else {
                        "fix-forward"
                    }
                ));
            }
            (ActionStatus::Planned, executor)
        } else {
            c.reasons
                .push("published on the actions topic for subscribers".to_owned());
            (ActionStatus::Succeeded, None)
        };
        Action {
            id,
            service: v.service.clone(),
            revision: v.revision.clone(),
            action: c.kind,
            status,
            rule: c.rule,
            reasons: c.reasons,
            executor: job_executor.map(str::to_owned),
            target_revision: c.target,
            pr_url: None,
            recovery_verified: None,
            signatures: v.signatures.clone(),
            verdict_id: Some(v.id.clone()),
            decided_at_ms: v.decided_at_ms,
            incident_id: v.incident_id.clone(),
        }
    }

    /// The job a newly planned action runs (none for dry runs and notifications).
    fn job_for(&mut self, action: &Action, request: FixRequest) -> Option<Job> {
        action.executor.as_ref()?;
        match action.action {
            ActionKind::Rollback => {
                if self.config.dispatch.after_rollback
                    && self.executor_for(ActionKind::FixForward).is_some()
                {
                    self.follow_ups.insert(action.id.clone(), request);
                }
                Some(Job::Rollback(RollbackJob {
                    action_id: action.id.clone(),
                    service: action.service.clone(),
                    revision: action.revision.clone(),
                    target_revision: action.target_revision.clone().unwrap_or_default(),
                }))
            }
            ActionKind::FixForward => Some(Job::FixForward(Box::new(request))),
            _ => None,
        }
    }

    /// The fix-forward that follows a rollback whose recovery watch concluded
    /// (heal, then fix): the rolled-back change is still on the base branch.
    /// Cooldown does not apply (it is the same incident); the dispatch caps do.
    fn follow_up(
        &mut self,
        mut req: FixRequest,
        rollback: &Action,
        recovered: bool,
    ) -> Option<Decided> {
        let id = stable_id(&[&req.service, &req.revision, "fix_after_rollback"]);
        if self.actions.contains_key(&id) {
            return None;
        }
        let at = rollback.decided_at_ms;
        let mut reasons = vec![format!(
            "rule fix_after_rollback matched: {} was rolled back to {} ({}), but its change is still on the base branch, so the next deploy would bring it back",
            req.revision,
            rollback.target_revision.as_deref().unwrap_or("the previous revision"),
            if recovered { "recovery verified" } else { "recovery failed" }
        )];
        let (kind, status, executor, rule) = match self.dispatch_caps(at) {
            Some((rail, why)) => {
                reasons.push(why);
                (ActionKind::Notify, ActionStatus::Succeeded, None, rail)
            }
            None => (
                ActionKind::FixForward,
                ActionStatus::Planned,
                self.executor_for(ActionKind::FixForward),
                "fix_after_rollback",
            ),
        };
        let action = Action {
            id,
            service: req.service.clone(),
            revision: req.revision.clone(),
            action: kind,
            status,
            rule: rule.to_owned(),
            reasons,
            executor: executor.map(str::to_owned),
            target_revision: None,
            pr_url: None,
            recovery_verified: None,
            signatures: rollback.signatures.clone(),
            verdict_id: rollback.verdict_id.clone(),
            decided_at_ms: at,
            incident_id: rollback.incident_id.clone(),
        };
        let _ = self.on_action(&action);
        req.action_id = action.id.clone();
        req.reasons = action.reasons.clone();
        let job = (kind == ActionKind::FixForward).then(|| Job::FixForward(Box::new(req)));
        Some(Decided { action, job })
    }

    fn assess(
        &self,
        v: &Verdict,
        regressions: &[Regression],
        deploy: Option<&Deploy>,
    ) -> Assessment {
        let slo = self
            .config
            .services
            .get(&v.service)
            .and_then(|s| s.slo)
            .unwrap_or(self.config.default_slo);
        let requests = |r: &Regression| {
            r.requests.or_else(|| {
                self.revision_requests(&r.service, &r.revision, r.window_start_ms, r.window_end_ms)
            })
        };
        let deployed_at = deploy
            .map(|d| d.deployed_at_ms)
            .or_else(|| regressions.iter().find_map(|r| r.deployed_at_ms));
        let latency_slo = self
            .config
            .services
            .get(&v.service)
            .and_then(|s| s.latency_slo);
        severity::assess(
            regressions,
            requests,
            slo,
            latency_slo,
            &self.config,
            deployed_at.map(|at| v.decided_at_ms - at),
            v.signatures.iter().any(|s| s == "build_failure"),
        )
    }

    fn match_rule(&self, v: &Verdict, a: &Assessment) -> Option<&FixerRule> {
        self.config.rules.iter().find(|r| {
            (r.decisions.is_empty() || r.decisions.contains(&v.decision))
                && r.min_confidence.is_none_or(|m| v.confidence >= m)
                && (r.severities.is_empty() || r.severities.contains(&a.severity))
                && r.build_failure.is_none_or(|b| b == a.build_failure)
                && r.has_evidence.is_none_or(|b| b != v.evidence.is_empty())
                && r.externally_correlated
                    .is_none_or(|b| b == a.externally_correlated)
                && r.max_since_deploy_ms
                    .is_none_or(|m| a.since_deploy_ms.is_none_or(|s| s <= m))
        })
    }

    /// Why a rollback must not happen, as (rail, reason); `None` when it may.
    fn rollback_rail(&self, v: &Verdict, previous: Option<&str>) -> Option<(Rail, String)> {
        if v.decision == Decision::NotCaused {
            return Some((
                Rail::NotCaused,
                "refused: a deploy triage ruled out is never rolled back".to_owned(),
            ));
        }
        let Some(previous) = previous else {
            return Some((
                Rail::NoPreviousRevision,
                "the previous revision is unknown, so there is nothing to roll back to".to_owned(),
            ));
        };
        if let Some(why) = self.flagged.get(&(v.service.clone(), previous.to_owned())) {
            return Some((
                Rail::TargetFlagged,
                format!("not rolling back onto {previous}: {why}"),
            ));
        }
        if let Some(rail) = self.superseded_or_cooling(v) {
            return Some(rail);
        }
        None
    }

    /// The revision to roll back to: `previous`, or when it is flagged the
    /// last known good one before it (within `max_rollback_skip`), with the
    /// reason for skipping.
    fn rollback_target(
        &self,
        service: &str,
        previous: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let Some(previous) = previous else {
            return (None, None);
        };
        let flag_of = |r: &str| self.flagged.get(&(service.to_owned(), r.to_owned()));
        if flag_of(previous).is_none() {
            return (Some(previous.to_owned()), None);
        }
        let mut skipped = vec![previous.to_owned()];
        let mut at = previous.to_owned();
        for _ in 0..self.config.max_rollback_skip {
            let Some(before) = self
                .deploys
                .get(&(service.to_owned(), at.clone()))
                .and_then(|d| d.previous_revision.clone())
            else {
                break;
            };
            if flag_of(&before).is_none() {
                let why = skipped
                    .iter()
                    .map(|r| format!("{r} ({})", flag_of(r).expect("skipped ones are flagged")))
                    .collect::<Vec<_>>()
                    .join(", ");
                return (
                    Some(before.clone()),
                    Some(format!(
                        "rolling back to {before}, the last known good revision, past {why}"
                    )),
                );
            }
            skipped.push(before.clone());
            at = before;
        }
        (Some(previous.to_owned()), None)
    }

    /// The rails that hold whatever the target: a newer deploy, a cooldown.
    fn superseded_or_cooling(&self, v: &Verdict) -> Option<(Rail, String)> {
        if let Some((_, live)) = self.live.get(&v.service) {
            if live != &v.revision
                && self
                    .deploys
                    .contains_key(&(v.service.clone(), v.revision.clone()))
            {
                return Some((
                    Rail::Superseded,
                    format!(
                        "{live} was deployed after {}; rolling back would skip past it",
                        v.revision
                    ),
                ));
            }
        }
        if let Some(last) = self.last_executed.get(&v.service) {
            if v.decided_at_ms - last < self.config.cooldown_ms {
                return Some((
                    Rail::Cooldown,
                    format!(
                        "another action on {} was taken {} s earlier (cooldown {} s)",
                        v.service,
                        (v.decided_at_ms - last) / 1000,
                        self.config.cooldown_ms / 1000
                    ),
                ));
            }
        }
        None
    }

    /// Why a fix-forward must not be dispatched now, as (rail name, reason).
    fn dispatch_rail(&mut self, v: &Verdict) -> Option<(&'static str, String)> {
        if let Some(last) = self.last_executed.get(&v.service) {
            if v.decided_at_ms - last < self.config.cooldown_ms {
                return Some((
                    "cooldown",
                    format!(
                        "another action on {} was taken {} s earlier (cooldown {} s)",
                        v.service,
                        (v.decided_at_ms - last) / 1000,
                        self.config.cooldown_ms / 1000
                    ),
                ));
            }
        }
        self.dispatch_caps(v.decided_at_ms)
    }

    /// Why no fix-forward may be dispatched at event time `at` (fleet-wide caps),
    /// as (rail name, reason).
    fn dispatch_caps(&mut self, at: i64) -> Option<(&'static str, String)> {
        while self.dispatches.front().is_some_and(|t| *t <= at - HOUR_MS) {
            self.dispatches.pop_front();
        }
        if self.dispatches.len() >= self.config.max_dispatches_per_hour {
            return Some((
                "dispatch_rate_capped",
                format!(
                    "{} fix-forward dispatches in the last hour (cap {})",
                    self.dispatches.len(),
                    self.config.max_dispatches_per_hour
                ),
            ));
        }
        let running = self
            .actions
            .values()
            .filter(|a| {
                a.action == ActionKind::FixForward
                    && a.executor.is_some()
                    && matches!(a.status, ActionStatus::Planned | ActionStatus::InProgress)
            })
            .count();
        if running >= self.config.max_concurrent_agent_runs {
            return Some((
                "agent_runs_capped",
                format!(
                    "{running} agent runs in progress (cap {})",
                    self.config.max_concurrent_agent_runs
                ),
            ));
        }
        None
    }

    fn executor_for(&self, kind: ActionKind) -> Option<&'static str> {
        match kind {
            ActionKind::Rollback => self.config.rollback.executor.executor_name(),
            ActionKind::FixForward => self.config.dispatch.dispatcher.executor_name(),
            _ => None,
        }
    }
}

/// Why a revision must not be rolled back onto.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flag {
    /// It regressed itself (a signature flagged on it).
    Regressed {
        /// New signature or spike.
        kind: RegressionKind,
        /// The signature.
        signature: String,
    },
    /// Triage blamed it.
    Blamed,
    /// It was rolled back from.
    RolledBack,
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flag::Regressed { kind, signature } => {
                write!(f, "it regressed ({kind:?} of {signature})")
            }
            Flag::Blamed => write!(f, "triage blamed it"),
            Flag::RolledBack => write!(f, "it was rolled back"),
        }
    }
}

/// A rail that refuses a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rail {
    NotCaused,
    NoPreviousRevision,
    TargetFlagged,
    Superseded,
    Cooldown,
}

impl Rail {
    /// The rule name the action records.
    fn name(self) -> &'static str {
        match self {
            Rail::NotCaused => "not_caused_never_rolls_back",
            Rail::NoPreviousRevision => "caused_no_previous_revision",
            Rail::TargetFlagged => "rollback_target_flagged",
            Rail::Superseded => "rollback_superseded",
            Rail::Cooldown => "cooldown",
        }
    }

    /// There is no safe revision to go back to (so a located cause is
    /// reverted forward instead).
    fn nothing_to_roll_back_to(self) -> bool {
        matches!(self, Rail::NoPreviousRevision | Rail::TargetFlagged)
    }
}

/// What a verdict's rule (and then the rails) chose.
#[derive(Debug, Clone)]
struct Choice {
    kind: ActionKind,
    rule: String,
    reasons: Vec<String>,
    target: Option<String>,
}

impl Choice {
    fn executes(&self) -> bool {
        matches!(self.kind, ActionKind::Rollback | ActionKind::FixForward)
    }
}

/// How far along a status is; updates never move an action backwards.
fn rank(s: ActionStatus) -> u8 {
    match s {
        ActionStatus::Planned | ActionStatus::DryRun => 0,
        ActionStatus::InProgress => 1,
        ActionStatus::Succeeded | ActionStatus::Failed => 2,
        ActionStatus::RecoveryVerified | ActionStatus::RecoveryFailed => 3,
    }
}

fn explain(rule: &FixerRule, v: &Verdict, a: &Assessment) -> String {
    let mut why = vec![format!(
        "decision {} with confidence {:.2}",
        decision_name(v.decision),
        v.confidence
    )];
    if let Some(m) = rule.min_confidence {
        why.push(format!("≥ {m:.2}"));
    }
    if !rule.severities.is_empty() {
        why.push(format!("severity {:?}", a.severity).to_lowercase());
    }
    if rule.build_failure == Some(true) {
        why.push("the build failed, nothing is live to roll back".to_owned());
    }
    if rule.has_evidence == Some(true) {
        let cited: Vec<String> = v
            .evidence
            .iter()
            .take(3)
            .map(|e| match e.line {
                Some(l) => format!("{}:{l}", e.file),
                None => e.file.clone(),
            })
            .collect();
        why.push(format!("cites {}", cited.join(", ")));
    }
    format!("rule {} matched: {}", rule.name, why.join("; "))
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Caused => "caused",
        Decision::NotCaused => "not_caused",
        Decision::Inconclusive => "inconclusive",
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// A set of regression kinds, for the build-failure test.
pub(crate) fn is_build_failure(regressions: &[Regression]) -> bool {
    regressions
        .iter()
        .any(|r| r.kind == RegressionKind::BuildFailure)
}

/// The NDJSON record of an action in a backtest's `actions.ndjson`.
pub fn backtest_record(a: &Action) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "service": a.service,
        "revision": a.revision,
        "action": a.action,
        "status": a.status,
        "rule": a.rule,
        "decided_at": a.decided_at_ms,
        "reasons": a.reasons,
        "target_revision": a.target_revision,
        "verdict_id": a.verdict_id,
    })
}

#[cfg(test)]
mod tests;
