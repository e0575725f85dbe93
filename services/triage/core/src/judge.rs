//! Judging an incident (pure): the steps from a regression to its incident's
//! verdict. Each step is a small function; the attribution rule itself is
//! [`crate::decide`], the code linking [`crate::link`].
//!
//! 1. [`Triage::judge`] gathers the incident (every regression of the deploy
//!    so far) and the deploys of the lookback;
//! 2. a build failure is judged by its log (`Triage::judge_build`);
//! 3. otherwise the incident's errors are linked against each lookback
//!    deploy's diff, pooled across signatures (`Triage::localize`): the
//!    best localization wins (line > function > file > none), then the
//!    higher score after `recency_decay^age`;
//! 4. the facts about the deploy (`Triage::facts`) go to
//!    [`decide::judge`], which says whether the deploy is to blame;
//! 5. `Triage::verdict` writes both answers into one Verdict.

use std::collections::BTreeSet;

use selfheal_schemas::ids::stable_id;
use selfheal_schemas::{
    Action, ActionKind, ActionStatus, Decision, Evidence, Localization, Regression, RegressionKind,
    Verdict,
};

use crate::classes::FileClass;
use crate::core::{DeployWithDiff, DiffState, Triage};
use crate::decide::{self, Facts, Judgement};
use crate::diff::FileDiff;
use crate::incident::{self, frames_of};
use crate::link::{self, Link};

/// The pooled link of an incident to one deploy of the lookback.
#[derive(Debug, Clone, Default)]
pub(crate) struct Localized {
    /// Age in the lookback (0: the regressed revision's own deploy).
    pub(crate) age: usize,
    /// The best link over the incident's regressions.
    pub(crate) link: Link,
    /// Its score times `recency_decay^age`.
    pub(crate) adjusted: f64,
}

impl Triage {
    /// Judges the incident `r` belongs to (with `r` in it) into one verdict.
    pub fn judge(&self, r: &Regression) -> Verdict {
        let (regressions, seq) = self.incidents.with(r);
        let candidates = self.lookback(r);
        let persisted = self
            .incidents
            .get(&r.service, &r.revision)
            .and_then(|i| i.persisted_after_rollback.clone());
        if persisted.is_none() {
            if let Some(build) = regressions
                .iter()
                .find(|x| x.kind == RegressionKind::BuildFailure)
            {
                let mut v = self.judge_build(build, candidates.first().copied());
                stamp(&mut v, r, &regressions, seq);
                return v;
            }
        }
        let runtime: Vec<&Regression> = regressions
            .iter()
            .filter(|x| x.kind != RegressionKind::BuildFailure)
            .collect();
        let best = self.localize(&runtime, &regressions, &candidates);
        let facts = self.facts(
            &runtime,
            &regressions,
            &candidates,
            best.as_ref(),
            persisted,
        );
        let judgement = decide::judge(&facts, self.config.caused_threshold);
        let mut v = self.verdict(r, &candidates, best.as_ref(), &judgement, &facts);
        stamp(&mut v, r, &regressions, seq);
        v
    }

    /// The incident's verdict again after the fixer's rollback of it failed
    /// its recovery check (the errors went on on the previous revision): a
    /// rollback is an experiment, and this one says the deploy was not the
    /// cause. `None` for an action that is no such failure, or an incident
    /// triage does not know.
    pub fn on_action(&mut self, a: &Action) -> Option<Verdict> {
        if a.action != ActionKind::Rollback || a.status != ActionStatus::RecoveryFailed {
            return None;
        }
        let why = format!(
            "the errors went on after the rollback to {} ({})",
            a.target_revision
                .as_deref()
                .unwrap_or("the previous revision"),
            a.reasons
                .iter()
                .find(|r| r.contains("not recovered"))
                .map_or("recovery check failed", String::as_str)
        );
        let inc = self.incidents.persisted(&a.service, &a.revision, why)?;
        let last = inc.regressions.last()?.clone();
        let updates = i32::try_from(inc.regressions.len()).unwrap_or(i32::MAX);
        let mut v = self.judge(&last);
        v.id = stable_id(&[
            v.incident_id.as_deref().unwrap_or_default(),
            &a.id,
            "revised",
        ]);
        v.incident_seq = updates;
        v.decided_at_ms = a.decided_at_ms;
        Some(v)
    }

