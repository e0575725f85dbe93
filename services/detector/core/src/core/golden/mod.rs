//! Golden signals: a deploy that makes latency or the server-error rate
//! worse without logging a single error line (issue 14).
//!
//! Same principles as for error signatures: event time, the per-revision
//! baseline, the old revision as the live control while it still serves,
//! a test valid for what the data is, and external causes ruled out before
//! a regression is attributed.
//!
//! # Layout
//! - this file: the per-service state (histogram buckets and server errors
//!   per revision, minute buckets folding into hours like every series) and
//!   one evaluation of one deploy.
//! - [`mod@test`]: the statistics: tail shares of binned latency against the
//!   baseline at every bucket bound (exact for binned data: no interpolation
//!   decides), over-dispersed across hours, anytime-valid over the window's
//!   looks by Bonferroni.
//! - [`context`]: the control (the old revision now, or baseline hours at
//!   the same load) and the external causes (a traffic surge, other
//!   services slowing or failing at the same time).
//! - [`memory`]: saturation: a memory floor rising per instance (a leak).
//! - [`output`]: the Regression event.
//! - [`stage`]: one evaluation's golden-signal stage in the detector.

mod context;
mod memory;
mod output;
mod stage;
mod test;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::config::DetectorConfig;
use selfheal_schemas::{InstanceGauge, LatencyHistogram, RegressionKind, Traffic};

use crate::series::{Series, MINUTE_MS};

pub(super) use output::regression;

/// A service's golden-signal series.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct GoldenState {
    /// revision → server errors, from traffic windows that reported them.
    errors: BTreeMap<String, Series>,
    /// revision → requests of those same windows (the error-rate
    /// denominator: windows with `errors` unknown count in neither).
    error_requests: BTreeMap<String, Series>,
    /// series key (metric, route, bounds) → histograms.
    latency: BTreeMap<String, LatencySeries>,
    /// Revisions flagged for a golden signal: kept out of later baselines.
    regressed: BTreeSet<String>,
    /// revision → instance → (first, last) event time of its gauges: when
    /// each instance started serving (instances start cold).
    #[serde(default)]
    instances: BTreeMap<String, BTreeMap<String, (i64, i64)>>,
    /// revision → instance → memory floors of its first two hours (a leak
    /// is judged against instances of the same age).
    #[serde(default)]
    young: BTreeMap<String, BTreeMap<String, memory::Young>>,
}

/// The gauge a leak is judged on (OpenTelemetry's process metric, bytes).
const MEMORY_METRIC: &str = "process.memory.usage";

/// One latency series: a metric on a route with one bucket layout.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct LatencySeries {
    metric: String,
    unit: String,
    route: Option<String>,
    bounds: Vec<f64>,
    /// revision → one count series per bucket.
    by_revision: BTreeMap<String, Vec<Series>>,
}

impl GoldenState {
    /// Counts a traffic window's server errors (when it reported them).
    pub(super) fn on_traffic(&mut self, t: &Traffic) {
        let Some(errors) = t.errors else { return };
        let len = i64::from(t.window_s) * 1_000;
        let e = self.errors.entry(t.revision.clone()).or_default();
        e.add_spread(t.window_start_ms, len, errors as f64);
        let r = self.error_requests.entry(t.revision.clone()).or_default();
        r.add_spread(t.window_start_ms, len, t.requests as f64);
    }

    /// Counts a histogram's buckets.
    pub(super) fn on_histogram(&mut self, h: &LatencyHistogram) {
        let key = series_key(h);
        let series = self.latency.entry(key).or_insert_with(|| LatencySeries {
            metric: h.metric.clone(),
            unit: h.unit.clone(),
            route: h.route.clone(),
            bounds: h.bounds.clone(),
            by_revision: BTreeMap::new(),
        });
        let buckets = series
            .by_revision
            .entry(h.revision.clone())
            .or_insert_with(|| vec![Series::default(); h.counts.len()]);
        let len = i64::from(h.window_s) * 1_000;
        for (b, c) in buckets.iter_mut().zip(&h.counts) {
            if *c > 0 {
                b.add_spread(h.window_start_ms, len, *c as f64);
            }
        }
    }

