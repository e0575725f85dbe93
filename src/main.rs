//! `selfheal`: run any selfheal service, or all four in one process.
//!
//! `selfheal up` with no Kafka configured starts librdkafka's in-process mock
//! cluster, so a new user can try the whole loop with zero set-up.

mod backtest;
mod console;
mod demo;
mod deploy_event;
#[cfg(test)]
mod live_vs_backtest;
mod realbugs;
mod replay;
mod score;
mod simulate;
mod summary;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use selfheal_common::embedded::EmbeddedKafka;
use selfheal_common::service::{self, ServiceArgs, ServiceHandle};
use selfheal_common::{CancellationToken, Config};
use tokio::task::JoinSet;

// mimalloc rather than the system allocator: the backtest makes and drops
// millions of small strings across threads (events are built on one thread
// and dropped on another), where glibc's malloc cost it ~30% more CPU
// (deploy/bench-backtest.sh, README "Backtest throughput").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// selfheal: after every deploy, detect what broke, prove which change caused it,
/// and roll back or fix forward.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all four services in one process (embedded Kafka unless --kafka or
    /// kafka.bootstrap is set).
    Up(ServiceArgs),
    /// Run the ingest service (HTTP intake → events).
    Ingest(ServiceArgs),
    /// Run the detector service (events → regressions).
    Detector(ServiceArgs),
    /// Run the triage service (regressions + diffs → verdicts).
    Triage(ServiceArgs),
    /// Run the fixer service (verdicts → actions).
    Fixer(ServiceArgs),
    /// Normalize messages: one per line on stdin → `<signature id>\t<template>`.
    Normalize(selfheal_ingest::cli::NormalizeArgs),
    /// Replay an NDJSON history through detector, triage and fixer (dry-run)
    /// in event time; write regressions/verdicts/actions NDJSON files.
    Backtest(backtest::BacktestArgs),
    /// The web console (read-only): fleet, service and incident pages from
    /// the topics (`--kafka`) or a backtest's output directory (`--from`).
    Console(console::ConsoleArgs),
    /// The closed loop, end to end: a demo service gets a bad deploy; selfheal
    /// detects, attributes, rolls back, verifies and opens a fix branch.
    Demo(demo::DemoArgs),
    /// Record a deploy from any CI/CD step: POST its deploy record (with the
    /// diff from the local git checkout) to the intake.
    Deploy(deploy_event::DeployArgs),
    /// Replay the input topics from a point in time through detector, triage
    /// and fixer (dry-run), writing results to separate `<topic>.replay` topics.
    Replay(replay::ReplayArgs),
    /// Replay real Java bugs (Defects4J) as deploys through the backtest
    /// cores and score attribution by linkability class, with negative controls.
    Realbugs(realbugs::RealBugsArgs),
    /// Score a backtest's output directory against simulator truth (prints
    /// the table, writes DIR/score.json).
    Score {
        /// The backtest's output directory (regressions/verdicts/actions.ndjson;
        /// the simple recipe's row is kept from an earlier score.json there).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// The truth file from `selfheal simulate`.
        #[arg(long)]
        truth: std::path::PathBuf,
        /// The history the backtest read: with golden truth, also score the
        /// simple golden-signal reference on it.
        #[arg(long)]
        input: Option<std::path::PathBuf>,
    },
    /// Generate a labeled fleet history (NDJSON) and its ground truth
    /// (`--profile adversarial`, the default, `classic` or `golden`).
    Simulate {
        /// Where to write the history.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Where to write the ground truth (one JSON line per deploy).
        #[arg(long)]
        truth: std::path::PathBuf,
        #[command(flatten)]
        sim: simulate::SimCli,
    },
}

