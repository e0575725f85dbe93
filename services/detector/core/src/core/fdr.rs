//! Stage: multiplicity. A deploy's signatures are tested together; the
//! q-value of each decides against `alpha`.
//!
//! Sequential runs use e-values (anytime-valid): e-BH across the service's
//! signatures (valid under any dependence), or 1/e per signature without FDR
//! control. The one-shot simple recipe uses p-values: Benjamini–Hochberg, or
//! the raw p-value.

use crate::core::score::Score;
use crate::stats;

/// q-values of `scores`, in order, with `total` hypotheses tested (the
/// service's signatures, the untested counting as no evidence).
pub(crate) fn q_values(scores: &[Score], total: usize, sequential: bool, fdr: bool) -> Vec<f64> {
    match (sequential, fdr) {
        (true, true) => stats::e_bh(&scores.iter().map(|c| c.e).collect::<Vec<_>>(), total),
        (true, false) => scores.iter().map(|c| (1.0 / c.e).min(1.0)).collect(),
        (false, true) => stats::bh(&scores.iter().map(|c| c.p).collect::<Vec<_>>(), total),
        (false, false) => scores.iter().map(|c| c.p).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_bh_counts_the_untested_signatures() {
        let s = [Score { p: 0.001, e: 100.0 }];
        assert!((q_values(&s, 1, true, true)[0] - 0.01).abs() < 1e-12);
        assert!((q_values(&s, 10, true, true)[0] - 0.1).abs() < 1e-12);
        assert!((q_values(&s, 10, true, false)[0] - 0.01).abs() < 1e-12);
        assert!((q_values(&s, 10, false, true)[0] - 0.01).abs() < 1e-12);
        assert_eq!(q_values(&s, 10, false, false)[0], 0.001);
    }
}
