//! Records → events: normalization, scrubbing and per-request pre-aggregation of
//! log lines into SignatureCount events. Pure.

use std::collections::HashMap;

use selfheal_schemas::{Build, BuildStatus, Deploy, SignatureCount, Traffic};

use crate::normalize::{scrub, Normalizer, NormalizerConfig};
use crate::record::Record;

/// Longest scrubbed sample message kept on an event, in characters.
const MAX_SAMPLE_CHARS: usize = 2_000;
/// Longest scrubbed sample stack kept on an event, in characters.
const MAX_STACK_CHARS: usize = 16_000;

/// The events one batch of records turns into.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Events {
    /// One per (service, revision, signature) in the batch, in first-seen order.
    pub signatures: Vec<SignatureCount>,
    /// One per traffic record.
    pub traffic: Vec<Traffic>,
    /// One per deploy record.
    pub deploys: Vec<Deploy>,
    /// One per build record.
    pub builds: Vec<Build>,
}

impl Events {
    /// Total number of events.
    pub fn len(&self) -> usize {
        self.signatures.len() + self.traffic.len() + self.deploys.len() + self.builds.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`to_events`] normalizes with: a long-lived [`Normalizer`] (`&mut`), whose
/// template groups persist across calls (what services and replays want), or a
/// bare [`NormalizerConfig`] (`&`), which groups within this one call only.
pub trait WithNormalizer {
    /// Runs `f` with a normalizer.
    fn with<R>(self, f: impl FnOnce(&mut Normalizer) -> R) -> R;
}

impl WithNormalizer for &mut Normalizer {
    fn with<R>(self, f: impl FnOnce(&mut Normalizer) -> R) -> R {
        f(self)
    }
}

impl WithNormalizer for &NormalizerConfig {
    fn with<R>(self, f: impl FnOnce(&mut Normalizer) -> R) -> R {
        f(&mut Normalizer::new(self.clone()))
    }
}

/// Converts records into events. Log lines with the same (service, revision,
/// signature) are counted into one SignatureCount carrying the first/last event
/// time and the first occurrence as the scrubbed sample.
pub fn to_events(
    normalizer: impl WithNormalizer,
    records: impl IntoIterator<Item = Record>,
) -> Events {
    normalizer.with(|n| to_events_with(n, records))
}

fn to_events_with(
    normalizer: &mut Normalizer,
    records: impl IntoIterator<Item = Record>,
) -> Events {
    let mut out = Events::default();
    let mut index: HashMap<(String, String, u64), usize> = HashMap::new();
    for record in records {
        match record {
            Record::Log(log) => {
                let n = normalizer.normalize(
                    &log.service,
                    &log.message,
                    log.stack.as_deref(),
                    log.exception_type.as_deref(),
                );
                let key = (log.service.clone(), log.revision.clone(), n.signature);
                if let Some(&i) = index.get(&key) {
                    let sc = &mut out.signatures[i];
                    sc.count += 1;
                    sc.first_seen_ms = sc.first_seen_ms.min(log.ts_ms);
                    sc.last_seen_ms = sc.last_seen_ms.max(log.ts_ms);
                    continue;
                }
                index.insert(key, out.signatures.len());
                out.signatures.push(SignatureCount {
                    service: log.service,
                    revision: log.revision,
                    signature: format!("{:016x}", n.signature),
                    // Templates come from raw text too: scrub them as well.
                    // The normalizer already scrubbed the template.
                    template: n.template,
                    exception_type: n.exception_type,
                    level: log.level,
                    count: 1,
                    first_seen_ms: log.ts_ms,
                    last_seen_ms: log.ts_ms,
                    sample_message: truncate(&scrub(&log.message), MAX_SAMPLE_CHARS),
                    sample_stack: log
                        .stack
                        .map(|s| truncate(&scrub_lines(&s), MAX_STACK_CHARS)),
                    frames: n.frames,
                    trace_id: log.trace_id,
                });
            }
            Record::Traffic(t) => out.traffic.push(Traffic {
                service: t.service,
                revision: t.revision,
                window_start_ms: t.ts_ms,
                window_s: t.window_s,
                requests: t.requests,
            }),
            Record::Deploy(d) => out.deploys.push(Deploy {
                service: d.service,
                revision: d.revision,
                previous_revision: d.previous_revision,
                repo: d.repo,
                commit_range: d.commit_range,
                diff: d.diff,
                diff_url: d.diff_url,
                deployed_at_ms: d.ts_ms,
            }),
            Record::Build(b) => out.builds.push(Build {
                service: b.service,
                revision: b.revision,
                status: if b.failed {
                    BuildStatus::Failed
                } else {
                    BuildStatus::Succeeded
                },
                log_excerpt: b.log.map(|l| truncate(&scrub_lines(&l), MAX_STACK_CHARS)),
                finished_at_ms: b.ts_ms,
            }),
        }
    }
    out
}

/// Pre-aggregation across batches (pure): merges the events of many requests
/// into what one flush writes. SignatureCounts with the same (service, revision,
/// signature) become one (counts added, time bounds widened, the first sample
/// kept); traffic, deploys and builds are kept as they are, in arrival order.
#[derive(Debug, Default)]
pub struct Accumulator {
    events: Events,
    index: HashMap<(String, String, String), usize>,
}

impl Accumulator {
    /// Adds one batch's events.
    pub fn add(&mut self, events: Events) {
        for sc in events.signatures {
            let key = (
                sc.service.clone(),
                sc.revision.clone(),
                sc.signature.clone(),
            );
            match self.index.get(&key) {
                Some(&i) => {
                    let acc = &mut self.events.signatures[i];
                    acc.count += sc.count;
                    acc.first_seen_ms = acc.first_seen_ms.min(sc.first_seen_ms);
                    acc.last_seen_ms = acc.last_seen_ms.max(sc.last_seen_ms);
                    if acc.trace_id.is_none() {
                        acc.trace_id = sc.trace_id;
                    }
                }
                None => {
                    self.index.insert(key, self.events.signatures.len());
                    self.events.signatures.push(sc);
                }
            }
        }
        self.events.traffic.extend(events.traffic);
        self.events.deploys.extend(events.deploys);
        self.events.builds.extend(events.builds);
    }

