//! What a culprit deploy does to its revision's golden signals, by kind,
//! with randomized magnitudes (some small but real).

use super::latency::{Comp, Mix};
use super::model::Model;
use crate::simulate::rng::Rng;

/// The culprit kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// p99 ×1.5–4 on one route, p50 unchanged (a slow query on a rare path).
    LatencyTail,
    /// A new slow mode (1–3× the old p99) hitting 3–10% of a route's requests.
    LatencyMode,
    /// The whole route ×1.3–2.
    LatencyShift,
    /// 5xx ×3–20, no error log.
    ErrorRate,
    /// +30–300 MB/h per instance beyond the sawtooth.
    MemoryLeak,
    /// CPU per request ×1.5–3.
    Cpu,
}

impl Kind {
    /// The truth's `bug_kind`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::LatencyTail => "latency_tail",
            Kind::LatencyMode => "latency_mode",
            Kind::LatencyShift => "latency_shift",
            Kind::ErrorRate => "error_rate",
            Kind::MemoryLeak => "memory_leak",
            Kind::Cpu => "cpu",
        }
    }

    /// The truth's `label`.
    pub(super) fn label(self) -> &'static str {
        match self {
            Kind::LatencyTail | Kind::LatencyMode | Kind::LatencyShift => "culprit_latency",
            Kind::ErrorRate => "culprit_error_rate",
            Kind::MemoryLeak | Kind::Cpu => "culprit_saturation",
        }
    }

    /// The golden signal it degrades by construction (others may follow:
    /// see the render's observations).
    pub(super) fn signal(self) -> &'static str {
        match self.label() {
            "culprit_latency" => "latency",
            "culprit_error_rate" => "error_rate",
            _ => "saturation",
        }
    }

    /// A kind of the label class `label` (0 latency, 1 error rate, 2 saturation).
    pub(super) fn draw(rng: &mut Rng, label: usize) -> Kind {
        match label {
            0 => *rng.pick(&[Kind::LatencyTail, Kind::LatencyMode, Kind::LatencyShift]),
            1 => Kind::ErrorRate,
            _ => *rng.pick(&[Kind::MemoryLeak, Kind::Cpu]),
        }
    }
}

/// A culprit's effect on its revision.
#[derive(Debug, Clone)]
pub(super) struct Effect {
    pub(super) kind: Kind,
    /// Latency culprits: the route and its new service time.
    pub(super) route: Option<(usize, Mix)>,
    /// 5xx multiplier.
    pub(super) errors: f64,
    /// Leak, bytes per minute per instance.
    pub(super) leak: f64,
    /// CPU per request multiplier.
    pub(super) cpu: f64,
    /// The effect starts this long after the deploy.
    pub(super) onset_ms: i64,
    /// p99 factor (latency, at zero load), 5xx factor, MB/h or CPU factor.
    pub(super) magnitude: f64,
}

/// Draws the effect of a culprit of `kind` on a service modelled by `m`.
pub(super) fn draw(rng: &mut Rng, kind: Kind, m: &Model, onset_p: f64) -> Effect {
    let mut e = Effect {
        kind,
        route: None,
        errors: 1.0,
        leak: 0.0,
        cpu: 1.0,
        onset_ms: if rng.chance(onset_p) {
            rng.int(2, 20) * 60_000
        } else {
            0
        },
        magnitude: 1.0,
    };
    let r = rng.below(m.routes.len());
    let old = &m.routes[r].mix;
    match kind {
        Kind::LatencyTail => {
            let target = rng.log_range(1.5, 4.0) * old.quantile(0.99);
            let (w, sigma) = (rng.range(0.012, 0.03), rng.range(0.2, 0.35));
            let with = |median: f64| old.with(w, Comp::LogNormal { median, sigma });
            // p99 grows with the slow component's median: bisect for the target.
            let (mut lo, mut hi) = (old.quantile(0.5).ln(), (target * 10.0).ln());
            for _ in 0..50 {
                let mid = 0.5 * (lo + hi);
                if with(mid.exp()).quantile(0.99) < target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            e.route = Some((r, with((0.5 * (lo + hi)).exp())));
        }
        Kind::LatencyMode => {
            // Around or above the old p99: a mode the old tail did not hold.
            let comp = Comp::LogNormal {
                median: old.quantile(0.99) * rng.log_range(1.0, 3.0),
                sigma: rng.range(0.3, 0.5),
            };
            e.route = Some((r, old.with(rng.range(0.03, 0.1), comp)));
        }
        Kind::LatencyShift => e.route = Some((r, old.scaled(rng.range(1.3, 2.0)))),
        Kind::ErrorRate => {
            e.errors = rng.log_range(3.0, 20.0);
            e.magnitude = e.errors;
        }
        Kind::MemoryLeak => {
            let mb_h = rng.log_range(30.0, 300.0);
            e.leak = mb_h * 1e6 / 60.0;
            e.magnitude = mb_h;
        }
        Kind::Cpu => {
            e.cpu = rng.range(1.5, 3.0);
            e.magnitude = e.cpu;
        }
    }
    if let Some((_, new)) = &e.route {
        e.magnitude = new.quantile(0.99) / old.quantile(0.99);
    }
    e
}
