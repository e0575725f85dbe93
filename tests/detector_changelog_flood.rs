//! One service floods the detector with `max_signatures_per_service` distinct
//! signatures, each with a big sample and stack: the changelog's records stay
//! bounded (one record per signature, none near Kafka's 1 MB limit), the
//! exactly-once detector keeps running (it used to fail with
//! `MessageSizeTooLarge` at ~2,800 and restart-loop), and after a SIGKILL the
//! restarted detector restores all of them. Prints restore time and memory
//! per signature (the figures in the README).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{bootstrap, isolated_config};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use selfheal_common::Config;
use selfheal_detector::changelog::Reader;
use selfheal_schemas::{Event, SignatureCount};

const SIGNATURES: usize = 5_000;
/// 2026-03-09T10:00:00Z.
const T0: i64 = 1_773_050_400_000;
/// Half Kafka's default message limit.
const RECORD_BOUND: usize = 512 * 1024;

struct Detector {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Detector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Detector {
    fn start(config: &Config) -> Self {
        let t = &config.topics;
        let mut child = Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(["detector", "--log-json"])
            .env("SELFHEAL__DETECTOR__EXACTLY_ONCE", "true")
            .env(
                "SELFHEAL__KAFKA__BOOTSTRAP",
                config.kafka.bootstrap.as_deref().unwrap(),
            )
            .env("SELFHEAL__KAFKA__GROUP_PREFIX", &config.kafka.group_prefix)
            .env("SELFHEAL__HTTP__DETECTOR", "127.0.0.1:0")
            .env("SELFHEAL__KAFKA__CLIENT__session.timeout.ms", "6000")
            .env("SELFHEAL__TOPICS__SIGNATURES", &t.signatures)
            .env("SELFHEAL__TOPICS__TRAFFIC", &t.traffic)
            .env("SELFHEAL__TOPICS__DEPLOYS", &t.deploys)
            .env("SELFHEAL__TOPICS__BUILDS", &t.builds)
            .env("SELFHEAL__TOPICS__REGRESSIONS", &t.regressions)
            .env("SELFHEAL__TOPICS__DLQ", &t.dlq)
            .env(
                "SELFHEAL__TOPICS__DETECTOR_CHANGELOG",
                &t.detector_changelog,
            )
            .env("SELFHEAL__TOPICS__DETECTOR_FLEET", &t.detector_fleet)
            .env("SELFHEAL__TOPICS__PARTITIONS", t.partitions.to_string())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn selfheal detector");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The first log line containing every one of `needles`.
    fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
                Ok(line) if line.contains("ERROR") || line.contains("\"level\":\"ERROR\"") => {
                    panic!("detector logged an error: {line}")
                }
                Ok(_) => {}
                Err(_) => panic!("no log line with {needles:?} within {timeout:?}"),
            }
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

fn signature(i: usize) -> SignatureCount {
    SignatureCount {
        service: "flood".into(),
        revision: "a".into(),
        signature: format!("{i:016x}"),
        template: format!("{i} Timeout calling <*> after <*>ms {}", "word ".repeat(30)),
        exception_type: Some("TimeoutError".into()),
        level: "error".into(),
        count: 1,
        first_seen_ms: T0 + i as i64 * 10,
        last_seen_ms: T0 + i as i64 * 10,
        sample_message: format!("{i} {}", "m".repeat(2_000)),
        sample_stack: Some(format!(
            "Traceback (most recent call last):\n{}",
            format!("  File \"/app/src/flood/mod_{i}.py\", line 1, in f\n").repeat(160)
        )),
        frames: vec![],
        trace_id: None,
    }
}

/// Reads the whole changelog: (reassembled state, records, largest record).
fn read_changelog(bootstrap: &str, topic: &str) -> (Reader, usize, usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in md.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .unwrap();
        ends.push((p.id(), high));
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let (mut reader, mut records, mut biggest) = (Reader::default(), 0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let done = consumer.position().unwrap().elements().iter().all(|e| {
            let end = ends.iter().find(|(p, _)| *p == e.partition()).unwrap().1;
            matches!(e.offset(), Offset::Offset(o) if o >= end) || end == 0
        });
        if done {
            break;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            records += 1;
            let size = m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
            biggest = biggest.max(size);
            reader.apply(m.key().unwrap_or_default(), m.payload());
        }
    }
    (reader, records, biggest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_flood_keeps_the_detector_running_and_restores_after_a_kill() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = isolated_config(&bootstrap);
    assert_eq!(config.detector.max_signatures_per_service, SIGNATURES);
    selfheal_common::kafka::ensure_topics(&config)
        .await
        .unwrap();
    let mut first = Detector::start(&config);
    first.wait_for(&["restored detector state"], Duration::from_secs(120));
    let rss_before = first.rss_kib();

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let started = Instant::now();
    let sends: Vec<_> = (0..SIGNATURES)
        .map(|i| {
            let s = signature(i);
            let payload = selfheal_schemas::encode(&s).unwrap();
            let producer = producer.clone();
            let topic = config.topics.signatures.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(s.key()).payload(&payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e)
            }
        })
        .collect();
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }

    // Every signature reaches the changelog, in bounded records.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (records, biggest) = loop {
        assert!(first.running(), "the detector exited during the flood");
        let (reader, records, biggest) =
            read_changelog(&bootstrap, &config.topics.detector_changelog);
        let found = reader.finish();
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        let n = found
            .services
            .get("flood")
            .map_or(0, |s| s.signatures.len());
        if n == SIGNATURES {
            break (records, biggest);
        }
        assert!(
            Instant::now() < deadline,
            "{n} of {SIGNATURES} signatures in the changelog"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let flood_s = started.elapsed().as_secs_f64();
    assert!(
        biggest < RECORD_BOUND,
        "largest changelog record {biggest} bytes"
    );
    // Only changed parts are written: about one record per signature plus a
    // head per transaction, not the whole service per batch.
    assert!(records < SIGNATURES + 200, "{records} changelog records");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.running(), "the detector exited after the flood");
    let rss_flooded = first.rss_kib();
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = Detector::start(&config);
    let line = second.wait_for(
        &[
            "restored detector state",
            &format!("\"signatures\":{SIGNATURES}"),
        ],
        Duration::from_secs(150),
    );
    let elapsed_ms: u64 = line
        .split("\"elapsed_ms\":")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no elapsed_ms in {line}"));
    let mut second = second;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(second.running(), "the restarted detector exited");
    let rss_restored = second.rss_kib();
    let per_sig = |after: u64| (after.saturating_sub(rss_before) * 1024) as f64 / SIGNATURES as f64;
    eprintln!(
        "FIGURES: {SIGNATURES} signatures flooded and in the changelog after {flood_s:.1} s; \
         {records} changelog records, largest {biggest} B; restore {elapsed_ms} ms; \
         RSS idle {rss_before} KiB, flooded {rss_flooded} KiB ({:.0} B/signature), \
         restored {rss_restored} KiB ({:.0} B/signature over the idle RSS)",
        per_sig(rss_flooded),
        per_sig(rss_restored),
    );
}
