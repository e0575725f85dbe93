//! A partition leader killed with kill -9 under load, on the 3-node KRaft
//! cluster (`deploy/kafka/cluster3.sh`; `deploy/test.sh` starts it for the
//! whole suite and exports `SELFHEAL_TEST_CLUSTER3` and
//! `SELFHEAL_TEST_CLUSTER3_DIR`).
//!
//! Clients post numbered error lines with an `Idempotency-Key` per request
//! and resend a request that was not answered 200 (503, timeout) with the
//! same key, as a careful shipper does. Mid-stream the leader of the
//! signatures topic's first partition is killed. Afterwards a
//! `read_committed` reader must count every line exactly once: nothing
//! acknowledged is lost, and nothing resent is counted twice (each flush is
//! one transaction, `ingest.transactional`).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{of, read_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::AnyEvent;

const CLIENTS: usize = 6;
const REQUESTS_PER_CLIENT: usize = 50;
const LINES_PER_REQUEST: usize = 200;

/// The cluster's bootstrap list and run dir, or `None` (skipped locally,
/// a failure under `CI=true`).
fn cluster() -> Option<(String, String)> {
    match (
        std::env::var("SELFHEAL_TEST_CLUSTER3"),
        std::env::var("SELFHEAL_TEST_CLUSTER3_DIR"),
    ) {
        (Ok(b), Ok(d)) if !b.is_empty() && !d.is_empty() => Some((b, d)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!(
            "this test needs the 3-node Kafka cluster but SELFHEAL_TEST_CLUSTER3(_DIR) is not \
             set; run the suite with ./deploy/test.sh (it starts the cluster)"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no 3-node cluster (SELFHEAL_TEST_CLUSTER3 unset); run ./deploy/test.sh"
            );
            None
        }
    }
}

fn service(client: usize) -> String {
    format!("svc-{}", client % 4)
}

fn body(client: usize, request: usize) -> String {
    (0..LINES_PER_REQUEST)
        .map(|i| {
            let n = (client * REQUESTS_PER_CLIENT + request) * LINES_PER_REQUEST + i;
            serde_json::json!({
                "type": "log",
                "ts": format!("2026-03-09T10:{:02}:{:02}Z", request % 60, i % 60),
                "service": service(client),
                "revision": "a",
                "level": "error",
                "message": format!("order {n} failed: upstream refused (request_id=r{n})"),
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Default)]
struct Tally {
    acked_lines: AtomicU64,
    acked_requests: AtomicU64,
    not_ok_answers: AtomicU64,
    longest_retry_ms: AtomicU64,
}

/// Posts until 200, resending the same body with the same key.
async fn post_until_ok(
    http: &reqwest::Client,
    url: &str,
    client: usize,
    request: usize,
    tally: &Tally,
) {
    let key = format!("c{client}-r{request}");
    let text = body(client, request);
    let started = Instant::now();
    for attempt in 0.. {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "request {key} not accepted within 180 s ({attempt} attempts)"
        );
        let r = http
            .post(url)
            .header("Idempotency-Key", &key)
            .body(text.clone())
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        match r.map(|r| r.status().as_u16()) {
            Ok(200) => break,
            Ok(s) if s == 503 || s == 408 => {}
            Ok(s) => panic!("request {key}: unexpected status {s}"),
            Err(_) => {}
        }
        tally.not_ok_answers.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ms = started.elapsed().as_millis() as u64;
    tally.longest_retry_ms.fetch_max(ms, Ordering::Relaxed);
    tally
        .acked_lines
        .fetch_add(LINES_PER_REQUEST as u64, Ordering::Relaxed);
    tally.acked_requests.fetch_add(1, Ordering::Relaxed);
}

/// The node leading `topic`'s partition 0, and its pid from the cluster's
/// run dir.
fn leader_pid(bootstrap: &str, dir: &str, topic: &str) -> (i32, i32) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let leader = md.topics()[0]
        .partitions()
        .iter()
        .find(|p| p.id() == 0)
        .unwrap()
        .leader();
    let pid = std::fs::read_to_string(format!("{dir}/node{leader}/kafka.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (leader, pid)
}

fn counted(bootstrap: &str, topic: &str, want: u64, wait: Duration) -> u64 {
    let sum = |evs: &[Result<AnyEvent, Vec<u8>>]| -> u64 {
        of(evs, |e| match e {
            AnyEvent::SignatureCount(s) => Some(s),
            _ => None,
        })
        .iter()
        .map(|s| s.count as u64)
        .sum()
    };
    let events = read_until(bootstrap, topic, wait, |evs| want > 0 && sum(evs) >= want);
    sum(&events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_under_load_loses_nothing_and_counts_nothing_twice() {
    let Some((bs, dir)) = cluster() else { return };
    let mut config: Config = common::isolated_config(&bs);
    config.topics.partitions = 3;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/ndjson/logs", ingest.http_addr);
    let (leader, pid) = leader_pid(&bs, &dir, &config.topics.signatures);

    let tally = Arc::new(Tally::default());
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (http, url, tally) = (http.clone(), url.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            for r in 0..REQUESTS_PER_CLIENT {
                post_until_ok(&http, &url, c, r, &tally).await;
            }
        }));
    }
    let total = (CLIENTS * REQUESTS_PER_CLIENT) as u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    while tally.acked_requests.load(Ordering::Relaxed) < total / 4 {
        assert!(
            Instant::now() < deadline,
            "a quarter of the load not accepted in 180 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = tally.acked_requests.load(Ordering::Relaxed);
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
    for c in clients {
        c.await.unwrap();
    }
    let sent = total * LINES_PER_REQUEST as u64;
    let acked = tally.acked_lines.load(Ordering::Relaxed);
    let present = counted(
        &bs,
        &config.topics.signatures,
        acked,
        Duration::from_secs(90),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = counted(&bs, &config.topics.signatures, 0, Duration::from_secs(10));
    eprintln!(
        "broker kill: node {leader} (pid {pid}) killed after {killed_at} of {total} requests; \
         lines sent {sent}, acked {acked}, present {settled}, lost {}, duplicated {}; \
         answers other than 200: {}; longest request until 200: {} ms",
        acked.saturating_sub(settled),
        settled.saturating_sub(acked),
        tally.not_ok_answers.load(Ordering::Relaxed),
        tally.longest_retry_ms.load(Ordering::Relaxed),
    );
    assert_eq!(acked, sent, "every request was eventually accepted");
    assert_eq!(
        present, settled,
        "counts still moving after the reader caught up"
    );
    assert_eq!(
        settled, acked,
        "each acknowledged line counted exactly once"
    );
    shutdown.cancel();
    ingest.wait().await.unwrap();
}
