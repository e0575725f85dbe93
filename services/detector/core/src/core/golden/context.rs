//! The control a deploy's golden signals are judged against, and the
//! external causes that clear it.
//!
//! **Control.** While the previous revision still serves (rolling and
//! canary deploys), its requests at the same minutes are the control: same
//! load, same dependencies, same time. Otherwise the baseline days are the
//! control, restricted to the hours whose traffic was within ×1.3 of the
//! service's traffic now (×1.6 when fewer than six hours match; all hours
//! without traffic data), because latency and errors rise with load
//! (queueing): a deploy at the daily peak must not be compared with the
//! night.
//!
//! **External causes.** A regression is not the deploy's when:
//! - the old revision was already as slow or failing in the quarter hour
//!   before the deploy (`same_rate_before_deploy`);
//! - during a rollout, the new revision's instances each serve ×1.3 the
//!   old ones' requests (`load_imbalance`: it is slower from load);
//! - the service's traffic rose ×1.5 or more since the rise began, against
//!   the half hour ending ten minutes before the deploy (`traffic_surge`);
//! - other services' latency or server errors rose ×1.5 (and clearly: three
//!   standard errors) against their own last half hour, beginning within two
//!   minutes of this rise (`aligned:N`): one such service that did not deploy
//!   in the last half hour is enough, or two that did, or one when the rise
//!   began three minutes or more after the deploy (a deploy-caused rise
//!   starts with the new revision's first requests). A culprit deployed
//!   while a dependency slows others is still the deploy's when the two
//!   rises began at different minutes.

use std::collections::{BTreeMap, BTreeSet};

use super::test::Hourly;
use super::{Deployed, Finding, GoldenState, LatencySeries};
use crate::series::{Series, HOUR_MS, MINUTE_MS};

/// Fewest concurrent old-revision requests for it to be the control.
const MIN_CONCURRENT: f64 = 200.0;
/// A service's traffic rise that makes a regression a load effect.
const SURGE_RATIO: f64 = 1.5;
/// A witness's rise that counts as "rose at the same time".
const WITNESS_RATIO: f64 = 1.5;
/// How far apart two rises may begin and still be one event: a deploy's
/// regression begins with its first requests, an outage at its own minute.
const ALIGN: i64 = 2 * MINUTE_MS;
/// Fewest witness requests above its bound (or errors) since the onset.
const WITNESS_MIN: f64 = 10.0;
/// How long before the onset a witness's own normal is taken from: the
/// recent past, at about today's load (latency follows the daily cycle).
const WITNESS_LOOKBACK: i64 = 35 * MINUTE_MS;
/// A witness's rise must also be this many standard errors (binomial, plus
/// a tenth of its share between minutes) above its normal.
const WITNESS_Z: f64 = 3.0;
/// A witness that deployed this recently before the onset may have its own
/// regression: it counts only with another, or with a late onset.
const RECENT_DEPLOY: i64 = 30 * MINUTE_MS;
/// An onset this long after the deploy is not the new revision's first
/// requests.
const LATE_ONSET: i64 = 3 * MINUTE_MS;

/// The history part of the control: the baseline hours at today's load,
/// and the revisions that may form it.
#[derive(Debug, Clone, Default)]
pub(in crate::core) struct Control {
    hours: BTreeSet<i64>,
    excluded: BTreeSet<String>,
}

