//! `selfheal demo` against the real broker: the closed loop on a real service
//! process, asserted step by step from the events on the topics (not from log
//! text), for both scenarios, run side by side on their own topics:
//!
//! - bad deploy: deploy → first error → regression → verdict citing the changed
//!   line → rollback (the deploy script, back to A) → recovery verified → fix
//!   branch in the bare remote;
//! - docs-only deploy during a burst of an existing upstream error: a spike,
//!   a `not_caused` verdict, action `none`, no rollback.
//!
//! Then another team's subscriber, in Python with `confluent-kafka` and
//! `fastavro` and nothing but `schemas/*.avsc`, reads the same Regression,
//! Verdict and Action events and checks their fields.

mod browser;
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bootstrap, of};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use selfheal_common::config::TopicsConfig;
use selfheal_schemas::{
    Action, ActionKind, ActionStatus, AnyEvent, Decision, Deploy, RateBasis, Regression,
    RegressionKind, SignatureCount, Verdict,
};

const SERVICE: &str = "shop";
const READ: Duration = Duration::from_secs(20);

/// Kills the child on drop so a failing test leaves no demo behind (the demo
/// service exits on its own once its owner is gone).
struct Demo {
    child: std::process::Child,
    scenario: &'static str,
    suffix: String,
    workdir: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bootstrap: &str, scenario: &'static str, root: &Path) -> Demo {
    let suffix = format!(".t{}", uuid::Uuid::new_v4().simple());
    let workdir = root.join(scenario);
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args(["demo", "--kafka", bootstrap, "--scenario", scenario])
        .args(["--topic-suffix", &suffix, "--timeout-s", "150"])
        .arg("--workdir")
        .arg(&workdir)
        .env_remove("SELFHEAL_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn selfheal demo");
    for (stream, name) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            "out",
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            "err",
        ),
    ] {
        let stream = stream.unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("[demo {scenario} {name}] {line}");
            }
        });
    }
    Demo {
        child,
        scenario,
        suffix,
        workdir,
    }
}

