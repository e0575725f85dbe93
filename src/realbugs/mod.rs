//! `selfheal realbugs`: real Java bugs (Defects4J) replayed as deploys, to
//! measure attribution on code this project never wrote.
//!
//! Each bug becomes one service's history ([`history`]): steady traffic at the
//! fixed revision, a deploy whose diff is the bug's `src.patch` (fixed →
//! buggy), then the buggy revision raising the bug's real exception and stack
//! (`trigger_tests`) on 2% of requests. A **negative control** replays the same
//! trace after a deploy of *another* bug's patch (the next bug of the same
//! project): there, any `line`/`function` localization is a false claim.
//!
//! Every case runs through the same cores as `selfheal backtest` (ingest
//! normalization, detector, triage, fixer in dry-run), all cases of a run in
//! one history, each service active in its own 4-hour slot so that no two
//! cases overlap in event time.
//!
//! The linkability class of a case (a frame within ±3 lines of a changed line /
//! inside a changed method / in a changed file / none) is computed here from
//! the raw patch and trace, independently of triage ([`truth`]).
//!
//! # Layout
//! - [`cases`]: reading the Defects4J folders.
//! - [`truth`]: the linkability class of a trace against a patch.
//! - [`history`]: a case as NDJSON records.
//! - this file: the command, scoring and the printed tables.

pub(crate) mod cases;
pub(crate) mod history;
pub(crate) mod truth;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use selfheal_common::Config;
use selfheal_schemas::{Action, ActionKind, Decision, Localization, Verdict};

use self::cases::Case;
use self::truth::Linkability;

/// Arguments of `selfheal realbugs`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RealBugsArgs {
    /// The Defects4J folder (one sub-folder per project).
    #[arg(long, default_value = "../shared/data/defects4j")]
    pub(crate) data: PathBuf,
    /// Where to write the histories, the backtest outputs and `summary.json`.
    #[arg(long, default_value = "realbugs-out")]
    pub(crate) out: PathBuf,
    /// Only these projects (comma-separated), e.g. `Lang,Chart`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) projects: Vec<String>,
    /// Configuration to try; defaults otherwise.
    #[arg(long, short = 'c')]
    pub(crate) config: Option<PathBuf>,
}

/// What triage and the fixer made of one case.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CaseResult {
    /// `Project-id`.
    pub(crate) case: String,
    /// The trace's linkability class against the deployed patch.
    pub(crate) linkability: Linkability,
    /// Whether a regression was detected.
    pub(crate) detected: bool,
    /// The latest verdict's decision (`None`: no verdict).
    pub(crate) decision: Option<Decision>,
    /// Its confidence.
    pub(crate) confidence: Option<f64>,
    /// Its localization.
    pub(crate) localization: Option<Localization>,
    /// First cited line, `file:line`.
    pub(crate) cited: Option<String>,
    /// Whether the cited line is within ±3 of a changed line that a frame of
    /// the trace is within ±3 of (line class), or of any changed line.
    pub(crate) cited_right: bool,
    /// The fixer's strongest action.
    pub(crate) action: Option<ActionKind>,
}

/// Runs the benchmark: positives, then negative controls.
#[allow(clippy::print_stdout)]
pub(crate) fn command(args: &RealBugsArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let all = cases::load(&args.data, &args.projects)?;
    anyhow::ensure!(
        !all.is_empty(),
        "no Defects4J cases under {} (expected <project>/active-bugs.csv, patches/, trigger_tests/)",
        args.data.display()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let controls = cases::negative_controls(&all);
    let mut report = String::new();
    let mut summary = serde_json::Map::new();
    for (name, list) in [("positive", &all), ("negative_control", &controls)] {
        let results = run_cases(&config, list, &args.out.join(name))?;
        let table = if name == "positive" {
            positive_table(&results)
        } else {
            control_table(&results)
        };
        report.push_str(&table);
        summary.insert(name.to_owned(), serde_json::to_value(&results)?);
    }
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", path.display()))?;
    print!("{report}");
    println!("details: {}", path.display());
    Ok(())
}

/// Writes the cases' history, runs the backtest cores over it and scores each case.
fn run_cases(
    config: &Config,
    list: &[Case],
    dir: &std::path::Path,
) -> anyhow::Result<Vec<CaseResult>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let input = dir.join("history.ndjson");
    let mut text = String::new();
    for (slot, case) in list.iter().enumerate() {
        history::write_case(&mut text, case, slot);
    }
    std::fs::write(&input, &text).with_context(|| format!("writing {}", input.display()))?;
    let (outcomes, rejected) = crate::backtest::run(&[config], 1, &input)?;
    let outcome = outcomes.into_iter().next().context("no outcome")?;
    crate::backtest::write_outputs(dir, &outcome, &rejected)?;
    anyhow::ensure!(
        rejected.is_empty(),
        "{} generated lines were rejected (see {})",
        rejected.len(),
        dir.join("rejected.ndjson").display()
    );
    let mut latest: BTreeMap<&str, &Verdict> = BTreeMap::new();
    for v in &outcome.verdicts {
        latest.insert(v.service.as_str(), v);
    }
    let mut actions: BTreeMap<&str, Vec<&Action>> = BTreeMap::new();
    for a in &outcome.actions {
        actions.entry(a.service.as_str()).or_default().push(a);
    }
    Ok(list
        .iter()
        .map(|case| {
            let service = case.service();
            let detected = outcome.regressions.iter().any(|r| r.service == service);
            let verdict = latest.get(service.as_str()).copied();
            let action = actions.get(service.as_str()).and_then(|list| {
                list.iter()
                    .map(|a| a.action)
                    .max_by_key(|k| action_rank(*k))
            });
            score_case(case, detected, verdict, action)
        })
        .collect())
}

