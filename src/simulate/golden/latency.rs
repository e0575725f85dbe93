//! The latency of one route: a mixture of lognormal components (the body, a
//! rare slow path, a culprit's slow mode) and a Pareto tail, all scaled by a
//! load factor; the probability of each histogram bucket.

/// The OpenTelemetry default explicit bounds, in seconds (the contract).
pub(super) const BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// One component of a mixture, in seconds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Comp {
    /// Lognormal with this median and log-space standard deviation.
    LogNormal { median: f64, sigma: f64 },
    /// Pareto from `xm` with shape `alpha` (heavier for smaller alpha).
    Pareto { xm: f64, alpha: f64 },
}

impl Comp {
    fn cdf(self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        match self {
            Comp::LogNormal { median, sigma } => {
                0.5 * (1.0 + erf((x / median).ln() / (sigma * std::f64::consts::SQRT_2)))
            }
            Comp::Pareto { xm, alpha } => {
                if x <= xm {
                    0.0
                } else {
                    1.0 - (xm / x).powf(alpha)
                }
            }
        }
    }
}

/// A weighted mixture (weights sum to 1).
#[derive(Debug, Clone)]
pub(super) struct Mix {
    pub(super) parts: Vec<(f64, Comp)>,
}

impl Mix {
    /// P(latency ≤ x) when every component is stretched by `scale`.
    pub(super) fn cdf(&self, x: f64, scale: f64) -> f64 {
        self.parts.iter().map(|(w, c)| w * c.cdf(x / scale)).sum()
    }

    /// The `q` quantile at scale 1 (bisection in log space).
    pub(super) fn quantile(&self, q: f64) -> f64 {
        let (mut lo, mut hi) = (1e-6f64.ln(), 1e4f64.ln());
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if self.cdf(mid.exp(), 1.0) < q {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (0.5 * (lo + hi)).exp()
    }

    /// The probability of each of the `BOUNDS.len() + 1` buckets at `scale`.
    pub(super) fn bucket_probs(&self, scale: f64) -> [f64; 15] {
        let mut p = [0.0; 15];
        let mut prev = 0.0;
        for (i, b) in BOUNDS.iter().enumerate() {
            let c = self.cdf(*b, scale).clamp(prev, 1.0);
            p[i] = c - prev;
            prev = c;
        }
        p[14] = (1.0 - prev).max(0.0);
        p
    }

    /// This mixture with `comp` added at weight `w` (the others shrink).
    pub(super) fn with(&self, w: f64, comp: Comp) -> Mix {
        let mut parts: Vec<(f64, Comp)> = self
            .parts
            .iter()
            .map(|(x, c)| (x * (1.0 - w), *c))
            .collect();
        parts.push((w, comp));
        Mix { parts }
    }

    /// Every component stretched by `f`.
    pub(super) fn scaled(&self, f: f64) -> Mix {
        let parts = self
            .parts
            .iter()
            .map(|(w, c)| {
                let c = match *c {
                    Comp::LogNormal { median, sigma } => Comp::LogNormal {
                        median: median * f,
                        sigma,
                    },
                    Comp::Pareto { xm, alpha } => Comp::Pareto { xm: xm * f, alpha },
                };
                (*w, c)
            })
            .collect();
        Mix { parts }
    }
}

/// A representative latency of each bucket, for the histogram's `sum`.
pub(super) fn bucket_mid(i: usize) -> f64 {
    match i {
        0 => 0.6 * BOUNDS[0],
        14 => 1.5 * BOUNDS[13],
        _ => 0.5 * (BOUNDS[i - 1] + BOUNDS[i]),
    }
}

/// Abramowitz–Stegun 7.1.26 (absolute error < 1.5e-7): enough for bucket
/// probabilities, and no dependency whose output could change.
fn erf(x: f64) -> f64 {
    let s = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    s * y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_quantiles_and_buckets_add_up() {
        let m = Mix {
            parts: vec![(
                1.0,
                Comp::LogNormal {
                    median: 0.1,
                    sigma: 0.5,
                },
            )],
        };
        assert!((m.quantile(0.5) - 0.1).abs() < 1e-4);
        // exp(2.326 · 0.5) · 0.1
        assert!((m.quantile(0.99) - 0.3197).abs() < 2e-3);
        let p = m.bucket_probs(2.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((m.scaled(2.0).quantile(0.5) - 0.2).abs() < 1e-3);
    }

    #[test]
    fn a_two_percent_slow_component_moves_p99_not_p50() {
        let base = Mix {
            parts: vec![(
                1.0,
                Comp::LogNormal {
                    median: 0.05,
                    sigma: 0.4,
                },
            )],
        };
        let slow = base.with(
            0.02,
            Comp::LogNormal {
                median: 0.5,
                sigma: 0.2,
            },
        );
        assert!(slow.quantile(0.99) > 3.0 * base.quantile(0.99));
        assert!(slow.quantile(0.5) < 1.02 * base.quantile(0.5));
    }
}
