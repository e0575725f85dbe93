//! The event contract: every type matches its `.avsc` file, every file is
//! documented, the wire format is the Avro spec's single-object encoding, and
//! no input makes the decoder panic.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use apache_avro::rabin::Rabin;
use apache_avro::Schema;
use selfheal_schemas::{
    decode, decode_any, encode, schema_files, Action, ActionKind, ActionStatus, AnyEvent, Build,
    BuildStatus, DeadLetter, Decision, Deploy, Error, Event, Evidence, Frame, InstanceGauge,
    LatencyHistogram, Localization, MetricDetail, RateBasis, Regression, RegressionKind,
    SignatureCount, Traffic, Verdict,
};
use serde_json::Value as Json;

// ---------------------------------------------------------------------------
// Values: every event with every optional field set, and with none set.

fn frames() -> Vec<Frame> {
    vec![
        Frame {
            file: "/app/src/checkout/pricing.py".into(),
            line: Some(217),
            function: "quote".into(),
            in_app: true,
        },
        Frame {
            file: "/usr/lib/python3.12/http/client.py".into(),
            line: None,
            function: String::new(),
            in_app: false,
        },
    ]
}

fn signature_count(full: bool) -> SignatureCount {
    SignatureCount {
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        signature: "9f86d081884c7d65".into(),
        template: "Timeout after <num>ms calling payments-api (request_id=<id>)".into(),
        exception_type: full.then(|| "TimeoutError".into()),
        level: "error".into(),
        count: 42,
        first_seen_ms: 1_773_050_403_120,
        last_seen_ms: 1_773_050_460_000,
        sample_message: "Timeout after 3001ms calling payments-api (request_id=…) ✓".into(),
        sample_stack: full.then(|| "Traceback (most recent call last):\n  File …".into()),
        frames: if full { frames() } else { Vec::new() },
        trace_id: full.then(|| "4bf92f3577b34da6a3ce929d0e0e4736".into()),
    }
}

fn traffic() -> Traffic {
    Traffic {
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        window_start_ms: 1_773_050_400_000,
        window_s: 60,
        requests: 8105,
        errors: None,
    }
}

fn deploy(full: bool) -> Deploy {
    Deploy {
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        previous_revision: full.then(|| "99f0e1a".into()),
        repo: full.then(|| "git@example.com:shop/checkout.git".into()),
        commit_range: full.then(|| "99f0e1a..a1b2c3d".into()),
        diff: full.then(|| "--- a/src/pricing.py\n+++ b/src/pricing.py\n@@ -1 +1 @@\n".into()),
        diff_url: full.then(|| "https://example.invalid/diff".into()),
        deployed_at_ms: 1_773_050_400_000,
    }
}

fn build(full: bool) -> Build {
    Build {
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        status: if full {
            BuildStatus::Failed
        } else {
            BuildStatus::Succeeded
        },
        log_excerpt: full.then(|| "error[E0425]: cannot find value `x`".into()),
        finished_at_ms: 1_773_050_280_000,
    }
}

fn regression(full: bool) -> Regression {
    Regression {
        id: "reg-1".into(),
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        previous_revision: full.then(|| "99f0e1a".into()),
        kind: if full {
            RegressionKind::BuildFailure
        } else {
            RegressionKind::Spike
        },
        signature: "9f86d081884c7d65".into(),
        template: "Timeout after <num>ms".into(),
        exception_type: full.then(|| "TimeoutError".into()),
        detected_at_ms: 1_773_050_700_000,
        deployed_at_ms: full.then_some(1_773_050_400_000),
        window_start_ms: 1_773_050_400_000,
        window_end_ms: 1_773_050_700_000,
        observed: 57,
        expected: 1.25,
        rate_ratio: 45.6,
        p_value: 1e-12,
        q_value: full.then_some(3.5e-11),
        requests: full.then_some(40_000),
        baseline_requests: full.then_some(1_200_000),
        rate_basis: if full {
            RateBasis::PerRequest
        } else {
            RateBasis::PerTime
        },
        externally_correlated: full,
        correlation_evidence: full.then(|| "also rose in cart@77aa01 (not deployed)".into()),
        sample_message: "Timeout after 3001ms".into(),
        sample_stack: full.then(|| "Traceback …".into()),
        frames: if full { frames() } else { Vec::new() },
        onset_ms: full.then_some(1_773_050_460_000),
        external_cues: if full {
            vec!["dependency:timeout".into(), "upstream:payments-api".into()]
        } else {
            Vec::new()
        },
        hold_remediation_until_ms: full.then_some(1_773_051_300_000),
        metric: full.then(|| MetricDetail {
            name: "http.server.request.duration".into(),
            unit: "s".into(),
            route: Some("/quote".into()),
            quantile: Some(0.99),
            observed_value: 1.25,
            expected_value: 0.31,
            instances: vec!["checkout-7f9c-x2".into()],
            quantiles: vec![selfheal_schemas::QuantileValue {
                quantile: 0.99,
                observed_value: 1.25,
                expected_value: 0.31,
            }],
            threshold_value: None,
        }),
    }
}

