//! The recovery check after a rollback, in event time.
//!
//! A watch starts `grace_ms` (time for the rollout) after the rollback
//! completed and lasts `window_ms`. "Completed" is the service's event-time
//! watermark when the executor's success is read, not the decision's event
//! time: a decision is made minutes of event time after the errors it answers
//! (the detector waits for late events), so a window starting at the decision
//! would count errors the bad revision logged before the rollback ran. It counts the regressed signatures' events on every
//! revision of the service (if the rollback did not take, the bad revision keeps
//! producing them) and compares them with what the baseline predicts for the
//! window: the regressions' baseline rate times the requests served (per-request
//! basis) or times the window length (per-time basis). Recovered when the count
//! is at most `tolerance` × that prediction, or at most `allowance` events (a
//! new signature's baseline is zero). The watch concludes when the service's
//! event-time watermark passes the window's end, so a quiet service is judged
//! by its traffic events, and a replay concludes at the same point.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::RecoveryConfig;
use selfheal_schemas::{
    Action, LatencyHistogram, RateBasis, Regression, RegressionKind, SignatureCount, Traffic,
};

/// One rollback being watched.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// The service.
    pub service: String,
    /// The signatures that must go back to baseline.
    pub signatures: BTreeSet<String>,
    /// Start of the window (inclusive), event time.
    pub start_ms: i64,
    window_ms: i64,
    /// Baseline events per request, summed over the signatures (per-request basis).
    per_request: f64,
    /// Baseline events per ms, summed over the signatures (per-time basis).
    per_ms: f64,
    /// Events of the signatures seen in the window so far.
    observed: i64,
    /// The revision rolled away from: it no longer serves, so its late-shipped
    /// errors (logged before the rollback, delivered after) say nothing about
    /// recovery and are not counted.
    rolled_back: String,
    /// (signature, revision, first_seen) already counted: duplicates don't double.
    counted: BTreeSet<(String, String, i64, i64)>,
    /// Latency regressions: series id → the bound above which a request is
    /// slow. Their "events" are the slow requests of the series' histograms.
    slow_above: BTreeMap<String, f64>,
    /// An error-rate regression is watched: its events are traffic's
    /// server errors.
    server_errors: bool,
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the signatures went back to baseline.
    pub recovered: bool,
    /// One sentence saying why.
    pub reason: String,
}

impl Watch {
    /// Starts watching the signatures of a succeeded rollback `action`, with the
    /// regressions that describe their baseline (may be empty after a restart:
    /// then only `allowance` applies). `completed_ms` is the event time at which
    /// the rollback was reported done, if known; the window starts `grace_ms`
    /// after the later of it and the decision.
    pub fn start(
        action: &Action,
        baseline: &[&Regression],
        config: &RecoveryConfig,
        completed_ms: Option<i64>,
    ) -> Self {
        let mut per_request = 0.0;
        let mut per_ms = 0.0;
        for r in baseline {
            match (r.rate_basis, r.requests) {
                (RateBasis::PerRequest, Some(n)) if n > 0 => per_request += r.expected / n as f64,
                _ => {
                    let span = (r.window_end_ms - r.window_start_ms).max(1);
                    per_ms += r.expected / span as f64;
                }
            }
        }
        Self {
            service: action.service.clone(),
            signatures: action.signatures.iter().cloned().collect(),
            start_ms: action.decided_at_ms.max(completed_ms.unwrap_or(i64::MIN)) + config.grace_ms,
            window_ms: config.window_ms.max(1),
            per_request,
            per_ms,
            observed: 0,
            rolled_back: action.revision.clone(),
            counted: BTreeSet::new(),
            slow_above: baseline
                .iter()
                .filter(|r| r.kind == RegressionKind::Latency)
                .filter_map(|r| Some((r.signature.clone(), r.metric.as_ref()?.threshold_value?)))
                .collect(),
            server_errors: baseline.iter().any(|r| r.kind == RegressionKind::ErrorRate),
        }
    }

    /// Whether an event of `revision` at `[from, to)` is in this watch.
    fn covers(&self, service: &str, revision: &str, from: i64, to: i64) -> bool {
        service == self.service
            && revision != self.rolled_back
            && to > self.start_ms
            && from < self.end_ms()
    }

    /// Counts a histogram's slow requests if it is a watched latency series
    /// (the golden-signal form of [`Watch::on_count`]).
    pub fn on_histogram(&mut self, h: &LatencyHistogram) {
        let end = h.window_start_ms + i64::from(h.window_s) * 1000;
        if !self.covers(&h.service, &h.revision, h.window_start_ms, end) {
            return;
        }
        let id = selfheal_schemas::ids::metric_series_id(&h.metric, h.route.as_deref(), &h.bounds);
        let Some(&bound) = self.slow_above.get(&id) else {
            return;
        };
        // Bucket i holds (bounds[i-1], bounds[i]]: slow are those whose
        // lower edge is at or above the bound.
        let slow: i64 = h
            .counts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i > 0 && h.bounds[i - 1] >= bound)
            .map(|(_, c)| (*c).max(0))
            .sum();
        let key = (id, h.revision.clone(), h.window_start_ms, end);
        if self.counted.insert(key) {
            self.observed += slow;
        }
    }

    /// Counts a traffic window's server errors when an error-rate
    /// regression is watched.
    pub fn on_traffic(&mut self, t: &Traffic) {
        let end = t.window_start_ms + i64::from(t.window_s) * 1000;
        let Some(errors) = t.errors.filter(|_| self.server_errors) else {
            return;
        };
        if !self.covers(&t.service, &t.revision, t.window_start_ms, end) {
            return;
        }
        let key = (
            "server_errors".to_owned(),
            t.revision.clone(),
            t.window_start_ms,
            end,
        );
        if self.counted.insert(key) {
            self.observed += errors.max(0);
        }
    }

    /// End of the window (exclusive).
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.window_ms
    }

    /// Whether a watermark at `mark` closes the window.
    pub fn is_due(&self, mark: i64) -> bool {
        mark >= self.end_ms()
    }

    /// Counts a signature count if it is one of ours and inside the window.
    pub fn on_count(&mut self, c: &SignatureCount) {
        if c.service != self.service
            || c.revision == self.rolled_back
            || !self.signatures.contains(&c.signature)
            || c.last_seen_ms < self.start_ms
            || c.first_seen_ms >= self.end_ms()
        {
            return;
        }
        let key = (
            c.signature.clone(),
            c.revision.clone(),
            c.first_seen_ms,
            c.last_seen_ms,
        );
        if self.counted.insert(key) {
            self.observed += c.count.max(0);
        }
    }

    /// Judges the window; `requests` is the traffic served in it, if known.
    pub fn conclude(&self, requests: Option<i64>, config: &RecoveryConfig) -> Outcome {
        let expected = match requests {
            Some(n) if self.per_request > 0.0 => self.per_request * n as f64,
            _ => 0.0,
        } + self.per_ms * self.window_ms as f64;
        let limit = (config.tolerance * expected).max(config.allowance as f64);
        let recovered = self.observed as f64 <= limit;
        let reason =
            format!(
            "{} {} event(s) of the regressed signatures in the {} s after the rollback settled; \
             baseline predicts {expected:.1}, limit {limit:.1}",
            if recovered { "recovered:" } else { "not recovered:" },
            self.observed,
            self.window_ms / 1000
        );
        Outcome { recovered, reason }
    }
}
