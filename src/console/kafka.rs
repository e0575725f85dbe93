//! Feeds the console from the topics: one consumer assigned to every
//! partition of the deploys, regressions, verdicts, actions, signatures and
//! traffic topics from the beginning (no group offsets: a console is a
//! reader, it commits nothing), on its own thread until shutdown.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use selfheal_common::{CancellationToken, Config};

use super::http::Shared;

/// The topics the console reads.
fn topics(c: &Config) -> [&str; 6] {
    let t = &c.topics;
    [
        &t.deploys,
        &t.regressions,
        &t.verdicts,
        &t.actions,
        &t.signatures,
        &t.traffic,
    ]
}

fn assign_all(consumer: &BaseConsumer, topics: &[&str]) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("console: metadata of {topic}"))?;
        for t in md.topics() {
            if t.error().is_some() || t.partitions().is_empty() {
                anyhow::bail!("console: topic {topic} does not exist (yet)");
            }
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            }
        }
    }
    consumer.assign(&tpl).context("console: assign")?;
    Ok(())
}

/// Starts the reader thread. Events that do not decode are skipped (the
/// services dead-letter them; the console only shows).
pub(crate) fn spawn(
    config: &Config,
    shared: Shared,
    shutdown: CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let mut cc = selfheal_common::kafka::client_config(&config.kafka)?;
    cc.set(
        "group.id",
        format!(
            "{}.console.{}",
            config.kafka.group_prefix,
            std::process::id()
        ),
    )
    .set("enable.auto.commit", "false")
    .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = cc.create().context("console: create consumer")?;
    let topics: Vec<String> = topics(config).iter().map(|t| (*t).to_owned()).collect();
    Ok(std::thread::Builder::new()
        .name("console-kafka".into())
        .spawn(move || {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            // Topics may appear after the console starts (they are created by
            // the services): retry the assignment until it succeeds.
            while let Err(e) = assign_all(&consumer, &names) {
                tracing::warn!(error = %format!("{e:#}"), "console: topics not readable yet");
                if shutdown.is_cancelled() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            let mut batch = Vec::new();
            while !shutdown.is_cancelled() {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(msg)) => {
                        if let Ok(e) =
                            selfheal_schemas::decode_any(msg.payload().unwrap_or_default())
                        {
                            batch.push(e);
                        }
                        if batch.len() < 1000 {
                            continue;
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "console: poll"),
                    None => {}
                }
                if !batch.is_empty() {
                    shared.fold_all(&batch);
                    batch.clear();
                }
            }
        })?)
}
