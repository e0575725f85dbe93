//! Triage's pure core: a regression plus its deploy's diff → a verdict that cites
//! a changed line, or says why it cannot.
//!
//! Walking-skeleton rules (the triage issue adds file-class rules, identifier
//! evidence, lookback over earlier deploys and the LLM adjudicator):
//! 1. a regression the detector marked externally correlated → `not_caused`;
//! 2. a failed build → `caused`, citing changed lines named in the build log if any;
//! 3. no diff available → `inconclusive`;
//! 4. an in-app stack frame within `line_slack` lines of an added/removed line of
//!    the same file → `caused`, citing that line;
//! 5. a diff that touches only documentation → `not_caused`;
//! 6. otherwise → `inconclusive`.

use std::collections::BTreeMap;

use selfheal_common::config::TriageConfig;
use selfheal_common::ids::stable_id;
use selfheal_schemas::{
    AnyEvent, Decision, Deploy, Evidence, Frame, Regression, RegressionKind, Verdict,
};

use crate::diff::{self, FileDiff};

/// The triage state: the deploys it has seen, by (service, revision).
#[derive(Debug, Default)]
pub struct Triage {
    config: TriageConfig,
    deploys: BTreeMap<(String, String), Deploy>,
}

impl Triage {
    /// A triage core with the given settings.
    pub fn new(config: TriageConfig) -> Self {
        Self {
            config,
            deploys: BTreeMap::new(),
        }
    }

    /// Feeds one event; returns the verdicts it produces.
    pub fn on_event(&mut self, event: &AnyEvent) -> Vec<Verdict> {
        match event {
            AnyEvent::Deploy(d) => {
                self.deploys
                    .insert((d.service.clone(), d.revision.clone()), d.clone());
                Vec::new()
            }
            AnyEvent::Regression(r) => vec![self.judge(r)],
            _ => Vec::new(),
        }
    }

    /// Judges one regression against its deploy.
    pub fn judge(&self, r: &Regression) -> Verdict {
        let deploy = self.deploys.get(&(r.service.clone(), r.revision.clone()));
        let files = deploy
            .and_then(|d| d.diff.as_deref())
            .map(diff::parse)
            .unwrap_or_default();
        let classes = file_classes(&files);
        let verdict = |decision, confidence, reasoning: String, evidence| Verdict {
            id: stable_id(&[&r.service, &r.revision, &r.id]),
            service: r.service.clone(),
            revision: r.revision.clone(),
            blamed_revision: (decision == Decision::Caused).then(|| r.revision.clone()),
            decision,
            confidence,
            reasoning,
            evidence,
            signatures: vec![r.signature.clone()],
            regression_ids: vec![r.id.clone()],
            file_classes: classes.clone(),
            decided_at_ms: r.detected_at_ms,
            adjudicator: "rules".to_owned(),
        };

        if r.externally_correlated {
            let why = r.correlation_evidence.clone().unwrap_or_else(|| {
                "the same signature rose in services that did not deploy".into()
            });
            return verdict(
                Decision::NotCaused,
                0.9,
                format!("externally correlated: {why}"),
                vec![],
            );
        }
        if r.kind == RegressionKind::BuildFailure {
            let log = r.sample_stack.as_deref().unwrap_or(&r.sample_message);
            let evidence = files_named_in(log, &files);
            return verdict(
                Decision::Caused,
                1.0,
                format!(
                    "the build of {} failed{}",
                    r.revision,
                    if evidence.is_empty() {
                        ""
                    } else {
                        "; the log names changed files"
                    }
                ),
                evidence,
            );
        }
        if deploy.is_none() {
            return verdict(
                Decision::Inconclusive,
                0.0,
                format!(
                    "no deploy of {} {} is known, so there is no diff to check",
                    r.service, r.revision
                ),
                vec![],
            );
        }
        if files.is_empty() {
            return verdict(
                Decision::Inconclusive,
                0.0,
                "the deploy carries no diff (fetching diffs from git is not configured)".to_owned(),
                vec![],
            );
        }
        if let Some(ev) = frame_evidence(&r.frames, &files, self.config.line_slack) {
            let reasoning = format!(
                "stack frame {} at {}:{} is next to a line this deploy changed ({}:{})",
                ev.frame.as_deref().unwrap_or("?"),
                ev.file,
                ev.line.unwrap_or_default(),
                ev.file,
                ev.line.unwrap_or_default(),
            );
            return verdict(Decision::Caused, 0.9, reasoning, vec![ev]);
        }
        if classes.iter().all(|c| c == "docs") {
            return verdict(
                Decision::NotCaused,
                0.9,
                "the deploy changed documentation only; it cannot raise runtime errors".to_owned(),
                vec![],
            );
        }
        verdict(
            Decision::Inconclusive,
            0.3,
            "no stack frame of the error points at a changed line".to_owned(),
            vec![],
        )
    }
}

/// The strongest frame evidence: the innermost in-app frame whose file is in the
/// diff and whose line is within `slack` of a changed line.
fn frame_evidence(frames: &[Frame], files: &[FileDiff], slack: u32) -> Option<Evidence> {
    // Frames are innermost first (the schema's convention); every in-app frame
    // is checked and the closest changed line wins, the innermost on ties.
    let mut best: Option<(u32, Evidence)> = None;
    for frame in frames.iter().filter(|f| f.in_app) {
        let Some(frame_line) = frame.line.and_then(|l| u32::try_from(l).ok()) else {
            continue;
        };
        for file in files.iter().filter(|f| paths_match(&frame.file, f.path())) {
            for hunk in &file.hunks {
                for (line, _) in hunk.added.iter().chain(hunk.removed.iter()) {
                    let distance = line.abs_diff(frame_line);
                    if distance <= slack && best.as_ref().is_none_or(|(d, _)| distance < *d) {
                        best = Some((
                            distance,
                            Evidence {
                                file: file.path().to_owned(),
                                line: i32::try_from(*line).ok(),
                                hunk_header: Some(hunk.header.clone()),
                                frame: Some(format!(
                                    "{} ({}:{})",
                                    frame.function, frame.file, frame_line
                                )),
                                token: None,
                                strength: "strong".to_owned(),
                            },
                        ));
                    }
                }
            }
        }
    }
    best.map(|(_, e)| e)
}

