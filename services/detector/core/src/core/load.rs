//! Stage of the guard: did a traffic surge begin with the rise?
//!
//! A deploy does not change how many requests a service receives; a surge
//! (a campaign, a retry storm from a client, a bot) does, and under load
//! existing errors (lock timeouts, pool exhaustion, cache stampedes) rise
//! *per request*, so the per-request test flags them on whatever revision
//! happens to serve. What an SRE checks first is the traffic graph.
//!
//! The rule: a *spike* of an existing error (never a new signature: a surge
//! does not write new code paths) is external when the service's requests
//! per minute over all revisions, from the rise's onset on, are at least
//! [`SURGE_RATIO`] × its rate over the reference half hour that ends
//! [`REFERENCE_GAP_MS`] before the deploy (so a surge that began just before
//! the deploy does not raise its own reference). A retry storm caused by the
//! deploy's own errors can raise traffic too, but rarely by half: the few
//! retries of a small error rate add little.
//!
//! What it cannot tell apart: a deploy that is only bad under load, deployed
//! into a surge (external, cleared); a surge of under ×1.5 (attributed).

use std::collections::BTreeMap;

use crate::series::{Series, MINUTE_MS};

/// How much more traffic makes a surge.
pub(crate) const SURGE_RATIO: f64 = 1.5;
const REFERENCE_MS: i64 = 30 * MINUTE_MS;
const REFERENCE_GAP_MS: i64 = 10 * MINUTE_MS;
/// Fewest minutes since the onset to judge the traffic over.
const MIN_MINUTES: i64 = 2;

/// The traffic comparison of one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Surge {
    /// Requests per minute in the reference window and since the onset.
    pub(crate) before: f64,
    pub(crate) since: f64,
}

impl Surge {
    pub(crate) fn ratio(self) -> f64 {
        self.since / self.before
    }
}

/// The service's traffic since `onset` against its reference before `t0`
/// (`None`: no traffic in either, or too few minutes yet, or no surge).
pub(crate) fn surge(
    traffic: &BTreeMap<String, Series>,
    t0: i64,
    onset: i64,
    at: i64,
) -> Option<Surge> {
    let from = onset.div_euclid(MINUTE_MS) * MINUTE_MS;
    let minutes = (at - from) / MINUTE_MS;
    if minutes < MIN_MINUTES {
        return None;
    }
    let total = |a: i64, b: i64| traffic.values().map(|s| s.sum(a, b)).sum::<f64>();
    let (ref_from, ref_to) = (t0 - REFERENCE_GAP_MS - REFERENCE_MS, t0 - REFERENCE_GAP_MS);
    let before = total(ref_from, ref_to) / (REFERENCE_MS / MINUTE_MS) as f64;
    let since = total(from, from + minutes * MINUTE_MS) / minutes as f64;
    (before > 0.0 && since >= SURGE_RATIO * before).then_some(Surge { before, since })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000 * MINUTE_MS;

    fn traffic(per_minute: impl Fn(i64) -> f64) -> BTreeMap<String, Series> {
        let mut s = Series::default();
        for m in -120..60 {
            s.add(T0 + m * MINUTE_MS, per_minute(m));
        }
        BTreeMap::from([("old".to_owned(), s)])
    }

    #[test]
    fn a_surge_from_the_onset_is_found() {
        let t = traffic(|m| if m >= 3 { 300.0 } else { 100.0 });
        let s = surge(&t, T0, T0 + 3 * MINUTE_MS, T0 + 10 * MINUTE_MS).expect("surge");
        assert!((s.ratio() - 3.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_surge_that_began_just_before_the_deploy_is_found() {
        let t = traffic(|m| if m >= -5 { 250.0 } else { 100.0 });
        assert!(surge(&t, T0, T0, T0 + 5 * MINUTE_MS).is_some());
    }

    #[test]
    fn steady_traffic_and_a_mere_rise_are_no_surge() {
        let steady = traffic(|_| 100.0);
        assert!(surge(&steady, T0, T0, T0 + 10 * MINUTE_MS).is_none());
        let rise = traffic(|m| if m >= 0 { 130.0 } else { 100.0 });
        assert!(surge(&rise, T0, T0, T0 + 10 * MINUTE_MS).is_none());
    }

    #[test]
    fn the_first_minute_is_too_early_to_tell() {
        let t = traffic(|m| if m >= 0 { 300.0 } else { 100.0 });
        assert!(surge(&t, T0, T0, T0 + MINUTE_MS).is_none());
    }
}
