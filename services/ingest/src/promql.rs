//! Traffic from Prometheus (`[ingest.prometheus_traffic]`, adapter + a pure
//! core): teams that already count requests in Prometheus need not push
//! `traffic` records. At the end of every window (plus `lag_s`, so the
//! window's scrapes are in) the intake runs two instant queries, requests
//! and server errors per (service, revision) over the window, and writes
//! one `traffic` record per series through the same batcher as pushed
//! records (so the same event-time checks and Kafka acknowledgement apply).
//!
//! Nothing is skipped silently: windows missed while Prometheus is
//! unreachable are queried when it answers again (up to
//! `max_catch_up_windows`; it still holds them), and windows given up are
//! logged and counted (`selfheal_ingest_prometheus_windows_total{outcome}`).
//! A restart starts at the current window: the windows while the intake was
//! down are not backfilled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, Opts, Registry};
use selfheal_common::config::PrometheusTrafficConfig;
use selfheal_common::CancellationToken;
use serde_json::Value;

use crate::batch::Batcher;
use crate::events::to_events;
use crate::normalize::Normalizer;
use crate::record::{Record, TrafficRecord};

/// One series of an instant vector: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

/// Parses a `/api/v1/query` answer (`resultType: vector`).
pub fn parse_vector(body: &str) -> Result<Vec<Sample>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "status {}: {} {}",
            v["status"], v["errorType"], v["error"]
        ));
    }
    if v["data"]["resultType"] != "vector" {
        return Err(format!(
            "resultType {} (the query must give an instant vector)",
            v["data"]["resultType"]
        ));
    }
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().into_iter().flatten() {
        let labels = s["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let value = s["value"][1]
            .as_str()
            .and_then(|x| x.parse::<f64>().ok())
            .ok_or_else(|| format!("a sample without a numeric value: {s}"))?;
        out.push((labels, value));
    }
    Ok(out)
}

/// The traffic records of the window starting at `start_ms`: one per
/// (service, revision) with requests, joined with its errors. Series
/// without both labels, and non-finite or negative values, are left out
/// (returned in the second list, for the log).
pub fn records(
    cfg: &PrometheusTrafficConfig,
    start_ms: i64,
    requests: &[Sample],
    errors: Option<&[Sample]>,
) -> (Vec<TrafficRecord>, Vec<String>) {
    let key = |l: &BTreeMap<String, String>| {
        Some((
            l.get(&cfg.service_label)?.clone(),
            l.get(&cfg.revision_label)?.clone(),
        ))
    };
    let mut errs: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (l, v) in errors.unwrap_or_default() {
        if let (Some(k), true) = (key(l), v.is_finite()) {
            *errs.entry(k).or_default() += v.max(0.0);
        }
    }
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for (l, v) in requests {
        let Some((service, revision)) = key(l) else {
            skipped.push(format!(
                "series {l:?} lacks the label {} or {}",
                cfg.service_label, cfg.revision_label
            ));
            continue;
        };
        if !v.is_finite() || *v < 0.0 {
            skipped.push(format!("{service}@{revision}: value {v}"));
            continue;
        }
        let requests = v.round() as i64;
        let errors = errors.map(|_| {
            let e = errs
                .get(&(service.clone(), revision.clone()))
                .copied()
                .unwrap_or(0.0);
            (e.round() as i64).min(requests)
        });
        out.push(TrafficRecord {
            ts_ms: start_ms,
            service,
            revision,
            requests,
            errors,
            window_s: i32::try_from(cfg.window_s).unwrap_or(i32::MAX),
        });
    }
    (out, skipped)
}

/// The query text for a window.
pub fn query_text(template: &str, window_s: u32) -> String {
    template.replace("{window}", &format!("{window_s}s"))
}

struct Source {
    cfg: PrometheusTrafficConfig,
    client: reqwest::Client,
    windows: IntCounterVec,
}

impl Source {
    async fn query(&self, template: &str, at_ms: i64) -> Result<Vec<Sample>, String> {
        let url = format!("{}/api/v1/query", self.cfg.url.trim_end_matches('/'));
        let q = query_text(template, self.cfg.window_s);
        let time = format!("{:.3}", at_ms as f64 / 1000.0);
        let resp = self
            .client
            .get(&url)
            .query(&[("query", q.as_str()), ("time", time.as_str())])
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{url}: HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        parse_vector(&body).map_err(|e| format!("{url} `{q}`: {e}"))
    }

