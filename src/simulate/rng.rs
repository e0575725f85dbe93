//! A small deterministic random source (splitmix64) and the distributions the
//! simulator draws from. No dependency: the stream for a seed must never change
//! under a crate upgrade, or the classic history would stop being byte-stable.

/// splitmix64; `Rng(seed)`.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(super) fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub(super) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(super) fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 40.0 {
            // Normal approximation for large means.
            let (u1, u2) = (self.uniform(), self.uniform());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
        }
        let l = (-lambda).exp();
        let (mut k, mut p) = (0u64, self.uniform());
        while p > l {
            k += 1;
            p *= self.uniform();
        }
        k
    }
    /// Gamma(shape, 1/shape): mean 1, variance 1/shape, the over-dispersion
    /// multiplier (Marsaglia–Tsang for shape ≥ 1).
    pub(super) fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape.max(1.0) - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let (u1, u2) = (self.uniform(), self.uniform());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let v = (1.0 + c * z).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v / shape.max(1.0);
            }
        }
    }
}

impl Rng {
    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
    /// An integer in `lo..=hi`.
    pub(super) fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1).max(1) as u64) as i64
    }
    /// Log-uniform between `lo` and `hi` (both > 0).
    pub(super) fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.uniform()).exp()
    }
    /// One element of a non-empty slice.
    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// Fisher–Yates.
    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
    /// Gamma(shape, 1/shape) for any shape > 0 (shape < 1 by the boost
    /// `G(shape + 1) · U^(1/shape)`): mean 1, variance 1/shape.
    pub(super) fn gamma_any(&mut self, shape: f64) -> f64 {
        if shape >= 1.0 {
            return self.gamma(shape);
        }
        let g = self.gamma(shape + 1.0) * (shape + 1.0);
        g * self.uniform().powf(1.0 / shape) / shape
    }
    /// A standard normal draw (Box–Muller).
    pub(super) fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Binomial(n, p): by inversion when the smaller tail's mean is under 15
    /// (exact, cost grows with that mean), else the normal approximation.
    pub(super) fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        let mean = n as f64 * p;
        if mean >= 15.0 {
            let sd = (mean * (1.0 - p)).sqrt();
            return (mean + sd * self.normal()).round().clamp(0.0, n as f64) as u64;
        }
        // Inversion: walk the pmf from 0.
        let q = 1.0 - p;
        let mut pmf = q.powf(n as f64);
        let mut cdf = pmf;
        let u = self.uniform();
        let mut k = 0u64;
        while u > cdf && k < n {
            pmf *= (n - k) as f64 / (k + 1) as f64 * p / q;
            k += 1;
            cdf += pmf;
            if pmf < 1e-12 && cdf > 1.0 - 1e-9 {
                break;
            }
        }
        k
    }
    /// Multinomial(n, probs) by conditional binomials (`probs` sum to ~1;
    /// the last category takes what is left).
    pub(super) fn multinomial(&mut self, n: u64, probs: &[f64], out: &mut [u64]) {
        let (mut left, mut mass) = (n, 1.0f64);
        let last = probs.len().saturating_sub(1);
        for (i, p) in probs.iter().enumerate() {
            let k = if i == last {
                left
            } else if mass <= 0.0 {
                0
            } else {
                self.binomial(left, (p / mass).clamp(0.0, 1.0))
            };
            out[i] = k;
            left -= k;
            mass -= p;
        }
    }
    /// A lowercase hex string of `n` digits.
    pub(super) fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_has_mean_one_for_small_and_large_shapes() {
        let mut rng = Rng(3);
        for shape in [0.4, 1.0, 6.0] {
            let n = 20_000;
            let mean = (0..n).map(|_| rng.gamma_any(shape)).sum::<f64>() / f64::from(n);
            assert!((mean - 1.0).abs() < 0.06, "shape {shape}: mean {mean}");
        }
    }
}
