//! The statistics of golden signals.
//!
//! **Latency.** For each bucket bound b of the histogram, the share of
//! requests slower than b is a binomial proportion: the new revision's share
//! is compared with the control's. A bucket bound is an exact threshold (no
//! assumption about how values spread inside a bucket, no normality), and
//! testing every bound covers a tail-only regression (p99 ×2, p50 the same)
//! and a new slow mode (5% of requests) alike. The most significant bound
//! is kept and its p-value multiplied by the number of bounds tested.
//!
//! **Server-error rate** is the same test on two buckets (ok, failed).
//!
//! **Over-dispersion.** Shares move from hour to hour for reasons that are
//! no deploy's (load, traffic mix): the between-hour variance of the
//! control's share, beyond what binomial noise explains, is added to the
//! variance (a random-effects model), with a floor of 10% of the share so
//! a control of few hours is never taken for a precise one.
//!
//! **Anytime validity.** The deploy is looked at every minute for
//! `golden.window_minutes`: each look's p-value is multiplied by the number of
//! looks (Bonferroni), so the chance of any false alarm over the window
//! stays below α whatever the look at which it would happen.

/// Smallest control tail share a latency bound is tested at: rarer tails
/// have too few control requests for their share to mean anything.
pub(super) const MIN_LATENCY_P0: f64 = 0.0005;
/// Largest control tail share tested: above it the bound is in the body.
const MAX_P0: f64 = 0.7;
/// Fewest new-revision requests above the bound for a finding.
const MIN_TAIL_COUNT: f64 = 5.0;
/// Fewest control requests for a control to judge by.
const MIN_CONTROL: f64 = 100.0;

/// The control's bucket counts, per hour (or one entry for the old
/// revision's concurrent counts).
#[derive(Debug, Clone, Default)]
pub(super) struct Hourly {
    pub(super) hours: Vec<Vec<f64>>,
}

impl Hourly {
    /// Counts per bucket over all hours.
    pub(super) fn total(&self) -> Vec<f64> {
        let width = self.hours.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = vec![0.0; width];
        for h in &self.hours {
            for (o, c) in out.iter_mut().zip(h) {
                *o += c;
            }
        }
        out
    }
}

/// The evidence at the most significant bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Tail {
    /// Index of the bound: requests in buckets above it are "slow".
    pub(super) threshold: usize,
    /// New-revision requests above the bound.
    pub(super) k: f64,
    /// New-revision requests.
    pub(super) n: f64,
    /// The control's share above the bound.
    pub(super) p0: f64,
    /// Control requests.
    pub(super) base_n: f64,
    /// One-sided p-value at this bound (before the multiplicity factors).
    pub(super) p: f64,
    /// Bounds tested.
    pub(super) thresholds: usize,
}

impl Tail {
    /// The new revision's share above the bound.
    pub(super) fn share(&self) -> f64 {
        self.k / self.n
    }

    /// Requests above the bound the control predicts.
    pub(super) fn expected(&self) -> f64 {
        self.p0 * self.n
    }
}

/// The most significant bound at which the new revision's tail share
/// exceeds the control's by at least `min_ratio`; `None` when no bound does.
pub(super) fn tail(new: &[f64], control: &Hourly, min_ratio: f64, min_p0: f64) -> Option<Tail> {
    let base = control.total();
    let base_n: f64 = base.iter().sum();
    let n: f64 = new.iter().sum();
    if base_n < MIN_CONTROL || n <= 0.0 || base.len() != new.len() {
        return None;
    }
    let mut best: Option<Tail> = None;
    let mut tested = 0;
    for j in 0..new.len() - 1 {
        let above_base: f64 = base[j + 1..].iter().sum();
        let p0 = (above_base + 0.5) / (base_n + 1.0);
        if !(min_p0..=MAX_P0).contains(&p0) {
            continue;
        }
        tested += 1;
        let k: f64 = new[j + 1..].iter().sum();
        if k < MIN_TAIL_COUNT || k / n < p0 * min_ratio {
            continue;
        }
        let var = p0 * (1.0 - p0) * (1.0 / n + 1.0 / base_n) + between_hours(control, j, p0);
        let p = normal_sf((k / n - p0) / var.sqrt());
        if best.is_none_or(|b| p < b.p) {
            best = Some(Tail {
                threshold: j,
                k,
                n,
                p0,
                base_n,
                p,
                thresholds: 0,
            });
        }
    }
    best.map(|b| Tail {
        thresholds: tested,
        ..b
    })
}