fn latency_histogram(full: bool) -> LatencyHistogram {
    LatencyHistogram {
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        metric: "http.server.request.duration".into(),
        unit: "s".into(),
        route: full.then(|| "/quote".into()),
        window_start_ms: 1_773_050_400_000,
        window_s: 60,
        bounds: vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0],
        counts: vec![0, 3, 40, 900, 300, 20, 4, 1, 0],
        sum: full.then_some(123.4),
    }
}

fn instance_gauge() -> InstanceGauge {
    InstanceGauge {
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        instance: "checkout-7f9c-x2".into(),
        metric: "process.memory.usage".into(),
        unit: "By".into(),
        ts_ms: 1_773_050_400_000,
        value: 734_003_200.0,
    }
}

fn verdict(full: bool) -> Verdict {
    Verdict {
        id: "ver-1".into(),
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        blamed_revision: full.then(|| "a1b2c3d".into()),
        decision: if full {
            Decision::Caused
        } else {
            Decision::Inconclusive
        },
        confidence: 0.93,
        reasoning: "The timeout was lowered in pricing.py:217.".into(),
        evidence: if full {
            vec![
                Evidence {
                    file: "src/checkout/pricing.py".into(),
                    line: Some(217),
                    hunk_header: Some("@@ -210,7 +210,9 @@ def quote(".into()),
                    frame: Some("src/checkout/pricing.py:217 in quote".into()),
                    token: Some("PAYMENTS_TIMEOUT_MS".into()),
                    strength: "strong".into(),
                },
                Evidence {
                    file: "config/app.yaml".into(),
                    line: None,
                    hunk_header: None,
                    frame: None,
                    token: None,
                    strength: "weak".into(),
                },
            ]
        } else {
            Vec::new()
        },
        signatures: if full {
            vec!["9f86d081884c7d65".into()]
        } else {
            Vec::new()
        },
        regression_ids: if full {
            vec!["reg-1".into(), "reg-2".into()]
        } else {
            Vec::new()
        },
        file_classes: if full {
            vec!["code".into(), "config".into()]
        } else {
            Vec::new()
        },
        decided_at_ms: 1_773_050_700_000,
        adjudicator: "rules".into(),
        incident_id: full.then(|| "inc-1".into()),
        incident_seq: if full { 2 } else { 0 },
        localization: full.then_some(Localization::Function),
    }
}

fn action(full: bool) -> Action {
    Action {
        id: "act-1".into(),
        service: "checkout".into(),
        revision: "a1b2c3d".into(),
        action: if full {
            ActionKind::FixForward
        } else {
            ActionKind::None
        },
        status: if full {
            ActionStatus::RecoveryVerified
        } else {
            ActionStatus::DryRun
        },
        rule: "caused-high-confidence".into(),
        reasons: if full {
            vec!["verdict caused with confidence 0.93".into()]
        } else {
            Vec::new()
        },
        executor: full.then(|| "github-agent".into()),
        target_revision: full.then(|| "99f0e1a".into()),
        pr_url: full.then(|| "https://example.invalid/pr/1".into()),
        recovery_verified: full.then_some(true),
        signatures: if full {
            vec!["9f86d081884c7d65".into()]
        } else {
            Vec::new()
        },
        verdict_id: full.then(|| "ver-1".into()),
        decided_at_ms: 1_773_050_760_000,
        incident_id: full.then(|| "inc-1".into()),
    }
}

fn dead_letter(full: bool) -> DeadLetter {
    DeadLetter {
        source_topic: "selfheal.signatures".into(),
        partition: 3,
        offset: 1_234_567,
        key: full.then(|| b"checkout".to_vec()),
        // Not UTF-8 on purpose: payloads are raw bytes.
        payload: if full {
            vec![0xC3, 0x01, 0xFF, 0x00, 0x80, 0xFE]
        } else {
            Vec::new()
        },
        reason: "bad marker".into(),
        error_kind: "poison".into(),
        stage: "detector".into(),
        failed_at_ms: 1_773_050_400_001,
    }
}

