//! The golden-signal records: latency histograms and instance gauges
//! (issue 14's record contract), parsed by the precise parser with the usual
//! line, field and reason on every fault.
//!
//! ```json
//! {"type":"histogram","ts":"…","service":"checkout","revision":"a1b2c3d","metric":"http.server.request.duration","unit":"s","window_s":60,
//!  "bounds":[0.005,0.01,…],"counts":[…],"sum":123.4,"attributes":{"http.route":"/quote"}}
//! {"type":"gauge","ts":"…","service":"checkout","revision":"a1b2c3d","instance":"checkout-7f9c-x2","metric":"process.memory.usage","unit":"By","value":734003200}
//! ```

use serde_json::Value;

use super::{kind, Fields, LineError, MAX_COUNT, MAX_WINDOW_S};

/// Most bucket bounds a histogram may have (OpenTelemetry's defaults have 14;
/// exponential-looking explicit layouts rarely pass 100).
pub const MAX_BOUNDS: usize = 256;

/// An explicit-bucket histogram over one interval (OpenTelemetry's, delta).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramRecord {
    /// Start of the interval, epoch milliseconds.
    pub ts_ms: i64,
    /// Service.
    pub service: String,
    /// Revision that served the requests.
    pub revision: String,
    /// Metric name, e.g. `http.server.request.duration`.
    pub metric: String,
    /// Unit of bounds and sum (`s` when absent).
    pub unit: String,
    /// Interval length in seconds.
    pub window_s: i32,
    /// Bucket bounds, finite and strictly increasing.
    pub bounds: Vec<f64>,
    /// Requests per bucket, `bounds.len() + 1` of them.
    pub counts: Vec<i64>,
    /// Sum of the values, if sent.
    pub sum: Option<f64>,
    /// `attributes."http.route"`, if sent.
    pub route: Option<String>,
}

/// One instance's resource gauge.
#[derive(Debug, Clone, PartialEq)]
pub struct GaugeRecord {
    /// Event time, epoch milliseconds.
    pub ts_ms: i64,
    /// Service.
    pub service: String,
    /// Revision the instance runs.
    pub revision: String,
    /// Instance id.
    pub instance: String,
    /// Metric name, e.g. `process.memory.usage`.
    pub metric: String,
    /// Unit as sent (empty when absent).
    pub unit: String,
    /// The value.
    pub value: f64,
}

pub(super) fn histogram(f: &Fields<'_>) -> Result<HistogramRecord, LineError> {
    let bounds = numbers(f, "bounds")?;
    if bounds.is_empty() || bounds.len() > MAX_BOUNDS {
        return Err(f.err(
            "bounds",
            format!("must hold 1..={MAX_BOUNDS} bounds, got {}", bounds.len()),
        ));
    }
    if let Some(i) = bounds.windows(2).position(|w| w[0] >= w[1]) {
        return Err(f.err(
            "bounds",
            format!(
                "must be strictly increasing: bounds[{}] = {} is not below bounds[{}] = {}",
                i,
                bounds[i],
                i + 1,
                bounds[i + 1]
            ),
        ));
    }
    let counts = counts(f)?;
    if counts.len() != bounds.len() + 1 {
        return Err(f.err(
            "counts",
            format!(
                "must hold len(bounds) + 1 = {} values (the last bucket is above the last bound), got {}",
                bounds.len() + 1,
                counts.len()
            ),
        ));
    }
    let sum = opt_finite(f, "sum")?;
    Ok(HistogramRecord {
        ts_ms: f.ts()?,
        service: f.req_str("service")?,
        revision: f.req_str("revision")?,
        metric: f.req_str("metric")?,
        unit: f.opt_str("unit")?.unwrap_or("s").to_owned(),
        window_s: window_s(f)?,
        bounds,
        counts,
        sum,
        route: route(f)?,
    })
}

