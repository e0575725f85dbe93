//! `selfheal demo`: the closed loop, end to end, on a real service process.
//!
//! A small Python shop API (`examples/demo-service/`) is put in a fresh git
//! repository with history and a bare "remote", deployed at revision A with a
//! deploy script, and driven by a traffic generator; a log shipper sends its
//! errors and request counts to ingest's HTTP intake. Then a real commit B with
//! a wrong default is deployed. selfheal detects the new error, triage cites the
//! changed line, the fixer runs the configured rollback command (the same deploy
//! script, back to A), verifies recovery, and the built-in revert dispatcher
//! pushes a fix branch to the remote. The timeline is printed from the events
//! on the topics, read back in-process.
//!
//! Time is compressed: event time runs 60× faster than the wall clock (one
//! real second is one event-time minute), so the detector's statistics work
//! unchanged; only the watch window is shortened (20 instead of 60 minutes, so
//! 20 s of history suffice). The whole loop takes well under two minutes.
//!
//! # Layout
//! - this file: the command, configuration and the three scenarios
//!   (`bad-deploy`, `docs-only`, and `slow-query`: a change that only makes
//!   a route slow, caught on the latency histograms the shipper builds from
//!   the access log).
//! - [`repo`]: the service's git repository, remote and deploy script.
//! - [`shipper`]: the compressed clock, log shipper and traffic generator.
//! - [`timeline`]: reads the scenario's events back from the topics.

mod repo;
mod shipper;
mod timeline;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use selfheal_common::config::{DispatcherKind, FixerServiceConfig, RollbackExecutorKind};
use selfheal_common::service::{self, ServiceArgs};
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::{Action, ActionKind, ActionStatus, AnyEvent, Decision, Regression, Verdict};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use self::repo::DemoRepo;
use self::shipper::{hms, wall_ms, Clock, TrafficStats};

/// The demo service's name on every event.
const SERVICE: &str = "shop";
/// Event-time ms per wall-clock ms.
const SPEED: i64 = 60;
/// The detector's watch window in the demo, event-time minutes.
const WINDOW_MINUTES: u32 = 20;

/// Which story the demo tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// A bad deploy: detected, attributed, rolled back, verified, fixed.
    BadDeploy,
    /// A docs-only deploy during an upstream outage: not caused, no rollback.
    DocsOnly,
    /// A deploy that makes `/quote` slow (an 80 ms query per request) and
    /// logs no error: found on the latency histograms, rolled back, recovery
    /// verified on the latency.
    SlowQuery,
}

/// Arguments of `selfheal demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The scenario.
    #[arg(long, value_enum, default_value = "bad-deploy")]
    scenario: Scenario,
    /// Directory for the demo's repository, remote, releases and logs (kept
    /// afterwards). Default: a new directory under the system temp dir.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Appended to every topic name and to the consumer group prefix, to run
    /// isolated on a shared cluster.
    #[arg(long)]
    topic_suffix: Option<String>,
    /// Requests per second the traffic generator sends.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Event-time minutes (= real seconds) the service runs at A before the deploy.
    #[arg(long, default_value_t = 25)]
    warmup_minutes: u32,
    /// Fail if the loop has not closed after this many real seconds.
    #[arg(long, default_value_t = 180)]
    timeout_s: u64,
}