fn wait(demo: &mut Demo, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "selfheal demo --scenario {} failed: {status}",
                demo.scenario
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not finish",
            demo.scenario
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn topics(demo: &Demo) -> TopicsConfig {
    TopicsConfig::default().with_suffix(&demo.suffix)
}

/// Every event on `topic`: read from the beginning up to each partition's end
/// (the demo has finished writing).
fn events<E: selfheal_schemas::Event>(
    bootstrap: &str,
    topic: &str,
    pick: impl Fn(&AnyEvent) -> Option<&E>,
) -> Vec<E> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("demo-e2e-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = std::collections::BTreeMap::new();
    for p in md.topics()[0].partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .unwrap();
        if high > low {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    let mut out: Vec<Result<AnyEvent, Vec<u8>>> = Vec::new();
    if ends.is_empty() {
        return Vec::new();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + READ;
    while !ends.is_empty() {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            // Topics written in transactions (the detector's) end with a
            // commit marker that occupies an offset but is never delivered:
            // done once the position reaches the end.
            let positions = consumer.position().unwrap();
            for e in positions.elements() {
                if let Offset::Offset(o) = e.offset() {
                    if ends.get(&e.partition()).is_some_and(|end| o >= *end) {
                        ends.remove(&e.partition());
                    }
                }
            }
            continue;
        };
        let msg = msg.unwrap();
        let event = selfheal_schemas::decode_any(msg.payload().unwrap_or_default())
            .unwrap_or_else(|e| panic!("undecodable event on {topic}: {e}"));
        assert_eq!(msg.key(), Some(SERVICE.as_bytes()), "keyed by service");
        out.push(Ok(event));
        if ends
            .get(&msg.partition())
            .is_some_and(|end| msg.offset() + 1 >= *end)
        {
            ends.remove(&msg.partition());
        }
    }
    of(&out, pick)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `selfheal console` on both scenarios' topics, in headless Chromium: the
/// fleet, service and incident pages of the bad deploy show the cited line,
/// the verdict and the rollback with its status history; the docs-only
/// deploy shows `not_caused`. Screenshots go to `browser::screenshot_dir()`.
fn check_console_in_a_browser(bootstrap: &str, bad: &Demo, docs: &Demo) {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let console = |demo: &Demo| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(["console", "--kafka", bootstrap, "--listen", "127.0.0.1:0"])
            .args(["--topic-suffix", &demo.suffix])
            .env_remove("SELFHEAL_CONFIG")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn selfheal console");
        let addr = browser::address_from(child.stderr.take().unwrap(), "console: ");
        (KillOnDrop(child), addr)
    };
    let (_bad_console, addr) = console(bad);
    let b = deploys_of(bootstrap, bad)
        .into_iter()
        .find(|d| d.previous_revision.is_some())
        .expect("the deploy of B")
        .revision;
    let incident_url = format!("http://{addr}/incident/{SERVICE}/{b}");
    // The console reads the topics from their beginning: wait until it has
    // the whole story (the recovery check is the last action status).
    let deadline = Instant::now() + Duration::from_secs(60);
    let incident = loop {
        let dom = browser::dump_dom(&chromium, &incident_url);
        if dom.contains("recovery_verified") {
            break dom;
        }
        assert!(
            Instant::now() < deadline,
            "the console never showed the recovery:\n{dom}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let cited = incident
        .split("class=\"cited\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no cited line:\n{incident}"));
    assert!(
        cited
            .starts_with("   23 +    total = convert(subtotal, params.get(\"currency\", \"usd\"))"),
        "{cited}"
    );
    assert!(
        incident.contains("<span class=\"caused\">caused</span>"),
        "{incident}"
    );
    assert!(
        incident.contains("cites src/shop/pricing.py:23"),
        "{incident}"
    );
    let rollback = incident
        .split("<td>rollback</td>")
        .nth(1)
        .unwrap_or_else(|| panic!("no rollback:\n{incident}"));
    let a = &rollback[..rollback.find("</tr>").unwrap()];
    for status in ["in_progress", "succeeded", "recovery_verified", "recovered"] {
        assert!(
            a.contains(status),
            "`{status}` missing from the rollback: {a}"
        );
    }
    let fleet = browser::dump_dom(&chromium, &format!("http://{addr}/"));
    assert!(fleet.contains("Open incidents (0)"), "healed: {fleet}");
    assert!(
        fleet.contains(&format!("href=\"/incident/{SERVICE}/{b}\"")),
        "{fleet}"
    );
    let service = browser::dump_dom(&chromium, &format!("http://{addr}/service/{SERVICE}"));
    let revisions: std::collections::BTreeSet<&str> = service
        .split("<polyline class=\"rate\" data-revision=\"")
        .skip(1)
        .filter_map(|p| p.split('"').next())
        .collect();
    assert_eq!(revisions.len(), 2, "a line for A and one for B: {service}");
    assert!(
        service.contains("verdict caused") && service.contains(">rollback<"),
        "{service}"
    );

    let shots = browser::screenshot_dir();
    browser::screenshot(
        &chromium,
        &format!("http://{addr}/"),
        &shots.join("fleet.png"),
        1200,
        520,
    );
    browser::screenshot(
        &chromium,
        &format!("http://{addr}/service/{SERVICE}"),
        &shots.join("service.png"),
        1200,
        720,
    );
    browser::screenshot(
        &chromium,
        &incident_url,
        &shots.join("incident.png"),
        1200,
        1100,
    );

    let (_docs_console, addr) = console(docs);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fleet = browser::dump_dom(&chromium, &format!("http://{addr}/"));
        if fleet.contains("not_caused") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the docs-only verdict never showed:\n{fleet}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn deploys_of(bootstrap: &str, demo: &Demo) -> Vec<Deploy> {
    events(bootstrap, &topics(demo).deploys, |e| match e {
        AnyEvent::Deploy(d) => Some(d),
        _ => None,
    })
}

fn deployed_revision(demo: &Demo) -> String {
    std::fs::read_to_string(demo.workdir.join("run/ready"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Runs the Python subscriber; `None` when no Python with its packages is
/// available locally (CI always has it: deploy/test.sh installs it).
fn subscriber(bootstrap: &str, demo: &Demo) -> Option<serde_json::Value> {
    let python = match std::env::var("SELFHEAL_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("SELFHEAL_TEST_PYTHON is not set: run the suite with ./deploy/test.sh")
        }
        _ => {
            eprintln!("SKIPPED the Python subscriber: SELFHEAL_TEST_PYTHON unset (deploy/python-deps.sh prints one)");
            return None;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/subscriber/subscribe.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--bootstrap", bootstrap, "--topic-suffix", &demo.suffix])
        .args(["--service", SERVICE, "--expect", demo.scenario])
        .output()
        .expect("run the Python subscriber");
    assert!(
        out.status.success(),
        "the Python subscriber failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("one JSON line"))
}

#[test]
fn demo_closes_the_loop_and_other_teams_can_subscribe() {
    let Some(bootstrap) = bootstrap() else { return };
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut bad = start(&bootstrap, "bad-deploy", root.path());
    let mut docs = start(&bootstrap, "docs-only", root.path());
    wait(&mut bad, Duration::from_secs(240));
    wait(&mut docs, Duration::from_secs(120));
    eprintln!("both scenarios ran in {:?}", started.elapsed());

    check_bad_deploy(&bootstrap, &bad);
    check_docs_only(&bootstrap, &docs);
    check_console_in_a_browser(&bootstrap, &bad, &docs);

    if let Some(summary) = subscriber(&bootstrap, &bad) {
        assert_eq!(summary["verdict"], "caused", "{summary}");
        assert_eq!(summary["cited"], "src/shop/pricing.py:23", "{summary}");
    }
    if let Some(summary) = subscriber(&bootstrap, &docs) {
        assert_eq!(summary["verdict"], "not_caused", "{summary}");
        assert_eq!(summary["actions"], serde_json::json!(["none"]), "{summary}");
    }

    // After the other two (two cores): a change that only makes /quote slow.
    let mut slow = start(&bootstrap, "slow-query", root.path());
    wait(&mut slow, Duration::from_secs(240));
    check_slow_query(&bootstrap, &slow);
}

/// The slow-query scenario: no error line at all, a latency regression on
/// /quote from the histograms the shipper built, attributed to the deploy,
/// rolled back, and recovery verified on the latency.
fn check_slow_query(bootstrap: &str, demo: &Demo) {
    let t = topics(demo);
    // B: the deploy over A (A is back after the rollback).
    let b = deploys_of(bootstrap, demo)
        .into_iter()
        .find(|d| d.previous_revision.is_some())
        .expect("the deploy of B")
        .revision;
    assert_ne!(deployed_revision(demo), b, "rolled back");
    let regressions: Vec<Regression> = events(bootstrap, &t.regressions, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    let latency: Vec<&Regression> = regressions
        .iter()
        .filter(|r| r.revision == b && r.kind == RegressionKind::Latency)
        .collect();
    assert_eq!(latency.len(), 1, "{regressions:#?}");
    let r = latency[0];
    assert!(!r.externally_correlated, "{r:#?}");
    let m = r
        .metric
        .as_ref()
        .expect("a latency regression has its metric");
    assert_eq!(m.route.as_deref(), Some("/quote"));
    assert!(
        m.observed_value > 2.0 * m.expected_value,
        "80 ms per quote is far slower than before: {m:?}"
    );
    let deployed = r.deployed_at_ms.expect("deployed_at_ms");
    assert!(
        r.detected_at_ms - deployed <= 5 * 60_000,
        "detected {} event-time min after the deploy",
        (r.detected_at_ms - deployed) / 60_000
    );
    let verdicts: Vec<Verdict> = events(bootstrap, &t.verdicts, |e| match e {
        AnyEvent::Verdict(v) => Some(v),
        _ => None,
    });
    assert!(
        verdicts
            .iter()
            .any(|v| v.revision == b && v.decision == Decision::Caused),
        "{verdicts:#?}"
    );
    let actions: Vec<Action> = events(bootstrap, &t.actions, |e| match e {
        AnyEvent::Action(a) => Some(a),
        _ => None,
    });
    let verified = actions.iter().find(|a| {
        a.revision == b
            && a.action == ActionKind::Rollback
            && a.status == ActionStatus::RecoveryVerified
    });
    let verified = verified.unwrap_or_else(|| panic!("no verified rollback: {actions:#?}"));
    assert_eq!(verified.recovery_verified, Some(true));
    assert!(verified.signatures.contains(&r.signature), "{verified:?}");
}

fn check_bad_deploy(bootstrap: &str, demo: &Demo) {
    let t = topics(demo);
    let remote = demo.workdir.join("remote.git");

    // Deploy: B over A, with the real `git diff A..B`.
    let deploys: Vec<Deploy> = events(bootstrap, &t.deploys, |e| match e {
        AnyEvent::Deploy(d) => Some(d),
        _ => None,
    });
    let d = deploys
        .iter()
        .find(|d| d.previous_revision.is_some())
        .expect("the deploy of B");
    let (a, b) = (d.previous_revision.clone().unwrap(), d.revision.clone());
    assert_eq!(d.service, SERVICE);
    assert_eq!(d.repo.as_deref(), Some(&*remote.to_string_lossy()));
    assert_eq!(d.commit_range.as_deref(), Some(&*format!("{a}..{b}")));
    let diff = d.diff.as_deref().unwrap();
    assert_eq!(diff, git(&remote, &["diff", &a, &b]), "the real diff");
    assert!(diff.contains("+    total = convert(subtotal, params.get(\"currency\", \"usd\"))"));
    // The changed line's number in B (the line triage must cite).
    let changed_line = git(&remote, &["show", &format!("{b}:src/shop/pricing.py")])
        .lines()
        .position(|l| l.contains("\"usd\""))
        .unwrap() as i32
        + 1;

    // First error: the new signature's first count at B.
    let counts: Vec<SignatureCount> = events(bootstrap, &t.signatures, |e| match e {
        AnyEvent::SignatureCount(c) => Some(c),
        _ => None,
    });
    let key_errors: Vec<&SignatureCount> = counts
        .iter()
        .filter(|c| c.revision == b && c.template.contains("KeyError"))
        .collect();
    assert!(!key_errors.is_empty(), "KeyErrors at B reached ingest");
    assert!(
        counts
            .iter()
            .all(|c| c.revision == b || !c.template.contains("KeyError")),
        "the KeyError exists only at B"
    );
    let first_error = key_errors.iter().map(|c| c.first_seen_ms).min().unwrap();

    // Regression: a new signature, with its statistics, per request.
    let regressions: Vec<Regression> = events(bootstrap, &t.regressions, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    // The demo's payments-api upstream times out on 2% of calls at random, so a
    // chance spike of those timeouts right after the deploy is sometimes
    // flagged beside the KeyError (seen in 1 run of 3). That one is allowed,
    // and only with its dependency cue; the KeyError must be there exactly once.
    let (key_regressions, others): (Vec<&Regression>, Vec<&Regression>) = regressions
        .iter()
        .partition(|r| r.template.contains("KeyError"));
    assert_eq!(key_regressions.len(), 1, "{regressions:?}");
    assert!(
        others.iter().all(|o| o.template.contains("payments-api")
            && o.external_cues.iter().any(|c| c == "upstream:payments-api")),
        "only the KeyError and a chance upstream spike: {regressions:?}"
    );
    let r = key_regressions[0];
    assert_eq!(
        (r.revision.as_str(), r.kind),
        (b.as_str(), RegressionKind::New)
    );
    assert_eq!(r.signature, key_errors[0].signature);
    assert!(
        r.observed >= 2 && r.p_value < 0.05 && r.q_value.is_some_and(|q| q <= 0.05),
        "{r:?}"
    );
    assert_eq!(r.rate_basis, RateBasis::PerRequest);
    assert!(r.requests.is_some_and(|n| n > 0));
    assert_eq!(r.frames[0].line, Some(16), "innermost frame: convert()");

    // Verdict: caused, citing the changed line.
    let verdicts: Vec<Verdict> = events(bootstrap, &t.verdicts, |e| match e {
        AnyEvent::Verdict(v) => Some(v),
        _ => None,
    });
    // One incident for the deploy; a later regression of it (the chance
    // upstream spike) may update the verdict, and the latest one counts.
    assert!(!verdicts.is_empty());
    assert!(
        verdicts
            .iter()
            .all(|x| x.incident_id.is_some() && x.incident_id == verdicts[0].incident_id),
        "{verdicts:?}"
    );
    let v = verdicts.iter().max_by_key(|x| x.incident_seq).unwrap();
    assert_eq!(v.decision, Decision::Caused);
    assert_eq!(v.evidence[0].file, "src/shop/pricing.py");
    assert_eq!(v.evidence[0].line, Some(changed_line));
    assert!(v.regression_ids.contains(&r.id), "{v:?}");
    assert!(
        v.regression_ids
            .iter()
            .all(|id| regressions.iter().any(|x| &x.id == id)),
        "{v:?}"
    );
    let verdict_ids: Vec<&str> = verdicts.iter().map(|x| x.id.as_str()).collect();

    // Actions: rollback planned → in progress → succeeded → recovery verified,
    // then the fix-forward that pushed the revert branch.
    let actions: Vec<Action> = events(bootstrap, &t.actions, |e| match e {
        AnyEvent::Action(a) => Some(a),
        _ => None,
    });
    let rollback: Vec<&Action> = actions
        .iter()
        .filter(|x| x.action == ActionKind::Rollback)
        .collect();
    let statuses: Vec<ActionStatus> = rollback.iter().map(|x| x.status).collect();
    for s in [
        ActionStatus::Planned,
        ActionStatus::InProgress,
        ActionStatus::Succeeded,
        ActionStatus::RecoveryVerified,
    ] {
        assert!(statuses.contains(&s), "{s:?} in {statuses:?}");
    }
    assert!(rollback.iter().all(|x| x.id == rollback[0].id
        && x.target_revision.as_deref() == Some(a.as_str())
        && x.verdict_id
            .as_deref()
            .is_some_and(|id| verdict_ids.contains(&id))));
    let rolled = rollback
        .iter()
        .find(|x| x.status == ActionStatus::Succeeded)
        .unwrap();
    assert!(
        rolled.reasons.iter().any(|s| s.contains("deploy.sh")),
        "{rolled:?}"
    );
    let verified = rollback
        .iter()
        .find(|x| x.status == ActionStatus::RecoveryVerified)
        .unwrap();
    assert_eq!(verified.recovery_verified, Some(true));
    assert_eq!(deployed_revision(demo), a, "the service runs A again");

    let fixes: Vec<&Action> = actions
        .iter()
        .filter(|x| x.action == ActionKind::FixForward)
        .collect();
    let fix = fixes
        .iter()
        .find(|x| x.status == ActionStatus::Succeeded)
        .unwrap_or_else(|| panic!("a succeeded fix-forward: {fixes:?}"));
    assert_eq!(fix.rule, "fix_after_rollback");
    assert_eq!(fix.executor.as_deref(), Some("revert"));
    let branch = format!("selfheal/fix-{}", fix.id);
    assert!(fix.reasons.iter().any(|s| s.contains(&branch)), "{fix:?}");
    let fixed = git(&remote, &["diff", "main", &branch]);
    assert!(
        fixed.contains("+    total = convert(subtotal, params.get(\"currency\", \"USD\"))"),
        "{fixed}"
    );
    assert_eq!(
        git(&remote, &["diff", "--stat", &a, &branch]).trim(),
        "",
        "the fix branch undoes exactly the blamed change"
    );

    // The timeline, in event time.
    assert!(
        first_error >= d.deployed_at_ms - 60_000,
        "first error after the deploy"
    );
    assert!(first_error <= r.detected_at_ms);
    assert!(
        r.detected_at_ms - d.deployed_at_ms <= 5 * 60_000,
        "detected within 5 min"
    );
    assert!(verdicts.iter().all(|x| x.decided_at_ms >= r.detected_at_ms));
    let first_verdict = verdicts.iter().map(|x| x.decided_at_ms).min().unwrap();
    assert!(rollback[0].decided_at_ms >= first_verdict);
    assert!(verified.decided_at_ms > rollback[0].decided_at_ms);
    assert!(fix.decided_at_ms >= verified.decided_at_ms);
}

fn check_docs_only(bootstrap: &str, demo: &Demo) {
    let t = topics(demo);
    let deploys: Vec<Deploy> = events(bootstrap, &t.deploys, |e| match e {
        AnyEvent::Deploy(d) => Some(d),
        _ => None,
    });
    let d = deploys
        .iter()
        .find(|d| d.previous_revision.is_some())
        .expect("the docs deploy");
    let diff = d.diff.as_deref().unwrap();
    assert!(
        diff.lines()
            .filter(|l| l.starts_with("diff --git"))
            .all(|l| l == "diff --git a/README.md b/README.md"),
        "{diff}"
    );

    let regressions: Vec<Regression> = events(bootstrap, &t.regressions, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    let r = regressions
        .iter()
        .find(|r| r.revision == d.revision)
        .unwrap_or_else(|| panic!("the upstream burst regressed: {regressions:?}"));
    assert_eq!(
        r.kind,
        RegressionKind::Spike,
        "an existing error, more often"
    );
    assert!(r.template.contains("payments-api"), "{}", r.template);

    let verdicts: Vec<Verdict> = events(bootstrap, &t.verdicts, |e| match e {
        AnyEvent::Verdict(v) => Some(v),
        _ => None,
    });
    assert!(!verdicts.is_empty());
    assert!(
        verdicts.iter().all(|v| v.decision == Decision::NotCaused),
        "{verdicts:?}"
    );

    let actions: Vec<Action> = events(bootstrap, &t.actions, |e| match e {
        AnyEvent::Action(a) => Some(a),
        _ => None,
    });
    assert!(!actions.is_empty());
    assert!(
        actions.iter().all(|a| a.action == ActionKind::None),
        "no rollback: {actions:?}"
    );
    assert_eq!(
        deployed_revision(demo),
        d.revision,
        "still at the docs revision"
    );
}
