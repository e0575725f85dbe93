//! Stage of the guard: was the rise already there before the deploy?
//!
//! The detector's test compares the new revision with the signature's rate
//! over the baseline days. An error that was already rising in the half hour
//! before the deploy (a slow-burning upstream, a surge, an outage that began
//! first) then looks like a regression of whatever deploys next. What an SRE
//! checks is the rate *just before* the deploy: if the service already ran
//! at about the new revision's rate on its old revision, the deploy did not
//! change it.
//!
//! The rule, on the signature's counts and exposure over a window
//! [t0 − w, t0) on every revision but the deployed one (and but revisions
//! flagged for it, as in the baseline):
//! - the pre-deploy window is *elevated*: at least [`MIN_EVENTS`] events, at
//!   least twice the baseline's expectation, P ≤ [`ELEVATED_P`] under the
//!   baseline rate with a dispersion of 2;
//! - and the new revision is *not beyond it*: its count is below
//!   [`BEYOND_RATIO`] × what the pre-deploy rate predicts for its exposure,
//!   or not significant against that (P > [`ELEVATED_P`]).
//!
//! Both together say "the same rate before the deploy": external. A deploy
//! that makes an already-raised error much worse (×3 over the pre-deploy
//! rate, significantly) stays attributed. The ×3 margin allows for a slow
//! burn still ramping up after the deploy: a linear ramp under way for 30
//! minutes or more rises less than ×3 over the next 15.
//!
//! The window w is 30 minutes, or a shorter one ending at the deploy
//! ([`SHORT_WINDOWS`]) when that is elevated on its own at the stricter
//! [`SHORT_ELEVATED_P`] (several windows are looked at): an outage that
//! began two minutes before the deploy is diluted fifteen-fold in the half
//! hour, and the new revision, running at the outage's rate, then looks ×3
//! beyond it. Of the elevated windows the one with the highest rate is
//! taken: the rate the service ran at just before the deploy.

use std::collections::BTreeMap;

use crate::core::SigState;
use crate::series::{Series, MINUTE_MS};
use crate::stats;

/// The window before the deploy.
pub(crate) const WINDOW_MS: i64 = 30 * MINUTE_MS;
const MIN_EVENTS: f64 = 3.0;
const ELEVATED_P: f64 = 1e-3;
const BEYOND_RATIO: f64 = 3.0;
/// Shorter windows ending at the deploy, in minutes.
const SHORT_WINDOWS: [i64; 5] = [2, 3, 5, 10, 15];
/// The elevation a shorter window needs: [`ELEVATED_P`] over its count.
const SHORT_ELEVATED_P: f64 = ELEVATED_P / SHORT_WINDOWS.len() as f64;
/// A dependency-failure error (the guard's text cues) already this far
/// above its baseline before the deploy …
pub(crate) const ESCALATION_MIN_RATIO: f64 = 4.0;
/// … is external unless the new revision is beyond this × the pre-deploy
/// rate (a cascade escalates faster than a slow burn).
pub(crate) const ESCALATION_BEYOND_RATIO: f64 = 10.0;

/// The pre-deploy comparison of one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BeforeDeploy {
    /// The window's length (ms before the deploy).
    pub(crate) window_ms: i64,
    /// Events and expectation (at the baseline rate) in the window.
    pub(crate) x: f64,
    pub(crate) mu: f64,
    /// What the window's own rate predicts for the new revision's exposure.
    pub(crate) predicted: f64,
    /// The window is elevated and the new revision is not beyond it.
    pub(crate) same_rate: bool,
}

/// The inputs of [`before_deploy`] that describe the candidate.
pub(crate) struct Candidate<'a> {
    pub(crate) revision: &'a str,
    pub(crate) t0: i64,
    /// Expected events per unit of exposure at the baseline rate.
    pub(crate) base_rate: f64,
    pub(crate) per_request: bool,
    /// The new revision's events and exposure so far.
    pub(crate) x: f64,
    pub(crate) exposure: f64,
}

/// Compares the candidate with the signature's rate just before the deploy
/// (`None`: no exposure in the window, or it is not elevated).
pub(crate) fn before_deploy(
    sig: &SigState,
    traffic: &BTreeMap<String, Series>,
    c: &Candidate<'_>,
) -> Option<BeforeDeploy> {
    if c.exposure <= 0.0 {
        return None;
    }
    let windows = std::iter::once((WINDOW_MS, ELEVATED_P)).chain(
        SHORT_WINDOWS
            .iter()
            .map(|m| (m * MINUTE_MS, SHORT_ELEVATED_P)),
    );
    let best = windows
        .filter_map(|(w, p)| elevated(sig, traffic, c, w, p))
        .max_by(|a, b| (a.x / a.exposure).total_cmp(&(b.x / b.exposure)))?;
    let predicted = best.x / best.exposure * c.exposure;
    let beyond = c.x >= BEYOND_RATIO * predicted
        && stats::quasi_poisson_sf(c.x, predicted, 2.0) <= ELEVATED_P;
    Some(BeforeDeploy {
        window_ms: best.window_ms,
        x: best.x,
        mu: best.mu,
        predicted,
        same_rate: !beyond,
    })
}