/// Writes one line of the demo's report to stdout.
fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the demo.
pub(crate) async fn command(args: DemoArgs) -> anyhow::Result<()> {
    // The timeline is the output; service logs only when asked for.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rdkafka=off,librdkafka=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let python = find_python()?;
    let mut config = args.service.load_config()?;
    if let Some(suffix) = &args.topic_suffix {
        config.topics = config.topics.with_suffix(suffix);
        config.kafka.group_prefix.push_str(suffix);
    }
    let dir = match &args.workdir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "selfheal-demo-{}-{}",
            std::process::id(),
            wall_ms()
        )),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let dir = {
        std::fs::create_dir_all(&dir)?;
        dir.canonicalize()?
    };
    let repo = DemoRepo::create(&dir).context("creating the demo repository")?;
    let port = free_port()?;
    repo.write_env(port, &python)?;
    configure(&mut config, &repo);
    if args.scenario == Scenario::SlowQuery {
        // Golden signals are opt-in; the demo's traffic (20 requests per
        // event-time minute) and its Python process (warm in a second) are
        // smaller and quicker than a fleet's defaults assume.
        let g = &mut config.detector.golden;
        g.enabled = true;
        g.min_requests = 40;
        g.warmup_s = 60;
    }
    let embedded = crate::embedded_unless_configured(&mut config)?;
    let config = Arc::new(config);
    let shutdown = service::signal_token();
    let handles = crate::start_all(&config, &shutdown).await?;
    let ingest = format!("http://{}", handles[0].http_addr);
    let run = Run {
        args: &args,
        config: &config,
        repo: &repo,
        ingest,
        service_url: format!("http://127.0.0.1:{port}"),
        shutdown: shutdown.clone(),
    };
    say(format!(
        "selfheal demo ({:?}): Kafka {}, workdir {}",
        args.scenario,
        if embedded.is_some() {
            "embedded (librdkafka mock cluster)".to_owned()
        } else {
            config.kafka.bootstrap.clone().unwrap_or_default()
        },
        dir.display()
    ));
    let result = run.scenario().await;
    repo.stop_service();
    shutdown.cancel();
    for h in handles {
        let name = h.name;
        if let Err(e) = h.wait().await {
            tracing::warn!(service = name, error = %e, "stopped with an error");
        }
    }
    drop(embedded);
    match &result {
        Ok(()) => say(format!(
            "\nThe demo's repository, remote and logs are in {}",
            dir.display()
        )),
        Err(e) => say(format!(
            "\nThe demo failed: {e:#}\n(logs: {}/run/, RUST_LOG=info for the services' logs)",
            dir.display()
        )),
    }
    result
}

fn find_python() -> anyhow::Result<String> {
    let python = std::env::var("SELFHEAL_DEMO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = std::process::Command::new(&python)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!("the demo service needs Python 3 (`{python}` not found; set SELFHEAL_DEMO_PYTHON)");
    }
    Ok(python)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The demo's settings on top of the user's: compressed window, live fixer
/// with the deploy script as rollback command and the revert dispatcher, HTTP
/// on free ports.
fn configure(config: &mut Config, repo: &DemoRepo) {
    config.detector.window_minutes = WINDOW_MINUTES;
    // The detector's wall-clock wait for an empty input partition, scaled
    // like the clock (500 ms would be 30 s of the demo's event time).
    config.detector.input_wait_ms = 20;
    // Compressed time runs event time 60x ahead of the wall clock.
    config.ingest.max_future_skew_s = 86_400;
    let f = &mut config.fixer;
    f.dry_run = false;
    f.rollback.executor = RollbackExecutorKind::Command;
    f.rollback.command = repo.deploy_argv("{target_revision}");
    f.rollback.timeout_ms = 60_000;
    f.dispatch.dispatcher = DispatcherKind::Revert;
    f.dispatch.after_rollback = true;
    f.dispatch.workdir = repo.dir.join("fixer").to_string_lossy().into_owned();
    // Compressed time: the 300-s verification window is ~5 s of wall clock,
    // about 100 requests, whose baseline predicts ~0.1 slow ones. A request
    // or two slowed by a loaded machine (the restarted process's first ones)
    // then failed the check though the rollback plainly worked (100% slow
    // before); a real window holds 60x the requests. A rollback that did
    // not take still fails: the bad revision keeps every request slow.
    f.recovery.allowance = f.recovery.allowance.max(2);
    f.services.insert(
        SERVICE.to_owned(),
        FixerServiceConfig {
            repo: Some(repo.remote.to_string_lossy().into_owned()),
            ..FixerServiceConfig::default()
        },
    );
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.ingest = any;
    config.http.detector = any;
    config.http.triage = any;
    config.http.fixer = any;
}

/// One run of a scenario.
struct Run<'a> {
    args: &'a DemoArgs,
    config: &'a Config,
    repo: &'a DemoRepo,
    ingest: String,
    service_url: String,
    shutdown: CancellationToken,
}

