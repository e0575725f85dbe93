//! Rendering the adversarial plan minute by minute: deploy records, traffic
//! per live revision, background errors, failing upstream calls and the
//! culprits' new errors, all through the late, out-of-order [`Shipper`].

use std::io::Write;

use super::super::bugs::Effect;
use super::super::lang::{self, Exc};
use super::super::output::{self, Shipper};
use super::super::rng::Rng;
use super::super::topology::{self, Service, Upstream};
use super::{Plan, Rev, DAY, HOUR, MIN};

/// Per-service state while rendering.
struct Live {
    deploy: Option<usize>,
    prev_deploy: Option<usize>,
    mult: Vec<f64>,
    amp: f64,
    rid: bool,
}

/// Renders `plan` over `[start, end)` to `out`; returns the records written.
pub(super) fn render(
    rng: &mut Rng,
    (start, end): (i64, i64),
    services: &[Service],
    upstreams: &[Upstream],
    plan: &Plan,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let world = World {
        start,
        services,
        upstreams,
        plan,
    };
    let mut ship = Shipper::new();
    let mut live: Vec<Live> = services
        .iter()
        .map(|s| Live {
            deploy: None,
            prev_deploy: None,
            mult: vec![1.0; s.sigs.len()],
            amp: rng.range(0.3, 0.7),
            rid: rng.chance(0.5),
        })
        .collect();
    let mut next = 0;
    let mut t = start;
    while t < end {
        while next < plan.deploys.len() && plan.deploys[next].ts < t + MIN {
            world.ship_deploy(next, &mut live, &mut ship, rng);
            next += 1;
        }
        for (si, l) in live.iter_mut().enumerate() {
            world.service_minute(si, t, l, &mut ship, rng);
        }
        ship.flush(t + MIN, out)?;
        t += MIN;
    }
    ship.finish(out)?;
    Ok(ship.records)
}

/// What rendering reads: the fleet and the plan.
struct World<'a> {
    start: i64,
    services: &'a [Service],
    upstreams: &'a [Upstream],
    plan: &'a Plan,
}

/// One live revision's minute: where its errors go and how many requests
/// they are drawn against.
struct Minute<'a> {
    si: usize,
    t: i64,
    req: f64,
    /// The surge's error factor (1 without a surge).
    err_f: f64,
    rev: &'a Rev,
    effect: &'a Effect,
    deployed_at: i64,
    rid: bool,
    batch_delay: i64,
}

