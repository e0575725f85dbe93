//! End-to-end tests against a real Apache Kafka broker (started by
//! `deploy/test.sh`; `SELFHEAL_TEST_BOOTSTRAP` names it). Each test uses its own
//! topics and consumer groups.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bootstrap, isolated_config, of, read_until, BAD_DEPLOY};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use selfheal_common::CancellationToken;
use selfheal_schemas::{
    ActionKind, ActionStatus, AnyEvent, Build, BuildStatus, Decision, RegressionKind,
};

const WAIT: Duration = Duration::from_secs(60);

/// The acceptance test of the walking skeleton: an HTTP POST of NDJSON to ingest
/// ends with an Action event on Kafka, through detector, triage and fixer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_ndjson_to_action_through_all_four_services() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = Arc::new(isolated_config(&bootstrap));
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

    let http = reqwest::Client::new();
    let base = format!("http://{}", ingest.http_addr);
    for h in [&ingest, &detector, &triage, &fixer] {
        let r = http
            .get(format!("http://{}/readyz", h.http_addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{} not ready", h.name);
    }

    // One body with history, deploy and errors: the services read them from
    // four topics in no guaranteed relative order, and must still agree.
    let r = http
        .post(format!("{base}/v1/ndjson/logs"))
        .body(BAD_DEPLOY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], BAD_DEPLOY.lines().count());

    let b = bootstrap.clone();
    let topic = config.topics.actions.clone();
    let actions =
        tokio::task::spawn_blocking(move || read_until(&b, &topic, WAIT, |evs| !evs.is_empty()))
            .await
            .unwrap();
    let actions = of(&actions, |e| match e {
        AnyEvent::Action(a) => Some(a),
        _ => None,
    });
    assert_eq!(actions.len(), 1, "exactly one action: {actions:?}");
    let action = &actions[0];
    assert_eq!(
        (action.service.as_str(), action.revision.as_str()),
        ("checkout", "b")
    );
    // A culprit deploy is remediated: rolled back (to the previous revision)
    // or fixed forward, depending on severity (the fixer's rule table).
    match action.action {
        ActionKind::Rollback => assert_eq!(action.target_revision.as_deref(), Some("a")),
        ActionKind::FixForward => {}
        other => panic!("a caused regression got {other:?}: {action:?}"),
    }
    assert_eq!(action.status, ActionStatus::DryRun);
    assert!(!action.rule.is_empty() && !action.reasons.is_empty());

    // The intermediate events are on their topics too, with their evidence.
    let regressions = read_until(&bootstrap, &config.topics.regressions, WAIT, |e| {
        !e.is_empty()
    });
    let regressions = of(&regressions, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    assert_eq!(regressions.len(), 1, "{regressions:?}");
    assert_eq!(regressions[0].kind, RegressionKind::New);
    assert!(regressions[0].observed >= 2); // `new_signature_min_count`
    assert!(regressions[0].detected_at_ms - regressions[0].window_start_ms <= 5 * 60_000);
    assert_eq!(regressions[0].frames[0].line, Some(216));
    let verdicts = read_until(&bootstrap, &config.topics.verdicts, WAIT, |e| !e.is_empty());
    let verdicts = of(&verdicts, |e| match e {
        AnyEvent::Verdict(v) => Some(v),
        _ => None,
    });
    assert_eq!(verdicts[0].decision, Decision::Caused);
    assert_eq!(verdicts[0].evidence[0].file, "src/checkout/pricing.py");
    assert_eq!(verdicts[0].evidence[0].line, Some(216));
    assert_eq!(action.verdict_id.as_deref(), Some(verdicts[0].id.as_str()));

    // Ordered shutdown completes promptly.
    shutdown.cancel();
    let started = Instant::now();
    for h in [ingest, detector, triage, fixer] {
        let name = h.name;
        tokio::time::timeout(Duration::from_secs(20), h.wait())
            .await
            .unwrap_or_else(|_| panic!("{name} did not stop"))
            .unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Garbage on an input topic goes to the DLQ with the reason; the next good
/// message on the same partition is still processed, and both offsets are
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_is_dead_lettered_and_the_stream_goes_on() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = Arc::new(isolated_config(&bootstrap));
    let shutdown = CancellationToken::new();
    let detector = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .create()
        .unwrap();
    let garbage = b"\x00\xffnot avro at all".to_vec();
    let good = selfheal_schemas::encode(&Build {
        service: "checkout".into(),
        revision: "c".into(),
        status: BuildStatus::Failed,
        log_excerpt: Some("error[E0425]: cannot find value `x` in this scope".into()),
        finished_at_ms: 1_000,
    })
    .unwrap();
    let topic = config.topics.builds.clone();
    let mut partition = None;
    for payload in [&garbage, &good] {
        let delivered = producer
            .send(
                FutureRecord::to(&topic).key("checkout").payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
        assert!(
            partition.is_none_or(|p| p == delivered.partition),
            "same partition"
        );
        partition = Some(delivered.partition);
    }
    let partition = partition.unwrap();

    let dlq = read_until(&bootstrap, &config.topics.dlq, WAIT, |e| !e.is_empty());
    let letters = of(&dlq, |e| match e {
        AnyEvent::DeadLetter(d) => Some(d),
        _ => None,
    });
    assert_eq!(letters.len(), 1, "{dlq:?}");
    let letter = &letters[0];
    assert_eq!(letter.source_topic, topic);
    assert_eq!((letter.partition, letter.offset), (partition, 0));
    assert_eq!(letter.payload, garbage);
    assert_eq!(letter.key.as_deref(), Some(&b"checkout"[..]));
    assert_eq!(letter.error_kind, "poison");
    assert_eq!(letter.stage, "detector");
    assert!(letter.reason.contains("undecodable"), "{}", letter.reason);

    let regs = read_until(&bootstrap, &config.topics.regressions, WAIT, |e| {
        !e.is_empty()
    });
    let regs = of(&regs, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].kind, RegressionKind::BuildFailure);
    assert_eq!(regs[0].revision, "c");

    shutdown.cancel();
    detector.wait().await.unwrap();

    // Both messages' offsets were committed: a restart resumes after them.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set(
            "group.id",
            format!("{}.detector", config.kafka.group_prefix),
        )
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, partition);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    let offset = committed
        .find_partition(&topic, partition)
        .unwrap()
        .offset();
    assert_eq!(offset, Offset::Offset(2));
}

