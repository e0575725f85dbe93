//! The statistics behind the detector (pure functions).
//!
//! What decides a regression:
//! - [`nb_e_value`]: the anytime-valid evidence for "the rate rose by at
//!   least the minimum effect" under a negative binomial (Pólya process) with
//!   the baseline's shape k: a mixture of likelihood ratios over rate ratios
//!   ρ ≥ 1.5 ([`RATIO_GRID`]). Under "no increase" each ratio is a
//!   (super)martingale in event time, so by Ville's inequality the chance
//!   that it *ever* exceeds 1/α is ≤ α: the detector may look every minute
//!   without inflating false alarms (unlike re-running a p < 0.05 test).
//!   With k = `None` it is the Poisson mixture [`e_value`].
//! - [`e_bh`]: e-BH (Wang & Ramdas 2022), Benjamini–Hochberg on e-values,
//!   which controls the false-discovery rate across a deploy's signatures
//!   under any dependence between them.
//! - [`nb_shape`]: the method-of-moments shape k from the baseline's hourly
//!   counts (Var = μ + μ²/k).
//!
//! What is reported beside it, and used by the fleet guard:
//! - [`nb_sf`]: the fixed-sample one-sided p-value P(X ≥ x) of the same
//!   negative binomial (Poisson for k = `None`).
//! - [`quasi_poisson_sf`]: P(X ≥ x) with counts and mean scaled by 1/φ (the
//!   guard's conservative test of a witness's rise, φ = 2).
//! - [`bh`]: classic Benjamini–Hochberg on p-values (the non-sequential
//!   simple recipe).
//!
//! The special functions ([`ln_gamma`], [`gamma_p`], [`beta_inc`]) are
//! hand-written (Lanczos; Numerical Recipes' series and continued
//! fractions) and proven against `statrs` over the parameter range the
//! detector uses by a property test (`tests/stats_vs_statrs.rs`).

