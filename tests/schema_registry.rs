//! The Schema Registry mode against a real Apicurio Registry (started by
//! `deploy/test.sh` via `deploy/registry/start.sh`; `SELFHEAL_TEST_SCHEMA_REGISTRY`
//! names its Confluent-compatible API) and the real Kafka broker; and, broker
//! only, that a read_committed subscriber never sees an aborted regression.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{assign_from_beginning, bootstrap, isolated_config, of, read_until, BAD_DEPLOY};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message};
use selfheal_common::kafka::{EventProducer, Outgoing};
use selfheal_common::schema_registry::{resolve_id_of, subject_of, writer_id};
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::{
    decode_any, encode, registry_schema_id, schema_id_known, AnyEvent, Frame, Regression, Traffic,
};

const WAIT: Duration = Duration::from_secs(90);

/// The registry's Confluent-compatible base URL from `SELFHEAL_TEST_SCHEMA_REGISTRY`;
/// skipped without it locally, a failure under `CI=true`.
fn registry() -> Option<String> {
    match std::env::var("SELFHEAL_TEST_SCHEMA_REGISTRY") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!(
            "this test needs a real Schema Registry but SELFHEAL_TEST_SCHEMA_REGISTRY is not \
             set; run the suite with ./deploy/test.sh (it starts Apicurio Registry)"
        ),
        _ => {
            eprintln!("SKIPPED: no Schema Registry (SELFHEAL_TEST_SCHEMA_REGISTRY unset); run ./deploy/test.sh");
            None
        }
    }
}

fn registry_config(bootstrap: &str, url: &str) -> Config {
    let mut c = isolated_config(bootstrap);
    c.schema_registry.url = Some(url.to_owned());
    c
}

/// POSTs `schema` under `subject` and returns the id (for set-ups only).
async fn post_schema(url: &str, subject: &str, schema: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/subjects/{subject}/versions"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string())
        .send()
        .await
        .unwrap()
}

fn id_of(payload: &[u8]) -> u32 {
    assert_eq!(
        payload[0], 0,
        "registry framing starts with the magic byte 0"
    );
    registry_schema_id(payload).unwrap()
}

/// The whole loop in registry mode: subjects registered at start-up, every
/// regression, verdict and action framed with its subject's id, and
/// confluent-kafka's AvroDeserializer + SchemaRegistryClient read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_mode_end_to_end_and_a_confluent_deserializer_reads_it() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(url) = registry() else { return };
    let config = Arc::new(registry_config(&bootstrap, &url));
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let detector = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let triage = selfheal_triage::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let fixer = selfheal_fixer::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();

    let t = &config.topics;
    let subjects: Vec<String> = reqwest::get(format!("{url}/subjects"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for topic in [
        &t.signatures,
        &t.deploys,
        &t.regressions,
        &t.verdicts,
        &t.actions,
        &t.dlq,
    ] {
        assert!(
            subjects.contains(&subject_of(topic)),
            "{topic}: {subjects:?}"
        );
        assert!(writer_id(topic).is_some(), "{topic}");
    }

    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/ndjson/logs", ingest.http_addr))
        .body(BAD_DEPLOY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (b, actions) = (bootstrap.clone(), t.actions.clone());
    tokio::task::spawn_blocking(move || read_until(&b, &actions, WAIT, |e| !e.is_empty()))
        .await
        .unwrap();
    for (topic, name) in [
        (&t.regressions, "Regression"),
        (&t.verdicts, "Verdict"),
        (&t.actions, "Action"),
    ] {
        let raw = raw_values(&bootstrap, topic);
        assert!(!raw.is_empty(), "nothing on {topic}");
        for payload in &raw {
            assert_eq!(Some(id_of(payload)), writer_id(topic), "{topic}");
            assert_eq!(decode_any(payload).unwrap().name(), name);
        }
    }

    let suffix = t.regressions.strip_prefix("selfheal.regressions").unwrap();
    if let Some(summary) = python_subscriber(&bootstrap, &url, suffix) {
        assert_eq!(summary["regression"]["service"], "checkout", "{summary}");
        assert_eq!(summary["regression"]["kind"], "new", "{summary}");
        assert_eq!(summary["verdict"]["decision"], "caused", "{summary}");
        assert_eq!(
            summary["verdict"]["regression_ids"][0], summary["regression_id"],
            "{summary}"
        );
        assert!(
            ["rollback", "fix_forward"].contains(&summary["action"]["action"].as_str().unwrap()),
            "{summary}"
        );
        assert_eq!(
            summary["action"]["schema_id"],
            writer_id(&t.actions).unwrap(),
            "{summary}"
        );
    }

    shutdown.cancel();
    for h in [ingest, detector, triage, fixer] {
        let name = h.name;
        tokio::time::timeout(Duration::from_secs(30), h.wait())
            .await
            .unwrap_or_else(|_| panic!("{name} did not stop"))
            .unwrap();
    }
}

/// Every value on `topic` as bytes (read_committed, from the beginning).
fn raw_values(bootstrap: &str, topic: &str) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = assign_from_beginning(bootstrap, topic, true);
    let mut out = Vec::new();
    let mut idle = 0;
    while idle < 10 {
        match consumer.poll(Duration::from_millis(300)) {
            Some(Ok(m)) => {
                idle = 0;
                out.push(m.payload().unwrap_or_default().to_vec());
            }
            _ => idle += 1,
        }
    }
    out
}

/// examples/subscriber/subscribe_registry.py's summary; `None` when no
/// Python with its packages is available locally (CI always has it).
fn python_subscriber(bootstrap: &str, url: &str, suffix: &str) -> Option<serde_json::Value> {
    let python = match std::env::var("SELFHEAL_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("SELFHEAL_TEST_PYTHON is not set: run the suite with ./deploy/test.sh")
        }
        _ => {
            eprintln!("SKIPPED the Python registry subscriber: SELFHEAL_TEST_PYTHON unset");
            return None;
        }
    };
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/subscriber/subscribe_registry.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "--bootstrap",
            bootstrap,
            "--registry",
            url,
            "--topic-suffix",
            suffix,
        ])
        .output()
        .expect("run the Python registry subscriber");
    assert!(
        out.status.success(),
        "the Python registry subscriber failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("one JSON line"))
}