/// Malformed NDJSON gets HTTP 400 naming each bad line and field; the valid line
/// in the same body is still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ndjson_gets_400_naming_line_and_field() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = Arc::new(isolated_config(&bootstrap));
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let body = [
        r#"{"type":"traffic","ts":"2026-03-09T10:00:00Z","service":"checkout","revision":"a","requests":8105}"#,
        r#"{"ts":"2026-03-09T10:00:01Z","service":"checkout","message":"boom"}"#,
        r#"{"ts":"not a time","service":"checkout","revision":"a","message":"boom"}"#,
        r#"{"ts":1,"service":"checkout","revision":"a","message":"#,
    ]
    .join("\n");
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/ndjson/logs", ingest.http_addr))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 1);
    let rejected: Vec<(u64, String)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (2, "revision".into()),
            (3, "ts".into()),
            (4, "(json)".into())
        ]
    );
    assert!(v["rejected"][1]["reason"]
        .as_str()
        .unwrap()
        .contains("RFC 3339"));

    let traffic = read_until(&bootstrap, &config.topics.traffic, WAIT, |e| !e.is_empty());
    let traffic = of(&traffic, |e| match e {
        AnyEvent::Traffic(t) => Some(t),
        _ => None,
    });
    assert_eq!(traffic.len(), 1);
    assert_eq!(traffic[0].requests, 8105);

    // A body over the limit is refused with 413 before anything is parsed.
    let huge = "x".repeat(config.ingest.max_body_bytes + 1);
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/ndjson/logs", ingest.http_addr))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    shutdown.cancel();
    ingest.wait().await.unwrap();
}

