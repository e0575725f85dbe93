//! The demo's log shipper and traffic generator.
//!
//! The shipper does what Vector or Fluent Bit would do for a real service: it
//! tails the service's JSON log, sends each error (with its traceback) to
//! ingest's `/v1/ndjson/logs`, turns the access log into request and 5xx
//! counts and a latency histogram per window on `/v1/traffic`, and forwards
//! the memory gauges. Times go through the demo's compressed [`Clock`].

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use selfheal_common::CancellationToken;
use serde_json::{json, Value};

/// Event time runs `speed` times faster than the wall clock, from `t0_ms`.
///
/// With 60×, one real second is one event-time minute: the detector's default
/// statistics (minute buckets, 2-minute lateness, per-minute evaluations) run
/// unchanged, only faster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Wall-clock epoch ms at the start.
    pub(crate) wall_start_ms: i64,
    /// Event time at the start (a whole minute).
    pub(crate) t0_ms: i64,
    /// Event-time ms per wall-clock ms.
    pub(crate) speed: i64,
}

/// Milliseconds since the Unix epoch, wall clock.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Clock {
    /// A clock starting now.
    pub(crate) fn start(speed: i64) -> Self {
        let wall = wall_ms();
        Self {
            wall_start_ms: wall,
            t0_ms: wall - wall % 60_000,
            speed,
        }
    }

    /// The event time of a wall-clock instant.
    pub(crate) fn event_ms(&self, wall_ms: i64) -> i64 {
        self.t0_ms + (wall_ms - self.wall_start_ms) * self.speed
    }

    /// The event time now.
    pub(crate) fn now(&self) -> i64 {
        self.event_ms(wall_ms())
    }
}

/// `hh:mm:ss` of an event time (UTC).
pub(crate) fn hms(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Posts NDJSON to ingest, retrying while it answers 503 (Kafka not ready).
async fn post(client: &reqwest::Client, url: &str, records: &[Value]) -> anyhow::Result<()> {
    let body: String = records.iter().map(|r| format!("{r}\n")).collect();
    let mut wait = Duration::from_millis(100);
    for _ in 0..20 {
        match client.post(url).body(body.clone()).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {}
            Ok(r) => {
                let status = r.status();
                anyhow::bail!(
                    "{url} answered {status}: {}",
                    r.text().await.unwrap_or_default()
                )
            }
            Err(e) => tracing::debug!(error = %e, "ingest not reachable yet"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    anyhow::bail!("{url} did not accept the records")
}

/// Sends one Deploy record to ingest.
pub(crate) async fn post_deploy(ingest: &str, record: Value) -> anyhow::Result<()> {
    post(
        &reqwest::Client::new(),
        &format!("{ingest}/v1/deploys"),
        &[record],
    )
    .await
}

/// Tails the service log into ingest until `stop`, then ships what is left.
pub(crate) async fn ship(
    log: PathBuf,
    ingest: String,
    service: String,
    clock: Clock,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut offset = 0u64;
    let mut partial = String::new();
    // Requests per (window index, revision); a window is one event-time minute.
    let mut windows: BTreeMap<(i64, String), Window> = BTreeMap::new();
    loop {
        let stopping = stop.is_cancelled();
        let mut logs = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&log) {
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = String::new();
            offset += f.read_to_string(&mut buf)? as u64;
            partial.push_str(&buf);
        }
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            let Ok(rec) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let ts = clock.event_ms(rec["ts"].as_i64().unwrap_or_else(wall_ms));
            let revision = rec["revision"].as_str().unwrap_or("unknown").to_owned();
            match rec["kind"].as_str() {
                Some("access") => {
                    windows
                        .entry(((ts - clock.t0_ms).div_euclid(60_000), revision))
                        .or_default()
                        .add(&rec);
                }
                Some("gauge") => logs.push(json!({
                    "type": "gauge",
                    "ts": ts,
                    "service": service,
                    "revision": revision,
                    "instance": rec["instance"],
                    "metric": rec["metric"],
                    "unit": rec["unit"],
                    "value": rec["value"],
                })),
                Some("error") => logs.push(json!({
                    "type": "log",
                    "ts": ts,
                    "service": service,
                    "revision": revision,
                    "level": rec["level"],
                    "message": rec["message"],
                    "stack": rec["stack"],
                })),
                _ => {}
            }
        }
        if !logs.is_empty() {
            post(&client, &format!("{ingest}/v1/ndjson/logs"), &logs).await?;
        }
        // A window is complete once its last access line can have been written.
        let open_from = if stopping {
            i64::MAX
        } else {
            (clock.event_ms(wall_ms() - 300) - clock.t0_ms).div_euclid(60_000)
        };
        let closed: Vec<(i64, String)> = windows
            .keys()
            .filter(|(w, _)| *w < open_from)
            .cloned()
            .collect();
        let traffic: Vec<Value> = closed
            .into_iter()
            .flat_map(|k| {
                let w = windows.remove(&k).unwrap_or_default();
                let ts = clock.t0_ms + k.0 * 60_000;
                [
                    json!({
                        "type": "traffic",
                        "ts": ts,
                        "service": service,
                        "revision": k.1,
                        "requests": w.requests,
                        "errors": w.errors,
                        "window_s": 60,
                    }),
                    json!({
                        "type": "histogram",
                        "ts": ts,
                        "service": service,
                        "revision": k.1,
                        "metric": "http.server.request.duration",
                        "unit": "s",
                        "window_s": 60,
                        "bounds": BOUNDS_S,
                        "counts": w.counts,
                        "attributes": {"http.route": "/quote"},
                    }),
                ]
            })
            .collect();
        if !traffic.is_empty() {
            post(&client, &format!("{ingest}/v1/traffic"), &traffic).await?;
        }
        if stopping {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.cancelled() => {}
        }
    }
}

/// OpenTelemetry's default bucket bounds for `http.server.request.duration`.
const BOUNDS_S: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// One window of the access log: requests, server errors, durations.
#[derive(Debug, Default)]
struct Window {
    requests: i64,
    errors: i64,
    counts: [i64; BOUNDS_S.len() + 1],
}

impl Window {
    fn add(&mut self, access: &Value) {
        self.requests += 1;
        if access["status"].as_i64().is_some_and(|s| s >= 500) {
            self.errors += 1;
        }
        let s = access["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
        let bucket = BOUNDS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BOUNDS_S.len());
        self.counts[bucket] += 1;
    }
}

/// What the traffic generator saw.
#[derive(Debug, Default)]
pub(crate) struct TrafficStats {
    /// 2xx answers.
    pub(crate) ok: AtomicU64,
    /// 5xx answers.
    pub(crate) errors: AtomicU64,
    /// No answer (the process was restarting).
    pub(crate) unreachable: AtomicU64,
}

/// Sends `rate` requests per second to the service until `stop`: three in ten
/// name no currency (the storefront's default), the rest EUR, GBP, JPY or USD.
pub(crate) async fn generate(
    base: String,
    rate: u32,
    stats: Arc<TrafficStats>,
    stop: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let currencies = ["EUR", "GBP", "JPY", "USD"];
    for i in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let items = 1 + i % 5;
        let url = if i % 10 < 3 {
            format!("{base}/quote?items={items}")
        } else {
            format!(
                "{base}/quote?items={items}&currency={}",
                currencies[(i / 10 % 4) as usize]
            )
        };
        let (client, stats) = (client.clone(), stats.clone());
        tokio::spawn(async move {
            let counter = match client.get(url).send().await {
                Ok(r) if r.status().is_success() => &stats.ok,
                Ok(_) => &stats.errors,
                Err(_) => &stats.unreachable,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }
}