/// Chooses the baseline hours at the service's current load.
pub(super) fn control(
    traffic: &BTreeMap<String, Series>,
    d: &Deployed<'_>,
    regressed: &BTreeSet<String>,
) -> Control {
    let mut excluded = regressed.clone();
    excluded.insert(d.revision.to_owned());
    let first_hour = d.base_from.div_euclid(HOUR_MS) * HOUR_MS;
    let all: BTreeSet<i64> = (first_hour..d.t0).step_by(HOUR_MS as usize).collect();
    let minutes = ((d.at - d.from) as f64 / MINUTE_MS as f64).max(1.0);
    let now: f64 = traffic.values().map(|s| s.sum(d.from, d.at)).sum::<f64>() / minutes;
    let mut per_hour: BTreeMap<i64, f64> = BTreeMap::new();
    for s in traffic.values() {
        for (h, v) in s.hourly(d.base_from, d.t0) {
            // The first and the last hour may be partial.
            let covered = (h + HOUR_MS).min(d.t0) - h.max(d.base_from);
            *per_hour.entry(h).or_default() += v / (covered.max(MINUTE_MS) / MINUTE_MS) as f64;
        }
    }
    if now <= 0.0 || per_hour.is_empty() {
        return Control {
            hours: all,
            excluded,
        };
    }
    for factor in [1.3, 1.6] {
        let hours: BTreeSet<i64> = per_hour
            .iter()
            .filter(|(_, r)| **r >= now / factor && **r <= now * factor)
            .map(|(h, _)| *h)
            .collect();
        if hours.len() >= 6 {
            return Control { hours, excluded };
        }
    }
    Control {
        hours: all,
        excluded,
    }
}

/// The control histograms of `series`: the old revision's at the same
/// minutes when it served enough of them (`true`), else the matched hours'.
pub(super) fn control_histograms(
    series: &LatencySeries,
    d: &Deployed<'_>,
    c: &Control,
) -> (Hourly, bool) {
    if let Some(prev) = d.previous.and_then(|p| series.by_revision.get(p)) {
        let now: Vec<f64> = prev.iter().map(|b| b.sum(d.from, d.at)).collect();
        if now.iter().sum::<f64>() >= MIN_CONCURRENT {
            return (Hourly { hours: vec![now] }, true);
        }
    }
    let width = series.bounds.len() + 1;
    let mut hours: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (rev, buckets) in &series.by_revision {
        if c.excluded.contains(rev) {
            continue;
        }
        for (j, b) in buckets.iter().enumerate() {
            for (h, v) in b.hourly(d.base_from, d.t0) {
                if c.hours.contains(&h) {
                    hours.entry(h).or_insert_with(|| vec![0.0; width])[j] += v;
                }
            }
        }
    }
    (
        Hourly {
            hours: hours.into_values().collect(),
        },
        false,
    )
}

/// The control of the server-error rate, as two buckets (ok, failed).
pub(super) fn control_rates(state: &GoldenState, d: &Deployed<'_>, c: &Control) -> (Hourly, bool) {
    let pair = |rev: &str, from: i64, to: i64| {
        let e = state.errors.get(rev).map_or(0.0, |s| s.sum(from, to));
        let r = state
            .error_requests
            .get(rev)
            .map_or(0.0, |s| s.sum(from, to));
        vec![(r - e).max(0.0), e]
    };
    if let Some(prev) = d.previous {
        let now = pair(prev, d.from, d.at);
        if now.iter().sum::<f64>() >= MIN_CONCURRENT {
            return (Hourly { hours: vec![now] }, true);
        }
    }
    let mut hours: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (rev, req) in &state.error_requests {
        if c.excluded.contains(rev) {
            continue;
        }
        let errs: BTreeMap<i64, f64> = state
            .errors
            .get(rev)
            .map(|s| s.hourly(d.base_from, d.t0).into_iter().collect())
            .unwrap_or_default();
        for (h, r) in req.hourly(d.base_from, d.t0) {
            if c.hours.contains(&h) {
                let e = errs.get(&h).copied().unwrap_or(0.0);
                let acc = hours.entry(h).or_insert_with(|| vec![0.0, 0.0]);
                acc[0] += (r - e).max(0.0);
                acc[1] += e;
            }
        }
    }
    (
        Hourly {
            hours: hours.into_values().collect(),
        },
        false,
    )
}

/// Another service, as the external check sees it.
pub(in crate::core) struct Witness<'a> {
    pub(in crate::core) service: &'a str,
    pub(in crate::core) state: &'a GoldenState,
    /// Its deploy times.
    pub(in crate::core) deploys: Vec<i64>,
}

/// The external check's answer.
#[derive(Debug, Clone, Default)]
pub(in crate::core) struct Verdict {
    /// Why the deploy is not the cause (`Some`: externally correlated).
    pub(in crate::core) external: Option<String>,
    /// Cues found (`traffic_surge`, `aligned:N`, `onset_late`).
    pub(in crate::core) cues: Vec<String>,
    /// Evidence behind the cues.
    pub(in crate::core) evidence: Vec<String>,
}

