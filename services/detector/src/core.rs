//! The detector's pure core: events in, regressions out, no IO and no clock.
//!
//! Walking-skeleton rules (the detector issue replaces them with event-time
//! windows, baselines and sequential tests behind the same [`Detector::on_event`]):
//! - a failed Build is a `build_failure` regression at once;
//! - a signature a deployed revision produces at or after its deploy time, that
//!   no other revision of the service has produced, is a `new` regression once it
//!   has occurred `new_signature_min_count` times.
//!
//! Inputs may arrive in any order across topics (a SignatureCount before its
//! Deploy), so every rule is re-evaluated whenever an input it depends on arrives.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use selfheal_common::config::DetectorConfig;
use selfheal_common::ids::stable_id;
use selfheal_schemas::{
    AnyEvent, Build, BuildStatus, Deploy, RateBasis, Regression, RegressionKind, SignatureCount,
    Traffic,
};

/// Expected count assumed for a signature the baseline never had: a pseudo-count,
/// so that "never seen" is treated as "rare", not "impossible".
const NEW_SIGNATURE_PSEUDO_COUNT: f64 = 0.5;

#[derive(Debug, Clone)]
struct Observed {
    /// Occurrences at or after the revision's deploy time.
    post_deploy: i64,
    /// Occurrences before it (or before any deploy was known).
    pre_deploy: i64,
    first_seen_ms: i64,
    last_seen_ms: i64,
    sample: SignatureCount,
}

/// The detector state for all services it owns.
#[derive(Debug, Default)]
pub struct Detector {
    config: DetectorConfig,
    /// (service, revision) → deploy.
    deploys: BTreeMap<(String, String), Deploy>,
    /// (service, revision, signature) → what was seen.
    observed: BTreeMap<(String, String, String), Observed>,
    /// (service, signature) → revisions that produced it.
    revisions_of: BTreeMap<(String, String), BTreeSet<String>>,
    /// (service, revision) → (requests at/after deploy, requests before).
    requests: BTreeMap<(String, String), (i64, i64)>,
    /// Regression ids already emitted: one regression per key, however often the
    /// rule fires again.
    emitted: HashSet<String>,
}

