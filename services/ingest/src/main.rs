//! `selfheal-ingest`: the ingest service on its own.

use clap::Parser;

/// selfheal ingest: HTTP intake → normalized events on Kafka.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: selfheal_common::service::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    selfheal_common::service::main_with(cli.args, selfheal_ingest::run).await?;
    Ok(())
}