/// Whether `f` has an external cause (see the module docs).
pub(super) fn external(
    f: &Finding,
    d: &Deployed<'_>,
    traffic: &BTreeMap<String, Series>,
    state: &GoldenState,
    others: &super::Others<'_>,
) -> Verdict {
    let mut v = Verdict::default();
    if f.kind == selfheal_schemas::RegressionKind::Saturation {
        // A leak is per instance and per revision: no outage makes the
        // new revision's instances, and only them, grow.
        return v;
    }
    let onset = f.onset_ms.max(d.t0);
    let late = onset - d.t0 >= LATE_ONSET;
    if late {
        v.cues.push("onset_late".to_owned());
        v.evidence.push(format!(
            "the rise began {} min after the deploy",
            (onset - d.t0) / MINUTE_MS
        ));
    }
    let rate = |from: i64, to: i64| {
        // A history shorter than the reference half hour: its rate is over
        // what there is.
        let from = from.max(d.base_from).min(to);
        let n: f64 = traffic.values().map(|s| s.sum(from, to)).sum();
        n / ((to - from).max(MINUTE_MS) as f64 / MINUTE_MS as f64)
    };
    let before = rate(d.t0 - 40 * MINUTE_MS, d.t0 - 10 * MINUTE_MS);
    let since = rate(onset, d.at.max(onset + MINUTE_MS));
    if before > 0.0 && since >= SURGE_RATIO * before {
        v.cues.push("traffic_surge".to_owned());
        v.external = Some(format!(
            "{}'s traffic rose ×{:.1} (from {before:.0} to {since:.0} requests/min) as the rise began: a load effect, not the deploy",
            d.service,
            since / before
        ));
    }
    if v.external.is_none() {
        if let Some(why) = before_deploy(f, d, state) {
            v.cues.push("same_rate_before_deploy".to_owned());
            v.external = Some(why);
        }
    }
    if v.external.is_none() && f.concurrent {
        if let Some(why) = imbalance(f, d, traffic, state) {
            v.cues.push("load_imbalance".to_owned());
            v.external = Some(why);
        }
    }
    let mut quiet = Vec::new();
    let mut deployed = Vec::new();
    for w in &others.services {
        if w.service == d.service || aligned_onset(w.state, onset, d.at).is_none() {
            continue;
        }
        let recent = w
            .deploys
            .iter()
            .any(|t| *t >= onset - RECENT_DEPLOY && *t <= d.at);
        if recent {
            deployed.push(w.service);
        } else {
            quiet.push(w.service);
        }
    }
    let n = quiet.len() + deployed.len();
    if n > 0 {
        v.cues.push(format!("aligned:{n}"));
        let names: Vec<&str> = quiet.iter().chain(&deployed).copied().collect();
        let text = format!(
            "{n} other service(s) slowed or failed at the same time: {}",
            names.join(", ")
        );
        if v.external.is_none() && (!quiet.is_empty() || n >= 2 || late) {
            v.external = Some(text);
        } else {
            v.evidence.push(text);
        }
    }
    v
}

/// During a rollout, whether the new revision's instances each serve
/// [`IMBALANCE`]× or more the old ones' requests: then it is slower (or
/// failing) from load, as the old one would be, not from its code.
fn imbalance(
    f: &Finding,
    d: &Deployed<'_>,
    traffic: &BTreeMap<String, Series>,
    state: &GoldenState,
) -> Option<String> {
    let prev = d.previous?;
    let from = f.onset_ms.max(d.from);
    let to = d.at.max(from + MINUTE_MS);
    let per_instance = |rev: &str| {
        let n = state.live_instances(rev, from, to)?;
        let req = traffic.get(rev)?.sum(from, to);
        (n > 0 && req > 0.0).then(|| req / n as f64)
    };
    let (new, old) = (per_instance(d.revision)?, per_instance(prev)?);
    (new >= IMBALANCE * old).then(|| {
        format!(
            "the new revision's instances each serve ×{:.1} the old ones' requests during the rollout: a load effect, not the deploy's code",
            new / old
        )
    })
}

