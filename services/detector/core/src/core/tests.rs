//! The core's behaviour end to end: events in, regressions out.

use super::*;
use selfheal_schemas::RateBasis;

pub(super) const T0: i64 = 10 * DAY_MS;

pub(super) fn sc(service: &str, rev: &str, sig: &str, count: i64, ts: i64) -> AnyEvent {
    AnyEvent::SignatureCount(SignatureCount {
        service: service.into(),
        revision: rev.into(),
        signature: sig.into(),
        template: format!("template {sig}"),
        exception_type: None,
        level: "error".into(),
        count,
        first_seen_ms: ts,
        last_seen_ms: ts,
        sample_message: "boom".into(),
        sample_stack: None,
        frames: vec![],
        trace_id: None,
    })
}

pub(super) fn traffic(service: &str, rev: &str, requests: i64, ts: i64) -> AnyEvent {
    AnyEvent::Traffic(Traffic {
        service: service.into(),
        revision: rev.into(),
        window_start_ms: ts,
        window_s: 60,
        requests,
        errors: None,
    })
}

pub(super) fn deploy(service: &str, rev: &str, prev: &str, ts: i64) -> AnyEvent {
    AnyEvent::Deploy(Deploy {
        service: service.into(),
        revision: rev.into(),
        previous_revision: Some(prev.into()),
        diff: None,
        deployed_at_ms: ts,
        ..selfheal_schemas::testing::deploy()
    })
}

/// A day of baseline for `service` at revision `a`: 1000 requests and
/// `rate` errors of signature `old` per minute.
pub(super) fn baseline(d: &mut Detector, service: &str, rate: i64) -> Vec<Regression> {
    let mut out = Vec::new();
    for m in 0..(24 * 60) {
        let t = T0 - DAY_MS + m * MINUTE_MS;
        out.extend(d.on_event(&traffic(service, "a", 1000, t)));
        if rate > 0 {
            out.extend(d.on_event(&sc(service, "a", "old", rate, t + 1)));
        }
    }
    out
}

/// Minutes after the deploy at revision `b`: traffic, `old` at `old_rate`,
/// `new` at `new_rate` per minute.
fn after(
    d: &mut Detector,
    service: &str,
    minutes: i64,
    old_rate: i64,
    new_rate: i64,
) -> Vec<Regression> {
    let mut out = Vec::new();
    for m in 0..minutes {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic(service, "b", 1000, t)));
        if old_rate > 0 {
            out.extend(d.on_event(&sc(service, "b", "old", old_rate, t + 1)));
        }
        if new_rate > 0 {
            out.extend(d.on_event(&sc(service, "b", "new", new_rate, t + 2)));
        }
    }
    out
}

fn detector() -> Detector {
    Detector::new(DetectorConfig::default())
}

#[test]
fn new_signature_is_flagged_within_minutes_of_the_deploy() {
    let mut d = detector();
    assert!(baseline(&mut d, "a", 2).is_empty());
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = after(&mut d, "a", 30, 2, 2);
    out.extend(d.flush());
    assert_eq!(out.len(), 1, "{out:?}");
    let r = &out[0];
    assert_eq!(r.kind, RegressionKind::New);
    assert_eq!(r.signature, "new");
    assert!(
        r.detected_at_ms - T0 <= 5 * MINUTE_MS,
        "latency {}",
        r.detected_at_ms - T0
    );
    assert_eq!(r.rate_basis, RateBasis::PerRequest);
    // `new_signature_min_count` (2): one stray line is never a regression.
    assert!(r.observed >= 2);
}

/// A never-seen error logged once after the deploy is not a regression,
/// however long the revision serves; its second occurrence within the watch
/// is (at 1,000 requests a minute and no error of its kind before).
#[test]
fn a_new_signature_needs_a_second_occurrence() {
    let mut d = detector();
    assert!(baseline(&mut d, "a", 2).is_empty());
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..60 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "b", 1000, t)));
        out.extend(d.on_event(&sc("a", "b", "old", 2, t + 1)));
        if m == 3 || (m == 40) {
            out.extend(d.on_event(&sc("a", "b", "new", 1, t + 2)));
        }
        if m < 40 {
            assert!(out.is_empty(), "one line flagged at minute {m}: {out:?}");
        }
    }
    out.extend(d.flush());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].observed, 2);
    assert_eq!(out[0].kind, RegressionKind::New);
}

