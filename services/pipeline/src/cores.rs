//! The detector, triage and fixer cores wired as the live topics wire them.

use selfheal_common::Config;
use selfheal_detector::core::Detector;
use selfheal_fixer::policy::Policy;
use selfheal_schemas::{Action, AnyEvent, Regression};
use selfheal_triage::core::Triage;

use crate::{Error, Outcome, Result};

/// The detector, triage and fixer (dry-run) cores wired as the live topics
/// wire them, fed one event at a time in event-time order.
pub struct Cores {
    /// One detector, or one per simulated detector instance.
    detectors: Vec<Detector>,
    triage: Triage,
    fixer: Policy,
}

impl Cores {
    /// The cores for `config`, the fixer forced to dry-run.
    pub fn new(config: &Config) -> Result<Self> {
        Self::with_instances(config, 1)
    }

    /// [`Cores::new`] with `instances` detector instances exchanging fleet
    /// summaries (one: a single detector, the fleet left off).
    pub fn with_instances(config: &Config, instances: u16) -> Result<Self> {
        let mut fixer_config = config.fixer.clone();
        fixer_config.dry_run = true;
        let detectors = (0..instances.max(1))
            .map(|i| {
                let mut d = Detector::new(config.detector.clone());
                if instances > 1 {
                    d.enable_fleet(&format!("backtest-{i}"));
                }
                d
            })
            .collect();
        Ok(Self {
            detectors,
            triage: Triage::new(config.triage.clone()).map_err(Error::Triage)?,
            fixer: Policy::new(fixer_config),
        })
    }

    /// The detector stage: the event goes to the instance owning its service;
    /// then every summary reaches every instance, as the fleet topic would
    /// deliver it (at once here).
    fn detect(&mut self, event: &AnyEvent) -> Vec<Regression> {
        if self.detectors.len() == 1 {
            return self.detectors[0].on_event(event);
        }
        if event.input_time_ms().is_none() {
            return Vec::new();
        }
        let service = event.key();
        let hash = selfheal_common::ids::stable_id(&[service]);
        let owner =
            u64::from_str_radix(&hash, 16).unwrap_or_default() % self.detectors.len() as u64;
        let mut out = self.detectors[owner as usize].on_event(event);
        let summaries: Vec<_> = self
            .detectors
            .iter_mut()
            .flat_map(|d| d.take_fleet_summaries(true))
            .collect();
        for s in &summaries {
            for d in &mut self.detectors {
                out.extend(d.on_fleet(s));
            }
        }
        out
    }

    /// Feeds one input event through all three stages.
    pub fn feed(&mut self, event: &AnyEvent, out: &mut Outcome) {
        if let AnyEvent::Deploy(d) = event {
            out.deploys.push(d.clone());
        }
        let regressions = self.detect(event);
        // Every input reaches triage and the fixer too (deploys for diffs and
        // rollback targets, counts and traffic for the recovery check).
        out.actions.extend(self.fixer.actions_for(event));
        // A deploy can release regressions triage held for it.
        for v in self.triage.on_event(event) {
            let vev = AnyEvent::Verdict(v.clone());
            out.verdicts.push(v);
            out.actions.extend(self.fixer.actions_for(&vev));
        }
        self.downstream(regressions, out);
    }

    /// [`Cores::feed`] for each event, in order.
    pub fn feed_all<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e AnyEvent>,
        out: &mut Outcome,
    ) {
        for e in events {
            self.feed(e, out);
        }
    }

    /// End of input: closes every open window.
    pub fn finish(&mut self, out: &mut Outcome) {
        let regressions: Vec<Regression> = self
            .detectors
            .iter_mut()
            .flat_map(Detector::flush)
            .collect();
        self.downstream(regressions, out);
    }

    /// Every event of `events` in order, then [`Cores::finish`]: the whole
    /// run's outcome (its `records` and `rejected` left for the caller).
    pub fn run<'e>(mut self, events: impl IntoIterator<Item = &'e AnyEvent>) -> Outcome {
        let mut out = Outcome::default();
        self.feed_all(events, &mut out);
        self.finish(&mut out);
        out
    }

    fn downstream(&mut self, regressions: Vec<Regression>, out: &mut Outcome) {
        for r in regressions {
            let ev = AnyEvent::Regression(r.clone());
            out.regressions.push(r);
            let actions = self.fixer.actions_for(&ev);
            self.feed_triage(&actions, out);
            out.actions.extend(actions);
            for v in self.triage.on_event(&ev) {
                let vev = AnyEvent::Verdict(v.clone());
                out.verdicts.push(v);
                let actions = self.fixer.actions_for(&vev);
                self.feed_triage(&actions, out);
                out.actions.extend(actions);
            }
        }
    }

    /// The fixer's actions reach triage as the actions topic would deliver
    /// them (a failed recovery revises an incident; in a dry-run backtest no
    /// rollback runs, so none does).
    fn feed_triage(&mut self, actions: &[Action], out: &mut Outcome) {
        for a in actions {
            for v in self.triage.on_event(&AnyEvent::Action(a.clone())) {
                out.verdicts.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use selfheal_schemas::Deploy;

    use super::*;

    fn deploy(revision: &str, at: i64) -> AnyEvent {
        AnyEvent::Deploy(Deploy {
            revision: revision.into(),
            diff: None,
            deployed_at_ms: at,
            ..selfheal_schemas::testing::deploy()
        })
    }

    #[test]
    fn deploys_are_kept_in_order_and_run_is_feed_then_finish() {
        let config = Config::default();
        let events = [deploy("b", 60_000), deploy("c", 120_000)];
        let run = Cores::new(&config).unwrap().run(&events);
        let revisions: Vec<_> = run.deploys.iter().map(|d| d.revision.as_str()).collect();
        assert_eq!(revisions, ["b", "c"]);
        let mut cores = Cores::with_instances(&config, 3).unwrap();
        let mut fed = Outcome::default();
        for e in &events {
            cores.feed(e, &mut fed);
        }
        cores.finish(&mut fed);
        assert_eq!(fed.deploys, run.deploys);
        assert_eq!(fed.regressions, run.regressions);
        assert_eq!(fed.actions, run.actions);
    }
}
