//! Several detector instances, each owning part of the services, exchanging
//! fleet summaries (what the fleet topic carries between them).

use super::tests::{baseline, deploy, sc, traffic, T0};
use super::*;

/// Instances fed their own services' events minute by minute; after each
/// minute every instance's summaries reach every instance (its own echo
/// included), in the order the fleet topic would deliver them.
struct Fleet {
    cores: Vec<Detector>,
    owner: BTreeMap<&'static str, usize>,
    /// Regressions, with whether a fleet summary released them.
    out: Vec<(Regression, bool)>,
    /// Instances that stopped publishing (crashed).
    silent: BTreeSet<usize>,
}

impl Fleet {
    fn new(owners: &[&[&'static str]]) -> Self {
        let mut cores = Vec::new();
        let mut owner = BTreeMap::new();
        for (i, services) in owners.iter().enumerate() {
            let mut d = Detector::new(DetectorConfig::default());
            d.enable_fleet(&format!("instance-{i}"));
            cores.push(d);
            for s in *services {
                owner.insert(*s, i);
            }
        }
        Self {
            cores,
            owner,
            out: Vec::new(),
            silent: BTreeSet::new(),
        }
    }

    fn feed(&mut self, service: &str, e: AnyEvent) {
        let i = self.owner[service];
        let out = self.cores[i].on_event(&e);
        self.out.extend(out.into_iter().map(|r| (r, false)));
    }

    fn exchange(&mut self) {
        let mut published = Vec::new();
        for (i, c) in self.cores.iter_mut().enumerate() {
            let s = c.take_fleet_summaries(true);
            if !self.silent.contains(&i) {
                published.extend(s);
            }
        }
        for s in &published {
            for c in &mut self.cores {
                let out = c.on_fleet(s);
                self.out.extend(out.into_iter().map(|r| (r, true)));
            }
        }
    }

    /// A day of baseline for every service, exchanged hour by hour.
    fn history(&mut self, services: &[&str]) {
        for s in services {
            let i = self.owner[s];
            baseline(&mut self.cores[i], s, 1);
            self.exchange();
        }
    }

    fn of(&self, service: &str) -> Vec<&Regression> {
        self.out
            .iter()
            .map(|(r, _)| r)
            .filter(|r| r.service == service)
            .collect()
    }
}

/// The upstream error, known before the outage in the quiet services
/// (3 a minute for 6 hours), so that its rise there is clear but moderate
/// (4x, 12 a minute): one such witness alone is not an outage, two are.
fn quiet_history(f: &mut Fleet, quiet: &[&str]) {
    for m in 0..(6 * 60) {
        let t = T0 - 6 * HOUR_MS + m * MINUTE_MS;
        for s in quiet {
            f.feed(s, sc(s, "a", "upstream", 3, t + 1));
        }
        if m % 30 == 0 {
            f.exchange();
        }
    }
    f.exchange();
}

/// An upstream outage from T0: 5 a minute in the deployed services (a
/// new error there), 4x its usual rate in the quiet ones (12 a minute).
fn outage(f: &mut Fleet, deployed: &[&str], quiet: &[&str], minutes: i64) {
    for s in deployed {
        f.feed(s, deploy(s, "b", "a", T0));
    }
    for m in 0..minutes {
        let t = T0 + m * MINUTE_MS;
        // Instance by instance, as if the second one read a bit later.
        for s in deployed.iter().chain(quiet) {
            let rev = if deployed.contains(s) { "b" } else { "a" };
            f.feed(s, traffic(s, rev, 1000, t));
            let n = if deployed.contains(s) { 5 } else { 12 };
            f.feed(s, sc(s, rev, "upstream", n, t + 1));
        }
        f.exchange();
    }
}

const ALL: [&str; 4] = ["a1", "a2", "b1", "b2"];

#[test]
fn an_outage_across_two_instances_is_external_on_both_sides() {
    // Control: one instance owning everything sees the outage.
    let mut one = Fleet::new(&[&ALL]);
    one.history(&ALL);
    quiet_history(&mut one, &["a2", "b2"]);
    outage(&mut one, &["a1", "b1"], &["a2", "b2"], 20);
    for s in ["a1", "b1"] {
        let r = one.of(s);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].externally_correlated, "{r:?}");
    }

    // Two instances that do not exchange summaries blame both deploys:
    // each sees one moderate witness, which is not an outage.
    let mut deaf = Fleet::new(&[&["a1", "a2"], &["b1", "b2"]]);
    deaf.silent = BTreeSet::from([0, 1]);
    deaf.history(&ALL);
    quiet_history(&mut deaf, &["a2", "b2"]);
    outage(&mut deaf, &["a1", "b1"], &["a2", "b2"], 20);
    for s in ["a1", "b1"] {
        let r = deaf.of(s);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(!r[0].externally_correlated, "{r:?}");
    }

    // Exchanging summaries, each instance sees the other's witness.
    let mut two = Fleet::new(&[&["a1", "a2"], &["b1", "b2"]]);
    two.history(&ALL);
    quiet_history(&mut two, &["a2", "b2"]);
    outage(&mut two, &["a1", "b1"], &["a2", "b2"], 20);
    for s in ["a1", "b1"] {
        let r = two.of(s);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].externally_correlated, "{r:?}");
        let evidence = r[0].correlation_evidence.as_deref().unwrap();
        assert!(
            evidence.contains("a2@a") && evidence.contains("b2@a"),
            "{evidence}"
        );
        // Same decision, same time as the single instance.
        assert_eq!(r[0].detected_at_ms, one.of(s)[0].detected_at_ms);
    }
}