/// GitHub and Argo CD deploys name no previous revision: the one that
/// served before is inferred (from traffic here, as no earlier deploy is
/// known), so the regression carries a rollback target.
#[test]
fn a_deploy_without_a_previous_revision_gets_the_one_that_served_before() {
    let mut d = detector();
    baseline(&mut d, "svc", 2);
    let AnyEvent::Deploy(mut dep) = deploy("svc", "b", "-", T0) else {
        unreachable!()
    };
    dep.previous_revision = None;
    d.on_event(&AnyEvent::Deploy(dep.clone()));
    let mut out = after(&mut d, "svc", 30, 2, 2);
    out.extend(d.flush());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].previous_revision.as_deref(), Some("a"));
    // A later deploy without one: the earlier deploy's revision.
    dep.revision = "c".into();
    dep.deployed_at_ms = T0 + 40 * MINUTE_MS;
    d.on_event(&AnyEvent::Deploy(dep));
    let svc = &d.services["svc"];
    let last = svc.deploys.last().expect("a deploy");
    assert_eq!(last.deploy.previous_revision.as_deref(), Some("b"));
}

/// Regression test: a deploy between minute boundaries was locked to
/// per-time rates at its first evaluation, before any minute of its own
/// traffic could exist, so per-request rates never applied to it.
#[test]
fn a_deploy_between_minute_boundaries_is_judged_per_request() {
    let mut d = detector();
    baseline(&mut d, "a", 2);
    let t0 = T0 + 37_000;
    d.on_event(&deploy("a", "b", "a", t0));
    let mut out = Vec::new();
    for m in 0..10 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "b", 1000, t)));
        out.extend(d.on_event(&sc("a", "b", "new", 5, t + 40_000)));
    }
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].rate_basis, RateBasis::PerRequest);
    assert!(out[0].requests.is_some());
    assert!(out[0].detected_at_ms - t0 <= 4 * MINUTE_MS);

    // A revision whose traffic is never reported falls back to per-time.
    let mut d = detector();
    baseline(&mut d, "a", 2);
    d.on_event(&deploy("a", "b", "a", t0));
    let mut out = Vec::new();
    for m in 0..12 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "a", 1000, t)));
        out.extend(d.on_event(&sc("a", "b", "new", 5, t + 40_000)));
    }
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].rate_basis, RateBasis::PerTime);
}

#[test]
fn a_spike_per_request_is_flagged_early_but_a_traffic_surge_is_not() {
    let mut d = detector();
    baseline(&mut d, "a", 2);
    d.on_event(&deploy("a", "b", "a", T0));
    let out = after(&mut d, "a", 20, 10, 0);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].kind, RegressionKind::Spike);
    assert!(out[0].rate_ratio > 3.0);
    assert!(out[0].q_value.unwrap() <= 0.05);
    assert!(out[0].detected_at_ms - T0 <= 5 * MINUTE_MS);

    // Same error rate per request with 5x traffic: no regression.
    let mut d = detector();
    baseline(&mut d, "s", 2);
    d.on_event(&deploy("s", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..60 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("s", "b", 5000, t)));
        out.extend(d.on_event(&sc("s", "b", "old", 10, t + 1)));
    }
    out.extend(d.flush());
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn the_simple_recipe_flags_the_traffic_surge_and_waits_an_hour() {
    let mut d = Detector::new(DetectorConfig::simple_recipe());
    baseline(&mut d, "s", 2);
    d.on_event(&deploy("s", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..70 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("s", "b", 5000, t)));
        out.extend(d.on_event(&sc("s", "b", "old", 10, t + 1)));
    }
    assert_eq!(
        out.len(),
        1,
        "per-time rates mistake a surge for a regression"
    );
    assert_eq!(out[0].detected_at_ms, T0 + 60 * MINUTE_MS);
}

