//! Stage: the test statistic. One place to change how a count is judged
//! against its expectation.
//!
//! - [`expected`]: μ = exposure · (baseline count + 1) / baseline exposure;
//!   the +1 keeps a short or empty baseline conservative.
//! - [`score`]: the fixed-sample p-value (reported) and the anytime-valid
//!   mixture e-value (decides, see [`crate::stats::nb_e_value`]) of observing
//!   `x` where `mu` were expected, under a negative binomial with shape `k`
//!   (`None`: Poisson). A new signature is scored as Poisson (no shape: its
//!   burstiness is unknown).

use crate::stats;

/// A candidate's evidence against "no increase".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Score {
    /// One-sided p-value of observing at least `x` (fixed sample).
    pub(crate) p: f64,
    /// Anytime-valid e-value for a rate ratio ≥ the minimum effect.
    pub(crate) e: f64,
}

/// The expected count for `exposure` given a baseline of `base_count`
/// events over `base_exposure` (same unit: requests or minutes).
pub(crate) fn expected(exposure: f64, base_count: f64, base_exposure: f64) -> f64 {
    exposure * (base_count + 1.0) / base_exposure
}

/// Scores `x` observed against `mu` expected with NB shape `k`.
pub(crate) fn score(x: f64, mu: f64, k: Option<f64>) -> Score {
    Score {
        p: stats::nb_sf(x, mu, k),
        e: stats::nb_e_value(x, mu, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plus_one_keeps_an_empty_baseline_conservative() {
        assert_eq!(expected(100.0, 0.0, 1000.0), 0.1);
        assert_eq!(expected(100.0, 9.0, 1000.0), 1.0);
    }

    #[test]
    fn more_events_than_expected_score_higher_and_burstiness_weakens_it() {
        let calm = score(30.0, 10.0, None);
        let bursty = score(30.0, 10.0, Some(2.0));
        assert!(calm.p < 1e-5 && calm.e > 1e3, "{calm:?}");
        assert!(bursty.p > calm.p && bursty.e < calm.e, "{bursty:?}");
        let null = score(10.0, 10.0, None);
        assert!(null.p > 0.3 && null.e < 2.0, "{null:?}");
    }
}
