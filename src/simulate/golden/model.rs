//! The golden-signal model of one service, drawn per seed: its routes and
//! their latency, how it queues under load, its background 5xx rate, its
//! instances' memory sawtooth and CPU cost per request.

use super::latency::{Comp, Mix};
use crate::simulate::rng::Rng;
use crate::simulate::topology::Service;

const ROUTES: [&str; 16] = [
    "/quote",
    "/cart/{id}",
    "/checkout",
    "/search",
    "/items/{id}",
    "/orders",
    "/orders/{id}",
    "/healthz",
    "/api/v1/prices",
    "/api/v1/stock",
    "/login",
    "/profile/{id}",
    "/recommend",
    "/webhook",
    "/export",
    "/batch",
];

/// One HTTP route.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// `http.route`.
    pub(crate) name: String,
    /// Share of the service's requests.
    pub(crate) share: f64,
    /// Service time (latency at zero load).
    pub(crate) mix: Mix,
}

/// An instance's memory: a base that warms up after start, and a heap that
/// rises and drops at each GC.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// Bytes once warm (without the heap).
    pub(crate) base: f64,
    /// Minutes to warm (time constant).
    pub(crate) warm_min: f64,
    /// Heap height at which a GC drops it, bytes.
    pub(crate) saw_amp: f64,
    /// Heap growth per minute at average load, bytes.
    pub(crate) saw_rise: f64,
    /// The container limit: above it the instance is OOM-killed.
    pub(crate) limit: f64,
}

/// The model of one service.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub(crate) routes: Vec<Route>,
    /// Diurnal amplitude of traffic.
    pub(crate) amp: f64,
    /// Requests per minute one instance serves at utilisation 1.
    pub(crate) capacity: f64,
    /// CPU utilisation per request per minute on one instance.
    pub(crate) cpu_per_req: f64,
    /// CPU utilisation of an idle instance.
    pub(crate) cpu_idle: f64,
    /// 5xx per request (before over-dispersion and load).
    pub(crate) err_base: f64,
    /// Gamma shape of the per-minute 5xx multiplier (smaller: burstier).
    pub(crate) err_shape: f64,
    /// Instances when not scaled.
    pub(crate) instances: usize,
    pub(crate) memory: Memory,
    /// Traffic multiplier per day (day-to-day variation).
    pub(crate) daily: Vec<f64>,
    /// Cold start: a new or restarted instance is this much slower (and
    /// busier) at first, decaying with time constant `cold_tau_min`.
    pub(crate) cold: f64,
    pub(crate) cold_tau_min: f64,
}

/// Draws the model of `svc` for a history of `days` days.
pub(crate) fn draw(rng: &mut Rng, svc: &Service, days: usize) -> Model {
    let n_routes = 1 + rng.below(4);
    let mut names: Vec<&str> = ROUTES.to_vec();
    rng.shuffle(&mut names);
    // Zipf-ish shares: one route takes most of the traffic.
    let raw: Vec<f64> = (0..n_routes)
        .map(|i| rng.range(0.5, 1.5) / (i as f64 + 1.0).powf(rng.range(0.8, 1.6)))
        .collect();
    let total: f64 = raw.iter().sum();
    let routes = raw
        .iter()
        .zip(&names)
        .map(|(w, name)| Route {
            name: (*name).to_owned(),
            share: w / total,
            mix: route_mix(rng),
        })
        .collect();
    let amp = rng.range(0.3, 0.7);
    let instances = 2 + rng.below(5);
    let peak_per_inst = svc.base_rpm * (1.0 + amp) / instances as f64;
    let base = rng.log_range(150e6, 1.5e9);
    let saw_amp = base * rng.range(0.05, 0.3);
    Model {
        routes,
        amp,
        capacity: peak_per_inst / rng.range(0.3, 0.65),
        cpu_per_req: rng.range(0.12, 0.45) / peak_per_inst,
        cpu_idle: rng.range(0.01, 0.05),
        err_base: rng.log_range(1e-4, 5e-3),
        err_shape: rng.range(1.0, 6.0),
        instances,
        memory: Memory {
            base,
            warm_min: rng.range(5.0, 40.0),
            saw_amp,
            saw_rise: saw_amp / rng.range(3.0, 45.0),
            limit: (base + saw_amp) * rng.range(1.5, 2.5),
        },
        daily: (0..days + 1).map(|_| rng.range(0.85, 1.15)).collect(),
        cold: rng.range(0.0, 0.4),
        cold_tau_min: rng.range(1.0, 3.0),
    }
}

/// A heavy-tailed service time: a lognormal body, sometimes a rare slow path
/// (cache miss, cold query), and a thin Pareto tail.
fn route_mix(rng: &mut Rng) -> Mix {
    let median = rng.log_range(0.004, 0.3);
    let mut mix = Mix {
        parts: vec![(
            1.0,
            Comp::LogNormal {
                median,
                sigma: rng.range(0.25, 0.8),
            },
        )],
    };
    if rng.chance(0.6) {
        mix = mix.with(
            rng.range(0.005, 0.05),
            Comp::LogNormal {
                median: median * rng.range(3.0, 12.0),
                sigma: rng.range(0.3, 0.7),
            },
        );
    }
    let xm = mix.quantile(0.95);
    mix.with(
        rng.range(0.002, 0.02),
        Comp::Pareto {
            xm,
            alpha: rng.range(1.5, 3.0),
        },
    )
}

impl Model {
    /// The cold-start multiplier of an instance `age_min` minutes old.
    pub(crate) fn cold_start(&self, age_min: f64) -> f64 {
        1.0 + self.cold * (-age_min / self.cold_tau_min).exp()
    }

    /// Requests per minute at `t_frac_day` (time of day in days, phase
    /// applied) on day `day`, before surges.
    pub(crate) fn rpm(&self, svc: &Service, day_frac: f64, day: usize) -> f64 {
        let d = self.daily.get(day).copied().unwrap_or(1.0);
        svc.base_rpm * d * (1.0 + self.amp * (2.0 * std::f64::consts::PI * day_frac).sin())
    }
}
