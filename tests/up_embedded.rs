//! `selfheal up` on the embedded default (librdkafka's in-process mock cluster):
//! the real binary runs the whole loop with zero set-up and exits promptly on
//! SIGTERM. Needs no broker.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::BAD_DEPLOY;

/// Kills the child on drop so a failing test leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn addr_in(line: &str, marker: &str) -> Option<String> {
    let start = line.find("http://")? + "http://".len();
    let rest = &line[start..];
    let end = rest.find('/')?;
    line.contains(marker).then(|| rest[..end].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfheal_up_runs_the_loop_embedded_and_exits_on_sigterm() {
    let any = "127.0.0.1:0";
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .arg("up")
            .env_remove("SELFHEAL__KAFKA__BOOTSTRAP")
            .env("SELFHEAL__HTTP__INGEST", any)
            .env("SELFHEAL__HTTP__DETECTOR", any)
            .env("SELFHEAL__HTTP__TRIAGE", any)
            .env("SELFHEAL__HTTP__FIXER", any)
            .env("SELFHEAL__CONSOLE__LISTEN", any)
            // The fixture is history (March 2026), past the default max age.
            .env("SELFHEAL__INGEST__MAX_AGE_S", "0")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn selfheal up"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[selfheal up] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut ingest, mut fixer, mut console) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ingest.is_none() || fixer.is_none() || console.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("selfheal up did not report its addresses in time");
        if let Some(a) = addr_in(&line, "selfheal is up") {
            ingest = Some(a);
        }
        if let Some(a) = addr_in(&line, "service=\"fixer\"") {
            fixer = Some(a);
        }
        if let Some(a) = addr_in(&line, "console: ") {
            console = Some(a);
        }
    }
    let (ingest, fixer, console) = (ingest.unwrap(), fixer.unwrap(), console.unwrap());

    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{ingest}/v1/ndjson/logs"))
        .body(BAD_DEPLOY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The fixer's metrics show the action produced (the events themselves live
    // in the in-process cluster, out of the test's reach).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = http
            .get(format!("http://{fixer}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("selfheal_fixer_messages_produced_total{topic=\"selfheal.actions\"}") {
            break;
        }
        assert!(Instant::now() < deadline, "no action produced:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    assert_the_log_tells_what_happened(&rx);
    assert_the_console_shows_the_incident(&http, &console).await;

    let pid = child.0.id().to_string();
    let sent = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(15),
            "selfheal up did not exit within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

/// The quickstart's log, read as a person would: the regression with its
/// error text, counts and detection time (event time and after the deploy),
/// the verdict with the cited line, the action with its rule and target.
fn assert_the_log_tells_what_happened(rx: &mpsc::Receiver<String>) {
    let wanted: [(&str, &[&str]); 3] = [
        (
            "regression (new) in checkout b",
            &[
                "`KeyError: '",
                "observed 2 vs",
                "expected",
                "(event time)",
                "after the deploy",
            ],
        ),
        (
            "verdict caused",
            &["for checkout b", "cites src/checkout/pricing.py:216"],
        ),
        // The quickstart's error is within budget (severity low) and cited to
        // the line: the rule table fixes it forward; a rollback line would
        // name its target (`action rollback to a`).
        (": action ", &["for checkout b", "by rule ", "[dry_run]"]),
    ];
    let mut found: Vec<Option<String>> = vec![None; wanted.len()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while found.iter().any(Option::is_none) {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            panic!("the log did not tell what happened; found so far: {found:?}");
        };
        for (slot, (marker, _)) in found.iter_mut().zip(&wanted) {
            if slot.is_none() && line.contains(marker) {
                *slot = Some(line.clone());
            }
        }
    }
    for (line, (_, parts)) in found.iter().flatten().zip(&wanted) {
        for part in *parts {
            assert!(line.contains(part), "`{part}` missing from: {line}");
        }
    }
    let regression = found[0].as_deref().unwrap_or_default();
    // The fixture deploys b at 10:00:00Z; detection is in event time, minutes later.
    assert!(
        regression.contains("detected 2026-03-09T10:"),
        "event time, not wall clock: {regression}"
    );
}

/// The console `selfheal up` serves reads the embedded cluster's topics: the
/// incident page shows the cited line, the verdict and the action.
async fn assert_the_console_shows_the_incident(http: &reqwest::Client, console: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!("http://{console}/incident/checkout/b"))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let page = r.text().await.unwrap();
        // The action (fix-forward for the quickstart's low-severity, cited
        // error; a rollback at a faster burn).
        let acted = page.contains("<td>rollback</td>") || page.contains("<td>fix_forward</td>");
        if status == 200 && page.contains("id=\"actions\"") && acted {
            assert!(page.contains("class=\"cited\">  216 +"), "{page}");
            assert!(
                page.contains("<span class=\"caused\">caused</span>"),
                "{page}"
            );
            assert!(page.contains("cites src/checkout/pricing.py:216"), "{page}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the console never showed the incident:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let fleet = http
        .get(format!("http://{console}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fleet.contains("href=\"/incident/checkout/b\""), "{fleet}");
}