/// One elevated pre-deploy window.
struct Window {
    window_ms: i64,
    x: f64,
    mu: f64,
    exposure: f64,
}

/// The window [t0 − `window_ms`, t0) if it is elevated at `max_p`.
fn elevated(
    sig: &SigState,
    traffic: &BTreeMap<String, Series>,
    c: &Candidate<'_>,
    window_ms: i64,
    max_p: f64,
) -> Option<Window> {
    let (from, to) = (c.t0 - window_ms, c.t0);
    let excluded = |r: &str| r == c.revision || (c.per_request && sig.regressed.contains(r));
    let x: f64 = sig
        .by_revision
        .iter()
        .filter(|(r, _)| !excluded(r.as_str()))
        .map(|(_, s)| s.sum(from, to))
        .sum();
    let exposure = if c.per_request {
        traffic
            .iter()
            .filter(|(r, _)| !excluded(r.as_str()))
            .map(|(_, s)| s.sum(from, to))
            .sum()
    } else {
        (to - from) as f64 / MINUTE_MS as f64
    };
    if exposure <= 0.0 {
        return None;
    }
    let mu = c.base_rate.max(0.0) * exposure;
    let elevated =
        x >= MIN_EVENTS && x >= 2.0 * mu && stats::quasi_poisson_sf(x, mu.max(1e-9), 2.0) <= max_p;
    elevated.then_some(Window {
        window_ms,
        x,
        mu,
        exposure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(from: i64, values: &[f64]) -> Series {
        let mut s = Series::default();
        for (i, v) in values.iter().enumerate() {
            if *v > 0.0 {
                s.add(from + i as i64 * MINUTE_MS, *v);
            }
        }
        s
    }

    const T0: i64 = 1_000 * MINUTE_MS;

    fn sig(old: Series) -> SigState {
        SigState::for_test(&[("old", &old)])
    }

    fn candidate(x: f64, minutes: f64) -> Candidate<'static> {
        Candidate {
            revision: "new",
            t0: T0,
            base_rate: 0.01,
            per_request: false,
            x,
            exposure: minutes,
        }
    }

    #[test]
    fn a_rise_under_way_before_the_deploy_is_the_same_rate() {
        // Baseline 0.01/min; the half hour before the deploy ran at 0.5/min
        // and the new revision runs at about 0.6/min.
        let s = sig(per_minute(T0 - WINDOW_MS, &[0.5; 30]));
        let b = before_deploy(&s, &BTreeMap::new(), &candidate(6.0, 10.0)).expect("elevated");
        assert!(b.same_rate, "{b:?}");
        assert!((b.predicted - 5.0).abs() < 1e-9);
    }

    #[test]
    fn a_deploy_that_makes_it_much_worse_is_beyond_it() {
        let s = sig(per_minute(T0 - WINDOW_MS, &[0.5; 30]));
        let b = before_deploy(&s, &BTreeMap::new(), &candidate(40.0, 10.0)).expect("elevated");
        assert!(!b.same_rate, "{b:?}");
    }

    #[test]
    fn an_outage_that_began_just_before_the_deploy_is_the_same_rate() {
        // Quiet for 28 minutes, then 16 a minute on the old revision; the
        // new revision runs at 17 a minute. Over the half hour that is 32
        // events, a rate the new revision exceeds ×16.
        let mut before = vec![0.0; 28];
        before.extend([16.0, 16.0]);
        let s = sig(per_minute(T0 - WINDOW_MS, &before));
        let b = before_deploy(&s, &BTreeMap::new(), &candidate(170.0, 10.0)).expect("elevated");
        assert!(b.same_rate, "{b:?}");
        assert_eq!(b.window_ms, 2 * MINUTE_MS);
    }

    #[test]
    fn a_short_burst_needs_the_stricter_threshold() {
        // Three events in the last two minutes against a baseline of
        // 0.01/min are elevated at 1e-3 but this alone must not excuse a
        // new revision running at 2 a minute when the half hour is quiet.
        let mut before = vec![0.0; 28];
        before.extend([1.0, 2.0]);
        let s = sig(per_minute(T0 - WINDOW_MS, &before));
        let b = before_deploy(&s, &BTreeMap::new(), &candidate(20.0, 10.0));
        assert!(b.is_none_or(|b| !b.same_rate), "{b:?}");
    }

    #[test]
    fn a_quiet_window_says_nothing() {
        let s = sig(per_minute(T0 - WINDOW_MS, &[0.0; 30]));
        assert!(before_deploy(&s, &BTreeMap::new(), &candidate(6.0, 10.0)).is_none());
    }

    #[test]
    fn the_deployed_and_flagged_revisions_are_left_out() {
        let s = SigState::for_test(&[("new", &per_minute(T0 - WINDOW_MS, &[1.0; 30]))]);
        assert!(before_deploy(&s, &BTreeMap::new(), &candidate(6.0, 10.0)).is_none());
    }
}
