//! Two detector instances in one consumer group, each owning one partition of
//! the inputs: an upstream outage that hits services owned by both is
//! recognized by both through the fleet topic, so neither deploy is blamed.
//!
//! The outage is built so that neither instance could tell on its own: each
//! sees the error rise moderately (4x) in one service that did not deploy,
//! which alone is a coincidence, not an outage; together there are two.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bootstrap, isolated_config, of, read_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::{AnyEvent, Event, Regression, SignatureCount, Traffic};

const MINUTE: i64 = 60_000;
/// 2026-03-09T10:00:00Z.
const T0: i64 = 1_773_050_400_000;
/// Services by input partition: the instance that owns partition 0 holds
/// `a1` (deploys) and `a2` (does not); the other `b1` and `b2`.
const SERVICES: [(&str, i32); 4] = [("a1", 0), ("a2", 0), ("b1", 1), ("b2", 1)];

fn deployed(service: &str) -> bool {
    service.ends_with('1')
}

fn traffic(service: &str, revision: &str, t: i64) -> AnyEvent {
    AnyEvent::Traffic(Traffic {
        service: service.into(),
        revision: revision.into(),
        window_start_ms: t,
        window_s: 60,
        requests: 1000,
        errors: None,
    })
}

fn upstream(service: &str, revision: &str, count: i64, t: i64) -> AnyEvent {
    AnyEvent::SignatureCount(SignatureCount {
        service: service.into(),
        revision: revision.into(),
        signature: format!("{service}-upstream"),
        template: "Timeout after <*>ms calling payments-api".into(),
        exception_type: Some("TimeoutError".into()),
        level: "error".into(),
        count,
        first_seen_ms: t + 1_000,
        last_seen_ms: t + 50_000,
        sample_message: "Timeout after 3001ms calling payments-api".into(),
        sample_stack: None,
        frames: vec![],
        trace_id: None,
    })
}

/// Writes `events` to their service's partition (as ingest would, keyed by
/// service; the partition is explicit so the test knows who owns what).
async fn produce(producer: &FutureProducer, config: &Config, events: &[AnyEvent]) {
    let t = &config.topics;
    let sends = events.iter().map(|e| {
        let (topic, key) = match e {
            AnyEvent::Traffic(x) => (&t.traffic, x.key()),
            AnyEvent::SignatureCount(x) => (&t.signatures, x.key()),
            AnyEvent::Deploy(x) => (&t.deploys, x.key()),
            _ => unreachable!(),
        };
        let partition = SERVICES.iter().find(|(s, _)| *s == key).unwrap().1;
        let payload = match e {
            AnyEvent::Traffic(x) => selfheal_schemas::encode(x),
            AnyEvent::SignatureCount(x) => selfheal_schemas::encode(x),
            AnyEvent::Deploy(x) => selfheal_schemas::encode(x),
            _ => unreachable!(),
        }
        .unwrap();
        let key = key.to_owned();
        async move {
            producer
                .send(
                    FutureRecord::to(topic)
                        .partition(partition)
                        .key(&key)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    });
    futures::future::join_all(sends).await;
}

/// Follows the fleet topic: per instance, its latest watermark (`None` once
/// it said it reports nothing) and the services it counted.
struct FleetWatch {
    consumer: BaseConsumer,
    watermarks: BTreeMap<String, Option<i64>>,
    services: BTreeMap<String, Vec<String>>,
}

impl FleetWatch {
    fn new(bootstrap: &str, topic: &str) -> Self {
        Self {
            consumer: common::assign_from_beginning(bootstrap, topic, true),
            watermarks: BTreeMap::new(),
            services: BTreeMap::new(),
        }
    }

    /// Reads until `done` holds (or panics after `timeout`).
    fn until(&mut self, timeout: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.watermarks
            );
            let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let s: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let instance = s["instance"].as_str().unwrap().to_owned();
            self.watermarks
                .insert(instance.clone(), s["watermark_ms"].as_i64());
            let counted = self.services.entry(instance).or_default();
            for c in s["counts"].as_array().into_iter().flatten() {
                let service = c["service"].as_str().unwrap().to_owned();
                if !counted.contains(&service) {
                    counted.push(service);
                }
            }
        }
    }

    /// Whether two instances have reported up to `t`.
    fn both_at(&self, t: i64) -> bool {
        self.watermarks
            .values()
            .filter(|w| w.is_some_and(|w| w >= t))
            .count()
            >= 2
    }
}

