//! Records → events: normalization, scrubbing and per-request pre-aggregation of
//! log lines into SignatureCount events. Pure.
//!
//! [`to_events`] does it all in one call. Replays that want the second core
//! split it: [`prepare_log`] does the stateless part of a log line (stack
//! parsing, exception type, masking) on any thread, ahead of time, and
//! [`EventBuilder::add_prepared`] the part that must follow input order
//! (online grouping, counting). Both paths run the same code.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use selfheal_schemas::{
    AnyEvent, Build, BuildStatus, Deploy, InstanceGauge, LatencyHistogram, SignatureCount, Traffic,
};

use crate::golden::{gauge_event, histogram_event, Merger};

use crate::normalize::hash::{PreHashed, StableHasher};
use crate::normalize::stack::{self, Parsed};
use crate::normalize::{scrub, Normalizer, NormalizerConfig, Prepared};
use crate::record::{LogRef, Record, RecordRef};

/// Longest scrubbed sample message kept on an event, in characters.
const MAX_SAMPLE_CHARS: usize = 2_000;
/// Longest scrubbed sample stack kept on an event, in characters.
const MAX_STACK_CHARS: usize = 16_000;

/// The events one batch of records turns into.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Events {
    /// One per (service, revision, signature, event-time minute) in the batch,
    /// in first-seen order.
    pub signatures: Vec<SignatureCount>,
    /// One per traffic record.
    pub traffic: Vec<Traffic>,
    /// One per deploy record.
    pub deploys: Vec<Deploy>,
    /// One per build record.
    pub builds: Vec<Build>,
    /// One per (service, revision, metric, unit, route, bounds, window,
    /// event-time minute), merged bucket-wise.
    pub latency: Vec<LatencyHistogram>,
    /// One per (service, instance, metric, event-time minute): the latest.
    pub gauges: Vec<InstanceGauge>,
}

impl Events {
    /// Total number of events.
    pub fn len(&self) -> usize {
        self.signatures.len()
            + self.traffic.len()
            + self.deploys.len()
            + self.builds.len()
            + self.latency.len()
            + self.gauges.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every event, in the order the live topics deliver a flush in:
    /// deploys and builds first (a revision is known before its data), then
    /// traffic, latency and gauges, then signature counts.
    pub fn into_ordered(self) -> impl Iterator<Item = AnyEvent> {
        self.deploys
            .into_iter()
            .map(AnyEvent::Deploy)
            .chain(self.builds.into_iter().map(AnyEvent::Build))
            .chain(self.traffic.into_iter().map(AnyEvent::Traffic))
            .chain(self.latency.into_iter().map(AnyEvent::LatencyHistogram))
            .chain(self.gauges.into_iter().map(AnyEvent::InstanceGauge))
            .chain(self.signatures.into_iter().map(AnyEvent::SignatureCount))
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
/// signature) in the same event-time minute are counted into one SignatureCount carrying the first/last event
/// time and the first occurrence as the scrubbed sample.
pub fn to_events(
    normalizer: impl WithNormalizer,
    records: impl IntoIterator<Item = Record>,
) -> Events {
    normalizer.with(|n| {
        let mut stacks = StackCache::default();
        let mut builder = EventBuilder::default();
        for record in records {
            builder.add(n, &mut stacks, RecordRef::from(record));
        }
        builder.finish()
    })
}

/// One distinct stack trace, parsed once: what every log line carrying it needs.
#[derive(Debug)]
pub struct PreparedStack {
    text: Box<str>,
    parsed: Parsed,
    fingerprint: Vec<String>,
    /// The scrubbed, truncated stack for samples, made when first needed.
    sample: OnceLock<String>,
}

impl PreparedStack {
    fn new(config: &NormalizerConfig, text: &str) -> Self {
        let parsed = stack::parse(text, &config.in_app);
        Self {
            text: text.into(),
            fingerprint: Normalizer::fingerprint(config, &parsed.frames),
            parsed,
            sample: OnceLock::new(),
        }
    }

    fn sample(&self) -> &str {
        self.sample
            .get_or_init(|| truncate(&scrub_lines(&self.text), MAX_STACK_CHARS))
    }
}

/// Parsed stacks by their text. Services print the same few traces over and
/// over while their messages carry ids, so stacks, unlike messages, are worth
/// remembering. Bounded; what it returns is a pure function of the text and
/// the configuration, so forgetting never changes a result.
#[derive(Debug, Default)]
pub struct StackCache {
    by_hash: HashMap<u64, Arc<PreparedStack>, PreHashed>,
    bytes: usize,
}

impl StackCache {
    /// Most stack text held before the cache starts over.
    const MAX_BYTES: usize = 32 << 20;

    /// The prepared form of `text`.
    pub fn get(&mut self, config: &NormalizerConfig, text: &str) -> Arc<PreparedStack> {
        let mut h = StableHasher::new();
        h.write_str(text);
        let key = h.finish();
        if let Some(p) = self.by_hash.get(&key) {
            if *p.text == *text {
                return p.clone();
            }
            // A hash collision: correct, just not cached.
            return Arc::new(PreparedStack::new(config, text));
        }
        if self.bytes + text.len() > Self::MAX_BYTES {
            self.by_hash.clear();
            self.bytes = 0;
        }
        let p = Arc::new(PreparedStack::new(config, text));
        self.bytes += text.len();
        self.by_hash.insert(key, p.clone());
        p
    }
}

/// A log record made ready by [`prepare_log`]: everything but the grouping.
#[derive(Debug)]
pub struct PreparedLog<'a> {
    /// The record, its stack moved into `stack`.
    log: LogRef<'a>,
    stack: Option<Arc<PreparedStack>>,
    prepared: Prepared,
}

impl PreparedLog<'_> {
    /// Event time, epoch milliseconds.
    pub fn ts_ms(&self) -> i64 {
        self.log.ts_ms
    }

    /// The same, owning its strings (to outlive the input it borrowed from).
    pub fn into_owned(self) -> PreparedLog<'static> {
        PreparedLog {
            log: self.log.into_owned().into(),
            stack: self.stack,
            prepared: self.prepared,
        }
    }
}

