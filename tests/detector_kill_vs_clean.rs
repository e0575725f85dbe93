//! kill -9 changes no answer (issue 17): over finished input topics on the
//! real broker, an exactly-once detector killed with SIGKILL at seeded random
//! points (`SELFHEAL_TEST_KILLS` times, default 10) and restarted each time
//! emits exactly the regressions of an uninterrupted one: same signatures,
//! same detection event times, same `externally_correlated` flags, none
//! twice; and both emit what `selfheal backtest` finds in the history.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::history;
use common::{bootstrap, isolated_config};
use selfheal_common::{CancellationToken, Config};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A history small enough that a run takes seconds.
const SIM: &[&str] = &[
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

/// The detector binary over `config`'s input topics, writing to `run`'s own
/// group, changelog, fleet and regressions topics.
fn detector(config: &Config, run: &str) -> Killed {
    let t = &config.topics;
    Killed(
        Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .arg("detector")
            .env("SELFHEAL__DETECTOR__EXACTLY_ONCE", "true")
            .env(
                "SELFHEAL__KAFKA__BOOTSTRAP",
                config.kafka.bootstrap.as_deref().unwrap(),
            )
            .env(
                "SELFHEAL__KAFKA__GROUP_PREFIX",
                format!("{}.{run}", config.kafka.group_prefix),
            )
            .env("SELFHEAL__HTTP__DETECTOR", "127.0.0.1:0")
            // The killed instance's group membership expires after this (the
            // broker's minimum), and its open transaction after the
            // transaction timeout (plus the broker's 10 s abort sweep): until
            // then read_committed restores wait at it.
            .env("SELFHEAL__KAFKA__CLIENT__session.timeout.ms", "6000")
            .env("SELFHEAL__KAFKA__CLIENT__transaction.timeout.ms", "5000")
            .env("SELFHEAL__KAFKA__DELIVERY_TIMEOUT_MS", "4000")
            .env("SELFHEAL__TOPICS__SIGNATURES", &t.signatures)
            .env("SELFHEAL__TOPICS__TRAFFIC", &t.traffic)
            .env("SELFHEAL__TOPICS__DEPLOYS", &t.deploys)
            .env("SELFHEAL__TOPICS__BUILDS", &t.builds)
            .env(
                "SELFHEAL__TOPICS__REGRESSIONS",
                format!("{}.{run}", t.regressions),
            )
            .env("SELFHEAL__TOPICS__DLQ", &t.dlq)
            .env(
                "SELFHEAL__TOPICS__DETECTOR_CHANGELOG",
                format!("{}.{run}", t.detector_changelog),
            )
            .env(
                "SELFHEAL__TOPICS__DETECTOR_FLEET",
                format!("{}.{run}", t.detector_fleet),
            )
            .env("SELFHEAL__TOPICS__PARTITIONS", t.partitions.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn selfheal detector"),
    )
}

fn inputs(config: &Config) -> Vec<&str> {
    let t = &config.topics;
    vec![&t.signatures, &t.traffic, &t.deploys, &t.builds]
        .into_iter()
        .map(String::as_str)
        .collect()
}

/// Runs a detector over the finished inputs until it consumed them, killing
/// and restarting it `kills` times on the way; its regressions, and how many
/// input records had been committed at each kill. The kills come at seeded
/// random points of the input's progress (each at a committed position past
/// a random fraction of the input, plus a random 0–400 ms into the next
/// batch), so they land mid-stream however fast the machine is.
fn run(config: &Config, run: &str, kills: u32, seed: u64) -> (Vec<history::Key>, Vec<i64>, i64) {
    let bootstrap = config.kafka.bootstrap.clone().unwrap();
    let group = format!("{}.{run}.detector", config.kafka.group_prefix);
    let topics = inputs(config);
    let total = history::progress(&bootstrap, &group, &topics).1;
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut targets: Vec<i64> = (0..kills)
        .map(|_| total * (5 + (next() % 85) as i64) / 100)
        .collect();
    targets.sort_unstable();
    let mut at_kill = Vec::new();
    let mut d = detector(config, run);
    for target in targets {
        let deadline = Instant::now() + Duration::from_secs(120);
        while history::progress(&bootstrap, &group, &topics).0 < target && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(next() % 400));
        d.0.kill().unwrap();
        d.0.wait().unwrap();
        at_kill.push(history::progress(&bootstrap, &group, &topics).0);
        d = detector(config, run);
    }
    history::wait_consumed(&bootstrap, &group, &topics, Duration::from_secs(240));
    let out = history::regressions(&bootstrap, &format!("{}.{run}", config.topics.regressions));
    drop(d);
    (out, at_kill, total)
}

/// The detector reads its input partitions in event-time order
/// (`services/detector/src/merge.rs`), so over finished topics its answer is
/// a function of the input: a run killed and restored from its committed
/// offsets processes the same sequence as an uninterrupted one, and both
/// match `selfheal backtest`. The history is shipped in 2-minute rounds of
/// each service (as a fleet's shippers would send it); with rounds longer
/// than `detector.fleet_wait_s`, a partition holding several services
/// carries one service's data that far ahead of another's, and the fleet
/// guard stops waiting for the one behind, so such a run equals itself but
/// not the backtest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_killed_repeatedly_emits_what_an_uninterrupted_one_does() {
    let Some(bootstrap) = bootstrap() else { return };
    let kills: u32 = std::env::var("SELFHEAL_TEST_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let lines = history::simulated(dir.path(), SIM, 3);
    let backtest = history::backtest(dir.path(), &[]);

    // The input topics, finished: the whole history through the intake.
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 50;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let rounds = history::shipper_rounds(&lines, 2, 5);
    history::post_rounds(
        &format!("http://{}/v1/ndjson/logs", ingest.http_addr),
        rounds,
    )
    .await;
    shutdown.cancel();
    ingest.wait().await.unwrap();

    let started = Instant::now();
    let c = config.clone();
    let (clean, _, _) = tokio::task::spawn_blocking(move || run(&c, "clean", 0, 0))
        .await
        .unwrap();
    let clean_s = started.elapsed().as_secs_f64();
    let c = config.clone();
    let (killed, at_kill, total) = tokio::task::spawn_blocking(move || run(&c, "killed", kills, 7))
        .await
        .unwrap();
    eprintln!(
        "kill -9 vs clean: {} lines; clean {} regressions in {clean_s:.1} s, killed {kills}× {} \
         in {:.1} s; backtest {}",
        lines.len(),
        clean.len(),
        killed.len(),
        started.elapsed().as_secs_f64() - clean_s,
        backtest.len()
    );
    eprintln!("input records committed at each kill (of {total}): {at_kill:?}");
    assert!(!clean.is_empty(), "the history must give regressions");
    // The kills must land mid-stream, not all before the first commit or
    // after the last: at least half with some but not all input committed,
    // and progress between them.
    let mid = at_kill.iter().filter(|&&c| c > 0 && c < total).count();
    assert!(
        mid * 2 >= at_kill.len(),
        "kills mid-stream: {mid} of {}: {at_kill:?} of {total}",
        at_kill.len()
    );
    assert_eq!(
        clean,
        backtest,
        "clean over finished topics ({}) vs backtest ({}):\n{}",
        clean.len(),
        backtest.len(),
        history::diff(&clean, &backtest)
    );
    assert_eq!(
        killed,
        clean,
        "killed {kills}× ({}) vs clean ({}):\n{}",
        killed.len(),
        clean.len(),
        history::diff(&killed, &clean)
    );
}
