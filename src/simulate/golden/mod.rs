//! The `golden` profile: a fleet's golden signals (latency histograms,
//! traffic with 5xx counts, per-instance memory and CPU) around deploys, some
//! of which regress one of them, among confounders built to fool a detector
//! that compares each new revision with its previous one.
//!
//! # Model
//! - **Traffic**: per service a base rate (80–5000 rpm), a diurnal sine
//!   (amplitude 0.3–0.7, per-service phase), a day-to-day factor (0.85–1.15);
//!   Poisson per minute and revision.
//! - **Latency**: 1–4 routes per service with Zipf-ish shares; each route's
//!   service time is a lognormal body (median 4–300 ms), often a rare slow
//!   path (0.5–5%, 3–12× slower) and a Pareto tail (0.2–2%, α 1.5–3).
//!   Observed latency is service time × 1/(1-ρ) (capped at ρ = 0.92), ρ the
//!   per-instance utilisation from traffic against capacity (peak ρ
//!   0.3–0.65), or from CPU when that is tighter.
//! - **5xx**: a base rate per request (0.01–0.5%) times a per-minute gamma
//!   (shape 1–6: over-dispersed), plus load-induced errors above ρ = 0.7,
//!   plus a failing dependency's, plus OOM-killed instances' in-flight
//!   requests.
//! - **Instances**: 2–6 per service, named like pods after the revision
//!   (new names on every deploy and scale-out); memory warms up after start
//!   (5–40 min), then a GC sawtooth (5–30% of a 150 MB–1.5 GB base, period
//!   3–45 min); OOM-killed above a limit (1.5–2.5× the warm peak) and
//!   restarted under the same name; CPU ∝ requests per instance + noise.
//!   A new or restarted instance starts cold: up to 40% slower (and
//!   busier), decaying over 1–3 minutes, so every deploy shows a brief bump.
//!   Rolling and canary deploys split traffic and instances between both
//!   revisions for 10–90 minutes.
//! - **Culprits** ([`culprit::Kind`]): `latency_tail` (p99 ×1.5–4 on one
//!   route, p50 unchanged), `latency_mode` (a new mode at 1–3× the old
//!   p99 on 3–10% of a route's requests), `latency_shift` (route ×1.3–2),
//!   `error_rate` (5xx ×3–20, no log), `memory_leak` (+30–300 MB/h per new
//!   instance), `cpu` (CPU per request ×1.5–3); 20±10% of them start 2–20
//!   minutes after the deploy. Diffs come from [`super::bugs`].
//! - **Confounders** ([`events`]): a shared dependency slowing (×1.3–3)
//!   and/or failing 2–5 services at once, often minutes after one of them
//!   deploys; surges (×2–4 traffic: queueing latency, load 5xx, CPU); one
//!   noisy instance (CPU and/or memory, often a new one); gaps (2–30 minutes
//!   of a service's metrics missing); restarts and scale-outs right after a
//!   deploy (memory drops, then grows normally); late, out-of-order
//!   shipping ([`super::output`]).
//!
//! # Knobs
//! Every rate and magnitude above is drawn from the seed, and so are the
//! proportions ([`knobs::Knobs`]): the culprit share (28–40%), the weights of
//! latency / 5xx / saturation culprits, and how often each confounder lands
//! near a deploy or at random. Defaults: 20 services, 10 days (deploys only
//! in the last 3, so each has a week of history), a deploy per service every
//! ~10 hours.
//!
//! # Truth
//! One [`Truth`] per deploy: `label` (`clean`, `culprit_latency`,
//! `culprit_error_rate`, `culprit_saturation`), `signals` (what the culprit
//! truly degraded, side effects included: see [`label::signals`]),
//! `route`, `magnitude`, `bug_kind` (the culprit kind), and the confounders
//! within 30 minutes before to an hour after.
//!
//! # Layout
//! [`knobs`], [`model`] (one service), [`latency`] (mixtures and buckets),
//! [`culprit`], [`events`], [`plan`] (deploys and confounders),
//! [`instances`], [`render`] (the minute loop), [`serve`] (requests, 5xx,
//! histograms), [`gauges`], [`records`], [`label`] (truth lines).

mod culprit;
mod events;
mod gauges;
mod instances;
mod knobs;
mod label;
mod latency;
mod model;
mod plan;
mod records;
mod render;
mod serve;
#[cfg(test)]
mod tests;

use std::io::Write;

use super::rng::Rng;
use super::topology::{self, Fleet};
use super::SimArgs;
#[cfg(doc)]
use super::Truth;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// Default number of services for this profile.
pub(super) const SERVICES: usize = 20;
/// Default days of history for this profile.
pub(super) const DAYS: f64 = 10.0;

/// Writes the golden history to `out` and its labels to `truth`.
pub(super) fn simulate(
    args: &SimArgs,
    out: &mut impl Write,
    truth: &mut impl Write,
) -> std::io::Result<(usize, usize)> {
    let mut rng = Rng(args.seed ^ 0x901d_e5a1_5e7e_c7ed);
    let start: i64 = 1_772_323_200_000; // 2026-03-01T00:00:00Z
    let end = start + (args.days * DAY as f64) as i64;
    // Deploys in the last three days, after at least one day of history.
    let span = plan::Span {
        start,
        end,
        deploy_from: start + DAY.max(end - start - 3 * DAY),
    };
    let knobs = knobs::Knobs::draw(&mut rng);
    let Fleet {
        services,
        upstreams,
    } = topology::fleet(&mut rng, args.services);
    let days = (args.days.ceil().max(1.0)) as usize;
    let models: Vec<model::Model> = services
        .iter()
        .map(|s| model::draw(&mut rng, s, days))
        .collect();
    let every = args.deploy_every_hours * HOUR as f64;
    let (deploys, revs) = plan::deploys(
        &mut rng, &knobs, span, every, &services, &upstreams, &models,
    );
    let events = plan::events(&mut rng, &knobs, span, &services, &models, &deploys);
    let world = render::World {
        span,
        services: &services,
        models: &models,
        revs: &revs,
        deploys: &deploys,
        events: &events,
    };
    let (records, obs) = render::render(&mut rng, &world, out)?;
    for (d, o) in deploys.iter().zip(&obs) {
        let t = label::truth(&world, d, o, &events);
        writeln!(
            truth,
            "{}",
            serde_json::to_string(&t).expect("serializable")
        )?;
    }
    Ok((records, deploys.len()))
}
