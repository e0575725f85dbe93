//! Stage: exposure and baselines.
//!
//! - [`plan`]: the rate basis of a deploy (per request when both the
//!   baseline and the revision have traffic, decided once per deploy; else
//!   per minute) and the revision's exposure so far, plus the previous
//!   revision's concurrent traffic (canary and rolling deploys are compared
//!   against the live previous revision).
//! - [`historical_baseline`]: one signature's count, exposure and negative
//!   binomial shape over the baseline days, from every revision but the
//!   deployed one (and but revisions already flagged for it).

use std::collections::BTreeMap;

use crate::config::DetectorConfig;

use crate::core::{DeployState, SigState, BASIS_WAIT_MS};
use crate::series::{Series, HOUR_MS, MINUTE_MS};
use crate::stats;

/// How one evaluation measures exposure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exposure {
    /// Rates per request (else per minute).
    pub(crate) per_request: bool,
    /// The revision's requests (or minutes) in [t0, at).
    pub(crate) exposure: f64,
    /// The previous revision's requests in [t0, at).
    pub(crate) prev_requests: f64,
    /// Whether the previous revision's concurrent counts join the baseline.
    pub(crate) concurrent: bool,
}

/// The exposure of deploy `d` at `at`, or `None` when there is none yet (or
/// the basis waits for the revision's first traffic).
pub(crate) fn plan(
    cfg: &DetectorConfig,
    traffic: &BTreeMap<String, Series>,
    d: &mut DeployState,
    base_from: i64,
    at: i64,
) -> Option<Exposure> {
    let t0 = d.deploy.deployed_at_ms;
    let rev = d.deploy.revision.as_str();
    let hist_requests: f64 = traffic
        .iter()
        .filter(|(r, _)| r.as_str() != rev)
        .map(|(_, s)| s.sum(base_from, t0))
        .sum();
    let rev_requests = traffic.get(rev).map_or(0.0, |s| s.sum(t0, at));
    // A deploy between minute boundaries has no complete minute of its own
    // traffic (nor errors) at its first evaluation; deciding the basis then
    // would lock it to per-time rates for good. With a traffic history, the
    // decision waits (up to BASIS_WAIT_MS) for the revision's first requests.
    if d.per_request.is_none()
        && cfg.per_request
        && hist_requests > 0.0
        && rev_requests <= 0.0
        && at - t0 < BASIS_WAIT_MS
    {
        return None;
    }
    let per_request = *d
        .per_request
        .get_or_insert(cfg.per_request && hist_requests > 0.0 && rev_requests > 0.0);
    let prev_requests = d
        .deploy
        .previous_revision
        .as_deref()
        .and_then(|p| traffic.get(p))
        .map_or(0.0, |s| s.sum(t0, at));
    let exposure = if per_request {
        rev_requests
    } else {
        ((at - t0) as f64 / MINUTE_MS as f64).max(0.0)
    };
    (exposure > 0.0).then_some(Exposure {
        per_request,
        exposure,
        prev_requests,
        concurrent: per_request && prev_requests > 0.0,
    })
}

