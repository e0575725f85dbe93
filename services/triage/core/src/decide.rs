//! The deploy's guilt (pure): whether *the deploy* caused its incident,
//! judged apart from *where in the code* the cause is ([`crate::link`]).
//!
//! This file is the attribution rule; changing it should touch nothing else.
//!
//! # The rule
//! The detector only reports a regression of a revision against its own
//! baseline, in event time: the error is new on (or rose on) the revision
//! that was just deployed, while the previous revision, when it still serves,
//! is the control. That is already most of the case for the deploy. So:
//!
//! 1. *Persisted after rollback* (the fixer rolled back and the errors went on
//!    on the old revision) → `not_caused`, 0.9.
//! 2. *Every regression externally correlated* (the detector saw the rise where
//!    nothing deployed, or on the old revision too) → `not_caused`, 0.9.
//! 3. *Only tests, docs or CI changed* → `not_caused`, 0.95.
//! 4. *No deploy known* → `inconclusive`, 0.
//! 5. Otherwise the probability that the deploy caused it is a naive-Bayes
//!    combination, in log-odds, of a prior and likelihood ratios
//!    ([`Evidence`] below):
//!    - prior: a new signature on the revision 0.85; only spikes of existing
//!      errors 0.5 (an existing error rising after a deploy has as many
//!      outside causes — load, a degrading dependency — as inside ones, so a
//!      spike needs the code to point at the change before it is `caused`);
//!    - localization: `line` ×10, `function` ×5, `file` ×2, `none` ×1;
//!    - a complete in-app stack that avoids every changed file of a code-only
//!      deploy, and no identifier of the error in the diff: ×0.5 (weak: in
//!      real bugs a wrong value computed in changed code often surfaces in
//!      callers the diff does not touch);
//!    - the error names a dependency failure (timeout, connection refused or
//!      reset, 429/503, `Unavailable`, `upstream`; every error of the
//!      incident names one) and nothing closer than a changed *file*
//!      localizes it: ×0.25;
//!    - ... unless the deploy changed a setting that governs dependency
//!      calls (a pool size, timeout, retry count, endpoint; see
//!      [`crate::settings`]): ×8 (net ×2: the change explains the failure);
//!    - the detector's fleet guard found no cue of an outside cause on any
//!      of the incident's regressions (no witness, dependency text, surge,
//!      earlier rise or late onset): ×2;
//!    - the rise began well after the revision started serving (onset ≥ 10
//!      minutes after the deploy, when the detector reports it) and nothing
//!      closer than a changed file localizes it: ×0.4.
//!
//!    `caused` at P ≥ [`CAUSED_AT`] (0.6), else `inconclusive`: a
//!    `not_caused` needs positive evidence (rules 1–3), never the mere
//!    absence of a stack link. The published confidence is P for `caused`
//!    and `inconclusive` alike (the probability that the deploy is to blame).
//!
//! The prior and ratios are set by hand from what SREs see, not fitted; the
//! README's reliability tables (Defects4J and the simulator, held-out seeds)
//! show how well they are calibrated.

use std::fmt;

use selfheal_schemas::{Decision, Localization};

/// P at or above which the deploy is `caused`.
pub const CAUSED_AT: f64 = 0.6;
/// Confidence of `not_caused` for externally correlated incidents.
const EXTERNAL: f64 = 0.9;
/// Confidence of `not_caused` when only tests/docs/CI changed.
const NON_RUNTIME: f64 = 0.95;
/// Confidence of `not_caused` when the errors persisted after a rollback.
const PERSISTED: f64 = 0.9;
/// Onset this long after the deploy counts as late.
pub const LATE_ONSET_MS: i64 = 10 * 60_000;

