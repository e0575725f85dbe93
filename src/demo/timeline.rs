//! Reads the scenario's events back from the topics (in-process, like any
//! subscriber) so the timeline is what selfheal published, not what it logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use selfheal_common::Config;
use selfheal_schemas::AnyEvent;
use tokio::sync::mpsc;

/// Stops the reader thread when dropped.
#[derive(Debug)]
pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads deploys, signature counts, regressions, verdicts and actions from the
/// beginning (no consumer group, nothing committed) and sends every decoded
/// event of `service` to the returned channel.
pub(crate) fn read(
    config: &Config,
    service: &str,
) -> anyhow::Result<(Reader, mpsc::UnboundedReceiver<AnyEvent>)> {
    let t = &config.topics;
    let topics = [
        t.deploys.clone(),
        t.signatures.clone(),
        t.regressions.clone(),
        t.verdicts.clone(),
        t.actions.clone(),
    ];
    let mut cc = selfheal_common::kafka::client_config(&config.kafka)?;
    cc.set(
        "group.id",
        format!("{}.demo-timeline", config.kafka.group_prefix),
    )
    .set("enable.auto.commit", "false")
    .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = cc.create()?;
    let mut tpl = TopicPartitionList::new();
    for topic in &topics {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
        for tm in md.topics() {
            for p in tm.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            }
        }
    }
    consumer.assign(&tpl)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let service = service.to_owned();
    std::thread::Builder::new()
        .name("demo-timeline".to_owned())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let Ok(event) = selfheal_schemas::decode_any(msg.payload().unwrap_or_default())
                else {
                    continue;
                };
                let ours = match &event {
                    AnyEvent::Deploy(d) => d.service == service,
                    AnyEvent::SignatureCount(c) => c.service == service,
                    AnyEvent::Regression(r) => r.service == service,
                    AnyEvent::Verdict(v) => v.service == service,
                    AnyEvent::Action(a) => a.service == service,
                    _ => false,
                };
                if ours && tx.send(event).is_err() {
                    return;
                }
            }
        })?;
    Ok((Reader { stop }, rx))
}
