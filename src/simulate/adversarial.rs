//! The `adversarial` profile: plan the fleet, every deploy and every
//! confounder up front (all knobs drawn per seed), then render the history
//! minute by minute.
//!
//! The knobs ([`Knobs`]) are drawn from the seed, so two seeds differ in how
//! often deploys are culprits, which bug kinds dominate, how often outages
//! follow deploys, and so on: a system tuned on some seeds is measured on
//! others with other proportions, not only other dice.

use std::io::Write;

use super::bugs::{self, BugKind, Change, Effect};
use super::confounders::{Outage, Rollout, Surge};
use super::lang::{self, Frame, Lang};
use super::rng::Rng;
use super::topology::{self, Code, Fleet};
use super::{SimArgs, Truth};

mod render;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// Per-seed proportions.
#[derive(Debug, Clone)]
struct Knobs {
    culprit_p: f64,
    spike_share: f64,
    /// Weights of changed line, same function, wrong value, config, dependency.
    kind_w: [f64; 5],
    outage_near_p: f64,
    surge_near_p: f64,
    rolling_p: f64,
    outages_per_day: f64,
    surges_per_day: f64,
}

impl Knobs {
    fn draw(rng: &mut Rng) -> Self {
        let base = [0.3, 0.2, 0.25, 0.15, 0.1];
        Knobs {
            culprit_p: rng.range(0.18, 0.35),
            spike_share: rng.range(0.25, 0.5),
            kind_w: base.map(|w| w * rng.range(0.5, 1.5)),
            outage_near_p: rng.range(0.15, 0.35),
            surge_near_p: rng.range(0.08, 0.2),
            rolling_p: rng.range(0.15, 0.4),
            outages_per_day: rng.range(1.0, 4.0),
            surges_per_day: rng.range(1.0, 3.0),
        }
    }

    fn kind(&self, rng: &mut Rng) -> BugKind {
        let total: f64 = self.kind_w.iter().sum();
        let mut u = rng.uniform() * total;
        for (i, w) in self.kind_w.iter().enumerate() {
            u -= w;
            if u <= 0.0 {
                return [
                    BugKind::ChangedLine,
                    BugKind::SameFunction,
                    BugKind::WrongValue,
                    BugKind::Config,
                    BugKind::Dependency,
                ][i];
            }
        }
        BugKind::ChangedLine
    }
}

/// One revision of a service: its name, code and the stacks its background
/// errors and failing calls print.
struct Rev {
    name: String,
    sig_frames: Vec<Option<Vec<Frame>>>,
    call_frames: Vec<Option<Vec<Frame>>>,
}

fn rev(name: String, svc: &topology::Service, code: &Code) -> Rev {
    // The same code path prints the same library frames (and Go argument
    // words) at every revision: only app frames' lines move with edits, so a
    // background error stays one signature across deploys. Each site draws
    // from its own stream, seeded by the service and the site.
    let frames_at = |site: usize, deep: usize| {
        let mut rng = Rng(site_seed(&svc.name, site));
        let rng = &mut rng;
        let s = code.sites[site];
        let f = &code.files[s.file];
        let mut v = lang::lib_frames(svc.lang, deep, true, rng);
        v.push(lang::app_frame(f, &code.func_name(s), s.line, rng));
        v.extend(bugs::handler_frames(code, &[s.file], rng));
        v.extend(lang::lib_frames(svc.lang, 3, false, rng));
        v
    };
    Rev {
        name,
        sig_frames: svc
            .sigs
            .iter()
            .map(|s| s.stacked.then(|| frames_at(s.site, 0)))
            .collect(),
        call_frames: svc
            .calls
            .iter()
            .map(|c| (c.stacked && svc.lang != Lang::Go).then(|| frames_at(c.site, 1)))
            .collect(),
    }
}