/// Historical baseline of one signature: (count, exposure, NB shape) over
/// [from, to) from every revision but `rev`.
pub(crate) fn historical_baseline(
    sig: &SigState,
    traffic: &BTreeMap<String, Series>,
    rev: &str,
    from: i64,
    to: i64,
    per_request: bool,
    with_dispersion: bool,
) -> (f64, f64, Option<f64>) {
    // Flagged revisions are left out only where their exposure can be left
    // out too (per request); per time, their share of the clock is unknown.
    let excluded = |r: &str| r == rev || (per_request && sig.regressed.contains(r));
    let count: f64 = sig
        .by_revision
        .iter()
        .filter(|(r, _)| !excluded(r.as_str()))
        .map(|(_, s)| s.sum(from, to))
        .sum();
    let exposure = if per_request {
        traffic
            .iter()
            .filter(|(r, _)| !excluded(r.as_str()))
            .map(|(_, s)| s.sum(from, to))
            .sum()
    } else {
        (to - from) as f64 / MINUTE_MS as f64
    };
    if count <= 0.0 || exposure <= 0.0 || !with_dispersion {
        return (count, exposure, None);
    }
    // Hourly observed vs expected (by hourly requests, or flat per time).
    let mut counts: BTreeMap<i64, f64> = BTreeMap::new();
    for (_, s) in sig
        .by_revision
        .iter()
        .filter(|(r, _)| !excluded(r.as_str()))
    {
        for (h, v) in s.hourly(from, to) {
            *counts.entry(h).or_default() += v;
        }
    }
    let rate = count / exposure;
    let mut hourly_exposure: BTreeMap<i64, f64> = BTreeMap::new();
    if per_request {
        for (_, s) in traffic.iter().filter(|(r, _)| !excluded(r.as_str())) {
            for (h, v) in s.hourly(from, to) {
                *hourly_exposure.entry(h).or_default() += v;
            }
        }
    } else {
        let mut h = from.div_euclid(HOUR_MS) * HOUR_MS;
        while h < to {
            let covered = (h + HOUR_MS).min(to) - h.max(from);
            hourly_exposure.insert(h, covered as f64 / MINUTE_MS as f64);
            h += HOUR_MS;
        }
    }
    let shape = stats::nb_shape(
        hourly_exposure
            .iter()
            .map(|(h, e)| (counts.get(h).copied().unwrap_or(0.0), e * rate)),
    );
    (count, exposure, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(by_revision: &[(&str, &Series)]) -> SigState {
        SigState::for_test(by_revision)
    }

    fn steady(per_minute: f64, minutes: i64) -> Series {
        let mut s = Series::default();
        for m in 0..minutes {
            s.add(m * MINUTE_MS, per_minute);
        }
        s
    }

    #[test]
    fn the_baseline_leaves_out_the_deployed_and_the_flagged_revisions() {
        let day = 24 * 60;
        let traffic: BTreeMap<String, Series> = [
            ("a".to_owned(), steady(1000.0, day)),
            ("old".to_owned(), steady(1000.0, day)),
            ("b".to_owned(), steady(1000.0, day)),
        ]
        .into();
        let errs = steady(2.0, day);
        let bad = steady(50.0, day);
        let mut s = sig(&[("a", &errs), ("old", &bad), ("b", &bad)]);
        let to = day * MINUTE_MS;
        let (count, exposure, _) = historical_baseline(&s, &traffic, "b", 0, to, true, true);
        assert_eq!((count, exposure), (52.0 * day as f64, 2000.0 * day as f64));
        s.regressed.insert("old".into());
        let (count, exposure, shape) = historical_baseline(&s, &traffic, "b", 0, to, true, true);
        assert_eq!((count, exposure), (2.0 * day as f64, 1000.0 * day as f64));
        assert_eq!(shape, None, "a steady rate has no excess variance");
        // Per time, a flagged revision's share of the clock is unknown: kept.
        let (count, _, _) = historical_baseline(&s, &traffic, "b", 0, to, false, false);
        assert_eq!(count, 52.0 * day as f64);
    }

    #[test]
    fn the_basis_waits_for_the_revisions_first_traffic() {
        let cfg = DetectorConfig::default();
        let mut traffic: BTreeMap<String, Series> = [("a".to_owned(), steady(1000.0, 60))].into();
        let t0 = 60 * MINUTE_MS;
        let mut d = DeployState {
            deploy: selfheal_schemas::Deploy {
                service: "s".into(),
                diff: None,
                deployed_at_ms: t0,
                ..selfheal_schemas::testing::deploy()
            },
            next_eval_ms: t0 + MINUTE_MS,
            baseline: BTreeMap::new(),
            per_request: None,
            done: false,
            last_eval_ms: None,
            blocked_from: None,
        };
        assert_eq!(plan(&cfg, &traffic, &mut d, 0, t0 + MINUTE_MS), None);
        traffic.entry("b".into()).or_default().add(t0, 500.0);
        let e = plan(&cfg, &traffic, &mut d, 0, t0 + MINUTE_MS).unwrap();
        assert!(e.per_request && !e.concurrent);
        assert_eq!(e.exposure, 500.0);
    }
}
