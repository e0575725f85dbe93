//! `selfheal backtest`: the same ingest normalization, detector, triage and
//! fixer (dry-run) over an NDJSON history, deterministically in event time.
//!
//! Records are stably sorted by `ts`, grouped into minute batches aligned
//! to the minute (the detector counts in minute buckets, so counting a
//! minute's identical errors once gives the same buckets as the intake's
//! shorter flushes, with far fewer events), turned into events, and fed through the cores in
//! the order the live topics would deliver them (the chain itself is the
//! `selfheal-pipeline` crate). Output files are described in
//! ARCHITECTURE.md; the same input and configuration give byte-identical files.
//!
//! # Layout
//! - [`run`] and [`command`] (here): the file streamed in one pass, or read
//!   whole and sorted; the command's checks, timing and tables.
//! - [`stream`]: the file streams through one reused buffer, a block at a
//!   time ([`blocks::Blocks`]); parser threads turn each block's lines into
//!   records and do the stateless part of normalization
//!   ([`parse::parse_chunk`]: parsing, stack parsing, masking) and sort each
//!   chunk by time; the calling thread merges chunks into minutes, runs each
//!   minute's online grouping and counting in input order
//!   ([`fanout::Fanout::minute`]) and hands the events to one thread of cores
//!   per configuration ([`selfheal_pipeline::Cores`]). Minutes run in order,
//!   each once no record of it can follow, so the result is the sorted run's.
//! - A file more than [`stream::STREAM_LAG_MINUTES`] out of time order is read
//!   whole, parsed in parallel and sorted instead ([`parse::parse_input`],
//!   [`fanout::run_pipeline`]).
//! - [`parse`]: lines → records, in parallel chunks, with per-line errors.
//! - [`fanout`]: one thread of cores per configuration (with `--truth`, the
//!   simple recipe beside the configuration tried), fed the same events.
//! - [`output`]: the NDJSON output files.
//! - `tests`: the backtest end to end against a one-record-at-a-time
//!   reference.

mod blocks;
mod fanout;
mod output;
mod parse;
mod stream;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::Context;
use selfheal_common::config::DetectorConfig;
use selfheal_common::Config;
use selfheal_pipeline::Outcome;

pub(crate) use output::write_outputs;

/// Arguments of `selfheal backtest`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BacktestArgs {
    /// NDJSON history (the interchange format).
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Directory for regressions.ndjson, verdicts.ndjson, actions.ndjson.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Configuration to try (thresholds etc.); defaults otherwise.
    #[arg(long, short = 'c')]
    pub(crate) config: Option<PathBuf>,
    /// Ground truth from `selfheal simulate`: score the detection and compare
    /// with the simple recipe on the same input.
    #[arg(long)]
    pub(crate) truth: Option<PathBuf>,
    /// Run this many detector instances, the services split among them by a
    /// hash of their name (as input partitions split them), exchanging fleet
    /// summaries after every event (a fleet topic without lag). Measures the
    /// fleet guard across instances; 1 is one detector over all services.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) detector_instances: u16,
}

/// Reads and parses the input at `path` and runs the pipeline once per
/// configuration (see [`fanout::Fanout`]): in one streaming pass when the file is in
/// time order, else read whole and sorted. Returns the outcomes and the
/// rejected lines.
pub(crate) fn run(
    configs: &[&Config],
    instances: u16,
    path: &Path,
) -> anyhow::Result<(Vec<Outcome>, Vec<String>)> {
    let first = configs.first().context("no configuration")?;
    let normalizer = selfheal_ingest::cli::normalizer_config(&first.ingest);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // 4 MiB blocks: as fast as larger ones on the simulator history (each
    // block boundary costs a thread start and a few minutes of records made
    // owned) and half the peak memory of 16 MiB.
    if let Some(done) = stream::run_streaming(
        configs,
        instances,
        file,
        &normalizer,
        threads,
        4 << 20,
        path,
    )? {
        return Ok(done);
    }
    let input = parse::read_input(path)?;
    let (inputs, rejected) = parse::parse_input(&input, &normalizer, path)?;
    Ok((fanout::run_pipeline(configs, inputs, instances)?, rejected))
}

/// The `selfheal backtest` command. The per-deploy table and the score table
/// are the command's output, so they go to stdout.
#[allow(clippy::print_stdout)]
pub(crate) fn command(args: &BacktestArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let simple_config = Config {
        detector: DetectorConfig::simple_recipe(),
        ..config.clone()
    };
    let configs: Vec<&Config> = if args.truth.is_some() {
        vec![&config, &simple_config]
    } else {
        vec![&config]
    };
    output::check_out_dir(&args.out)?;
    let started = std::time::Instant::now();
    let (outcomes, rejected) = run(&configs, args.detector_instances, &args.input)?;
    let run_s = started.elapsed().as_secs_f64();
    // After the input, as before: a bad input is reported first.
    let truth = args
        .truth
        .as_deref()
        .map(crate::score::read_truth)
        .transpose()?;
    let mut outcomes = outcomes.into_iter();
    let mut outcome = outcomes.next().context("no backtest outcome")?;
    let simple = outcomes.next();
    outcome.rejected = rejected.len();
    write_outputs(&args.out, &outcome, &rejected)?;
    let total_s = started.elapsed().as_secs_f64();
    // Records per second end to end: reading, parsing, the pipeline and
    // writing the outputs (what `deploy/bench-backtest.sh` reports too).
    eprintln!(
        "backtest: {} records ({} rejected) → {} regressions, {} verdicts, {} actions; read, parse and pipeline {run_s:.2}s{}, total {total_s:.2}s ({:.0} records/s)",
        outcome.records,
        rejected.len(),
        outcome.regressions.len(),
        outcome.verdicts.len(),
        outcome.actions.len(),
        if simple.is_some() {
            " (with the simple recipe alongside)"
        } else {
            ""
        },
        outcome.records as f64 / total_s.max(1e-9)
    );
    if !rejected.is_empty() {
        eprintln!(
            "backtest: {} of {} lines rejected (not replayed); each with its line, field and reason in {}",
            rejected.len(),
            outcome.records + rejected.len(),
            args.out.join("rejected.ndjson").display()
        );
    }
    print!("{}", crate::summary::deploy_table(&outcome));
    if let Some(truth) = truth {
        // Scored from the rows just written, so the score reads exactly
        // what other tools read (and tolerates fields they add or lack).
        let theirs = simple.map(|s| crate::score::score(&truth, &s.regressions));
        let report = crate::score::score_dir(&truth, &args.out, theirs)?
            .with_reference(&truth, &args.input)?;
        print!("{}", report.table());
        crate::score::write_json(&args.out, &report)?;
    }
    Ok(())
}