    /// The records of the window `[start, start + window)`.
    async fn window(&self, start_ms: i64) -> Result<Vec<TrafficRecord>, String> {
        let end = start_ms + i64::from(self.cfg.window_s) * 1000;
        let requests = self.query(&self.cfg.requests_query, end).await?;
        let errors = match self.cfg.errors_query.as_str() {
            "" => None,
            q => Some(self.query(q, end).await?),
        };
        let (recs, skipped) = records(&self.cfg, start_ms, &requests, errors.as_deref());
        for s in skipped {
            tracing::warn!(
                window_start_ms = start_ms,
                "prometheus traffic: {s}; not counted"
            );
        }
        Ok(recs)
    }
}

/// Runs until `stop`: one window after another, in order.
pub async fn run(
    cfg: PrometheusTrafficConfig,
    batcher: Batcher,
    normalizer: Arc<Mutex<Normalizer>>,
    registry: &Registry,
    stop: CancellationToken,
) -> selfheal_common::Result<()> {
    let windows = IntCounterVec::new(
        Opts::new(
            "selfheal_ingest_prometheus_windows_total",
            "Traffic windows read from Prometheus, by outcome (written, retried, lost).",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    registry
        .register(Box::new(windows.clone()))
        .map_err(selfheal_common::Error::caused(
            crate::NAME,
            "registering the Prometheus traffic metric",
        ))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .build()
        .map_err(selfheal_common::Error::caused(
            crate::NAME,
            "building the Prometheus HTTP client",
        ))?;
    let source = Source {
        cfg,
        client,
        windows,
    };
    let win = i64::from(source.cfg.window_s.max(1)) * 1000;
    let lag = i64::from(source.cfg.lag_s) * 1000;
    let now = selfheal_common::wall_clock_ms;
    // The window in progress is the first one read.
    let mut next = now().div_euclid(win) * win;
    loop {
        let due = next + win + lag;
        let wait = u64::try_from(due - now()).unwrap_or(0);
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
        let behind = (now() - lag - next) / win;
        if behind > i64::from(source.cfg.max_catch_up_windows) {
            let lost = behind - i64::from(source.cfg.max_catch_up_windows);
            tracing::error!(windows = lost, "prometheus traffic: Prometheus was unreachable for too long; these windows are not read");
            source
                .windows
                .with_label_values(&["lost"])
                .inc_by(lost.unsigned_abs());
            next += lost * win;
        }
        match source.window(next).await {
            Ok(recs) => {
                let records: Vec<Record> = recs.into_iter().map(Record::Traffic).collect();
                let reservation = batcher.reserve(records.len()).await.map_err(
                    selfheal_common::Error::caused(crate::NAME, "prometheus traffic"),
                )?;
                let events = {
                    let mut n = normalizer.lock().unwrap_or_else(|p| p.into_inner());
                    to_events(&mut *n, records)
                };
                match batcher.submit(events, reservation).await {
                    Ok(()) => {
                        source.windows.with_label_values(&["written"]).inc();
                        next += win;
                    }
                    Err(e) => {
                        // Not acknowledged: the same window again (a
                        // transactional flush left nothing visible).
                        tracing::warn!(error = %e, "prometheus traffic: window not written; retrying it");
                        source.windows.with_label_values(&["retried"]).inc();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, window_start_ms = next, "prometheus traffic: query failed; retrying this window");
                source.windows.with_label_values(&["retried"]).inc();
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PrometheusTrafficConfig {
        PrometheusTrafficConfig::default()
    }

    #[test]
    fn a_vector_answer_becomes_one_record_per_service_and_revision() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"service":"checkout","revision":"b"},"value":[1772000060,"812.6"]},
            {"metric":{"service":"checkout","revision":"a"},"value":[1772000060,"3.0"]},
            {"metric":{"service":"cart"},"value":[1772000060,"5"]}]}}"#;
        let req = parse_vector(body).unwrap();
        let err = parse_vector(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"service":"checkout","revision":"b"},"value":[1772000060,"40.2"]}]}}"#,
        )
        .unwrap();
        let (recs, skipped) = records(&cfg(), 1_772_000_000_000, &req, Some(&err));
        assert_eq!(recs.len(), 2);
        let b = recs.iter().find(|r| r.revision == "b").unwrap();
        assert_eq!((b.requests, b.errors, b.window_s), (813, Some(40), 60));
        let a = recs.iter().find(|r| r.revision == "a").unwrap();
        assert_eq!(
            a.errors,
            Some(0),
            "no error series: zero errors, not unknown"
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("revision"));
        let (recs, _) = records(&cfg(), 0, &req, None);
        assert!(recs.iter().all(|r| r.errors.is_none()));
    }

    #[test]
    fn errors_are_reported_with_what_prometheus_said() {
        let e = parse_vector(
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#,
        )
        .unwrap_err();
        assert!(e.contains("parse error at char 5"), "{e}");
        let e = parse_vector(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
            .unwrap_err();
        assert!(e.contains("instant vector"), "{e}");
        assert_eq!(query_text("increase(x[{window}])", 60), "increase(x[60s])");
    }
}
