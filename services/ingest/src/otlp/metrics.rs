//! OTLP/HTTP metrics (`POST /v1/metrics`, `ExportMetricsServiceRequest`) →
//! traffic, latency-histogram and gauge records. Pure but for the
//! cumulative-to-delta state, which the intake keeps.
//!
//! What is read (everything else is ignored and counted, not an error: an
//! SDK exports many metrics selfheal has no use for):
//! - the HTTP server duration histogram (`http.server.request.duration`,
//!   or the older `http.server.duration`): each point becomes a `histogram`
//!   record (its route from `http.route`) and adds its count to the
//!   window's `traffic` record of the service and revision, and to its
//!   `errors` when `http.response.status_code` (or `http.status_code`) is
//!   5xx;
//! - `process.memory.usage` and `process.cpu.utilization` (gauge or sum):
//!   `gauge` records, one per instance (`service.instance.id`, else
//!   `host.name`).
//!
//! Service and revision come from the resource as for logs
//! (`service.name`; the revision attributes, else the fallback).
//! Temporality: delta points are used as they are. Cumulative points (the
//! SDKs' default) are turned into deltas against the previous point of the
//! same series; a series' first point counts from its `startTimeUnixNano`
//! when that is recent (a process that just started), and is only
//! remembered when it is older than [`MAX_FIRST_WINDOW_NS`] (its history
//! since then was counted before, or is too long a window to place). A
//! reset (new start time, or counts that went down) starts over.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, HistogramDataPoint, NumberDataPoint,
};
use prost::Message;

use super::proto::attributes;
use super::response::Encoding;
use super::{Checks, OtlpError};
use crate::record::{GaugeRecord, HistogramRecord, LineError, Parsed, Record, TrafficRecord};

/// The server-duration histograms read as traffic and latency.
pub const DURATION_METRICS: [&str; 2] = ["http.server.request.duration", "http.server.duration"];
/// The gauges read as saturation.
pub const GAUGE_METRICS: [&str; 2] = ["process.memory.usage", "process.cpu.utilization"];
/// A cumulative series first seen with a start older than this (5 min) is
/// only remembered, not counted.
pub const MAX_FIRST_WINDOW_NS: u64 = 5 * 60 * 1_000_000_000;

/// What one request yields.
#[derive(Debug, Default)]
pub struct MetricsParsed {
    /// Records (with their data point's ordinal) and rejected data points.
    pub parsed: Parsed,
    /// Data points of metrics selfheal does not read.
    pub ignored: usize,
}

#[derive(Debug, Clone)]
struct Last {
    start_ns: u64,
    time_ns: u64,
    counts: Vec<u64>,
    sum: f64,
}

/// The previous cumulative point of every series (bounded: least recently
/// updated series are forgotten past `max_series`).
#[derive(Debug)]
pub struct Cumulative {
    last: HashMap<String, Last>,
    max_series: usize,
}

impl Cumulative {
    /// State for at most `max_series` series.
    pub fn new(max_series: usize) -> Self {
        Self {
            last: HashMap::new(),
            max_series: max_series.max(1),
        }
    }

    /// The delta of a cumulative histogram point: `(window start, counts,
    /// sum)`, or `None` when it is only remembered.
    fn delta(&mut self, key: String, p: &HistogramDataPoint) -> Option<(u64, Vec<u64>, f64)> {
        let sum = p.sum.unwrap_or(0.0);
        let now = Last {
            start_ns: p.start_time_unix_nano,
            time_ns: p.time_unix_nano,
            counts: p.bucket_counts.clone(),
            sum,
        };
        let prev = self.last.get(&key).cloned();
        if prev.is_none() && self.last.len() >= self.max_series {
            // Forget the stalest series rather than grow without bound.
            if let Some(oldest) = self
                .last
                .iter()
                .min_by_key(|(_, l)| l.time_ns)
                .map(|(k, _)| k.clone())
            {
                self.last.remove(&oldest);
            }
        }
        self.last.insert(key, now);
        let fresh = |start: u64| {
            (p.time_unix_nano.saturating_sub(start) <= MAX_FIRST_WINDOW_NS && start > 0)
                .then(|| (start, p.bucket_counts.clone(), sum))
        };
        match prev {
            None => fresh(p.start_time_unix_nano),
            Some(l) if l.time_ns >= p.time_unix_nano => None, // a resend or out of order
            Some(l)
                if l.start_ns != p.start_time_unix_nano
                    || l.counts.len() != p.bucket_counts.len()
                    || l.counts.iter().zip(&p.bucket_counts).any(|(a, b)| b < a) =>
            {
                fresh(p.start_time_unix_nano)
            }
            Some(l) => Some((
                l.time_ns,
                p.bucket_counts
                    .iter()
                    .zip(&l.counts)
                    .map(|(b, a)| b - a)
                    .collect(),
                sum - l.sum,
            )),
        }
    }
}

