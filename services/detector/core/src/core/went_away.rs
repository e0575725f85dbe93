//! Stage 8: did a held regression go away while its revision still served?
//!
//! A regression the guard found ambiguous (a dependency-shaped error, a late
//! onset, the old revision rising too) is reported at once with remediation
//! held until `hold_remediation_until_ms`. An outage that began with the
//! deploy and hit only this service looks like the deploy's error for as
//! long as it lasts; what tells them apart is that an outage ends, while a
//! deploy-caused error persists while the revision serves (FBDetect's
//! "went-away" filter). So before the hold ends the detector looks again:
//!
//! - the minutes since the rise ended ([`rise_end`]: the split into a rise
//!   and a quieter tail, each at least [`TAIL_MINUTES`] minutes in which the
//!   revision served, with the highest likelihood ratio) are far below the
//!   rise's rate (P ≤ [`CHECK_PERSIST_P`] had it persisted),
//! - and back at the baseline rate (not significantly above it, P >
//!   [`BASELINE_P`]),
//! - with the revision still serving (its last minute with requests lies in
//!   the last [`RECENT_MS`], and no later deploy of the service replaced it).
//!
//! Then the regression is published again, same id, as
//! `externally_correlated` with the `went_away` cue and the counts: the
//! latest record of an id supersedes the earlier one (triage re-judges the
//! incident, the fixer's held verdict is superseded). Otherwise nothing is
//! published and the hold lapses. The check runs at the hold's end minus the
//! allowed lateness and a minute ([`Detector::follow_up_at`]), so that its
//! update is out before a fixer's event time can reach the hold's end.
//!
//! What it cannot tell apart: a deploy-caused error that needs a trigger
//! which stopped (a batch job that finished) from an outage that ended; an
//! outage longer than the hold (attributed, remediated).

use serde::{Deserialize, Serialize};

use selfheal_schemas::Regression;

use crate::core::Detector;
use crate::series::{Series, MINUTE_MS};
use crate::stats;

/// Minutes at the end that must be quiet (as the guard's own went-away cue).
pub(crate) const TAIL_MINUTES: usize = 3;
/// How unlikely the quiet tail must be had the rise persisted (the guard's
/// cue at detection; the check here uses [`CHECK_PERSIST_P`]).
pub(crate) const PERSIST_P: f64 = 1e-3;
/// Stricter for the check, whose split point is chosen from the data.
pub(crate) const CHECK_PERSIST_P: f64 = 1e-4;
/// The tail must not be significantly above the baseline rate.
pub(crate) const BASELINE_P: f64 = 0.01;
/// The quiet minutes must be this recent: the revision still serves.
pub(crate) const RECENT_MS: i64 = 5 * MINUTE_MS;

/// A held regression waiting for its went-away check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FollowUp {
    /// The regression as published.
    pub(crate) regression: Regression,
    /// Event time of the check.
    pub(crate) check_at_ms: i64,
    /// The baseline's rate per unit of exposure, and whether per request.
    pub(crate) base_rate: f64,
    pub(crate) per_request: bool,
}

impl Detector {
    /// When to check a regression held until `until`: early enough that the
    /// update is out before the hold ends (the allowed lateness and a minute
    /// before it), and at least [`TAIL_MINUTES`] after `at`. `None`: the
    /// hold is too short for a check.
    pub(crate) fn follow_up_at(&self, at: i64, until: i64) -> Option<i64> {
        let check = until - self.lateness_ms() - MINUTE_MS;
        (check >= at + TAIL_MINUTES as i64 * MINUTE_MS).then_some(check)
    }

    /// Runs the went-away checks of `service` due at or before `wm`, in
    /// check order; returns the regressions that went away, as updates.
    pub(crate) fn run_follow_ups(&mut self, service: &str, wm: i64) -> Vec<Regression> {
        let Some(svc) = self.services.get(service) else {
            return Vec::new();
        };
        let mut due: Vec<(i64, String)> = svc
            .follow_ups
            .iter()
            .filter(|(_, f)| f.check_at_ms <= wm)
            .map(|(id, f)| (f.check_at_ms, id.clone()))
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        due.sort();
        self.touch(service);
        let mut out = Vec::new();
        for (_, id) in due {
            let svc = self.services.get_mut(service).expect("exists");
            let Some(f) = svc.follow_ups.remove(&id) else {
                continue;
            };
            if let Some(update) = self.went_away(service, &f) {
                let svc = self.services.get_mut(service).expect("exists");
                if let Some(sig) = svc.sigs.get_mut(&f.regression.signature) {
                    sig.regressed.remove(&f.regression.revision);
                }
                out.push(update);
            }
        }
        out
    }

