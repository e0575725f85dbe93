//! Traffic read from a real Prometheus server (the Debian package's
//! `prometheus`, installed by `deploy/test.sh`): it scrapes a small
//! exporter whose counters grow at a known rate, the intake queries it with
//! the default PromQL at the end of each window, and the traffic topic of a
//! real broker gets one record per window for the service and revision,
//! with the requests and server errors of that window.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use common::{bootstrap, external, isolated_config, of, read_until};
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, Traffic};

/// Requests per second the exporter counts, and the share that fail.
const RPS: f64 = 40.0;
const ERR_RPS: f64 = 4.0;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn exporter() -> String {
    let started = Instant::now();
    let app = Router::new().route(
        "/metrics",
        get(move || async move {
            let t = started.elapsed().as_secs_f64();
            format!(
                "http_server_request_duration_seconds_count{{service=\"checkout\",revision=\"b2\",http_response_status_code=\"200\"}} {}\n\
                 http_server_request_duration_seconds_count{{service=\"checkout\",revision=\"b2\",http_response_status_code=\"503\"}} {}\n",
                ((RPS - ERR_RPS) * t).floor(),
                (ERR_RPS * t).floor()
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr.to_string()
}

async fn start_prometheus(bin: &str, target: &str, dir: &std::path::Path) -> (Killed, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shop\n    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "prometheus not ready at {url}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (Killed(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_per_window_comes_from_a_real_prometheus() {
    let Some(bootstrap) = bootstrap() else { return };
    let Some(bin) = external("SELFHEAL_TEST_PROMETHEUS") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let target = exporter().await;
    let (_prom, url) = start_prometheus(&bin, &target, tmp.path()).await;

    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let p = &mut config.ingest.prometheus_traffic;
    p.url = url;
    p.window_s = 5;
    p.lag_s = 2;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();

    let (bs, topic) = (bootstrap.clone(), config.topics.traffic.clone());
    let traffic_of = |events: &[Result<AnyEvent, Vec<u8>>]| -> Vec<Traffic> {
        of(events, |e| match e {
            AnyEvent::Traffic(t) => Some(t),
            _ => None,
        })
    };
    let events = tokio::task::spawn_blocking(move || {
        read_until(&bs, &topic, Duration::from_secs(60), |evs| {
            traffic_of(evs).iter().filter(|t| t.requests > 0).count() >= 3
        })
    })
    .await
    .unwrap();
    shutdown.cancel();
    ingest.wait().await.unwrap();

    let traffic = traffic_of(&events);
    let full: Vec<&Traffic> = traffic.iter().filter(|t| t.requests > 0).collect();
    assert!(full.len() >= 3, "{traffic:?}");
    for t in &full {
        assert_eq!(
            (t.service.as_str(), t.revision.as_str()),
            ("checkout", "b2")
        );
        assert_eq!(t.window_s, 5);
        assert_eq!(t.window_start_ms % 5_000, 0, "windows on the 5 s grid");
    }
    // Windows after the first full one: `increase` over 5 s of a 40/s
    // counter, within Prometheus' extrapolation and scrape jitter.
    for t in &full[1..] {
        assert!((120..=280).contains(&t.requests), "{t:?}");
        let errors = t.errors.expect("the errors query answered");
        let share = errors as f64 / t.requests as f64;
        assert!((0.04..=0.2).contains(&share), "{t:?}");
    }
    let mut starts: Vec<i64> = full.iter().map(|t| t.window_start_ms).collect();
    starts.dedup();
    assert_eq!(
        starts.len(),
        full.len(),
        "one record per window: {traffic:?}"
    );
}
