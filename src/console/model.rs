//! The console's model (pure): regressions, verdicts, actions, deploys and
//! the error counts and traffic are folded, in arrival order, into per-service
//! state from which the fleet, service and incident pages are read. No IO: the
//! Kafka reader and the backtest-directory reader both feed [`Model::fold`].

use std::collections::BTreeMap;

use selfheal_schemas::{
    Action, ActionKind, ActionStatus, AnyEvent, Decision, Deploy, Regression, Verdict,
};

/// Minutes of rate history kept per service (a day).
const MINUTES_KEPT: usize = 24 * 60;

/// Errors and requests of one revision in one event-time minute.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rate {
    /// Error events counted (SignatureCount; a count spanning several
    /// minutes is spread evenly over them).
    pub(crate) errors: f64,
    /// Requests served (Traffic).
    pub(crate) requests: i64,
}

impl Rate {
    /// Errors per request when traffic is known, else errors per minute.
    pub(crate) fn value(self) -> f64 {
        if self.requests > 0 {
            self.errors / self.requests as f64
        } else {
            self.errors
        }
    }
}

/// One status an action went through, with the reason recorded with it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatusStep {
    /// The status.
    pub(crate) status: ActionStatus,
    /// The latest reason at that status.
    pub(crate) reason: String,
    /// The action's event time as published with that status.
    pub(crate) at_ms: i64,
}

/// An action and every status it was published with, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActionHistory {
    /// The latest version of the action.
    pub(crate) latest: Action,
    /// Its statuses, first to latest (repeats collapsed).
    pub(crate) steps: Vec<StatusStep>,
}

impl ActionHistory {
    /// When it was decided: its first status's event time.
    pub(crate) fn decided_at_ms(&self) -> i64 {
        self.steps
            .first()
            .map_or(self.latest.decided_at_ms, |s| s.at_ms)
    }
}

/// Every regression of one deploy (service + revision), its latest verdict
/// and its actions.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Incident {
    /// Regressions, in arrival order.
    pub(crate) regressions: Vec<Regression>,
    /// The latest verdict (highest incident sequence, then arrival).
    pub(crate) verdict: Option<Verdict>,
    /// Actions by id, in first-seen order.
    pub(crate) actions: Vec<ActionHistory>,
}

impl Incident {
    /// Open until its deploy is cleared (`not_caused`) or a recovery is verified.
    pub(crate) fn is_open(&self) -> bool {
        let cleared = self
            .verdict
            .as_ref()
            .is_some_and(|v| v.decision == Decision::NotCaused);
        let healed = self
            .actions
            .iter()
            .any(|a| a.latest.status == ActionStatus::RecoveryVerified);
        !(self.regressions.is_empty() || cleared || healed)
    }

    /// The rollback or fix-forward that matters most, else any action.
    pub(crate) fn main_action(&self) -> Option<&ActionHistory> {
        self.actions
            .iter()
            .find(|a| {
                matches!(
                    a.latest.action,
                    ActionKind::Rollback | ActionKind::FixForward
                )
            })
            .or_else(|| self.actions.first())
    }

    /// The earliest detection, event time.
    pub(crate) fn detected_at_ms(&self) -> Option<i64> {
        self.regressions.iter().map(|r| r.detected_at_ms).min()
    }
}

/// What the console knows of one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServiceState {
    /// Deploys, by deploy time.
    pub(crate) deploys: Vec<Deploy>,
    /// Incidents by revision.
    pub(crate) incidents: BTreeMap<String, Incident>,
    /// Error and request counts per (event-time minute, revision).
    pub(crate) rates: BTreeMap<(i64, String), Rate>,
}

impl ServiceState {
    /// The revision serving now: the latest deploy's, or the target of a
    /// rollback of it that succeeded.
    pub(crate) fn current_revision(&self) -> Option<&str> {
        let last = self.deploys.last()?;
        let rolled_back = self.incidents.get(&last.revision).and_then(|i| {
            i.actions.iter().find_map(|a| {
                let done = matches!(
                    a.latest.status,
                    ActionStatus::Succeeded
                        | ActionStatus::RecoveryVerified
                        | ActionStatus::RecoveryFailed
                );
                (a.latest.action == ActionKind::Rollback && done)
                    .then_some(a.latest.target_revision.as_deref())
                    .flatten()
            })
        });
        Some(rolled_back.unwrap_or(&last.revision))
    }

    /// The deploy of `revision`, if seen.
    pub(crate) fn deploy(&self, revision: &str) -> Option<&Deploy> {
        self.deploys.iter().rev().find(|d| d.revision == revision)
    }

    /// The outcome of a deploy in a few words.
    pub(crate) fn outcome(&self, revision: &str) -> String {
        let Some(i) = self.incidents.get(revision) else {
            return "no regression".to_owned();
        };
        let verdict = i
            .verdict
            .as_ref()
            .map(|v| selfheal_common::describe::decision(v.decision))
            .unwrap_or("awaiting verdict");
        match i.main_action() {
            Some(a) => format!(
                "{} regression(s), {verdict}, {} {}",
                i.regressions.len(),
                selfheal_common::describe::action_kind(a.latest.action),
                selfheal_common::describe::action_status(a.latest.status)
            ),
            None => format!("{} regression(s), {verdict}", i.regressions.len()),
        }
    }
}

