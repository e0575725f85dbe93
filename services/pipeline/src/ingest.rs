//! The ingest stage: a minute of records → the events the intake would
//! publish for it.

use selfheal_common::config::IngestConfig;
use selfheal_ingest::events::{EventBuilder, PreparedLog, StackCache};
use selfheal_ingest::normalize::Normalizer;
use selfheal_ingest::record::RecordRef;
use selfheal_schemas::AnyEvent;

/// One input record, parsed and (log lines) prepared ahead of the pipeline.
#[derive(Debug)]
pub enum Input<'a> {
    /// A log line, parsed, its stack parsed and its message masked.
    Log(PreparedLog<'a>),
    /// Traffic, deploy or build.
    Other(RecordRef<'a>),
}

impl Input<'_> {
    /// The record's event time, epoch milliseconds.
    pub fn ts_ms(&self) -> i64 {
        match self {
            Input::Log(l) => l.ts_ms(),
            Input::Other(r) => r.ts_ms(),
        }
    }

    /// The same, owning its strings.
    pub fn into_owned(self) -> Input<'static> {
        match self {
            Input::Log(l) => Input::Log(l.into_owned()),
            Input::Other(r) => Input::Other(r.into_owned().into()),
        }
    }
}

/// Minute batches → events, with one long-lived normalizer, as in the live
/// intake: online grouping must see the whole stream for signature ids to
/// stay consistent across batches.
pub struct Ingest {
    normalizer: Normalizer,
    stacks: StackCache,
}

impl Ingest {
    /// The ingest stage for `config`.
    pub fn new(config: &IngestConfig) -> Self {
        Self {
            normalizer: Normalizer::new(selfheal_ingest::cli::normalizer_config(config)),
            stacks: StackCache::default(),
        }
    }

    /// One minute's records, in time order → its events, in the order the
    /// live topics deliver a flush in.
    pub fn minute<'a>(&mut self, records: impl IntoIterator<Item = Input<'a>>) -> Vec<AnyEvent> {
        let mut builder = EventBuilder::default();
        for r in records {
            match r {
                Input::Log(l) => builder.add_prepared(&mut self.normalizer, l),
                Input::Other(r) => builder.add(&mut self.normalizer, &mut self.stacks, r),
            }
        }
        builder.finish().into_ordered().collect()
    }
}