/// What is known about an incident when it is judged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// The deploy of the regressed revision is known.
    pub deploy_known: bool,
    /// Its diff, if parsed: whether any changed file runs in production.
    pub runtime_changed: Option<bool>,
    /// Non-runtime classes changed, for the reason text (e.g. `docs/test`).
    pub classes: Vec<String>,
    /// At least one regression is a new signature (else only spikes).
    pub any_new: bool,
    /// Every regression is externally correlated; the detector's evidence.
    pub external: Option<String>,
    /// The pooled localization.
    pub localization: Localization,
    /// A complete in-app stack avoids every changed file of a code-only deploy.
    pub stack_avoids: bool,
    /// The dependency failure the error names, if any.
    pub dependency_cue: Option<String>,
    /// A changed configuration line that governs dependency calls (pool,
    /// timeout, retries, endpoint …), cited as `path:line \`text\``.
    pub dependency_setting: Option<String>,
    /// Minutes from the deploy to the rise's onset, when known and late.
    pub late_onset_min: Option<i64>,
    /// The detector's fleet guard looked for an outside cause (witnesses,
    /// dependency cues, a surge, a rise before the deploy, a late onset)
    /// and found no cue at all on any of the incident's regressions.
    pub nothing_external: bool,
    /// The errors went on after a rollback to the previous revision.
    pub persisted_after_rollback: Option<String>,
    /// The diff could not be obtained (the reason).
    pub diff_unavailable: Option<String>,
    /// No error signature regressed, a golden signal did (its name, e.g.
    /// `p99 http.server.request.duration on /quote`): judged at revision
    /// level, like a spike.
    pub metric_rose: Option<String>,
}

/// One piece of evidence about the deploy's guilt, with its weight.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// A new signature on the regressed revision (prior).
    NewOnRevision,
    /// Only existing errors rose (prior).
    SpikeOnRevision,
    /// The code localization.
    Localized(Localization),
    /// The stack avoids every change.
    StackAvoidsChange,
    /// The error names a dependency failure.
    DependencyCue(String),
    /// The deploy changed a setting that governs dependency calls.
    DependencySettingChanged(String),
    /// The fleet guard found no cue of an outside cause.
    NothingExternal,
    /// The rise began late.
    LateOnset(i64),
    /// No diff to look at.
    DiffUnavailable(String),
    /// A golden signal (latency, server errors) rose on the deployed revision.
    MetricRose(String),
}

impl Evidence {
    /// The likelihood ratio (or, for the priors, the prior odds).
    fn odds(&self) -> f64 {
        match self {
            Evidence::NewOnRevision => 0.85 / 0.15,
            Evidence::SpikeOnRevision | Evidence::MetricRose(_) => 1.0,
            Evidence::Localized(Localization::Line) => 10.0,
            Evidence::Localized(Localization::Function) => 5.0,
            Evidence::Localized(Localization::File) => 2.0,
            Evidence::Localized(Localization::None) => 1.0,
            Evidence::StackAvoidsChange => 0.5,
            Evidence::DependencyCue(_) => 0.25,
            Evidence::DependencySettingChanged(_) => 8.0,
            Evidence::NothingExternal => 2.0,
            Evidence::LateOnset(_) => 0.4,
            Evidence::DiffUnavailable(_) => 1.0,
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::NewOnRevision => {
                write!(f, "a new error began on the deployed revision")
            }
            Evidence::SpikeOnRevision => {
                write!(f, "an existing error rose on the deployed revision")
            }
            Evidence::MetricRose(what) => {
                write!(f, "{what} rose on the deployed revision (a golden signal, no error log)")
            }
            Evidence::Localized(Localization::None) => {
                write!(f, "nothing in the code localizes it")
            }
            Evidence::Localized(l) => write!(f, "localized to a changed {}", l.as_str()),
            Evidence::StackAvoidsChange => write!(
                f,
                "its stack avoids every changed file (weak evidence: a wrong value computed in changed code can surface elsewhere)"
            ),
            Evidence::DependencyCue(cue) => {
                write!(f, "the error names a dependency failure ({cue})")
            }
            Evidence::DependencySettingChanged(at) => write!(
                f,
                "the deploy changed how the service calls its dependencies ({at})"
            ),
            Evidence::NothingExternal => write!(
                f,
                "the detector found no sign of an outside cause (no other service, dependency error, traffic surge or earlier rise)"
            ),
            Evidence::LateOnset(min) => {
                write!(f, "the rise began {min} min after the deploy, not with its first requests")
            }
            Evidence::DiffUnavailable(why) => {
                write!(f, "the diff could not be checked ({why})")
            }
        }
    }
}

/// The deploy-level judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The decision.
    pub decision: Decision,
    /// Its confidence (see the module docs).
    pub confidence: f64,
    /// Why, one clause each, strongest first.
    pub why: Vec<String>,
}