/// Every event, each with all optional fields set and with none set.
fn all_events() -> Vec<AnyEvent> {
    let mut events = vec![
        AnyEvent::Traffic(traffic()),
        AnyEvent::InstanceGauge(instance_gauge()),
    ];
    for full in [true, false] {
        events.extend([
            AnyEvent::LatencyHistogram(latency_histogram(full)),
            AnyEvent::SignatureCount(signature_count(full)),
            AnyEvent::Deploy(deploy(full)),
            AnyEvent::Build(build(full)),
            AnyEvent::Regression(regression(full)),
            AnyEvent::Verdict(verdict(full)),
            AnyEvent::Action(action(full)),
            AnyEvent::DeadLetter(dead_letter(full)),
        ]);
    }
    events
}

fn encode_any(event: &AnyEvent) -> Vec<u8> {
    match event {
        AnyEvent::SignatureCount(e) => encode(e),
        AnyEvent::Traffic(e) => encode(e),
        AnyEvent::Deploy(e) => encode(e),
        AnyEvent::Build(e) => encode(e),
        AnyEvent::Regression(e) => encode(e),
        AnyEvent::Verdict(e) => encode(e),
        AnyEvent::Action(e) => encode(e),
        AnyEvent::DeadLetter(e) => encode(e),
        AnyEvent::LatencyHistogram(e) => encode(e),
        AnyEvent::InstanceGauge(e) => encode(e),
    }
    .expect("encode")
}

// ---------------------------------------------------------------------------
// Round trips.

fn round_trip<E: Event + PartialEq>(event: &E) {
    let bytes = encode(event).expect("encode");
    assert_eq!(bytes[..2], [0xC3, 0x01]);
    assert_eq!(bytes[2..10], E::fingerprint());
    assert_eq!(&decode::<E>(&bytes).expect("decode"), event);
}

#[test]
fn every_event_round_trips_with_and_without_optional_fields() {
    round_trip(&traffic());
    round_trip(&Traffic {
        errors: Some(37),
        ..traffic()
    });
    round_trip(&instance_gauge());
    for full in [true, false] {
        round_trip(&latency_histogram(full));
        round_trip(&signature_count(full));
        round_trip(&deploy(full));
        round_trip(&build(full));
        round_trip(&regression(full));
        round_trip(&verdict(full));
        round_trip(&action(full));
        round_trip(&dead_letter(full));
    }
}

#[test]
fn every_enum_symbol_round_trips() {
    for status in [BuildStatus::Succeeded, BuildStatus::Failed] {
        round_trip(&Build {
            status,
            ..build(true)
        });
    }
    for kind in [
        RegressionKind::New,
        RegressionKind::Spike,
        RegressionKind::BuildFailure,
    ] {
        for rate_basis in [RateBasis::PerRequest, RateBasis::PerTime] {
            round_trip(&Regression {
                kind,
                rate_basis,
                ..regression(true)
            });
        }
    }
    for decision in [
        Decision::Caused,
        Decision::NotCaused,
        Decision::Inconclusive,
    ] {
        round_trip(&Verdict {
            decision,
            ..verdict(true)
        });
    }
    for localization in [
        Localization::Line,
        Localization::Function,
        Localization::File,
        Localization::None,
    ] {
        round_trip(&Verdict {
            localization: Some(localization),
            ..verdict(true)
        });
    }
    for kind in [
        ActionKind::Rollback,
        ActionKind::FixForward,
        ActionKind::Notify,
        ActionKind::None,
    ] {
        for status in [
            ActionStatus::Planned,
            ActionStatus::DryRun,
            ActionStatus::InProgress,
            ActionStatus::Succeeded,
            ActionStatus::Failed,
            ActionStatus::RecoveryVerified,
            ActionStatus::RecoveryFailed,
        ] {
            round_trip(&Action {
                action: kind,
                status,
                ..action(true)
            });
        }
    }
}

#[test]
fn extreme_values_round_trip() {
    round_trip(&Traffic {
        service: String::new(),
        revision: "ünïcødé 🚀".into(),
        window_start_ms: i64::MIN,
        window_s: i32::MAX,
        requests: i64::MAX,
        errors: None,
    });
    round_trip(&Regression {
        expected: f64::INFINITY,
        rate_ratio: f64::MAX,
        p_value: 0.0,
        q_value: Some(f64::MIN_POSITIVE),
        ..regression(true)
    });
    let big = DeadLetter {
        payload: (0..=255u8).cycle().take(100_000).collect(),
        ..dead_letter(true)
    };
    round_trip(&big);
}

#[test]
fn decode_any_picks_the_event_by_fingerprint() {
    for event in all_events() {
        let bytes = encode_any(&event);
        let decoded = decode_any(&bytes).expect("decode_any");
        assert_eq!(decoded, event);
        assert_eq!(decoded.name(), event.name());
    }
}

