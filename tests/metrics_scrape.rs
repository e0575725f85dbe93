//! The services' Prometheus endpoints after a bad deploy went through the
//! loop on a real broker: build info everywhere, the intake's latency
//! histogram, rejected fields without record positions, regressions by kind
//! with their detection delay, verdicts by decision, actions by kind and
//! status, and consumer lag per input topic.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bootstrap, external, isolated_config, read_until, BAD_DEPLOY};
use selfheal_common::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

async fn scrape(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `series` (name with labels, exactly as exposed).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Every label value of every sample, for the boundedness check.
fn label_values(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| Some(l[l.find('{')? + 1..l.rfind('}')?].to_owned()))
        .flat_map(|labels| {
            labels
                .split("\",")
                .filter_map(|kv| {
                    kv.split_once("=\"")
                        .map(|(_, v)| v.trim_end_matches('"').to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `promtool check metrics` on one scrape: no error and no lint problem.
fn promtool_check(promtool: &str, service: &str, metrics: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics on {service}'s /metrics: {said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_exposes_its_outcomes_lag_and_build() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    // Statistics (consumer lag) every half second instead of every 10 s.
    config
        .kafka
        .client
        .insert("statistics.interval.ms".to_owned(), "500".to_owned());
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let detector = selfheal_detector::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let triage = selfheal_triage::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let fixer = selfheal_fixer::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}", ingest.http_addr);
    let r = http
        .post(format!("{base}/v1/ndjson/logs"))
        .body(BAD_DEPLOY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // 40 OTLP records without a time: 40 rejections, one field label.
    let bad: Vec<serde_json::Value> = (0..40)
        .map(|_| serde_json::json!({"body": {"stringValue": "no time"}}))
        .collect();
    let otlp = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeLogs": [{"logRecords": bad}]}]});
    let r = http
        .post(format!("{base}/v1/logs"))
        .json(&otlp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Fuzzed bad input: 300 NDJSON lines of random keys, types and values
    // (seeded), to every NDJSON endpoint; the `field` label must stay a
    // small set of the parser's own names.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let keys = [
        "type", "ts", "service", "revision", "message", "requests", "errors", "window_s", "stack",
        "x-y", "ünï", "",
    ];
    let values = [
        "\"\"",
        "null",
        "-1",
        "1e309",
        "9223372036854775808",
        "\"2099-01-01T00:00:00Z\"",
        "[1,2]",
        "{\"a\":1}",
        "true",
        "\"log\"",
        "\"traffic\"",
        "\"deploy\"",
        "\"checkout\"",
    ];
    for endpoint in ["ndjson/logs", "traffic", "deploys", "builds"] {
        let body: String = (0..75)
            .map(|i| {
                let n = 1 + next() % 6;
                let fields: Vec<String> = (0..n)
                    .map(|_| {
                        let k = keys[(next() % keys.len() as u64) as usize];
                        let v = values[(next() % values.len() as u64) as usize];
                        format!(
                            "\"{k}{}\":{v}",
                            if next() % 4 == 0 {
                                i.to_string()
                            } else {
                                String::new()
                            }
                        )
                    })
                    .collect();
                format!("{{{}}}\n", fields.join(","))
            })
            .collect();
        let r = http
            .post(format!("{base}/v1/{endpoint}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error() || r.status().is_success(),
            "{endpoint}: {}",
            r.status()
        );
    }

    let b = bootstrap.clone();
    let topic = config.topics.actions.clone();
    tokio::task::spawn_blocking(move || read_until(&b, &topic, WAIT, |evs| !evs.is_empty()))
        .await
        .unwrap();

    let ingest_m = scrape(ingest.http_addr).await;
    assert_eq!(
        value(
            &ingest_m,
            "selfheal_ingest_lines_rejected_total{field=\"resourceLogs[].scopeLogs[].logRecords[].timeUnixNano\"}"
        ),
        Some(40.0),
        "{ingest_m}"
    );
    assert!(
        !label_values(&ingest_m)
            .iter()
            .any(|v| v.contains("[0]") || v.contains("[39]")),
        "a label carries a record position: {ingest_m}"
    );
    let fields: std::collections::BTreeSet<String> = ingest_m
        .lines()
        .filter(|l| l.starts_with("selfheal_ingest_lines_rejected_total{"))
        .map(|l| l[..l.rfind(' ').unwrap_or(l.len())].to_owned())
        .collect();
    eprintln!(
        "rejected-field label values after the fuzzed input: {}",
        fields.len()
    );
    assert!(
        fields.len() <= 30,
        "the fuzzed input grew the field label to {} values: {fields:?}",
        fields.len()
    );
    assert_eq!(
        value(
            &ingest_m,
            "selfheal_ingest_request_duration_seconds_count{endpoint=\"logs\"}"
        ),
        // BAD_DEPLOY and the fuzzed body, both on /v1/ndjson/logs.
        Some(2.0),
        "{ingest_m}"
    );
    assert!(
        value(&ingest_m, "selfheal_ingest_flush_size_messages_count").is_some_and(|n| n >= 1.0),
        "a flush-size histogram: {ingest_m}"
    );
    let version = env!("CARGO_PKG_VERSION");
    for (name, addr) in [
        ("ingest", ingest.http_addr),
        ("detector", detector.http_addr),
        ("triage", triage.http_addr),
        ("fixer", fixer.http_addr),
    ] {
        let m = scrape(addr).await;
        let series = format!("selfheal_build_info{{service=\"{name}\",version=\"{version}\"}}");
        assert_eq!(value(&m, &series), Some(1.0), "{name}: {m}");
        if let Some(promtool) = external("SELFHEAL_TEST_PROMTOOL") {
            promtool_check(&promtool, name, &m);
        }
    }

    let detector_m = scrape(detector.http_addr).await;
    assert_eq!(
        value(
            &detector_m,
            "selfheal_detector_regressions_total{kind=\"new\"}"
        ),
        Some(1.0),
        "{detector_m}"
    );
    // BAD_DEPLOY's KeyErrors start right after the deploy; the detector needs
    // a few minutes of event time to call it.
    let delay_sum = value(
        &detector_m,
        "selfheal_detector_detection_delay_seconds_sum{kind=\"new\"}",
    )
    .expect("a detection delay");
    assert!((0.0..=600.0).contains(&delay_sum), "{delay_sum}");
    let triage_m = scrape(triage.http_addr).await;
    assert!(
        value(
            &triage_m,
            "selfheal_triage_verdicts_total{decision=\"caused\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "{triage_m}"
    );
    let fixer_m = scrape(fixer.http_addr).await;
    let actions: f64 = fixer_m
        .lines()
        .filter(|l| {
            l.starts_with("selfheal_fixer_actions_total{") && l.contains("status=\"dry_run\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(actions, 1.0, "{fixer_m}");

    // Lag: the detector's statistics name its input topics; everything was
    // consumed, so each reads 0 once reported.
    let signatures = format!(
        "selfheal_detector_consumer_lag_messages{{topic=\"{}\"}}",
        config.topics.signatures
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let lag = loop {
        let m = scrape(detector.http_addr).await;
        if let Some(v) = value(&m, &signatures) {
            break v;
        }
        assert!(Instant::now() < deadline, "no lag series {signatures}: {m}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(lag, 0.0);

    shutdown.cancel();
    for h in [ingest, detector, triage, fixer] {
        h.wait().await.unwrap();
    }
}