/// Between-hour variance of the control's share above bound `j`, beyond
/// binomial noise; at least (10% of p0)².
fn between_hours(control: &Hourly, j: usize, p0: f64) -> f64 {
    let floor = (0.1 * p0).powi(2);
    let shares: Vec<(f64, f64)> = control
        .hours
        .iter()
        .filter_map(|h| {
            let n: f64 = h.iter().sum();
            (n >= 20.0).then(|| (h[j + 1..].iter().sum::<f64>() / n, n))
        })
        .collect();
    if shares.len() < 3 {
        return floor;
    }
    let m = shares.len() as f64;
    let mean = shares.iter().map(|(f, _)| f).sum::<f64>() / m;
    let var = shares.iter().map(|(f, _)| (f - mean).powi(2)).sum::<f64>() / (m - 1.0);
    let binomial = shares.iter().map(|(_, n)| p0 * (1.0 - p0) / n).sum::<f64>() / m;
    (var - binomial).max(floor)
}

/// P(Z ≥ z) for a standard normal Z.
pub(super) fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    let upper = 0.5 * (1.0 - crate::stats::gamma_p(0.5, z * z / 2.0));
    if z >= 0.0 {
        upper
    } else {
        1.0 - upper
    }
}

/// The q-quantile of binned counts, interpolated linearly inside its bucket
/// (the first bucket starts at 0; the overflow bucket answers its lower
/// bound, an underestimate). For reporting only: no decision rests on it.
pub(super) fn quantile(bounds: &[f64], counts: &[f64], q: f64) -> Option<f64> {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let target = q * total;
    let mut below = 0.0;
    for (i, c) in counts.iter().enumerate() {
        if below + c >= target && *c > 0.0 {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let Some(&upper) = bounds.get(i) else {
                return Some(lower);
            };
            return Some(lower + (upper - lower) * (target - below) / c);
        }
        below += c;
    }
    bounds.last().copied()
}

/// p50, p95 and p99 of the new counts and of the control's: (q, new,
/// control), those the control has a positive value for.
pub(super) fn quantiles(bounds: &[f64], new: &[f64], base: &[f64]) -> Vec<(f64, f64, f64)> {
    [0.5, 0.95, 0.99]
        .into_iter()
        .filter_map(|q| {
            let b = quantile(bounds, base, q)?;
            let n = quantile(bounds, new, q)?;
            (b > 0.0).then_some((q, n, b))
        })
        .collect()
}

/// The quantile (of p50, p95, p99) that rose the most: (q, new, control).
pub(super) fn worst(quantiles: &[(f64, f64, f64)]) -> Option<(f64, f64, f64)> {
    quantiles
        .iter()
        .copied()
        .max_by(|x, y| (x.1 / x.2).total_cmp(&(y.1 / y.2)))
}

/// Where the rise began: the change point of the minutes' `(minute, slow,
/// requests)`, the split into a before and an after segment of constant
/// share that is most likely (binomial), the after share being the higher.
/// The before segment leans on the control's share `p0` (as if it had
/// [`PRIOR_REQUESTS`] more requests at that share), so a split at the first
/// minute needs no data before it. One noisy minute cannot move the onset,
/// as a first-minute-above-threshold rule lets it.
pub(super) fn onset(minutes: &[(i64, f64, f64)], p0: f64) -> Option<i64> {
    let ll = |k: f64, n: f64, p: f64| {
        let p = p.clamp(1e-9, 1.0 - 1e-9);
        k * p.ln() + (n - k) * (1.0 - p).ln()
    };
    let (total_k, total_n) = minutes
        .iter()
        .fold((0.0, 0.0), |(k, n), m| (k + m.1, n + m.2));
    let mut splits: Vec<(f64, i64)> = Vec::new();
    let (mut kb, mut nb) = (0.0, 0.0);
    for (m, k, n) in minutes {
        let (ka, na) = (total_k - kb, total_n - nb);
        let before = (kb + p0 * PRIOR_REQUESTS) / (nb + PRIOR_REQUESTS);
        if na > 0.0 && ka / na > before {
            splits.push((ll(kb, nb, before) + ll(ka, na, ka / na), *m));
        }
        kb += k;
        nb += n;
    }
    // The earliest split about as likely as the best (log-likelihood within
    // [`ONSET_SLACK`]): minutes with few requests (a rollout's first) leave
    // the likelihood flat, and the rise then began at the earliest of them.
    let best = splits
        .iter()
        .map(|(s, _)| *s)
        .fold(f64::NEG_INFINITY, f64::max);
    splits
        .iter()
        .find(|(s, _)| *s >= best - ONSET_SLACK)
        .map(|(_, m)| *m)
}

