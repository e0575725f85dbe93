//! Running services: the handle of a started service, the generic start-up of a
//! Kafka-fed stage, command-line arguments shared by every binary, and shutdown
//! signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::consumer::{self, ConsumerSpec, Stage};
use crate::http::{self, Readiness};
use crate::kafka::{ensure_topics, EventProducer};
use crate::metrics::StageMetrics;
use crate::{Error, Result};

/// A started service.
#[derive(Debug)]
pub struct ServiceHandle {
    /// The service name.
    pub name: &'static str,
    /// Where its HTTP server listens (resolved, so port 0 becomes the real port).
    pub http_addr: SocketAddr,
    task: JoinHandle<Result<()>>,
}

impl ServiceHandle {
    /// Wraps a spawned service task.
    pub fn new(name: &'static str, http_addr: SocketAddr, task: JoinHandle<Result<()>>) -> Self {
        Self {
            name,
            http_addr,
            task,
        }
    }

    /// Waits until the service has stopped (after its shutdown token is cancelled,
    /// or on a fatal error).
    pub async fn wait(self) -> Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(Error::caused(self.name, "task panicked or was aborted")(e)),
        }
    }
}

/// Starts a Kafka-fed stage: creates topics, binds its HTTP server (health,
/// readiness, metrics), and runs the at-least-once consumer loop feeding `stage`.
///
/// On `shutdown`: the consumer stops, drains and commits, the producer flushes,
/// and only then does the HTTP server stop, so probes keep answering throughout.
pub async fn spawn_stage<S: Stage>(
    config: Arc<Config>,
    stage: S,
    http_addr: SocketAddr,
    input_topics: Vec<String>,
    shutdown: CancellationToken,
) -> Result<ServiceHandle> {
    let name = stage.name();
    let registry = Registry::new();
    let metrics = StageMetrics::new(&registry, name);
    crate::metrics::register_build_info(&registry, name);
    let ready = Readiness::default();
    let listener = http::bind(http_addr).await?;
    let http_addr = http::local_addr(&listener)?;
    let http_stop = CancellationToken::new();
    let server = http::serve(
        listener,
        http::ops_router(registry, ready.clone()),
        http_stop.clone(),
    );

    let producer = EventProducer::new(&config.kafka)?;
    ensure_topics(&config).await?;
    let spec = ConsumerSpec {
        group_id: format!("{}.{}", config.kafka.group_prefix, name),
        topics: input_topics,
        dlq_topic: config.topics.dlq.clone(),
    };
    tracing::info!(service = name, %http_addr, "started");
    let task = tokio::spawn(async move {
        ready.set(true);
        let outcome =
            consumer::run(&config, spec, stage, producer.clone(), metrics, shutdown).await;
        ready.set(false);
        if let Err(e) = producer.flush(Duration::from_millis(config.kafka.delivery_timeout_ms)) {
            tracing::warn!(service = name, error = %e, "producer flush at shutdown");
        }
        http_stop.cancel();
        let served = server.await.map_err(Error::caused(name, "http task"))?;
        tracing::info!(service = name, "stopped");
        outcome.and(served)
    });
    Ok(ServiceHandle::new(name, http_addr, task))
}

/// Command-line arguments every service binary (and `selfheal <service>`) takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceArgs {
    /// TOML configuration file (defaults apply to anything it leaves out).
    #[arg(long, short = 'c', env = "SELFHEAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers (`host:port,…`); overrides `kafka.bootstrap`.
    #[arg(long)]
    pub kafka: Option<String>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
}

impl ServiceArgs {
    /// Loads the configuration these arguments point at, with `--kafka` applied.
    pub fn load_config(&self) -> Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(k) = &self.kafka {
            config.kafka.bootstrap = Some(k.clone());
        }
        Ok(config)
    }
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// A token cancelled on Ctrl-C / SIGTERM.
pub fn signal_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        t.cancel();
    });
    token
}

/// The body of every service binary: tracing, configuration, signal handling,
/// then `run` until Ctrl-C / SIGTERM.
pub async fn main_with<F, Fut>(args: ServiceArgs, run: F) -> Result<()>
where
    F: FnOnce(Arc<Config>, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    crate::telemetry::init(args.log_json);
    let config = Arc::new(args.load_config()?);
    let shutdown = signal_token();
    run(config, shutdown).await
}

/// Defines `main` for a service binary: `service_main!(selfheal_ingest::run,
/// "about text")`. The binary crate needs `clap`, `tokio` and `anyhow`.
#[macro_export]
macro_rules! service_main {
    ($run:path, $about:literal) => {
        #[doc = $about]
        #[derive(clap::Parser)]
        #[command(version, about = $about)]
        struct Cli {
            #[command(flatten)]
            args: $crate::service::ServiceArgs,
        }

        #[tokio::main]
        async fn main() -> anyhow::Result<()> {
            let cli = <Cli as clap::Parser>::parse();
            $crate::service::main_with(cli.args, $run).await?;
            Ok(())
        }
    };
}