impl Detector {
    /// A detector with the given settings.
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// Feeds one event; returns the regressions it reveals.
    pub fn on_event(&mut self, event: &AnyEvent) -> Vec<Regression> {
        match event {
            AnyEvent::SignatureCount(sc) => self.on_signature(sc),
            AnyEvent::Deploy(d) => self.on_deploy(d),
            AnyEvent::Build(b) => self.on_build(b),
            AnyEvent::Traffic(t) => {
                self.on_traffic(t);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_build(&mut self, b: &Build) -> Vec<Regression> {
        if b.status != BuildStatus::Failed {
            return Vec::new();
        }
        let signature = "build_failure".to_owned();
        let id = stable_id(&[&b.service, &b.revision, &signature, "build_failure"]);
        if !self.emitted.insert(id.clone()) {
            return Vec::new();
        }
        let excerpt = b.log_excerpt.clone().unwrap_or_default();
        let first_line = excerpt.lines().next().unwrap_or("build failed").to_owned();
        vec![Regression {
            id,
            service: b.service.clone(),
            revision: b.revision.clone(),
            previous_revision: None,
            kind: RegressionKind::BuildFailure,
            signature,
            template: first_line.clone(),
            exception_type: None,
            detected_at_ms: b.finished_at_ms,
            deployed_at_ms: None,
            window_start_ms: b.finished_at_ms,
            window_end_ms: b.finished_at_ms,
            observed: 1,
            expected: 0.0,
            rate_ratio: f64::INFINITY,
            p_value: 0.0,
            q_value: None,
            requests: None,
            baseline_requests: None,
            rate_basis: RateBasis::PerTime,
            externally_correlated: false,
            correlation_evidence: None,
            sample_message: first_line,
            sample_stack: (!excerpt.is_empty()).then_some(excerpt),
            frames: Vec::new(),
        }]
    }

    fn on_traffic(&mut self, t: &Traffic) {
        let key = (t.service.clone(), t.revision.clone());
        let post = self
            .deploys
            .get(&key)
            .is_some_and(|d| t.window_start_ms >= d.deployed_at_ms);
        let entry = self.requests.entry(key).or_default();
        if post {
            entry.0 += t.requests;
        } else {
            entry.1 += t.requests;
        }
    }

    fn on_deploy(&mut self, d: &Deploy) -> Vec<Regression> {
        let key = (d.service.clone(), d.revision.clone());
        self.deploys.insert(key, d.clone());
        // Counts seen before the deploy was known may belong after it.
        let keys: Vec<_> = self
            .observed
            .keys()
            .filter(|(s, r, _)| *s == d.service && *r == d.revision)
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|(s, r, sig)| self.evaluate(&s, &r, &sig))
            .collect()
    }

    fn on_signature(&mut self, sc: &SignatureCount) -> Vec<Regression> {
        let deploy_at = self
            .deploys
            .get(&(sc.service.clone(), sc.revision.clone()))
            .map(|d| d.deployed_at_ms);
        let key = (
            sc.service.clone(),
            sc.revision.clone(),
            sc.signature.clone(),
        );
        let obs = self.observed.entry(key).or_insert_with(|| Observed {
            post_deploy: 0,
            pre_deploy: 0,
            first_seen_ms: sc.first_seen_ms,
            last_seen_ms: sc.last_seen_ms,
            sample: sc.clone(),
        });
        match deploy_at {
            Some(at) if sc.first_seen_ms >= at => obs.post_deploy += sc.count,
            _ => obs.pre_deploy += sc.count,
        }
        obs.first_seen_ms = obs.first_seen_ms.min(sc.first_seen_ms);
        obs.last_seen_ms = obs.last_seen_ms.max(sc.last_seen_ms);
        self.revisions_of
            .entry((sc.service.clone(), sc.signature.clone()))
            .or_default()
            .insert(sc.revision.clone());
        // A signature already seen under this revision may now have appeared in
        // another one, which makes it baseline: re-checking is not needed because
        // `evaluate` is the only emitter and it checks the baseline each time.
        self.evaluate(&sc.service, &sc.revision, &sc.signature)
            .into_iter()
            .collect()
    }

    /// The new-signature rule for one (service, revision, signature).
    fn evaluate(&mut self, service: &str, revision: &str, signature: &str) -> Option<Regression> {
        let deploy = self
            .deploys
            .get(&(service.to_owned(), revision.to_owned()))?;
        let obs = self.observed.get(&(
            service.to_owned(),
            revision.to_owned(),
            signature.to_owned(),
        ))?;
        // Counts recorded as pre-deploy before the deploy was known are re-read
        // here: if everything was seen at or after the deploy time, it all counts.
        let post = if obs.first_seen_ms >= deploy.deployed_at_ms {
            obs.post_deploy + obs.pre_deploy
        } else {
            obs.post_deploy
        };
        if post < self.config.new_signature_min_count {
            return None;
        }
        let in_baseline = self
            .revisions_of
            .get(&(service.to_owned(), signature.to_owned()))
            .is_some_and(|revs| revs.iter().any(|r| r != revision));
        if in_baseline {
            return None;
        }
        let id = stable_id(&[service, revision, signature, "new"]);
        if self.emitted.contains(&id) {
            return None;
        }
        self.emitted.insert(id.clone());
        let requests = self
            .requests
            .get(&(service.to_owned(), revision.to_owned()))
            .map(|(post, _)| *post)
            .filter(|r| *r > 0);
        let s = &obs.sample;
        Some(Regression {
            id,
            service: service.to_owned(),
            revision: revision.to_owned(),
            previous_revision: deploy.previous_revision.clone(),
            kind: RegressionKind::New,
            signature: signature.to_owned(),
            template: s.template.clone(),
            exception_type: s.exception_type.clone(),
            detected_at_ms: obs.last_seen_ms,
            deployed_at_ms: Some(deploy.deployed_at_ms),
            window_start_ms: deploy.deployed_at_ms,
            window_end_ms: obs.last_seen_ms,
            observed: post,
            expected: NEW_SIGNATURE_PSEUDO_COUNT,
            rate_ratio: post as f64 / NEW_SIGNATURE_PSEUDO_COUNT,
            p_value: poisson_sf(post, NEW_SIGNATURE_PSEUDO_COUNT),
            q_value: None,
            requests,
            baseline_requests: None,
            rate_basis: if requests.is_some() {
                RateBasis::PerRequest
            } else {
                RateBasis::PerTime
            },
            externally_correlated: false,
            correlation_evidence: None,
            sample_message: s.sample_message.clone(),
            sample_stack: s.sample_stack.clone(),
            frames: s.frames.clone(),
        })
    }
}

/// P(X ≥ k) for X ~ Poisson(λ).
pub fn poisson_sf(k: i64, lambda: f64) -> f64 {
    if k <= 0 {
        return 1.0;
    }
    // 1 − P(X ≤ k−1), summed in log space for stability.
    let mut term = (-lambda).exp();
    let mut cdf = term;
    for i in 1..k {
        term *= lambda / i as f64;
        cdf += term;
    }
    (1.0 - cdf).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(service: &str, rev: &str, sig: &str, count: i64, ts: i64) -> AnyEvent {
        AnyEvent::SignatureCount(SignatureCount {
            service: service.into(),
            revision: rev.into(),
            signature: sig.into(),
            template: format!("template {sig}"),
            exception_type: None,
            level: "error".into(),
            count,
            first_seen_ms: ts,
            last_seen_ms: ts,
            sample_message: "boom".into(),
            sample_stack: None,
            frames: vec![],
            trace_id: None,
        })
    }

    fn deploy(service: &str, rev: &str, prev: &str, ts: i64) -> AnyEvent {
        AnyEvent::Deploy(Deploy {
            service: service.into(),
            revision: rev.into(),
            previous_revision: Some(prev.into()),
            repo: None,
            commit_range: None,
            diff: None,
            diff_url: None,
            deployed_at_ms: ts,
        })
    }

    fn detector() -> Detector {
        Detector::new(DetectorConfig::default())
    }

    #[test]
    fn new_signature_after_deploy_is_flagged_once_at_threshold() {
        let mut d = detector();
        assert!(d.on_event(&sc("a", "r1", "old", 5, 100)).is_empty());
        assert!(d.on_event(&deploy("a", "r2", "r1", 1_000)).is_empty());
        assert!(d.on_event(&sc("a", "r2", "new", 2, 1_100)).is_empty());
        let out = d.on_event(&sc("a", "r2", "new", 1, 1_200));
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(r.kind, RegressionKind::New);
        assert_eq!(
            (r.observed, r.detected_at_ms, r.window_start_ms),
            (3, 1_200, 1_000)
        );
        assert_eq!(r.previous_revision.as_deref(), Some("r1"));
        assert!(r.p_value < 0.05, "{}", r.p_value);
        assert!(
            d.on_event(&sc("a", "r2", "new", 10, 1_300)).is_empty(),
            "emitted once"
        );
    }

    #[test]
    fn baseline_signature_is_not_new() {
        let mut d = detector();
        d.on_event(&sc("a", "r1", "old", 5, 100));
        d.on_event(&deploy("a", "r2", "r1", 1_000));
        assert!(d.on_event(&sc("a", "r2", "old", 50, 1_100)).is_empty());
    }

    #[test]
    fn signature_before_its_deploy_event_still_counts() {
        let mut d = detector();
        assert!(d.on_event(&sc("a", "r2", "new", 3, 1_100)).is_empty());
        let out = d.on_event(&deploy("a", "r2", "r1", 1_000));
        assert_eq!(out.len(), 1, "re-evaluated when the deploy arrives");
    }

    #[test]
    fn undeployed_revision_and_other_services_are_not_flagged() {
        let mut d = detector();
        assert!(d.on_event(&sc("a", "r9", "x", 10, 1)).is_empty());
        d.on_event(&deploy("b", "r2", "r1", 0));
        assert!(d.on_event(&sc("a", "r2", "x", 10, 5)).is_empty());
    }

    #[test]
    fn failed_build_is_a_regression_at_once_and_only_once() {
        let mut d = detector();
        let b = AnyEvent::Build(Build {
            service: "a".into(),
            revision: "r3".into(),
            status: BuildStatus::Failed,
            log_excerpt: Some("error[E0425]: cannot find value `x`\nmore".into()),
            finished_at_ms: 7,
        });
        let out = d.on_event(&b);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, RegressionKind::BuildFailure);
        assert_eq!(out[0].sample_message, "error[E0425]: cannot find value `x`");
        assert!(d.on_event(&b).is_empty());
    }

    #[test]
    fn poisson_tail() {
        assert_eq!(poisson_sf(0, 2.0), 1.0);
        assert!((poisson_sf(1, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
        assert!((poisson_sf(3, 0.5) - 0.014_387_677_966_970_687).abs() < 1e-9);
    }
}
