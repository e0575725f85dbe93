//! Per-service watermarks: one service's time never moves another's.

use super::tests::{baseline, deploy, sc, traffic, T0};
use super::*;

/// A bad deploy of `service` at `t0` after a day of history: 1000
/// requests and 2 `old` a minute, then 30 minutes at revision `b` with 5
/// `new` a minute. Events in time order.
fn bad_deploy(service: &str, t0: i64) -> Vec<AnyEvent> {
    let mut out = Vec::new();
    for m in 0..(24 * 60) {
        let t = t0 - DAY_MS + m * MINUTE_MS;
        out.push(traffic(service, "a", 1000, t));
        out.push(sc(service, "a", "old", 2, t + 1));
    }
    out.push(deploy(service, "b", "a", t0));
    for m in 0..30 {
        let t = t0 + m * MINUTE_MS;
        out.push(traffic(service, "b", 1000, t));
        out.push(sc(service, "b", "old", 2, t + 1));
        out.push(sc(service, "b", "new", 5, t + 2));
    }
    out
}

/// A healthy service: a day of history, then 30 minutes at the same rate.
fn quiet(service: &str, t0: i64) -> Vec<AnyEvent> {
    let mut out = Vec::new();
    for m in 0..(24 * 60 + 30) {
        let t = t0 - DAY_MS + m * MINUTE_MS;
        out.push(traffic(service, "a", 1000, t));
        out.push(sc(service, "a", "old", 2, t + 1));
    }
    out
}

fn run(events: impl IntoIterator<Item = AnyEvent>) -> (Vec<Regression>, DetectorStats) {
    let mut d = Detector::new(DetectorConfig::default());
    let mut out = Vec::new();
    for e in events {
        out.extend(d.on_event(&e));
    }
    out.extend(d.flush());
    out.sort_by(|a, b| (&a.service, &a.id).cmp(&(&b.service, &b.id)));
    (out, d.stats())
}

/// Regression test for the global watermark: a service replaying a bad
/// deploy from hours ago, sent while another service is live, had every
/// count dropped as "older than the baseline horizon" (the README
/// quickstart sent to a running `selfheal up`).
#[test]
fn a_service_replayed_from_hours_ago_beside_a_live_one_loses_nothing() {
    let live_t0 = T0 + 9 * DAY_MS;
    let alone = run(bad_deploy("replayed", T0)).0;
    assert_eq!(alone.len(), 1, "{alone:?}");
    // The live service first (its watermark 9 days ahead), then the replay.
    let (out, stats) = run(quiet("live", live_t0)
        .into_iter()
        .chain(bad_deploy("replayed", T0)));
    assert_eq!(stats.beyond_horizon, 0, "{stats:?}");
    assert_eq!(out, alone, "the replay is judged as if alone");
    // Interleaved event by event: the same.
    let (a, b) = (quiet("live", live_t0), bad_deploy("replayed", T0));
    let mut mixed = Vec::new();
    let (mut i, mut j) = (a.into_iter(), b.into_iter());
    loop {
        match (i.next(), j.next()) {
            (None, None) => break,
            (x, y) => mixed.extend(x.into_iter().chain(y)),
        }
    }
    assert_eq!(run(mixed).0, alone);
}

/// Shuffles `chunks` with a seeded xorshift (Fisher–Yates).
fn shuffle<T>(chunks: &mut [T], seed: u64) {
    let mut rng = seed | 1;
    for i in (1..chunks.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        chunks.swap(i, (rng % (i as u64 + 1)) as usize);
    }
}

/// `bad_deploy` with the new error named `sig` (its own template).
fn bad_deploy_of(service: &str, t0: i64, sig: &str) -> Vec<AnyEvent> {
    let mut out = bad_deploy(service, t0);
    for e in &mut out {
        if let AnyEvent::SignatureCount(c) = e {
            if c.signature == "new" {
                c.signature = sig.into();
                c.template = format!("template {sig}");
            }
        }
    }
    out
}

/// The event time of an input event.
fn time_of(e: &AnyEvent) -> i64 {
    match e {
        AnyEvent::SignatureCount(c) => c.last_seen_ms,
        AnyEvent::Traffic(t) => t.window_start_ms,
        AnyEvent::Deploy(d) => d.deployed_at_ms,
        _ => 0,
    }
}

/// Feeds `streams` as shippers would: rounds of `minutes` of event time,
/// each round's per-service chunks in a shuffled order.
fn in_rounds(streams: &[Vec<AnyEvent>], minutes: i64, seed: u64) -> Vec<AnyEvent> {
    let start = streams.iter().flatten().map(time_of).min().unwrap_or(0);
    let end = streams.iter().flatten().map(time_of).max().unwrap_or(0);
    let mut out = Vec::new();
    let mut next = vec![0usize; streams.len()];
    let mut round = 0u64;
    let mut t = start;
    while t <= end {
        t += minutes * MINUTE_MS;
        let mut order: Vec<usize> = (0..streams.len()).collect();
        shuffle(&mut order, seed.wrapping_mul(7919).wrapping_add(round));
        for i in order {
            while next[i] < streams[i].len() && time_of(&streams[i][next[i]]) < t {
                out.push(streams[i][next[i]].clone());
                next[i] += 1;
            }
        }
        round += 1;
    }
    out
}

