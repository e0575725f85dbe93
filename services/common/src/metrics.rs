//! Prometheus metrics: one registry per service, metrics named
//! `selfheal_<service>_<thing>_<unit>`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::kafka::Outgoing;
use crate::outcome::Outcome;

/// The standard metrics of a Kafka-fed stage.
#[derive(Clone, Debug)]
pub struct StageMetrics {
    consumed: IntCounterVec,
    produced: IntCounterVec,
    dead_letters: IntCounterVec,
    regressions: IntCounterVec,
    detection_delay: HistogramVec,
    verdicts: IntCounterVec,
    actions: IntCounterVec,
    lag: IntGaugeVec,
}

/// Registers `selfheal_build_info{service, version}` (always 1), so a
/// dashboard can tell which build every instance runs.
pub fn register_build_info(registry: &Registry, service: &str) {
    let g = IntGaugeVec::new(
        Opts::new(
            "selfheal_build_info",
            "The running build: always 1, labelled with service and version.",
        ),
        &["service", "version"],
    )
    .expect("metric names are valid");
    g.with_label_values(&[service, env!("CARGO_PKG_VERSION")])
        .set(1);
    // A second registration (two stages sharing a registry) changes nothing.
    let _ = registry.register(Box::new(g));
}

impl StageMetrics {
    /// Registers the counters for `service` in `registry`.
    pub fn new(registry: &Registry, service: &str) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(
                Opts::new(format!("selfheal_{service}_{name}"), help.to_owned()),
                labels,
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
                &["topic"],
            ),
            produced: counter(
                "messages_produced_total",
                "Messages handed to the producer, by topic.",
                &["topic"],
            ),
            dead_letters: counter(
                "dead_letters_total",
                "Messages sent to the dead-letter topic, by kind (poison, rejected).",
                &["kind"],
            ),
            regressions: counter(
                "regressions_total",
                "Regressions produced, by kind.",
                &["kind"],
            ),
            detection_delay: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        format!("selfheal_{service}_detection_delay_seconds"),
                        "Event time from a deploy to a regression of it being \
                         produced, by regression kind.",
                    )
                    .buckets(vec![
                        30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
                    ]),
                    &["kind"],
                )
                .expect("metric names are valid");
                registry
                    .register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            verdicts: counter(
                "verdicts_total",
                "Verdicts produced, by decision.",
                &["decision"],
            ),
            actions: counter(
                "actions_total",
                "Actions produced (every status change), by kind and status.",
                &["kind", "status"],
            ),
            lag: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        format!("selfheal_{service}_consumer_lag_messages"),
                        "Messages behind the end of each input topic, summed over the \
                         partitions this instance owns (librdkafka statistics).",
                    ),
                    &["topic"],
                )
                .expect("metric names are valid");
                registry
                    .register(Box::new(g.clone()))
                    .expect("metric registered once");
                g
            },
        }
    }

    /// Counts a message handed to the producer, and what it means.
    pub fn produced_outgoing(&self, out: &Outgoing) {
        self.produced(&out.topic);
        match &out.outcome {
            Some(Outcome::Regression { kind, delay_ms }) => {
                self.regressions.with_label_values(&[kind]).inc();
                if let Some(ms) = delay_ms {
                    self.detection_delay
                        .with_label_values(&[kind])
                        .observe(*ms as f64 / 1000.0);
                }
            }
            Some(Outcome::Verdict { decision }) => {
                self.verdicts.with_label_values(&[decision]).inc();
            }
            Some(Outcome::Action { kind, status }) => {
                self.actions.with_label_values(&[kind, status]).inc();
            }
            None => {}
        }
    }

    /// Sets the consumer lag of `topic`.
    pub fn set_lag(&self, topic: &str, lag: i64) {
        self.lag.with_label_values(&[topic]).set(lag);
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