    /// Events accumulated so far.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing is accumulated.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Takes everything accumulated, leaving the accumulator empty.
    pub fn take(&mut self) -> Events {
        self.index.clear();
        std::mem::take(&mut self.events)
    }
}

fn scrub_lines(text: &str) -> String {
    scrub(text).into_owned()
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((idx, _)) => s[..idx].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{parse_body, DefaultType};

    #[test]
    fn same_signature_in_one_batch_is_counted_once_with_time_bounds() {
        let body = r#"{"ts":2000,"service":"a","revision":"r2","message":"Timeout after 30ms for user bob@example.com"}
{"ts":1000,"service":"a","revision":"r2","message":"Timeout after 45ms for user eve@example.com"}
{"ts":1500,"service":"a","revision":"r1","message":"Timeout after 45ms for user eve@example.com"}
{"type":"traffic","ts":0,"service":"a","revision":"r2","requests":100}"#;
        let (records, errors) = parse_body(body, DefaultType::Log);
        assert!(errors.is_empty());
        let ev = to_events(
            &mut Normalizer::new(NormalizerConfig::default()),
            records.into_iter().map(|(_, r)| r),
        );
        assert_eq!(ev.signatures.len(), 2, "two revisions, one signature each");
        let first = &ev.signatures[0];
        assert_eq!(
            (first.count, first.first_seen_ms, first.last_seen_ms),
            (2, 1000, 2000)
        );
        assert_eq!(first.signature, ev.signatures[1].signature);
        assert!(!first.sample_message.contains("bob@example.com"));
        assert_eq!(ev.traffic.len(), 1);
    }

    #[test]
    fn accumulator_merges_batches_per_service_revision_signature() {
        let mut n = Normalizer::new(NormalizerConfig::default());
        let batch = |n: &mut Normalizer, body: &str| {
            let (records, errors) = parse_body(body, DefaultType::Log);
            assert!(errors.is_empty());
            to_events(n, records.into_iter().map(|(_, r)| r))
        };
        let mut acc = Accumulator::default();
        acc.add(batch(
            &mut n,
            r#"{"ts":2000,"service":"a","revision":"r","message":"Timeout after 30ms"}"#,
        ));
        acc.add(batch(
            &mut n,
            "{\"ts\":500,\"service\":\"a\",\"revision\":\"r\",\"message\":\"Timeout after 31ms\"}\n{\"ts\":900,\"service\":\"a\",\"revision\":\"r2\",\"message\":\"Timeout after 31ms\"}\n{\"type\":\"deploy\",\"ts\":1,\"service\":\"a\",\"revision\":\"r2\"}",
        ));
        assert_eq!(acc.len(), 3);
        let ev = acc.take();
        assert!(acc.is_empty());
        let sc = &ev.signatures[0];
        assert_eq!((sc.revision.as_str(), sc.count), ("r", 2));
        assert_eq!((sc.first_seen_ms, sc.last_seen_ms), (500, 2000));
        assert_eq!(sc.sample_message, "Timeout after 30ms", "first sample kept");
        assert_eq!(
            (ev.signatures[1].revision.as_str(), ev.signatures[1].count),
            ("r2", 1)
        );
        assert_eq!(ev.deploys.len(), 1);
        // Taken means forgotten: the next flush starts from zero.
        acc.add(batch(
            &mut n,
            r#"{"ts":3000,"service":"a","revision":"r","message":"Timeout after 32ms"}"#,
        ));
        assert_eq!(acc.take().signatures[0].count, 1);
    }
}