/// Whether the other revisions (the old one, before the deploy) were
/// already as slow or failing in the [`BEFORE`] before the deploy: then the
/// rise began before it, and the deploy only inherited it.
fn before_deploy(f: &Finding, d: &Deployed<'_>, state: &GoldenState) -> Option<String> {
    let (k, n) = state.tail_except(f, d.revision, d.t0 - BEFORE, d.t0);
    if n < 50.0 {
        return None;
    }
    let share = k / n;
    let p0 = f.stat.p0;
    let halfway = p0 + 0.5 * (f.stat.share() - p0);
    (share >= halfway.max(1.5 * p0)).then(|| {
        format!(
            "already {:.2}% slow or failing in the {} min before the deploy (control {:.2}%, new revision {:.2}%): it began before the deploy",
            100.0 * share,
            BEFORE / MINUTE_MS,
            100.0 * p0,
            100.0 * f.stat.share()
        )
    })
}

/// See [`before_deploy`].
const BEFORE: i64 = 15 * MINUTE_MS;

/// See [`imbalance`].
const IMBALANCE: f64 = 1.3;

/// The witness's own onset, when its latency tail or server-error rate rose
/// (×[`WITNESS_RATIO`], [`WITNESS_Z`] standard errors) over `[onset, at)`
/// against its own recent past, and began within [`ALIGN`] of `onset`.
fn aligned_onset(s: &GoldenState, onset: i64, at: i64) -> Option<i64> {
    let at = at.max(onset + MINUTE_MS);
    let total = |m: &BTreeMap<String, Series>, a: i64, b: i64| -> f64 {
        m.values().map(|x| x.sum(a, b)).sum()
    };
    let errors = |a: i64, b: i64| (total(&s.errors, a, b), total(&s.error_requests, a, b));
    if let Some(t) = signal_onset(&errors, onset, at) {
        return Some(t);
    }
    s.latency.values().find_map(|l| {
        let sum = |a: i64, b: i64| {
            let mut out = vec![0.0; l.bounds.len() + 1];
            for buckets in l.by_revision.values() {
                for (o, x) in out.iter_mut().zip(buckets) {
                    *o += x.sum(a, b);
                }
            }
            out
        };
        let base = sum(onset - WITNESS_LOOKBACK, onset - 5 * MINUTE_MS);
        let n0: f64 = base.iter().sum();
        // The bound with about 5% of the witness's own requests above it.
        let j = (0..base.len() - 1).find(|&j| base[j + 1..].iter().sum::<f64>() <= 0.05 * n0)?;
        let slow = |a: i64, b: i64| {
            let c = sum(a, b);
            (c[j + 1..].iter().sum::<f64>(), c.iter().sum::<f64>())
        };
        signal_onset(&slow, onset, at)
    })
}

/// `tail(a, b)` gives (requests above the bound, requests) over `[a, b)`.
fn signal_onset(tail: &dyn Fn(i64, i64) -> (f64, f64), onset: i64, at: i64) -> Option<i64> {
    let (k0, n0) = tail(onset - WITNESS_LOOKBACK, onset - 5 * MINUTE_MS);
    let (k, n) = tail(onset, at);
    if k < WITNESS_MIN || n <= 0.0 || n0 <= 0.0 {
        return None;
    }
    let p0 = (k0 + 1.0) / n0;
    let share = k / n;
    let sd = (p0 * (1.0 - p0) / n + (0.1 * p0).powi(2)).sqrt();
    if share < WITNESS_RATIO * p0 || (share - p0) / sd < WITNESS_Z {
        return None;
    }
    let first = (onset - 10 * MINUTE_MS).div_euclid(MINUTE_MS) * MINUTE_MS;
    let minutes: Vec<(i64, f64, f64)> = (first..at)
        .step_by(MINUTE_MS as usize)
        .map(|m| {
            let (k, n) = tail(m, m + MINUTE_MS);
            (m, k, n)
        })
        .collect();
    let own = super::test::onset(&minutes, p0)?;
    ((own - onset).abs() <= ALIGN).then_some(own)
}
