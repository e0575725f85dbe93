//! The golden-signal stage end to end through [`Detector::on_event`].

use crate::config::DetectorConfig;
use selfheal_schemas::{AnyEvent, Deploy, LatencyHistogram, Regression, RegressionKind, Traffic};

use crate::core::Detector;

const MIN: i64 = 60_000;
const T0: i64 = 1_773_000_000_000 - 1_773_000_000_000 % (60 * MIN) + 2 * 86_400_000;
const BOUNDS: [f64; 8] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Requests per minute in the buckets: a body around 25–50 ms, 1% above 250 ms.
fn normal(n: i64) -> Vec<i64> {
    let slow = n / 100;
    let mid = n / 20;
    vec![0, n / 5, n - n / 5 - mid - slow, mid, slow, 0, 0, 0, 0]
}

fn hist(service: &str, rev: &str, t: i64, counts: Vec<i64>) -> AnyEvent {
    AnyEvent::LatencyHistogram(LatencyHistogram {
        service: service.into(),
        revision: rev.into(),
        metric: "http.server.request.duration".into(),
        unit: "s".into(),
        route: Some("/quote".into()),
        window_start_ms: t,
        window_s: 60,
        bounds: BOUNDS.to_vec(),
        counts,
        sum: None,
    })
}

fn traffic(service: &str, rev: &str, t: i64, requests: i64, errors: i64) -> AnyEvent {
    AnyEvent::Traffic(Traffic {
        service: service.into(),
        revision: rev.into(),
        window_start_ms: t,
        window_s: 60,
        requests,
        errors: Some(errors),
    })
}

/// Two days of service `a` (and a quiet `b`), a deploy of `a` at T0, then an
/// hour in which `after(minute)` gives a's new revision's (histogram,
/// requests, errors) and `b_after` b's histogram.
fn run(
    after: impl Fn(i64) -> (Vec<i64>, i64, i64),
    b_after: impl Fn(i64) -> Vec<i64>,
) -> Vec<Regression> {
    let mut config = DetectorConfig::default();
    config.golden.enabled = true;
    let mut d = Detector::new(config);
    let mut out = Vec::new();
    let start = T0 - 2 * 86_400_000;
    let mut t = start;
    while t < T0 + 60 * MIN {
        let m = (t - T0) / MIN;
        let (rev, counts, req, err) = if t < T0 {
            ("old", normal(1000), 1000, 2)
        } else {
            let (c, r, e) = after(m);
            ("new", c, r, e)
        };
        out.extend(d.on_event(&traffic("a", rev, t, req, err)));
        out.extend(d.on_event(&hist("a", rev, t, counts)));
        let b = if t < T0 { normal(1000) } else { b_after(m) };
        out.extend(d.on_event(&traffic("b", "b1", t, 1000, 2)));
        out.extend(d.on_event(&hist("b", "b1", t, b)));
        if t + MIN == T0 {
            out.extend(d.on_event(&AnyEvent::Deploy(Deploy {
                service: "a".into(),
                revision: "new".into(),
                previous_revision: Some("old".into()),
                diff: None,
                deployed_at_ms: T0,
                ..selfheal_schemas::testing::deploy()
            })));
        }
        t += MIN;
    }
    out.extend(d.flush());
    out
}

fn slow_tail(n: i64) -> Vec<i64> {
    // The slowest 3% now take 0.5–1 s (p99 ×3); the body is unchanged.
    let mut c = normal(n);
    c[4] = 0;
    c[6] = n * 3 / 100;
    c[2] -= n * 2 / 100;
    c
}

#[test]
fn a_tail_only_latency_regression_is_found_within_minutes() {
    let out = run(|_| (slow_tail(1000), 1000, 2), |_| normal(1000));
    let lat: Vec<_> = out
        .iter()
        .filter(|r| r.kind == RegressionKind::Latency)
        .collect();
    assert_eq!(lat.len(), 1, "{out:#?}");
    let r = lat[0];
    assert!(!r.externally_correlated, "{r:#?}");
    assert!(
        r.detected_at_ms - T0 <= 5 * MIN,
        "{}",
        r.detected_at_ms - T0
    );
    let m = r.metric.as_ref().expect("metric");
    assert_eq!(m.route.as_deref(), Some("/quote"));
    assert!(m.observed_value > 1.5 * m.expected_value, "{m:?}");
}

#[test]
fn a_clean_deploy_gives_nothing() {
    let out = run(|_| (normal(1000), 1000, 2), |_| normal(1000));
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn server_errors_without_a_log_line_are_an_error_rate_regression() {
    let out = run(|_| (normal(1000), 1000, 30), |_| normal(1000));
    let e: Vec<_> = out
        .iter()
        .filter(|r| r.kind == RegressionKind::ErrorRate)
        .collect();
    assert_eq!(e.len(), 1, "{out:#?}");
    assert!(!e[0].externally_correlated);
    let m = e[0].metric.as_ref().expect("metric");
    assert!(m.observed_value > 0.02 && m.expected_value < 0.005, "{m:?}");
}

#[test]
fn a_slowdown_shared_with_a_service_that_did_not_deploy_is_external() {
    // A dependency slows both a (just deployed) and b, from minute 6 on.
    let out = run(
        |m| {
            let c = if m >= 6 {
                slow_tail(1000)
            } else {
                normal(1000)
            };
            (c, 1000, 2)
        },
        |m| {
            if m >= 6 {
                slow_tail(1000)
            } else {
                normal(1000)
            }
        },
    );
    let lat: Vec<_> = out
        .iter()
        .filter(|r| r.kind == RegressionKind::Latency)
        .collect();
    assert!(!lat.is_empty(), "{out:#?}");
    assert!(lat.iter().all(|r| r.externally_correlated), "{lat:#?}");
    assert!(lat[0]
        .external_cues
        .iter()
        .any(|c| c.starts_with("aligned:")));
}

#[test]
fn latency_that_rises_with_a_traffic_surge_is_a_load_effect() {
    let out = run(
        |m| {
            if m >= 4 {
                (slow_tail(3000), 3000, 6)
            } else {
                (normal(1000), 1000, 2)
            }
        },
        |_| normal(1000),
    );
    let lat: Vec<_> = out
        .iter()
        .filter(|r| r.kind == RegressionKind::Latency)
        .collect();
    assert!(!lat.is_empty(), "{out:#?}");
    assert!(lat.iter().all(|r| r.externally_correlated), "{lat:#?}");
    assert!(lat[0].external_cues.iter().any(|c| c == "traffic_surge"));
}