/// Regularized incomplete beta I_x(a, b) (continued fraction, Numerical
/// Recipes §6.4).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let cf = |a: f64, b: f64, x: f64| {
        let tiny = 1e-300;
        let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
        let mut c = 1.0;
        let mut d = 1.0 - qab * x / qap;
        if d.abs() < tiny {
            d = tiny;
        }
        d = 1.0 / d;
        let mut h = d;
        for m in 1..3_000 {
            let m = m as f64;
            let m2 = 2.0 * m;
            let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1.0 + aa * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + aa / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            h *= d * c;
            let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1.0 + aa * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + aa / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-14 {
                break;
            }
        }
        h
    };
    if x < (a + 1.0) / (a + b + 2.0) {
        (ln_front.exp() * cf(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - ln_front.exp() * cf(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

/// P(X ≥ x) for a negative binomial count with mean `mu` and shape `k`
/// (variance μ + μ²/k); `k = None` is Poisson.
pub fn nb_sf(x: f64, mu: f64, k: Option<f64>) -> f64 {
    match k {
        None => quasi_poisson_sf(x, mu, 1.0),
        Some(_) if x <= 0.0 => 1.0,
        Some(_) if mu <= 0.0 => 0.0,
        // P(X ≥ x) = I_p(x, k) with p = μ / (μ + k).
        Some(k) => beta_inc(x, k, mu / (mu + k)),
    }
}

/// Mixture e-value for "rate ratio ≥ 1.5" under a negative binomial (Pólya
/// process) model with shape `k` (`None`: Poisson). For a gamma-mixed Poisson
/// process the likelihood ratio of rate ρμ against μ depends only on the
/// running count, ρ^x · ((k+μ)/(k+ρμ))^(x+k), and is a martingale under the
/// null: like the Poisson e-value it may be checked every minute.
pub fn nb_e_value(x: f64, mu: f64, k: Option<f64>) -> f64 {
    let Some(k) = k else {
        return e_value(x, mu, 1.0);
    };
    if mu <= 0.0 {
        return if x > 0.0 { E_CAP } else { 1.0 };
    }
    nb_block_e_value(&[(x, mu)], Some(k))
}

/// [`nb_e_value`] over clock-hour blocks: the mixture over
/// [`RATIO_GRID`] of the *product* of each block's Pólya likelihood ratio.
/// The shape k is estimated from the baseline's clock hours
/// ([`nb_shape`]), i.e. the model is one gamma rate multiplier per hour.
/// [`nb_e_value`] on the whole window draws one multiplier for all of it,
/// under which no amount of data tells a ×3 rise from an unlucky draw (its
/// likelihood ratio stays below e^(0.9 k)); with one draw per hour the
/// evidence of a rise that lasts grows hour by hour. Within a block the
/// ratio is a martingale (as in [`nb_e_value`]); blocks are independent
/// under the model, so the running product is one too, and the mixture
/// stays anytime-valid. One block is exactly [`nb_e_value`]. Blocks without
/// expectation are skipped (the caller folds their counts into a neighbour).
pub fn nb_block_e_value(blocks: &[(f64, f64)], k: Option<f64>) -> f64 {
    let Some(k) = k else {
        let (x, mu) = blocks
            .iter()
            .fold((0.0, 0.0), |(x, m), (bx, bm)| (x + bx, m + bm));
        return e_value(x, mu, 1.0);
    };
    let logs: Vec<f64> = RATIO_GRID
        .iter()
        .map(|rho| {
            blocks
                .iter()
                .filter(|(_, mu)| *mu > 0.0)
                .map(|(x, mu)| x * rho.ln() + (x + k) * ((k + mu).ln() - (k + rho * mu).ln()))
                .sum::<f64>()
        })
        .collect();
    mean_of_exp(&logs)
}

/// The mean of e^l over `logs` (uniform mixture weights), computed in log
/// space and capped at [`E_CAP`].
fn mean_of_exp(logs: &[f64]) -> f64 {
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logs.iter().map(|l| (l - max).exp()).sum();
    let log_e = max + (sum / logs.len() as f64).ln();
    if log_e > E_CAP.ln() {
        E_CAP
    } else {
        log_e.exp()
    }
}

/// The shape of one negative binomial matching the mean and variance of a
/// sum of independent per-block ones of shape `k` (Var = Σ μ_b + Σ μ_b²/k):
/// k · (Σ μ_b)² / Σ μ_b². For the fixed-sample p-value of a block total.
pub fn nb_sum_shape(mus: impl IntoIterator<Item = f64>, k: Option<f64>) -> Option<f64> {
    let k = k?;
    let (sum, sq) = mus
        .into_iter()
        .fold((0.0, 0.0), |(s, q), m| (s + m, q + m * m));
    if sq <= 0.0 {
        return Some(k);
    }
    Some(k * sum * sum / sq)
}

/// Method-of-moments negative binomial shape from (observed, expected)
/// buckets: Var = μ + μ²/k ⇒ 1/k = Σ((x−μ)² − x) / Σ μ². `None` (Poisson)
/// when there is no excess variance or fewer than 6 buckets; clamped to
/// k ≥ 0.5 so a few wild buckets cannot make every count meaningless.
pub fn nb_shape(observed_expected: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut num, mut den, mut n) = (0.0, 0.0, 0usize);
    for (x, mu) in observed_expected {
        if mu > 0.0 {
            num += (x - mu).powi(2) - x;
            den += mu * mu;
            n += 1;
        }
    }
    if n < 6 || den <= 0.0 || num <= 0.0 {
        return None;
    }
    Some((den / num).max(0.5))
}

/// Rate ratios the e-value mixes over (uniform weights). Starting at the
/// minimum effect size keeps power where it matters and ignores tiny rises.
pub const RATIO_GRID: [f64; 7] = [1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0];

/// Largest e-value reported (keeps arithmetic finite).
const E_CAP: f64 = 1e300;

/// `ln Γ(x)` for x > 0 (Lanczos approximation, |error| < 1e-10).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection formula.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized lower incomplete gamma P(a, x) (series for x < a + 1, continued
/// fraction otherwise; Numerical Recipes §6.2).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if a <= 0.0 {
        return 1.0;
    }
    let ln_pre = -x + a * x.ln() - ln_gamma(a);
    // Near x ≈ a both expansions need O(√a) terms (a count of 10⁵ needs
    // ~2,000): a fixed cap of 1,000 cut them short (found by the property
    // test against statrs).
    let max_iter = 1_000 + (20.0 * a.sqrt()) as usize;
    if x < a + 1.0 {
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..max_iter {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum.ln() + ln_pre).exp().clamp(0.0, 1.0)
    } else {
        // Lentz's continued fraction for Q(a, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..max_iter {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (1.0 - (ln_pre.exp() * h)).clamp(0.0, 1.0)
    }
}

/// P(X ≥ x) for a count with mean `mu` and dispersion `phi` ≥ 1 (φ = 1 is
/// Poisson). Uses P(X ≥ k) = P_gamma(k, μ) with k, μ scaled by 1/φ.
pub fn quasi_poisson_sf(x: f64, mu: f64, phi: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if mu <= 0.0 {
        return 0.0;
    }
    let phi = phi.max(1.0);
    gamma_p(x / phi, mu / phi)
}

/// The mixture e-value for "rate ratio ≥ 1.5" after observing `x` events where
/// `mu` were expected, with dispersion `phi`.
pub fn e_value(x: f64, mu: f64, phi: f64) -> f64 {
    if mu <= 0.0 {
        return if x > 0.0 { E_CAP } else { 1.0 };
    }
    let phi = phi.max(1.0);
    // log-sum-exp over the grid, uniform weights.
    let logs: Vec<f64> = RATIO_GRID
        .iter()
        .map(|rho| (x * rho.ln() - (rho - 1.0) * mu) / phi)
        .collect();
    mean_of_exp(&logs)
}

/// e-BH adjusted q-values: hypothesis i is rejected at FDR level α iff
/// `q[i] ≤ α`. `total` is the number of hypotheses tested (≥ `e.len()`; the
/// untested ones count with e = 0).
pub fn e_bh(e: &[f64], total: usize) -> Vec<f64> {
    let k_total = total.max(e.len()) as f64;
    let mut order: Vec<usize> = (0..e.len()).collect();
    // Descending e; ties broken by index for determinism.
    order.sort_by(|&a, &b| e[b].total_cmp(&e[a]).then(a.cmp(&b)));
    let mut q = vec![1.0; e.len()];
    // q_(i) = min over k ≥ i of K / (k · e_(k)).
    let mut running = f64::INFINITY;
    for (rank0, &idx) in order.iter().enumerate().rev() {
        let k = (rank0 + 1) as f64;
        let candidate = if e[idx] > 0.0 {
            k_total / (k * e[idx])
        } else {
            f64::INFINITY
        };
        running = running.min(candidate);
        q[idx] = running.min(1.0);
    }
    q
}

/// Benjamini–Hochberg adjusted q-values for p-values; `total` as in [`e_bh`]
/// (untested hypotheses count with p = 1).
pub fn bh(p: &[f64], total: usize) -> Vec<f64> {
    let m = total.max(p.len()) as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut q = vec![1.0; p.len()];
    let mut running = 1.0f64;
    for (rank0, &idx) in order.iter().enumerate().rev() {
        let k = (rank0 + 1) as f64;
        running = running.min(p[idx] * m / k);
        q[idx] = running.min(1.0);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(ln_gamma(1.0).abs() < 1e-10);
        assert!(close(ln_gamma(5.0), (24.0f64).ln(), 1e-10));
        assert!(close(ln_gamma(11.0), (3_628_800.0f64).ln(), 1e-10));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-10
        ));
    }

    #[test]
    fn poisson_tail_matches_direct_sums() {
        // P(X ≥ 3 | λ = 0.5) = 1 − e^-0.5 (1 + 0.5 + 0.125)
        let direct = 1.0 - (-0.5f64).exp() * (1.0 + 0.5 + 0.125);
        assert!(close(quasi_poisson_sf(3.0, 0.5, 1.0), direct, 1e-9));
        // P(X ≥ 30 | λ = 10) = 2.5099512e-7 (direct sum).
        assert!(close(
            quasi_poisson_sf(30.0, 10.0, 1.0),
            2.509_951_2e-7,
            1e-6
        ));
        assert_eq!(quasi_poisson_sf(0.0, 3.0, 1.0), 1.0);
        // Over-dispersion makes the same count less surprising.
        assert!(quasi_poisson_sf(30.0, 10.0, 4.0) > quasi_poisson_sf(30.0, 10.0, 1.0));
    }

    #[test]
    fn e_value_grows_with_evidence_and_stays_small_under_the_null() {
        assert!(e_value(10.0, 10.0, 1.0) < 2.0);
        assert!(e_value(60.0, 20.0, 1.0) > 1e6);
        assert!(e_value(60.0, 20.0, 5.0) < e_value(60.0, 20.0, 1.0));
        assert_eq!(e_value(0.0, 0.0, 1.0), 1.0);
    }

    /// Ville's inequality in practice: simulate null Poisson streams watched at
    /// 60 looks; the fraction that ever crosses 1/α stays below α.
    #[test]
    fn sequential_e_value_controls_false_alarms_under_repeated_looks() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let trials = 2_000;
        let rate_per_minute: f64 = 2.0;
        let mut alarms = 0;
        for _ in 0..trials {
            let (mut x, mut mu) = (0.0, 0.0);
            let mut alarmed = false;
            for _ in 0..60 {
                // Poisson(rate) by inversion.
                let (mut k, mut p, l) = (0.0, uniform(), (-rate_per_minute).exp());
                while p > l {
                    k += 1.0;
                    p *= uniform();
                }
                x += k;
                mu += rate_per_minute;
                if e_value(x, mu, 1.0) >= 20.0 {
                    alarmed = true;
                }
            }
            alarms += usize::from(alarmed);
        }
        let rate = alarms as f64 / trials as f64;
        assert!(rate < 0.05, "false alarm rate {rate}");
    }

    #[test]
    fn e_bh_and_bh_adjust_for_multiplicity() {
        let q = e_bh(&[1000.0, 30.0, 1.0], 3);
        assert!(close(q[0], 3.0 / 1000.0, 1e-12));
        assert!(close(q[1], 3.0 / (2.0 * 30.0), 1e-12));
        assert_eq!(q[2], 1.0);
        // With 100 hypotheses the same e = 30 is no longer a discovery at 0.05.
        assert!(e_bh(&[30.0], 100)[0] > 0.05);
        let q = bh(&[0.01, 0.04, 0.5], 3);
        assert!(close(q[0], 0.03, 1e-12));
        assert!(close(q[1], 0.06, 1e-12));
        assert!(close(q[2], 0.5, 1e-12));
    }

    #[test]
    fn negative_binomial_tail_and_shape() {
        // NB(k=1) is geometric: P(X ≥ x) = (μ/(1+μ))^x.
        let mu: f64 = 3.0;
        assert!(close(
            nb_sf(4.0, mu, Some(1.0)),
            (mu / (1.0 + mu)).powi(4),
            1e-9
        ));
        // Large k approaches Poisson.
        assert!(close(nb_sf(30.0, 10.0, Some(1e7)), 2.509_951_2e-7, 1e-3));
        assert_eq!(nb_sf(0.0, 3.0, Some(2.0)), 1.0);
        // Shape from gamma-mixed buckets: Var = μ + μ²/k with μ = 100, k = 2.
        let mut rng = 7u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ((rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let buckets: Vec<(f64, f64)> = (0..400)
            .map(|_| {
                let g = (-next().ln() - next().ln()) / 2.0; // Gamma(2, 1/2)
                (100.0 * g, 100.0)
            })
            .collect();
        let k = nb_shape(buckets).unwrap();
        assert!((1.3..3.0).contains(&k), "k = {k}");
        assert_eq!(nb_shape([(10.0, 10.0); 8]), None);
    }

    #[test]
    fn nb_e_value_is_bounded_by_the_regime_uncertainty() {
        // With k = 2, a 4x rise is weak evidence however many events: one
        // gamma regime can do that by chance; a 10x rise is strong.
        assert!(nb_e_value(4_000.0, 1_000.0, Some(2.0)) < 100.0);
        assert!(nb_e_value(10_000.0, 1_000.0, Some(2.0)) > 1e4);
        assert!(nb_e_value(4_000.0, 1_000.0, None) > 1e100);
    }

    /// Anytime validity under a gamma-mixed (Pólya) null: random regime per
    /// stream, 60 looks; the alarm rate stays below α.
    #[test]
    fn nb_e_value_controls_false_alarms_under_a_gamma_mixed_null() {
        let mut rng = 0x9e37_79b9_u64;
        let mut uniform = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ((rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (trials, k, rate) = (2_000, 2.0, 3.0);
        let mut alarms = 0;
        for _ in 0..trials {
            let g = (-uniform().ln() - uniform().ln()) / 2.0;
            let (mut x, mut mu, mut alarmed) = (0.0, 0.0, false);
            for _ in 0..60 {
                let lambda: f64 = rate * g;
                let (mut n, mut p, l) = (0.0, uniform(), (-lambda).exp());
                while p > l {
                    n += 1.0;
                    p *= uniform();
                }
                x += n;
                mu += rate;
                alarmed |= nb_e_value(x, mu, Some(k)) >= 20.0;
            }
            alarms += usize::from(alarmed);
        }
        let r = alarms as f64 / trials as f64;
        assert!(r < 0.05, "false alarm rate {r}");
    }

    /// The same with one regime per clock hour (as the shape is estimated)
    /// and the per-hour product of [`nb_block_e_value`]: 3 hours of 60
    /// looks each, alarms stay below α; and the same streams with the
    /// rate ×3 from the start are found.
    #[test]
    fn nb_block_e_value_controls_false_alarms_with_one_regime_per_hour() {
        let mut rng = 0x2545_f491_u64;
        let mut uniform = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ((rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (trials, k, rate) = (2_000, 2.0, 0.5);
        let mut alarms = [0usize; 2];
        for _ in 0..trials {
            for (lift, alarm) in [1.0, 3.0].iter().zip(alarms.iter_mut()) {
                let mut blocks: Vec<(f64, f64)> = Vec::new();
                let mut alarmed = false;
                for _ in 0..3 {
                    let g = (-uniform().ln() - uniform().ln()) / 2.0;
                    blocks.push((0.0, 0.0));
                    for _ in 0..60 {
                        let lambda: f64 = lift * rate * g;
                        let (mut n, mut p, l) = (0.0, uniform(), (-lambda).exp());
                        while p > l {
                            n += 1.0;
                            p *= uniform();
                        }
                        let b = blocks.last_mut().expect("pushed");
                        b.0 += n;
                        b.1 += rate;
                        alarmed |= nb_block_e_value(&blocks, Some(k)) >= 20.0;
                    }
                }
                *alarm += usize::from(alarmed);
            }
        }
        let null = alarms[0] as f64 / trials as f64;
        let lifted = alarms[1] as f64 / trials as f64;
        assert!(null < 0.05, "false alarm rate {null}");
        assert!(lifted > 0.5, "power {lifted}");
    }
}
