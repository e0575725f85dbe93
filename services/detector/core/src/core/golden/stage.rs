//! The golden-signal stage of one evaluation: findings, the wait for other
//! services' watermarks, the external check, and the regressions.

use selfheal_schemas::Regression;

use super::super::{output as sig_output, Detector, DAY_MS};
use super::context::Witness;
use super::{Deployed, Others};

impl Detector {
    /// The golden-signal regressions of deploy `idx` of `service` at `at`;
    /// `None` when a finding waits for other services' data first (the
    /// evaluation is then blocked and re-run, as for signatures).
    pub(in crate::core) fn evaluate_golden(
        &mut self,
        service: &str,
        idx: usize,
        at: i64,
    ) -> Option<Vec<Regression>> {
        let cfg = &self.config;
        let svc = &self.services[service];
        let dep = &svc.deploys[idx].deploy;
        let first_seen = svc.first_seen_ms.unwrap_or(i64::MAX);
        let t0 = dep.deployed_at_ms;
        let d = Deployed {
            service,
            revision: &dep.revision,
            previous: dep.previous_revision.as_deref(),
            t0,
            from: svc.golden.warm_from(
                &dep.revision,
                t0,
                at,
                i64::from(cfg.golden.warmup_s) * 1_000,
            ),
            at,
            base_from: (t0 - i64::from(cfg.baseline_days) * DAY_MS).max(first_seen.min(t0)),
        };
        let findings: Vec<_> = super::evaluate(cfg, &svc.golden, &svc.traffic, &d)
            .into_iter()
            .map(|f| {
                let id = sig_output::regression_id(service, d.revision, &f.key, f.kind);
                (f, id)
            })
            .filter(|(_, id)| !svc.emitted.contains(id))
            .collect();
        if findings.is_empty() {
            return Some(Vec::new());
        }
        if cfg.fleet_guard && cfg.sequential && !self.ready(service, at) {
            self.services.get_mut(service).expect("exists").deploys[idx].blocked_from = Some(at);
            self.blocked.insert(service.to_owned());
            self.stats.waited_evaluations += 1;
            return None;
        }
        let others = Others {
            services: self
                .services
                .iter()
                .filter(|(name, _)| name.as_str() != service)
                .map(|(name, s)| Witness {
                    service: name,
                    state: &s.golden,
                    deploys: s.deploys.iter().map(|x| x.deploy.deployed_at_ms).collect(),
                })
                .collect(),
        };
        let mut out = Vec::new();
        for (f, id) in &findings {
            let verdict = if cfg.fleet_guard {
                super::assess(f, &d, &svc.traffic, &svc.golden, &others)
            } else {
                super::context::Verdict::default()
            };
            out.push(super::regression(id.clone(), f, &d, verdict));
        }
        let revision = d.revision.to_owned();
        let svc = self.services.get_mut(service).expect("exists");
        for r in &out {
            svc.emitted.insert(r.id.clone());
            if !r.externally_correlated {
                svc.golden.mark_regressed(&revision);
            }
        }
        Some(out)
    }
}