    /// The update of `f`'s regression if its rise went away, else `None`.
    fn went_away(&self, service: &str, f: &FollowUp) -> Option<Regression> {
        let r = &f.regression;
        let svc = &self.services[service];
        let t0 = r.deployed_at_ms?;
        let at = f.check_at_ms;
        // A later deploy (a rollback, the next release) explains a silence.
        if svc
            .deploys
            .iter()
            .any(|d| d.deploy.deployed_at_ms > t0 && d.deploy.deployed_at_ms <= at)
        {
            return None;
        }
        let counts = svc.sigs.get(&r.signature)?.by_revision.get(&r.revision)?;
        let exposure = if f.per_request {
            Some(svc.traffic.get(&r.revision)?)
        } else {
            None
        };
        let from = r.onset_ms.unwrap_or(t0).max(t0);
        let minutes = served_minutes(counts, exposure, from, at);
        let end = rise_end(&minutes)?;
        let base = f.base_rate * end.tail_e;
        let at_baseline = stats::quasi_poisson_sf(end.tail_x, base, 1.0) > BASELINE_P;
        if !(end.p_persisted <= CHECK_PERSIST_P && at_baseline && end.last_ms >= at - RECENT_MS) {
            return None;
        }
        let mut update = r.clone();
        let why = format!(
            "went away while the revision still served: {:.0} events in the {} minutes from minute {} after the deploy, where the rise's rate predicts {:.1} (P = {:.1e} had it persisted) and the baseline {:.1}",
            end.tail_x,
            end.tail_minutes,
            (end.from_ms - t0) / MINUTE_MS,
            end.rise_rate * end.tail_e,
            end.p_persisted,
            base
        );
        update.externally_correlated = true;
        update.detected_at_ms = at;
        update.hold_remediation_until_ms = None;
        if !update.external_cues.iter().any(|c| c == "went_away") {
            update.external_cues.push("went_away".into());
        }
        update.correlation_evidence = Some(match &r.correlation_evidence {
            Some(before) => format!("{why}; before: {before}"),
            None => why,
        });
        Some(update)
    }
}

/// The minutes in [from, at) in which the revision served (exposure > 0;
/// every minute when there is no traffic data): (start, events, exposure).
fn served_minutes(
    counts: &Series,
    exposure: Option<&Series>,
    from: i64,
    at: i64,
) -> Vec<(i64, f64, f64)> {
    let mut out = Vec::new();
    let mut m = from.div_euclid(MINUTE_MS) * MINUTE_MS;
    while m < at {
        let e = exposure.map_or(1.0, |s| s.sum(m, m + MINUTE_MS));
        if e > 0.0 {
            out.push((m, counts.sum(m.max(from), (m + MINUTE_MS).min(at)), e));
        }
        m += MINUTE_MS;
    }
    out
}

/// Where a rise ended: the split of `minutes` into a rise and a quieter
/// tail (each at least [`TAIL_MINUTES`] long) with the highest Poisson
/// likelihood ratio against one rate throughout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RiseEnd {
    pub(crate) from_ms: i64,
    pub(crate) last_ms: i64,
    pub(crate) tail_minutes: usize,
    pub(crate) tail_x: f64,
    pub(crate) tail_e: f64,
    pub(crate) rise_rate: f64,
    /// P(at most `tail_x` events in the tail | the rise's rate persisted).
    pub(crate) p_persisted: f64,
}

