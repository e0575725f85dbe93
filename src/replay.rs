//! `selfheal replay`: the backtest over a Kafka cluster instead of a file.
//!
//! Reads the input topics (deploys, builds, traffic, signatures) from a point
//! in time up to their ends as of the start, orders the events by event time,
//! runs the same detector, triage and fixer (dry-run) as `backtest`, and
//! writes the results to *separate* topics (`<topic><suffix>`), never to the
//! live ones, so a configuration can be tried on production history while
//! production runs. Same input, same results.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use selfheal_common::kafka::{client_config, create_topics, EventProducer, Outgoing};
use selfheal_common::service::ServiceArgs;
use selfheal_schemas::AnyEvent;

use selfheal_pipeline::Cores;

use crate::backtest::write_outputs;

/// Arguments of `selfheal replay`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Start of the replay: RFC 3339 or epoch milliseconds (Kafka record time).
    #[arg(long)]
    from: String,
    /// Suffix of the output topics (`selfheal.regressions<suffix>` …).
    #[arg(long, default_value = ".replay")]
    suffix: String,
    /// Also write the NDJSON result files here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--from: `{s}` is neither epoch milliseconds nor RFC 3339"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Reads `topics` from `from_ms` to their current ends. Undecodable records
/// are counted and skipped (they are the live consumers' DLQ's business).
fn read_topics(
    config: &selfheal_common::Config,
    topics: &[&str],
    from_ms: i64,
) -> anyhow::Result<(Vec<(usize, AnyEvent)>, usize)> {
    let mut cc = client_config(&config.kafka)?;
    cc.set(
        "group.id",
        format!(
            "{}.replay.{}",
            config.kafka.group_prefix,
            std::process::id()
        ),
    )
    .set("enable.auto.commit", "false")
    .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = cc.create().context("creating the replay consumer")?;
    let timeout = Duration::from_secs(30);
    let mut wanted = TopicPartitionList::new();
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for topic in topics {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .with_context(|| format!("metadata of {topic}"))?;
        for t in md.topics() {
            for p in t.partitions() {
                let (_, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
                ends.insert(((*topic).to_owned(), p.id()), high);
                wanted.add_partition_offset(topic, p.id(), Offset::Offset(from_ms))?;
            }
        }
    }
    let starts = consumer
        .offsets_for_times(wanted, timeout)
        .context("finding offsets for --from")?;
    let mut assign = TopicPartitionList::new();
    for e in starts.elements() {
        let end = ends[&(e.topic().to_owned(), e.partition())];
        let start = match e.offset() {
            Offset::Offset(o) => o,
            _ => end, // nothing at or after --from
        };
        if start < end {
            assign.add_partition_offset(e.topic(), e.partition(), Offset::Offset(start))?;
        } else {
            ends.remove(&(e.topic().to_owned(), e.partition()));
        }
    }
    consumer.assign(&assign)?;
    let order: BTreeMap<&str, usize> = topics.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let (mut events, mut undecodable) = (Vec::new(), 0usize);
    let mut last_progress = std::time::Instant::now();
    while !ends.is_empty() {
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            let msg = msg?;
            last_progress = std::time::Instant::now();
            let key = (msg.topic().to_owned(), msg.partition());
            match selfheal_schemas::decode_any(msg.payload().unwrap_or_default()) {
                Ok(e) => events.push((order[msg.topic()], e)),
                Err(_) => undecodable += 1,
            }
            if ends.get(&key).is_some_and(|end| msg.offset() + 1 >= *end) {
                ends.remove(&key);
            }
        }
        // A topic written in transactions ends with a commit marker, which
        // is never delivered as a record: the position passes it.
        for e in consumer.position()?.elements() {
            let key = (e.topic().to_owned(), e.partition());
            if let (Offset::Offset(pos), Some(end)) = (e.offset(), ends.get(&key)) {
                if pos >= *end {
                    ends.remove(&key);
                    last_progress = std::time::Instant::now();
                }
            }
        }
        if !ends.is_empty() && last_progress.elapsed() > timeout {
            anyhow::bail!(
                "no record within {timeout:?} while {} partitions remain",
                ends.len()
            );
        }
    }
    Ok((events, undecodable))
}

/// The `selfheal replay` command.
pub(crate) async fn command(args: ReplayArgs) -> anyhow::Result<()> {
    selfheal_common::telemetry::init(args.service.log_json);
    let config = args.service.load_config()?;
    let from_ms = parse_time(&args.from)?;
    let t = &config.topics;
    let inputs = [
        t.deploys.as_str(),
        t.builds.as_str(),
        t.traffic.as_str(),
        t.signatures.as_str(),
        t.latency.as_str(),
        t.gauges.as_str(),
    ];
    let cfg = config.clone();
    let input_names: Vec<String> = inputs.iter().map(|s| (*s).to_owned()).collect();
    let (mut events, undecodable) = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = input_names.iter().map(String::as_str).collect();
        read_topics(&cfg, &names, from_ms)
    })
    .await??;
    // Event time, then the live topics' natural order, then arrival order.
    events.sort_by_key(|(topic, e)| (e.input_time_ms().unwrap_or(i64::MAX), *topic));
    let mut out = Cores::new(&config)?.run(events.iter().map(|(_, e)| e));
    out.records = events.len();

    let names = [
        format!("{}{}", t.regressions, args.suffix),
        format!("{}{}", t.verdicts, args.suffix),
        format!("{}{}", t.actions, args.suffix),
    ];
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    create_topics(&config.kafka, &refs, t.partitions, t.replication_factor).await?;
    let mut outgoing = Vec::new();
    for r in &out.regressions {
        outgoing.push(Outgoing::event(&names[0], r)?);
    }
    for v in &out.verdicts {
        outgoing.push(Outgoing::event(&names[1], v)?);
    }
    for a in &out.actions {
        outgoing.push(Outgoing::event(&names[2], a)?);
    }
    let producer = EventProducer::new(&config.kafka)?;
    producer.send_all(&outgoing).await?;
    if let Some(dir) = &args.out {
        write_outputs(dir, &out, &[])?;
    }
    eprintln!(
        "replay: {} events from {} ({undecodable} undecodable skipped) → {} regressions, {} verdicts, {} actions on {}",
        events.len(),
        args.from,
        out.regressions.len(),
        out.verdicts.len(),
        out.actions.len(),
        names.join(", ")
    );
    Ok(())
}
