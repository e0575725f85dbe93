//! Golden-signal records → events, pre-aggregated as log lines are: latency
//! histograms of one (service, revision, metric, unit, route, bounds,
//! window, minute) merge bucket-wise; gauges of one (service, instance,
//! metric, minute) keep the latest value by event time. Pure.
//!
//! Merging only what has the same bounds keeps every merged histogram exact
//! (no re-binning), and keying by event-time minute makes what the detector
//! sees independent of how requests and flushes cut the stream (issue 17:
//! live must equal the backtest).

use std::collections::HashMap;

use selfheal_schemas::{InstanceGauge, LatencyHistogram};

use crate::record::{GaugeRecord, HistogramRecord};

/// Histograms and gauges being merged, in first-seen order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Merger {
    latency: Vec<LatencyHistogram>,
    gauges: Vec<InstanceGauge>,
    latency_at: HashMap<HistKey, usize>,
    gauge_at: HashMap<GaugeKey, usize>,
}

type HistKey = (
    String,
    String,
    String,
    String,
    Option<String>,
    Vec<u64>,
    i32,
    i64,
);
type GaugeKey = (String, String, String, i64);

fn minute_start(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(60_000) * 60_000
}

fn hist_key(h: &LatencyHistogram) -> HistKey {
    (
        h.service.clone(),
        h.revision.clone(),
        h.metric.clone(),
        h.unit.clone(),
        h.route.clone(),
        h.bounds.iter().map(|b| b.to_bits()).collect(),
        h.window_s,
        minute_start(h.window_start_ms),
    )
}

/// The event of one histogram record (its window starting at the record's
/// `ts`, as OpenTelemetry's start time).
pub fn histogram_event(r: HistogramRecord) -> LatencyHistogram {
    LatencyHistogram {
        service: r.service,
        revision: r.revision,
        metric: r.metric,
        unit: r.unit,
        route: r.route,
        window_start_ms: r.ts_ms,
        window_s: r.window_s,
        bounds: r.bounds,
        counts: r.counts,
        sum: r.sum,
    }
}

/// The event of one gauge record.
pub fn gauge_event(r: GaugeRecord) -> InstanceGauge {
    InstanceGauge {
        service: r.service,
        revision: r.revision,
        instance: r.instance,
        metric: r.metric,
        unit: r.unit,
        ts_ms: r.ts_ms,
        value: r.value,
    }
}

impl Merger {
    /// Adds one histogram, merging it into an equal-keyed one.
    pub fn add_histogram(&mut self, h: LatencyHistogram) {
        let key = hist_key(&h);
        match self.latency_at.get(&key) {
            Some(&i) => {
                let acc = &mut self.latency[i];
                for (a, c) in acc.counts.iter_mut().zip(&h.counts) {
                    *a = a.saturating_add(*c);
                }
                acc.sum = acc.sum.zip(h.sum).map(|(a, b)| a + b);
                acc.window_start_ms = acc.window_start_ms.min(h.window_start_ms);
            }
            None => {
                self.latency_at.insert(key, self.latency.len());
                self.latency.push(h);
            }
        }
    }

    /// Adds one gauge; the latest of its minute wins (the first of equal times).
    pub fn add_gauge(&mut self, g: InstanceGauge) {
        let key = (
            g.service.clone(),
            g.instance.clone(),
            g.metric.clone(),
            minute_start(g.ts_ms),
        );
        match self.gauge_at.get(&key) {
            Some(&i) if self.gauges[i].ts_ms < g.ts_ms => self.gauges[i] = g,
            Some(_) => {}
            None => {
                self.gauge_at.insert(key, self.gauges.len());
                self.gauges.push(g);
            }
        }
    }

    /// Adds every event of another merger.
    pub fn absorb(&mut self, latency: Vec<LatencyHistogram>, gauges: Vec<InstanceGauge>) {
        for h in latency {
            self.add_histogram(h);
        }
        for g in gauges {
            self.add_gauge(g);
        }
    }

    /// Takes the merged events, leaving the merger empty.
    pub fn take(&mut self) -> (Vec<LatencyHistogram>, Vec<InstanceGauge>) {
        self.latency_at.clear();
        self.gauge_at.clear();
        (
            std::mem::take(&mut self.latency),
            std::mem::take(&mut self.gauges),
        )
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.latency.len() + self.gauges.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(ts: i64, route: &str, counts: Vec<i64>, sum: Option<f64>) -> LatencyHistogram {
        LatencyHistogram {
            service: "a".into(),
            revision: "r".into(),
            metric: "http.server.request.duration".into(),
            unit: "s".into(),
            route: Some(route.into()),
            window_start_ms: ts,
            window_s: 60,
            bounds: vec![0.1, 1.0],
            counts,
            sum,
        }
    }

    #[test]
    fn histograms_of_one_minute_merge_bucket_wise_and_others_stay_apart() {
        let mut m = Merger::default();
        m.add_histogram(h(60_000, "/a", vec![1, 2, 3], Some(1.0)));
        m.add_histogram(h(60_500, "/a", vec![10, 20, 30], Some(2.0)));
        m.add_histogram(h(60_000, "/b", vec![1, 1, 1], None));
        m.add_histogram(h(120_000, "/a", vec![5, 5, 5], Some(1.0)));
        let mut other_bounds = h(60_000, "/a", vec![1, 1, 1], Some(1.0));
        other_bounds.bounds = vec![0.2, 1.0];
        m.add_histogram(other_bounds);
        let (lat, _) = m.take();
        assert_eq!(lat.len(), 4);
        assert_eq!(lat[0].counts, vec![11, 22, 33]);
        assert_eq!(lat[0].sum, Some(3.0));
        assert!(m.is_empty());
    }

    #[test]
    fn a_missing_sum_makes_the_merged_sum_unknown() {
        let mut m = Merger::default();
        m.add_histogram(h(0, "/a", vec![1, 0, 0], Some(1.0)));
        m.add_histogram(h(0, "/a", vec![1, 0, 0], None));
        assert_eq!(m.take().0[0].sum, None);
    }

    #[test]
    fn the_latest_gauge_of_a_minute_wins_whatever_the_arrival_order() {
        let g = |ts: i64, v: f64| InstanceGauge {
            service: "a".into(),
            revision: "r".into(),
            instance: "i1".into(),
            metric: "process.memory.usage".into(),
            unit: "By".into(),
            ts_ms: ts,
            value: v,
        };
        let mut m = Merger::default();
        m.add_gauge(g(10_000, 1.0));
        m.add_gauge(g(50_000, 3.0));
        m.add_gauge(g(30_000, 2.0));
        m.add_gauge(g(70_000, 4.0));
        let (_, gauges) = m.take();
        assert_eq!(
            gauges.iter().map(|g| g.value).collect::<Vec<_>>(),
            [3.0, 4.0]
        );
    }
}
