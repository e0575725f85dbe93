//! A service's instances: which revision each runs, and its memory (warm-up,
//! GC sawtooth, a culprit's leak, OOM kills at the limit). Deploys, rollouts
//! and scale-outs start new instances under new names; restarts keep the
//! name and reset the memory.

use super::model::Memory;
use crate::simulate::rng::Rng;

const MIN: i64 = 60_000;

/// One instance.
#[derive(Debug, Clone)]
pub(super) struct Inst {
    pub(super) name: String,
    /// Index into the service's revisions.
    pub(super) rev: usize,
    /// Seconds past the minute its gauges are scraped at, in ms.
    pub(super) offset_ms: i64,
    started: i64,
    heap: f64,
    leaked: f64,
    /// Restarting: no gauges, no traffic until then.
    down_until: i64,
    /// A GC ran this minute (a CPU bump).
    pub(super) gc: bool,
}

impl Inst {
    /// Whether it serves and reports at `t`.
    pub(super) fn up(&self, t: i64) -> bool {
        t >= self.down_until
    }

    fn restart(&mut self, t: i64, rng: &mut Rng) {
        self.started = t;
        self.heap = 0.0;
        self.leaked = 0.0;
        self.down_until = t + rng.int(1, 2) * MIN;
    }

    /// Minutes since it (re)started.
    pub(super) fn age_min(&self, t: i64) -> f64 {
        (t - self.started) as f64 / MIN as f64
    }

    /// Resident memory in bytes at `t`.
    pub(super) fn memory(&self, t: i64, m: &Memory) -> f64 {
        let age = self.age_min(t);
        m.base * (1.0 - 0.4 * (-age / m.warm_min).exp()) + self.heap + self.leaked
    }
}

/// The instances of one service.
#[derive(Debug, Clone, Default)]
pub(super) struct Pool {
    pub(super) insts: Vec<Inst>,
}

impl Pool {
    /// Keeps exactly `count` instances per wanted `(revision, count)`: the
    /// others stop, missing ones start (named after the service and
    /// revision, like pods), extra ones stop youngest first.
    pub(super) fn reconcile(
        &mut self,
        want: &[(usize, usize)],
        t: i64,
        service: &str,
        revs: &[String],
        rng: &mut Rng,
    ) {
        self.insts
            .retain(|i| want.iter().any(|(r, n)| *r == i.rev && *n > 0));
        for &(rev, n) in want {
            let have = self.insts.iter().filter(|i| i.rev == rev).count();
            for _ in have..n {
                let name = format!("{service}-{}-{}", &revs[rev][..4], rng.hex(5));
                self.insts.push(Inst {
                    name,
                    rev,
                    offset_ms: rng.int(0, 59) * 1000,
                    started: t,
                    heap: 0.0,
                    leaked: 0.0,
                    down_until: t,
                    gc: false,
                });
            }
            for _ in n..have {
                if let Some(i) = self.insts.iter().rposition(|i| i.rev == rev) {
                    self.insts.remove(i);
                }
            }
        }
    }

    /// Restarts one instance: of revision `rev` when given and running.
    pub(super) fn restart_one(&mut self, rev: Option<usize>, t: i64, rng: &mut Rng) {
        let cands: Vec<usize> = (0..self.insts.len())
            .filter(|&i| rev.is_none_or(|r| self.insts[i].rev == r))
            .collect();
        if !cands.is_empty() {
            let i = *rng.pick(&cands);
            self.insts[i].restart(t, rng);
        }
    }

    /// One minute of memory; `leak(rev)`: bytes per minute leaked. Returns
    /// the revisions of instances OOM-killed this minute.
    pub(super) fn step(
        &mut self,
        t: i64,
        m: &Memory,
        leak: impl Fn(usize) -> f64,
        rng: &mut Rng,
    ) -> Vec<usize> {
        let mut killed = Vec::new();
        for i in &mut self.insts {
            i.gc = false;
            if !i.up(t) {
                continue;
            }
            i.heap += m.saw_rise * rng.range(0.6, 1.4);
            if i.heap > m.saw_amp {
                i.heap = m.saw_amp * rng.range(0.0, 0.15);
                i.gc = true;
            }
            i.leaked += leak(i.rev);
            if i.memory(t, m) > m.limit {
                killed.push(i.rev);
                i.restart(t, rng);
            }
        }
        killed
    }
}