impl World<'_> {
    /// Ships deploy `di`'s record and makes it the service's live deploy.
    fn ship_deploy(&self, di: usize, live: &mut [Live], ship: &mut Shipper, rng: &mut Rng) {
        let d = &self.plan.deploys[di];
        let svc = &self.services[d.svc];
        let revs = &self.plan.revs[d.svc];
        let (r, p) = (&revs[d.rev].name, &revs[d.prev].name);
        let repo = format!("git@github.com:{}/{}.git", "shop", svc.name);
        ship.ship(
            output::deploy(d.ts, &svc.name, r, p, &repo, &d.change.diff),
            d.ts,
            None,
            0,
            rng,
        );
        live[d.svc].prev_deploy = live[d.svc].deploy;
        live[d.svc].deploy = Some(di);
    }

    /// Service `si`'s minute at `t`: traffic and errors of each live revision.
    fn service_minute(&self, si: usize, t: i64, l: &mut Live, ship: &mut Shipper, rng: &mut Rng) {
        let svc = &self.services[si];
        if (t - self.start) % HOUR == 0 {
            for (m, s) in l.mult.iter_mut().zip(&svc.sigs) {
                *m = rng.gamma_any(s.shape);
            }
        }
        let batch_delay = match svc.late {
            Some(lt) if rng.chance(lt.batch_delay_p) => rng.int(5, 20) * MIN,
            _ => 0,
        };
        let day_frac = ((t - self.start) as f64 / DAY as f64 + svc.phase).fract();
        let mut rpm = svc.base_rpm * (1.0 + l.amp * (2.0 * std::f64::consts::PI * day_frac).sin());
        let mut err_f = 1.0;
        for s in self
            .plan
            .surges
            .iter()
            .filter(|s| s.service == si && s.active(t))
        {
            rpm *= s.factor;
            err_f = f64::max(err_f, s.error_factor);
        }
        for (ri, di, share) in self.shares(l, t) {
            let rv = &self.plan.revs[si][ri];
            let requests = rng.poisson(rpm * share);
            ship.ship(
                output::traffic(t, &svc.name, &rv.name, requests),
                t,
                svc.late,
                batch_delay,
                rng,
            );
            let deploys = &self.plan.deploys;
            let m = Minute {
                si,
                t,
                req: requests as f64,
                err_f,
                rev: rv,
                effect: di.map_or(&Effect::None, |d| &deploys[d].change.effect),
                deployed_at: di.map_or(self.start, |d| deploys[d].ts),
                rid: l.rid,
                batch_delay,
            };
            self.background_errors(&m, &l.mult, ship, rng);
            self.call_errors(&m, ship, rng);
            self.new_errors(&m, ship, rng);
        }
    }

    /// Live revisions at `t`: (revision index, deploy index, share).
    fn shares(&self, l: &Live, t: i64) -> Vec<(usize, Option<usize>, f64)> {
        let mut shares = Vec::new();
        match l.deploy {
            None => shares.push((0, None, 1.0)),
            Some(di) => {
                let d = &self.plan.deploys[di];
                let p = d.rollout.map_or(0.0, |r| r.prev_share(t));
                if p > 0.0 {
                    shares.push((d.prev, l.prev_deploy, p));
                }
                // The new revision serves from the minute after the deploy.
                if d.ts < t {
                    shares.push((d.rev, Some(di), 1.0 - p));
                } else if p == 0.0 {
                    shares.push((d.prev, l.prev_deploy, 1.0));
                }
            }
        }
        shares
    }

    /// Ships one error line of minute `m`, at a random second of it.
    fn emit(
        &self,
        m: &Minute<'_>,
        ship: &mut Shipper,
        rng: &mut Rng,
        msg: String,
        stack: Option<String>,
    ) {
        let svc = &self.services[m.si];
        let ts = m.t + rng.int(0, 59_999);
        let msg = if m.rid {
            format!("{msg} request_id={}", rng.hex(16))
        } else {
            msg
        };
        ship.ship(
            output::log(ts, &svc.name, &m.rev.name, &msg, stack.as_deref()),
            ts,
            svc.late,
            m.batch_delay,
            rng,
        );
    }

    /// The service's own background errors (spiked by a spike culprit).
    fn background_errors(&self, m: &Minute<'_>, mult: &[f64], ship: &mut Shipper, rng: &mut Rng) {
        let svc = &self.services[m.si];
        for (j, s) in svc.sigs.iter().enumerate() {
            let factor = match m.effect {
                Effect::SigSpike { sig, factor } if *sig == j => *factor,
                _ => 1.0,
            };
            let n = rng.poisson(s.rate * mult[j] * factor * m.err_f * m.req);
            for _ in 0..n {
                let exc = Exc {
                    ty: s.exc_ty.clone(),
                    msg: lang::fill(&s.template, rng),
                };
                let stack = m.rev.sig_frames[j]
                    .as_ref()
                    .map(|f| lang::render_stack(svc.lang, &exc, f, None));
                self.emit(m, ship, rng, lang::message(svc.lang, &exc), stack);
            }
        }
    }

    /// Failing calls to upstreams: their base rate, outages and a
    /// dependency culprit's extra rate.
    fn call_errors(&self, m: &Minute<'_>, ship: &mut Shipper, rng: &mut Rng) {
        let svc = &self.services[m.si];
        for (ci, c) in svc.calls.iter().enumerate() {
            let mut rate = c.base_rate * m.err_f;
            for o in self
                .plan
                .outages
                .iter()
                .filter(|o| o.upstream == c.upstream && o.callers.contains(&m.si))
            {
                rate += o.rate(m.t);
            }
            if let Effect::CallSpike { call, extra_rate } = m.effect {
                if *call == ci {
                    rate += extra_rate;
                }
            }
            let n = rng.poisson(rate.min(1.0) * c.share * m.req);
            for _ in 0..n {
                let (ty, msg) =
                    topology::upstream_error(c.style, &self.upstreams[c.upstream], svc.lang, rng);
                let message = if ty.is_empty() {
                    msg.clone()
                } else {
                    format!("{ty}: {msg}")
                };
                let stack = m.rev.call_frames[ci].as_ref().map(|f| {
                    let ty = if ty.is_empty() {
                        "UpstreamError".to_owned()
                    } else {
                        ty.clone()
                    };
                    let exc = Exc {
                        ty,
                        msg: msg.clone(),
                    };
                    lang::render_stack(svc.lang, &exc, f, None)
                });
                self.emit(m, ship, rng, message, stack);
            }
        }
    }

    /// A new-error culprit's error, from its onset on.
    fn new_errors(&self, m: &Minute<'_>, ship: &mut Shipper, rng: &mut Rng) {
        if let Effect::New {
            rate,
            onset_ms,
            message,
            stack,
            stackless,
        } = m.effect
        {
            if m.t >= m.deployed_at + onset_ms {
                let n = rng.poisson(rate * m.req);
                for _ in 0..n {
                    let st = (!rng.chance(*stackless)).then(|| stack.clone());
                    self.emit(m, ship, rng, message.clone(), st);
                }
            }
        }
    }
}
