//! A simulated history run both ways: through `selfheal backtest`, and
//! through the HTTP intake of running services, in event-time chunks with
//! the services interleaved as a fleet's shippers would send it (issue 17).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use selfheal_schemas::{AnyEvent, Regression};

/// What two runs must agree on for each regression.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Service.
    pub service: String,
    /// Revision.
    pub revision: String,
    /// Signature id (or metric key).
    pub signature: String,
    /// Detection time (event time).
    pub detected_at_ms: i64,
    /// Whether other services saw the same errors at the same time.
    pub externally_correlated: bool,
}

impl From<&Regression> for Key {
    fn from(r: &Regression) -> Self {
        Self {
            service: r.service.clone(),
            revision: r.revision.clone(),
            signature: r.signature.clone(),
            detected_at_ms: r.detected_at_ms,
            externally_correlated: r.externally_correlated,
        }
    }
}

/// Runs the `selfheal` binary with `args`; panics with its stderr on failure.
pub fn selfheal(args: &[&str]) {
    selfheal_with(args, &[]);
}

/// [`selfheal`] with environment variables set.
pub fn selfheal_with(args: &[&str], env: &[(&str, &str)]) {
    let out = Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run selfheal");
    assert!(
        out.status.success(),
        "selfheal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `selfheal simulate` into `dir/history.ndjson`, then the same history
/// closed by one traffic record per service `close_h` hours after its end (so
/// a live detector's watermarks pass every open window, as the backtest's end
/// of input does). Returns the history's lines.
pub fn simulated(dir: &Path, sim: &[&str], close_h: i64) -> Vec<String> {
    let path = dir.join("history.ndjson");
    let truth = dir.join("truth.ndjson");
    let mut args = vec![
        "simulate",
        "--out",
        path.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ];
    args.extend_from_slice(sim);
    selfheal(&args);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let mut last: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let e = last.entry(service(&v)).or_insert((i64::MIN, String::new()));
        let t = ts_ms(&v);
        if t >= e.0 {
            *e = (t, v["revision"].as_str().unwrap_or_default().to_owned());
        }
    }
    let end = last.values().map(|(t, _)| *t).max().unwrap_or(0);
    for (svc, (_, rev)) in last {
        lines.push(
            serde_json::json!({"type": "traffic", "ts": end + close_h * 3_600_000,
                "service": svc, "revision": rev, "requests": 100, "window_s": 60})
            .to_string(),
        );
    }
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    lines
}

/// The regressions `selfheal backtest` finds in `dir/history.ndjson`, with
/// `env` (`SELFHEAL__…` overrides) set.
pub fn backtest(dir: &Path, env: &[(&str, &str)]) -> Vec<Key> {
    let out = dir.join("backtest");
    let input = dir.join("history.ndjson");
    selfheal_with(
        &[
            "backtest",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        env,
    );
    let text = std::fs::read_to_string(out.join("regressions.ndjson")).unwrap();
    let mut keys: Vec<Key> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Key {
                service: v["service"].as_str().unwrap().to_owned(),
                revision: v["revision"].as_str().unwrap().to_owned(),
                signature: v["signature"].as_str().unwrap().to_owned(),
                detected_at_ms: v["detected_at_ms"].as_i64().unwrap(),
                externally_correlated: v["externally_correlated"].as_bool().unwrap(),
            }
        })
        .collect();
    keys.sort();
    keys
}

/// A record's service.
pub fn service(v: &serde_json::Value) -> String {
    v["service"].as_str().unwrap_or_default().to_owned()
}

/// A record's event time (RFC 3339 or epoch ms).
pub fn ts_ms(v: &serde_json::Value) -> i64 {
    match &v["ts"] {
        serde_json::Value::Number(n) => n.as_i64().unwrap(),
        serde_json::Value::String(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .unwrap();
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        }
        other => panic!("no ts: {other}"),
    }
}

