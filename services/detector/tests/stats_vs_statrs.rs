//! The hand-written special functions of `selfheal_detector::stats` against
//! `statrs`, over the parameter range the detector uses: counts up to 10⁵
//! events, expectations from 10⁻⁴ to 10⁵, negative binomial shapes from 0.5
//! (the clamp of `nb_shape`) to 10⁴, quasi-Poisson dispersion 1–100.

use proptest::prelude::*;
use selfheal_detector::stats;
use statrs::distribution::{DiscreteCDF, NegativeBinomial, Poisson};

/// Relative agreement, or both below `floor` (deep tails where one side
/// underflows first are equally "impossible" for every decision made).
fn agree(ours: f64, theirs: f64, rel: f64, floor: f64) -> bool {
    if ours.abs() < floor && theirs.abs() < floor {
        return true;
    }
    (ours - theirs).abs() <= rel * theirs.abs().max(ours.abs())
}

/// A log-uniform value in [lo, hi].
fn log_uniform(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    (lo.ln()..hi.ln()).prop_map(f64::exp)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn ln_gamma_matches(x in log_uniform(1e-3, 1e6)) {
        let ours = stats::ln_gamma(x);
        let theirs = statrs::function::gamma::ln_gamma(x);
        prop_assert!((ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0), "x={x}: {ours} vs {theirs}");
    }

    #[test]
    fn regularized_lower_gamma_matches(a in log_uniform(1e-2, 1e5), x in log_uniform(1e-4, 1e5)) {
        let ours = stats::gamma_p(a, x);
        let theirs = statrs::function::gamma::gamma_lr(a, x);
        prop_assert!(agree(ours, theirs, 1e-7, 1e-280), "P({a}, {x}): {ours} vs {theirs}");
        // The upper tail is what the tests use when P is close to 1.
        prop_assert!(agree(1.0 - ours, 1.0 - theirs, 1e-5, 1e-12), "Q({a}, {x}): {} vs {}", 1.0 - ours, 1.0 - theirs);
    }

    #[test]
    fn regularized_incomplete_beta_matches(a in log_uniform(1.0, 1e5), b in log_uniform(0.5, 1e4), x in 1e-6f64..0.999_999) {
        let ours = stats::beta_inc(a, b, x);
        let theirs = statrs::function::beta::beta_reg(a, b, x);
        prop_assert!(agree(ours, theirs, 1e-7, 1e-280), "I_{x}({a}, {b}): {ours} vs {theirs}");
    }

    /// P(X ≥ x) for Poisson(μ): the p-value of a new signature.
    #[test]
    fn poisson_tail_matches(x in 1u64..100_000, mu in log_uniform(1e-4, 1e5)) {
        let ours = stats::nb_sf(x as f64, mu, None);
        let theirs = Poisson::new(mu).unwrap().sf(x - 1);
        prop_assert!(agree(ours, theirs, 1e-6, 1e-280), "x={x} μ={mu}: {ours} vs {theirs}");
    }

    /// P(X ≥ x) for NB(mean μ, shape k): the p-value of a spike.
    #[test]
    fn negative_binomial_tail_matches(x in 1u64..100_000, mu in log_uniform(1e-3, 1e5), k in log_uniform(0.5, 1e4)) {
        let ours = stats::nb_sf(x as f64, mu, Some(k));
        // statrs counts failures before r successes of probability p:
        // mean r(1−p)/p, so r = k and p = k/(k+μ).
        let theirs = NegativeBinomial::new(k, k / (k + mu)).unwrap().sf(x - 1);
        prop_assert!(agree(ours, theirs, 1e-6, 1e-280), "x={x} μ={mu} k={k}: {ours} vs {theirs}");
    }

    /// The e-value mixture against the closed form from statrs' pmf ratio:
    /// for each ρ the NB likelihood ratio of mean ρμ vs μ at the same shape.
    #[test]
    fn nb_e_value_is_the_mixture_of_likelihood_ratios(x in 0u64..2_000, mu in log_uniform(0.1, 1e3), k in log_uniform(0.5, 1e3)) {
        use statrs::distribution::Discrete;
        let null = NegativeBinomial::new(k, k / (k + mu)).unwrap();
        let logs: Vec<f64> = stats::RATIO_GRID.iter().map(|rho| {
            let alt = NegativeBinomial::new(k, k / (k + rho * mu)).unwrap();
            alt.ln_pmf(x) - null.ln_pmf(x)
        }).collect();
        let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let theirs = max + (logs.iter().map(|l| (l - max).exp()).sum::<f64>() / logs.len() as f64).ln();
        let ours = stats::nb_e_value(x as f64, mu, Some(k));
        if theirs > 1e300f64.ln() {
            prop_assert_eq!(ours, 1e300, "capped");
        } else {
            prop_assert!((ours.ln() - theirs).abs() <= 1e-8 * theirs.abs().max(1.0), "x={} μ={} k={}: ln {} vs {}", x, mu, k, ours.ln(), theirs);
        }
    }
}
