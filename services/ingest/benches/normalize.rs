//! Criterion bench of the normalizer core: `Normalizer::normalize_line` over
//! synthetic error messages whose ids and numbers vary on every line (the same
//! shapes as `bench/corpus.py`). Reports lines/s on one core.
//!
//! `cargo bench -p selfheal-ingest --bench normalize`

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use selfheal_ingest::normalize::{mask, scrub, Normalizer, NormalizerConfig};

/// A small deterministic PRNG (xorshift64*), so the corpus is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn corpus(n: usize) -> Vec<String> {
    let names = ["alice", "bob", "carol", "dave", "eve", "mallory"];
    let hosts = [
        "db-primary",
        "cache-eu",
        "payments-api",
        "inventory",
        "auth",
    ];
    let tables = ["orders", "users", "carts", "payments"];
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|_| match r.below(10) {
            0 => format!(
                "Timeout after {}ms calling {} (request_id={:012x})",
                r.below(30_000),
                r.pick(&hosts),
                r.next() >> 16
            ),
            1 => format!(
                "Invalid user {} from {}.{}.{}.{} port {}",
                r.pick(&names),
                r.below(255),
                r.below(255),
                r.below(255),
                r.below(255),
                r.below(65_535)
            ),
            2 => format!(
                "Connection refused to {}.internal:{}",
                r.pick(&hosts),
                r.below(9_999)
            ),
            3 => format!(
                "User {:08x}-{:04x}-4{:03x}-a{:03x}-{:012x} not found in table {}",
                r.next() as u32,
                r.below(65_536),
                r.below(4096),
                r.below(4096),
                r.next() >> 16,
                r.pick(&tables)
            ),
            4 => format!(
                "GET /v1/users/{}/orders returned 503 in {}.{}ms",
                r.below(1_000_000_000),
                r.below(100),
                r.below(100)
            ),
            5 => format!(
                "Failed to process order {}: insufficient stock for sku SKU-{:06x}",
                r.below(1_000_000_000_000),
                r.below(1 << 24)
            ),
            6 => format!(
                "Received block blk_-{} of size {} from /10.{}.{}.{}",
                r.next() >> 2,
                r.below(67_108_864),
                r.below(255),
                r.below(255),
                r.below(255)
            ),
            7 => format!(
                "Slow query on {} took {}s rows={}",
                r.pick(&tables),
                r.below(60),
                r.below(1_000_000)
            ),
            8 => format!(
                "worker-{} heartbeat missed for {}s, last seen 10.0.{}.{}",
                r.below(64),
                r.below(120),
                r.below(255),
                r.below(255)
            ),
            _ => format!(
                "Payment {:016x} declined by issuer at 2026-03-{:02}T{:02}:{:02}:{:02}Z",
                r.next(),
                1 + r.below(28),
                r.below(24),
                r.below(60),
                r.below(60)
            ),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = corpus(100_000);
    let mut g = c.benchmark_group("normalize");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(20);
    g.bench_function("normalize_line/100k", |b| {
        let mut n = Normalizer::new(NormalizerConfig::default());
        b.iter(|| {
            let mut acc = 0u64;
            for l in &lines {
                acc ^= n.normalize_line("bench", l).0;
            }
            acc
        })
    });
    g.bench_function("mask/100k", |b| {
        let mut out = String::new();
        b.iter(|| {
            let mut acc = 0usize;
            for l in &lines {
                mask::mask_into(l, &mut out);
                acc += out.len();
            }
            acc
        })
    });
    g.finish();

    let sample = "auth failed for bob@example.com with Bearer abc123.def password=hunter2 card 4111 1111 1111 1111 at https://app:s3cret@db.internal/x";
    c.bench_function("scrub/secret-laden message", |b| {
        b.iter(|| scrub(std::hint::black_box(sample)).len())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