#[test]
fn keys_are_the_service_or_the_source_topic() {
    for event in all_events() {
        let expected = match &event {
            AnyEvent::DeadLetter(e) => e.source_topic.as_str(),
            AnyEvent::SignatureCount(e) => e.service.as_str(),
            AnyEvent::Traffic(e) => e.service.as_str(),
            AnyEvent::Deploy(e) => e.service.as_str(),
            AnyEvent::Build(e) => e.service.as_str(),
            AnyEvent::Regression(e) => e.service.as_str(),
            AnyEvent::Verdict(e) => e.service.as_str(),
            AnyEvent::Action(e) => e.service.as_str(),
            AnyEvent::LatencyHistogram(e) => e.service.as_str(),
            AnyEvent::InstanceGauge(e) => e.service.as_str(),
        };
        assert_eq!(event.key(), expected);
    }
    assert_eq!(dead_letter(true).key(), "selfheal.signatures");
    assert_eq!(traffic().key(), "checkout");
}

// ---------------------------------------------------------------------------
// The Rust types and the files cannot drift.

fn assert_type_matches_file<E: Event>() {
    let derived = E::get_schema();
    let file = E::schema();
    assert_eq!(
        derived.canonical_form(),
        file.canonical_form(),
        "{}: derived schema differs from {}.avsc",
        E::NAME,
        E::NAME
    );
    assert_eq!(
        derived.fingerprint::<Rabin>().bytes,
        E::fingerprint().to_vec(),
        "{}",
        E::NAME
    );
    // And `schema()` really is the embedded file.
    let (_, text) = schema_files()
        .iter()
        .find(|(name, _)| *name == format!("{}.avsc", E::NAME))
        .expect("schema file for event");
    let parsed = Schema::parse_str(text).expect("parse");
    assert_eq!(
        parsed.canonical_form(),
        file.canonical_form(),
        "{}",
        E::NAME
    );
    assert_eq!(
        parsed.name().map(|n| n.fullname(None)),
        Some(format!("selfheal.{}", E::NAME))
    );
}

#[test]
fn derived_schemas_equal_the_files() {
    assert_type_matches_file::<SignatureCount>();
    assert_type_matches_file::<Traffic>();
    assert_type_matches_file::<Deploy>();
    assert_type_matches_file::<Build>();
    assert_type_matches_file::<Regression>();
    assert_type_matches_file::<Verdict>();
    assert_type_matches_file::<Action>();
    assert_type_matches_file::<DeadLetter>();
    assert_type_matches_file::<LatencyHistogram>();
    assert_type_matches_file::<InstanceGauge>();
}

/// The fingerprints are the wire contract: a change here means every consumer
/// must learn the new schema first. These values were cross-checked against
/// Python's `avro` and `fastavro` on the same files.
#[test]
fn fingerprints_are_pinned() {
    let pinned: [(&str, [u8; 8]); 10] = [
        (SignatureCount::NAME, SignatureCount::fingerprint()),
        (Traffic::NAME, Traffic::fingerprint()),
        (Deploy::NAME, Deploy::fingerprint()),
        (Build::NAME, Build::fingerprint()),
        (Regression::NAME, Regression::fingerprint()),
        (Verdict::NAME, Verdict::fingerprint()),
        (Action::NAME, Action::fingerprint()),
        (DeadLetter::NAME, DeadLetter::fingerprint()),
        (LatencyHistogram::NAME, LatencyHistogram::fingerprint()),
        (InstanceGauge::NAME, InstanceGauge::fingerprint()),
    ];
    let expected: [(&str, u64); 10] = PINNED_FINGERPRINTS;
    for ((name, fp), (expected_name, expected_fp)) in pinned.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        assert_eq!(
            u64::from_le_bytes(*fp),
            expected_fp,
            "{name}: fingerprint changed (got {:#018x})",
            u64::from_le_bytes(*fp)
        );
    }
}

/// CRC-64-AVRO of each file's Parsing Canonical Form, as the u64 whose
/// little-endian bytes go on the wire.
const PINNED_FINGERPRINTS: [(&str, u64); 10] = [
    ("SignatureCount", 0x7c47_1a52_6e43_e7a8),
    ("Traffic", 0x3c82_9d60_ba0c_b490),
    ("Deploy", 0x753d_cc87_03db_6895),
    ("Build", 0x6f81_4b2c_e52d_f79c),
    ("Regression", 0x7c52_8287_8d6e_2658),
    ("Verdict", 0x8ce0_c2b8_d2a4_941b),
    ("Action", 0x2d8f_046b_9943_1265),
    ("DeadLetter", 0x1c7f_cc4c_ca7f_615d),
    ("LatencyHistogram", 0xc264_37aa_7374_772b),
    ("InstanceGauge", 0xb02d_9899_d91a_a171),
];

