//! Planning: every deploy (its diff, and for culprits the effect) and every
//! confounder, up front, all drawn from the seed.

use super::culprit::{self, Effect};
use super::events::{DepSlow, Events, Gap, Noisy, Restart, Scale, Surge};
use super::knobs::Knobs;
use super::model::Model;
use crate::simulate::bugs::{self, BugKind, Change};
use crate::simulate::confounders::Rollout;
use crate::simulate::rng::Rng;
use crate::simulate::topology::{Code, Service, Upstream};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// One planned deploy.
pub(super) struct Deploy {
    pub(super) svc: usize,
    pub(super) ts: i64,
    /// Index into the service's revisions, and the previous one's.
    pub(super) rev: usize,
    pub(super) prev: usize,
    pub(super) change: Change,
    pub(super) effect: Option<Effect>,
    pub(super) rollout: Option<Rollout>,
}

/// The fleet's time span and deploy window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) start: i64,
    pub(super) end: i64,
    /// Deploys happen in `[deploy_from, end - 90 min)`.
    pub(super) deploy_from: i64,
}

/// Plans deploys (sorted by time) and the services' revision names.
#[allow(clippy::too_many_arguments)]
pub(super) fn deploys(
    rng: &mut Rng,
    knobs: &Knobs,
    span: Span,
    every_ms: f64,
    services: &[Service],
    upstreams: &[Upstream],
    models: &[Model],
) -> (Vec<Deploy>, Vec<Vec<String>>) {
    let mut out = Vec::new();
    let mut revs = Vec::new();
    for (si, svc) in services.iter().enumerate() {
        let mut code = svc.code.clone();
        let mut names = vec![rng.hex(7)];
        let mut t = span.deploy_from + (rng.uniform() * every_ms) as i64;
        while t < span.end - 90 * MIN {
            let ts = t - t.rem_euclid(MIN) + rng.int(0, 59) * 1000;
            let effect = rng.chance(knobs.culprit_p).then(|| {
                let label = knobs.label(rng);
                let kind = culprit::Kind::draw(rng, label);
                culprit::draw(rng, kind, &models[si], knobs.onset_p)
            });
            let change = if effect.is_some() {
                culprit_change(rng, svc, &mut code, upstreams)
            } else {
                bugs::clean_change(svc, &mut code, rng)
            };
            let rollout = rng.chance(knobs.rollout_p).then(|| Rollout::draw(rng, ts));
            names.push(rng.hex(7));
            out.push(Deploy {
                svc: si,
                ts,
                rev: names.len() - 1,
                prev: names.len() - 2,
                change,
                effect,
                rollout,
            });
            t += (rng.range(0.5, 1.5) * every_ms) as i64;
        }
        revs.push(names);
    }
    out.sort_by_key(|d| (d.ts, d.svc));
    (out, revs)
}

/// A culprit's diff: a code change (the changed line is the slow query, the
/// failing call, the allocation), a config change (a pool size, a timeout)
/// or a dependency bump, with unrelated changes riding along.
fn culprit_change(rng: &mut Rng, svc: &Service, code: &mut Code, ups: &[Upstream]) -> Change {
    let u = rng.uniform();
    let mut change = None;
    if u < 0.7 {
        let kind = if rng.chance(0.6) {
            BugKind::ChangedLine
        } else {
            BugKind::SameFunction
        };
        let mut trial = code.clone();
        if let Some(c) = bugs::code_culprit(svc, &mut trial, kind, None, rng) {
            *code = trial;
            change = Some(c);
        }
    }
    let mut c = change.unwrap_or_else(|| {
        let kind = if u < 0.9 {
            BugKind::Config
        } else {
            BugKind::Dependency
        };
        bugs::config_culprit(svc, code, ups, kind, rng)
    });
    let cf = c
        .culprit
        .as_ref()
        .and_then(|k| code.files.iter().position(|f| f.path == k.file));
    let (noise, kinds) = bugs::noise(svc, code, cf, rng);
    c.diff.push_str(&noise);
    for k in kinds {
        if !c.kinds.contains(&k) {
            c.kinds.push(k);
        }
    }
    c
}

/// Plans the confounders: some right around deploys, the rest at random
/// over the whole history (baseline days included).
pub(super) fn events(
    rng: &mut Rng,
    knobs: &Knobs,
    span: Span,
    services: &[Service],
    models: &[Model],
    deploys: &[Deploy],
) -> Events {
    let mut ev = Events::default();
    near_deploys(rng, knobs, services, deploys, &mut ev);
    at_random(rng, knobs, span, services, models, &mut ev);
    ev
}