    /// Notes when an instance started (its first gauge; the minimum, so
    /// arrival order does not matter).
    pub(super) fn on_gauge(&mut self, g: &InstanceGauge) {
        let seen = self
            .instances
            .entry(g.revision.clone())
            .or_default()
            .entry(g.instance.clone())
            .or_insert((g.ts_ms, g.ts_ms));
        seen.0 = seen.0.min(g.ts_ms);
        seen.1 = seen.1.max(g.ts_ms);
        if g.metric == MEMORY_METRIC {
            self.young
                .entry(g.revision.clone())
                .or_default()
                .entry(g.instance.clone())
                .or_insert_with(|| memory::Young::new(g.ts_ms))
                .add(g.ts_ms, g.value);
        }
    }

    /// Where the judged window of `revision` starts: `t0`, or the minute its
    /// latest instance to start by `at` warmed up.
    fn warm_from(&self, revision: &str, t0: i64, at: i64, warmup_ms: i64) -> i64 {
        let latest = self
            .instances
            .get(revision)
            .into_iter()
            .flat_map(|m| m.values())
            .map(|(first, _)| *first)
            .filter(|f| *f <= at)
            .max();
        let warm = latest.map_or(t0, |f| (f + warmup_ms).div_euclid(MINUTE_MS) * MINUTE_MS);
        warm.max(t0)
    }

    /// Folds minutes before `recent_from` into hours and evicts what is
    /// older than `evict_before`.
    pub(super) fn compact(&mut self, recent_from: i64, evict_before: i64) {
        for map in [&mut self.errors, &mut self.error_requests] {
            map.retain(|_, s| {
                s.compact(recent_from, evict_before);
                !s.is_empty()
            });
        }
        self.latency.retain(|_, l| {
            l.by_revision.retain(|_, buckets| {
                buckets
                    .iter_mut()
                    .for_each(|b| b.compact(recent_from, evict_before));
                buckets.iter().any(|b| !b.is_empty())
            });
            !l.by_revision.is_empty()
        });
        self.instances.retain(|_, m| {
            m.retain(|_, (_, last)| *last >= evict_before);
            !m.is_empty()
        });
        let instances = &self.instances;
        self.young.retain(|rev, m| {
            m.retain(|i, _| instances.get(rev).is_some_and(|x| x.contains_key(i)));
            !m.is_empty()
        });
    }

    /// Buckets held (for the detector's stats).
    pub(super) fn buckets(&self) -> usize {
        let errors: usize = self
            .errors
            .values()
            .chain(self.error_requests.values())
            .map(Series::buckets)
            .sum();
        let latency: usize = self
            .latency
            .values()
            .flat_map(|l| l.by_revision.values().flatten())
            .map(Series::buckets)
            .sum();
        errors + latency
    }

    /// Instances of `revision` that sent a gauge in `[from, to)`; `None`
    /// when it has no gauges at all (instances unknown).
    pub(super) fn live_instances(&self, revision: &str, from: i64, to: i64) -> Option<usize> {
        let m = self.instances.get(revision)?;
        Some(
            m.values()
                .filter(|(first, last)| *first < to && *last >= from)
                .count(),
        )
    }