/// The stateless part of turning a log record into events: stack parsing
/// (through `stacks`), exception type and masking. Pure; any thread.
pub fn prepare_log<'a>(
    config: &NormalizerConfig,
    stacks: &mut StackCache,
    mut log: LogRef<'a>,
) -> PreparedLog<'a> {
    let stack = log.stack.take().map(|s| stacks.get(config, &s));
    let mut prepared = Prepared::default();
    Normalizer::prepare_into(
        config,
        &log.message,
        stack.as_deref().map(|s| &s.parsed),
        log.exception_type.as_deref(),
        &mut prepared,
    );
    PreparedLog {
        log,
        stack,
        prepared,
    }
}

/// Builds one batch's [`Events`] record by record, in input order.
#[derive(Debug, Default)]
pub struct EventBuilder {
    out: Events,
    /// Hash of (service, revision, signature) → index in `out.signatures`.
    index: HashMap<u64, usize, PreHashed>,
    /// Signatures whose hash was taken by another key (checked one by one).
    collided: Vec<usize>,
    /// Numeric signature of each of `out.signatures`.
    ids: Vec<u64>,
    /// Histograms and gauges being merged.
    metrics: Merger,
}

impl EventBuilder {
    /// Adds one record of any type (log lines prepared on the spot).
    pub fn add(
        &mut self,
        normalizer: &mut Normalizer,
        stacks: &mut StackCache,
        record: RecordRef<'_>,
    ) {
        match record {
            RecordRef::Log(log) => {
                let p = prepare_log(normalizer.config(), stacks, log);
                self.add_prepared(normalizer, p);
            }
            RecordRef::Traffic(t) => self.out.traffic.push(Traffic {
                service: t.service,
                revision: t.revision,
                window_start_ms: t.ts_ms,
                window_s: t.window_s,
                requests: t.requests,
                errors: t.errors,
            }),
            RecordRef::Histogram(h) => self.metrics.add_histogram(histogram_event(h)),
            RecordRef::Gauge(g) => self.metrics.add_gauge(gauge_event(g)),
            RecordRef::Deploy(d) => self.out.deploys.push(Deploy {
                service: d.service,
                revision: d.revision,
                previous_revision: d.previous_revision,
                repo: d.repo,
                commit_range: d.commit_range,
                diff: d.diff,
                diff_url: d.diff_url,
                deployed_at_ms: d.ts_ms,
            }),
            RecordRef::Build(b) => self.out.builds.push(Build {
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

    /// Adds a log record made ready by [`prepare_log`]. Calls must come in
    /// input order (grouping is online).
    pub fn add_prepared(&mut self, normalizer: &mut Normalizer, p: PreparedLog<'_>) {
        let no_fingerprint: &[String] = &[];
        let fingerprint = p
            .stack
            .as_deref()
            .map_or(no_fingerprint, |s| &s.fingerprint);
        let (signature, template) =
            normalizer.group_prepared(&p.log.service, &p.prepared, fingerprint);
        let log = p.log;
        let minute = minute_of(log.ts_ms);
        let mut h = StableHasher::new();
        h.write_str(&log.service);
        h.write_str(&log.revision);
        h.write_u64(signature);
        h.write_u64(minute as u64);
        let key = h.finish();
        let found = match self.index.get(&key) {
            Some(&i) if self.is(i, &log.service, &log.revision, signature, minute) => Some(i),
            Some(_) => self
                .collided
                .iter()
                .copied()
                .find(|&i| self.is(i, &log.service, &log.revision, signature, minute)),
            None => None,
        };
        if let Some(i) = found {
            let sc = &mut self.out.signatures[i];
            sc.count += 1;
            sc.first_seen_ms = sc.first_seen_ms.min(log.ts_ms);
            sc.last_seen_ms = sc.last_seen_ms.max(log.ts_ms);
            // Keep a sample *with* a stack once one arrives: the first line
            // of a signature may have come from a shipper that cut the trace,
            // and triage links errors to code through the frames.
            if sc.sample_stack.is_none() {
                if let Some(stack) = p.stack.as_deref() {
                    sc.sample_message = truncate(&scrub(&log.message), MAX_SAMPLE_CHARS);
                    sc.sample_stack = Some(stack.sample().to_owned());
                    sc.frames = stack.parsed.frames.clone();
                }
            }
            return;
        }
        let i = self.out.signatures.len();
        match self.index.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collided.push(i),
        }
        self.ids.push(signature);
        self.out.signatures.push(SignatureCount {
            service: log.service.into_owned(),
            revision: log.revision.into_owned(),
            signature: format!("{signature:016x}"),
            // Templates come from raw text too: the normalizer already
            // scrubbed the template.
            template: template.to_owned(),
            // Shippers may send it as a field of its own: untrusted text too.
            exception_type: p.prepared.exception_type.map(scrub_owned),
            level: log.level.into_owned(),
            count: 1,
            first_seen_ms: log.ts_ms,
            last_seen_ms: log.ts_ms,
            sample_message: truncate(&scrub(&log.message), MAX_SAMPLE_CHARS),
            sample_stack: p.stack.as_deref().map(|s| s.sample().to_owned()),
            frames: p
                .stack
                .as_deref()
                .map(|s| s.parsed.frames.clone())
                .unwrap_or_default(),
            trace_id: log.trace_id.map(|t| scrub_owned(t.into_owned())),
        });
    }

    fn is(&self, i: usize, service: &str, revision: &str, signature: u64, minute: i64) -> bool {
        let sc = &self.out.signatures[i];
        self.ids[i] == signature
            && sc.service == service
            && sc.revision == revision
            && minute_of(sc.first_seen_ms) == minute
    }

    /// The batch's events.
    pub fn finish(mut self) -> Events {
        (self.out.latency, self.out.gauges) = self.metrics.take();
        self.out
    }
}

/// Pre-aggregation across batches (pure): merges the events of many requests
/// into what one flush writes. SignatureCounts with the same (service, revision,
/// signature, minute) become one (counts added, time bounds widened, the first sample
/// kept); traffic, deploys and builds are kept as they are, in arrival order.
#[derive(Debug, Default)]
pub struct Accumulator {
    events: Events,
    index: HashMap<(String, String, String, i64), usize>,
    metrics: Merger,
}

impl Accumulator {
    /// Adds one batch's events.
    pub fn add(&mut self, events: Events) {
        for sc in events.signatures {
            let key = (
                sc.service.clone(),
                sc.revision.clone(),
                sc.signature.clone(),
                minute_of(sc.first_seen_ms),
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
                    if acc.sample_stack.is_none() && sc.sample_stack.is_some() {
                        acc.sample_message = sc.sample_message;
                        acc.sample_stack = sc.sample_stack;
                        acc.frames = sc.frames;
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
        self.metrics.absorb(events.latency, events.gauges);
    }

    /// Events accumulated so far.
    pub fn len(&self) -> usize {
        self.events.len() + self.metrics.len()
    }

    /// Whether nothing is accumulated.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.metrics.is_empty()
    }

    /// Takes everything accumulated, leaving the accumulator empty.
    pub fn take(&mut self) -> Events {
        self.index.clear();
        let mut out = std::mem::take(&mut self.events);
        (out.latency, out.gauges) = self.metrics.take();
        out
    }
}

/// The event-time minute of `ts_ms`. Counts are kept per minute: the
/// detector buckets a count at its first occurrence, so a count merged
/// across minutes would move the later minutes' errors to the first one,
/// and what the detector sees would depend on how requests and flushes cut
/// the stream (issue 17: live must equal the backtest, which counts per
/// minute).
fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(60_000)
}

fn scrub_lines(text: &str) -> String {
    scrub(text).into_owned()
}

/// `text` scrubbed, without a copy when there is nothing to redact.
fn scrub_owned(text: String) -> String {
    match scrub(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(s) => s,
    }
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

    /// The detector buckets a count at its first occurrence: one count over
    /// two minutes would move the second minute's errors into the first, and
    /// live results would depend on how requests cut the stream.
    #[test]
    fn counts_never_span_a_minute_whatever_the_batching() {
        let line = |ts: i64| {
            format!(r#"{{"ts":{ts},"service":"a","revision":"r","message":"Timeout after 30ms"}}"#)
        };
        let body = [59_000, 59_500, 60_000, 125_000].map(line).join("\n");
        let (records, errors) = parse_body(&body, DefaultType::Log);
        assert!(errors.is_empty());
        let one = to_events(
            &mut Normalizer::new(NormalizerConfig::default()),
            records.into_iter().map(|(_, r)| r),
        );
        let counts: Vec<(i64, i64, i64)> = one
            .signatures
            .iter()
            .map(|s| (s.count, s.first_seen_ms, s.last_seen_ms))
            .collect();
        assert_eq!(
            counts,
            [
                (2, 59_000, 59_500),
                (1, 60_000, 60_000),
                (1, 125_000, 125_000)
            ]
        );
        // Across requests merged into one flush: the same.
        let mut normalizer = Normalizer::new(NormalizerConfig::default());
        let mut acc = Accumulator::default();
        for ts in [59_000, 60_000, 59_500, 125_000] {
            let (records, _) = parse_body(&line(ts), DefaultType::Log);
            acc.add(to_events(
                &mut normalizer,
                records.into_iter().map(|(_, r)| r),
            ));
        }
        let mut merged: Vec<(i64, i64, i64)> = acc
            .take()
            .signatures
            .iter()
            .map(|s| (s.count, s.first_seen_ms, s.last_seen_ms))
            .collect();
        merged.sort_unstable_by_key(|c| c.1);
        assert_eq!(merged, counts);
    }

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

    /// `to_events` as it was before the builder: one `normalize` call per
    /// record and a string-keyed index. The builder must give the same events.
    fn oracle(normalizer: &mut Normalizer, records: Vec<Record>) -> Events {
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
                        template: n.template,
                        exception_type: n.exception_type.map(scrub_owned),
                        level: log.level,
                        count: 1,
                        first_seen_ms: log.ts_ms,
                        last_seen_ms: log.ts_ms,
                        sample_message: truncate(&scrub(&log.message), MAX_SAMPLE_CHARS),
                        sample_stack: log
                            .stack
                            .map(|s| truncate(&scrub_lines(&s), MAX_STACK_CHARS)),
                        frames: n.frames,
                        trace_id: log.trace_id.map(scrub_owned),
                    });
                }
                other => {
                    let ev = to_events(&NormalizerConfig::default(), [other]);
                    out.traffic.extend(ev.traffic);
                    out.deploys.extend(ev.deploys);
                    out.builds.extend(ev.builds);
                }
            }
        }
        out
    }