/// Confounders right around deploys (often minutes after: where a naive
/// detector blames the deploy).
fn near_deploys(
    rng: &mut Rng,
    knobs: &Knobs,
    services: &[Service],
    deploys: &[Deploy],
    ev: &mut Events,
) {
    for d in deploys {
        let t = d.ts - d.ts.rem_euclid(MIN);
        if rng.chance(knobs.dep_slow_near_p) {
            let u = rng.uniform();
            let off = if u < 0.25 {
                rng.int(-20, -3)
            } else if u < 0.45 {
                rng.int(-1, 1)
            } else {
                rng.int(2, 20)
            };
            let hit = dependents(rng, services, Some(d.svc));
            ev.dep_slows.push(DepSlow::draw(rng, hit, t + off * MIN));
        }
        if rng.chance(knobs.surge_near_p) {
            let s = t + rng.int(-5, 15) * MIN;
            ev.surges.push(Surge::draw(rng, d.svc, s));
        }
        if rng.chance(knobs.noisy_near_p) {
            let newest = rng.chance(0.7);
            let s = t + rng.int(0, 20) * MIN;
            ev.noisy.push(Noisy::draw(rng, d.svc, s, newest));
        }
        if rng.chance(knobs.gap_near_p) {
            let s = t + rng.int(-5, 30) * MIN;
            ev.gaps.push(Gap {
                service: d.svc,
                start_ms: s,
                end_ms: s + rng.int(2, 30) * MIN,
            });
        }
        if rng.chance(knobs.restart_near_p) {
            for _ in 0..1 + rng.below(2) {
                ev.restarts.push(Restart {
                    service: d.svc,
                    at_ms: t + rng.int(2, 20) * MIN,
                    newest: true,
                });
            }
        }
        if rng.chance(knobs.scale_out_near_p) {
            let s = t + rng.int(3, 30) * MIN;
            ev.scales.push(Scale {
                service: d.svc,
                start_ms: s,
                end_ms: s + rng.int(30, 240) * MIN,
                delta: rng.int(1, 3),
            });
        }
    }
}

/// Confounders at random over the whole history (baseline days included).
fn at_random(
    rng: &mut Rng,
    knobs: &Knobs,
    span: Span,
    services: &[Service],
    models: &[Model],
    ev: &mut Events,
) {
    let n = services.len();
    let days = (span.end - span.start) as f64 / DAY as f64;
    let at = |rng: &mut Rng| {
        let t = span.start + (rng.uniform() * (span.end - span.start) as f64) as i64;
        t - t.rem_euclid(MIN)
    };
    for _ in 0..(days * knobs.dep_slows_per_day).round() as usize {
        let hit = dependents(rng, services, None);
        let t = at(rng);
        ev.dep_slows.push(DepSlow::draw(rng, hit, t));
    }
    for _ in 0..(days * knobs.surges_per_day).round() as usize {
        let (s, t) = (rng.below(n), at(rng));
        ev.surges.push(Surge::draw(rng, s, t));
    }
    for _ in 0..(days * knobs.noisy_per_day).round() as usize {
        let (s, t) = (rng.below(n), at(rng));
        ev.noisy.push(Noisy::draw(rng, s, t, false));
    }
    for _ in 0..(days * knobs.gaps_per_day).round() as usize {
        let (s, t) = (rng.below(n), at(rng));
        let len = rng.int(2, 30);
        ev.gaps.push(Gap {
            service: s,
            start_ms: t,
            end_ms: t + len * MIN,
        });
    }
    for _ in 0..(days * knobs.scales_per_day).round() as usize {
        let (s, t) = (rng.below(n), at(rng));
        let delta = if rng.chance(0.5) { rng.int(1, 3) } else { -1 };
        let len = rng.int(30, 360);
        ev.scales.push(Scale {
            service: s,
            start_ms: t,
            end_ms: t + len * MIN,
            delta,
        });
    }
    let instances: usize = models.iter().map(|m| m.instances).sum();
    let restarts = days * instances as f64 * knobs.restarts_per_instance_day;
    for _ in 0..restarts.round() as usize {
        let (s, t) = (rng.below(n), at(rng));
        ev.restarts.push(Restart {
            service: s,
            at_ms: t,
            newest: false,
        });
    }
}

/// 2–5 services sharing a dependency: callers of one upstream (of the
/// deploying service's, when given), topped up with others (not every
/// shared dependency is in our topology).
fn dependents(rng: &mut Rng, services: &[Service], deploying: Option<usize>) -> Vec<usize> {
    let want = (2 + rng.below(4)).min(services.len());
    let mut v: Vec<usize> = deploying.into_iter().collect();
    let first = deploying.unwrap_or_else(|| rng.below(services.len()));
    let calls = &services[first].calls;
    if !calls.is_empty() {
        let u = calls[rng.below(calls.len())].upstream;
        let mut callers: Vec<usize> = (0..services.len())
            .filter(|&s| services[s].calls.iter().any(|c| c.upstream == u))
            .collect();
        rng.shuffle(&mut callers);
        for c in callers {
            if v.len() < want && !v.contains(&c) {
                v.push(c);
            }
        }
    }
    while v.len() < want {
        let s = rng.below(services.len());
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}