#[test]
fn schema_files_are_the_ten_events() {
    let names: Vec<&str> = schema_files().iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "SignatureCount.avsc",
            "Traffic.avsc",
            "Deploy.avsc",
            "Build.avsc",
            "Regression.avsc",
            "Verdict.avsc",
            "Action.avsc",
            "DeadLetter.avsc",
            "LatencyHistogram.avsc",
            "InstanceGauge.avsc",
        ]
    );
    // The embedded copies are the files on disk.
    for (name, text) in schema_files() {
        let path = format!("{}/{name}", env!("CARGO_MANIFEST_DIR"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            *text,
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------
// The files: docs, namespace, defaults, self-containment.

/// Walks a schema, checking every named type and field; `path` is for messages.
fn check_docs(schema: &Json, path: &str, problems: &mut Vec<String>, named: &mut BTreeSet<String>) {
    match schema {
        Json::Array(branches) => {
            for (i, branch) in branches.iter().enumerate() {
                check_docs(branch, &format!("{path}[{i}]"), problems, named);
            }
        }
        Json::Object(obj) => {
            let ty = obj.get("type").and_then(Json::as_str).unwrap_or_default();
            if matches!(ty, "record" | "enum" | "fixed") {
                let name = obj.get("name").and_then(Json::as_str).unwrap_or_default();
                named.insert(name.to_owned());
                let path = format!("{path}/{name}");
                if !non_empty_doc(obj) {
                    problems.push(format!("{path}: {ty} has no doc"));
                }
                if ty == "enum" {
                    let symbols = obj.get("symbols").and_then(Json::as_array);
                    for symbol in symbols.into_iter().flatten() {
                        let s = symbol.as_str().unwrap_or_default();
                        if s.is_empty() || s != s.to_lowercase() {
                            problems.push(format!("{path}: symbol {s:?} is not snake_case"));
                        }
                    }
                }
                for field in obj
                    .get("fields")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    let field_name = field["name"].as_str().unwrap_or_default();
                    let field_path = format!("{path}.{field_name}");
                    let field_obj = field.as_object().expect("field is an object");
                    if !non_empty_doc(field_obj) {
                        problems.push(format!("{field_path}: field has no doc"));
                    }
                    if field_obj.contains_key("order") {
                        // apache-avro would fingerprint it differently from
                        // other Avro libraries (see SPEC_VECTORS).
                        problems.push(format!("{field_path}: \"order\" is not allowed"));
                    }
                    check_field_default(
                        &field["type"],
                        field.get("default"),
                        &field_path,
                        problems,
                    );
                    check_docs(&field["type"], &field_path, problems, named);
                }
            } else if ty == "array" {
                check_docs(&obj["items"], path, problems, named);
            } else if ty == "map" {
                check_docs(&obj["values"], path, problems, named);
            }
        }
        _ => {}
    }
}

fn non_empty_doc(obj: &serde_json::Map<String, Json>) -> bool {
    obj.get("doc")
        .and_then(Json::as_str)
        .is_some_and(|doc| !doc.trim().is_empty())
}

/// Optional fields are `["null", T]` defaulting to null; arrays default to `[]`.
fn check_field_default(ty: &Json, default: Option<&Json>, path: &str, problems: &mut Vec<String>) {
    match ty {
        Json::Array(branches) => {
            if branches.first() != Some(&Json::from("null")) || branches.len() != 2 {
                problems.push(format!("{path}: a union must be [\"null\", T]"));
            }
            if default != Some(&Json::Null) {
                problems.push(format!("{path}: an optional field must default to null"));
            }
        }
        Json::Object(obj)
            if obj.get("type") == Some(&Json::from("array"))
                && default != Some(&Json::Array(Vec::new())) =>
        {
            problems.push(format!("{path}: an array field must default to []"));
        }
        _ => {}
    }
}

#[test]
fn every_record_enum_and_field_has_a_doc() {
    for (name, text) in schema_files() {
        let json: Json = serde_json::from_str(text).expect("valid JSON");
        assert_eq!(json["namespace"], "selfheal", "{name}");
        let mut problems = Vec::new();
        let mut named = BTreeSet::new();
        check_docs(&json, name, &mut problems, &mut named);
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        assert!(named.contains(name.trim_end_matches(".avsc")), "{name}");
    }
}

#[test]
fn files_are_self_contained() {
    // Each file parses on its own, with no other file supplied (what a
    // consumer holding a single file, e.g. fastavro, does).
    for (name, text) in schema_files() {
        Schema::parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// ---------------------------------------------------------------------------
// The wire format.

/// CRC-64-AVRO straight from the Avro specification's reference code, written
/// independently of apache-avro so the two check each other.
fn spec_rabin(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let mut table = [0u64; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut fp = i as u64;
        for _ in 0..8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
        }
        *slot = fp;
    }
    let mut fp = EMPTY;
    for &b in data {
        fp = (fp >> 8) ^ table[((fp ^ u64::from(b)) & 0xff) as usize];
    }
    fp
}

/// Vectors from the Avro project's `share/test/data/schema-tests.txt`:
/// (schema, Parsing Canonical Form, fingerprint as a signed 64-bit integer).
const SPEC_VECTORS: &[(&str, &str, i64)] = &[
    (r#""null""#, r#""null""#, 7_195_948_357_588_979_594),
    (r#""boolean""#, r#""boolean""#, -6_970_731_678_124_411_036),
    (r#""int""#, r#""int""#, 8_247_732_601_305_521_295),
    (r#""long""#, r#""long""#, -3_434_872_931_120_570_953),
    (r#""double""#, r#""double""#, -8_181_574_048_448_539_266),
    (r#""bytes""#, r#""bytes""#, 5_746_618_253_357_095_269),
    (r#""string""#, r#""string""#, -8_142_146_995_180_207_161),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}"#,
        r#"{"name":"x.y.foo","type":"record","fields":[]}"#,
        5_916_914_534_497_305_771,
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        -4_824_392_279_771_201_922,
    ),
    // Vector 026 is left out on purpose: apache-avro 0.22 keeps a field's
    // "order" in the canonical form, which the spec strips, so a schema using
    // "order" would get a different fingerprint than in other languages.
    // `every_record_enum_and_field_has_a_doc` keeps "order" out of our files.
    (
        r#"{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":true},
            {"name":"f2","doc":"Hello","type":"int"}],
            "type":"record", "name":"foo"}"#,
        r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}"#,
        -4_860_222_112_080_293_046,
    ),
    (
        r#"{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}"#,
        r#"{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}"#,
        -4_448_647_247_586_288_245,
    ),
    (
        r#"{ "items":{"type":"null"}, "type":"array"}"#,
        r#"{"type":"array","items":"null"}"#,
        -589_620_603_366_471_059,
    ),
    (
        r#"{"name":"PigValue","type":"record",
            "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}"#,
        r#"{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}"#,
        -1_759_257_747_318_642_341,
    ),
];

#[test]
fn rabin_fingerprint_matches_the_spec_vectors() {
    // The brief's sanity value: CRC-64-AVRO of "null".
    assert_eq!(7_195_948_357_588_979_594_i64 as u64, 0x63dd_24e7_cc25_8f8a);
    for &(input, canonical, expected) in SPEC_VECTORS {
        let schema = Schema::parse_str(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(schema.canonical_form(), canonical, "{input}");
        assert_eq!(spec_rabin(canonical.as_bytes()), expected as u64, "{input}");
        let fp = schema.fingerprint::<Rabin>().bytes;
        assert_eq!(fp, (expected as u64).to_le_bytes().to_vec(), "{input}");
    }
}

fn assert_header<E: Event>(event: &E) {
    let bytes = encode(event).expect("encode");
    let canonical = E::schema().canonical_form();
    let fp = spec_rabin(canonical.as_bytes()).to_le_bytes();
    assert_eq!(bytes[0], 0xC3);
    assert_eq!(bytes[1], 0x01);
    assert_eq!(bytes[2..10], fp, "{}", E::NAME);
    assert_eq!(E::fingerprint(), fp, "{}", E::NAME);
}

#[test]
fn single_object_header_is_marker_then_little_endian_fingerprint() {
    assert_header(&signature_count(true));
    assert_header(&traffic());
    assert_header(&deploy(true));
    assert_header(&build(true));
    assert_header(&regression(true));
    assert_header(&verdict(true));
    assert_header(&action(true));
    assert_header(&dead_letter(true));
}

#[test]
fn body_is_the_plain_avro_datum() {
    // Traffic: two strings, long, int, long, zig-zag varints, then the
    // null branch (0) of `errors`.
    let bytes = encode(&Traffic {
        service: "a".into(),
        revision: "bc".into(),
        window_start_ms: 1,
        window_s: -1,
        requests: 64,
        errors: None,
    })
    .expect("encode");
    assert_eq!(
        bytes[10..],
        [0x02, b'a', 0x04, b'b', b'c', 0x02, 0x01, 0x80, 0x01, 0x00]
    );
    // DeadLetter's key and payload are Avro `bytes` (length + raw bytes), not
    // arrays of ints.
    let bytes = encode(&DeadLetter {
        source_topic: "t".into(),
        partition: 0,
        offset: 0,
        key: Some(vec![0xFF]),
        payload: vec![0x00, 0x80],
        reason: String::new(),
        error_kind: String::new(),
        stage: String::new(),
        failed_at_ms: 0,
    })
    .expect("encode");
    assert_eq!(
        bytes[10..],
        [0x02, b't', 0x00, 0x00, 0x02, 0x02, 0xFF, 0x04, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00]
    );
}

/// Messages as written by other Avro libraries: Python's `fastavro`
/// (`schemaless_writer` with the `.avsc` file, behind the single-object
/// header) produced exactly these bytes, and `fastavro` and Python's `avro`
/// both decoded them back.
#[test]
fn messages_from_other_avro_libraries_decode() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    };
    assert_eq!(
        decode::<Traffic>(&hex("c30184530c306113fed510636865636b6f757402610a78d27e")).unwrap(),
        Traffic {
            service: "checkout".into(),
            revision: "a".into(),
            window_start_ms: 5,
            window_s: 60,
            requests: 8105,
            errors: None,
        }
    );
    assert_eq!(
        decode::<Build>(&hex("c3019cf72de52c4b816f027302720202027804")).unwrap(),
        Build {
            service: "s".into(),
            revision: "r".into(),
            status: BuildStatus::Failed,
            log_excerpt: Some("x".into()),
            finished_at_ms: 2,
        }
    );
    assert_eq!(
        decode::<Action>(&hex(
            "c301b0a50e024fb1fa6e026102730272020c0472750202620000020274000200000202760a"
        ))
        .unwrap(),
        Action {
            id: "a".into(),
            service: "s".into(),
            revision: "r".into(),
            action: ActionKind::FixForward,
            status: ActionStatus::RecoveryFailed,
            rule: "ru".into(),
            reasons: vec!["b".into()],
            executor: None,
            target_revision: Some("t".into()),
            pr_url: None,
            recovery_verified: Some(false),
            signatures: vec![],
            verdict_id: Some("v".into()),
            decided_at_ms: 5,
            incident_id: None,
        }
    );
    assert_eq!(
        decode::<DeadLetter>(&hex(
            "c3015d617fca4ccc7f1c027402040204ff0006c3010202720c706f69736f6e0c696e676573740c"
        ))
        .unwrap(),
        DeadLetter {
            source_topic: "t".into(),
            partition: 1,
            offset: 2,
            key: Some(vec![0xFF, 0x00]),
            payload: vec![0xC3, 0x01, 0x02],
            reason: "r".into(),
            error_kind: "poison".into(),
            stage: "ingest".into(),
            failed_at_ms: 6,
        }
    );
}

// ---------------------------------------------------------------------------
// Errors.

#[test]
fn a_truncated_datum_is_corrupt_not_null() {
    // SignatureCount without optional fields ends in an empty frames array and
    // a null trace_id; apache-avro alone would read a missing union as null.
    let bytes = encode(&signature_count(false)).expect("encode");
    assert_eq!(bytes[bytes.len() - 2..], [0x00, 0x00]);
    for cut in 1..=2 {
        let err = decode::<SignatureCount>(&bytes[..bytes.len() - cut]).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { event: "SignatureCount", message } if message.contains("truncated")),
            "{err:?}"
        );
    }
}

#[test]
fn wrong_event_names_what_it_actually_is() {
    let bytes = encode(&deploy(true)).expect("encode");
    let err = decode::<Traffic>(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongEvent {
                expected: "Traffic",
                found: "Deploy"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "expected a Traffic event, got a Deploy event"
    );
    assert!(err.is_poison());
}

#[test]
fn unknown_fingerprint_is_reported_in_hex() {
    let mut bytes = encode(&traffic()).expect("encode");
    bytes[2..10].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03]);
    for err in [
        decode::<Traffic>(&bytes).unwrap_err(),
        decode_any(&bytes).unwrap_err(),
    ] {
        match &err {
            Error::UnknownFingerprint { fingerprint, .. } => {
                assert_eq!(fingerprint, "deadbeef00010203");
            }
            other => panic!("expected UnknownFingerprint, got {other:?}"),
        }
        assert!(err.is_poison());
    }
    assert_eq!(
        decode::<Traffic>(&bytes).unwrap_err().to_string(),
        "unknown schema fingerprint deadbeef00010203 (expected Traffic)"
    );
    assert_eq!(
        decode_any(&bytes).unwrap_err().to_string(),
        "unknown schema fingerprint deadbeef00010203 (expected any selfheal event)"
    );
}

#[test]
fn short_and_unmarked_messages_are_rejected() {
    for len in 0..10 {
        let bytes = &encode(&traffic()).expect("encode")[..len];
        assert!(matches!(decode_any(bytes), Err(Error::TooShort { len: l }) if l == len));
    }
    let json = br#"{"type":"traffic","service":"checkout"}"#;
    let err = decode::<Traffic>(json).unwrap_err();
    assert!(
        matches!(&err, Error::BadMarker { found } if found == "7B 22"),
        "{err:?}"
    );
    assert!(err.is_poison());
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode(&deploy(true)).expect("encode");
    bytes.extend_from_slice(&[0, 0, 0]);
    let err = decode::<Deploy>(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TrailingBytes {
                event: "Deploy",
                count: 3
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "3 trailing bytes after the Deploy datum");
    assert!(matches!(
        decode_any(&bytes),
        Err(Error::TrailingBytes { count: 3, .. })
    ));
}

#[test]
fn corrupt_bodies_carry_the_avro_message() {
    // A valid header and a body whose union index points past the union.
    let mut bytes = encode(&build(false)).expect("encode");
    bytes.truncate(10);
    bytes.extend_from_slice(&[0x02, b's', 0x02, b'r', 0x00, 0x08]);
    let err = decode::<Build>(&bytes).unwrap_err();
    match &err {
        Error::Corrupt { event, message } => {
            assert_eq!(*event, "Build");
            assert!(!message.is_empty());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().starts_with("corrupt Build body: "), "{err}");
    assert!(err.is_poison());
}

#[test]
fn huge_length_prefixes_fail_fast() {
    // A string claiming 2^62 bytes, then one claiming just over the 16 MiB cap:
    // both must fail without trying to allocate.
    for len in [1u64 << 62, 16 * 1024 * 1024 + 1] {
        let mut bytes = vec![0xC3, 0x01];
        bytes.extend_from_slice(&Traffic::fingerprint());
        let mut zigzag = len << 1;
        while zigzag >= 0x80 {
            bytes.push((zigzag as u8) | 0x80);
            zigzag >>= 7;
        }
        bytes.push(zigzag as u8);
        let start = Instant::now();
        assert!(matches!(
            decode::<Traffic>(&bytes),
            Err(Error::Corrupt { .. })
        ));
        assert!(start.elapsed() < Duration::from_millis(200));
    }
    // A frames array claiming billions of items.
    let mut bytes = encode(&signature_count(false)).expect("encode");
    let frames_at = bytes.len() - 2; // empty frames array (0x00), then null trace_id (0x00)
    bytes.truncate(frames_at);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0xFF, 0xFF, 0x0F]);
    assert!(matches!(
        decode::<SignatureCount>(&bytes),
        Err(Error::Corrupt { .. })
    ));
}

// ---------------------------------------------------------------------------
// Never panic.

/// A small deterministic PRNG (xorshift64*), so the test needs no dependency
/// and every run sees the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Decodes with `decode_any` and with the specific decoder; the result may be
/// anything but a panic (a panic fails the test by itself).
fn poke(bytes: &[u8]) -> bool {
    let any = decode_any(bytes);
    let _ = decode::<SignatureCount>(bytes);
    let _ = decode::<Regression>(bytes);
    let _ = decode::<DeadLetter>(bytes);
    if let Err(err) = &any {
        assert!(err.is_poison());
        assert!(!err.to_string().is_empty());
    }
    any.is_ok()
}

#[test]
fn garbage_truncations_and_bit_flips_never_panic() {
    let start = Instant::now();
    let mut rng = Rng(0x5e1f_4ea1_0000_0001);
    let headers: Vec<[u8; 8]> = vec![
        SignatureCount::fingerprint(),
        Traffic::fingerprint(),
        Deploy::fingerprint(),
        Build::fingerprint(),
        Regression::fingerprint(),
        Verdict::fingerprint(),
        Action::fingerprint(),
        DeadLetter::fingerprint(),
    ];

    // Random bytes, and random bodies behind every valid header so the body
    // decoder sees them too.
    for i in 0..3000 {
        let len = (rng.next() % 200) as usize;
        let mut bytes = rng.bytes(len);
        if i % 3 != 0 {
            let mut framed = vec![0xC3, 0x01];
            framed.extend_from_slice(&headers[i % headers.len()]);
            framed.append(&mut bytes);
            bytes = framed;
        }
        poke(&bytes);
    }

    for event in all_events() {
        let valid = encode_any(&event);
        // Every strict prefix is incomplete, so it must be an error.
        for len in 0..valid.len() {
            assert!(
                !poke(&valid[..len]),
                "{}: prefix {len} decoded",
                event.name()
            );
        }
        // Every single bit flip: any result but a panic.
        for byte in 0..valid.len() {
            for bit in 0..8 {
                let mut flipped = valid.clone();
                flipped[byte] ^= 1 << bit;
                poke(&flipped);
            }
        }
        // Random bytes spliced into the body.
        for _ in 0..50 {
            let mut spliced = valid.clone();
            let at = 10 + (rng.next() as usize) % (valid.len() - 10);
            let len = (rng.next() % 16) as usize;
            spliced.splice(at..at, rng.bytes(len));
            poke(&spliced);
        }
    }
    // The brief's budget is 2 s in a debug build; leave room for slow CI.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}
