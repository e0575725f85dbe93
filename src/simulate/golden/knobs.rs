//! Per-seed proportions: how often deploys are culprits, which golden-signal
//! kinds dominate, and how often each confounder lands near a deploy or at
//! random. A system tuned on some seeds meets other proportions on others.

use crate::simulate::rng::Rng;

/// Per-seed proportions.
#[derive(Debug, Clone)]
pub(super) struct Knobs {
    /// Share of deploys that are culprits.
    pub(super) culprit_p: f64,
    /// Weights of latency, error-rate and saturation culprits.
    pub(super) label_w: [f64; 3],
    /// Share of culprits whose effect starts minutes after the deploy.
    pub(super) onset_p: f64,
    /// Per deploy: probability of each confounder right around it.
    pub(super) dep_slow_near_p: f64,
    pub(super) surge_near_p: f64,
    pub(super) noisy_near_p: f64,
    pub(super) gap_near_p: f64,
    pub(super) restart_near_p: f64,
    pub(super) scale_out_near_p: f64,
    pub(super) rollout_p: f64,
    /// Per day, fleet-wide: confounders at random times.
    pub(super) dep_slows_per_day: f64,
    pub(super) surges_per_day: f64,
    pub(super) noisy_per_day: f64,
    pub(super) gaps_per_day: f64,
    pub(super) scales_per_day: f64,
    /// Spontaneous restarts per instance per day.
    pub(super) restarts_per_instance_day: f64,
}

impl Knobs {
    pub(super) fn draw(rng: &mut Rng) -> Self {
        Knobs {
            culprit_p: rng.range(0.28, 0.4),
            label_w: [0; 3].map(|_| rng.range(0.7, 1.3)),
            onset_p: rng.range(0.1, 0.3),
            dep_slow_near_p: rng.range(0.15, 0.35),
            surge_near_p: rng.range(0.08, 0.2),
            noisy_near_p: rng.range(0.1, 0.25),
            gap_near_p: rng.range(0.05, 0.15),
            restart_near_p: rng.range(0.1, 0.3),
            scale_out_near_p: rng.range(0.08, 0.2),
            rollout_p: rng.range(0.25, 0.5),
            dep_slows_per_day: rng.range(1.0, 4.0),
            surges_per_day: rng.range(1.0, 3.0),
            noisy_per_day: rng.range(1.0, 4.0),
            gaps_per_day: rng.range(1.0, 4.0),
            scales_per_day: rng.range(1.0, 4.0),
            restarts_per_instance_day: rng.range(0.05, 0.4),
        }
    }

    /// 0: latency, 1: error rate, 2: saturation.
    pub(super) fn label(&self, rng: &mut Rng) -> usize {
        let total: f64 = self.label_w.iter().sum();
        let mut u = rng.uniform() * total;
        for (i, w) in self.label_w.iter().enumerate() {
            u -= w;
            if u <= 0.0 {
                return i;
            }
        }
        2
    }
}
