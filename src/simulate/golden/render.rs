//! Rendering: the minute-by-minute loop. Per service and minute: traffic
//! (diurnal, surges), the revisions serving (rollouts split traffic and
//! instances), queueing (latency ×1/(1-ρ)), 5xx (over-dispersed, rising
//! with load and failing dependencies), then one traffic record per
//! revision, one histogram per revision and route, and memory and CPU per
//! instance. What each culprit did beyond its own signal (OOM kills, CPU
//! pushing latency up) is observed here for the truth.

use std::io::Write;

use super::culprit::Effect;
use super::events::Events;
use super::instances::Pool;
use super::model::Model;
use super::plan::{Deploy, Span};
use super::{gauges, serve};
use crate::simulate::output::{self, Shipper};
use crate::simulate::rng::Rng;
use crate::simulate::topology::Service;

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// Everything planned.
pub(super) struct World<'a> {
    pub(super) span: Span,
    pub(super) services: &'a [Service],
    pub(super) models: &'a [Model],
    pub(super) revs: &'a [Vec<String>],
    pub(super) deploys: &'a [Deploy],
    pub(super) events: &'a Events,
}

/// What a deploy's revision went through, for its truth.
#[derive(Debug, Clone, Default)]
pub(super) struct Obs {
    /// Its instances OOM-killed.
    pub(super) ooms: usize,
    /// Minutes its culprit's CPU raised latency ≥1.5× by queueing.
    pub(super) lat_minutes: usize,
    /// Minutes its culprit's CPU raised the 5xx rate ≥1.5× by load.
    pub(super) err_minutes: usize,
}

#[derive(Default)]
struct Live {
    deploy: Option<usize>,
    prev_deploy: Option<usize>,
    pool: Pool,
    /// Noisy-instance events and the instance each picked.
    noisy: Vec<(usize, String)>,
}

/// One serving revision in one minute.
pub(super) struct Serving {
    pub(super) rev: usize,
    pub(super) deploy: Option<usize>,
    /// Requests per minute to it, and per instance of it.
    pub(super) rpm: f64,
    pub(super) per_inst: f64,
    /// Its CPU-per-request multiplier.
    pub(super) cpu: f64,
    /// Its instances' mean cold-start latency multiplier.
    pub(super) cold: f64,
}

/// What a minute brings a service from outside: a dependency's latency
/// multiplier and extra 5xx per request.
pub(super) struct Outside {
    pub(super) t: i64,
    pub(super) latency: f64,
    pub(super) errors: f64,
}

/// Renders the history; returns the records written and the observations.
pub(super) fn render(
    rng: &mut Rng,
    w: &World<'_>,
    out: &mut impl Write,
) -> std::io::Result<(usize, Vec<Obs>)> {
    let mut ship = Shipper::new();
    let mut live: Vec<Live> = w.services.iter().map(|_| Live::default()).collect();
    let mut obs = vec![Obs::default(); w.deploys.len()];
    let mut next = 0;
    let mut t = w.span.start;
    while t < w.span.end {
        while next < w.deploys.len() && w.deploys[next].ts < t + MIN {
            let d = &w.deploys[next];
            let svc = &w.services[d.svc];
            let (r, p) = (&w.revs[d.svc][d.rev], &w.revs[d.svc][d.prev]);
            let repo = format!("git@github.com:shop/{}.git", svc.name);
            let line = output::deploy(d.ts, &svc.name, r, p, &repo, &d.change.diff);
            ship.ship(line, d.ts, None, 0, rng);
            live[d.svc].prev_deploy = live[d.svc].deploy;
            live[d.svc].deploy = Some(next);
            next += 1;
        }
        for (si, l) in live.iter_mut().enumerate() {
            service_minute(rng, w, si, t, l, &mut ship, &mut obs);
        }
        ship.flush(t + MIN, out)?;
        t += MIN;
    }
    ship.finish(out)?;
    Ok((ship.records, obs))
}

/// The active effect of deploy `di` at `t` (after its onset).
pub(super) fn effect_at<'a>(w: &'a World<'_>, di: Option<usize>, t: i64) -> Option<&'a Effect> {
    let d = &w.deploys[di?];
    d.effect.as_ref().filter(|e| t >= d.ts + e.onset_ms)
}

/// The revisions serving at `t`: (revision, deploy, traffic share).
fn shares(w: &World<'_>, l: &Live, t: i64) -> Vec<(usize, Option<usize>, f64)> {
    let Some(di) = l.deploy else {
        return vec![(0, None, 1.0)];
    };
    let d = &w.deploys[di];
    let p = d.rollout.map_or(0.0, |r| r.prev_share(t));
    let mut v = Vec::new();
    if p > 0.0 {
        v.push((d.prev, l.prev_deploy, p));
    }
    // The new revision serves from the minute after the deploy.
    if d.ts < t {
        v.push((d.rev, Some(di), 1.0 - p));
    } else if p == 0.0 {
        v.push((d.prev, l.prev_deploy, 1.0));
    }
    v
}

