//! The web console: read-only fleet, service and incident pages, rendered on
//! the server (HTML + SVG, nothing to build or download at run time), live
//! by server-sent events.
//!
//! # Layout
//! - [`model`]: folds events into per-service state (pure).
//! - [`html`], [`chart`], [`diff`]: the pages, the timeline SVG and the cited
//!   hunk (pure).
//! - [`rows`]: a backtest output directory as events.
//! - [`kafka`]: feeds the model from the topics (adapter).
//! - [`http`]: the axum routes and the SSE stream (adapter).

mod chart;
mod diff;
mod html;
mod http;
mod kafka;
mod model;
mod rows;
#[cfg(test)]
mod testing;

use std::net::SocketAddr;
use std::path::PathBuf;

use selfheal_common::{CancellationToken, Config};

/// Arguments of `selfheal console`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConsoleArgs {
    /// TOML configuration file (topics, `console.listen`).
    #[arg(long, short = 'c', env = "SELFHEAL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Read the topics of this Kafka cluster (`host:port,…`); overrides
    /// `kafka.bootstrap`.
    #[arg(long, conflicts_with = "from")]
    pub(crate) kafka: Option<String>,
    /// Show a backtest's output directory instead of the topics.
    #[arg(long)]
    pub(crate) from: Option<PathBuf>,
    /// Read topics named with this suffix (as `selfheal demo --topic-suffix`
    /// writes them).
    #[arg(long, conflicts_with = "from")]
    pub(crate) topic_suffix: Option<String>,
    /// Listen address; overrides `console.listen`.
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub(crate) log_json: bool,
}

/// Starts the console for `selfheal up`: reads the topics of `config`'s
/// (possibly embedded) cluster and serves `console.listen`. Returns the
/// bound address.
pub(crate) async fn spawn_for_up(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let shared = http::Shared::default();
    kafka::spawn(config, shared.clone(), shutdown.clone())?;
    let (addr, _task) = http::serve(config.console.listen, shared, shutdown.clone()).await?;
    Ok(addr)
}

/// The `selfheal console` command: serves until Ctrl-C.
pub(crate) async fn command(args: ConsoleArgs) -> anyhow::Result<()> {
    selfheal_common::telemetry::init(args.log_json);
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(k) = &args.kafka {
        config.kafka.bootstrap = Some(k.clone());
    }
    if let Some(suffix) = &args.topic_suffix {
        config.topics = config.topics.with_suffix(suffix);
    }
    let listen = args.listen.unwrap_or(config.console.listen);
    let shutdown = selfheal_common::service::signal_token();
    let shared = http::Shared::default();
    let source = match &args.from {
        Some(dir) => {
            let events = rows::read_dir(dir)?;
            shared.fold_all(&events);
            format!("{} ({} events)", dir.display(), events.len())
        }
        None => {
            let Some(bootstrap) = config.kafka.bootstrap.clone() else {
                anyhow::bail!(
                    "selfheal console needs --kafka HOST:PORT (or kafka.bootstrap) or --from DIR \
                     (the embedded cluster of `selfheal up` is served by `selfheal up` itself)"
                );
            };
            kafka::spawn(&config, shared.clone(), shutdown.clone())?;
            format!("the topics at {bootstrap}")
        }
    };
    let (addr, task) = http::serve(listen, shared, shutdown).await?;
    tracing::info!("console: http://{addr}/ showing {source} (Ctrl-C to stop)");
    task.await?;
    Ok(())
}