    /// (slow or failed, requests) of every revision but `except` over
    /// `[from, to)`: for a latency finding, above its bound on its series;
    /// else server errors.
    fn tail_except(&self, f: &Finding, except: &str, from: i64, to: i64) -> (f64, f64) {
        match f.series.as_ref().and_then(|k| self.latency.get(k)) {
            Some(l) => l
                .by_revision
                .iter()
                .filter(|(r, _)| r.as_str() != except)
                .fold((0.0, 0.0), |(k, n), (_, b)| {
                    let c = sum_buckets(b, from, to);
                    (
                        k + c[f.stat.threshold + 1..].iter().sum::<f64>(),
                        n + c.iter().sum::<f64>(),
                    )
                }),
            None => {
                let sum = |m: &BTreeMap<String, Series>| -> f64 {
                    m.iter()
                        .filter(|(r, _)| r.as_str() != except)
                        .map(|(_, s)| s.sum(from, to))
                        .sum()
                };
                (sum(&self.errors), sum(&self.error_requests))
            }
        }
    }

    /// Keeps `revision` out of later baselines.
    pub(super) fn mark_regressed(&mut self, revision: &str) {
        self.regressed.insert(revision.to_owned());
    }
}

/// `metric`, route and the bucket layout: histograms merge only within one.
fn series_key(h: &LatencyHistogram) -> String {
    let bits: Vec<String> = h.bounds.iter().map(|b| format!("{b}")).collect();
    format!(
        "{}\u{0}{}\u{0}{}",
        h.metric,
        h.route.as_deref().unwrap_or(""),
        bits.join(",")
    )
}

/// The deploy being judged.
pub(super) struct Deployed<'a> {
    pub(super) service: &'a str,
    pub(super) revision: &'a str,
    pub(super) previous: Option<&'a str>,
    pub(super) t0: i64,
    /// Start of the judged window: `t0`, or later while the revision's
    /// instances warm up (see [`GoldenState::warm_from`]).
    pub(super) from: i64,
    pub(super) at: i64,
    pub(super) base_from: i64,
}

/// A flagged golden signal, before the external check.
#[derive(Debug, Clone)]
pub(super) struct Finding {
    kind: RegressionKind,
    /// The series id (regression id part, Regression.signature).
    key: String,
    metric: String,
    unit: String,
    route: Option<String>,
    quantile: Option<f64>,
    observed_value: f64,
    expected_value: f64,
    stat: test::Tail,
    /// p adjusted for thresholds and looks, then BH across the service's series.
    q: f64,
    onset_ms: i64,
    /// Whether the control was the old revision serving at the same time
    /// (else: baseline hours at the same load).
    concurrent: bool,
    /// For saturation: the instances that leak.
    instances: Vec<String>,
    /// For latency: the series' key in [`GoldenState::latency`].
    series: Option<String>,
    /// For latency: (quantile, new, control) of p50, p95, p99.
    quantiles: Vec<(f64, f64, f64)>,
    /// For latency: the bound above which requests were slow.
    threshold_value: Option<f64>,
}

/// What other services look like, for the external check.
pub(super) struct Others<'a> {
    pub(super) services: Vec<context::Witness<'a>>,
}

/// One evaluation of a deploy's golden signals at `at`: the flagged
/// findings (q ≤ α, effect large enough), not yet emitted.
pub(super) fn evaluate(
    cfg: &DetectorConfig,
    state: &GoldenState,
    traffic: &BTreeMap<String, Series>,
    d: &Deployed<'_>,
) -> Vec<Finding> {
    let window = cfg.golden.window_minutes.min(cfg.window_minutes).max(1);
    if !cfg.golden.enabled || d.at <= d.from || d.at - d.t0 > i64::from(window) * MINUTE_MS {
        return Vec::new();
    }
    let looks = f64::from(window);
    let control = context::control(traffic, d, &state.regressed);
    let mut found: Vec<Finding> = Vec::new();
    for (key, series) in &state.latency {
        if let Some(f) = latency_finding(cfg, series, key, d, &control, looks) {
            found.push(f);
        }
    }
    let tested = state.latency.len() + usize::from(!state.errors.is_empty());
    if let Some(f) = error_finding(cfg, state, d, &control, looks) {
        found.push(f);
    }
    if let Some(f) = leak_finding(cfg, state, d, looks) {
        found.push(f);
    }
    let p: Vec<f64> = found.iter().map(|f| f.q).collect();
    let q = crate::stats::bh(&p, tested.max(found.len()));
    found
        .into_iter()
        .zip(q)
        .filter(|(_, q)| *q <= cfg.alpha)
        .map(|(mut f, q)| {
            f.q = q;
            f
        })
        .collect()
}