#[test]
fn a_spike_carries_the_new_revisions_sample_not_the_baselines() {
    let mut d = detector();
    baseline(&mut d, "a", 2);
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..20 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "b", 1000, t)));
        let AnyEvent::SignatureCount(mut c) = sc("a", "b", "old", 10, t + 1) else {
            unreachable!()
        };
        c.sample_message = "boom on b".into();
        c.frames = vec![selfheal_schemas::Frame {
            file: "src/pricing.py".into(),
            line: Some(216),
            function: "quote".into(),
            in_app: true,
        }];
        out.extend(d.on_event(&AnyEvent::SignatureCount(c)));
        // The old revision's errors go on arriving (a canary's control).
        out.extend(d.on_event(&sc("a", "a", "old", 2, t + 2)));
    }
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].sample_message, "boom on b");
    assert_eq!(out[0].frames.len(), 1);
}

#[test]
fn unchanged_error_rate_is_not_a_regression() {
    let mut d = detector();
    baseline(&mut d, "a", 3);
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = after(&mut d, "a", 60, 3, 0);
    out.extend(d.flush());
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn upstream_outage_in_a_service_that_did_not_deploy_marks_it_external() {
    let mut d = detector();
    baseline(&mut d, "a", 1);
    baseline(&mut d, "other", 1);
    baseline(&mut d, "third", 1);
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..20 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "b", 1000, t)));
        out.extend(d.on_event(&traffic("other", "a", 1000, t)));
        out.extend(d.on_event(&traffic("third", "a", 1000, t)));
        // Same template in all three services ("template upstream").
        out.extend(d.on_event(&sc("a", "b", "upstream", 5, t + 1)));
        out.extend(d.on_event(&sc("other", "a", "upstream", 5, t + 1)));
        out.extend(d.on_event(&sc("third", "a", "upstream", 5, t + 1)));
    }
    let r: Vec<_> = out.iter().filter(|r| r.service == "a").collect();
    assert_eq!(r.len(), 1, "{out:?}");
    assert!(r[0].externally_correlated);
    assert!(r[0]
        .correlation_evidence
        .as_deref()
        .unwrap()
        .contains("third@a"));
    assert!(r[0]
        .correlation_evidence
        .as_deref()
        .unwrap()
        .contains("other@a"));
}

/// A dependency failure that began before the deploy and escalated after
/// it (×4 over the pre-deploy rate, beyond the slow-burn margin of ×3) is
/// an outage in progress, not the deploy's; the same escalation of an error
/// without a dependency cue stays attributed.
#[test]
fn a_dependency_failure_escalating_from_before_the_deploy_is_external() {
    let timeout = |rev: &str, sig: &str, count: i64, ts: i64| {
        let AnyEvent::SignatureCount(mut c) = sc("a", rev, sig, count, ts) else {
            unreachable!()
        };
        if sig == "dep" {
            c.template = "Timeout after <*>ms calling payments-api".into();
            c.sample_message = "Timeout after 3001ms calling payments-api".into();
        }
        AnyEvent::SignatureCount(c)
    };
    for (sig, external) in [("dep", true), ("plain", false)] {
        let mut d = detector();
        for m in 0..(24 * 60) {
            let t = T0 - DAY_MS + m * MINUTE_MS;
            d.on_event(&traffic("a", "a", 1000, t));
            // 1 an hour as the baseline, 10 a minute in the half hour before.
            let n = if m >= 24 * 60 - 30 {
                10
            } else {
                i64::from(m % 60 == 0)
            };
            if n > 0 {
                d.on_event(&timeout("a", sig, n, t + 1));
            }
        }
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..20 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("a", "b", 1000, t)));
            out.extend(d.on_event(&timeout("b", sig, 40, t + 1)));
        }
        out.extend(d.flush());
        assert!(!out.is_empty(), "{sig}: flagged");
        assert_eq!(out[0].externally_correlated, external, "{sig}: {out:?}");
        if external {
            let why = out[0].correlation_evidence.as_deref().unwrap_or_default();
            assert!(why.contains("kept escalating"), "{why}");
        }
    }
}