/// See [`onset`].
const ONSET_SLACK: f64 = 2.0;

/// See [`onset`].
const PRIOR_REQUESTS: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(n: usize, counts: &[f64]) -> Hourly {
        Hourly {
            hours: vec![counts.to_vec(); n],
        }
    }

    #[test]
    fn a_tail_only_regression_is_found_at_the_tail_bound() {
        // Buckets: ≤0.1, ≤0.25, ≤0.5, ≤1, >1. Baseline p99 ≈ in (0.25, 0.5].
        let base = hours(24, &[800.0, 180.0, 15.0, 4.0, 1.0]);
        // New: the body is the same, the slowest 2% moved above 0.5 s.
        let new = [800.0, 180.0, 0.0, 15.0, 5.0];
        let t = tail(&new, &base, 1.5, MIN_LATENCY_P0).expect("found");
        assert!(t.threshold >= 2, "{t:?}");
        assert!(t.p < 1e-6, "{t:?}");
        // The body's bound (0.1 s) did not move: no finding there alone.
        let same = [800.0, 180.0, 15.0, 4.0, 1.0];
        assert!(tail(&same, &base, 1.5, MIN_LATENCY_P0).is_none());
    }

    #[test]
    fn a_control_that_swings_between_hours_needs_a_larger_rise() {
        let calm = hours(24, &[900.0, 100.0]);
        let mut swinging = Hourly::default();
        for h in 0..24 {
            let slow = if h % 2 == 0 { 50.0 } else { 150.0 };
            swinging.hours.push(vec![1000.0 - slow, slow]);
        }
        let new = [850.0, 150.0];
        let a = tail(&new, &calm, 1.2, MIN_LATENCY_P0).expect("calm");
        let b = tail(&new, &swinging, 1.2, MIN_LATENCY_P0).expect("swinging");
        assert!(a.p < 1e-3, "{a:?}");
        assert!(b.p > 0.05, "{b:?}");
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let bounds = [1.0, 2.0];
        let q = quantile(&bounds, &[50.0, 50.0, 0.0], 0.5).unwrap();
        assert!((q - 1.0).abs() < 1e-9);
        let q = quantile(&bounds, &[0.0, 100.0, 0.0], 0.25).unwrap();
        assert!((q - 1.25).abs() < 1e-9);
        assert_eq!(quantile(&bounds, &[0.0, 0.0, 10.0], 0.5), Some(2.0));
        assert_eq!(quantile(&bounds, &[0.0, 0.0, 0.0], 0.5), None);
    }

    #[test]
    fn normal_tail_matches_known_values() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-9);
        assert!((normal_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(-1.959_964) - 0.975).abs() < 1e-6);
        assert!(normal_sf(10.0) < 1e-20);
    }

    #[test]
    fn onset_is_the_change_point_and_one_noisy_minute_does_not_move_it() {
        let m = [(0, 1.0, 100.0), (60_000, 2.0, 100.0), (120_000, 9.0, 100.0)];
        assert_eq!(onset(&m, 0.01), Some(120_000));
        // A noisy first minute, then the real rise at minute 6.
        let mut m: Vec<(i64, f64, f64)> = (0..12)
            .map(|i| (i * 60_000, if i >= 6 { 15.0 } else { 5.0 }, 100.0))
            .collect();
        m[0].1 = 12.0;
        assert_eq!(onset(&m, 0.05), Some(6 * 60_000));
        // A rise from the first minute.
        let m: Vec<(i64, f64, f64)> = (0..6).map(|i| (i * 60_000, 15.0, 100.0)).collect();
        assert_eq!(onset(&m, 0.05), Some(0));
    }
}
