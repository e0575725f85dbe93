//! `selfheal-fixer`: the fixer service on its own.

use clap::Parser;

/// selfheal fixer: verdicts → rollback / fix-forward actions.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: selfheal_common::service::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    selfheal_common::service::main_with(cli.args, selfheal_fixer::run).await?;
    Ok(())
}