    /// Step 3: the best pooled link over the lookback, if any deploy has a diff.
    fn localize(
        &self,
        runtime: &[&Regression],
        incident: &[Regression],
        candidates: &[&DeployWithDiff],
    ) -> Option<Localized> {
        let mut best: Option<Localized> = None;
        // Per regression: its frames located in the revision being linked
        // (mapped back through the newer diffs as the lookback goes back).
        let mut located: Vec<Vec<link::Located>> = runtime
            .iter()
            .map(|x| link::locate(frames_of(x, incident), &x.service))
            .collect();
        let tokens: Vec<BTreeSet<String>> = runtime.iter().map(|x| tokens_of(x)).collect();
        for (age, cand) in candidates.iter().enumerate() {
            if age > 0 {
                if let DiffState::Parsed { files, .. } = &candidates[age - 1].diff {
                    for l in &mut located {
                        *l = link::map_back(l, files);
                    }
                }
            }
            let DiffState::Parsed { files, classes, .. } = &cand.diff else {
                continue;
            };
            let pooled = pool(&located, &tokens, files, classes, self.config.line_slack);
            let adjusted = pooled.score() * self.config.recency_decay.powi(age as i32);
            let better = best.as_ref().is_none_or(|b| {
                (pooled.class(), -adjusted) < (b.link.class(), -b.adjusted)
                    && (age == 0 || pooled.class() < Localization::File)
            });
            if better {
                best = Some(Localized {
                    age,
                    link: pooled,
                    adjusted,
                });
            }
        }
        best
    }

    /// Step 4: what the deploy-level rule needs.
    fn facts(
        &self,
        runtime: &[&Regression],
        incident: &[Regression],
        candidates: &[&DeployWithDiff],
        best: Option<&Localized>,
        persisted: Option<String>,
    ) -> Facts {
        let current = candidates.first().copied();
        let (files, classes): (&[FileDiff], &[FileClass]) = match current.map(|c| &c.diff) {
            Some(DiffState::Parsed { files, classes, .. }) => (files, classes),
            _ => (&[], &[]),
        };
        let parsed = matches!(current.map(|c| &c.diff), Some(DiffState::Parsed { .. }));
        let localization = best.map_or(Localization::None, |b| b.link.class());
        let code_only = classes.iter().all(|c| !c.acts_at_a_distance());
        let has_in_app = runtime
            .iter()
            .any(|x| frames_of(x, incident).iter().any(|f| f.in_app));
        let current_link = best.filter(|b| b.age == 0).map(|b| &b.link);
        let external: Vec<&Regression> = runtime
            .iter()
            .copied()
            .filter(|x| x.externally_correlated)
            .collect();
        let all_external = !runtime.is_empty() && external.len() == runtime.len();
        Facts {
            deploy_known: current.is_some(),
            runtime_changed: parsed.then(|| classes.iter().any(|c| c.is_runtime_relevant())),
            classes: class_names(classes),
            any_new: runtime.iter().any(|x| x.kind == RegressionKind::New),
            metric_rose: runtime
                .iter()
                .all(|x| x.kind.is_metric())
                .then(|| runtime.first().map(|x| x.template.clone()))
                .flatten(),
            external: all_external.then(|| {
                external
                    .iter()
                    .find_map(|x| x.correlation_evidence.clone())
                    .unwrap_or_else(|| {
                        "the same signature rose in services that did not deploy".into()
                    })
            }),
            localization,
            stack_avoids: parsed
                && code_only
                && has_in_app
                && !files.is_empty()
                && current_link.is_none_or(|l| !l.frame_in_changed_file && l.weak == 0.0),
            // The incident is the deploy's if any of its errors is: a
            // dependency cue counts only when every error carries one.
            dependency_cue: runtime
                .iter()
                .map(|x| {
                    decide::dependency_cue(&x.template)
                        .or_else(|| decide::dependency_cue(&x.sample_message))
                })
                .collect::<Option<Vec<String>>>()
                .and_then(|cues| cues.into_iter().next()),
            dependency_setting: crate::settings::dependency_setting(files, classes)
                .map(|s| s.to_string()),
            nothing_external: !runtime.is_empty()
                && runtime.iter().all(|x| {
                    x.hold_remediation_until_ms.is_none()
                        && x.external_cues.iter().all(|c| c.starts_with("upstream:"))
                }),
            late_onset_min: runtime
                .iter()
                .map(|x| match (x.onset_ms, x.deployed_at_ms) {
                    (Some(onset), Some(at)) if onset - at >= decide::LATE_ONSET_MS => {
                        Some((onset - at) / 60_000)
                    }
                    _ => None,
                })
                .collect::<Option<Vec<i64>>>()
                .and_then(|late| late.into_iter().min()),
            persisted_after_rollback: persisted,
            diff_unavailable: match current.map(|c| &c.diff) {
                Some(DiffState::Unavailable(why)) => Some(why.clone()),
                Some(DiffState::Absent) => {
                    Some("the deploy carries no diff and no diff source is configured".into())
                }
                _ => None,
            },
        }
    }

