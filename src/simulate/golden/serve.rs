//! One revision's minute of requests: how many, how many 5xx, and how long
//! they took per route (the histogram records).

use super::latency::bucket_mid;
use super::records;
use super::render::{effect_at, Obs, Outside, Serving, World};
use crate::simulate::rng::Rng;

/// Utilisation is capped here: past it a real service sheds load.
const RHO_MAX: f64 = 0.92;

/// The traffic record and one histogram per route with requests, for
/// revision `s` of service `si`; `kills`: its instances OOM-killed this
/// minute (their in-flight requests fail). Notes in `obs` what a CPU
/// culprit does to latency and 5xx.
pub(super) fn minute(
    rng: &mut Rng,
    w: &World<'_>,
    si: usize,
    o: &Outside,
    s: &Serving,
    kills: usize,
    obs: &mut [Obs],
) -> Vec<String> {
    let (m, svc) = (&w.models[si], &w.services[si]);
    let rev = &w.revs[si][s.rev];
    let effect = effect_at(w, s.deploy, o.t);
    let requests = rng.poisson(s.rpm);
    // Queueing: utilisation from traffic against capacity, or from CPU when
    // that is the tighter limit (a CPU culprit slows everything).
    let traffic_rho = s.per_inst / m.capacity;
    let cpu_base = m.cpu_idle + s.per_inst * m.cpu_per_req;
    let rho = traffic_rho
        .max(m.cpu_idle + (cpu_base - m.cpu_idle) * s.cpu)
        .min(RHO_MAX);
    let rho0 = traffic_rho.max(cpu_base).min(RHO_MAX);
    let scale = o.latency * s.cold / (1.0 - rho);
    let err_f = effect.map_or(1.0, |e| e.errors);
    // Load-induced 5xx (timeouts, rejected connections) from ρ = 0.7 up.
    let load = |r: f64| m.err_base * 40.0 * ((r - 0.7).max(0.0) / 0.22).powi(2);
    let mean = m.err_base * err_f + load(rho) + o.errors;
    if let (Some(d), true) = (s.deploy, s.cpu > 1.0) {
        if (1.0 - rho0) / (1.0 - rho) >= 1.5 {
            obs[d].lat_minutes += 1;
        }
        if mean / (m.err_base * err_f + load(rho0) + o.errors) >= 1.5 {
            obs[d].err_minutes += 1;
        }
    }
    let rate = m.err_base * err_f * rng.gamma_any(m.err_shape) + load(rho) + o.errors;
    let mut errors = rng.binomial(requests, rate.min(1.0));
    for _ in 0..kills {
        let p = rng.range(0.3, 0.9);
        errors += rng.binomial(s.per_inst as u64, p);
    }
    let errors = errors.min(requests);
    let mut lines = vec![records::traffic(o.t, &svc.name, rev, requests, errors)];
    let shares: Vec<f64> = m.routes.iter().map(|r| r.share).collect();
    let mut per_route = vec![0u64; shares.len()];
    rng.multinomial(requests, &shares, &mut per_route);
    let mut counts = [0u64; 15];
    for (ri, route) in m.routes.iter().enumerate() {
        if per_route[ri] == 0 {
            continue;
        }
        let mix = match effect.and_then(|e| e.route.as_ref()) {
            Some((r, mix)) if *r == ri => mix,
            _ => &route.mix,
        };
        rng.multinomial(per_route[ri], &mix.bucket_probs(scale), &mut counts);
        let sum: f64 = counts
            .iter()
            .enumerate()
            .map(|(i, c)| *c as f64 * bucket_mid(i))
            .sum::<f64>()
            * (1.0 + 0.02 * rng.normal()).max(0.5);
        lines.push(records::histogram(
            o.t,
            &svc.name,
            rev,
            &route.name,
            &counts,
            sum,
        ));
    }
    lines
}