pub(super) fn gauge(f: &Fields<'_>) -> Result<GaugeRecord, LineError> {
    let value =
        opt_finite(f, "value")?.ok_or_else(|| f.err("value", "required field is missing"))?;
    let metric = f.req_str("metric")?;
    if value < 0.0 {
        return Err(f.err(
            "value",
            format!("must not be negative for a resource gauge, got {value}"),
        ));
    }
    Ok(GaugeRecord {
        ts_ms: f.ts()?,
        service: f.req_str("service")?,
        revision: f.req_str("revision")?,
        instance: f.req_str("instance")?,
        metric,
        unit: f.opt_str("unit")?.unwrap_or_default().to_owned(),
        value,
    })
}

/// `window_s`: 60 when absent, else 1..=[`MAX_WINDOW_S`].
pub(super) fn window_s(f: &Fields<'_>) -> Result<i32, LineError> {
    match f.obj.get("window_s") {
        None | Some(Value::Null) => Ok(60),
        Some(_) => {
            let w = f.req_i64("window_s")?;
            if !(1..=MAX_WINDOW_S).contains(&w) {
                return Err(f.err(
                    "window_s",
                    format!("must be 1..={MAX_WINDOW_S} seconds, got {w}"),
                ));
            }
            Ok(w as i32)
        }
    }
}

/// A finite number, or `None` when absent or null.
fn opt_finite(f: &Fields<'_>, field: &str) -> Result<Option<f64>, LineError> {
    match f.obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => finite(f, field, v).map(Some),
    }
}

/// `v` as a finite number, or the error for `field`.
fn finite(f: &Fields<'_>, field: &str, v: &Value) -> Result<f64, LineError> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| f.err(field, "must be a finite number")),
        other => Err(f.err(field, format!("expected a number, got {}", kind(other)))),
    }
}

fn numbers(f: &Fields<'_>, field: &str) -> Result<Vec<f64>, LineError> {
    let items = array(f, field)?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| finite(f, &format!("{field}[{i}]"), v))
        .collect()
}

fn counts(f: &Fields<'_>) -> Result<Vec<i64>, LineError> {
    let items = array(f, "counts")?;
    let mut total: i64 = 0;
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let field = format!("counts[{i}]");
        let n = match v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| f.err(&field, format!("expected an integer, got {n}")))?,
            other => return Err(f.err(&field, format!("expected an integer, got {}", kind(other)))),
        };
        if n < 0 {
            return Err(f.err(&field, "must not be negative"));
        }
        total = total.saturating_add(n);
        if total > MAX_COUNT {
            return Err(f.err(
                "counts",
                format!("must add up to at most {MAX_COUNT} requests"),
            ));
        }
        out.push(n);
    }
    Ok(out)
}

fn array<'a>(f: &'a Fields<'_>, field: &str) -> Result<&'a [Value], LineError> {
    match f.obj.get(field) {
        None | Some(Value::Null) => Err(f.err(field, "required field is missing")),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(f.err(field, format!("expected an array, got {}", kind(other)))),
    }
}