    /// Step 5: the verdict from both answers.
    fn verdict(
        &self,
        r: &Regression,
        candidates: &[&DeployWithDiff],
        best: Option<&Localized>,
        j: &Judgement,
        facts: &Facts,
    ) -> Verdict {
        let localized = best.filter(|b| b.link.class() != Localization::None);
        let mut reasoning: Vec<String> = Vec::new();
        if j.decision != Decision::NotCaused {
            if let Some(b) = localized {
                reasoning.extend(b.link.reasons.iter().take(2).cloned());
            }
        }
        reasoning.extend(j.why.iter().cloned());
        let blamed = match (j.decision, localized) {
            (Decision::Caused, Some(b)) => Some(candidates[b.age].deploy.revision.clone()),
            (Decision::Caused, None) => Some(r.revision.clone()),
            _ => None,
        };
        if let (Some(b), Some(rev)) = (localized, &blamed) {
            if b.age > 0 {
                reasoning.push(format!(
                    "the change is in {rev}, deployed {} deploy(s) before {} (it surfaced later)",
                    b.age, r.revision
                ));
            }
        }
        let evidence: Vec<Evidence> = match (j.decision, localized) {
            (Decision::NotCaused, _) | (_, None) => Vec::new(),
            (_, Some(b)) => b.link.evidence.clone(),
        };
        let localization = match j.decision {
            Decision::NotCaused if facts.external.is_some() => Localization::None,
            _ => localized.map_or(Localization::None, |b| b.link.class()),
        };
        Verdict {
            id: String::new(),
            service: r.service.clone(),
            revision: r.revision.clone(),
            blamed_revision: blamed,
            decision: j.decision,
            confidence: round3(j.confidence.clamp(0.0, 1.0)),
            reasoning: reasoning.join("; "),
            evidence,
            signatures: Vec::new(),
            regression_ids: Vec::new(),
            file_classes: facts.classes.clone(),
            decided_at_ms: r.detected_at_ms,
            adjudicator: "rules".to_owned(),
            incident_id: None,
            incident_seq: 0,
            localization: Some(localization),
        }
    }