#[test]
fn the_same_input_in_any_order_of_services_gives_the_same_output() {
    // Unrelated errors: any order of whole services, even days apart.
    let streams = [
        bad_deploy_of("a", T0, "bug_a"),
        quiet("b", T0 + 5 * DAY_MS),
        bad_deploy_of("c", T0 + 20 * MINUTE_MS, "bug_c"),
    ];
    let want = run(streams.iter().flatten().cloned()).0;
    assert_eq!(want.len(), 2, "{want:?}");
    for perm in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [1, 0, 2]] {
        let got = run(perm.iter().flat_map(|&i| streams[i].clone())).0;
        assert_eq!(got, want, "services in order {perm:?}");
    }
    // The same error in two services (the guard compares them): any
    // interleaving of per-service chunks of up to 2 minutes.
    let streams = [
        bad_deploy("a", T0),
        quiet("b", T0),
        bad_deploy("c", T0 + 20 * MINUTE_MS),
    ];
    let want = run(streams.iter().flatten().cloned()).0;
    assert_eq!(want.len(), 2, "{want:?}");
    for seed in 1..=8u64 {
        for minutes in [1, 2] {
            let got = run(in_rounds(&streams, minutes, seed)).0;
            assert_eq!(got, want, "seed {seed}, rounds of {minutes} min");
        }
    }
}

#[test]
fn a_far_future_record_of_one_service_changes_no_other_service() {
    let streams = [bad_deploy("a", T0), quiet("b", T0)];
    let want: Vec<Regression> = run(streams.iter().flatten().cloned()).0;
    let future = [
        sc("b", "a", "old", 1, T0 + 365 * DAY_MS),
        traffic("b", "a", 1, i64::MAX / 4),
    ];
    for at in [0, 500, 2_000, 2 * 24 * 60 + 30] {
        let mut events: Vec<AnyEvent> = streams.iter().flatten().cloned().collect();
        let at = at.min(events.len());
        events.splice(at..at, future.iter().cloned());
        let got = run(events).0;
        let of_a = |v: &[Regression]| {
            v.iter()
                .filter(|r| r.service == "a")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(of_a(&got), of_a(&want), "far-future record at {at}");
    }
}

#[test]
fn data_beyond_its_own_horizon_is_counted_and_reported() {
    let mut d = Detector::new(DetectorConfig::default());
    baseline(&mut d, "a", 1);
    d.on_event(&sc("a", "a", "old", 1, T0 - 30 * DAY_MS));
    let s = d.stats();
    assert_eq!(s.beyond_horizon, 1);
    // Another service's data of that age is its own business.
    d.on_event(&sc("z", "a", "old", 1, T0 - 30 * DAY_MS));
    assert_eq!(d.stats().beyond_horizon, 1);
    assert_eq!(d.service_watermark("z"), Some(T0 - 30 * DAY_MS - 120_000));
}

/// A clean deploy (the same error rate per request after it) whose traffic
/// reaches the detector a chunk after its error counts, as when it sits
/// behind another service's chunk in a shared partition or the metrics
/// pipeline is slower than the log shipper. Judged on the counts alone, the
/// new revision's exposure is short and its usual errors look like a spike.
fn clean_deploy_traffic_behind(traffic_wait_s: u32) -> Vec<Regression> {
    let t0 = T0 + DAY_MS;
    let mut in_order = Vec::new();
    for m in 0..(24 * 60 + 40) {
        let t = T0 + m * MINUTE_MS;
        let rev = if t < t0 { "a" } else { "b" };
        if t == t0 {
            in_order.push(deploy("c", "b", "a", t0));
        }
        in_order.push(traffic("c", rev, 1000, t));
        in_order.push(sc("c", rev, "old", 20, t + 1));
    }
    // Chunks of 5 minutes: each chunk's counts, then its traffic.
    let mut fed = Vec::new();
    let chunk_of = |e: &AnyEvent| time_of(e).div_euclid(5 * MINUTE_MS);
    for chunk in in_order.chunk_by(|x, y| chunk_of(x) == chunk_of(y)) {
        let (tr, rest): (Vec<_>, Vec<_>) = chunk
            .iter()
            .cloned()
            .partition(|e| matches!(e, AnyEvent::Traffic(_)));
        fed.extend(rest);
        fed.extend(tr);
    }
    let config = DetectorConfig {
        traffic_wait_s,
        ..DetectorConfig::default()
    };
    let mut d = Detector::new(config);
    let mut out = Vec::new();
    for e in &fed {
        out.extend(d.on_event(e));
    }
    out.extend(d.flush());
    out
}

#[test]
fn a_service_whose_traffic_arrives_behind_its_counts_is_not_judged_on_a_partial_rate() {
    // A wait longer than the traffic's lag (5 minutes, past the allowed
    // lateness).
    let waited = clean_deploy_traffic_behind(360);
    assert!(waited.is_empty(), "{waited:?}");
    // The check can fail: without the wait, the partial rate flags.
    let not_waited = clean_deploy_traffic_behind(0);
    assert!(
        !not_waited.is_empty(),
        "without the traffic wait nothing was flagged"
    );
}
