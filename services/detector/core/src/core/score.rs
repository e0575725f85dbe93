//! Stage: the test statistic. One place to change how a count is judged
//! against its expectation.
//!
//! - [`expected`]: μ = exposure · (baseline count + 1) / baseline exposure;
//!   the +1 keeps a short or empty baseline conservative.
//! - [`score`]: the fixed-sample p-value (reported) and the anytime-valid
//!   mixture e-value (decides, see [`crate::stats::nb_block_e_value`]) of
//!   observing the counts `x_b` where `mu_b` were expected in each clock hour
//!   `b` since the deploy, under a negative binomial with shape `k` drawn
//!   per hour, as the baseline's shape was estimated (`None`: Poisson). A new
//!   signature is scored as Poisson (no shape: its burstiness is unknown).

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

/// Scores the per-hour `(observed, expected)` blocks with NB shape `k`.
pub(crate) fn score(blocks: &[(f64, f64)], k: Option<f64>) -> Score {
    let (x, mu) = blocks
        .iter()
        .fold((0.0, 0.0), |(x, m), (bx, bm)| (x + bx, m + bm));
    Score {
        p: stats::nb_sf(x, mu, stats::nb_sum_shape(blocks.iter().map(|b| b.1), k)),
        e: stats::nb_block_e_value(blocks, k),
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
        let calm = score(&[(30.0, 10.0)], None);
        let bursty = score(&[(30.0, 10.0)], Some(2.0));
        assert!(calm.p < 1e-5 && calm.e > 1e3, "{calm:?}");
        assert!(bursty.p > calm.p && bursty.e < calm.e, "{bursty:?}");
        let null = score(&[(10.0, 10.0)], None);
        assert!(null.p > 0.3 && null.e < 2.0, "{null:?}");
    }

    #[test]
    fn a_rise_that_lasts_hours_of_a_bursty_error_adds_up() {
        // ×3 for one hour of a bursty error (k = 7) is weak evidence; the
        // same rise over three hours is strong, where one draw for the
        // whole window would stay weak however long it lasted.
        let one = score(&[(36.0, 12.0)], Some(7.0));
        let three = score(&[(36.0, 12.0); 3], Some(7.0));
        let one_draw = stats::nb_e_value(108.0, 36.0, Some(7.0));
        assert!(one.e < 100.0, "{one:?}");
        assert!(three.e > 1e4, "{three:?}");
        assert!(one_draw < 1e3, "{one_draw}");
        assert!((one.e - stats::nb_e_value(36.0, 12.0, Some(7.0))).abs() < 1e-9 * one.e);
        // No rise: no evidence, however many hours.
        let null = score(&[(12.0, 12.0); 5], Some(7.0));
        assert!(null.e < 1.0, "{null:?}");
    }
}
