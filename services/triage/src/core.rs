//! Triage's pure core: regressions + the deploys' diffs → verdicts that cite a
//! changed line, or say why they cannot. Sync, no IO, deterministic: the
//! decision time is the regression's event time, never the clock.
//!
//! Rules, in order (scores and confidences are explained in [`crate::link`]):
//! 1. externally correlated (the detector saw the rise where nothing deployed)
//!    → `not_caused`, with the detector's evidence as the reason;
//! 2. a failed build → `caused`, citing changed files/lines the build log names
//!    (`inconclusive` when the deploy changed only docs: likely infrastructure);
//! 3. no known deploy or no diff → `inconclusive`;
//! 4. lookback: the regressed revision's deploy and the `lookback_deploys − 1`
//!    before it are linked (frames are mapped back through newer diffs), each
//!    score multiplied by `recency_decay^age`; the best at or above
//!    `caused_threshold` is blamed → `caused`;
//! 5. a deploy that changed only tests, docs or CI → `not_caused`;
//! 6. code-only changes that no in-app frame and no identifier touch →
//!    `not_caused` (config, dependency, build, migration and unknown files can
//!    break code the stack never names, so they block this rule);
//! 7. otherwise `inconclusive` (what the optional LLM adjudicator looks at).

use std::collections::{BTreeMap, BTreeSet};

use selfheal_common::config::TriageConfig;
use selfheal_common::ids::stable_id;
use selfheal_schemas::{AnyEvent, Decision, Deploy, Evidence, Regression, RegressionKind, Verdict};

use crate::classes::{Classifier, FileClass};
use crate::diff::{self, FileDiff};
use crate::link::{self, Link};
use crate::{Error, Result};

/// Confidence of `not_caused` when only tests/docs/CI changed.
const NON_RUNTIME_CONFIDENCE: f64 = 0.95;
/// Confidence of `not_caused` when the stack avoids every changed code file.
const STACK_AVOIDS_CONFIDENCE: f64 = 0.75;
/// Confidence of `not_caused` for externally correlated regressions.
const EXTERNAL_CONFIDENCE: f64 = 0.9;

/// Where a deploy's diff stands.
#[derive(Debug, Clone, PartialEq)]
pub enum DiffState {
    /// Parsed and classified.
    Parsed {
        /// The files.
        files: Vec<FileDiff>,
        /// Class of each file, same order.
        classes: Vec<FileClass>,
        /// Whether the text was cut at `max_diff_bytes`.
        truncated: bool,
    },
    /// Not inline and not fetched yet.
    Absent,
    /// Fetching failed or no source is configured; the reason.
    Unavailable(String),
}

/// A deploy triage remembers.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployRecord {
    /// The event.
    pub deploy: Deploy,
    /// Its diff.
    pub diff: DiffState,
}

/// The triage state: recent deploys per service with their parsed diffs.
#[derive(Debug)]
pub struct Triage {
    config: TriageConfig,
    classifier: Classifier,
    /// Per service, ordered by deploy time (event time), oldest first.
    deploys: BTreeMap<String, Vec<DeployRecord>>,
    /// Regressions read before their deploy, by (service, revision).
    held: BTreeMap<(String, String), Vec<Regression>>,
}

/// Most regressions held for deploys not yet read; beyond it the oldest is
/// judged without its deploy (bounded memory).
const MAX_HELD: usize = 10_000;

/// What [`Triage::admit`] decided for a regression.
#[derive(Debug, Clone, PartialEq)]
pub enum Admitted {
    /// Judge these now.
    Judge(Vec<Regression>),
    /// Held until its deploy is read.
    Held,
}

