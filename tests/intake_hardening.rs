//! The HTTP intake under hostile or clumsy clients: slowloris headers and
//! idle keep-alive connections are closed within `ingest.header_timeout_ms`,
//! a slow body gets 408 within `ingest.body_timeout_ms`, unauthenticated
//! bodies are answered 401 without being read, the connection cap holds,
//! empty bodies are 400 and unknown content types 415 (no broker needed:
//! nothing here is written). With the real broker: a resend with the same
//! `Idempotency-Key`, also after the client timed out, is counted once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bootstrap, isolated_config, of, read_until};
use selfheal_common::config::TenantConfig;
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::AnyEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An ingest whose Kafka is a closed port: nothing can be written, which
/// these requests never get to.
fn offline_config() -> Config {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = Config::default();
    c.kafka.bootstrap = Some(dead.to_string());
    c.kafka.delivery_timeout_ms = 1_500;
    c.topics.create = false;
    c.ingest.consume_raw = false;
    c.http.ingest = "127.0.0.1:0".parse().unwrap();
    c.ingest.header_timeout_ms = 1_000;
    c.ingest.body_timeout_ms = 1_000;
    c
}

/// Reads until the server closes the connection (or `limit` passes);
/// returns what was read and when the close came.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    Some(started.elapsed()),
                )
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_within_the_timeouts() {
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(Arc::new(offline_config()), shutdown.clone())
        .await
        .unwrap();
    let addr = ingest.http_addr;

    // Slowloris: a header line every 300 ms, never the end of the headers.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /v1/ndjson/logs HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return Some(slow);
            }
        }
        Some(slow)
    });
    let mut slow = trickle.await.unwrap().unwrap();
    let (_, closed) = read_to_close(&mut slow, Duration::from_secs(1)).await;
    assert!(closed.is_some(), "the slowloris connection was not closed");

    // Measured precisely: headers never completed, closed after ~1 s.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST /v1/ndjson/logs HTTP/1.1\r\n")
        .await
        .unwrap();
    let (_, closed) = read_to_close(&mut stalled, Duration::from_secs(5)).await;
    let closed = closed.expect("stalled headers: connection not closed");
    assert!(
        closed < Duration::from_millis(2_500),
        "closed after {closed:?}"
    );

    // An idle keep-alive connection after a complete exchange.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let closed = closed.expect("idle keep-alive connection not closed");
    assert!(
        closed < Duration::from_millis(2_500),
        "closed after {closed:?}"
    );

    // A body that stops arriving: 408, and the connection closes.
    let mut body = TcpStream::connect(addr).await.unwrap();
    body.write_all(
        b"POST /v1/ndjson/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ts\":",
    )
    .await
    .unwrap();
    let (text, closed) = read_to_close(&mut body, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        closed.is_some_and(|c| c < Duration::from_millis(2_500)),
        "{closed:?}"
    );

    shutdown.cancel();
    ingest.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_bodies_are_answered_without_being_read() {
    let mut config = offline_config();
    config.ingest.tenants = vec![TenantConfig {
        name: "shop".into(),
        token: "s3cret-token".into(),
        token_env: String::new(),
        services: vec!["*".into()],
    }];
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(Arc::new(config), shutdown.clone())
        .await
        .unwrap();
    let addr = ingest.http_addr;
    // 40 clients announce 8 MB bodies and send 1 KB of each: a server that
    // read bodies before checking the token would wait for the rest (and
    // hold up to 320 MB); this one answers at once.
    let started = Instant::now();
    let clients: Vec<_> = (0..40)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let head = "POST /v1/ndjson/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 8388608\r\n\r\n";
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(&[b' '; 1024]).await.unwrap();
                read_to_close(&mut s, Duration::from_secs(5)).await
            })
        })
        .collect();
    for c in clients {
        let (text, closed) = c.await.unwrap();
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(closed.is_some(), "the unread body's connection stays open");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // With the token, the content type and the body are checked.
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/ndjson/logs");
    let post = |ct: Option<&'static str>, body: &'static str| {
        let mut r = http.post(&url).bearer_auth("s3cret-token").body(body);
        if let Some(ct) = ct {
            r = r.header("Content-Type", ct);
        }
        r.send()
    };
    assert_eq!(post(None, "").await.unwrap().status(), 400);
    assert_eq!(post(Some("text/plain"), " \n").await.unwrap().status(), 400);
    assert_eq!(
        post(Some("application/xml"), "<a/>")
            .await
            .unwrap()
            .status(),
        415
    );
    let r = post(Some("application/x-ndjson"), "not json")
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "parsed, the line rejected");
    shutdown.cancel();
    ingest.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let mut config = offline_config();
    config.ingest.max_connections = 2;
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(Arc::new(config), shutdown.clone())
        .await
        .unwrap();
    let addr = ingest.http_addr;
    // Two silent connections take both slots until the header timeout (1 s).
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(
        waited > Duration::from_millis(600),
        "served after {waited:?}: no cap"
    );
    shutdown.cancel();
    ingest.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_with_the_same_idempotency_key_is_counted_once() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.consume_raw = false;
    config.ingest.flush_interval_ms = 1_500;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/ndjson/logs", ingest.http_addr);
    let now = selfheal_common::wall_clock_ms();
    let body = |n: usize, tag: &str| {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"ts":{now},"service":"idem","revision":"r","message":"{tag} failed {i}"}}"#
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let http = reqwest::Client::new();

    // Sent twice with the same key: the second is the first's answer.
    let first = http
        .post(&url)
        .header("Idempotency-Key", "batch-1")
        .body(body(3, "alpha"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let first = first.text().await.unwrap();
    let again = http
        .post(&url)
        .header("Idempotency-Key", "batch-1")
        .body(body(3, "alpha"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first);
    let other = http
        .post(&url)
        .header("Idempotency-Key", "batch-1")
        .body(body(1, "other"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);

    // The client gives up before the flush (1.5 s) and resends: the resend
    // waits for the first request and gets its answer.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(&url)
        .header("Idempotency-Key", "batch-2")
        .body(body(2, "beta"))
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    let resend = http
        .post(&url)
        .header("Idempotency-Key", "batch-2")
        .body(body(2, "beta"))
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), 200);
    assert_eq!(resend.headers()["idempotent-replayed"], "true");

    // 3 + 2 log records written, each once.
    let events = read_until(
        &bootstrap,
        &config.topics.signatures,
        Duration::from_secs(20),
        |e| e.len() >= 2,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let more = read_until(
        &bootstrap,
        &config.topics.signatures,
        Duration::from_secs(3),
        |_| false,
    );
    assert!(more.len() >= events.len());
    let total: i64 = of(&more, |e| match e {
        AnyEvent::SignatureCount(s) => Some(s),
        _ => None,
    })
    .iter()
    .map(|s| s.count)
    .sum();
    assert_eq!(total, 5, "each record counted once");
    shutdown.cancel();
    ingest.wait().await.unwrap();
}