pub(crate) fn rise_end(minutes: &[(i64, f64, f64)]) -> Option<RiseEnd> {
    let n = minutes.len();
    if n < 2 * TAIL_MINUTES {
        return None;
    }
    let xlogr = |x: f64, e: f64| if x > 0.0 { x * (x / e).ln() } else { 0.0 };
    let (total_x, total_e) = minutes
        .iter()
        .fold((0.0, 0.0), |(x, e), (_, mx, me)| (x + mx, e + me));
    let (mut rise_x, mut rise_e) = (0.0, 0.0);
    let mut best: Option<(f64, usize, f64, f64)> = None;
    for (j, (_, x, e)) in minutes.iter().enumerate().take(n - TAIL_MINUTES) {
        rise_x += x;
        rise_e += e;
        if j + 1 < TAIL_MINUTES {
            continue;
        }
        let (tail_x, tail_e) = (total_x - rise_x, total_e - rise_e);
        if tail_x / tail_e >= rise_x / rise_e {
            continue;
        }
        // Log-likelihood ratio of two rates against one (the e·r terms
        // cancel: each rate is its segment's maximum-likelihood estimate).
        let llr = xlogr(rise_x, rise_e) + xlogr(tail_x, tail_e) - xlogr(total_x, total_e);
        if best.is_none_or(|(b, ..)| llr > b + 1e-9) {
            best = Some((llr, j + 1, rise_x, rise_e));
        }
    }
    let (_, split, rise_x, rise_e) = best?;
    let (tail_x, tail_e) = (total_x - rise_x, total_e - rise_e);
    let rise_rate = rise_x / rise_e;
    Some(RiseEnd {
        from_ms: minutes[split].0,
        last_ms: minutes[n - 1].0,
        tail_minutes: n - split,
        tail_x,
        tail_e,
        rise_rate,
        p_persisted: 1.0 - stats::quasi_poisson_sf(tail_x + 1.0, rise_rate * tail_e, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use selfheal_schemas::{AnyEvent, SignatureCount};

    use super::rise_end;
    use crate::config::DetectorConfig;
    use crate::core::tests::{baseline, deploy, traffic, T0};
    use crate::core::Detector;
    use crate::series::MINUTE_MS;

    fn minutes(counts: &[f64]) -> Vec<(i64, f64, f64)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, x)| (i as i64 * MINUTE_MS, *x, 1.0))
            .collect()
    }

    #[test]
    fn the_check_runs_before_the_hold_ends_by_the_lateness_and_a_minute() {
        let d = Detector::new(DetectorConfig::default());
        let lateness = i64::from(DetectorConfig::default().allowed_lateness_s) * 1_000;
        let until = 20 * MINUTE_MS;
        assert_eq!(
            d.follow_up_at(5 * MINUTE_MS, until),
            Some(until - lateness - MINUTE_MS)
        );
        // Too short a hold to see a quiet tail: no check.
        assert_eq!(d.follow_up_at(until - 2 * MINUTE_MS, until), None);
    }

    #[test]
    fn the_end_of_a_rise_is_where_it_fell_quiet() {
        let e = rise_end(&minutes(&[8.0, 9.0, 7.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0])).unwrap();
        assert_eq!(
            (e.from_ms, e.tail_minutes, e.tail_x),
            (4 * MINUTE_MS, 5, 0.0)
        );
        assert!(e.p_persisted < 1e-12, "{e:?}");
        // A steady error has no quieter tail worth the name.
        let steady = rise_end(&minutes(&[2.0, 1.0, 3.0, 2.0, 2.0, 1.0, 3.0, 2.0]));
        assert!(steady.is_none_or(|e| e.p_persisted > 0.01), "{steady:?}");
        // Too few minutes to tell.
        assert_eq!(rise_end(&minutes(&[5.0, 5.0, 0.0, 0.0, 0.0])), None);
    }

    fn upstream_error(rev: &str, count: i64, ts: i64) -> AnyEvent {
        AnyEvent::SignatureCount(SignatureCount {
            service: "checkout".into(),
            revision: rev.into(),
            signature: "dep".into(),
            template: "Timeout after <*>ms calling payments-api".into(),
            exception_type: None,
            level: "error".into(),
            count,
            first_seen_ms: ts,
            last_seen_ms: ts,
            sample_message: "Timeout after 3000ms calling payments-api".into(),
            sample_stack: None,
            frames: vec![],
            trace_id: None,
        })
    }

    /// A dependency error naming its upstream, from the deploy on, for
    /// `lasting` minutes, with traffic for 40 minutes.
    fn run(lasting: i64) -> Vec<selfheal_schemas::Regression> {
        let mut d = Detector::new(DetectorConfig::default());
        baseline(&mut d, "checkout", 1);
        let mut out = d.on_event(&deploy("checkout", "b", "a", T0));
        for m in 0..40 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("checkout", "b", 1000, t)));
            if m < lasting {
                out.extend(d.on_event(&upstream_error("b", 20, t + 1)));
            }
        }
        out.extend(d.flush());
        out.into_iter().filter(|r| r.signature == "dep").collect()
    }

    #[test]
    fn an_outage_that_ends_within_the_hold_is_withdrawn_with_the_same_id() {
        let out = run(4);
        assert_eq!(out.len(), 2, "{out:#?}");
        let (first, update) = (&out[0], &out[1]);
        assert!(!first.externally_correlated && first.hold_remediation_until_ms.is_some());
        assert_eq!(update.id, first.id);
        assert!(update.externally_correlated, "{update:#?}");
        assert!(update.external_cues.iter().any(|c| c == "went_away"));
        assert!(update.detected_at_ms < first.hold_remediation_until_ms.unwrap());
        let why = update.correlation_evidence.as_deref().unwrap();
        assert!(
            why.starts_with("went away while the revision still served"),
            "{why}"
        );
    }

    #[test]
    fn an_error_that_persists_is_not_withdrawn() {
        let out = run(40);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(!out[0].externally_correlated);
        assert!(out[0].hold_remediation_until_ms.is_some());
    }
}
