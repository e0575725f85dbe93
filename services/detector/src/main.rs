//! `selfheal-detector`: the detector service on its own.

use clap::Parser;

/// selfheal detector: signature counts and deploys → regressions.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: selfheal_common::service::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    selfheal_common::service::main_with(cli.args, selfheal_detector::run).await?;
    Ok(())
}