#[test]
fn own_summaries_echoed_back_are_not_counted_twice() {
    // One instance reading its own summaries must decide exactly as
    // without the fleet topic: a single moderate witness stays one.
    let run = |fleet: bool| {
        let mut f = Fleet::new(&[&["a1", "a2"]]);
        if !fleet {
            f.cores[0] = Detector::new(DetectorConfig::default());
        }
        f.history(&["a1", "a2"]);
        quiet_history(&mut f, &["a2"]);
        outage(&mut f, &["a1"], &["a2"], 20);
        f.out.into_iter().map(|(r, _)| r).collect::<Vec<_>>()
    };
    let with_echo = run(true);
    assert_eq!(with_echo, run(false));
    assert_eq!(with_echo.len(), 1);
    assert!(!with_echo[0].externally_correlated);
}

#[test]
fn a_lagging_instance_is_waited_for_and_its_evidence_releases_the_regression() {
    // An outage whose error is new everywhere: when a's instance flags it
    // in a1, b's instance has not reported the minute yet, and nothing
    // tells a's that the error exists elsewhere: only waiting helps.
    let run = |owners: &[&[&'static str]], deaf: bool| {
        let mut f = Fleet::new(owners);
        if deaf {
            f.silent = (0..owners.len()).collect();
        }
        f.history(&["a1", "b1"]);
        f.feed("a1", deploy("a1", "b", "a", T0));
        for m in 0..12 {
            let t = T0 + m * MINUTE_MS;
            // a's instance reads each minute first; b's summaries of it
            // arrive after a's instance evaluated.
            f.feed("a1", traffic("a1", "b", 1000, t));
            f.feed("a1", sc("a1", "b", "upstream", 5, t + 1));
            f.feed("b1", traffic("b1", "a", 1000, t));
            f.feed("b1", sc("b1", "a", "upstream", 5, t + 1));
            f.exchange();
        }
        f
    };
    let two = run(&[&["a1"], &["b1"]], false);
    let r = two.of("a1");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].externally_correlated, "{r:?}");
    assert!(
        two.out
            .iter()
            .any(|(r, released)| r.service == "a1" && *released),
        "released by the lagging instance's summary"
    );
    // Same decision, same event time as one instance owning both.
    let one = run(&[&["a1", "b1"]], false);
    assert_eq!(r[0].detected_at_ms, one.of("a1")[0].detected_at_ms);
    // Without the summaries, a1's deploy is blamed.
    let deaf = run(&[&["a1"], &["b1"]], true);
    assert!(!deaf.of("a1")[0].externally_correlated);
}

#[test]
fn a_real_regression_is_not_held_forever_when_the_other_instance_is_silent() {
    let mut two = Fleet::new(&[&["a1"], &["b1"]]);
    two.history(&["a1", "b1"]);
    for d in [T0, T0 + 2 * HOUR_MS] {
        two.feed("a1", deploy("a1", &format!("r{d}"), "a", d));
        for m in 0..30 {
            if d == T0 && m == 2 {
                // b's instance crashes: it never publishes again.
                two.silent.insert(1);
            }
            let t = d + m * MINUTE_MS;
            two.feed("a1", traffic("a1", &format!("r{d}"), 1000, t));
            two.feed(
                "a1",
                sc("a1", &format!("r{d}"), &format!("bug{d}"), 5, t + 1),
            );
            two.feed("b1", traffic("b1", "a", 1000, t));
            two.exchange();
        }
    }
    let r = two.of("a1");
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r.iter().all(|r| !r.externally_correlated));
    // The first waited for the silent instance, at most fleet_wait_s.
    let wait = i64::from(DetectorConfig::default().fleet_wait_s) * 1_000;
    let first = r[0].detected_at_ms - T0;
    // Its detection time is the evaluation that flagged it (the data
    // decide it); the release waited for the silent instance.
    assert!(
        first >= MINUTE_MS && first <= 2 * MINUTE_MS + wait,
        "{first}"
    );
    // By the second, it is known to be down: not waited for.
    assert!(
        r[1].detected_at_ms - (T0 + 2 * HOUR_MS) <= MINUTE_MS,
        "{:?}",
        r[1]
    );
}

#[test]
fn other_instances_data_is_bounded_in_memory() {
    let mut two = Fleet::new(&[&["a1"], &["b1"]]);
    for m in 0..(3 * 24 * 60) {
        let t = m * MINUTE_MS;
        two.feed("a1", traffic("a1", "a", 1000, t));
        two.feed("b1", sc("b1", "a", &format!("e{}", m % 7), 1, t + 1));
        if m % 10 == 0 {
            two.exchange();
        }
    }
    let s = two.cores[0].stats();
    // 7 series: ≤ the guard's horizon (6 h + 1 h window + 1 h) in hours
    // plus the minutes of the last ~3 hours.
    assert!(s.fleet_buckets <= 7 * (8 + 3 * 60), "{s:?}");
    assert!(s.fleet_buckets > 0);
    assert_eq!(s.fleet_instances, 1);
}