    /// Step 2: a failed build, judged by the changed files/lines its log names.
    pub(crate) fn judge_build(&self, r: &Regression, current: Option<&DeployWithDiff>) -> Verdict {
        let base = |decision, confidence: f64, reasoning: String, evidence: Vec<Evidence>| {
            let localization = if evidence.iter().any(|e| e.line.is_some()) {
                Localization::Line
            } else if evidence.is_empty() {
                Localization::None
            } else {
                Localization::File
            };
            Verdict {
                id: String::new(),
                service: r.service.clone(),
                revision: r.revision.clone(),
                blamed_revision: (decision == Decision::Caused).then(|| r.revision.clone()),
                decision,
                confidence: round3(confidence),
                reasoning,
                evidence,
                signatures: Vec::new(),
                regression_ids: Vec::new(),
                file_classes: Vec::new(),
                decided_at_ms: r.detected_at_ms,
                adjudicator: "rules".to_owned(),
                incident_id: None,
                incident_seq: 0,
                localization: Some(localization),
            }
        };
        let Some(DiffState::Parsed { files, classes, .. }) = current.map(|c| &c.diff) else {
            return base(
                Decision::Caused,
                0.7,
                format!("the build of {} failed (no diff to cite)", r.revision),
                vec![],
            );
        };
        let log = match &r.sample_stack {
            Some(s) if !s.is_empty() => format!("{}\n{s}", r.sample_message),
            _ => r.sample_message.clone(),
        };
        let l = link::link_build(&log, files, self.config.line_slack);
        let mut v = if !classes.iter().any(|c| c.can_break_build()) {
            base(
                Decision::Inconclusive,
                0.3,
                format!(
                    "the build of {} failed, but the deploy changed only documentation: likely infrastructure or a flaky step",
                    r.revision
                ),
                vec![],
            )
        } else if l.evidence.is_empty() {
            base(
                Decision::Caused,
                0.7,
                format!(
                    "the build of {} failed; the log names no changed file",
                    r.revision
                ),
                vec![],
            )
        } else {
            base(
                Decision::Caused,
                l.strong,
                format!(
                    "the build of {} failed; {}",
                    r.revision,
                    l.reasons.join("; ")
                ),
                l.evidence,
            )
        };
        v.file_classes = class_names(classes);
        v
    }
}

/// The incident's links to one diff, pooled: the regression whose link is
/// best (class first, then score) gives the localization, evidence and
/// reasons; the identifier evidence is the best of any.
fn pool(
    located: &[Vec<link::Located>],
    tokens: &[BTreeSet<String>],
    files: &[FileDiff],
    classes: &[FileClass],
    slack: u32,
) -> Link {
    let mut best: Option<Link> = None;
    let mut any_in_file = false;
    for (l, t) in located.iter().zip(tokens) {
        let link = link::link_runtime(l, t, files, classes, slack);
        any_in_file |= link.frame_in_changed_file;
        let better = best
            .as_ref()
            .is_none_or(|b| (link.class(), -link.score()) < (b.class(), -b.score()));
        if better {
            best = Some(link);
        }
    }
    let mut out = best.unwrap_or_default();
    out.frame_in_changed_file = any_in_file;
    out
}

/// The identifiers of a regression's error text worth looking for in a diff.
fn tokens_of(r: &Regression) -> BTreeSet<String> {
    let texts: Vec<&str> = [
        Some(r.template.as_str()),
        Some(r.sample_message.as_str()),
        r.exception_type.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    link::tokens(&texts)
}

/// Sets the incident fields: id, update number, the regressions and
/// signatures judged, and the verdict's own id (one per update).
fn stamp(v: &mut Verdict, r: &Regression, incident: &[Regression], seq: i32) {
    let incident_id = incident::incident_id(&r.service, &r.revision);
    v.id = stable_id(&[&incident_id, &r.id]);
    v.incident_id = Some(incident_id);
    v.incident_seq = seq;
    v.regression_ids = incident.iter().map(|x| x.id.clone()).collect();
    let mut sigs: Vec<String> = Vec::new();
    for x in incident {
        if !sigs.contains(&x.signature) {
            sigs.push(x.signature.clone());
        }
    }
    v.signatures = sigs;
    v.decided_at_ms = r.detected_at_ms;
}

pub(crate) fn class_names(classes: &[FileClass]) -> Vec<String> {
    let set: BTreeSet<&str> = classes.iter().map(|c| c.as_str()).collect();
    set.into_iter().map(str::to_owned).collect()
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