fn traffic(requests: i64) -> Traffic {
    Traffic {
        service: "checkout".into(),
        revision: "b".into(),
        window_start_ms: 1_773_050_400_000,
        window_s: 60,
        requests,
        errors: Some(1),
    }
}

/// A switch of mode does not break readers: single-object and registry
/// framing on one topic both decode, and an id first seen on a message is
/// resolved from the registry (then cached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_framings_decode_and_unknown_ids_are_resolved_from_the_registry() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(url) = registry() else { return };
    let config = registry_config(&bootstrap, &url);
    selfheal_common::kafka::ensure_topics(&config)
        .await
        .unwrap();
    let topic = config.topics.traffic.clone();
    let id = writer_id(&topic).expect("registered at start-up");

    // Another writer registered the same schema in another form (compact):
    // a new id this process has never seen, the same fingerprint.
    let file = selfheal_schemas::schema_files()
        .iter()
        .find(|(f, _)| *f == "Traffic.avsc")
        .unwrap()
        .1;
    let compact = serde_json::from_str::<serde_json::Value>(file)
        .unwrap()
        .to_string();
    let scratch = format!("scratch-{}-value", uuid::Uuid::new_v4().simple());
    let r = post_schema(&url, &scratch, &compact).await;
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let other: serde_json::Value = r.json().await.unwrap();
    let other = u32::try_from(other["id"].as_u64().unwrap()).unwrap();
    assert_ne!(other, id);
    assert!(!schema_id_known(other));

    let producer = EventProducer::new(&config.kafka).unwrap();
    let framed_elsewhere = selfheal_schemas::encode_registry(&traffic(3), other).unwrap();
    let msgs = [
        Outgoing {
            payload: encode(&traffic(1)).unwrap(),
            ..Outgoing::event(&topic, &traffic(1)).unwrap()
        },
        Outgoing::event(&topic, &traffic(2)).unwrap(),
        Outgoing {
            payload: framed_elsewhere.clone(),
            ..Outgoing::event(&topic, &traffic(3)).unwrap()
        },
    ];
    assert_eq!(id_of(&msgs[1].payload), id);
    producer.send_all(&msgs).await.unwrap();

    let raw = tokio::task::spawn_blocking({
        let (b, t) = (bootstrap.clone(), topic.clone());
        move || raw_values(&b, &t)
    })
    .await
    .unwrap();
    assert_eq!(raw.len(), 3);
    let mut requests = Vec::new();
    for payload in &raw {
        resolve_id_of(payload).await.unwrap();
        match decode_any(payload) {
            Ok(AnyEvent::Traffic(t)) => requests.push(t.requests),
            other => panic!("{other:?}"),
        }
    }
    requests.sort();
    assert_eq!(requests, [1, 2, 3]);
    assert!(schema_id_known(other), "resolved and cached");
}

