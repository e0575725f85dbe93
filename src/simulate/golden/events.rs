//! Confounders: things that move latency, 5xx and saturation without being
//! the deploy's fault. Each is a time window on one or more services.

use crate::simulate::rng::Rng;

const MIN: i64 = 60_000;

/// A shared dependency slowing (and maybe failing) for its callers.
#[derive(Debug, Clone)]
pub(super) struct DepSlow {
    pub(super) services: Vec<usize>,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    /// Latency multiplier on the callers (1: none).
    pub(super) latency: f64,
    /// Extra 5xx per request on the callers.
    pub(super) errors: f64,
}

impl DepSlow {
    pub(super) fn draw(rng: &mut Rng, services: Vec<usize>, start_ms: i64) -> Self {
        let u = rng.uniform();
        let latency = if u < 0.8 { rng.range(1.3, 3.0) } else { 1.0 };
        let errors = if u > 0.5 {
            rng.log_range(0.002, 0.03)
        } else {
            0.0
        };
        DepSlow {
            services,
            start_ms,
            end_ms: start_ms + (rng.log_range(10.0, 90.0) * MIN as f64) as i64,
            latency,
            errors,
        }
    }
}

/// More traffic on one service (latency follows by queueing, 5xx by load).
#[derive(Debug, Clone)]
pub(super) struct Surge {
    pub(super) service: usize,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    pub(super) factor: f64,
}

impl Surge {
    pub(super) fn draw(rng: &mut Rng, service: usize, start_ms: i64) -> Self {
        Surge {
            service,
            start_ms,
            end_ms: start_ms + (rng.range(10.0, 90.0) * MIN as f64) as i64,
            factor: rng.range(2.0, 4.0),
        }
    }
}

/// One instance running hot (a noisy neighbour, a stuck thread).
#[derive(Debug, Clone)]
pub(super) struct Noisy {
    pub(super) service: usize,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    /// Extra CPU utilisation.
    pub(super) cpu: f64,
    /// Memory multiplier.
    pub(super) memory: f64,
    /// Prefer an instance of the newest revision.
    pub(super) newest: bool,
}

impl Noisy {
    pub(super) fn draw(rng: &mut Rng, service: usize, start_ms: i64, newest: bool) -> Self {
        let u = rng.uniform();
        Noisy {
            service,
            start_ms,
            end_ms: start_ms + (rng.range(20.0, 180.0) * MIN as f64) as i64,
            cpu: if u < 0.7 { rng.range(0.2, 0.5) } else { 0.0 },
            memory: if u > 0.4 { rng.range(1.3, 1.8) } else { 1.0 },
            newest,
        }
    }
}

/// Minutes of a service's metrics never arriving.
#[derive(Debug, Clone)]
pub(super) struct Gap {
    pub(super) service: usize,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
}

/// Instances added (`delta > 0`) or removed for a while.
#[derive(Debug, Clone)]
pub(super) struct Scale {
    pub(super) service: usize,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    pub(super) delta: i64,
}

/// One instance restarted at a time (memory resets).
#[derive(Debug, Clone)]
pub(super) struct Restart {
    pub(super) service: usize,
    pub(super) at_ms: i64,
    /// Prefer an instance of the newest revision.
    pub(super) newest: bool,
}

/// All confounders of a history.
#[derive(Debug, Clone, Default)]
pub(super) struct Events {
    pub(super) dep_slows: Vec<DepSlow>,
    pub(super) surges: Vec<Surge>,
    pub(super) noisy: Vec<Noisy>,
    pub(super) gaps: Vec<Gap>,
    pub(super) scales: Vec<Scale>,
    pub(super) restarts: Vec<Restart>,
}

impl Events {
    /// The confounders touching `service` in `[lo, hi)`, as the truth file
    /// names them.
    pub(super) fn near(&self, service: usize, lo: i64, hi: i64) -> Vec<&'static str> {
        let on = |s: i64, e: i64| s < hi && e > lo;
        let mut v = Vec::new();
        if self
            .dep_slows
            .iter()
            .any(|d| d.services.contains(&service) && on(d.start_ms, d.end_ms))
        {
            v.push("dependency_slow");
        }
        if self
            .surges
            .iter()
            .any(|s| s.service == service && on(s.start_ms, s.end_ms))
        {
            v.push("surge");
        }
        if self
            .noisy
            .iter()
            .any(|s| s.service == service && on(s.start_ms, s.end_ms))
        {
            v.push("noisy_instance");
        }
        if self
            .gaps
            .iter()
            .any(|s| s.service == service && on(s.start_ms, s.end_ms))
        {
            v.push("gaps");
        }
        if self
            .restarts
            .iter()
            .any(|s| s.service == service && on(s.at_ms, s.at_ms + MIN))
        {
            v.push("restart");
        }
        if self
            .scales
            .iter()
            .any(|s| s.service == service && s.delta > 0 && on(s.start_ms, s.end_ms))
        {
            v.push("scale_out");
        }
        v
    }
}
