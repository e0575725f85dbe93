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
    let (mut ingest, mut fixer) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ingest.is_none() || fixer.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("selfheal up did not report its addresses in time");
        if let Some(a) = addr_in(&line, "selfheal is up") {
            ingest = Some(a);
        }
        if let Some(a) = addr_in(&line, "service=\"fixer\"") {
            fixer = Some(a);
        }
    }
    let (ingest, fixer) = (ingest.unwrap(), fixer.unwrap());

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
