//! The truth line of one golden deploy: its label, the signals its culprit
//! truly degraded (from what the render observed), and the confounders
//! around it.

use super::culprit::Kind;
use super::events::Events;
use super::plan::Deploy;
use super::render::{Obs, World};
use crate::simulate::Truth;

const MIN: i64 = 60_000;
/// Minutes a side effect must last to count as a degraded signal.
const SIDE_EFFECT_MIN: usize = 15;

/// The signals a culprit degraded: its own, plus 5xx when its leak ended in
/// OOM kills, plus latency and 5xx when its CPU pushed queueing up for at
/// least [`SIDE_EFFECT_MIN`] minutes.
pub(super) fn signals(kind: Kind, o: &Obs) -> Vec<String> {
    let mut v = vec![kind.signal().to_owned()];
    let mut add = |s: &str| {
        if !v.iter().any(|x| x == s) {
            v.push(s.to_owned());
        }
    };
    if kind == Kind::MemoryLeak && o.ooms > 0 {
        add("error_rate");
    }
    if kind == Kind::Cpu {
        if o.lat_minutes >= SIDE_EFFECT_MIN {
            add("latency");
        }
        if o.err_minutes >= SIDE_EFFECT_MIN {
            add("error_rate");
        }
    }
    v
}

/// The truth of deploy `d`.
pub(super) fn truth(w: &World<'_>, d: &Deploy, o: &Obs, events: &Events) -> Truth {
    let svc = &w.services[d.svc];
    let mut conf: Vec<String> = events
        .near(d.svc, d.ts - 30 * MIN, d.ts + 60 * MIN)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(r) = d.rollout {
        conf.push(if r.canary { "canary" } else { "rolling" }.to_owned());
    }
    if svc.late.is_some() {
        conf.push("late".to_owned());
    }
    let e = d.effect.as_ref();
    let c = e.and(d.change.culprit.as_ref());
    Truth {
        service: svc.name.clone(),
        revision: w.revs[d.svc][d.rev].clone(),
        deployed_at_ms: d.ts,
        label: e.map_or("clean", |e| e.kind.label()).to_owned(),
        confounder: conf.first().cloned(),
        culprit_file: c.map(|c| c.file.clone()),
        culprit_line: c.map(|c| c.line),
        culprit_function: c.map(|c| c.function.clone()),
        // No error is logged, so no stack can link it.
        linkability: e.map(|_| "none".to_owned()),
        bug_kind: e.map(|e| e.kind.name().to_owned()),
        language: Some(svc.lang.name().to_owned()),
        confounders: conf,
        error: None,
        changes: d.change.kinds.iter().map(|k| (*k).to_owned()).collect(),
        signals: e.map(|e| signals(e.kind, o)).unwrap_or_default(),
        route: e
            .and_then(|e| e.route.as_ref())
            .map(|(r, _)| w.models[d.svc].routes[*r].name.clone()),
        magnitude: e.map(|e| (e.magnitude * 1000.0).round() / 1000.0),
        error_onset_ms: None,
    }
}