impl Triage {
    /// A triage core with the given settings; fails on an invalid class override.
    pub fn new(config: TriageConfig) -> Result<Self> {
        let classifier = Classifier::new(&config.class_overrides).map_err(Error::Config)?;
        Ok(Self {
            config,
            classifier,
            deploys: BTreeMap::new(),
            held: BTreeMap::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &TriageConfig {
        &self.config
    }

    /// Feeds one event; returns the verdicts it produces (diffs must be inline
    /// or attached with [`Triage::set_diff`] beforehand).
    pub fn on_event(&mut self, event: &AnyEvent) -> Vec<Verdict> {
        match event {
            AnyEvent::Deploy(d) => {
                self.on_deploy(d);
                self.release(d).iter().map(|r| self.judge(r)).collect()
            }
            AnyEvent::Regression(r) => match self.admit(r) {
                Admitted::Judge(list) => list.iter().map(|r| self.judge(r)).collect(),
                Admitted::Held => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Triage reads deploys and regressions from two topics in no guaranteed
    /// relative order. A regression of a deployed revision whose Deploy has not
    /// been read yet is held until it is (the detector only flags revisions it
    /// saw deployed, so that Deploy is on its topic): judging it now would say
    /// "no diff" about a deploy that has one. Build failures and externally
    /// correlated regressions need no diff and pass at once.
    pub fn admit(&mut self, r: &Regression) -> Admitted {
        let needs_deploy = r.kind != RegressionKind::BuildFailure && !r.externally_correlated;
        let known = self
            .deploys
            .get(&r.service)
            .is_some_and(|l| l.iter().any(|d| d.deploy.revision == r.revision));
        if !needs_deploy || known {
            return Admitted::Judge(vec![r.clone()]);
        }
        self.held
            .entry((r.service.clone(), r.revision.clone()))
            .or_default()
            .push(r.clone());
        let total: usize = self.held.values().map(Vec::len).sum();
        if total > MAX_HELD {
            // Judge the oldest held regression without its deploy.
            let oldest = self
                .held
                .iter()
                .flat_map(|(k, v)| {
                    v.iter()
                        .map(move |r| (r.detected_at_ms, k.clone(), r.id.clone()))
                })
                .min();
            if let Some((_, key, id)) = oldest {
                let list = self.held.get_mut(&key).expect("present");
                let pos = list.iter().position(|r| r.id == id).expect("present");
                let r = list.remove(pos);
                if list.is_empty() {
                    self.held.remove(&key);
                }
                return Admitted::Judge(vec![r]);
            }
        }
        Admitted::Held
    }

    /// The held regressions a newly read deploy unblocks.
    pub fn release(&mut self, d: &Deploy) -> Vec<Regression> {
        self.held
            .remove(&(d.service.clone(), d.revision.clone()))
            .unwrap_or_default()
    }

    /// Remembers a deploy (parsing its inline diff, if any). A re-delivered
    /// deploy replaces the earlier copy.
    pub fn on_deploy(&mut self, d: &Deploy) {
        let diff = match &d.diff {
            Some(text) => self.parse(d.repo.as_deref(), text),
            None => DiffState::Absent,
        };
        let list = self.deploys.entry(d.service.clone()).or_default();
        list.retain(|r| r.deploy.revision != d.revision);
        let at = list.partition_point(|r| r.deploy.deployed_at_ms <= d.deployed_at_ms);
        list.insert(
            at,
            DeployRecord {
                deploy: d.clone(),
                diff,
            },
        );
        let keep = self
            .config
            .deploys_per_service
            .max(self.config.lookback_deploys)
            .max(1);
        if list.len() > keep {
            list.drain(..list.len() - keep);
        }
    }

    /// Attaches a fetched diff (or the reason it could not be fetched).
    pub fn set_diff(&mut self, service: &str, revision: &str, text: Result<String, String>) {
        let repo = self
            .deploys
            .get(service)
            .and_then(|l| l.iter().find(|r| r.deploy.revision == revision))
            .and_then(|r| r.deploy.repo.clone());
        let state = match text {
            Ok(t) => self.parse(repo.as_deref(), &t),
            Err(reason) => DiffState::Unavailable(reason),
        };
        if let Some(rec) = self
            .deploys
            .get_mut(service)
            .and_then(|l| l.iter_mut().find(|r| r.deploy.revision == revision))
        {
            rec.diff = state;
        }
    }

    fn parse(&self, repo: Option<&str>, text: &str) -> DiffState {
        let max = self.config.max_diff_bytes.max(1);
        let (text, truncated) = if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            (&text[..cut], true)
        } else {
            (text, false)
        };
        let files = diff::parse(text);
        let classes = files
            .iter()
            .map(|f| self.classifier.classify(repo, f.path()))
            .collect();
        DiffState::Parsed {
            files,
            classes,
            truncated,
        }
    }

    /// The deploys a regression is judged against, newest first: the regressed
    /// revision's deploy and up to `lookback_deploys − 1` before it.
    pub fn lookback(&self, r: &Regression) -> Vec<&DeployRecord> {
        let Some(list) = self.deploys.get(&r.service) else {
            return Vec::new();
        };
        let Some(pos) = list.iter().rposition(|d| d.deploy.revision == r.revision) else {
            return Vec::new();
        };
        let n = self.config.lookback_deploys.max(1);
        list[..=pos].iter().rev().take(n).collect()
    }

    /// Deploys in a regression's lookback whose diff is neither inline nor fetched.
    pub fn missing_diffs(&self, r: &Regression) -> Vec<Deploy> {
        self.lookback(r)
            .into_iter()
            .filter(|d| d.diff == DiffState::Absent)
            .map(|d| d.deploy.clone())
            .collect()
    }

    /// Judges one regression.
    pub fn judge(&self, r: &Regression) -> Verdict {
        let candidates = self.lookback(r);
        let current = candidates.first().copied();
        let (files, classes): (&[FileDiff], &[FileClass]) = match current.map(|c| &c.diff) {
            Some(DiffState::Parsed { files, classes, .. }) => (files, classes),
            _ => (&[], &[]),
        };
        let class_names = class_names(classes);
        let verdict =
            |decision, confidence: f64, reasoning: String, evidence, blamed: Option<&str>| {
                Verdict {
                    id: stable_id(&[&r.service, &r.revision, &r.id]),
                    service: r.service.clone(),
                    revision: r.revision.clone(),
                    blamed_revision: blamed.map(str::to_owned),
                    decision,
                    confidence: round3(confidence.clamp(0.0, 1.0)),
                    reasoning,
                    evidence,
                    signatures: vec![r.signature.clone()],
                    regression_ids: vec![r.id.clone()],
                    file_classes: class_names.clone(),
                    decided_at_ms: r.detected_at_ms,
                    adjudicator: "rules".to_owned(),
                }
            };

        if r.externally_correlated {
            let why = r.correlation_evidence.clone().unwrap_or_else(|| {
                "the same signature rose in services that did not deploy".into()
            });
            return verdict(
                Decision::NotCaused,
                EXTERNAL_CONFIDENCE,
                format!("externally correlated: {why}"),
                vec![],
                None,
            );
        }
        let Some(current) = current else {
            return verdict(
                Decision::Inconclusive,
                0.0,
                format!(
                    "no deploy of {} {} is known, so there is no diff to check",
                    r.service, r.revision
                ),
                vec![],
                None,
            );
        };
        let DiffState::Parsed { .. } = &current.diff else {
            let why = match &current.diff {
                DiffState::Unavailable(reason) => {
                    format!("the diff could not be obtained: {reason}")
                }
                _ => "the deploy carries no diff and no diff source is configured".to_owned(),
            };
            return verdict(Decision::Inconclusive, 0.0, why, vec![], None);
        };

        if r.kind == RegressionKind::BuildFailure {
            let log = match &r.sample_stack {
                Some(s) if !s.is_empty() => format!("{}\n{s}", r.sample_message),
                _ => r.sample_message.clone(),
            };
            let l = link::link_build(&log, files, self.config.line_slack);
            if !classes.iter().any(|c| c.can_break_build()) {
                return verdict(
                    Decision::Inconclusive,
                    0.3,
                    format!(
                        "the build of {} failed, but the deploy changed only documentation: likely infrastructure or a flaky step",
                        r.revision
                    ),
                    vec![],
                    None,
                );
            }
            let (confidence, why) = if l.evidence.is_empty() {
                (0.7, "the log names no changed file".to_owned())
            } else {
                (l.strong, l.reasons.join("; "))
            };
            return verdict(
                Decision::Caused,
                confidence,
                format!("the build of {} failed; {why}", r.revision),
                l.evidence,
                Some(&r.revision),
            );
        }

        // Runtime error: link against every deploy of the lookback.
        let located = link::locate(&r.frames, &r.service);
        let texts: Vec<&str> = [
            Some(r.template.as_str()),
            Some(r.sample_message.as_str()),
            r.exception_type.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let tokens = link::tokens(&texts);
        let mut frames_here = located.clone();
        let mut best: Option<(f64, usize, Link)> = None;
        let mut current_link = Link::default();
        for (age, cand) in candidates.iter().enumerate() {
            if age > 0 {
                // Map frames from the numbering after deploy `age − 1` to before it.
                if let DiffState::Parsed { files, .. } = &candidates[age - 1].diff {
                    frames_here = link::map_back(&frames_here, files);
                }
            }
            let DiffState::Parsed { files, classes, .. } = &cand.diff else {
                continue;
            };
            let l = link::link_runtime(
                &frames_here,
                &tokens,
                files,
                classes,
                self.config.line_slack,
            );
            let adjusted = l.score() * self.config.recency_decay.powi(age as i32);
            if age == 0 {
                current_link = l.clone();
            }
            if best.as_ref().is_none_or(|(s, _, _)| adjusted > *s) {
                best = Some((adjusted, age, l));
            }
        }
        if let Some((score, age, l)) = best.filter(|(s, _, _)| *s >= self.config.caused_threshold) {
            let blamed = &candidates[age].deploy.revision;
            let mut reasoning = l
                .reasons
                .iter()
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            if age > 0 {
                reasoning.push_str(&format!(
                    " — blamed on {blamed}, deployed {age} deploy(s) before {} (the change surfaced later)",
                    r.revision
                ));
            }
            return verdict(Decision::Caused, score, reasoning, l.evidence, Some(blamed));
        }

        let runtime_relevant: Vec<FileClass> = classes
            .iter()
            .copied()
            .filter(|c| c.is_runtime_relevant())
            .collect();
        if runtime_relevant.is_empty() {
            return verdict(
                Decision::NotCaused,
                NON_RUNTIME_CONFIDENCE,
                format!(
                    "the deploy changed only {} files, which do not run in production",
                    class_names.join("/")
                ),
                vec![],
                None,
            );
        }
        let at_a_distance: BTreeSet<&str> = runtime_relevant
            .iter()
            .filter(|c| c.acts_at_a_distance())
            .map(|c| c.as_str())
            .collect();
        let has_in_app_frames = located.iter().any(|f| f.in_app && !f.path.is_empty());
        let score = current_link.score();
        if at_a_distance.is_empty()
            && has_in_app_frames
            && !current_link.frame_in_changed_file
            && current_link.weak == 0.0
        {
            return verdict(
                Decision::NotCaused,
                STACK_AVOIDS_CONFIDENCE,
                format!(
                    "none of the error's {} stack frames is in a file this deploy changed, and no identifier of the error appears in the diff",
                    located.len()
                ),
                vec![],
                None,
            );
        }
        let mut why = Vec::new();
        if !current_link.reasons.is_empty() {
            why.push(format!(
                "partial evidence (score {:.2} < {:.2}): {}",
                score,
                self.config.caused_threshold,
                current_link.reasons.join("; ")
            ));
        } else if !has_in_app_frames {
            why.push("the error has no in-app stack frame to link".to_owned());
        } else {
            why.push("no stack frame points at a changed line".to_owned());
        }
        if !at_a_distance.is_empty() {
            why.push(format!(
                "the deploy changed {} files, which can break code the stack does not name",
                at_a_distance.into_iter().collect::<Vec<_>>().join("/")
            ));
        }
        verdict(
            Decision::Inconclusive,
            1.0 - score,
            why.join("; "),
            current_link.evidence,
            None,
        )
    }

    /// The narrowed evidence an adjudicator may see for a regression: the
    /// error, its in-app frames, and the hunks of the lookback deploys that the
    /// frames or identifiers touch (else every runtime-relevant hunk), cut to
    /// `llm_max_prompt_chars`.
    pub fn brief(&self, r: &Regression) -> Option<Brief> {
        let candidates = self.lookback(r);
        let mut hunks = Vec::new();
        let located = link::locate(&r.frames, &r.service);
        let tokens = link::tokens(&[&r.template, &r.sample_message]);
        let mut budget = self.config.llm_max_prompt_chars.max(1000) / 2;
        for cand in &candidates {
            let DiffState::Parsed { files, classes, .. } = &cand.diff else {
                continue;
            };
            let touched: Vec<usize> = (0..files.len())
                .filter(|&i| classes[i].is_runtime_relevant() && !files[i].binary)
                .collect();
            let focused: Vec<usize> = touched
                .iter()
                .copied()
                .filter(|&i| {
                    located.iter().any(|f| {
                        crate::frames::match_frame(&f.path, f.rooted, files[i].path(), &f.service)
                            .is_some()
                    }) || files[i]
                        .changed()
                        .any(|(_, l)| tokens.iter().any(|t| link::contains_word(&l.text, t)))
                })
                .collect();
            for i in if focused.is_empty() { touched } else { focused } {
                for h in &files[i].hunks {
                    let mut text = format!("{}\n", h.header);
                    for l in &h.lines {
                        let mark = match l.kind {
                            diff::LineKind::Added => '+',
                            diff::LineKind::Removed => '-',
                            diff::LineKind::Context => ' ',
                        };
                        text.push_str(&format!("{:>5} {mark}{}\n", l.at, l.text));
                    }
                    if text.len() > budget {
                        continue;
                    }
                    budget -= text.len();
                    hunks.push(BriefHunk {
                        revision: cand.deploy.revision.clone(),
                        file: files[i].path().to_owned(),
                        text,
                    });
                }
            }
        }
        if hunks.is_empty() {
            return None;
        }
        Some(Brief {
            error: format!(
                "{}\n{}",
                r.exception_type.as_deref().unwrap_or_default(),
                r.sample_message
            ),
            frames: r
                .frames
                .iter()
                .filter(|f| f.in_app)
                .take(10)
                .map(|f| format!("{} ({}:{})", f.function, f.file, f.line.unwrap_or_default()))
                .collect(),
            hunks,
        })
    }

    /// Whether `(file, line)` is a changed line in the diff of `revision`
    /// (the check every LLM citation must pass).
    pub fn is_changed_line(
        &self,
        service: &str,
        revision: &str,
        file: &str,
        line: u32,
    ) -> Option<Evidence> {
        let rec = self
            .deploys
            .get(service)?
            .iter()
            .find(|d| d.deploy.revision == revision)?;
        let DiffState::Parsed { files, .. } = &rec.diff else {
            return None;
        };
        let f = files.iter().find(|f| f.path() == file)?;
        let (h, _) = f.changed().find(|(_, l)| l.at == line)?;
        Some(Evidence {
            file: file.to_owned(),
            line: i32::try_from(line).ok(),
            hunk_header: Some(f.hunks[h].header.clone()),
            frame: None,
            token: None,
            strength: "llm".to_owned(),
        })
    }
}

/// The evidence an adjudicator sees (untrusted text; the client fences it).
#[derive(Debug, Clone, PartialEq)]
pub struct Brief {
    /// Exception type and message.
    pub error: String,
    /// In-app frames, innermost first.
    pub frames: Vec<String>,
    /// Candidate hunks with new-file line numbers.
    pub hunks: Vec<BriefHunk>,
}

/// One hunk shown to an adjudicator.
#[derive(Debug, Clone, PartialEq)]
pub struct BriefHunk {
    /// Deploy revision the hunk belongs to.
    pub revision: String,
    /// File path.
    pub file: String,
    /// Header and numbered lines.
    pub text: String,
}

fn class_names(classes: &[FileClass]) -> Vec<String> {
    let set: BTreeSet<&str> = classes.iter().map(|c| c.as_str()).collect();
    set.into_iter().map(str::to_owned).collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfheal_schemas::{Frame, RateBasis};

    const DIFF: &str = "diff --git a/src/checkout/pricing.py b/src/checkout/pricing.py\n--- a/src/checkout/pricing.py\n+++ b/src/checkout/pricing.py\n@@ -214,7 +214,7 @@ def quote(cart):\n     total = 0\n     for item in cart:\n-        rate = rates.get(item.currency, 1.0)\n+        rate = rates[item.currency]\n         total += item.price * rate\n";

    pub(crate) fn deploy_at(rev: &str, prev: &str, at: i64, diff: &str) -> Deploy {
        Deploy {
            service: "checkout".into(),
            revision: rev.into(),
            previous_revision: Some(prev.into()),
            repo: None,
            commit_range: None,
            diff: Some(diff.into()),
            diff_url: None,
            deployed_at_ms: at,
        }
    }

    fn deploy(diff: &str) -> AnyEvent {
        AnyEvent::Deploy(deploy_at("b", "a", 0, diff))
    }

    fn frame(file: &str, line: i32, function: &str) -> Frame {
        Frame {
            file: file.into(),
            line: Some(line),
            function: function.into(),
            in_app: true,
        }
    }

    fn regression(frames: Vec<Frame>) -> Regression {
        Regression {
            id: "r1".into(),
            service: "checkout".into(),
            revision: "b".into(),
            previous_revision: Some("a".into()),
            kind: RegressionKind::New,
            signature: "s".into(),
            template: "KeyError: <*>".into(),
            exception_type: Some("KeyError".into()),
            detected_at_ms: 42,
            deployed_at_ms: Some(0),
            window_start_ms: 0,
            window_end_ms: 42,
            observed: 5,
            expected: 0.5,
            rate_ratio: 10.0,
            p_value: 0.001,
            q_value: None,
            requests: None,
            baseline_requests: None,
            rate_basis: RateBasis::PerTime,
            externally_correlated: false,
            correlation_evidence: None,
            sample_message: "KeyError: 'EUR'".into(),
            sample_stack: None,
            frames,
            onset_ms: None,
            external_cues: Vec::new(),
            hold_remediation_until_ms: None,
        }
    }

    fn triage() -> Triage {
        Triage::new(TriageConfig::default()).unwrap()
    }

    fn pricing_frame(line: i32) -> Vec<Frame> {
        vec![frame("/app/src/checkout/pricing.py", line, "quote")]
    }

    #[test]
    fn a_regression_read_before_its_deploy_waits_for_it() {
        let mut t = triage();
        let r = regression(pricing_frame(216));
        assert!(t.on_event(&AnyEvent::Regression(r)).is_empty(), "held");
        let v = t.on_event(&deploy(DIFF));
        assert_eq!(v.len(), 1, "judged when the deploy is read");
        assert_eq!(v[0].decision, Decision::Caused);
    }

    #[test]
    fn frame_on_changed_line_is_caused_with_citation() {
        let mut t = triage();
        t.on_event(&deploy(DIFF));
        let v = &t.on_event(&AnyEvent::Regression(regression(pricing_frame(216))))[0];
        assert_eq!(v.decision, Decision::Caused);
        assert_eq!(v.evidence[0].file, "src/checkout/pricing.py");
        assert_eq!(v.evidence[0].line, Some(216));
        assert_eq!(v.evidence[0].strength, "strong");
        assert_eq!(v.blamed_revision.as_deref(), Some("b"));
        assert_eq!(v.decided_at_ms, 42, "event time, not wall clock");
        assert!(v.confidence >= 0.9, "{}", v.confidence);
        assert_eq!(v.file_classes, vec!["runtime".to_owned()]);
    }

    #[test]
    fn frame_far_from_the_change_in_the_same_file_is_inconclusive() {
        let mut t = triage();
        t.on_event(&deploy(DIFF));
        let v = t.judge(&regression(vec![frame(
            "/app/src/checkout/pricing.py",
            400,
            "render",
        )]));
        assert_eq!(v.decision, Decision::Inconclusive, "{}", v.reasoning);
    }

    #[test]
    fn frame_in_the_changed_function_but_far_from_the_line_is_caused() {
        let mut t = triage();
        t.on_event(&deploy(DIFF));
        let v = t.judge(&regression(vec![frame(
            "/app/src/checkout/pricing.py",
            260,
            "quote",
        )]));
        assert_eq!(v.decision, Decision::Caused, "{}", v.reasoning);
        assert!(v.reasoning.contains("function `quote`"), "{}", v.reasoning);
    }

    #[test]
    fn trap_docs_only_deploy_during_an_outage_is_not_caused() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/docs/runbook.md b/docs/runbook.md\n--- a/docs/runbook.md\n+++ b/docs/runbook.md\n@@ -3 +3 @@\n-old quote\n+new quote\n",
        ));
        // An outage: connection errors everywhere, frames in unchanged code.
        let mut r = regression(vec![frame("/app/src/checkout/payments.py", 88, "charge")]);
        r.template = "ConnectionError: payments-api unreachable".into();
        r.sample_message = r.template.clone();
        let v = t.judge(&r);
        assert_eq!(v.decision, Decision::NotCaused, "{}", v.reasoning);
        assert_eq!(v.file_classes, vec!["docs".to_owned()]);
        assert!(v.confidence >= 0.9);
    }

    #[test]
    fn trap_test_file_with_the_failing_function_name_is_not_blamed() {
        let mut t = triage();
        t.on_event(&deploy(
            "diff --git a/tests/test_pricing.py b/tests/test_pricing.py\n--- a/tests/test_pricing.py\n+++ b/tests/test_pricing.py\n@@ -214,3 +214,3 @@ def quote(cart):\n     total = 0\n-    assert quote(cart) == 1\n+    assert quote(cart) == 2\n     return total\n",
        ));
        let v = t.judge(&regression(pricing_frame(215)));
        assert_eq!(v.decision, Decision::NotCaused, "{}", v.reasoning);
        assert!(v.evidence.is_empty());
        assert_eq!(v.file_classes, vec!["test".to_owned()]);
    }

    #[test]
    fn trap_rename_links_the_new_path() {
        let mut t = triage();
        t.on_event(&deploy(
            "diff --git a/src/checkout/price.py b/src/checkout/pricing.py\nsimilarity index 95%\nrename from src/checkout/price.py\nrename to src/checkout/pricing.py\n--- a/src/checkout/price.py\n+++ b/src/checkout/pricing.py\n@@ -10,3 +10,3 @@ def quote(cart):\n     a = 1\n-    b = rates.get(c, 1)\n+    b = rates[c]\n     return b\n",
        ));
        let v = t.judge(&regression(pricing_frame(11)));
        assert_eq!(v.decision, Decision::Caused, "{}", v.reasoning);
        assert_eq!(v.evidence[0].file, "src/checkout/pricing.py");
        assert_eq!(v.evidence[0].line, Some(11));
    }

    #[test]
    fn trap_pure_rename_does_not_make_an_old_path_frame_match() {
        let mut t = triage();
        t.on_event(&deploy(
            "diff --git a/src/a.py b/src/b.py\nsimilarity index 100%\nrename from src/a.py\nrename to src/b.py\n",
        ));
        let v = t.judge(&regression(vec![frame("/app/src/b.py", 3, "f")]));
        assert_ne!(v.decision, Decision::Caused, "{}", v.reasoning);
    }

    #[test]
    fn externally_correlated_is_not_caused_even_with_a_matching_frame() {
        let mut t = triage();
        t.on_event(&deploy(DIFF));
        let mut r = regression(pricing_frame(216));
        r.externally_correlated = true;
        r.correlation_evidence = Some("payments and billing rose too".into());
        let v = t.judge(&r);
        assert_eq!(v.decision, Decision::NotCaused);
        assert!(v.reasoning.contains("payments and billing rose too"));
    }

    #[test]
    fn unknown_deploy_is_inconclusive() {
        let t = triage();
        assert_eq!(
            t.judge(&regression(pricing_frame(1))).decision,
            Decision::Inconclusive
        );
    }

    #[test]
    fn unrelated_code_change_with_a_full_stack_elsewhere_is_not_caused() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/src/checkout/emails.py\n+++ b/src/checkout/emails.py\n@@ -5,3 +5,3 @@ def send(msg):\n     a = 1\n-    b = 2\n+    b = 3\n     c = 4\n",
        ));
        let v = t.judge(&regression(pricing_frame(216)));
        assert_eq!(v.decision, Decision::NotCaused, "{}", v.reasoning);
        assert_eq!(v.confidence, STACK_AVOIDS_CONFIDENCE);
    }

