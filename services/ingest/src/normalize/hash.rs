//! A stable 64-bit hash for signature ids and internal tables.
//!
//! Signature ids leave the process (Kafka, dashboards, detector baselines), so
//! the hash must give the same value on every platform, process and release;
//! `std`'s `DefaultHasher` promises none of that. This is a word-at-a-time
//! multiply-rotate hash (FxHash's step) over little-endian 8-byte words, with
//! the length mixed in and a SplitMix64 finalizer for avalanche. Changing it
//! changes every signature id: don't.

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Incremental stable hasher. Fields are separated by [`StableHasher::write_str`]'s
/// length prefix, so `("ab", "c")` and `("a", "bc")` differ.
#[derive(Debug, Clone)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl StableHasher {
    /// A hasher with the fixed seed.
    pub fn new() -> Self {
        Self(0x2545_f491_4f6c_dd1d)
    }

    #[inline]
    fn step(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }

    /// Hashes raw bytes (no length prefix).
    #[inline]
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.step(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The tail, zero-padded, little-endian; byte by byte, as a
            // variable-length copy would be a `memcpy` call per string.
            let w = rest
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b));
            self.step(w ^ ((rest.len() as u64) << 59));
        }
    }

    /// Hashes one field: its length, then its bytes.
    #[inline]
    pub fn write_str(&mut self, s: &str) {
        self.step(s.len() as u64 ^ 0xff00_0000_0000_0000);
        self.write_bytes(s.as_bytes());
    }

    /// Hashes a number.
    #[inline]
    pub fn write_u64(&mut self, v: u64) {
        self.step(v);
    }

    /// The final, well-mixed value (SplitMix64 finalizer).
    #[inline]
    pub fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Hashes one string.
pub fn hash_str(s: &str) -> u64 {
    let mut h = StableHasher::new();
    h.write_str(s);
    h.finish()
}

/// A `BuildHasher` for maps keyed by values that are already well-mixed hashes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PreHashed;

/// The `Hasher` of [`PreHashed`]: passes a `u64` key through.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl std::hash::BuildHasher for PreHashed {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_values_never_change() {
        // Signature ids are compared across releases: these must stay fixed.
        assert_eq!(hash_str(""), hash_str(""));
        let a = hash_str("Timeout after <*> calling payments-api");
        assert_eq!(a, 16_895_841_517_255_160_542);
    }

    #[test]
    fn every_tail_length_hashes_as_zero_padded_words() {
        let text = b"0123456789abcdefXYZ";
        for n in 0..text.len() {
            let mut h = StableHasher::new();
            h.write_bytes(&text[..n]);
            // The definition: little-endian words, the tail zero-padded and
            // tagged with its length.
            let mut r = StableHasher::new();
            for c in text[..n].chunks(8) {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                let tag = if c.len() < 8 {
                    (c.len() as u64) << 59
                } else {
                    0
                };
                r.step(u64::from_le_bytes(w) ^ tag);
            }
            assert_eq!(h.finish(), r.finish(), "{n} bytes");
        }
    }

    #[test]
    fn field_boundaries_matter() {
        let mut a = StableHasher::new();
        a.write_str("ab");
        a.write_str("c");
        let mut b = StableHasher::new();
        b.write_str("a");
        b.write_str("bc");
        assert_ne!(a.finish(), b.finish());
    }
}