fn latency_finding(
    cfg: &DetectorConfig,
    series: &LatencySeries,
    key: &str,
    d: &Deployed<'_>,
    control: &context::Control,
    looks: f64,
) -> Option<Finding> {
    let new = sum_buckets(series.by_revision.get(d.revision)?, d.from, d.at);
    let n: f64 = new.iter().sum();
    if n < f64::from(cfg.golden.min_requests) {
        return None;
    }
    let (hourly, concurrent) = context::control_histograms(series, d, control);
    let tail = test::tail(
        &new,
        &hourly,
        cfg.golden.min_tail_ratio,
        test::MIN_LATENCY_P0,
    )?;
    let p = (tail.p * looks * tail.thresholds as f64).min(1.0);
    let base = hourly.total();
    let quantiles = test::quantiles(&series.bounds, &new, &base);
    let (quantile, observed, expected) = test::worst(&quantiles)?;
    if observed < expected * cfg.golden.min_quantile_ratio {
        return None;
    }
    let minutes = minute_tail(series, d, tail.threshold);
    if !persists(&minutes, &tail, cfg.golden.min_tail_ratio) {
        return None;
    }
    Some(Finding {
        kind: RegressionKind::Latency,
        key: selfheal_schemas::ids::metric_series_id(
            &series.metric,
            series.route.as_deref(),
            &series.bounds,
        ),
        metric: series.metric.clone(),
        unit: series.unit.clone(),
        route: series.route.clone(),
        quantile: Some(quantile),
        observed_value: observed,
        expected_value: expected,
        onset_ms: test::onset(&minutes, tail.p0).unwrap_or(d.t0),
        stat: tail,
        q: p,
        concurrent,
        instances: Vec::new(),
        series: Some(key.to_owned()),
        quantiles,
        threshold_value: series.bounds.get(tail.threshold).copied(),
    })
}

fn error_finding(
    cfg: &DetectorConfig,
    state: &GoldenState,
    d: &Deployed<'_>,
    control: &context::Control,
    looks: f64,
) -> Option<Finding> {
    let k = state.errors.get(d.revision)?.sum(d.from, d.at);
    let n = state.error_requests.get(d.revision)?.sum(d.from, d.at);
    if n < f64::from(cfg.golden.min_requests) || k < f64::from(cfg.golden.min_errors) {
        return None;
    }
    let (hourly, concurrent) = context::control_rates(state, d, control);
    let tail = test::tail(&[n - k, k], &hourly, cfg.golden.min_tail_ratio, 0.0)?;
    if tail.share() - tail.p0 < cfg.golden.min_error_rate_increase {
        return None;
    }
    let p = (tail.p * looks).min(1.0);
    let minutes: Vec<(i64, f64, f64)> = minutes_of(d)
        .map(|m| {
            let e = state.errors[d.revision].sum(m, m + MINUTE_MS);
            let r = state.error_requests[d.revision].sum(m, m + MINUTE_MS);
            (m, e, r)
        })
        .collect();
    if !persists(&minutes, &tail, cfg.golden.min_tail_ratio) {
        return None;
    }
    Some(Finding {
        kind: RegressionKind::ErrorRate,
        key: output::series_id("http.server.error_rate"),
        metric: "http.server.error_rate".to_owned(),
        unit: "1".to_owned(),
        route: None,
        quantile: None,
        observed_value: tail.share(),
        expected_value: tail.p0,
        onset_ms: test::onset(&minutes, tail.p0).unwrap_or(d.t0),
        stat: tail,
        q: p,
        concurrent,
        instances: Vec::new(),
        series: None,
        quantiles: Vec::new(),
        threshold_value: None,
    })
}

