//! The golden profile's records follow the contract, its truth is
//! consistent, and a seed gives the same bytes twice.

use std::collections::BTreeMap;

use super::super::{Profile, SimArgs, Truth};
use super::latency::BOUNDS;

fn run(seed: u64) -> (String, Vec<Truth>) {
    let args = SimArgs {
        services: 6,
        days: 4.0,
        seed,
        deploy_every_hours: 6.0,
        profile: Profile::Golden,
    };
    let (mut out, mut truth) = (Vec::new(), Vec::new());
    super::simulate(&args, &mut out, &mut truth).unwrap();
    let truth = String::from_utf8(truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (String::from_utf8(out).unwrap(), truth)
}

#[test]
fn deterministic_per_seed_and_different_across_seeds() {
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(a.0, run(2).0);
}

#[test]
fn records_follow_the_contract() {
    let (text, _) = run(3);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    // One revision per instance (one series per instance).
    let mut instance_rev: BTreeMap<String, String> = BTreeMap::new();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let ty = v["type"].as_str().unwrap_or("log").to_owned();
        assert!(v["ts"].is_i64(), "{l}");
        match ty.as_str() {
            "histogram" => {
                let b: Vec<f64> = serde_json::from_value(v["bounds"].clone()).unwrap();
                let c: Vec<u64> = serde_json::from_value(v["counts"].clone()).unwrap();
                assert_eq!(b, BOUNDS);
                assert_eq!(c.len(), b.len() + 1);
                assert!(b.windows(2).all(|w| w[0] < w[1]));
                assert!(c.iter().sum::<u64>() > 0);
                assert!(v["sum"].as_f64().unwrap() >= 0.0);
                assert!(v["attributes"]["http.route"].is_string());
                assert_eq!(v["metric"], "http.server.request.duration");
            }
            "traffic" => {
                let (r, e) = (
                    v["requests"].as_u64().unwrap(),
                    v["errors"].as_u64().unwrap(),
                );
                assert!(e <= r, "{l}");
                assert_eq!(v["window_s"], 60);
            }
            "gauge" => {
                let x = v["value"].as_f64().unwrap();
                match v["metric"].as_str().unwrap() {
                    "process.memory.usage" => assert!(x > 0.0 && v["unit"] == "By"),
                    "process.cpu.utilization" => assert!((0.0..=1.0).contains(&x)),
                    m => panic!("unexpected metric {m}"),
                }
                let inst = v["instance"].as_str().unwrap().to_owned();
                let rev = v["revision"].as_str().unwrap().to_owned();
                assert_eq!(instance_rev.entry(inst).or_insert(rev.clone()), &rev);
            }
            "deploy" => assert!(v["diff"].as_str().unwrap().starts_with("diff --git")),
            other => panic!("unexpected record type {other}: {l}"),
        }
        *kinds.entry(ty).or_default() += 1;
    }
    for k in ["histogram", "traffic", "gauge", "deploy"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k}: {kinds:?}");
    }
}

#[test]
fn truth_is_consistent_with_labels_and_the_deploy_window() {
    let mut all = Vec::new();
    for seed in 1..=3 {
        all.extend(run(seed).1);
    }
    let start = 1_772_323_200_000i64;
    let mut labels: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &all {
        *labels.entry(t.label.as_str()).or_default() += 1;
        // 4 days: deploys only in the last three.
        assert!(t.deployed_at_ms >= start + 86_400_000, "{t:?}");
        match t.label.as_str() {
            "clean" => assert!(t.signals.is_empty() && t.magnitude.is_none()),
            l => {
                let own = match l {
                    "culprit_latency" => "latency",
                    "culprit_error_rate" => "error_rate",
                    "culprit_saturation" => "saturation",
                    _ => panic!("label {l}"),
                };
                assert_eq!(t.signals[0], own, "{t:?}");
                assert!(t.magnitude.is_some_and(|m| m > 1.0), "{t:?}");
                assert_eq!(t.route.is_some(), own == "latency", "{t:?}");
                assert!(t.bug_kind.is_some() && t.culprit_file.is_some());
            }
        }
    }
    for l in [
        "clean",
        "culprit_latency",
        "culprit_error_rate",
        "culprit_saturation",
    ] {
        assert!(labels.get(l).copied().unwrap_or(0) > 0, "{labels:?}");
    }
}

#[test]
fn a_deploy_starts_new_instances_and_a_rollout_runs_both_revisions() {
    let (text, truth) = run(4);
    let rolled = truth
        .iter()
        .find(|t| {
            t.confounders
                .iter()
                .any(|c| c == "rolling" || c == "canary")
        })
        .expect("a rollout");
    let minute = |ts: i64| ts - ts.rem_euclid(60_000);
    let at = minute(rolled.deployed_at_ms) + 2 * 60_000;
    let revs: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|l| l.contains(r#""type":"traffic""#))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["service"] == rolled.service.as_str() && v["ts"] == at)
        .map(|v| v["revision"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(revs.len(), 2, "{revs:?} at {at}");
}
