//! Stage: the flag rule. A new signature is flagged once it is seen often
//! enough (decided when the candidate is made); a spike needs all three of:
//! q ≤ α, observed/expected ≥ `min_rate_ratio`, and ≥ `min_count` events.

use crate::config::DetectorConfig;
use selfheal_schemas::RegressionKind;

/// Whether a candidate of `kind` with `x` observed, `mu` expected and
/// q-value `q` is a regression.
pub(crate) fn flagged(cfg: &DetectorConfig, kind: RegressionKind, x: f64, mu: f64, q: f64) -> bool {
    match kind {
        RegressionKind::New => true,
        _ => q <= cfg.alpha && x / mu >= cfg.min_rate_ratio && x >= cfg.min_count as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_needs_significance_size_and_count() {
        let cfg = DetectorConfig::default();
        let spike = RegressionKind::Spike;
        assert!(flagged(&cfg, spike, 10.0, 2.0, 0.01));
        assert!(!flagged(&cfg, spike, 10.0, 2.0, 0.2), "not significant");
        assert!(!flagged(&cfg, spike, 10.0, 8.0, 0.01), "too small a rise");
        assert!(!flagged(&cfg, spike, 2.0, 0.1, 0.01), "too few events");
        assert!(flagged(&cfg, RegressionKind::New, 3.0, 0.1, 1.0));
    }
}
