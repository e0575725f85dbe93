//! Live = backtest on the real broker, through the intake (issue 17): a
//! simulated history fed to the HTTP intake of running services (ingest and
//! the exactly-once detector, as `selfheal up` wires them) in event-time
//! chunks, the services interleaved in a shuffled order per round, gives the
//! regressions `selfheal backtest` gives for the same file: same signature,
//! service, revision, detection event time and `externally_correlated` flag.
//!
//! The bound: the fleet guard waits for a lagging service only while it is
//! less than `detector.fleet_wait_s` (180 s) of event time behind; one
//! further behind is taken for down (so a stalled service cannot blind the
//! others) and its late counts cannot hold a decision any more. Live equals
//! the backtest when the services' relative lag at the detector stays within
//! it: shippers sending every minute or two do (the first test); larger
//! chunks need a larger `fleet_wait_s` (the second).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::history;
use common::{bootstrap, isolated_config};
use selfheal_common::CancellationToken;

/// Feeds the history `sim` through the intake in rounds of `chunk_minutes`
/// and compares with the backtest, both with `fleet_wait_s`.
async fn live_equals_backtest(sim: &[&str], chunk_minutes: i64, fleet_wait_s: u32) {
    let Some(bootstrap) = bootstrap() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lines = history::simulated(dir.path(), sim, 3);
    let wait = fleet_wait_s.to_string();
    let want = history::backtest(
        dir.path(),
        &[
            ("SELFHEAL__DETECTOR__FLEET_WAIT_S", &wait),
            ("SELFHEAL__DETECTOR__TRAFFIC_WAIT_S", &wait),
        ],
    );
    assert!(
        want.len() >= 3,
        "the history must give regressions: {want:?}"
    );

    let mut config = isolated_config(&bootstrap);
    // Short flushes: a round's requests wait for one flush, not a second.
    config.ingest.flush_interval_ms = 20;
    config.detector.fleet_wait_s = fleet_wait_s;
    // A service's traffic may sit a chunk behind its counts (behind another
    // service's chunk in a shared partition): wait for it as long.
    config.detector.traffic_wait_s = fleet_wait_s;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let detector = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let started = Instant::now();
    // A round's services at once, so flushes mix services and cut minutes.
    let rounds = history::shipper_rounds(&lines, chunk_minutes, 17);
    let n = history::post_rounds(
        &format!("http://{}/v1/ndjson/logs", ingest.http_addr),
        rounds,
    )
    .await;
    let posted = started.elapsed();
    let group = format!("{}.detector", config.kafka.group_prefix);
    let b = bootstrap.clone();
    let t = &config.topics;
    let topics = [&t.signatures, &t.traffic, &t.deploys, &t.builds].map(|s| s.to_owned());
    tokio::task::spawn_blocking(move || {
        let t: Vec<&str> = topics.iter().map(String::as_str).collect();
        history::wait_consumed(&b, &group, &t, Duration::from_secs(120));
    })
    .await
    .unwrap();
    let got = history::regressions(&bootstrap, &config.topics.regressions);
    eprintln!(
        "live = backtest ({chunk_minutes}-minute chunks, fleet_wait_s {fleet_wait_s}): {} lines \
         in {n} requests posted in {:.1} s, consumed after {:.1} s; live {} regressions \
         ({} externally correlated), backtest {}",
        lines.len(),
        posted.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        got.len(),
        got.iter().filter(|k| k.externally_correlated).count(),
        want.len()
    );
    shutdown.cancel();
    detector.wait().await.unwrap();
    ingest.wait().await.unwrap();
    assert_eq!(
        got,
        want,
        "live ({}) vs backtest ({}):\n{}",
        got.len(),
        want.len(),
        history::diff(&got, &want)
    );
}

/// Shippers sending every 2 minutes of event time, default settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_shipped_every_two_minutes_gives_the_backtests_regressions() {
    let sim = [
        "--services",
        "6",
        "--days",
        "1.25",
        "--seed",
        "9",
        "--deploy-every-hours",
        "4",
        "--profile",
        "adversarial",
    ];
    live_equals_backtest(&sim, 2, 180).await;
}

/// Chunks of 7 minutes (not aligned to the detector's minutes or hours)
/// over 8 services, the guard's wait raised past the chunks' skew.
///
/// A service's traffic can then sit a chunk behind its counts (behind another
/// service's chunk in a shared partition): `detector.traffic_wait_s` holds
/// its watermark back to its traffic, raised like the guard's wait. Without
/// it, 8 of 11 runs gave one regression 2 minutes early (emitted by an
/// evaluation on a partial request count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_shipped_in_seven_minute_chunks_gives_the_backtests_regressions() {
    let sim = [
        "--services",
        "8",
        "--days",
        "1.5",
        "--seed",
        "5",
        "--deploy-every-hours",
        "4",
        "--profile",
        "adversarial",
    ];
    live_equals_backtest(&sim, 7, 900).await;
}
