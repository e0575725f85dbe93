//! Saturation: a memory leak is a per-instance rise of memory's *floor*
//! beyond what instances of the same age normally do.
//!
//! A new process grows for a while (caches, pools, JIT) and every new
//! revision starts with new processes, so growth after a deploy proves
//! nothing by itself. The control is therefore the previous revision's
//! instances *at the same age*: each instance keeps the floor (the minimum,
//! what survives garbage collection) of each [`BLOCK`] of its first two
//! hours. An instance of the new revision leaks when its floor grew from
//! its second block to its latest one by more than the median of the
//! previous revision's instances over the same ages, by at least
//! `detector.golden.min_leak_bytes_per_hour`, and more than every one of
//! them. The revision leaks when at least two thirds of its judged
//! instances do (one noisy instance is never enough).

use std::collections::BTreeMap;

use crate::series::MINUTE_MS;

/// Block length: the floor is the minimum of each block.
pub(super) const BLOCK: i64 = 5 * MINUTE_MS;
/// Blocks of an instance's life that are kept (its first two hours).
const YOUNG_BLOCKS: i64 = 24;
/// The fewest complete blocks an instance needs to be judged.
const MIN_BLOCKS: i64 = 5;

/// One instance's first blocks: when it started and each block's floor.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Young {
    start_ms: i64,
    floors: BTreeMap<i64, f64>,
}

impl Young {
    /// A new instance, first seen at `ts_ms`.
    pub(super) fn new(ts_ms: i64) -> Self {
        Self {
            start_ms: ts_ms,
            floors: BTreeMap::new(),
        }
    }

    /// Adds a memory sample.
    pub(super) fn add(&mut self, ts_ms: i64, bytes: f64) {
        if ts_ms < self.start_ms {
            // An earlier sample arrived late: the instance is older than
            // thought, and its blocks are re-cut from the new start.
            *self = Self::new(ts_ms);
        }
        let block = (ts_ms - self.start_ms) / BLOCK;
        if block < YOUNG_BLOCKS {
            let f = self.floors.entry(block).or_insert(bytes);
            *f = f.min(bytes);
        }
    }

    /// Floor growth from block 1 to block `to`, if both are known.
    fn growth(&self, to: i64) -> Option<f64> {
        Some(self.floors.get(&to)? - self.floors.get(&1)?)
    }

    /// The latest block complete by `at`.
    fn complete(&self, at: i64) -> i64 {
        ((at - self.start_ms) / BLOCK - 1).min(YOUNG_BLOCKS - 1)
    }
}

/// The verdict on a revision's instances: `(leaking instances, their median
/// excess growth per hour, the bar they cleared, instances judged, control
/// instances)`.
pub(super) type Leak = (Vec<String>, f64, f64, usize, usize);

/// Whether `new`'s instances leak against `control`'s at the same ages.
/// Control instances first seen before `started_after` are left out: they
/// were already running when selfheal began to watch (their "first blocks"
/// are not their youth).
pub(super) fn leaking(
    new: &BTreeMap<String, Young>,
    control: &BTreeMap<String, Young>,
    started_after: i64,
    at: i64,
    min_bytes_per_hour: f64,
) -> Option<Leak> {
    let judged: Vec<(&String, i64, f64)> = new
        .iter()
        .filter_map(|(name, y)| {
            let to = y.complete(at);
            (to >= MIN_BLOCKS).then_some(())?;
            Some((name, to, y.growth(to)?))
        })
        .collect();
    // One age for the control: the youngest judged instance's.
    let to = judged.iter().map(|(_, to, _)| *to).min()?;
    let mut base: Vec<f64> = control
        .values()
        .filter(|y| y.start_ms > started_after)
        .filter_map(|y| y.growth(to))
        .collect();
    if base.len() < 2 {
        return None;
    }
    base.sort_by(f64::total_cmp);
    let median = base[base.len() / 2];
    let hours = ((to - 1) * BLOCK) as f64 / 3_600_000.0;
    let per_hour = |g: f64| (g - median) / hours;
    let bar = base
        .iter()
        .map(|g| per_hour(*g))
        .fold(min_bytes_per_hour, f64::max);
    let mut leaks: Vec<(String, f64)> = judged
        .iter()
        .filter_map(|(name, t, _)| {
            let g = new[*name].growth((*t).min(to).max(MIN_BLOCKS))?;
            let s = per_hour(g);
            (s > bar).then(|| ((*name).clone(), s))
        })
        .collect();
    if 3 * leaks.len() < 2 * judged.len() {
        return None;
    }
    leaks.sort_by(|a, b| a.1.total_cmp(&b.1));
    let excess = leaks[leaks.len() / 2].1;
    let names = leaks.into_iter().map(|(n, _)| n).collect();
    Some((names, excess, bar, judged.len(), base.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1_048_576.0;

    /// An instance started at minute `start`: warms up by 300 MB with a
    /// 20-minute time constant, a 100 MB sawtooth every 7 minutes, plus
    /// `leak` MB/h.
    fn instance(start: i64, minutes: i64, leak: f64) -> Young {
        let mut y = Young::new(start * MINUTE_MS);
        for m in 0..minutes {
            let warm = 300.0 * (1.0 - (-(m as f64) / 20.0).exp());
            let saw = 100.0 * ((m % 7) as f64 / 7.0);
            y.add(
                (start + m) * MINUTE_MS,
                (500.0 + warm + saw + leak * m as f64 / 60.0) * MB,
            );
        }
        y
    }

    fn pool(start: i64, minutes: i64, leaks: &[f64]) -> BTreeMap<String, Young> {
        leaks
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("i{i}"), instance(start, minutes, *l)))
            .collect()
    }

    #[test]
    fn warm_up_is_not_a_leak_and_a_leak_beyond_it_is() {
        let control = pool(0, 120, &[0.0, 0.0, 0.0]);
        let at = (1000 + 30) * MINUTE_MS;
        let clean = pool(1000, 30, &[0.0, 0.0, 0.0]);
        assert!(leaking(&clean, &control, -1, at, 20.0 * MB).is_none());
        // Control instances already running when watching began are no
        // control of youth.
        let leaky = pool(1000, 30, &[100.0, 100.0, 100.0]);
        assert!(leaking(&leaky, &control, 0, at, 20.0 * MB).is_none());
        let leaky = pool(1000, 30, &[100.0, 100.0, 100.0]);
        let (who, excess, _, judged, base) = leaking(&leaky, &control, -1, at, 20.0 * MB).unwrap();
        assert_eq!((who.len(), judged, base), (3, 3, 3));
        assert!((excess / MB - 100.0).abs() < 40.0, "{}", excess / MB);
    }

    #[test]
    fn one_noisy_instance_is_not_a_leak() {
        let control = pool(0, 120, &[0.0, 0.0, 0.0]);
        let at = 1030 * MINUTE_MS;
        let one = pool(1000, 30, &[300.0, 0.0, 0.0]);
        assert!(leaking(&one, &control, -1, at, 20.0 * MB).is_none());
    }

    #[test]
    fn too_young_or_without_a_control_nothing_is_judged() {
        let control = pool(0, 120, &[0.0, 0.0]);
        let leaky = pool(1000, 20, &[200.0, 200.0]);
        assert!(leaking(&leaky, &control, -1, 1020 * MINUTE_MS, 20.0 * MB).is_none());
        let leaky = pool(1000, 40, &[200.0, 200.0]);
        assert!(leaking(&leaky, &BTreeMap::new(), -1, 1040 * MINUTE_MS, 20.0 * MB).is_none());
    }
}