/// The whole console state.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Model {
    /// Per service, by name.
    pub(crate) services: BTreeMap<String, ServiceState>,
    /// Bumped on every change (server-sent events announce it).
    pub(crate) version: u64,
}

fn minute(ms: i64) -> i64 {
    ms.div_euclid(60_000) * 60_000
}

impl Model {
    /// Folds one event in. Events other than deploys, regressions, verdicts,
    /// actions, signature counts and traffic are ignored.
    pub(crate) fn fold(&mut self, event: &AnyEvent) {
        match event {
            AnyEvent::Deploy(d) => {
                let s = self.service(&d.service);
                if !s
                    .deploys
                    .iter()
                    .any(|x| x.revision == d.revision && x.deployed_at_ms == d.deployed_at_ms)
                {
                    let at = s
                        .deploys
                        .partition_point(|x| x.deployed_at_ms <= d.deployed_at_ms);
                    s.deploys.insert(at, d.clone());
                }
            }
            AnyEvent::Regression(r) => {
                let i = self.incident(&r.service, &r.revision);
                // The latest record of an id is its update (went away).
                match i
                    .regressions
                    .iter_mut()
                    .find(|x| x.id == r.id && !r.id.is_empty())
                {
                    Some(known) => *known = r.clone(),
                    None => i.regressions.push(r.clone()),
                }
            }
            AnyEvent::Verdict(v) => {
                let i = self.incident(&v.service, &v.revision);
                if i.verdict
                    .as_ref()
                    .is_none_or(|old| old.incident_seq <= v.incident_seq)
                {
                    i.verdict = Some(v.clone());
                }
            }
            AnyEvent::Action(a) => fold_action(self.incident(&a.service, &a.revision), a),
            AnyEvent::SignatureCount(c) => {
                // Ingest pre-aggregates over a wall-clock interval, so one count
                // can span minutes of event time: spread it over them (over the
                // first hour of a longer span; the total is kept).
                let first = minute(c.first_seen_ms);
                let last = minute(c.last_seen_ms.max(c.first_seen_ms));
                let minutes = ((last - first) / 60_000 + 1).min(60);
                let share = c.count as f64 / minutes as f64;
                for k in 0..minutes {
                    self.rate(&c.service, first + k * 60_000, &c.revision)
                        .errors += share;
                }
            }
            AnyEvent::Traffic(t) => {
                self.rate(&t.service, minute(t.window_start_ms), &t.revision)
                    .requests += t.requests;
            }
            AnyEvent::Build(_)
            | AnyEvent::DeadLetter(_)
            | AnyEvent::LatencyHistogram(_)
            | AnyEvent::InstanceGauge(_) => return,
        }
        self.version += 1;
    }

    fn service(&mut self, name: &str) -> &mut ServiceState {
        self.services.entry(name.to_owned()).or_default()
    }

    fn incident(&mut self, service: &str, revision: &str) -> &mut Incident {
        self.service(service)
            .incidents
            .entry(revision.to_owned())
            .or_default()
    }

    fn rate(&mut self, service: &str, minute: i64, revision: &str) -> &mut Rate {
        let rates = &mut self.service(service).rates;
        if rates.len() > MINUTES_KEPT * 4 {
            // Bounded memory on a long-running console: the oldest minutes go.
            let oldest = rates.keys().next().cloned();
            if let Some(k) = oldest {
                rates.remove(&k);
            }
        }
        rates.entry((minute, revision.to_owned())).or_default()
    }

    /// Open incidents of the fleet, newest detection first.
    pub(crate) fn open_incidents(&self) -> Vec<(&str, &str, &Incident)> {
        let mut open: Vec<_> = self
            .services
            .iter()
            .flat_map(|(s, st)| {
                st.incidents
                    .iter()
                    .filter(|(_, i)| i.is_open())
                    .map(move |(r, i)| (s.as_str(), r.as_str(), i))
            })
            .collect();
        open.sort_by_key(|(_, _, i)| std::cmp::Reverse(i.detected_at_ms()));
        open
    }
}

