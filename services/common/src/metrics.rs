//! Prometheus metrics: one registry per service, metrics named
//! `selfheal_<service>_<thing>_<unit>`.

use prometheus::{IntCounterVec, Opts, Registry};

/// The standard counters of a Kafka-fed stage.
#[derive(Clone, Debug)]
pub struct StageMetrics {
    consumed: IntCounterVec,
    produced: IntCounterVec,
    dead_letters: IntCounterVec,
}

impl StageMetrics {
    /// Registers the counters for `service` in `registry`.
    pub fn new(registry: &Registry, service: &str) -> Self {
        let counter = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(
                Opts::new(format!("selfheal_{service}_{name}"), help.to_owned()),
                &[label],
            )
            .expect("metric names are valid");
            // Registering the same name twice is a programming error caught by tests.
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        Self {
            consumed: counter(
                "messages_consumed_total",
                "Messages read from Kafka, by topic.",
                "topic",
            ),
            produced: counter(
                "messages_produced_total",
                "Messages handed to the producer, by topic.",
                "topic",
            ),
            dead_letters: counter(
                "dead_letters_total",
                "Messages sent to the dead-letter topic, by kind (poison, rejected).",
                "kind",
            ),
        }
    }

    /// Counts a consumed message.
    pub fn consumed(&self, topic: &str) {
        self.consumed.with_label_values(&[topic]).inc();
    }

    /// Counts a produced message.
    pub fn produced(&self, topic: &str) {
        self.produced.with_label_values(&[topic]).inc();
    }

    /// Counts a dead-lettered message.
    pub fn dead_lettered(&self, kind: &str) {
        self.dead_letters.with_label_values(&[kind]).inc();
    }
}

/// Renders `registry` in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(e) = encoder.encode_utf8(&registry.gather(), &mut out) {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    out
}
