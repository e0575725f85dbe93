//! Triage's pure core: regressions + the deploys' diffs → verdicts that cite a
//! changed line, or say why they cannot. Sync, no IO, deterministic: the
//! decision time is the regression's event time, never the clock.
//!
//! The state is the recent deploys per service (with their parsed diffs),
//! the regressions held for a deploy not read yet, and the incidents
//! ([`crate::incident`]). Judging is in [`crate::judge`]: every regression
//! is judged with its deploy's whole incident, `decision` (is the *deploy* to
//! blame, [`crate::decide`]) apart from `localization` (which changed line,
//! function or file the errors point at, [`crate::link`]).

use std::collections::BTreeMap;

use crate::config::TriageConfig;
use selfheal_schemas::{AnyEvent, Deploy, Evidence, Regression, RegressionKind, Verdict};

use crate::classes::{Classifier, FileClass};
use crate::diff::{self, FileDiff};
use crate::error::Result;
use crate::incident::Incidents;
use crate::link;

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

/// A deploy triage remembers, with its diff (inline, fetched, or why not).
#[derive(Debug, Clone, PartialEq)]
pub struct DeployWithDiff {
    /// The event.
    pub deploy: Deploy,
    /// Its diff.
    pub diff: DiffState,
}

/// The triage state: recent deploys per service with their parsed diffs.
#[derive(Debug)]
pub struct Triage {
    pub(crate) config: TriageConfig,
    classifier: Classifier,
    /// Per service, ordered by deploy time (event time), oldest first.
    deploys: BTreeMap<String, Vec<DeployWithDiff>>,
    /// Regressions read before their deploy, by (service, revision).
    held: BTreeMap<(String, String), Vec<Regression>>,
    /// Every judged regression, by its deploy's incident.
    pub(crate) incidents: Incidents,
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
        let classifier = Classifier::new(&config.class_overrides)?;
        Ok(Self {
            config,
            classifier,
            deploys: BTreeMap::new(),
            held: BTreeMap::new(),
            incidents: Incidents::default(),
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
            AnyEvent::Action(a) => self.on_action(a).into_iter().collect(),
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
            self.incidents.add(r);
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
                self.incidents.add(&r);
                return Admitted::Judge(vec![r]);
            }
        }
        Admitted::Held
    }

    /// The held regressions a newly read deploy unblocks.
    pub fn release(&mut self, d: &Deploy) -> Vec<Regression> {
        let released = self
            .held
            .remove(&(d.service.clone(), d.revision.clone()))
            .unwrap_or_default();
        for r in &released {
            self.incidents.add(r);
        }
        released
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
            DeployWithDiff {
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
    pub fn lookback(&self, r: &Regression) -> Vec<&DeployWithDiff> {
        self.lookback_of(&r.service, &r.revision)
    }

    /// [`Triage::lookback`] of a deploy.
    pub(crate) fn lookback_of(&self, service: &str, revision: &str) -> Vec<&DeployWithDiff> {
        let Some(list) = self.deploys.get(service) else {
            return Vec::new();
        };
        let Some(pos) = list.iter().rposition(|d| d.deploy.revision == revision) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use selfheal_schemas::{Decision, Frame, Localization};

    const DIFF: &str = "diff --git a/src/checkout/pricing.py b/src/checkout/pricing.py\n--- a/src/checkout/pricing.py\n+++ b/src/checkout/pricing.py\n@@ -214,7 +214,7 @@ def quote(cart):\n     total = 0\n     for item in cart:\n-        rate = rates.get(item.currency, 1.0)\n+        rate = rates[item.currency]\n         total += item.price * rate\n";

    pub(crate) fn deploy_at(rev: &str, prev: &str, at: i64, diff: &str) -> Deploy {
        Deploy {
            revision: rev.into(),
            previous_revision: Some(prev.into()),
            diff: Some(diff.into()),
            deployed_at_ms: at,
            ..selfheal_schemas::testing::deploy()
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
            signature: "s".into(),
            template: "KeyError: <*>".into(),
            detected_at_ms: 42,
            deployed_at_ms: Some(0),
            window_start_ms: 0,
            window_end_ms: 42,
            expected: 0.5,
            rate_ratio: 10.0,
            sample_message: "KeyError: 'EUR'".into(),
            frames,
            ..selfheal_schemas::testing::regression()
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
    fn frame_far_from_the_change_is_caused_but_localized_to_the_file_only() {
        let mut t = triage();
        t.on_event(&deploy(DIFF));
        let v = t.judge(&regression(vec![frame(
            "/app/src/checkout/pricing.py",
            400,
            "render",
        )]));
        assert_eq!(v.decision, Decision::Caused, "{}", v.reasoning);
        assert_eq!(v.localization, Some(Localization::File));
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
        assert_eq!(v.localization, Some(Localization::Function));
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
        assert!(
            !matches!(
                v.localization,
                Some(Localization::Line | Localization::Function)
            ),
            "{}",
            v.reasoning
        );
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
    fn unrelated_code_change_with_a_full_stack_elsewhere_is_caused_unlocalized() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/src/checkout/emails.py\n+++ b/src/checkout/emails.py\n@@ -5,3 +5,3 @@ def send(msg):\n     a = 1\n-    b = 2\n+    b = 3\n     c = 4\n",
        ));
        let v = t.judge(&regression(pricing_frame(216)));
        // A stack that avoids the change is weak evidence against the deploy:
        // the error is new on this revision and nothing outside explains it.
        assert_eq!(v.decision, Decision::Caused, "{}", v.reasoning);
        assert_eq!(v.localization, Some(Localization::None));
        assert!(v.evidence.is_empty());
        assert!(
            v.confidence < 0.9,
            "weaker than an unlinked stack: {}",
            v.confidence
        );
        assert!(v.reasoning.contains("stack avoids"), "{}", v.reasoning);
    }

    #[test]
    fn config_change_is_never_ruled_out_by_the_stack() {
        let mut t = triage();
        t.on_event(&deploy(
            "--- a/config/production.yaml\n+++ b/config/production.yaml\n@@ -5,3 +5,3 @@\n a: 1\n-currencies: [EUR, USD]\n+currencies: [USD]\n c: 4\n",
        ));
        let v = t.judge(&regression(pricing_frame(216)));
        assert_eq!(v.decision, Decision::Caused, "{}", v.reasoning);
        assert!(v.reasoning.contains("config"), "{}", v.reasoning);
        assert_eq!(v.evidence[0].token.as_deref(), Some("EUR"), "{v:?}");
    }

    #[test]
    fn one_incident_per_deploy_pools_evidence_and_a_failed_rollback_revises_it() {
        let mut t = triage();
        t.on_event(&deploy(DIFF));
        // A stackless sibling first: nothing to localize with yet.
        let mut bare = regression(vec![]);
        bare.id = "r0".into();
        bare.signature = "s0".into();
        let v0 = t.on_event(&AnyEvent::Regression(bare)).remove(0);
        assert_eq!(v0.localization, Some(Localization::None));
        // Its stacked sibling arrives: the incident's verdict cites the line.
        let v1 = t
            .on_event(&AnyEvent::Regression(regression(pricing_frame(216))))
            .remove(0);
        assert_eq!(v1.incident_id, v0.incident_id);
        assert_eq!((v0.incident_seq, v1.incident_seq), (0, 1));
        assert_ne!(v0.id, v1.id);
        assert_eq!(v1.localization, Some(Localization::Line));
        assert_eq!(v1.regression_ids, vec!["r0".to_owned(), "r1".to_owned()]);
        assert_eq!(v1.signatures, vec!["s0".to_owned(), "s".to_owned()]);
        // The fixer rolled back and the errors went on: not the deploy.
        let failed = selfheal_schemas::Action {
            id: "act".into(),
            service: "checkout".into(),
            revision: "b".into(),
            action: selfheal_schemas::ActionKind::Rollback,
            status: selfheal_schemas::ActionStatus::RecoveryFailed,
            rule: "fast_burn_rollback".into(),
            reasons: vec!["not recovered: 9 event(s)".into()],
            executor: None,
            target_revision: Some("a".into()),
            pr_url: None,
            recovery_verified: Some(false),
            signatures: vec![],
            verdict_id: Some(v1.id.clone()),
            decided_at_ms: 900,
            incident_id: v1.incident_id.clone(),
        };
        let v2 = t.on_event(&AnyEvent::Action(failed)).remove(0);
        assert_eq!(v2.decision, Decision::NotCaused);
        assert_eq!(v2.incident_id, v1.incident_id);
        assert_eq!(v2.incident_seq, 2);
        assert_eq!(v2.decided_at_ms, 900);
        assert!(
            v2.reasoning.contains("persisted after rollback"),
            "{}",
            v2.reasoning
        );
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
        assert_eq!(v.localization, Some(Localization::Line));
        // With lookback 1 the old deploy is not considered.
        let mut t1 = Triage::new(TriageConfig {
            lookback_deploys: 1,
            ..TriageConfig::default()
        })
        .unwrap();
        for d in t.deploys["checkout"].iter() {
            t1.on_deploy(&d.deploy);
        }
        let v1 = t1.judge(&r);
        assert_ne!(v1.blamed_revision.as_deref(), Some("a"));
        assert_ne!(v1.localization, Some(Localization::Line));
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
    fn absent_diff_is_reported_missing_and_the_deploy_judged_without_it() {
        let mut t = triage();
        let mut d = deploy_at("b", "a", 0, "");
        d.diff = None;
        t.on_deploy(&d);
        let r = regression(pricing_frame(216));
        assert_eq!(t.missing_diffs(&r).len(), 1);
        let v = t.judge(&r);
        assert_eq!(v.localization, Some(Localization::None));
        assert!(v.reasoning.contains("no diff"), "{}", v.reasoning);
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