    #[test]
    fn builder_gives_the_events_one_normalize_call_per_record_gave() {
        let py = |f: &str| {
            format!(
                "Traceback (most recent call last):\\n  File \\\"/app/{f}.py\\\", line 3, in {f}\\nKeyError: 'k'"
            )
        };
        let jvm = "java.lang.IllegalStateException: pool\\n\\tat com.shop.Pool.get(Pool.java:42)\\nCaused by: java.sql.SQLException: lost\\n\\tat com.shop.Db.q(Db.java:7)";
        let mut body = String::new();
        for i in 0..300 {
            let (svc, rev) = (["a", "b", "c"][i % 3], ["r1", "r2"][i % 2]);
            let (msg, stack, exc) = match i % 7 {
                0 => (
                    format!("Timeout after {i}ms calling pay (request_id={i:x})"),
                    None,
                    None,
                ),
                1 => (format!("KeyError: 'k{i}'"), Some(py("quote")), None),
                2 => (format!("KeyError: 'k{i}'"), Some(py("price")), None),
                // An empty first line: named by the stack's message.
                3 => (format!("\nmore {i}"), Some(jvm.to_owned()), None),
                4 => (
                    format!("login password=hunter{i} for bob{i}@example.com"),
                    None,
                    None,
                ),
                5 => (
                    format!("user {} not found", ["ann", "bob", "cy"][i % 3]),
                    None,
                    Some("NotFound"),
                ),
                _ => (format!("cache miss {i}"), Some(String::new()), Some(" ")),
            };
            let mut line = format!(
                "{{\"ts\":{},\"service\":\"{svc}\",\"revision\":\"{rev}\",\"message\":{},\"trace_id\":\"t{i}\"",
                1000 + (i * 7919) % 500,
                serde_json::to_string(&msg).unwrap()
            );
            if let Some(s) = stack {
                line.push_str(&format!(",\"stack\":\"{s}\""));
            }
            if let Some(e) = exc {
                line.push_str(&format!(",\"exception_type\":\"{e}\""));
            }
            line.push_str("}\n");
            body.push_str(&line);
            if i % 50 == 0 {
                body.push_str(&format!(
                    "{{\"type\":\"traffic\",\"ts\":{i},\"service\":\"{svc}\",\"revision\":\"{rev}\",\"requests\":{i}}}\n{{\"type\":\"build\",\"ts\":{i},\"service\":\"{svc}\",\"revision\":\"{rev}\",\"status\":\"failed\",\"log\":\"token=abcDEF123 x\"}}\n"
                ));
            }
        }
        let (records, errors) = parse_body(&body, DefaultType::Log);
        assert!(errors.is_empty(), "{errors:?}");
        let records: Vec<Record> = records.into_iter().map(|(_, r)| r).collect();
        let (mut n1, mut n2) = (
            Normalizer::new(NormalizerConfig::default()),
            Normalizer::new(NormalizerConfig::default()),
        );
        // Two batches through the same normalizers: grouping carries over.
        for batch in [&records[..160], &records[160..]] {
            let want = oracle(&mut n1, batch.to_vec());
            let got = to_events(&mut n2, batch.iter().cloned());
            assert!(want.signatures.len() > 10, "{}", want.signatures.len());
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_sample_with_a_stack_replaces_a_stackless_one() {
        let mut n = Normalizer::new(NormalizerConfig::default());
        let stack = "Traceback (most recent call last):\n  File \"/usr/lib/python3.12/site-packages/requests/api.py\", line 59, in request\nValueError: bad";
        let body = format!(
            "{}\n{}",
            r#"{"ts":1,"service":"a","revision":"r","message":"ValueError: bad"}"#,
            serde_json::json!({"ts": 2, "service": "a", "revision": "r", "message": "ValueError: bad", "stack": stack})
        );
        let (records, errors) = parse_body(&body, DefaultType::Log);
        assert!(errors.is_empty(), "{errors:?}");
        let ev = to_events(&mut n, records.into_iter().map(|(_, r)| r));
        // No in-app frame: one signature, whose sample now has the stack.
        assert_eq!(ev.signatures.len(), 1, "{:?}", ev.signatures);
        let sc = &ev.signatures[0];
        assert_eq!(sc.count, 2);
        assert!(sc.sample_stack.is_some(), "the stacked sample is kept");
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