/// A deploy in progress: what the timeline is measured from.
struct Deployed {
    revision: String,
    previous: String,
    /// Event time of the deploy.
    at_ms: i64,
    /// Wall clock of the deploy.
    wall_ms: i64,
}

impl Run<'_> {
    async fn scenario(&self) -> anyhow::Result<()> {
        let clock = Clock::start(SPEED);
        let (_reader, mut events) = timeline::read(self.config, SERVICE)?;
        let a = self.repo.head()?;
        self.repo.set_upstream_failure_rate(0.02)?;
        say(format!(
            "clock: 1 s = 1 min of event time (60x); detector window {WINDOW_MINUTES} min, \
             other statistics at their defaults\n\
             service `{SERVICE}` (Python, {}) at revision A = {a}; remote {}",
            self.service_url,
            self.repo.remote.display()
        ));
        let repo = self.repo.clone();
        let rev = a.clone();
        tokio::task::spawn_blocking(move || repo.deploy(&rev)).await??;
        shipper::post_deploy(
            &self.ingest,
            json!({
                "ts": clock.now(), "service": SERVICE, "revision": a,
                "repo": self.repo.remote.to_string_lossy(),
            }),
        )
        .await?;

        let stop = self.shutdown.child_token();
        let stats = Arc::new(TrafficStats::default());
        let generator = tokio::spawn(shipper::generate(
            self.service_url.clone(),
            self.args.rate,
            stats.clone(),
            stop.clone(),
        ));
        let shipper = tokio::spawn(shipper::ship(
            self.repo.service_log(),
            self.ingest.clone(),
            SERVICE.to_owned(),
            clock,
            stop.clone(),
        ));
        let result = async {
            self.warm_up(&clock, &stats).await?;
            match self.args.scenario {
                Scenario::BadDeploy => {
                    self.bad_deploy(&clock, &a, &mut events, &repo::WRONG_DEFAULT)
                        .await
                }
                Scenario::SlowQuery => {
                    self.bad_deploy(&clock, &a, &mut events, &repo::SLOW_QUERY)
                        .await
                }
                Scenario::DocsOnly => self.docs_only(&clock, &a, &mut events).await,
            }
        }
        .await;
        stop.cancel();
        let _ = generator.await;
        let shipped = shipper.await;
        result?;
        shipped??;
        Ok(())
    }

    async fn warm_up(&self, clock: &Clock, stats: &TrafficStats) -> anyhow::Result<()> {
        let until = clock.t0_ms + i64::from(self.args.warmup_minutes) * 60_000;
        say(format!(
            "building {} min of history at A ({} requests/min, payments-api times out on 2% of calls)…",
            self.args.warmup_minutes, self.args.rate
        ));
        while clock.now() < until {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = self.shutdown.cancelled() => bail!("interrupted"),
            }
        }
        say(format!(
            "history: {} requests answered, {} errors (upstream timeouts)",
            stats.ok.load(Ordering::Relaxed),
            stats.errors.load(Ordering::Relaxed)
        ));
        Ok(())
    }

    /// Commits `change`, deploys it with the deploy script and sends the Deploy
    /// event with the real diff.
    async fn deploy(
        &self,
        clock: &Clock,
        previous: &str,
        change: &repo::Change,
    ) -> anyhow::Result<Deployed> {
        let revision = self.repo.commit_change(change)?;
        let diff = self.repo.diff(previous, &revision)?;
        let repo = self.repo.clone();
        let rev = revision.clone();
        let out = tokio::task::spawn_blocking(move || repo.deploy(&rev)).await??;
        // The deploy's time is when the new revision serves (the script waits
        // for it): its window then starts with its first requests.
        let (at_ms, wall) = (clock.now(), wall_ms());
        shipper::post_deploy(
            &self.ingest,
            json!({
                "ts": at_ms, "service": SERVICE, "revision": revision,
                "previous_revision": previous,
                "repo": self.repo.remote.to_string_lossy(),
                "commit_range": format!("{previous}..{revision}"),
                "diff": diff,
            }),
        )
        .await?;
        say(format!(
            "\n{}  deploy       {revision} \"{}\" ({out})",
            stamp(wall, wall, at_ms),
            change.message,
        ));
        for line in diff
            .lines()
            .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---"))
        {
            say(format!("{:27}{line}", ""));
        }
        Ok(Deployed {
            revision,
            previous: previous.to_owned(),
            at_ms,
            wall_ms: wall,
        })
    }

    /// The next event, or an error at the deadline or on Ctrl-C.
    async fn next(
        &self,
        events: &mut UnboundedReceiver<AnyEvent>,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<AnyEvent> {
        tokio::select! {
            e = events.recv() => e.context("the topic reader stopped"),
            _ = tokio::time::sleep_until(deadline) => bail!(
                "the loop did not close within {} s", self.args.timeout_s
            ),
            _ = self.shutdown.cancelled() => bail!("interrupted"),
        }
    }

    /// A deploy of `change` that breaks something: detected, attributed,
    /// rolled back, recovery verified, fixed forward.
    async fn bad_deploy(
        &self,
        clock: &Clock,
        a: &str,
        events: &mut UnboundedReceiver<AnyEvent>,
        change: &repo::Change,
    ) -> anyhow::Result<()> {
        let d = self.deploy(clock, a, change).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.args.timeout_s);
        let mut first_seen: BTreeMap<String, i64> = BTreeMap::new();
        let mut regression: Option<Regression> = None;
        let mut healing = Healing::default();
        // The topics are read in no particular relative order: a verdict read
        // before its regression is printed right after it.
        let mut held: Option<AnyEvent> = None;
        loop {
            let event = match held.take_if(|_| regression.is_some()) {
                Some(e) => e,
                None => self.next(events, deadline).await?,
            };
            let now = wall_ms();
            match event {
                AnyEvent::Verdict(v) if v.revision == d.revision && regression.is_none() => {
                    held = Some(AnyEvent::Verdict(v));
                }
                AnyEvent::SignatureCount(c) if c.revision == d.revision => {
                    let first = first_seen
                        .entry(c.signature.clone())
                        .or_insert(c.first_seen_ms);
                    *first = (*first).min(c.first_seen_ms);
                }
                AnyEvent::Regression(r) if r.revision == d.revision && regression.is_none() => {
                    say_regression(&d, now, &r, first_seen.get(&r.signature).copied());
                    regression = Some(r);
                }
                AnyEvent::Verdict(v) if v.revision == d.revision => {
                    self.say_verdict(&d, now, &v)?
                }
                AnyEvent::Action(act) if act.revision == d.revision => {
                    let healed = self.on_action(clock, &d, now, &act, &mut healing)?;
                    if healed {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }

    /// Prints the verdict on the bad deploy, with the line it cites; an
    /// error unless it is `caused`.
    fn say_verdict(&self, d: &Deployed, now: i64, v: &Verdict) -> anyhow::Result<()> {
        let cited = v
            .evidence
            .iter()
            .filter_map(|e| e.line.map(|l| (e.file.clone(), l)))
            .next();
        let mut line = format!(
            "{}  verdict      {} (confidence {:.2})",
            stamp(d.wall_ms, now, v.decided_at_ms),
            decision(v.decision),
            v.confidence
        );
        if let Some((file, l)) = &cited {
            let text = self
                .repo
                .git(&["show", &format!("{}:{file}", d.revision)])
                .ok()
                .and_then(|s| s.lines().nth(*l as usize - 1).map(str::to_owned))
                .unwrap_or_default();
            let _ = write!(line, ": cites {file}:{l}  `{}`", text.trim());
        }
        say(line);
        if v.decision != Decision::Caused {
            bail!("triage did not attribute the regression: {v:?}");
        }
        Ok(())
    }

    /// Follows the fixer's actions on the bad deploy; `Ok(true)` once the
    /// fix branch is out after a verified rollback.
    fn on_action(
        &self,
        clock: &Clock,
        d: &Deployed,
        now: i64,
        act: &Action,
        healing: &mut Healing,
    ) -> anyhow::Result<bool> {
        let last_reason = || act.reasons.last().map(String::as_str).unwrap_or_default();
        match (act.action, act.status) {
            (ActionKind::Rollback, ActionStatus::Succeeded) => {
                healing.rolled_back = Some((now, clock.event_ms(now)));
                say(format!(
                    "{}  rollback     to {} by rule {}: {}",
                    stamp(d.wall_ms, now, clock.event_ms(now)),
                    act.target_revision.as_deref().unwrap_or("?"),
                    act.rule,
                    last_reason().replace(&*self.repo.dir.to_string_lossy(), "$WORKDIR")
                ));
            }
            (ActionKind::Rollback, ActionStatus::RecoveryVerified) => {
                healing.verified = Some(now);
                say(format!(
                    "{}  recovered    {}",
                    stamp(d.wall_ms, now, act.decided_at_ms),
                    last_reason()
                ));
            }
            (ActionKind::FixForward, ActionStatus::Succeeded) => {
                say(format!(
                    "{}  fix branch   {}",
                    stamp(d.wall_ms, now, clock.event_ms(now)),
                    last_reason()
                ));
                self.show_fix_branch(act)?;
                let (Some((rb_wall, rb_event)), Some(verified)) =
                    (healing.rolled_back, healing.verified)
                else {
                    bail!("fix branch before rollback and recovery: {act:?}");
                };
                say(format!(
                    "\ntime to recovery: {:.1} s from the deploy to the rollback completed \
                     (service back at {}); recovery verified after {:.1} s. \
                     In event time (what a real service would see): {} min to recovery.",
                    (rb_wall - d.wall_ms) as f64 / 1000.0,
                    d.previous,
                    (verified - d.wall_ms) as f64 / 1000.0,
                    (rb_event - d.at_ms) / 60_000,
                ));
                return Ok(true);
            }
            (_, ActionStatus::Planned | ActionStatus::InProgress) => {}
            (_, ActionStatus::Failed | ActionStatus::RecoveryFailed) => {
                bail!(
                    "{:?} {:?}: {}",
                    act.action,
                    act.status,
                    act.reasons.join("; ")
                )
            }
            _ if act.action != ActionKind::Rollback && act.action != ActionKind::FixForward => {
                bail!(
                    "the fixer chose {:?}: {}",
                    act.action,
                    act.reasons.join("; ")
                )
            }
            _ => {}
        }
        Ok(false)
    }

    /// Prints the fix branch as it is in the remote.
    fn show_fix_branch(&self, act: &Action) -> anyhow::Result<()> {
        let branch = format!("selfheal/fix-{}", act.id);
        let remote = self.repo.remote.to_string_lossy().into_owned();
        let git = |args: &[&str]| {
            let mut full = vec!["--git-dir", remote.as_str()];
            full.extend_from_slice(args);
            std::process::Command::new("git")
                .args(&full)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
        };
        let subject = git(&["log", "-1", "--format=%s", &branch])?;
        if subject.is_empty() {
            bail!("branch {branch} is not in the remote");
        }
        say(format!("{:27}{remote} {branch}: \"{subject}\"", ""));
        for line in git(&["diff", "main", &branch])?
            .lines()
            .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---"))
        {
            say(format!("{:27}{line}", ""));
        }
        Ok(())
    }

    async fn docs_only(
        &self,
        clock: &Clock,
        a: &str,
        events: &mut UnboundedReceiver<AnyEvent>,
    ) -> anyhow::Result<()> {
        self.repo.set_upstream_failure_rate(0.35)?;
        say("payments-api starts timing out on 35% of calls (an upstream outage)");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let d = self.deploy(clock, a, &repo::DOCS_ONLY).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.args.timeout_s);
        let mut decided: Option<tokio::time::Instant> = None;
        loop {
            let wait_until = decided.map_or(deadline, |t| t + Duration::from_secs(5));
            let event = match self.next(events, wait_until).await {
                Ok(e) => e,
                Err(_) if decided.is_some() && !self.shutdown.is_cancelled() => {
                    say(format!(
                        "{:27}no rollback, the service stays at {}",
                        "", d.revision
                    ));
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let now = wall_ms();
            match event {
                AnyEvent::Regression(r) if r.revision == d.revision => say(format!(
                    "{}  regression   {} `{}`: {} events vs {:.2} expected (rate x{}), p = {:.1e}{}",
                    stamp(d.wall_ms, now, r.detected_at_ms),
                    format!("{:?}", r.kind).to_lowercase(),
                    r.template,
                    r.observed,
                    r.expected,
                    ratio(r.rate_ratio),
                    r.p_value,
                    if r.externally_correlated {
                        ", externally correlated"
                    } else {
                        ""
                    }
                )),
                AnyEvent::Verdict(v) if v.revision == d.revision => {
                    say(format!(
                        "{}  verdict      {} (confidence {:.2}): {}",
                        stamp(d.wall_ms, now, v.decided_at_ms),
                        decision(v.decision),
                        v.confidence,
                        v.reasoning.lines().next().unwrap_or_default()
                    ));
                    if v.decision != Decision::NotCaused {
                        bail!("a docs-only deploy was judged {}", decision(v.decision));
                    }
                }
                AnyEvent::Action(act) if act.revision == d.revision => {
                    say(format!(
                        "{}  action       {:?} by rule {}",
                        stamp(d.wall_ms, now, act.decided_at_ms),
                        act.action,
                        act.rule
                    ));
                    if act.action != ActionKind::None {
                        bail!("a docs-only deploy got {:?}: {}", act.action, act.reasons.join("; "));
                    }
                    decided.get_or_insert_with(tokio::time::Instant::now);
                }
                _ => {}
            }
        }
    }
}

/// `[+ 12.3 s | 10:42:00]`: real seconds since the deploy, and event time.
fn stamp(deploy_wall: i64, wall: i64, event_ms: i64) -> String {
    format!(
        "[+{:5.1} s | {}]",
        (wall - deploy_wall) as f64 / 1000.0,
        hms(event_ms)
    )
}

fn ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.1}")
    } else {
        "inf".to_owned()
    }
}

fn decision(d: Decision) -> &'static str {
    match d {
        Decision::Caused => "caused",
        Decision::NotCaused => "not_caused",
        Decision::Inconclusive => "inconclusive",
    }
}