/// A memory leak on the new revision's instances (see [`memory`]). The
/// p-value is a rank test: with no leak, an instance's growth is above all
/// `m` of the control's with probability at most 1/(m + 1), so `L` of `N`
/// doing so has binomial tail probability P(X ≥ L).
fn leak_finding(
    cfg: &DetectorConfig,
    state: &GoldenState,
    d: &Deployed<'_>,
    looks: f64,
) -> Option<Finding> {
    let new = state.young.get(d.revision)?;
    let control = state.young.get(d.previous?)?;
    let (instances, excess, bar, judged, base) = memory::leaking(
        new,
        control,
        d.base_from + 2 * memory::BLOCK,
        d.at,
        cfg.golden.min_leak_bytes_per_hour,
    )?;
    let (k, n) = (instances.len() as f64, judged as f64);
    let p0 = 1.0 / (base as f64 + 1.0);
    let p = crate::stats::beta_inc(k, n - k + 1.0, p0);
    Some(Finding {
        kind: RegressionKind::Saturation,
        key: output::series_id(MEMORY_METRIC),
        metric: MEMORY_METRIC.to_owned(),
        unit: "By/h".to_owned(),
        route: None,
        quantile: None,
        observed_value: excess,
        expected_value: bar,
        stat: test::Tail {
            threshold: 0,
            k,
            n,
            p0,
            base_n: base as f64,
            p,
            thresholds: 1,
        },
        q: (p * looks).min(1.0),
        onset_ms: d.t0,
        concurrent: false,
        instances,
        series: None,
        quantiles: Vec::new(),
        threshold_value: None,
    })
}

fn minutes_of(d: &Deployed<'_>) -> impl Iterator<Item = i64> {
    let first = d.t0.div_euclid(MINUTE_MS) * MINUTE_MS;
    (first..d.at).step_by(MINUTE_MS as usize)
}

/// (minute start, requests above bucket `threshold`, requests) of the new
/// revision, minute by minute.
fn minute_tail(series: &LatencySeries, d: &Deployed<'_>, threshold: usize) -> Vec<(i64, f64, f64)> {
    let Some(buckets) = series.by_revision.get(d.revision) else {
        return Vec::new();
    };
    minutes_of(d)
        .map(|m| {
            let counts = sum_buckets(buckets, m, m + MINUTE_MS);
            let above: f64 = counts[threshold + 1..].iter().sum();
            (m, above, counts.iter().sum())
        })
        .collect()
}

/// Whether the rise is still there in the latest [`PERSIST_MINUTES`]
/// minutes, [`PERSIST_MINUTES`] minutes or more after the deploy: a
/// deploy-caused rise persists while the revision serves, while new
/// instances' cold start (and a blip) is over in a minute or three.
fn persists(minutes: &[(i64, f64, f64)], tail: &test::Tail, min_ratio: f64) -> bool {
    if minutes.len() < PERSIST_MINUTES + 1 {
        return false;
    }
    let recent = &minutes[minutes.len() - PERSIST_MINUTES..];
    let above: f64 = recent.iter().map(|m| m.1).sum();
    let n: f64 = recent.iter().map(|m| m.2).sum();
    n > 0.0 && above / n >= tail.p0 * min_ratio
}

/// See [`persists`].
const PERSIST_MINUTES: usize = 3;

/// Bucket counts over `[from, to)`.
fn sum_buckets(buckets: &[Series], from: i64, to: i64) -> Vec<f64> {
    buckets.iter().map(|b| b.sum(from, to)).collect()
}

/// The finding's regression id part and whether it was already emitted is
/// the caller's business; this is what it needs to decide externality.
pub(super) fn assess(
    f: &Finding,
    d: &Deployed<'_>,
    traffic: &BTreeMap<String, Series>,
    state: &GoldenState,
    others: &Others<'_>,
) -> context::Verdict {
    context::external(f, d, traffic, state, others)
}