fn action_rank(k: ActionKind) -> u8 {
    match k {
        ActionKind::None => 0,
        ActionKind::Notify => 1,
        ActionKind::FixForward => 2,
        ActionKind::Rollback => 3,
    }
}

fn score_case(
    case: &Case,
    detected: bool,
    verdict: Option<&Verdict>,
    action: Option<ActionKind>,
) -> CaseResult {
    let link = truth::linkability(&case.trace_frames(), &case.deployed_patch);
    let cited = verdict.and_then(|v| v.evidence.iter().find(|e| e.line.is_some()));
    let cited_right = cited.is_some_and(|e| {
        let line = e.line.unwrap_or_default() as u32;
        truth::cites_right(&case.deployed_patch, &e.file, line, &link)
    });
    CaseResult {
        case: case.id(),
        linkability: link.class,
        detected,
        decision: verdict.map(|v| v.decision),
        confidence: verdict.map(|v| v.confidence),
        localization: verdict.and_then(|v| v.localization),
        cited: cited.map(|e| format!("{}:{}", e.file, e.line.unwrap_or_default())),
        cited_right,
        action,
    }
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}% ({n}/{d})", 100.0 * n as f64 / d as f64)
    }
}

/// The table of the true culprits, by linkability class.
fn positive_table(results: &[CaseResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "real bugs, deployed with their own patch ({} cases)",
        results.len()
    );
    let _ = writeln!(
        out,
        "{:<9} {:>5} {:>9} {:>16} {:>16} {:>16} {:>16} {:>16}",
        "class",
        "cases",
        "detected",
        "caused",
        "loc=line",
        "loc≥function",
        "cited ±3",
        "remediated"
    );
    let classes = [
        Linkability::Line,
        Linkability::Function,
        Linkability::File,
        Linkability::None,
    ];
    for class in classes.iter().map(Some).chain([None]) {
        let rows: Vec<&CaseResult> = results
            .iter()
            .filter(|r| class.is_none_or(|c| r.linkability == *c))
            .collect();
        let n = rows.len();
        let count = |f: &dyn Fn(&CaseResult) -> bool| rows.iter().filter(|r| f(r)).count();
        let _ = writeln!(
            out,
            "{:<9} {:>5} {:>9} {:>16} {:>16} {:>16} {:>16} {:>16}",
            class.map_or("all", |c| c.as_str()),
            n,
            count(&|r| r.detected),
            pct(count(&|r| r.decision == Some(Decision::Caused)), n),
            pct(count(&|r| r.localization == Some(Localization::Line)), n),
            pct(
                count(&|r| matches!(
                    r.localization,
                    Some(Localization::Line | Localization::Function)
                )),
                n
            ),
            pct(count(&|r| r.cited_right), n),
            pct(
                count(&|r| r.decision == Some(Decision::Caused)
                    && matches!(
                        r.action,
                        Some(ActionKind::Rollback | ActionKind::FixForward)
                    )),
                n
            ),
        );
    }
    out.push_str(&reliability_table(results));
    out
}

/// The negative controls: a localization at line or function level is false.
fn control_table(results: &[CaseResult]) -> String {
    let n = results.len();
    let claims = |l: Localization| results.iter().filter(|r| r.localization == Some(l)).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "negative control: the same traces after another bug's patch ({n} cases)"
    );
    let _ = writeln!(
        out,
        "  claims localization line {}, function {}, file {}; line or function (target ≤ 1%): {}",
        claims(Localization::Line),
        claims(Localization::Function),
        claims(Localization::File),
        pct(
            claims(Localization::Line) + claims(Localization::Function),
            n
        )
    );
    out
}

/// Predicted confidence of `caused` vs how often the deploy was the cause, in
/// buckets (here every case is a culprit, so observed is the share `caused`).
fn reliability_table(results: &[CaseResult]) -> String {
    let mut out = String::from("reliability of `caused` confidence (all cases are culprits)\n");
    let buckets = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)];
    for (lo, hi) in buckets {
        let rows: Vec<&CaseResult> = results
            .iter()
            .filter(|r| r.decision == Some(Decision::Caused))
            .filter(|r| r.confidence.is_some_and(|c| c >= lo && c < hi))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let mean = rows.iter().filter_map(|r| r.confidence).sum::<f64>() / rows.len() as f64;
        let _ = writeln!(
            out,
            "  [{lo:.1}, {:.1}): {} verdicts, mean predicted {mean:.3}, observed 1.000",
            hi.min(1.0),
            rows.len()
        );
    }
    out
}