/// Errors are printed as their chain of causes, one line each, without the
/// backtrace `anyhow` captures when `RUST_BACKTRACE` is set (a config typo
/// is not a crash); `SELFHEAL_BACKTRACE=1` asks for it.
fn main() -> std::process::ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(Cli::parse())));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if std::env::var_os("SELFHEAL_BACKTRACE").is_some_and(|v| v != "0") {
                eprintln!("Error: {e:?}");
            } else {
                eprintln!("Error: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up(args).await,
        Command::Ingest(args) => Ok(service::main_with(args, selfheal_ingest::run).await?),
        Command::Detector(args) => Ok(service::main_with(args, selfheal_detector::run).await?),
        Command::Triage(args) => Ok(service::main_with(args, selfheal_triage::run).await?),
        Command::Fixer(args) => Ok(service::main_with(args, selfheal_fixer::run).await?),
        Command::Normalize(args) => selfheal_ingest::cli::main_normalize(args),
        Command::Backtest(args) => backtest::command(&args),
        Command::Console(args) => console::command(args).await,
        Command::Demo(args) => demo::command(args).await,
        Command::Replay(args) => replay::command(args).await,
        Command::Deploy(args) => deploy_event::command(args).await,
        Command::Realbugs(args) => realbugs::command(&args),
        Command::Score { dir, truth, input } => {
            let truth = score::read_truth(&truth)?;
            let simple = score::previous_simple_recipe(&dir);
            let mut report = score::score_dir(&truth, &dir, simple)?;
            if let Some(input) = input {
                report = report.with_reference(&truth, &input)?;
            }
            #[allow(clippy::print_stdout)]
            {
                print!("{}", report.table());
            }
            score::write_json(&dir, &report)
        }
        Command::Simulate { out, truth, sim } => {
            let create =
                |p: &std::path::Path| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
                    Ok(std::io::BufWriter::new(
                        std::fs::File::create(p)
                            .with_context(|| format!("creating {}", p.display()))?,
                    ))
                };
            let (mut o, mut t) = (create(&out)?, create(&truth)?);
            let (lines, deploys) = simulate::simulate(&sim.resolve(), &mut o, &mut t)?;
            std::io::Write::flush(&mut o)?;
            std::io::Write::flush(&mut t)?;
            eprintln!(
                "simulate: {lines} records, {deploys} deploys → {}",
                out.display()
            );
            Ok(())
        }
    }
}

/// All four services in one process. If one of them fails, the others are shut
/// down in order and the process exits non-zero: a half-running pipeline that
/// looks healthy is worse than a crash a supervisor restarts.
async fn up(args: ServiceArgs) -> anyhow::Result<()> {
    selfheal_common::telemetry::init(args.log_json);
    let mut config = args.load_config()?;
    // Declared before the services so it is dropped after them.
    let embedded = embedded_unless_configured(&mut config)?;
    let config = Arc::new(config);
    let shutdown = service::signal_token();
    let handles = tokio::select! {
        started = start_all(&config, &shutdown) => match started {
            Ok(h) => h,
            Err(e) => {
                shutdown.cancel();
                return Err(e);
            }
        },
        _ = shutdown.cancelled() => anyhow::bail!("interrupted during start-up"),
    };
    for h in &handles {
        tracing::info!(service = h.name, "http://{}/healthz", h.http_addr);
    }
    if config.console.enabled {
        match console::spawn_for_up(&config, &shutdown).await {
            Ok(addr) => tracing::info!("console: http://{addr}/"),
            Err(e) => {
                shutdown.cancel();
                return Err(
                    e.context("starting the console (console.enabled = false to go without)")
                );
            }
        }
    }
    tracing::info!(
        "selfheal is up: POST NDJSON to http://{}/v1/ndjson/logs (Ctrl-C to stop)",
        handles[0].http_addr
    );
    let mut set = JoinSet::new();
    for h in handles {
        set.spawn(async move { (h.name, h.wait().await) });
    }
    let mut failed = None;
    while let Some(joined) = set.join_next().await {
        let (name, result) = joined.context("service task")?;
        if let Err(e) = result {
            tracing::error!(service = name, error = %e, "service failed; stopping the others");
            shutdown.cancel();
            failed.get_or_insert(anyhow::anyhow!("{name}: {e}"));
        }
    }
    drop(embedded);
    match failed {
        Some(e) => Err(e),
        None => {
            tracing::info!("all services stopped");
            Ok(())
        }
    }
}

/// Starts librdkafka's mock cluster and points `config` at it when no Kafka
/// is configured. Keep the returned cluster alive as long as the services.
fn embedded_unless_configured(config: &mut Config) -> anyhow::Result<Option<EmbeddedKafka>> {
    if config.kafka.bootstrap.is_some() {
        return Ok(None);
    }
    let cluster = EmbeddedKafka::start(1, &config.topics.all(), config.topics.partitions)
        .context("starting the embedded Kafka")?;
    config.kafka.bootstrap = Some(cluster.bootstrap().to_owned());
    config.topics.create = false;
    // The mock cluster keeps transactions (librdkafka tests its own
    // transactional client against it), so the embedded run is the real
    // loop: the detector's ordered, exactly-once input (the same order as
    // `selfheal backtest`) and the intake's transactional flushes.
    tracing::info!(
        bootstrap = cluster.bootstrap(),
        "embedded Kafka (librdkafka mock cluster) started; nothing is persisted"
    );
    Ok(Some(cluster))
}

async fn start_all(
    config: &Arc<Config>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<ServiceHandle>> {
    Ok(vec![
        selfheal_ingest::spawn(config.clone(), shutdown.clone()).await?,
        selfheal_detector::spawn(config.clone(), shutdown.clone()).await?,
        selfheal_triage::spawn(config.clone(), shutdown.clone()).await?,
        selfheal_fixer::spawn(config.clone(), shutdown.clone()).await?,
    ])
}
