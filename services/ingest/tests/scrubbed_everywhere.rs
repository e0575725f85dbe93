//! Every secret class, wherever it sits in a record (message, stack,
//! exception type, build log), is gone from every field of every event
//! ingest writes, and from every rejection reason. Deploy diffs are the
//! exception by design: triage links and the fixer reverts their exact text,
//! and both scrub what they quote (LLM briefs, prompts).

use selfheal_ingest::events::to_events;
use selfheal_ingest::normalize::{Normalizer, NormalizerConfig};
use selfheal_ingest::record::{parse_body, DefaultType};

/// One value per class scrubbed (as it would appear in a log line).
const SECRETS: &[&str] = &[
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "AKIAIOSFODNN7EXAMPLE",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "xoxb-123456789012-abcdefABCDEF",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "bob.smith@mail.example.com",
    "4111 1111 1111 1111",
    "T01ABC2DEFG/B01HIJ3KLMN/8VbnqGdG7jNqS2WwW8BZHqiE",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
    "Zm9vYmFyYmF6cXV4c2VjcmV0",
    "GB82WEST12345698765432",
    "123-45-6789",
    "+447911123456",
    "203.0.113.77",
    "2001:db8::8a2e:370:7334",
    "hunter2hunter2",
];

/// `secret` in the context a shipper would log it in.
fn in_context(secret: &str) -> String {
    if secret.starts_with("T01ABC") {
        format!("post to https://hooks.slack.com/services/{secret} failed")
    } else if secret.starts_with("Eby8") {
        format!("AccountName=shop;AccountKey={secret}==;EndpointSuffix=core.windows.net")
    } else if secret.starts_with("Zm9v") {
        format!("GET https://a.blob.core.windows.net/c?sv=2022-11-02&sig={secret} 403")
    } else if secret.starts_with("hunter") {
        format!("login password={secret} rejected")
    } else {
        format!("auth failed for {secret} (retrying)")
    }
}

fn line(v: serde_json::Value) -> String {
    v.to_string()
}

#[test]
fn no_secret_survives_in_any_event_field() {
    let mut body = Vec::new();
    for (i, s) in SECRETS.iter().enumerate() {
        let text = in_context(s);
        body.push(line(serde_json::json!({
            "ts": 1_773_050_400_000i64 + i as i64, "service": "checkout", "revision": "r1",
            "message": text,
            "stack": format!("Traceback (most recent call last):\n  File \"/app/src/x.py\", line 3, in f\nValueError: {text}"),
        })));
        body.push(line(serde_json::json!({
            "ts": 1_773_050_400_000i64, "service": "checkout", "revision": "r1",
            "message": format!("plain error {i}"), "exception_type": format!("E {text}"),
        })));
        body.push(line(serde_json::json!({
            "type": "build", "ts": 1_773_050_400_000i64, "service": "checkout", "revision": "r1",
            "status": "failed", "log": format!("error: {text}"),
        })));
    }
    let (records, rejected) = parse_body(&body.join("\n"), DefaultType::Log);
    assert!(rejected.is_empty(), "{rejected:?}");
    let mut n = Normalizer::new(NormalizerConfig::default());
    let events = to_events(&mut n, records.into_iter().map(|(_, r)| r));
    let written = serde_json::to_string(&(
        &events.signatures,
        &events.traffic,
        &events.deploys,
        &events.builds,
    ))
    .unwrap();
    for s in SECRETS {
        assert!(!written.contains(s), "{s} leaked into {written}");
    }
    assert!(written.contains("[REDACTED:"));
}

#[test]
fn no_secret_is_echoed_in_a_rejection() {
    let body: Vec<String> = SECRETS
        .iter()
        .flat_map(|s| {
            let text = in_context(s);
            [
                line(serde_json::json!({"ts": text, "service": "a", "revision": "r", "message": "m"})),
                line(serde_json::json!({"type": text, "ts": 1, "service": "a", "revision": "r"})),
                line(serde_json::json!({"type": "build", "ts": 1, "service": "a", "revision": "r", "status": text})),
            ]
        })
        .collect();
    let (records, rejected) = parse_body(&body.join("\n"), DefaultType::Log);
    assert!(records.is_empty());
    assert_eq!(rejected.len(), body.len());
    let reasons = serde_json::to_string(&rejected).unwrap();
    for s in SECRETS {
        // A 16-character scrubbed prefix may keep the head of a long value
        // only after scrubbing, never the value.
        assert!(!reasons.contains(s), "{s} echoed in {reasons}");
    }
}