/// Judges the deploy from the facts (the rule in the module docs), `caused`
/// at P ≥ `caused_at` (`triage.caused_threshold`, default [`CAUSED_AT`]).
pub fn judge(f: &Facts, caused_at: f64) -> Judgement {
    let fixed = |decision, confidence, why: String| Judgement {
        decision,
        confidence,
        why: vec![why],
    };
    if let Some(why) = &f.persisted_after_rollback {
        return fixed(
            Decision::NotCaused,
            PERSISTED,
            format!("persisted after rollback: {why}"),
        );
    }
    if let Some(why) = &f.external {
        return fixed(
            Decision::NotCaused,
            EXTERNAL,
            format!("externally correlated: {why}"),
        );
    }
    if f.runtime_changed == Some(false) {
        return fixed(
            Decision::NotCaused,
            NON_RUNTIME,
            format!(
                "the deploy changed only {} files, which do not run in production",
                f.classes.join("/")
            ),
        );
    }
    if !f.deploy_known {
        return fixed(
            Decision::Inconclusive,
            0.0,
            "no deploy of this revision is known".to_owned(),
        );
    }
    let evidence = evidence(f);
    let odds: f64 = evidence.iter().map(Evidence::odds).product();
    let p = odds / (1.0 + odds);
    let decision = if p >= caused_at {
        Decision::Caused
    } else {
        Decision::Inconclusive
    };
    let mut why: Vec<String> = evidence.iter().map(ToString::to_string).collect();
    why.push(format!("P(deploy caused it) = {p:.2}"));
    Judgement {
        decision,
        confidence: p,
        why,
    }
}

/// The evidence rule 5 weighs, prior first.
fn evidence(f: &Facts) -> Vec<Evidence> {
    let mut out = vec![match (&f.metric_rose, f.any_new) {
        (_, true) => Evidence::NewOnRevision,
        (Some(what), false) => Evidence::MetricRose(what.clone()),
        (None, false) => Evidence::SpikeOnRevision,
    }];
    out.push(Evidence::Localized(f.localization));
    if let Some(why) = &f.diff_unavailable {
        out.push(Evidence::DiffUnavailable(why.clone()));
    }
    if f.nothing_external && f.dependency_cue.is_none() && f.late_onset_min.is_none() {
        out.push(Evidence::NothingExternal);
    }
    if f.localization == Localization::None && f.stack_avoids {
        out.push(Evidence::StackAvoidsChange);
    }
    // A frame somewhere in a changed file does not tie a dependency failure
    // to the change; a frame on (or in the function of) a changed line does.
    if matches!(f.localization, Localization::None | Localization::File) {
        if let Some(cue) = &f.dependency_cue {
            out.push(Evidence::DependencyCue(cue.clone()));
            if let Some(at) = &f.dependency_setting {
                out.push(Evidence::DependencySettingChanged(at.clone()));
            }
        }
        if let Some(min) = f.late_onset_min {
            out.push(Evidence::LateOnset(min));
        }
    }
    out
}