/// The registry refuses a schema at start-up: the error names the subject
/// and why (the registry's own reason), and nothing is framed for the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_subject_fails_start_up_naming_it_and_why() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(url) = registry() else { return };
    let config = registry_config(&bootstrap, &url);
    let subject = subject_of(&config.topics.regressions);
    let other = r#"{"type":"record","name":"Regression","namespace":"selfheal","fields":[{"name":"only","type":"string"}]}"#;
    assert!(post_schema(&url, &subject, other)
        .await
        .status()
        .is_success());
    let r = reqwest::Client::new()
        .put(format!("{url}/config/{subject}"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"compatibility":"BACKWARD"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    let err = selfheal_common::kafka::ensure_topics(&config)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("subject `{subject}`")), "{msg}");
    assert!(
        msg.contains("not compatible with its registered version(s) [1]"),
        "{msg}"
    );
    assert!(msg.contains("409"), "the registry's answer: {msg}");
    assert!(!err.is_retryable(), "{msg}");
    assert_eq!(writer_id(&config.topics.regressions), None);
}

fn regression(id: &str) -> Regression {
    Regression {
        id: id.into(),
        signature: "b379e3b0a5102f78".into(),
        detected_at_ms: 1_773_050_640_000,
        deployed_at_ms: Some(1_773_050_400_000),
        window_start_ms: 1_773_050_400_000,
        window_end_ms: 1_773_050_640_000,
        observed: 3,
        expected: 0.06,
        rate_ratio: 48.7,
        p_value: 3.7e-5,
        q_value: Some(1.9e-3),
        sample_message: "KeyError: 'XC71'".into(),
        frames: vec![Frame {
            file: "src/checkout/pricing.py".into(),
            line: Some(216),
            function: "quote".into(),
            in_app: true,
        }],
        onset_ms: Some(1_773_050_400_000),
        ..selfheal_schemas::testing::regression()
    }
}

/// Regressions are written in transactions (the detector's exactly-once
/// loop): a subscriber with isolation.level=read_committed never sees one
/// whose transaction was aborted; read_uncommitted (Java's default) does.
#[test]
fn an_aborted_transactions_regression_is_never_seen_by_read_committed() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = isolated_config(&bootstrap);
    let topic = config.topics.regressions.clone();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(selfheal_common::kafka::create_topics(
            &config.kafka,
            &[&topic],
            1,
            -1,
        ))
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set(
            "transactional.id",
            format!("test-abort-{}", uuid::Uuid::new_v4()),
        )
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    for (id, commit) in [("aborted", false), ("committed", true)] {
        producer.begin_transaction().unwrap();
        let payload = encode(&regression(id)).unwrap();
        producer
            .send(BaseRecord::to(&topic).key("checkout").payload(&payload))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.flush(timeout).unwrap();
        if commit {
            producer.commit_transaction(timeout).unwrap();
        } else {
            producer.abort_transaction(timeout).unwrap();
        }
    }
    let ids = |read_committed: bool| -> Vec<String> {
        let consumer = assign_from_beginning(&bootstrap, &topic, read_committed);
        let mut out = Vec::new();
        let mut idle = 0;
        while idle < 10 {
            match consumer.poll(Duration::from_millis(300)) {
                Some(Ok(m)) => {
                    idle = 0;
                    if let Ok(AnyEvent::Regression(r)) = decode_any(m.payload().unwrap_or_default())
                    {
                        out.push(r.id);
                    }
                }
                _ => idle += 1,
            }
        }
        out
    };
    assert_eq!(ids(true), ["committed"], "read_committed");
    assert_eq!(
        ids(false),
        ["aborted", "committed"],
        "read_uncommitted sees the aborted write"
    );
    let events = read_until(&bootstrap, &topic, Duration::from_secs(5), |e| e.len() >= 2);
    let seen = of(&events, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    assert!(seen.iter().all(|r| r.id != "aborted"), "{seen:?}");
}
