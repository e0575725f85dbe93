//! Per-instance gauges: `process.memory.usage` (bytes) and
//! `process.cpu.utilization` (0..1), scraped at each instance's offset
//! within the minute.

use super::instances::Pool;
use super::render::{Serving, World};
use crate::simulate::rng::Rng;

/// The gauge records of service `si`'s running instances at `t`, with
/// their timestamps; `noisy`: (event, instance) pairs running hot;
/// `loads`: the serving revisions' per-instance load.
pub(super) fn minute(
    rng: &mut Rng,
    w: &World<'_>,
    si: usize,
    t: i64,
    pool: &Pool,
    noisy: &[(usize, String)],
    loads: &[Serving],
) -> Vec<(String, i64)> {
    let (m, svc) = (&w.models[si], &w.services[si]);
    let mut v = Vec::with_capacity(pool.insts.len() * 2);
    for i in pool.insts.iter().filter(|i| i.up(t)) {
        let (per_inst, cpu_f) = loads
            .iter()
            .find(|s| s.rev == i.rev)
            .map_or((0.0, 1.0), |s| (s.per_inst, s.cpu));
        let (mut cpu_add, mut mem_f) = (0.0, 1.0);
        for (ni, name) in noisy {
            if *name == i.name {
                let e = &w.events.noisy[*ni];
                cpu_add += e.cpu;
                mem_f *= e.memory;
            }
        }
        let mem = i.memory(t, &m.memory) * mem_f * (1.0 + 0.004 * rng.normal());
        let cpu = m.cpu_idle
            + per_inst * m.cpu_per_req * cpu_f
            + 0.015 * rng.normal()
            + if i.gc { 0.04 } else { 0.0 }
            // Cold start (JIT, cache fills) costs CPU too.
            + 0.25 * (m.cold_start(i.age_min(t)) - 1.0)
            + cpu_add;
        let ts = t + i.offset_ms;
        let rev = &w.revs[si][i.rev];
        let gauge = |metric: &str, unit: &str, value: String| {
            super::records::gauge(ts, &svc.name, rev, &i.name, metric, unit, &value)
        };
        v.push((
            gauge("process.memory.usage", "By", format!("{:.0}", mem.max(0.0))),
            ts,
        ));
        v.push((
            gauge(
                "process.cpu.utilization",
                "1",
                format!("{:.4}", cpu.clamp(0.0, 1.0)),
            ),
            ts,
        ));
    }
    v
}