/// Decodes the request in `encoding`.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportMetricsServiceRequest, OtlpError> {
    match encoding {
        Encoding::Protobuf => {
            ExportMetricsServiceRequest::decode(body).map_err(|source| OtlpError::Protobuf {
                message: "ExportMetricsServiceRequest",
                source,
            })
        }
        Encoding::Json => serde_json::from_slice(body).map_err(|source| OtlpError::Json {
            message: "ExportMetricsServiceRequest",
            source,
        }),
    }
}

fn attr<'a>(attrs: &'a [(String, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    })
}

/// Service and revision of a resource, or the fault.
fn identity(
    res: &[(String, String)],
    checks: &Checks<'_>,
) -> Result<(String, String), (String, String)> {
    let service = attr(res, &["service.name"]).ok_or_else(|| {
        (
            "resource.attributes[service.name]".to_owned(),
            "required attribute is missing".to_owned(),
        )
    })?;
    let keys: Vec<&str> = checks
        .revision
        .attributes
        .iter()
        .map(String::as_str)
        .collect();
    let revision = attr(res, &keys)
        .map(str::to_owned)
        .or_else(|| checks.revision.fallback.clone())
        .ok_or_else(|| {
            (
                "resource.attributes[service.version]".to_owned(),
                format!(
                    "no revision: none of the attributes {:?} is set and ingest.otlp_revision_fallback is empty",
                    checks.revision.attributes
                ),
            )
        })?;
    Ok((service.to_owned(), revision))
}

