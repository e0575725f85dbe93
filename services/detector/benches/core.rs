//! Criterion bench of the detector core (windows, baselines, evaluation) and
//! the state memory per active signature.
//!
//! `cargo bench -p selfheal-detector --bench core`

// The only unsafe code in the workspace: a counting global allocator that
// delegates to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use selfheal_common::config::DetectorConfig;
use selfheal_detector::core::Detector;
use selfheal_schemas::{AnyEvent, Deploy, SignatureCount, Traffic};

/// Counts live heap bytes, to report state memory per signature.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: delegates to the system allocator; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIN: i64 = 60_000;

fn sc(service: &str, rev: &str, sig: usize, count: i64, t: i64) -> AnyEvent {
    AnyEvent::SignatureCount(SignatureCount {
        service: service.into(),
        revision: rev.into(),
        signature: format!("{sig:016x}"),
        template: format!("Timeout after <*> calling dependency-{sig}"),
        exception_type: None,
        level: "error".into(),
        count,
        first_seen_ms: t,
        last_seen_ms: t,
        sample_message: "Timeout after 3001ms calling dependency".into(),
        sample_stack: None,
        frames: vec![],
        trace_id: None,
    })
}

fn traffic(service: &str, rev: &str, t: i64) -> AnyEvent {
    AnyEvent::Traffic(Traffic {
        service: service.into(),
        revision: rev.into(),
        window_start_ms: t,
        window_s: 60,
        requests: 1000,
        errors: None,
    })
}

/// `services` services × `sigs` signatures, each firing every minute for
/// `days` days (the worst case for state size: every bucket non-empty).
fn history(services: usize, sigs: usize, days: i64) -> Vec<AnyEvent> {
    let mut out = Vec::new();
    for m in 0..days * 24 * 60 {
        let t = m * MIN;
        for s in 0..services {
            let name = format!("svc-{s}");
            out.push(traffic(&name, "a", t));
            for g in 0..sigs {
                out.push(sc(&name, "a", g, 1 + (m + g as i64) % 3, t + 1));
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    // Memory: 50 services × 20 signatures, 7 days of minute-by-minute counts.
    let events = history(50, 20, 7);
    let before = LIVE.load(Ordering::Relaxed);
    let mut d = Detector::new(DetectorConfig::default());
    for e in &events {
        black_box(d.on_event(e));
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let stats = d.stats();
    eprintln!(
        "state after 7 days, {} signatures: {} buckets, {} bytes live, {:.0} bytes per active signature (incl. traffic series)",
        stats.signatures,
        stats.buckets,
        bytes,
        bytes as f64 / stats.signatures.max(1) as f64
    );
    drop(events);

    // Throughput of steady-state ingestion with a deploy window open.
    let mut group = c.benchmark_group("detector");
    let events = history(20, 10, 2);
    let n = events.len() as u64;
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    group.bench_function("two_days_20_services_10_signatures", |b| {
        b.iter(|| {
            let mut d = Detector::new(DetectorConfig::default());
            d.on_event(&AnyEvent::Deploy(Deploy {
                service: "svc-0".into(),
                diff: None,
                deployed_at_ms: 36 * 60 * MIN,
                ..selfheal_schemas::testing::deploy()
            }));
            for e in &events {
                black_box(d.on_event(e));
            }
        })
    });
    group.finish();
}

// criterion_group! generates undocumented items.
#[allow(missing_docs)]
mod harness {
    use super::*;
    criterion_group!(benches, bench);
}
use harness::benches;
criterion_main!(benches);
