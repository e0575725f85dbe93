//! Live = backtest: the detector gives the same regressions for a simulated
//! history whether it reads the events in time order (as `selfheal
//! backtest` feeds them) or as a fleet's shippers deliver them live: per
//! service in order, services interleaved in any order within rounds of a
//! minute or two of event time (issue 17).

use selfheal_common::config::{Config, DetectorConfig};
use selfheal_detector::core::Detector;
use selfheal_ingest::record::DefaultType;
use selfheal_schemas::{AnyEvent, Regression};

use crate::simulate::{simulate, Profile, SimArgs};
use selfheal_ingest::record::RecordRef;

/// The detector's input events of a simulated history, in time order.
fn history(profile: Profile, seed: u64) -> Vec<AnyEvent> {
    let args = SimArgs {
        services: 8,
        days: 1.75,
        seed,
        deploy_every_hours: 4.0,
        profile,
    };
    let (mut out, mut truth) = (Vec::new(), Vec::new());
    simulate(&args, &mut out, &mut truth).unwrap();
    let text = String::from_utf8(out).unwrap();
    let config = Config::default();
    let mut records: Vec<_> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| selfheal_ingest::record::parse_line(l, i + 1, DefaultType::Log).unwrap())
        .collect();
    let ts = |r: &selfheal_ingest::record::Record| RecordRef::from(r.clone()).ts_ms();
    records.sort_by_key(ts);
    let mut normalizer = selfheal_ingest::normalize::Normalizer::new(
        selfheal_ingest::cli::normalizer_config(&config.ingest),
    );
    let mut events = Vec::new();
    for minute in records.chunk_by(|a, b| ts(a).div_euclid(60_000) == ts(b).div_euclid(60_000)) {
        let e = selfheal_ingest::events::to_events(&mut normalizer, minute.iter().cloned());
        events.extend(e.into_ordered());
    }
    events
}

fn service_of(e: &AnyEvent) -> &str {
    if e.input_time_ms().is_some() {
        e.key()
    } else {
        ""
    }
}

fn time_of(e: &AnyEvent) -> i64 {
    match e {
        AnyEvent::SignatureCount(x) => x.last_seen_ms,
        other => other.input_time_ms().unwrap_or(0),
    }
}

fn run(events: &[AnyEvent]) -> Vec<Regression> {
    let mut d = Detector::new(DetectorConfig::default());
    let mut out: Vec<Regression> = events.iter().flat_map(|e| d.on_event(e)).collect();
    out.extend(d.flush());
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Per-service streams (each in order), delivered in rounds of `minutes`
/// of event time, the services of each round in a shuffled order.
fn live(events: &[AnyEvent], minutes: i64, seed: u64) -> Vec<AnyEvent> {
    let mut streams: std::collections::BTreeMap<&str, Vec<&AnyEvent>> = Default::default();
    for e in events {
        streams.entry(service_of(e)).or_default().push(e);
    }
    let streams: Vec<Vec<&AnyEvent>> = streams.into_values().collect();
    let (start, end) = (
        events.iter().map(time_of).min().unwrap_or(0),
        events.iter().map(time_of).max().unwrap_or(0),
    );
    let mut rng = seed | 1;
    let mut next = vec![0; streams.len()];
    let mut out = Vec::with_capacity(events.len());
    let mut t = start;
    while t <= end {
        t += minutes * 60_000;
        let mut order: Vec<usize> = (0..streams.len()).collect();
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for i in order {
            while next[i] < streams[i].len() && time_of(streams[i][next[i]]) < t {
                out.push(streams[i][next[i]].clone());
                next[i] += 1;
            }
        }
    }
    out
}

#[test]
fn a_history_fed_live_in_any_interleaving_gives_the_backtests_regressions() {
    for (profile, seed) in [(Profile::Classic, 11), (Profile::Adversarial, 3)] {
        let events = history(profile, seed);
        let want = run(&events);
        assert!(!want.is_empty());
        for (minutes, shuffle) in [(1, 1), (2, 2), (1, 3)] {
            let fed = live(&events, minutes, shuffle);
            assert_eq!(fed.len(), events.len());
            let got = run(&fed);
            assert_eq!(
                got.len(),
                want.len(),
                "{profile:?} seed {seed}, rounds of {minutes} min, shuffle {shuffle}"
            );
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{profile:?} seed {seed}, rounds of {minutes} min");
            }
        }
    }
}