/// How far the healing of a bad deploy has got: the rollback completed
/// (wall and event ms) and the recovery verified (wall ms).
#[derive(Debug, Default)]
struct Healing {
    rolled_back: Option<(i64, i64)>,
    verified: Option<i64>,
}

/// Prints the bad deploy's regression, after its first error (event time
/// `first`) when that is known.
fn say_regression(d: &Deployed, now: i64, r: &Regression, first: Option<i64>) {
    if let Some(first) = first {
        let wall = d.wall_ms + (first - d.at_ms).max(0) / SPEED;
        say(format!(
            "{}  first error  {}",
            stamp(d.wall_ms, wall, first),
            r.sample_message
        ));
    }
    say(format!(
        "{}  regression   {} signature `{}` ({}): {} events vs {:.2} expected \
         (rate x{}), p = {:.1e}, q = {}, {} requests, basis {:?}",
        stamp(d.wall_ms, now, r.detected_at_ms),
        format!("{:?}", r.kind).to_lowercase(),
        r.template,
        r.signature,
        r.observed,
        r.expected,
        ratio(r.rate_ratio),
        r.p_value,
        r.q_value.map_or("-".to_owned(), |q| format!("{q:.1e}")),
        r.requests.map_or("?".to_owned(), |n| n.to_string()),
        r.rate_basis
    ));
}