/// Scales, splits and restarts the instances, and picks noisy ones.
fn place_instances(
    rng: &mut Rng,
    w: &World<'_>,
    si: usize,
    t: i64,
    l: &mut Live,
    serving: &[(usize, Option<usize>, f64)],
) {
    let ev = w.events;
    let m = &w.models[si];
    let delta: i64 = ev
        .scales
        .iter()
        .filter(|s| s.service == si && s.start_ms <= t && t < s.end_ms)
        .map(|s| s.delta)
        .sum();
    let mut n = (m.instances as i64 + delta).max(1) as usize;
    let want: Vec<(usize, usize)> = if serving.len() == 2 {
        // A rollout surges one extra instance when there is only one.
        n = n.max(2);
        let old = ((n as f64 * serving[0].2).round() as usize).clamp(1, n - 1);
        vec![(serving[0].0, old), (serving[1].0, n - old)]
    } else {
        vec![(serving[0].0, n)]
    };
    l.pool
        .reconcile(&want, t, &w.services[si].name, &w.revs[si], rng);
    let newest = serving.last().map(|s| s.0);
    for r in ev
        .restarts
        .iter()
        .filter(|r| r.service == si && t <= r.at_ms && r.at_ms < t + MIN)
    {
        l.pool
            .restart_one(r.newest.then_some(newest).flatten(), t, rng);
    }
    for (ni, e) in ev.noisy.iter().enumerate() {
        if e.service != si || t < e.start_ms || t >= e.end_ms || l.noisy.iter().any(|x| x.0 == ni) {
            continue;
        }
        let cands: Vec<&str> = l
            .pool
            .insts
            .iter()
            .filter(|i| !e.newest || Some(i.rev) == newest)
            .map(|i| i.name.as_str())
            .collect();
        if !cands.is_empty() {
            let name = (*rng.pick(&cands)).to_owned();
            l.noisy.push((ni, name));
        }
    }
    l.noisy.retain(|(ni, _)| t < ev.noisy[*ni].end_ms);
}

/// One minute of one service.
fn service_minute(
    rng: &mut Rng,
    w: &World<'_>,
    si: usize,
    t: i64,
    l: &mut Live,
    ship: &mut Shipper,
    obs: &mut [Obs],
) {
    let (svc, m, ev) = (&w.services[si], &w.models[si], w.events);
    let since = t - w.span.start;
    let day_frac = (since as f64 / DAY as f64 + svc.phase).fract();
    let mut rpm = m.rpm(svc, day_frac, (since / DAY) as usize);
    for s in ev
        .surges
        .iter()
        .filter(|s| s.service == si && s.start_ms <= t && t < s.end_ms)
    {
        rpm *= s.factor;
    }
    let (mut lat_f, mut err_add) = (1.0, 0.0);
    for d in ev
        .dep_slows
        .iter()
        .filter(|d| d.services.contains(&si) && d.start_ms <= t && t < d.end_ms)
    {
        lat_f *= d.latency;
        err_add += d.errors;
    }
    let serving = shares(w, l, t);
    place_instances(rng, w, si, t, l, &serving);
    let killed = l.pool.step(
        t,
        &m.memory,
        |rev| {
            serving
                .iter()
                .find(|s| s.0 == rev)
                .and_then(|s| effect_at(w, s.1, t))
                .map_or(0.0, |e| e.leak)
        },
        rng,
    );
    let gap = ev
        .gaps
        .iter()
        .any(|g| g.service == si && g.start_ms <= t && t < g.end_ms);
    let batch_delay = match svc.late {
        Some(lt) if rng.chance(lt.batch_delay_p) => rng.int(5, 20) * MIN,
        _ => 0,
    };
    let mut loads = Vec::new();
    for &(rev, deploy, share) in &serving {
        let (mut up, mut cold) = (0usize, 0.0);
        for i in l.pool.insts.iter().filter(|i| i.rev == rev && i.up(t)) {
            up += 1;
            cold += m.cold_start(i.age_min(t));
        }
        let per_inst = rpm * share / up.max(1) as f64;
        let effect = effect_at(w, deploy, t);
        let s = Serving {
            rev,
            deploy,
            rpm: rpm * share,
            per_inst,
            cpu: effect.map_or(1.0, |e| e.cpu),
            cold: if up == 0 { 1.0 } else { cold / up as f64 },
        };
        let kills = killed.iter().filter(|r| **r == rev).count();
        if let Some(d) = deploy {
            obs[d].ooms += kills;
        }
        let outside = Outside {
            t,
            latency: lat_f,
            errors: err_add,
        };
        let lines = serve::minute(rng, w, si, &outside, &s, kills, obs);
        if !gap {
            for line in lines {
                ship.ship(line, t, svc.late, batch_delay, rng);
            }
        }
        loads.push(s);
    }
    if !gap {
        for (line, ts) in gauges::minute(rng, w, si, t, &l.pool, &l.noisy, &loads) {
            ship.ship(line, ts, svc.late, batch_delay, rng);
        }
    }
}