/// At-least-once: when an output cannot be delivered, the input's offset is not
/// committed and the stage stops; a restarted stage re-reads the input and
/// delivers the output. Nothing is acknowledged that was not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_output_leaves_the_input_uncommitted_until_a_restart_delivers_it() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.kafka.delivery_timeout_ms = 3_000;
    // This is the generic at-least-once loop's test (triage and the fixer run
    // on it); the detector's exactly-once mode has tests/detector_restart.rs.
    config.detector.exactly_once = false;
    // Create every topic except the regressions topic, so the detector's output
    // cannot be delivered (the test broker does not auto-create topics).
    let topics: Vec<&str> = config
        .topics
        .all()
        .into_iter()
        .filter(|t| *t != config.topics.regressions)
        .collect();
    selfheal_common::kafka::create_topics(&config.kafka, &topics, 1, -1)
        .await
        .unwrap();
    config.topics.create = false;
    let config = Arc::new(config);

    let build = selfheal_schemas::encode(&Build {
        service: "checkout".into(),
        revision: "d".into(),
        status: BuildStatus::Failed,
        log_excerpt: Some("linker error".into()),
        finished_at_ms: 5,
    })
    .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&config.topics.builds)
                .key("checkout")
                .payload(&build),
            Duration::from_secs(10),
        )
        .await
        .expect("produced");

    let detector = selfheal_detector::spawn(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), detector.wait())
        .await
        .expect("the detector stops by itself when a delivery fails");
    let err = outcome.expect_err("a failed delivery is fatal, not skipped");
    assert!(err.to_string().contains("did not acknowledge"), "{err}");

    let group = format!("{}.detector", config.kafka.group_prefix);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&config.topics.builds, 0);
    let committed = consumer
        .committed_offsets(tpl.clone(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed
            .find_partition(&config.topics.builds, 0)
            .unwrap()
            .offset(),
        Offset::Invalid,
        "nothing committed for an input whose output was not delivered"
    );

    // Fix the cause and restart: the same input is re-read and its output lands.
    selfheal_common::kafka::create_topics(&config.kafka, &[&config.topics.regressions], 1, -1)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let detector = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let regs = read_until(&bootstrap, &config.topics.regressions, WAIT, |e| {
        !e.is_empty()
    });
    let regs = of(&regs, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].revision, "d");
    shutdown.cancel();
    detector.wait().await.unwrap();
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed
            .find_partition(&config.topics.builds, 0)
            .unwrap()
            .offset(),
        Offset::Offset(1)
    );
}

/// Triage restarted after it consumed (and committed) a deploy still judges
/// that deploy's regressions: its deploy table is rebuilt from the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_triage_still_knows_earlier_deploys() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = Arc::new(isolated_config(&bootstrap));
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let send = |topic: String, payload: Vec<u8>| {
        let producer = producer.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic).key("checkout").payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .expect("produced");
        }
    };
    let shutdown = CancellationToken::new();
    let triage = selfheal_triage::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let deploy = selfheal_schemas::Deploy {
        diff: Some(common::CULPRIT_DIFF.into()),
        deployed_at_ms: 1_000,
        ..selfheal_schemas::testing::deploy()
    };
    send(
        config.topics.deploys.clone(),
        selfheal_schemas::encode(&deploy).unwrap(),
    )
    .await;
    // Long enough for it to consume the deploy and commit its offset.
    tokio::time::sleep(Duration::from_secs(6)).await;
    shutdown.cancel();
    triage.wait().await.unwrap();

    let shutdown = CancellationToken::new();
    let triage = selfheal_triage::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let regression = selfheal_schemas::Regression {
        id: "r-restart".into(),
        signature: "s1".into(),
        template: "KeyError: <*>".into(),
        detected_at_ms: 120_000,
        deployed_at_ms: Some(1_000),
        window_start_ms: 1_000,
        window_end_ms: 120_000,
        expected: 0.1,
        rate_ratio: 50.0,
        p_value: 1e-6,
        q_value: Some(1e-5),
        rate_basis: selfheal_schemas::RateBasis::PerTime,
        frames: vec![selfheal_schemas::Frame {
            file: "/app/src/checkout/pricing.py".into(),
            line: Some(216),
            function: "quote".into(),
            in_app: true,
        }],
        ..selfheal_schemas::testing::regression()
    };
    send(
        config.topics.regressions.clone(),
        selfheal_schemas::encode(&regression).unwrap(),
    )
    .await;
    let verdicts = read_until(&bootstrap, &config.topics.verdicts, WAIT, |e| !e.is_empty());
    let verdicts = of(&verdicts, |e| match e {
        AnyEvent::Verdict(v) => Some(v),
        _ => None,
    });
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert_eq!(verdicts[0].decision, Decision::Caused);
    shutdown.cancel();
    triage.wait().await.unwrap();
}