fn point_count(data: Option<&Data>) -> usize {
    match data {
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn ms(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}

fn gauge_value(p: &NumberDataPoint) -> Option<f64> {
    match p.value? {
        number_data_point::Value::AsDouble(d) => Some(d),
        number_data_point::Value::AsInt(i) => Some(i as f64),
    }
}

/// Maps a decoded request to records; `state` turns cumulative points into
/// deltas.
pub fn records(
    request: ExportMetricsServiceRequest,
    checks: &Checks<'_>,
    state: &mut Cumulative,
) -> MetricsParsed {
    let mut out = MetricsParsed::default();
    let mut traffic: BTreeMap<(String, String, i64, i32), (i64, i64)> = BTreeMap::new();
    let mut ordinal = 0usize;
    for (ri, rm) in request.resource_metrics.into_iter().enumerate() {
        let res = rm
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        let id = identity(&res, checks);
        let instance = attr(&res, &["service.instance.id", "host.name"])
            .unwrap_or("unknown")
            .to_owned();
        for (si, sm) in rm.scope_metrics.into_iter().enumerate() {
            for (mi, m) in sm.metrics.into_iter().enumerate() {
                let path = format!("resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}]");
                let read_duration = DURATION_METRICS.contains(&m.name.as_str());
                let read_gauge = GAUGE_METRICS.contains(&m.name.as_str());
                let points = point_count(m.data.as_ref());
                if !(read_duration || read_gauge) {
                    out.ignored += points;
                    ordinal += points;
                    continue;
                }
                let (service, revision) = match &id {
                    Ok(id) => id.clone(),
                    Err((field, reason)) => {
                        for _ in 0..points {
                            ordinal += 1;
                            out.parsed.1.push(LineError {
                                line: ordinal,
                                field: format!("{path}.{field}"),
                                reason: reason.clone(),
                            });
                        }
                        continue;
                    }
                };
                match m.data {
                    Some(Data::Histogram(h)) if read_duration => {
                        let cumulative =
                            h.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                        let series = Series {
                            service: &service,
                            revision: &revision,
                            instance: &instance,
                            metric: &m.name,
                            unit: &m.unit,
                            path: &path,
                        };
                        for (pi, p) in h.data_points.iter().enumerate() {
                            ordinal += 1;
                            let point = Point {
                                p,
                                pi,
                                ordinal,
                                cumulative,
                            };
                            histogram_point(&series, &point, checks, state, &mut out, &mut traffic);
                        }
                    }
                    Some(Data::Gauge(g)) if read_gauge => {
                        push_gauges(
                            &mut out,
                            &mut ordinal,
                            &g.data_points,
                            &m.name,
                            &m.unit,
                            &service,
                            &revision,
                            &instance,
                            &path,
                            checks,
                        );
                    }
                    Some(Data::Sum(s)) if read_gauge => {
                        push_gauges(
                            &mut out,
                            &mut ordinal,
                            &s.data_points,
                            &m.name,
                            &m.unit,
                            &service,
                            &revision,
                            &instance,
                            &path,
                            checks,
                        );
                    }
                    _ => {
                        out.ignored += points;
                        ordinal += points;
                    }
                }
            }
        }
    }
    for ((service, revision, ts_ms, window_s), (requests, errors)) in traffic {
        out.parsed.0.push((
            0,
            Record::Traffic(TrafficRecord {
                ts_ms,
                service,
                revision,
                requests,
                errors: Some(errors),
                window_s,
            }),
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn push_gauges(
    out: &mut MetricsParsed,
    ordinal: &mut usize,
    points: &[NumberDataPoint],
    metric: &str,
    unit: &str,
    service: &str,
    revision: &str,
    instance: &str,
    path: &str,
    checks: &Checks<'_>,
) {
    for (pi, p) in points.iter().enumerate() {
        *ordinal += 1;
        let field = |f: &str| format!("{path}.dataPoints[{pi}].{f}");
        let Some(value) = gauge_value(p).filter(|v| v.is_finite()) else {
            out.parsed.1.push(LineError {
                line: *ordinal,
                field: field("value"),
                reason: "no finite value".to_owned(),
            });
            continue;
        };
        let ts = ms(p.time_unix_nano);
        if let Err(reason) = (checks.check_ts)(ts) {
            out.parsed.1.push(LineError {
                line: *ordinal,
                field: field("timeUnixNano"),
                reason,
            });
            continue;
        }
        let pa = attributes(p.attributes.clone());
        out.parsed.0.push((
            *ordinal,
            Record::Gauge(GaugeRecord {
                ts_ms: ts,
                service: service.to_owned(),
                revision: revision.to_owned(),
                instance: attr(&pa, &["service.instance.id"])
                    .unwrap_or(instance)
                    .to_owned(),
                metric: metric.to_owned(),
                unit: unit.to_owned(),
                value,
            }),
        ));
    }
}

/// One metric's identity, for its data points.
struct Series<'a> {
    service: &'a str,
    revision: &'a str,
    instance: &'a str,
    metric: &'a str,
    unit: &'a str,
    path: &'a str,
}

/// A histogram data point and where it sits.
struct Point<'a> {
    p: &'a HistogramDataPoint,
    pi: usize,
    ordinal: usize,
    cumulative: bool,
}

/// One server-duration point: its histogram record, and its count into the
/// window's traffic.
fn histogram_point(
    series: &Series<'_>,
    point: &Point<'_>,
    checks: &Checks<'_>,
    state: &mut Cumulative,
    out: &mut MetricsParsed,
    traffic: &mut BTreeMap<(String, String, i64, i32), (i64, i64)>,
) {
    let (p, pi, path, cumulative) = (point.p, point.pi, series.path, point.cumulative);
    let pa = attributes(p.attributes.clone());
    let route = attr(&pa, &["http.route"]).map(str::to_owned);
    let status = attr(&pa, &["http.response.status_code", "http.status_code"]).unwrap_or("");
    let key = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{pa:?}",
        series.service, series.revision, series.instance, series.metric
    );
    let delta = if cumulative {
        state.delta(key, p)
    } else {
        Some((
            p.start_time_unix_nano,
            p.bucket_counts.clone(),
            p.sum.unwrap_or(0.0),
        ))
    };
    let Some((start_ns, counts, sum)) = delta else {
        return;
    };
    let ts = ms(start_ns);
    if let Err(reason) = (checks.check_ts)(ts) {
        out.parsed.1.push(LineError {
            line: point.ordinal,
            field: format!("{path}.histogram.dataPoints[{pi}].startTimeUnixNano"),
            reason,
        });
        return;
    }
    if counts.len() != p.explicit_bounds.len() + 1 {
        out.parsed.1.push(LineError {
            line: point.ordinal,
            field: format!("{path}.histogram.dataPoints[{pi}].bucketCounts"),
            reason: format!(
                "{} bucket counts for {} bounds (must be one more)",
                counts.len(),
                p.explicit_bounds.len()
            ),
        });
        return;
    }
    let window_s = i32::try_from(p.time_unix_nano.saturating_sub(start_ns) / 1_000_000_000)
        .unwrap_or(i32::MAX)
        .max(1);
    let count: u64 = counts.iter().sum();
    let counts: Vec<i64> = counts
        .iter()
        .map(|c| i64::try_from(*c).unwrap_or(i64::MAX))
        .collect();
    let t = traffic
        .entry((
            series.service.to_owned(),
            series.revision.to_owned(),
            ts,
            window_s,
        ))
        .or_default();
    let n = i64::try_from(count).unwrap_or(i64::MAX);
    t.0 += n;
    if status.starts_with('5') {
        t.1 += n;
    }
    if n == 0 {
        return; // the window's traffic says it: no requests
    }
    out.parsed.0.push((
        point.ordinal,
        Record::Histogram(HistogramRecord {
            ts_ms: ts,
            service: series.service.to_owned(),
            revision: series.revision.to_owned(),
            metric: "http.server.request.duration".to_owned(),
            unit: if series.unit.is_empty() {
                "s".to_owned()
            } else {
                series.unit.to_owned()
            },
            window_s,
            bounds: p.explicit_bounds.clone(),
            counts,
            sum: p.sum.map(|_| sum),
            route,
        }),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn point(start: u64, time: u64, counts: &[u64]) -> HistogramDataPoint {
        HistogramDataPoint {
            start_time_unix_nano: start,
            time_unix_nano: time,
            bucket_counts: counts.to_vec(),
            explicit_bounds: vec![0.1],
            count: counts.iter().sum(),
            sum: Some(counts.iter().sum::<u64>() as f64),
            ..HistogramDataPoint::default()
        }
    }

    #[test]
    fn cumulative_points_become_deltas_and_resets_start_over() {
        let mut c = Cumulative::new(10);
        let t0 = 1_800_000_000 * S;
        let k = || "series".to_owned();
        // A fresh process: its first point counts from its start.
        assert_eq!(
            c.delta(k(), &point(t0, t0 + 10 * S, &[3, 1])),
            Some((t0, vec![3, 1], 4.0))
        );
        assert_eq!(
            c.delta(k(), &point(t0, t0 + 20 * S, &[5, 4])),
            Some((t0 + 10 * S, vec![2, 3], 5.0))
        );
        // A resend of the same point counts nothing.
        assert_eq!(c.delta(k(), &point(t0, t0 + 20 * S, &[5, 4])), None);
        // A restart of the process (new start): counted from its start.
        let t1 = t0 + 30 * S;
        assert_eq!(
            c.delta(k(), &point(t1, t1 + 5 * S, &[1, 0])),
            Some((t1, vec![1, 0], 1.0))
        );
        // A series first seen long after its start is only remembered.
        let old = point(t0, t0 + 3_600 * S, &[900, 100]);
        assert_eq!(c.delta("other".to_owned(), &old), None);
        assert_eq!(
            c.delta("other".to_owned(), &point(t0, t0 + 3_660 * S, &[910, 100])),
            Some((t0 + 3_600 * S, vec![10, 0], 10.0))
        );
    }

    #[test]
    fn the_state_stays_bounded() {
        let mut c = Cumulative::new(2);
        let t0 = 1_800_000_000 * S;
        for i in 0..5u64 {
            c.delta(format!("s{i}"), &point(t0, t0 + (i + 1) * S, &[1, 0]));
        }
        assert!(c.last.len() <= 2, "{}", c.last.len());
    }
}
