//! The one-pass run: blocks of the file parsed on parser threads while the
//! pipeline runs the minutes no later record can reach.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::Context;
use selfheal_common::Config;
use selfheal_ingest::events::StackCache;
use selfheal_ingest::normalize::NormalizerConfig;
use selfheal_pipeline::{Input, Outcome};

use super::blocks::Blocks;
use super::fanout::{minute_of, Fanout};
use super::parse::{not_utf8, parse_chunk, split_chunks};

/// How many minutes a record may come after later ones and still be run in
/// one pass (minute `m` is run once a record of minute `m + LAG` is seen).
pub(super) const STREAM_LAG_MINUTES: i64 = 5;

/// Parses and runs in one pass, reading `input` block by block (`block`
/// bytes) into one reused buffer and parsing each block on `threads` threads
/// while the
/// pipeline runs, when the input is in time order at minute grain give or
/// take [`STREAM_LAG_MINUTES`] (histories usually are). The result is the
/// sorted run's: each minute's records are stably sorted and the minutes run
/// in order, and a minute runs only once no record of it can follow.
/// `None` if a record does come after its minute ran: the caller then sorts
/// the whole input.
pub(super) fn run_streaming(
    configs: &[&Config],
    instances: u16,
    input: impl std::io::Read,
    normalizer: &NormalizerConfig,
    threads: usize,
    block: usize,
    path: &Path,
) -> anyhow::Result<Option<(Vec<Outcome>, Vec<String>)>> {
    // About a thousand records: a chunk's record vector stays small enough
    // for the allocator to reuse freed memory (with 1 MiB chunks each got
    // fresh pages, which the kernel zeroes: ~8% slower end to end).
    const CHUNK: usize = 256 << 10;
    let parsers = threads.max(1);
    let mut blocks = Blocks::new(input, block);
    let mut stacks: Vec<StackCache> = (0..parsers).map(|_| StackCache::default()).collect();
    std::thread::scope(|scope| {
        let mut fanout = Fanout::start(scope, configs, instances)?;
        // Records of minutes not run yet when their block ended, owned.
        let mut carried: VecDeque<VecDeque<Input<'static>>> = VecDeque::new();
        let mut ran_up_to: Option<i64> = None;
        let mut newest = i64::MIN;
        let (mut records, mut rejected, mut line_offset) = (0, Vec::new(), 0);
        while let Some(block) = blocks
            .next_block()
            .with_context(|| format!("reading {}", path.display()))?
        {
            let chunks = split_chunks(block, block.len().div_ceil(CHUNK));
            let in_order = std::thread::scope(|inner| -> anyhow::Result<bool> {
                let chunks = &chunks;
                let receivers: Vec<_> = stacks
                    .iter_mut()
                    .enumerate()
                    .map(|(p, stacks)| {
                        // Parser `p` takes chunks p, p + parsers, …; a little
                        // ahead only.
                        let (tx, rx) = std::sync::mpsc::sync_channel(2);
                        inner.spawn(move || {
                            for chunk in chunks.iter().skip(p).step_by(parsers) {
                                if tx.send(parse_chunk(chunk, normalizer, stacks)).is_err() {
                                    break; // out of order: the run was abandoned
                                }
                            }
                        });
                        rx
                    })
                    .collect();
                let mut live: VecDeque<VecDeque<Input<'_>>> = std::mem::take(&mut carried);
                for k in 0..chunks.len() {
                    let chunk = receivers[k % parsers]
                        .recv()
                        .map_err(|_| anyhow::anyhow!("backtest parser thread panicked"))?;
                    if let Some(line) = chunk.not_utf8 {
                        return Err(not_utf8(path, line_offset + line));
                    }
                    for mut e in chunk.rejected {
                        e.line += line_offset;
                        rejected.push(serde_json::to_string(&e)?);
                    }
                    line_offset += chunk.lines;
                    records += chunk.records.len();
                    let (Some(first), Some(last)) = (chunk.records.front(), chunk.records.back())
                    else {
                        continue;
                    };
                    if ran_up_to.is_some_and(|done| minute_of(first.ts_ms()) <= done) {
                        return Ok(false);
                    }
                    newest = newest.max(minute_of(last.ts_ms()));
                    live.push_back(chunk.records);
                    run_minutes(
                        &mut live,
                        &mut fanout,
                        newest - STREAM_LAG_MINUTES,
                        &mut ran_up_to,
                    );
                }
                // The buffer is about to be reused: what waits for later
                // records takes its strings along.
                carried = live
                    .into_iter()
                    .map(|c| c.into_iter().map(Input::into_owned).collect())
                    .collect();
                Ok(true)
            })?;
            if !in_order {
                return Ok(None);
            }
        }
        run_minutes(&mut carried, &mut fanout, i64::MAX, &mut ran_up_to);
        Ok(Some((fanout.finish(records)?, rejected)))
    })
}

/// Runs every minute up to `up_to` that the live chunks hold, oldest first.
/// A minute's records are the front of each chunk that has it; two chunks
/// (a minute across a chunk end) are merged by time, the earlier chunk
/// first on ties, which is file order.
fn run_minutes<'a>(
    live: &mut VecDeque<VecDeque<Input<'a>>>,
    fanout: &mut Fanout<'_>,
    up_to: i64,
    ran_up_to: &mut Option<i64>,
) {
    loop {
        live.retain(|c| !c.is_empty());
        let front_minute = |c: &VecDeque<Input<'_>>| c.front().map(|r| minute_of(r.ts_ms()));
        let Some(m) = live.iter().filter_map(front_minute).min() else {
            return;
        };
        if m > up_to {
            return;
        }
        *ran_up_to = Some(m);
        let holders: Vec<usize> = (0..live.len())
            .filter(|&i| front_minute(&live[i]) == Some(m))
            .collect();
        if let [only] = holders[..] {
            let n = minute_len(&live[only], m);
            fanout.minute(live[only].drain(..n));
            continue;
        }
        let runs: Vec<Vec<Input<'a>>> = holders
            .iter()
            .map(|&i| {
                let n = minute_len(&live[i], m);
                live[i].drain(..n).collect()
            })
            .collect();
        let mut keys: Vec<(i64, usize, usize)> = runs
            .iter()
            .enumerate()
            .flat_map(|(k, run)| run.iter().enumerate().map(move |(i, r)| (r.ts_ms(), k, i)))
            .collect();
        keys.sort_unstable();
        let mut slots: Vec<Vec<Option<Input<'a>>>> = runs
            .into_iter()
            .map(|run| run.into_iter().map(Some).collect())
            .collect();
        fanout.minute(
            keys.iter()
                .map(|&(_, k, i)| slots[k][i].take().expect("each record once")),
        );
    }
}

/// How many records at the front of `chunk` are of minute `m`.
fn minute_len(chunk: &VecDeque<Input<'_>>, m: i64) -> usize {
    chunk
        .iter()
        .position(|r| minute_of(r.ts_ms()) != m)
        .unwrap_or(chunk.len())
}
