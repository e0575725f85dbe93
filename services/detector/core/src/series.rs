//! Compact event-time count series: minute buckets for the recent past (the
//! post-deploy windows being evaluated), hour buckets for the baseline days.
//!
//! Memory per series is bounded by (recent minutes + baseline hours) entries
//! whatever the event rate: about 60 + 168 entries of 16 bytes for a signature
//! that fires every minute of a 7-day baseline.

use std::collections::VecDeque;

/// Milliseconds per minute bucket.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds per hour bucket.
pub const HOUR_MS: i64 = 3_600_000;

/// A sparse, time-ordered series of (bucket start, value) in two resolutions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Series {
    minutes: VecDeque<(i64, f64)>,
    hours: VecDeque<(i64, f64)>,
}

impl Series {
    /// Adds `value` at event time `t_ms`. Times older than the minute horizon
    /// (already folded into hours) go to their hour bucket.
    pub fn add(&mut self, t_ms: i64, value: f64) {
        let minute = t_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let folded_until = self
            .hours
            .back()
            .map(|(h, _)| h + HOUR_MS)
            .unwrap_or(i64::MIN);
        if minute < folded_until {
            let hour = t_ms.div_euclid(HOUR_MS) * HOUR_MS;
            add_sorted(&mut self.hours, hour, value);
        } else {
            add_sorted(&mut self.minutes, minute, value);
        }
    }

    /// Adds `value` spread evenly over `[start_ms, start_ms + len_ms)` by minute.
    pub fn add_spread(&mut self, start_ms: i64, len_ms: i64, value: f64) {
        if len_ms <= MINUTE_MS {
            self.add(start_ms, value);
            return;
        }
        let end = start_ms + len_ms;
        let mut t = start_ms;
        while t < end {
            let next = ((t.div_euclid(MINUTE_MS)) + 1) * MINUTE_MS;
            let piece = next.min(end) - t;
            self.add(t, value * piece as f64 / len_ms as f64);
            t = next;
        }
    }

    /// Sum over `[from_ms, to_ms)`: exact on minute buckets, whole hours for
    /// hour buckets whose start lies in the range.
    pub fn sum(&self, from_ms: i64, to_ms: i64) -> f64 {
        range_sum(&self.hours, from_ms, to_ms) + range_sum(&self.minutes, from_ms, to_ms)
    }

    /// Hour-resolution view of `[from_ms, to_ms)`: (hour start, value), with
    /// minute buckets aggregated into their hours.
    pub fn hourly(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, f64)> {
        let mut out: Vec<(i64, f64)> = self
            .hours
            .iter()
            .filter(|(h, _)| *h >= from_ms && *h < to_ms)
            .copied()
            .collect();
        for (m, v) in self
            .minutes
            .iter()
            .filter(|(m, _)| *m >= from_ms && *m < to_ms)
        {
            let h = m.div_euclid(HOUR_MS) * HOUR_MS;
            match out.last_mut() {
                Some((last, acc)) if *last == h => *acc += v,
                _ => out.push((h, *v)),
            }
        }
        out
    }

    /// The start of the earliest bucket held, if any.
    pub fn first_ms(&self) -> Option<i64> {
        match (self.hours.front(), self.minutes.front()) {
            (Some((h, _)), Some((m, _))) => Some((*h).min(*m)),
            (Some((h, _)), None) => Some(*h),
            (None, Some((m, _))) => Some(*m),
            (None, None) => None,
        }
    }

    /// The minute buckets in `[from_ms, to_ms)`, in time order (minutes
    /// already folded into hours are not included).
    pub fn minutes(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        let start = self.minutes.partition_point(|(b, _)| *b < from_ms);
        self.minutes
            .range(start..)
            .take_while(move |(b, _)| *b < to_ms)
            .copied()
    }

    /// Folds minute buckets of hours that end at or before `until_ms` into hour
    /// buckets, and drops everything before `evict_before_ms`.
    pub fn compact(&mut self, until_ms: i64, evict_before_ms: i64) {
        while let Some(&(m, v)) = self.minutes.front() {
            let hour = m.div_euclid(HOUR_MS) * HOUR_MS;
            if hour + HOUR_MS > until_ms {
                break;
            }
            self.minutes.pop_front();
            add_sorted(&mut self.hours, hour, v);
        }
        while self
            .hours
            .front()
            .is_some_and(|(h, _)| *h < evict_before_ms)
        {
            self.hours.pop_front();
        }
        while self
            .minutes
            .front()
            .is_some_and(|(m, _)| *m < evict_before_ms)
        {
            self.minutes.pop_front();
        }
    }

    /// Whether the series holds nothing.
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty() && self.hours.is_empty()
    }

    /// Number of buckets held (for memory accounting).
    pub fn buckets(&self) -> usize {
        self.minutes.len() + self.hours.len()
    }
}

fn add_sorted(q: &mut VecDeque<(i64, f64)>, bucket: i64, value: f64) {
    match q.back_mut() {
        Some((b, v)) if *b == bucket => *v += value,
        Some((b, _)) if *b < bucket => q.push_back((bucket, value)),
        None => q.push_back((bucket, value)),
        Some(_) => match q.binary_search_by(|(b, _)| b.cmp(&bucket)) {
            Ok(i) => q[i].1 += value,
            Err(i) => q.insert(i, (bucket, value)),
        },
    }
}

fn range_sum(q: &VecDeque<(i64, f64)>, from_ms: i64, to_ms: i64) -> f64 {
    if q.is_empty() || from_ms >= to_ms {
        return 0.0;
    }
    let start = q.partition_point(|(b, _)| *b < from_ms);
    q.range(start..)
        .take_while(|(b, _)| *b < to_ms)
        .map(|(_, v)| v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_exact_on_minutes_and_survive_compaction_by_hour() {
        let mut s = Series::default();
        for minute in 0..180 {
            s.add(minute * MINUTE_MS + 5, 1.0);
        }
        assert_eq!(s.sum(0, 180 * MINUTE_MS), 180.0);
        assert_eq!(s.sum(10 * MINUTE_MS, 20 * MINUTE_MS), 10.0);
        s.compact(2 * HOUR_MS, i64::MIN);
        assert_eq!(
            s.buckets(),
            2 + 60,
            "two hour buckets and the last hour's minutes"
        );
        assert_eq!(s.sum(0, 180 * MINUTE_MS), 180.0);
        assert_eq!(s.sum(HOUR_MS, 3 * HOUR_MS), 120.0);
        // A late event for a folded hour lands in that hour.
        s.add(30 * MINUTE_MS, 2.0);
        assert_eq!(s.sum(0, HOUR_MS), 62.0);
        s.compact(2 * HOUR_MS, HOUR_MS);
        assert_eq!(s.sum(0, HOUR_MS), 0.0, "evicted");
    }

    #[test]
    fn out_of_order_adds_and_spreads() {
        let mut s = Series::default();
        s.add(5 * MINUTE_MS, 1.0);
        s.add(MINUTE_MS, 1.0);
        s.add(3 * MINUTE_MS, 1.0);
        assert_eq!(s.sum(0, 4 * MINUTE_MS), 2.0);
        let mut t = Series::default();
        t.add_spread(30_000, 120_000, 120.0);
        assert!((t.sum(0, MINUTE_MS) - 30.0).abs() < 1e-9);
        assert!((t.sum(MINUTE_MS, 2 * MINUTE_MS) - 60.0).abs() < 1e-9);
        assert!((t.sum(0, 3 * MINUTE_MS) - 120.0).abs() < 1e-9);
        assert_eq!(t.hourly(0, HOUR_MS), vec![(0, 120.0)]);
    }
}