/// Whether a frame's path (`/app/src/x.py`) and a repository path (`src/x.py`)
/// name the same file: one must end with the other at a path boundary.
pub fn paths_match(frame_path: &str, repo_path: &str) -> bool {
    if frame_path.is_empty() || repo_path.is_empty() {
        return false;
    }
    let ends_at_boundary = |long: &str, short: &str| {
        long.ends_with(short)
            && (long.len() == short.len() || long.as_bytes()[long.len() - short.len() - 1] == b'/')
    };
    ends_at_boundary(frame_path, repo_path) || ends_at_boundary(repo_path, frame_path)
}

/// Changed files whose path appears in a build log.
fn files_named_in(log: &str, files: &[FileDiff]) -> Vec<Evidence> {
    files
        .iter()
        .filter(|f| !f.path().is_empty() && log.contains(f.path()))
        .map(|f| Evidence {
            file: f.path().to_owned(),
            line: f
                .hunks
                .first()
                .and_then(|h| h.added.first())
                .and_then(|(l, _)| i32::try_from(*l).ok()),
            hunk_header: f.hunks.first().map(|h| h.header.clone()),
            frame: None,
            token: Some(f.path().to_owned()),
            strength: "weak".to_owned(),
        })
        .collect()
}

/// Coarse file classes of the changed files (skeleton: docs vs runtime).
fn file_classes(files: &[FileDiff]) -> Vec<String> {
    let mut classes: Vec<String> = files
        .iter()
        .map(|f| {
            let p = f.path().to_ascii_lowercase();
            let docs = p.starts_with("docs/")
                || p.contains("/docs/")
                || [".md", ".rst", ".txt", ".adoc"]
                    .iter()
                    .any(|e| p.ends_with(e))
                || p.rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with("license"));
            if docs { "docs" } else { "runtime" }.to_owned()
        })
        .collect();
    classes.sort();
    classes.dedup();
    classes
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfheal_schemas::RateBasis;

    const DIFF: &str = "diff --git a/src/checkout/pricing.py b/src/checkout/pricing.py\n--- a/src/checkout/pricing.py\n+++ b/src/checkout/pricing.py\n@@ -214,7 +214,7 @@ def quote(cart):\n     total = 0\n     for item in cart:\n-        rate = rates.get(item.currency, 1.0)\n+        rate = rates[item.currency]\n         total += item.price * rate\n";

    fn deploy(diff: &str) -> AnyEvent {
        AnyEvent::Deploy(Deploy {
            service: "checkout".into(),
            revision: "b".into(),
            previous_revision: Some("a".into()),
            repo: None,
            commit_range: None,
            diff: Some(diff.into()),
            diff_url: None,
            deployed_at_ms: 0,
        })
    }

    fn regression(frame_file: &str, frame_line: i32) -> Regression {
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
            frames: vec![Frame {
                file: frame_file.into(),
                line: Some(frame_line),
                function: "quote".into(),
                in_app: true,
            }],
        }
    }

    #[test]
    fn frame_on_changed_line_is_caused_with_citation() {
        let mut t = Triage::new(TriageConfig::default());
        t.on_event(&deploy(DIFF));
        let v = &t.on_event(&AnyEvent::Regression(regression(
            "/app/src/checkout/pricing.py",
            216,
        )))[0];
        assert_eq!(v.decision, Decision::Caused);
        assert_eq!(v.evidence[0].file, "src/checkout/pricing.py");
        assert_eq!(v.evidence[0].line, Some(216));
        assert_eq!(v.decided_at_ms, 42, "event time, not wall clock");
    }

    #[test]
    fn frame_far_from_the_change_is_inconclusive() {
        let mut t = Triage::new(TriageConfig::default());
        t.on_event(&deploy(DIFF));
        let v = t.judge(&regression("/app/src/checkout/pricing.py", 400));
        assert_eq!(v.decision, Decision::Inconclusive);
    }

    #[test]
    fn docs_only_deploy_is_not_caused() {
        let mut t = Triage::new(TriageConfig::default());
        t.on_event(&deploy(
            "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-a\n+b\n",
        ));
        let v = t.judge(&regression("/app/src/checkout/pricing.py", 216));
        assert_eq!(v.decision, Decision::NotCaused);
        assert_eq!(v.file_classes, vec!["docs".to_owned()]);
    }

    #[test]
    fn externally_correlated_is_not_caused_even_with_a_matching_frame() {
        let mut t = Triage::new(TriageConfig::default());
        t.on_event(&deploy(DIFF));
        let mut r = regression("/app/src/checkout/pricing.py", 216);
        r.externally_correlated = true;
        assert_eq!(t.judge(&r).decision, Decision::NotCaused);
    }

    #[test]
    fn unknown_deploy_is_inconclusive() {
        let t = Triage::new(TriageConfig::default());
        assert_eq!(
            t.judge(&regression("x.py", 1)).decision,
            Decision::Inconclusive
        );
    }

    #[test]
    fn path_matching_respects_boundaries() {
        assert!(paths_match("/app/src/x.py", "src/x.py"));
        assert!(paths_match("src/x.py", "src/x.py"));
        assert!(!paths_match("/app/src/ax.py", "x.py"));
    }
}