/// The request bodies a fleet's shippers would send, round by round: each
/// service's lines in time order, cut into chunks of `chunk_minutes` of event
/// time, one chunk per service a round, the services of a round in an order
/// shuffled by `seed`.
pub fn shipper_rounds(lines: &[String], chunk_minutes: i64, seed: u64) -> Vec<Vec<String>> {
    let mut streams: BTreeMap<String, Vec<(i64, &str)>> = BTreeMap::new();
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        streams
            .entry(service(&v))
            .or_default()
            .push((ts_ms(&v), l.as_str()));
    }
    let mut streams: Vec<Vec<(i64, &str)>> = streams.into_values().collect();
    // A shipper sends a service's lines in time order.
    for s in &mut streams {
        s.sort_by_key(|x| x.0);
    }
    let start = streams.iter().flatten().map(|x| x.0).min().unwrap_or(0);
    let end = streams.iter().flatten().map(|x| x.0).max().unwrap_or(0);
    let mut next = vec![0usize; streams.len()];
    let mut rng = seed | 1;
    let mut rounds = Vec::new();
    let mut t = start;
    while t <= end {
        let mut bodies = Vec::new();
        t += chunk_minutes * 60_000;
        let mut order: Vec<usize> = (0..streams.len()).collect();
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for i in order {
            let from = next[i];
            while next[i] < streams[i].len() && streams[i][next[i]].0 < t {
                next[i] += 1;
            }
            if next[i] > from {
                let body: Vec<&str> = streams[i][from..next[i]].iter().map(|x| x.1).collect();
                bodies.push(body.join("\n"));
            }
        }
        rounds.push(bodies);
    }
    rounds
}

/// Posts `rounds` to the intake at `url` (`/v1/ndjson/logs`): the requests of a
/// round concurrently (one per service, so each service's lines stay in
/// order), the rounds one after the other. Each request carries an
/// Idempotency-Key and is resent on 503, so a retry is never counted twice.
pub async fn post_rounds(url: &str, rounds: Vec<Vec<String>>) -> usize {
    let http = reqwest::Client::new();
    let mut n = 0;
    for (r, bodies) in rounds.into_iter().enumerate() {
        let sent = bodies.into_iter().enumerate().map(|(i, body)| {
            let (http, url) = (http.clone(), url.to_owned());
            async move {
                let key = format!("round-{r}-{i}-{}", uuid::Uuid::new_v4());
                for _ in 0..50 {
                    let resp = http
                        .post(&url)
                        .header("Content-Type", "application/x-ndjson")
                        .header("Idempotency-Key", &key)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    match resp.status().as_u16() {
                        200 => return,
                        503 => tokio::time::sleep(Duration::from_millis(200)).await,
                        s => panic!("round {r}: HTTP {s}: {}", resp.text().await.unwrap()),
                    }
                }
                panic!("round {r}: still 503 after 50 tries");
            }
        });
        n += futures::future::join_all(sent).await.len();
    }
    n
}

/// How far consumer group `group` is through `topics`: (records committed,
/// records written) summed over every partition, and the partitions behind.
pub fn progress(bootstrap: &str, group: &str, topics: &[&str]) -> (i64, i64, Vec<String>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        for p in md.topics()[0].partitions() {
            tpl.add_partition(topic, p.id());
        }
    }
    // The coordinator can be slow to answer right after a kill: retry.
    let mut tries = 0;
    let committed = loop {
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(c) => break c,
            Err(e) if tries < 5 => {
                tries += 1;
                eprintln!("committed offsets of {group}: {e}; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => panic!("committed offsets of {group}: {e}"),
        }
    };
    let (mut done, mut total, mut behind) = (0, 0, Vec::new());
    for e in committed.elements() {
        let (low, high) = consumer
            .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
            .unwrap();
        let at = match e.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        done += at - low;
        total += high - low;
        if at < high {
            behind.push(format!("{}[{}] {at}/{high}", e.topic(), e.partition()));
        }
    }
    (done, total, behind)
}

/// Waits until consumer group `group` has committed, on every partition of
/// `topics`, the partition's end offset: everything written was consumed.
pub fn wait_consumed(bootstrap: &str, group: &str, topics: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, _, behind) = progress(bootstrap, group, topics);
        if behind.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("group {group} did not consume its input within {timeout:?}: {behind:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every committed regression on `topic`, as keys, sorted. Reads until the
/// topic has been quiet for a few seconds.
pub fn regressions(bootstrap: &str, topic: &str) -> Vec<Key> {
    let events = super::read_until(bootstrap, topic, Duration::from_secs(8), |_| false);
    let mut keys: Vec<Key> = super::of(&events, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    })
    .iter()
    .map(Key::from)
    .collect();
    keys.sort();
    keys
}

/// What differs between `got` and `want`, one line per regression.
pub fn diff(got: &[Key], want: &[Key]) -> String {
    let mut out = String::new();
    for k in want.iter().filter(|k| !got.contains(k)) {
        out.push_str(&format!("  missing: {k:?}\n"));
    }
    for k in got.iter().filter(|k| !want.contains(k)) {
        out.push_str(&format!("  extra:   {k:?}\n"));
    }
    out
}
