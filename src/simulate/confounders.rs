//! Things that move error counts without being a deploy's fault: upstream
//! outages (full, partial, slow-burn), traffic surges (with or without more
//! errors per request), and rollouts that keep the previous revision serving.
//! Each is placed relative to deploys (often minutes *after* one, where a
//! naive detector blames the deploy) or at random.

use super::rng::Rng;

/// An upstream failing for its callers.
#[derive(Debug, Clone)]
pub(super) struct Outage {
    /// Index into the fleet's upstreams.
    pub(super) upstream: usize,
    /// Services hit (callers of the upstream; not always all of them).
    pub(super) callers: Vec<usize>,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    /// Failure rate per call at full strength.
    pub(super) peak: f64,
    /// Share of a caller's traffic affected (one region or instance: < 1).
    pub(super) partial: f64,
    /// Slow burn: the failure rate ramps up over this long (0: a step).
    pub(super) ramp_ms: i64,
}

impl Outage {
    /// The kind, as the truth file names it.
    pub(super) fn kind(&self) -> &'static str {
        if self.ramp_ms > 0 {
            "slow_burn"
        } else if self.partial < 1.0 {
            "partial_outage"
        } else {
            "outage"
        }
    }

    /// Failure rate per call of an affected caller at `t`.
    pub(super) fn rate(&self, t: i64) -> f64 {
        if t < self.start_ms || t >= self.end_ms {
            return 0.0;
        }
        let ramp = if self.ramp_ms > 0 {
            ((t - self.start_ms) as f64 / self.ramp_ms as f64).min(1.0)
        } else {
            1.0
        };
        self.peak * ramp * self.partial
    }

    /// Draws an outage of `upstream` starting at `start_ms`, hitting `callers`.
    pub(super) fn draw(rng: &mut Rng, upstream: usize, callers: Vec<usize>, start_ms: i64) -> Self {
        const MIN: i64 = 60_000;
        let kind = rng.uniform();
        let (partial, ramp_ms, dur) = if kind < 0.55 {
            (1.0, 0, rng.log_range(5.0, 90.0))
        } else if kind < 0.8 {
            (rng.range(0.1, 0.5), 0, rng.log_range(5.0, 90.0))
        } else {
            let ramp = rng.range(60.0, 300.0);
            (
                1.0,
                (ramp * MIN as f64) as i64,
                ramp + rng.range(30.0, 180.0),
            )
        };
        let peak = if ramp_ms > 0 {
            rng.log_range(0.01, 0.1)
        } else {
            rng.log_range(0.005, 0.2)
        };
        Outage {
            upstream,
            callers,
            start_ms,
            end_ms: start_ms + (dur * MIN as f64) as i64,
            peak,
            partial,
            ramp_ms,
        }
    }
}

/// More traffic for a while; with `error_factor > 1` also more errors per
/// request (load-induced timeouts, lock contention).
#[derive(Debug, Clone)]
pub(super) struct Surge {
    pub(super) service: usize,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    pub(super) factor: f64,
    pub(super) error_factor: f64,
}

impl Surge {
    /// Draws a surge of `service` from `start_ms`.
    pub(super) fn draw(rng: &mut Rng, service: usize, start_ms: i64) -> Self {
        let minutes = rng.range(10.0, 60.0);
        Surge {
            service,
            start_ms,
            end_ms: start_ms + (minutes * 60_000.0) as i64,
            factor: rng.range(1.5, 5.0),
            error_factor: if rng.chance(0.4) {
                rng.range(2.0, 5.0)
            } else {
                1.0
            },
        }
    }

    /// Whether it is on at `t`.
    pub(super) fn active(&self, t: i64) -> bool {
        self.start_ms <= t && t < self.end_ms
    }

    /// `surge` or `surge_errors`.
    pub(super) fn kind(&self) -> &'static str {
        if self.error_factor > 1.0 {
            "surge_errors"
        } else {
            "surge"
        }
    }
}

/// The previous revision keeps serving a share of traffic after a deploy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rollout {
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    /// Canary: the new revision takes `1 - prev_share` until the end, then
    /// everything. Rolling: the previous revision's share falls linearly from
    /// `prev_share` to 0.
    pub(super) canary: bool,
    pub(super) prev_share: f64,
}

impl Rollout {
    /// Draws a rollout for a deploy at `t`.
    pub(super) fn draw(rng: &mut Rng, t: i64) -> Self {
        let canary = rng.chance(0.5);
        Rollout {
            start_ms: t,
            end_ms: t + (rng.range(10.0, 90.0) * 60_000.0) as i64,
            canary,
            prev_share: if canary {
                rng.range(0.8, 0.95)
            } else {
                rng.range(0.5, 0.9)
            },
        }
    }

    /// The previous revision's share of traffic at `t` (0 once done).
    pub(super) fn prev_share(&self, t: i64) -> f64 {
        if t >= self.end_ms {
            return 0.0;
        }
        if self.canary {
            return self.prev_share;
        }
        let f = (t - self.start_ms) as f64 / (self.end_ms - self.start_ms) as f64;
        self.prev_share * (1.0 - f.clamp(0.0, 1.0))
    }
}
