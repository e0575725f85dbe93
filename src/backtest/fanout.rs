//! One thread of cores per configuration, fed the same minutes' events.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::Context;
use selfheal_common::Config;
use selfheal_pipeline::{Cores, Ingest, Input, Outcome};
use selfheal_schemas::AnyEvent;

/// Minute batches → events → one set of cores per configuration, each set on
/// its own thread. The events of a minute are made once (one long-lived
/// normalizer, as in the live intake: online grouping must see the whole
/// stream for signature ids to stay consistent across batches) and shared,
/// so the configurations must share their ingest settings.
pub(super) struct Fanout<'scope> {
    ingest: Ingest,
    senders: Vec<SyncSender<Arc<Vec<AnyEvent>>>>,
    handles: Vec<ScopedJoinHandle<'scope, Outcome>>,
}

impl<'scope> Fanout<'scope> {
    /// `instances`: detector instances of the first configuration (the
    /// others, the simple recipe, run one).
    pub(super) fn start(
        scope: &'scope Scope<'scope, '_>,
        configs: &[&Config],
        instances: u16,
    ) -> anyhow::Result<Self> {
        let first = configs.first().context("no configuration")?;
        anyhow::ensure!(
            configs.iter().all(|c| c.ingest == first.ingest),
            "backtest configurations must share their ingest settings"
        );
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let mut cores = Cores::with_instances(config, if i == 0 { instances } else { 1 })?;
            // Bounded: the events of a few minutes in flight at most.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<AnyEvent>>>(64);
            handles.push(scope.spawn(move || {
                let mut out = Outcome::default();
                for batch in rx {
                    cores.feed_all(batch.iter(), &mut out);
                }
                cores.finish(&mut out);
                out
            }));
            senders.push(tx);
        }
        Ok(Self {
            ingest: Ingest::new(&first.ingest),
            senders,
            handles,
        })
    }

    /// One minute's records, in time order: its events, made once, go to
    /// every configuration's thread.
    pub(super) fn minute<'a>(&mut self, records: impl IntoIterator<Item = Input<'a>>) {
        let batch = Arc::new(self.ingest.minute(records));
        for tx in &self.senders {
            // A closed channel means its thread panicked: `finish` says so.
            let _ = tx.send(batch.clone());
        }
    }

    /// End of input: every configuration's outcome.
    pub(super) fn finish(self, records: usize) -> anyhow::Result<Vec<Outcome>> {
        drop(self.senders);
        self.handles
            .into_iter()
            .map(|h| {
                let mut out = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("backtest cores thread panicked"))?;
                out.records = records;
                Ok(out)
            })
            .collect()
    }
}

/// The minute of an event time.
pub(super) fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(60_000)
}

/// Runs the pipeline over parsed records, once per configuration in
/// `configs` (see [`Fanout`]): records stably sorted by time, fed minute by
/// minute.
pub(super) fn run_pipeline(
    configs: &[&Config],
    inputs: Vec<Input<'_>>,
    instances: u16,
) -> anyhow::Result<Vec<Outcome>> {
    // Stable order by time, file order within a millisecond (sorting keys,
    // not the records, which are large).
    let mut order: Vec<(i64, u32)> = inputs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                r.ts_ms(),
                u32::try_from(i).expect("fewer than 2^32 records"),
            )
        })
        .collect();
    order.sort_unstable();
    let n = inputs.len();
    let mut inputs: Vec<Option<Input<'_>>> = inputs.into_iter().map(Some).collect();
    std::thread::scope(|scope| {
        let mut fanout = Fanout::start(scope, configs, instances)?;
        for minute in order.chunk_by(|a, b| minute_of(a.0) == minute_of(b.0)) {
            fanout.minute(
                minute
                    .iter()
                    .map(|&(_, i)| inputs[i as usize].take().expect("each record once")),
            );
        }
        fanout.finish(n)
    })
}