/// The dependency failure an error text names, if any (`timeout`,
/// `connection refused`, `429`, `Unavailable` …), as the matched cue.
pub fn dependency_cue(text: &str) -> Option<String> {
    const CUES: &[&str] = &[
        "timed out",
        "timeout after",
        "timeoutexception",
        "timeout error",
        "read timeout",
        "connect timeout",
        "request timeout",
        "timeout calling",
        "timeout while",
        "connection refused",
        "connection reset",
        "econnrefused",
        "econnreset",
        "etimedout",
        "etimedout",
        "econnaborted",
        "socket hang up",
        "broken pipe",
        "too many requests",
        "service unavailable",
        "code = unavailable",
        "deadline exceeded",
        "deadline_exceeded",
        "upstream connect error",
        "upstream",
        "no route to host",
        "name or service not known",
        "temporary failure in name resolution",
        "circuit breaker",
        "bad gateway",
        "gateway timeout",
    ];
    let lower = text.to_ascii_lowercase();
    if let Some(cue) = CUES.iter().find(|c| lower.contains(*c)) {
        return Some((*cue).to_owned());
    }
    // HTTP status codes of an overloaded or absent dependency.
    ["429", "502", "503", "504"]
        .iter()
        .find(|code| {
            lower.match_indices(*code).any(|(i, _)| {
                let before = lower[..i].chars().next_back();
                let after = lower[i + 3..].chars().next();
                before.is_none_or(|c| !c.is_ascii_digit())
                    && after.is_none_or(|c| !c.is_ascii_digit())
            })
        })
        .map(|code| format!("HTTP {code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge_default(f: &Facts) -> Judgement {
        judge(f, CAUSED_AT)
    }

    fn facts() -> Facts {
        Facts {
            deploy_known: true,
            runtime_changed: Some(true),
            any_new: true,
            localization: Localization::None,
            ..Facts::default()
        }
    }

    #[test]
    fn a_new_error_on_the_revision_is_caused_even_unlocalized() {
        let j = judge_default(&Facts {
            stack_avoids: true,
            ..facts()
        });
        assert_eq!(j.decision, Decision::Caused, "{j:?}");
        assert!(j.confidence > 0.6 && j.confidence < 0.9);
    }

    #[test]
    fn localization_raises_confidence() {
        let line = judge_default(&Facts {
            localization: Localization::Line,
            ..facts()
        });
        let none = judge_default(&facts());
        assert!(line.confidence > 0.95 && line.confidence > none.confidence);
    }

    #[test]
    fn a_dependency_failure_the_stack_does_not_link_is_inconclusive_not_ruled_out() {
        let j = judge_default(&Facts {
            stack_avoids: true,
            dependency_cue: dependency_cue("Timeout after 3001ms calling payments-api"),
            ..facts()
        });
        assert_eq!(j.decision, Decision::Inconclusive, "{j:?}");
    }

    #[test]
    fn not_caused_needs_positive_evidence() {
        for f in [
            Facts {
                external: Some("rose in 3 services that did not deploy".into()),
                ..facts()
            },
            Facts {
                runtime_changed: Some(false),
                classes: vec!["docs".into()],
                ..facts()
            },
            Facts {
                persisted_after_rollback: Some("12 events on the old revision".into()),
                ..facts()
            },
        ] {
            assert_eq!(judge_default(&f).decision, Decision::NotCaused, "{f:?}");
        }
        let weakest = Facts {
            any_new: false,
            stack_avoids: true,
            dependency_cue: Some("timeout".into()),
            late_onset_min: Some(20),
            ..facts()
        };
        assert_eq!(judge_default(&weakest).decision, Decision::Inconclusive);
    }

    #[test]
    fn a_changed_dependency_setting_explains_a_dependency_failure() {
        let pool = Facts {
            any_new: true,
            dependency_cue: Some("timeout".into()),
            ..facts()
        };
        assert_eq!(judge_default(&pool).decision, Decision::Inconclusive);
        let changed = Facts {
            dependency_setting: Some("config/production.yaml:9 `pool_size: 2`".into()),
            ..pool
        };
        let j = judge_default(&changed);
        assert_eq!(j.decision, Decision::Caused, "{j:?}");
        assert!(j.why.iter().any(|w| w.contains("pool_size: 2")), "{j:?}");
    }

    #[test]
    fn a_spike_nothing_outside_explains_is_caused() {
        let spike = Facts {
            any_new: false,
            ..facts()
        };
        assert_eq!(judge_default(&spike).decision, Decision::Inconclusive);
        let clear = Facts {
            nothing_external: true,
            ..spike.clone()
        };
        assert_eq!(judge_default(&clear).decision, Decision::Caused);
        // A dependency failure is a cue: no longer "nothing external".
        let dep = Facts {
            dependency_cue: Some("timeout".into()),
            ..clear
        };
        assert_eq!(judge_default(&dep).decision, Decision::Inconclusive);
    }

    #[test]
    fn dependency_cues() {
        assert_eq!(
            dependency_cue("rpc error: code = Unavailable desc = geo").as_deref(),
            Some("code = unavailable")
        );
        assert_eq!(
            dependency_cue("429 Too Many Requests from mailer").as_deref(),
            Some("too many requests")
        );
        assert_eq!(
            dependency_cue("HTTP 503 from auth").as_deref(),
            Some("HTTP 503")
        );
        assert_eq!(dependency_cue("KeyError: 'usd'"), None);
        assert_eq!(dependency_cue("order 15034 failed"), None);
        assert_eq!(
            dependency_cue("It is forbidden to invoke Mockito.timeout() with negative value."),
            None,
            "an API named timeout is no dependency failure"
        );
        assert!(dependency_cue("java.net.SocketTimeoutException: Read timed out").is_some());
    }
}