#[test]
fn one_other_service_with_a_moderate_rise_of_the_same_error_is_not_an_outage() {
    let mut d = detector();
    baseline(&mut d, "a", 1);
    baseline(&mut d, "other", 1);
    // "other" has had the error all along, once a minute.
    for m in 0..(6 * 60) {
        d.on_event(&sc(
            "other",
            "a",
            "upstream",
            1,
            T0 - 6 * HOUR_MS + m * MINUTE_MS + 1,
        ));
    }
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..20 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "b", 1000, t)));
        out.extend(d.on_event(&traffic("other", "a", 1000, t)));
        out.extend(d.on_event(&sc("a", "b", "upstream", 5, t + 1)));
        // A 4x rise in one other service: noticeable, not overwhelming.
        out.extend(d.on_event(&sc("other", "a", "upstream", 4, t + 1)));
    }
    let r: Vec<_> = out.iter().filter(|r| r.service == "a").collect();
    assert_eq!(r.len(), 1, "{out:?}");
    assert!(
        !r[0].externally_correlated,
        "a single moderate coincidence is attributed: {r:?}"
    );
}

#[test]
fn canary_is_compared_with_the_live_previous_revision() {
    let mut d = detector();
    baseline(&mut d, "a", 2);
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..30 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "a", 900, t)));
        out.extend(d.on_event(&traffic("a", "b", 100, t)));
        out.extend(d.on_event(&sc("a", "a", "old", 2, t + 1)));
        out.extend(d.on_event(&sc("a", "b", "old", 2, t + 1)));
    }
    // b's per-request rate is 10x a's (2 per 100 vs 2 per 900 + history).
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].revision, "b");
    assert_eq!(out[0].kind, RegressionKind::Spike);
}

#[test]
fn counts_read_after_the_watermark_passed_still_flag_the_deploy() {
    // All traffic (and so the watermark) arrives before the errors, as when
    // a consumer drains the traffic topic first; no event follows.
    let mut d = detector();
    baseline(&mut d, "a", 1);
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..12 {
        out.extend(d.on_event(&traffic("a", "b", 1000, T0 + m * MINUTE_MS)));
    }
    assert!(out.is_empty());
    let out = d.on_event(&sc("a", "b", "new", 6, T0 + MINUTE_MS + 11_000));
    assert_eq!(out.len(), 1, "late counts re-run the latest evaluation");
    assert_eq!(out[0].kind, RegressionKind::New);
    assert_eq!(out[0].detected_at_ms, T0 + 2 * MINUTE_MS, "as if on time");
}

#[test]
fn baseline_read_after_the_deploy_window_still_counts() {
    // The deployed revision's data first, the history last.
    let mut d = detector();
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = after(&mut d, "a", 12, 0, 2);
    assert!(out.is_empty(), "no history yet: nothing to compare with");
    out.extend(baseline(&mut d, "a", 1));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].detected_at_ms - T0 <= 3 * MINUTE_MS);
}

#[test]
fn late_events_count_and_ancient_ones_are_reported() {
    let mut d = detector();
    baseline(&mut d, "a", 1);
    d.on_event(&sc("a", "a", "old", 1, T0 - 30 * MINUTE_MS));
    assert_eq!(d.stats().late, 1);
    d.on_event(&sc("a", "a", "old", 1, T0 - 30 * DAY_MS));
    assert_eq!(d.stats().beyond_horizon, 1);
}

#[test]
fn a_restored_snapshot_continues_exactly_like_the_uninterrupted_run() {
    // Uninterrupted.
    let mut a = detector();
    baseline(&mut a, "a", 1);
    a.on_event(&deploy("a", "b", "a", T0));
    let mut want = after(&mut a, "a", 3, 1, 0);
    want.extend(after(&mut a, "a", 20, 0, 2));
    // Same input, the state passed through a serialized snapshot midway.
    let mut b = detector();
    baseline(&mut b, "a", 1);
    b.on_event(&deploy("a", "b", "a", T0));
    let mut got = after(&mut b, "a", 3, 1, 0);
    let touched = b.take_touched();
    assert!(touched.contains("a"));
    let json = serde_json::to_string(&b.snapshot("a").unwrap()).unwrap();
    let mut c = detector();
    c.restore(serde_json::from_str(&json).unwrap());
    got.extend(after(&mut c, "a", 20, 0, 2));
    assert_eq!(got, want);
    assert_eq!(got.len(), 1);
    // Emitted ids survive: replaying the same minutes emits nothing new.
    let json = serde_json::to_string(&c.snapshot("a").unwrap()).unwrap();
    let mut d = detector();
    d.restore(serde_json::from_str(&json).unwrap());
    assert!(after(&mut d, "a", 20, 0, 2).is_empty());
}