fn fold_action(i: &mut Incident, a: &Action) {
    let reason = a.reasons.last().cloned().unwrap_or_default();
    match i.actions.iter_mut().find(|h| h.latest.id == a.id) {
        Some(h) => {
            if h.steps.last().is_none_or(|s| s.status != a.status) {
                h.steps.push(StatusStep {
                    status: a.status,
                    reason,
                    at_ms: a.decided_at_ms,
                });
            }
            h.latest = a.clone();
        }
        None => i.actions.push(ActionHistory {
            latest: a.clone(),
            steps: vec![StatusStep {
                status: a.status,
                reason,
                at_ms: a.decided_at_ms,
            }],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::testing::{action, deploy, regression, verdict};

    #[test]
    fn a_rolled_back_deploy_is_healed_and_the_service_serves_the_target() {
        let mut m = Model::default();
        m.fold(&AnyEvent::Deploy(deploy("checkout", "a", 0)));
        m.fold(&AnyEvent::Deploy(deploy("checkout", "b", 600_000)));
        m.fold(&AnyEvent::Regression(regression("checkout", "b", 720_000)));
        assert_eq!(m.open_incidents().len(), 1);
        m.fold(&AnyEvent::Verdict(verdict(
            "checkout",
            "b",
            Decision::Caused,
        )));
        let mut rb = action(
            "checkout",
            "b",
            ActionKind::Rollback,
            ActionStatus::InProgress,
        );
        m.fold(&AnyEvent::Action(rb.clone()));
        let s = &m.services["checkout"];
        assert_eq!(s.current_revision(), Some("b"), "not yet rolled back");
        rb.status = ActionStatus::Succeeded;
        m.fold(&AnyEvent::Action(rb.clone()));
        rb.status = ActionStatus::RecoveryVerified;
        rb.decided_at_ms = 999_000;
        rb.reasons.push("recovered".into());
        m.fold(&AnyEvent::Action(rb));
        let s = &m.services["checkout"];
        assert_eq!(s.current_revision(), Some("a"));
        let i = &s.incidents["b"];
        let steps: Vec<ActionStatus> = i.actions[0].steps.iter().map(|s| s.status).collect();
        assert_eq!(
            steps,
            [
                ActionStatus::InProgress,
                ActionStatus::Succeeded,
                ActionStatus::RecoveryVerified
            ]
        );
        assert_eq!(i.actions[0].decided_at_ms(), 0, "marked when first decided");
        assert_eq!(i.actions[0].steps[2].at_ms, 999_000);
        assert!(!i.is_open());
        assert!(m.open_incidents().is_empty());
        assert_eq!(
            s.outcome("b"),
            "1 regression(s), caused, rollback recovery_verified"
        );
        assert_eq!(s.outcome("a"), "no regression");
    }

    #[test]
    fn a_later_verdict_supersedes_and_not_caused_closes_the_incident() {
        let mut m = Model::default();
        m.fold(&AnyEvent::Regression(regression("search", "x", 0)));
        m.fold(&AnyEvent::Verdict(verdict(
            "search",
            "x",
            Decision::Inconclusive,
        )));
        let mut later = verdict("search", "x", Decision::NotCaused);
        later.incident_seq = 1;
        m.fold(&AnyEvent::Verdict(later));
        let mut stale = verdict("search", "x", Decision::Caused);
        stale.incident_seq = 0;
        m.fold(&AnyEvent::Verdict(stale));
        let i = &m.services["search"].incidents["x"];
        assert_eq!(i.verdict.as_ref().unwrap().decision, Decision::NotCaused);
        assert!(!i.is_open());
    }

    #[test]
    fn counts_and_traffic_give_a_rate_per_revision_and_minute() {
        let mut m = Model::default();
        let mut c = crate::console::testing::count("checkout", "b", 61_000, 3);
        m.fold(&AnyEvent::SignatureCount(c.clone()));
        c.count = 2;
        m.fold(&AnyEvent::SignatureCount(c));
        m.fold(&AnyEvent::Traffic(crate::console::testing::traffic(
            "checkout", "b", 60_000, 100,
        )));
        let r = m.services["checkout"].rates[&(60_000, "b".to_owned())];
        assert_eq!((r.errors, r.requests), (5.0, 100));
        assert!((r.value() - 0.05).abs() < 1e-12);
        assert_eq!(m.version, 3);
        // A count over three minutes of event time: a third in each.
        let mut spread = crate::console::testing::count("checkout", "b", 180_000, 6);
        spread.last_seen_ms = 300_000;
        m.fold(&AnyEvent::SignatureCount(spread));
        let rates = &m.services["checkout"].rates;
        for minute in [180_000, 240_000, 300_000] {
            assert_eq!(rates[&(minute, "b".to_owned())].errors, 2.0);
        }
    }

    #[test]
    fn a_replayed_regression_or_deploy_is_not_counted_twice() {
        let mut m = Model::default();
        let d = deploy("checkout", "b", 0);
        m.fold(&AnyEvent::Deploy(d.clone()));
        m.fold(&AnyEvent::Deploy(d));
        let r = regression("checkout", "b", 0);
        m.fold(&AnyEvent::Regression(r.clone()));
        m.fold(&AnyEvent::Regression(r.clone()));
        let s = &m.services["checkout"];
        assert_eq!(
            (s.deploys.len(), s.incidents["b"].regressions.len()),
            (1, 1)
        );
        // An update (same id) replaces the record.
        let mut update = r;
        update.externally_correlated = true;
        m.fold(&AnyEvent::Regression(update));
        let regs = &m.services["checkout"].incidents["b"].regressions;
        assert!(regs.len() == 1 && regs[0].externally_correlated);
    }
}