fn route(f: &Fields<'_>) -> Result<Option<String>, LineError> {
    match f.obj.get("attributes") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(attrs)) => match attrs.get("http.route") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(f.err("attributes.http.route", "must not be empty")),
            Some(other) => Err(f.err(
                "attributes.http.route",
                format!("expected a string, got {}", kind(other)),
            )),
        },
        Some(other) => Err(f.err(
            "attributes",
            format!("expected an object, got {}", kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::record::{parse_line, DefaultType, Record};

    fn parse(line: &str) -> Result<Record, (String, String)> {
        parse_line(line, 3, DefaultType::Log).map_err(|e| {
            assert_eq!(e.line, 3);
            (e.field, e.reason)
        })
    }

    const HIST: &str = r#"{"type":"histogram","ts":"2026-03-09T10:00:00Z","service":"checkout","revision":"a1b2c3d","metric":"http.server.request.duration","unit":"s","window_s":60,"bounds":[0.005,0.01,0.025,0.05,0.075,0.1,0.25,0.5,0.75,1,2.5,5,7.5,10],"counts":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14],"sum":123.4,"attributes":{"http.route":"/quote"}}"#;

    #[test]
    fn the_contract_histogram_and_gauge_parse() {
        let Record::Histogram(h) = parse(HIST).unwrap() else {
            panic!("not a histogram")
        };
        assert_eq!(h.bounds.len(), 14);
        assert_eq!(h.counts.len(), 15);
        assert_eq!(h.route.as_deref(), Some("/quote"));
        assert_eq!(h.sum, Some(123.4));
        assert_eq!(h.ts_ms, 1_773_050_400_000);
        let g = r#"{"type":"gauge","ts":"2026-03-09T10:00:00Z","service":"checkout","revision":"a1b2c3d","instance":"checkout-7f9c-x2","metric":"process.memory.usage","unit":"By","value":734003200}"#;
        let Record::Gauge(g) = parse(g).unwrap() else {
            panic!("not a gauge")
        };
        assert_eq!(g.value, 734_003_200.0);
        assert_eq!(g.instance, "checkout-7f9c-x2");
    }

    #[test]
    fn bad_histograms_name_the_field_and_the_reason() {
        let cases = [
            (
                HIST.replace("\"counts\":[0,", "\"counts\":["),
                "counts",
                "len(bounds) + 1 = 15",
            ),
            (
                HIST.replace("0.025,0.05", "0.05,0.025"),
                "bounds",
                "strictly increasing",
            ),
            (HIST.replace("[0,1,2", "[0,-1,2"), "counts[1]", "negative"),
            (HIST.replace("[0,1,2", "[0,1.5,2"), "counts[1]", "integer"),
            (
                HIST.replace("\"bounds\":[0.005,", "\"bounds\":[\"a\","),
                "bounds[0]",
                "number",
            ),
            (
                HIST.replace("\"sum\":123.4", "\"sum\":\"x\""),
                "sum",
                "number",
            ),
            (
                HIST.replace("\"window_s\":60", "\"window_s\":0"),
                "window_s",
                "1..=86400",
            ),
            (
                HIST.replace("{\"http.route\":\"/quote\"}", "[]"),
                "attributes",
                "object",
            ),
            (
                HIST.replace(",\"metric\":\"http.server.request.duration\"", ""),
                "metric",
                "missing",
            ),
            (
                HIST.replace(
                    "\"bounds\":[0.005,0.01,0.025,0.05,0.075,0.1,0.25,0.5,0.75,1,2.5,5,7.5,10],",
                    "",
                ),
                "bounds",
                "missing",
            ),
        ];
        for (line, field, why) in cases {
            let (f, reason) = parse(&line).unwrap_err();
            assert_eq!(f, field, "{line}: {reason}");
            assert!(reason.contains(why), "{field}: {reason}");
        }
    }

    #[test]
    fn bad_gauges_and_traffic_errors_are_rejected() {
        let g = r#"{"type":"gauge","ts":1,"service":"a","revision":"r","instance":"i","metric":"process.memory.usage","value":-1}"#;
        assert_eq!(parse(g).unwrap_err().0, "value");
        let g = r#"{"type":"gauge","ts":1,"service":"a","revision":"r","metric":"m","value":1}"#;
        assert_eq!(parse(g).unwrap_err().0, "instance");
        let t = r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"errors":6}"#;
        let (field, reason) = parse(t).unwrap_err();
        assert_eq!(field, "errors");
        assert!(reason.contains("0..=requests (5)"), "{reason}");
        let t = r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"errors":2}"#;
        let Record::Traffic(t) = parse(t).unwrap() else {
            panic!("not traffic")
        };
        assert_eq!(t.errors, Some(2));
        let t =
            r#"{"type":"traffic","ts":1,"service":"a","revision":"r","requests":5,"errors":null}"#;
        let Record::Traffic(t) = parse(t).unwrap() else {
            panic!("not traffic")
        };
        assert_eq!(t.errors, None);
    }
}