/// Waits until the detector group has two members with partitions.
fn wait_for_group(bootstrap: &str, group: &str) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(list) = client.fetch_group_list(Some(group), Duration::from_secs(5)) {
            if let Some(g) = list.groups().first() {
                let assigned = g
                    .members()
                    .iter()
                    .filter(|m| m.assignment().is_some_and(|a| !a.is_empty()))
                    .count();
                if g.state() == "Stable" && assigned == 2 {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the two detectors did not form a group"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_across_detector_instances_is_externally_correlated_on_both() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.topics.partitions = 2;
    let config = Arc::new(config);
    selfheal_common::kafka::ensure_topics(&config)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    // A failed assertion must stop the detectors' blocking loops too, or the
    // runtime would wait for them forever instead of reporting the failure.
    let _stop_on_panic = shutdown.clone().drop_guard();
    let first = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let second = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let group = format!("{}.detector", config.kafka.group_prefix);
    tokio::task::spawn_blocking({
        let (b, g) = (bootstrap.clone(), group.clone());
        move || wait_for_group(&b, &g)
    })
    .await
    .unwrap();
    let mut fleet = FleetWatch::new(&bootstrap, &config.topics.detector_fleet);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();

    // Six hours of history: the upstream timeout 3 a minute in the services
    // that will not deploy, never in the others.
    let mut history = Vec::new();
    for m in -360..0 {
        let t = T0 + m * MINUTE;
        for (s, _) in SERVICES {
            history.push(traffic(s, "a", t));
            if !deployed(s) {
                history.push(upstream(s, "a", 3, t));
            }
        }
    }
    produce(&producer, &config, &history).await;
    let fleet = tokio::task::spawn_blocking(move || {
        fleet.until(Duration::from_secs(60), "both instances' history", |f| {
            f.both_at(T0 - 3 * MINUTE)
        });
        fleet
    })
    .await
    .unwrap();

    // The outage from T0, as a1 and b1 deploy: 5 a minute in the deployed
    // revisions (a new error there), 12 (4x) in the others. Minute by minute,
    // each one read by both instances before the next (live streams).
    let mut deploys = Vec::new();
    for s in ["a1", "b1"] {
        deploys.push(AnyEvent::Deploy(common::deploy(s, T0)));
    }
    produce(&producer, &config, &deploys).await;
    let mut fleet = fleet;
    for m in 0..12 {
        let t = T0 + m * MINUTE;
        let mut minute = Vec::new();
        for (s, _) in SERVICES {
            let rev = if deployed(s) { "b" } else { "a" };
            minute.push(traffic(s, rev, t));
            minute.push(upstream(s, rev, if deployed(s) { 5 } else { 12 }, t));
        }
        produce(&producer, &config, &minute).await;
        // Both instances' watermarks pass the minute's start (lateness 2 min).
        fleet = tokio::task::spawn_blocking(move || {
            fleet.until(Duration::from_secs(30), "both instances", |f| {
                f.both_at(t - 2 * MINUTE)
            });
            fleet
        })
        .await
        .unwrap();
    }

    let events = tokio::task::spawn_blocking({
        let (b, topic) = (bootstrap.clone(), config.topics.regressions.clone());
        move || read_until(&b, &topic, Duration::from_secs(60), |e| e.len() >= 2)
    })
    .await
    .unwrap();
    let regressions: Vec<Regression> = of(&events, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    assert_eq!(regressions.len(), 2, "{regressions:?}");
    for r in &regressions {
        assert!(deployed(&r.service), "{r:?}");
        assert!(r.externally_correlated, "deploy blamed: {r:?}");
        let evidence = r.correlation_evidence.as_deref().unwrap();
        assert!(
            evidence.contains("a2@a") && evidence.contains("b2@a"),
            "{evidence}"
        );
    }

    // The services really were split between two instances.
    let mut fleet = fleet;
    let owners: BTreeMap<&str, &str> = fleet
        .services
        .iter()
        .flat_map(|(i, ss)| ss.iter().map(move |s| (s.as_str(), i.as_str())))
        .collect();
    assert_eq!(owners.len(), 4, "{owners:?}");
    assert_eq!(owners["a1"], owners["a2"]);
    assert_eq!(owners["b1"], owners["b2"]);
    assert_ne!(owners["a1"], owners["b1"], "{owners:?}");

    // A clean stop tells the others not to wait for the instance any more.
    shutdown.cancel();
    first.wait().await.unwrap();
    second.wait().await.unwrap();
    tokio::task::spawn_blocking(move || {
        fleet.until(Duration::from_secs(30), "both instances leaving", |f| {
            f.watermarks.values().filter(|w| w.is_none()).count() >= 2 && f.watermarks.len() >= 2
        })
    })
    .await
    .unwrap();
}
