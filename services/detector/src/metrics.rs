//! Prometheus metrics of the detector core's input quality (adapter side):
//! `selfheal_detector_events_beyond_horizon_total` (counted, but older than
//! their service's watermark minus the baseline horizon),
//! `selfheal_detector_events_late_total` (behind their service's watermark,
//! still counted), `selfheal_detector_waited_evaluations_total` (decisions
//! that waited for another service's or instance's watermark) and
//! `selfheal_detector_signatures` (tracked now).

use std::sync::{Mutex, OnceLock};

use prometheus::{IntCounter, IntGauge, Registry};

use crate::core::DetectorStats;

struct Metrics {
    beyond_horizon: IntCounter,
    late: IntCounter,
    waited: IntCounter,
    signatures: IntGauge,
    /// The stats last observed (counters move by the difference).
    last: Mutex<DetectorStats>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Registers the detector's metrics in `registry` (once per process; later
/// calls are ignored).
pub fn register(registry: &Registry) {
    let counter = |name: &str, help: &str| {
        let c = IntCounter::new(format!("selfheal_detector_{name}"), help.to_owned())
            .expect("metric names are valid");
        let _ = registry.register(Box::new(c.clone()));
        c
    };
    let m = METRICS.get_or_init(|| Metrics {
        beyond_horizon: counter(
            "events_beyond_horizon_total",
            "Events older than their service's watermark minus the baseline horizon (counted, reported, no open evaluation covers them)",
        ),
        late: counter(
            "events_late_total",
            "Events behind their service's watermark, still counted",
        ),
        waited: counter(
            "waited_evaluations_total",
            "Evaluations that waited for another service's or instance's watermark before deciding",
        ),
        signatures: IntGauge::new("selfheal_detector_signatures", "Signatures tracked")
            .expect("metric names are valid"),
        last: Mutex::new(DetectorStats::default()),
    });
    let _ = registry.register(Box::new(m.signatures.clone()));
}

/// Moves the metrics to `stats` (a no-op before [`register`]).
pub fn observe(stats: &DetectorStats) {
    let Some(m) = METRICS.get() else { return };
    let mut last = m.last.lock().unwrap_or_else(|e| e.into_inner());
    m.beyond_horizon
        .inc_by(stats.beyond_horizon.saturating_sub(last.beyond_horizon));
    m.late.inc_by(stats.late.saturating_sub(last.late));
    m.waited.inc_by(
        stats
            .waited_evaluations
            .saturating_sub(last.waited_evaluations),
    );
    m.signatures
        .set(i64::try_from(stats.signatures).unwrap_or(i64::MAX));
    *last = stats.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_show_up_as_metrics() {
        let registry = Registry::new();
        register(&registry);
        observe(&DetectorStats {
            beyond_horizon: 3,
            ..Default::default()
        });
        let text = selfheal_common::metrics::render(&registry);
        assert!(
            text.contains("selfheal_detector_events_beyond_horizon_total 3"),
            "{text}"
        );
    }
}