    #[test]
    fn config_change_is_never_ruled_out_by_the_stack() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/config/production.yaml\n+++ b/config/production.yaml\n@@ -5,3 +5,3 @@\n a: 1\n-currencies: [EUR, USD]\n+currencies: [USD]\n c: 4\n",
        ));
        let v = t.judge(&regression(pricing_frame(216)));
        assert_eq!(v.decision, Decision::Inconclusive, "{}", v.reasoning);
        assert!(v.reasoning.contains("config"), "{}", v.reasoning);
        assert_eq!(v.evidence[0].token.as_deref(), Some("EUR"), "{v:?}");
    }

    #[test]
    fn lookback_blames_an_earlier_deploy_and_maps_lines_through_later_diffs() {
        let mut t = triage();
        // Deploy a introduced the bug at line 216; deploy b (docs) and c (adds
        // two lines at the top of pricing.py) came after.
        t.on_deploy(&deploy_at("a", "z", 0, DIFF));
        t.on_deploy(&deploy_at(
            "b",
            "a",
            10,
            "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-x\n+y\n",
        ));
        t.on_deploy(&deploy_at(
            "c",
            "b",
            20,
            "--- a/src/checkout/pricing.py\n+++ b/src/checkout/pricing.py\n@@ -1,1 +1,3 @@\n+import os\n+import sys\n import json\n",
        ));
        let mut r = regression(pricing_frame(218));
        r.revision = "c".into();
        let v = t.judge(&r);
        assert_eq!(v.decision, Decision::Caused, "{}", v.reasoning);
        assert_eq!(v.blamed_revision.as_deref(), Some("a"));
        assert_eq!(v.evidence[0].line, Some(216), "cited in a's numbering");
        assert!(
            v.confidence < 0.92 * 0.9,
            "older deploys are discounted: {}",
            v.confidence
        );
        // With lookback 1 the old deploy is not considered.
        let mut t1 = Triage::new(TriageConfig {
            lookback_deploys: 1,
            ..TriageConfig::default()
        })
        .unwrap();
        for d in t.deploys["checkout"].iter() {
            t1.on_deploy(&d.deploy);
        }
        assert_ne!(t1.judge(&r).decision, Decision::Caused);
    }

    #[test]
    fn most_recent_deploy_is_favoured_on_equal_evidence() {
        let mut t = triage();
        t.on_deploy(&deploy_at(
            "a",
            "z",
            0,
            "--- a/src/x.py\n+++ b/src/x.py\n@@ -10,1 +10,1 @@ def f():\n-a\n+b\n",
        ));
        t.on_deploy(&deploy_at(
            "b",
            "a",
            10,
            "--- a/src/x.py\n+++ b/src/x.py\n@@ -10,1 +10,1 @@ def f():\n-b\n+c\n",
        ));
        let v = t.judge(&regression(vec![frame("/app/src/x.py", 10, "f")]));
        assert_eq!(v.blamed_revision.as_deref(), Some("b"));
    }

    #[test]
    fn build_failure_cites_the_line_the_log_names() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/src/pricing.rs\n+++ b/src/pricing.rs\n@@ -10,3 +10,3 @@ fn quote() {\n     let a = 1;\n-    let b = a;\n+    let b = x;\n     b\n",
        ));
        let mut r = regression(vec![]);
        r.kind = RegressionKind::BuildFailure;
        r.signature = "build_failure".into();
        r.sample_message = "build failed".into();
        r.sample_stack = Some(
            "error[E0425]: cannot find value `x` in this scope\n  --> src/pricing.rs:11:13\n"
                .into(),
        );
        let v = t.judge(&r);
        assert_eq!(v.decision, Decision::Caused);
        assert_eq!(v.evidence[0].file, "src/pricing.rs");
        assert_eq!(v.evidence[0].line, Some(11));
        assert!(v.confidence >= 0.9);
    }

    #[test]
    fn build_failure_of_a_docs_only_deploy_is_inconclusive() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-a\n+b\n",
        ));
        let mut r = regression(vec![]);
        r.kind = RegressionKind::BuildFailure;
        assert_eq!(t.judge(&r).decision, Decision::Inconclusive);
    }

    #[test]
    fn absent_diff_is_reported_missing_then_inconclusive() {
        let mut t = triage();
        let mut d = deploy_at("b", "a", 0, "");
        d.diff = None;
        t.on_deploy(&d);
        let r = regression(pricing_frame(216));
        assert_eq!(t.missing_diffs(&r).len(), 1);
        assert_eq!(t.judge(&r).decision, Decision::Inconclusive);
        t.set_diff("checkout", "b", Ok(DIFF.to_owned()));
        assert!(t.missing_diffs(&r).is_empty());
        assert_eq!(t.judge(&r).decision, Decision::Caused);
        t.set_diff("checkout", "b", Err("git: unknown revision".into()));
        let v = t.judge(&r);
        assert!(v.reasoning.contains("unknown revision"), "{}", v.reasoning);
    }

    #[test]
    fn jvm_frame_maps_to_package_path() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/services/api/src/main/java/com/shop/Pricing.java\n+++ b/services/api/src/main/java/com/shop/Pricing.java\n@@ -40,3 +40,3 @@ public class Pricing {\n   int a;\n-  Money m = rates.getOrDefault(c, ONE);\n+  Money m = rates.get(c);\n   int b;\n",
        ));
        let r = regression(vec![
            frame("Pricing.java", 41, "com.shop.Pricing.quote"),
            frame("Cart.java", 12, "com.shop.Cart.total"),
        ]);
        let v = t.judge(&r);
        assert_eq!(v.decision, Decision::Caused, "{}", v.reasoning);
        assert_eq!(
            v.evidence[0].file,
            "services/api/src/main/java/com/shop/Pricing.java"
        );
    }

    #[test]
    fn brief_narrows_to_touched_hunks_and_citations_are_checked() {
        let mut t = triage();
        t.on_event(&deploy(&format!(
            "{DIFF}--- a/src/other.py\n+++ b/src/other.py\n@@ -1 +1 @@\n-x\n+y\n"
        )));
        let r = regression(pricing_frame(216));
        let b = t.brief(&r).unwrap();
        assert_eq!(b.hunks.len(), 1, "{b:?}");
        assert_eq!(b.hunks[0].file, "src/checkout/pricing.py");
        assert!(t
            .is_changed_line("checkout", "b", "src/checkout/pricing.py", 216)
            .is_some());
        assert!(t
            .is_changed_line("checkout", "b", "src/checkout/pricing.py", 215)
            .is_none());
        assert!(t
            .is_changed_line("checkout", "b", "src/nope.py", 216)
            .is_none());
    }
}