#[test]
fn failed_build_is_a_regression_at_once_and_only_once() {
    let mut d = detector();
    let b = AnyEvent::Build(Build {
        service: "a".into(),
        revision: "r3".into(),
        status: BuildStatus::Failed,
        log_excerpt: Some("error[E0425]: cannot find value `x`\nmore".into()),
        finished_at_ms: 7,
    });
    let out = d.on_event(&b);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, RegressionKind::BuildFailure);
    assert_eq!(out[0].sample_message, "error[E0425]: cannot find value `x`");
    assert!(d.on_event(&b).is_empty());
}

/// A count of signature `sig` with `template` and in-app `function`.
fn sc_t(sig: &str, template: &str, function: &str, rev: &str, count: i64, ts: i64) -> AnyEvent {
    let AnyEvent::SignatureCount(mut c) = sc("a", rev, sig, count, ts) else {
        unreachable!()
    };
    c.template = template.into();
    c.frames = vec![selfheal_schemas::Frame {
        file: "app/auth.py".into(),
        line: Some(10),
        function: function.into(),
        in_app: true,
    }];
    AnyEvent::SignatureCount(c)
}

#[test]
fn a_group_renamed_by_ingest_is_not_a_new_signature() {
    // Before the deploy ingest called the group `g1` ("Invalid user <*>
    // from <*>"); after a restart it founded it again from "carol" as
    // `g2`, at the same rate. Not new. A same-looking message from
    // another function, or another message, is new.
    let mut d = detector();
    for m in 0..(24 * 60) {
        let t = T0 - DAY_MS + m * MINUTE_MS;
        d.on_event(&traffic("a", "a", 1000, t));
        d.on_event(&sc_t(
            "g1",
            "Invalid user <*> from <*>",
            "login",
            "a",
            4,
            t + 1,
        ));
    }
    d.on_event(&deploy("a", "b", "a", T0));
    let mut out = Vec::new();
    for m in 0..30 {
        let t = T0 + m * MINUTE_MS;
        out.extend(d.on_event(&traffic("a", "b", 1000, t)));
        let renamed = sc_t("g2", "Invalid user carol from <*>", "login", "b", 4, t + 1);
        out.extend(d.on_event(&renamed));
        let elsewhere = sc_t("g3", "Invalid user carol from <*>", "signup", "b", 4, t + 1);
        out.extend(d.on_event(&elsewhere));
        out.extend(d.on_event(&sc_t(
            "g4",
            "Invalid token from <*>",
            "login",
            "b",
            4,
            t + 1,
        )));
    }
    let flagged: BTreeSet<&str> = out.iter().map(|r| r.signature.as_str()).collect();
    assert_eq!(flagged, BTreeSet::from(["g3", "g4"]), "{out:?}");
}

#[test]
fn held_candidates_that_can_no_longer_be_emitted_are_forgotten() {
    let mut d = detector();
    baseline(&mut d, "a", 1);
    let svc = d.services.get_mut("a").unwrap();
    // Flagged and held for the guard a day ago, then back below the
    // thresholds: its window is long closed. And one held just now.
    svc.held.insert("stale".into(), T0 - DAY_MS);
    svc.held.insert("recent".into(), T0);
    for m in 0..90 {
        d.on_event(&traffic("a", "a", 1000, T0 + m * MINUTE_MS));
    }
    let held = &d.services["a"].held;
    assert!(!held.contains_key("stale"), "{held:?}");
    assert!(held.contains_key("recent"), "{held:?}");
}

#[test]
fn state_stays_bounded_over_weeks() {
    let mut d = detector();
    for m in 0..(14 * 24 * 60) {
        let t = m * MINUTE_MS;
        d.on_event(&traffic("a", "a", 1000, t));
        d.on_event(&sc("a", "a", "old", 1, t + 1));
    }
    let s = d.stats();
    // Per series (2 here): ≤ 7 days + window + 1 h of hour buckets, and the
    // minutes of the window and the last ~3 hours (compaction runs hourly).
    let window_h = i64::from(DetectorConfig::default().window_minutes) / 60;
    let bound = 2 * (7 * 24 + window_h + 1 + (window_h + 3) * 60);
    assert!(s.buckets as i64 <= bound, "{s:?} > {bound}");
}