/// FNV-1a of the service name and a site index.
fn site_seed(service: &str, site: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service.bytes().chain(site.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct Deploy {
    svc: usize,
    ts: i64,
    rev: usize,
    prev: usize,
    change: Change,
    rollout: Option<Rollout>,
}

/// Writes the adversarial history to `out` and its labels to `truth`.
pub(super) fn simulate(
    args: &SimArgs,
    out: &mut impl Write,
    truth: &mut impl Write,
) -> std::io::Result<(usize, usize)> {
    let mut rng = Rng(args.seed ^ 0xad7e_55a1_0bad_cafe);
    let start: i64 = 1_772_323_200_000; // 2026-03-01T00:00:00Z
    let end = start + (args.days * DAY as f64) as i64;
    let knobs = Knobs::draw(&mut rng);
    let Fleet {
        services,
        upstreams,
    } = topology::fleet(&mut rng, args.services);
    let callers: Vec<Vec<usize>> = (0..upstreams.len())
        .map(|u| {
            (0..services.len())
                .filter(|&s| services[s].calls.iter().any(|c| c.upstream == u))
                .collect()
        })
        .collect();
    let mut plan = Plan::default();
    let every = args.deploy_every_hours * HOUR as f64;
    for (si, svc) in services.iter().enumerate() {
        let mut code = svc.code.clone();
        let mut rv = vec![rev(rng.hex(7), svc, &code)];
        let mut t = start + DAY + (rng.uniform() * every) as i64;
        while t < end - 20 * MIN {
            let ts = t - t.rem_euclid(MIN) + rng.int(0, 59) * 1000;
            let change = rng
                .chance(knobs.culprit_p)
                .then(|| culprit_change(svc, &mut code, &upstreams, &knobs, &mut rng))
                .flatten();
            let change = change.unwrap_or_else(|| bugs::clean_change(svc, &mut code, &mut rng));
            let rollout = rng
                .chance(knobs.rolling_p)
                .then(|| Rollout::draw(&mut rng, ts));
            if rng.chance(knobs.outage_near_p) && !svc.calls.is_empty() {
                plan.outages
                    .push(outage_near(&mut rng, svc, &callers, si, ts));
            }
            if rng.chance(knobs.surge_near_p) {
                let s0 = ts - ts.rem_euclid(MIN) + rng.int(-5, 10) * MIN;
                plan.surges.push(Surge::draw(&mut rng, si, s0));
            }
            let prev = rv.len() - 1;
            rv.push(rev(rng.hex(7), svc, &code));
            plan.deploys.push(Deploy {
                svc: si,
                ts,
                rev: rv.len() - 1,
                prev,
                change,
                rollout,
            });
            t += (rng.range(0.5, 1.5) * every) as i64;
        }
        plan.revs.push(rv);
    }
    plan.background(
        &mut rng,
        &knobs,
        &callers,
        services.len(),
        (start, end),
        args.days,
    );
    plan.deploys.sort_by_key(|d| (d.ts, d.svc));
    // Truth, from what actually happens around each deploy.
    for d in &plan.deploys {
        let t = plan.truth(d, &services[d.svc]);
        writeln!(
            truth,
            "{}",
            serde_json::to_string(&t).expect("serializable")
        )?;
    }
    let records = render::render(&mut rng, (start, end), &services, &upstreams, &plan, out)?;
    Ok((records, plan.deploys.len()))
}

/// Everything planned before rendering: each service's revisions, every
/// deploy and every confounder.
#[derive(Default)]
struct Plan {
    deploys: Vec<Deploy>,
    revs: Vec<Vec<Rev>>,
    outages: Vec<Outage>,
    surges: Vec<Surge>,
}

impl Plan {
    /// Outages and surges at their own times, unrelated to any deploy.
    fn background(
        &mut self,
        rng: &mut Rng,
        knobs: &Knobs,
        callers: &[Vec<usize>],
        n_services: usize,
        (start, end): (i64, i64),
        days: f64,
    ) {
        let span = (end - start - 6 * HOUR - HOUR).max(HOUR);
        let days = days.max(0.1);
        for _ in 0..(days * knobs.outages_per_day).round() as usize {
            let u = rng.below(callers.len());
            if callers[u].is_empty() {
                continue;
            }
            let hit = callers_hit(rng, &callers[u], None);
            let t0 = start + 6 * HOUR + (rng.uniform() * span as f64) as i64;
            self.outages
                .push(Outage::draw(rng, u, hit, t0 - t0.rem_euclid(MIN)));
        }
        for _ in 0..(days * knobs.surges_per_day).round() as usize {
            let s = rng.below(n_services);
            let t0 = start + 6 * HOUR + (rng.uniform() * span as f64) as i64;
            self.surges
                .push(Surge::draw(rng, s, t0 - t0.rem_euclid(MIN)));
        }
    }

    /// The confounders around deploy `d`, in the order the truth lists them.
    fn confounders(&self, d: &Deploy, svc: &topology::Service) -> Vec<String> {
        let mut conf: Vec<String> = Vec::new();
        let (lo, hi) = (d.ts - 30 * MIN, d.ts + 60 * MIN);
        for o in &self.outages {
            if o.callers.contains(&d.svc)
                && o.start_ms < hi
                && o.end_ms > lo
                && !conf.iter().any(|c| c == o.kind())
            {
                conf.push(o.kind().to_owned());
            }
        }
        for s in &self.surges {
            if s.service == d.svc
                && s.start_ms < hi
                && s.end_ms > d.ts - 10 * MIN
                && !conf.iter().any(|c| c == s.kind())
            {
                conf.push(s.kind().to_owned());
            }
        }
        if let Some(r) = d.rollout {
            conf.push(if r.canary { "canary" } else { "rolling" }.to_owned());
        }
        if svc.late.is_some() {
            conf.push("late".to_owned());
        }
        let kinds = &d.change.kinds;
        if !kinds.contains(&"code") && d.change.culprit.is_none() {
            conf.push(kinds.first().copied().unwrap_or("docs").to_owned());
        }
        conf
    }

    /// The label of deploy `d`, from what actually happens around it.
    fn truth(&self, d: &Deploy, svc: &topology::Service) -> Truth {
        let conf = self.confounders(d, svc);
        let kinds = &d.change.kinds;
        let c = d.change.culprit.as_ref();
        Truth {
            service: svc.name.clone(),
            revision: self.revs[d.svc][d.rev].name.clone(),
            deployed_at_ms: d.ts,
            label: c.map_or("clean", |c| c.label).to_owned(),
            confounder: conf.first().cloned(),
            culprit_file: c.map(|c| c.file.clone()),
            culprit_line: c.map(|c| c.line),
            culprit_function: c.map(|c| c.function.clone()),
            linkability: c.map(|c| c.linkability.to_owned()),
            bug_kind: c.map(|c| c.kind.name().to_owned()),
            language: Some(svc.lang.name().to_owned()),
            confounders: conf,
            error: c.map(|c| c.error.lines().next().unwrap_or("").to_owned()),
            changes: kinds.iter().map(|k| (*k).to_owned()).collect(),
            error_onset_ms: c.map(|_| match &d.change.effect {
                Effect::New { onset_ms, .. } => d.ts + onset_ms,
                _ => d.ts,
            }),
            ..Truth::default()
        }
    }
}

/// A culprit change of a drawn bug kind, applied to `code`, with unrelated
/// changes riding along; `None` when no bug of the kind (nor a changed-line
/// bug) fits the code.
fn culprit_change(
    svc: &topology::Service,
    code: &mut Code,
    upstreams: &[topology::Upstream],
    knobs: &Knobs,
    rng: &mut Rng,
) -> Option<Change> {
    let kind = knobs.kind(rng);
    let mut change = match kind {
        BugKind::Config | BugKind::Dependency => {
            Some(bugs::config_culprit(svc, code, upstreams, kind, rng))
        }
        _ => {
            let spike = rng.chance(knobs.spike_share).then(|| {
                if rng.chance(0.5) {
                    (0..svc.sigs.len())
                        .max_by(|a, b| svc.sigs[*a].rate.total_cmp(&svc.sigs[*b].rate))
                        .unwrap_or(0)
                } else {
                    rng.below(svc.sigs.len())
                }
            });
            let mut trial = code.clone();
            match bugs::code_culprit(svc, &mut trial, kind, spike, rng) {
                Some(c) => {
                    *code = trial;
                    Some(c)
                }
                None => {
                    let mut trial = code.clone();
                    let c = bugs::code_culprit(svc, &mut trial, BugKind::ChangedLine, None, rng);
                    if c.is_some() {
                        *code = trial;
                    }
                    c
                }
            }
        }
    };
    if let Some(c) = &mut change {
        // Unrelated changes ride along.
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
    }
    change
}

/// An outage of one of the deploying service's upstreams, starting before,
/// at or after the deploy at `ts`.
fn outage_near(
    rng: &mut Rng,
    svc: &topology::Service,
    callers: &[Vec<usize>],
    si: usize,
    ts: i64,
) -> Outage {
    let u = svc.calls[rng.below(svc.calls.len())].upstream;
    let hit = callers_hit(rng, &callers[u], Some(si));
    let u_off = rng.uniform();
    let off = if u_off < 0.25 {
        rng.int(-40, -3)
    } else if u_off < 0.45 {
        rng.int(-1, 1)
    } else {
        rng.int(2, 20)
    };
    let mut o = Outage::draw(rng, u, hit, ts - ts.rem_euclid(MIN) + off * MIN);
    if o.ramp_ms > 0 {
        // A slow burn already under way at the deploy.
        let back = rng.range(0.0, o.ramp_ms as f64) as i64;
        o.start_ms -= back;
        o.end_ms -= back;
    }
    o
}

/// Who an outage of an upstream hits: all its callers, or the deploying
/// service and at most one other.
fn callers_hit(rng: &mut Rng, callers: &[usize], deploying: Option<usize>) -> Vec<usize> {
    if rng.chance(0.4) || callers.len() <= 1 {
        let mut v = callers.to_vec();
        if let Some(d) = deploying {
            if !v.contains(&d) {
                v.push(d);
            }
        }
        return v;
    }
    let mut v: Vec<usize> = deploying.into_iter().collect();
    let others: Vec<usize> = callers
        .iter()
        .copied()
        .filter(|c| Some(*c) != deploying)
        .collect();
    let n = if deploying.is_some() {
        rng.below(2)
    } else {
        1 + rng.below(2)
    };
    for _ in 0..n {
        let c = *rng.pick(&others);
        if !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::Profile;
    use super::*;

    fn run(seed: u64) -> (String, Vec<Truth>) {
        let args = SimArgs {
            services: 12,
            days: 2.0,
            seed,
            deploy_every_hours: 6.0,
            profile: Profile::Adversarial,
        };
        let (mut out, mut truth) = (Vec::new(), Vec::new());
        simulate(&args, &mut out, &mut truth).unwrap();
        let truth = String::from_utf8(truth)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (String::from_utf8(out).unwrap(), truth)
    }

    #[test]
    fn deterministic_per_seed_and_different_across_seeds() {
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a.0, run(2).0);
    }

    #[test]
    fn culprits_are_labeled_and_their_lines_are_in_the_diff() {
        let (text, truth) = run(3);
        let culprits: Vec<&Truth> = truth.iter().filter(|t| t.label != "clean").collect();
        assert!(!culprits.is_empty());
        let deploys: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| l.contains(r#""type":"deploy""#))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for c in &culprits {
            let d = deploys
                .iter()
                .find(|d| {
                    d["service"] == c.service.as_str() && d["revision"] == c.revision.as_str()
                })
                .expect("deploy record");
            let diff = d["diff"].as_str().unwrap();
            let file = c.culprit_file.as_deref().unwrap();
            assert!(
                diff.contains(&format!("+++ b/{file}\n")),
                "{file} not in {diff}"
            );
            assert!(c.linkability.is_some() && c.language.is_some() && c.bug_kind.is_some());
        }
    }

    #[test]
    fn line_linkable_culprits_have_a_frame_on_the_changed_line() {
        let (text, truth) = run(3);
        let line_culprits: Vec<&Truth> = truth
            .iter()
            .filter(|t| t.linkability.as_deref() == Some("line"))
            .collect();
        assert!(!line_culprits.is_empty());
        for c in line_culprits {
            let file = c.culprit_file.as_deref().unwrap();
            let base = file.rsplit('/').next().unwrap();
            let n = c.culprit_line.unwrap();
            // Each runtime's way of printing file and line.
            let forms = [
                format!("{base}:{n}"),
                format!(r#"{base}\", line {n},"#),
                format!("{base}:line {n}"),
            ];
            let found = text.lines().any(|l| {
                l.contains(&format!(r#""revision":"{}""#, c.revision))
                    && l.contains(&format!(r#""service":"{}""#, c.service))
                    && forms.iter().any(|f| l.contains(f.as_str()))
            });
            assert!(
                found,
                "no frame at {file}:{n} for {}@{}",
                c.service, c.revision
            );
        }
    }

    #[test]
    fn background_stacks_keep_their_library_frames_across_revisions() {
        // Per service and message type, the stacks' non-app lines are the
        // same at every revision (otherwise every deploy would look like a
        // new signature).
        let (text, _) = run(5);
        let mut seen: std::collections::BTreeMap<
            (String, String),
            std::collections::BTreeSet<String>,
        > = Default::default();
        for l in text
            .lines()
            .filter(|l| l.contains("Failed to acquire lock"))
        {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let Some(st) = v["stack"].as_str() else {
                continue;
            };
            let lib: String = st
                .lines()
                .filter(|x| {
                    x.contains("site-packages")
                        || x.contains("node_modules")
                        || x.contains("springframework")
                        || x.contains("AspNetCore")
                        || x.contains("/usr/local/go/")
                        || x.contains("bundle/gems")
                })
                .collect();
            let svc = v["service"].as_str().unwrap().to_owned();
            seen.entry((svc, v["revision"].as_str().unwrap().to_owned()))
                .or_default()
                .insert(lib);
        }
        let mut per_service: std::collections::BTreeMap<
            String,
            std::collections::BTreeSet<String>,
        > = Default::default();
        for ((svc, _), libs) in seen {
            per_service.entry(svc).or_default().extend(libs);
        }
        assert!(!per_service.is_empty());
        for (svc, libs) in per_service {
            // One library-frame set per signature site (a service may have two lock signatures).
            assert!(libs.len() <= 2, "{svc}: {libs:?}");
        }
    }

    #[test]
    fn history_is_in_arrival_order_with_late_records() {
        let (text, _) = run(4);
        let mut max_ts = 0i64;
        let mut late = 0usize;
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let ts = v["ts"].as_i64().unwrap();
            if ts + 60_000 < max_ts {
                late += 1;
            }
            max_ts = max_ts.max(ts);
        }
        assert!(late > 0, "some records arrive more than a minute late");
    }
}
