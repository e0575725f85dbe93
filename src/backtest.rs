//! `selfheal backtest`: the same ingest normalization, detector, triage and
//! fixer (dry-run) over an NDJSON history, deterministically in event time.
//!
//! Records are stably sorted by `ts`, grouped into minute batches aligned
//! to the minute (the detector counts in minute buckets, so counting a
//! minute's identical errors once gives the same buckets as the intake's
//! shorter flushes, with far fewer events), turned into events, and fed through the cores in
//! the order the live topics would deliver them. Output files are described in
//! ARCHITECTURE.md; the same input and configuration give byte-identical files.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use selfheal_common::config::DetectorConfig;
use selfheal_common::Config;
use selfheal_detector::core::Detector;
use selfheal_ingest::record::{parse_line, DefaultType, Record};
use selfheal_schemas::{Action, AnyEvent, Regression, RegressionKind, Verdict};
use serde_json::json;

use crate::simulate::Truth;

/// Arguments of `selfheal backtest`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BacktestArgs {
    /// NDJSON history (the interchange format).
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Directory for regressions.ndjson, verdicts.ndjson, actions.ndjson.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Configuration to try (thresholds etc.); defaults otherwise.
    #[arg(long, short = 'c')]
    pub(crate) config: Option<PathBuf>,
    /// Ground truth from `selfheal simulate`: score the detection and compare
    /// with the simple recipe on the same input.
    #[arg(long)]
    pub(crate) truth: Option<PathBuf>,
    /// Run this many detector instances, the services split among them by a
    /// hash of their name (as input partitions split them), exchanging fleet
    /// summaries after every event (a fleet topic without lag). Measures the
    /// fleet guard across instances; 1 is one detector over all services.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) detector_instances: u16,
}

/// What one backtest produced.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Input records read.
    pub(crate) records: usize,
    /// Lines rejected (with their errors written to `rejected.ndjson`).
    pub(crate) rejected: usize,
    /// Regressions, in emission order.
    pub(crate) regressions: Vec<Regression>,
    /// Verdicts, in emission order.
    pub(crate) verdicts: Vec<Verdict>,
    /// Actions, in emission order.
    pub(crate) actions: Vec<Action>,
}

/// Reads and parses the input; bad lines are reported, not fatal.
pub(crate) fn read_records(path: &Path) -> anyhow::Result<(Vec<Record>, Vec<String>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {} line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line, i + 1, DefaultType::Log) {
            Ok(r) => records.push(r),
            Err(e) => rejected.push(serde_json::to_string(&e)?),
        }
    }
    Ok((records, rejected))
}

fn ts_of(r: &Record) -> i64 {
    match r {
        Record::Log(l) => l.ts_ms,
        Record::Traffic(t) => t.ts_ms,
        Record::Deploy(d) => d.ts_ms,
        Record::Build(b) => b.ts_ms,
    }
}

/// The detector, triage and fixer (dry-run) cores wired as the live topics
/// wire them, fed one event at a time in event-time order.
pub(crate) struct Cores {
    /// One detector, or one per simulated detector instance.
    detectors: Vec<Detector>,
    triage: selfheal_triage::core::Triage,
    fixer: selfheal_fixer::policy::Policy,
}

impl Cores {
    /// The cores for `config`, the fixer forced to dry-run.
    pub(crate) fn new(config: &Config) -> anyhow::Result<Self> {
        Self::with_instances(config, 1)
    }

    /// [`Cores::new`] with `instances` detector instances exchanging fleet
    /// summaries (one: a single detector, the fleet left off).
    pub(crate) fn with_instances(config: &Config, instances: u16) -> anyhow::Result<Self> {
        let mut fixer_config = config.fixer.clone();
        fixer_config.dry_run = true;
        let detectors = (0..instances.max(1))
            .map(|i| {
                let mut d = Detector::new(config.detector.clone());
                if instances > 1 {
                    d.enable_fleet(&format!("backtest-{i}"));
                }
                d
            })
            .collect();
        Ok(Self {
            detectors,
            triage: selfheal_triage::core::Triage::new(config.triage.clone())
                .context("triage configuration")?,
            fixer: selfheal_fixer::policy::Policy::new(fixer_config),
        })
    }

    /// The detector stage: the event goes to the instance owning its service;
    /// then every summary reaches every instance, as the fleet topic would
    /// deliver it (at once here).
    fn detect(&mut self, event: &AnyEvent) -> Vec<Regression> {
        if self.detectors.len() == 1 {
            return self.detectors[0].on_event(event);
        }
        let service = match event {
            AnyEvent::SignatureCount(x) => &x.service,
            AnyEvent::Traffic(x) => &x.service,
            AnyEvent::Deploy(x) => &x.service,
            AnyEvent::Build(x) => &x.service,
            _ => return Vec::new(),
        };
        let hash = selfheal_common::ids::stable_id(&[service]);
        let owner =
            u64::from_str_radix(&hash, 16).unwrap_or_default() % self.detectors.len() as u64;
        let mut out = self.detectors[owner as usize].on_event(event);
        let summaries: Vec<_> = self
            .detectors
            .iter_mut()
            .flat_map(|d| d.take_fleet_summaries(true))
            .collect();
        for s in &summaries {
            for d in &mut self.detectors {
                out.extend(d.on_fleet(s));
            }
        }
        out
    }

    /// Feeds one input event through all three stages.
    pub(crate) fn feed(&mut self, event: &AnyEvent, out: &mut Outcome) {
        let regressions = self.detect(event);
        // Every input reaches triage and the fixer too (deploys for diffs and
        // rollback targets, counts and traffic for the recovery check).
        out.actions.extend(self.fixer.actions_for(event));
        // A deploy can release regressions triage held for it.
        for v in self.triage.on_event(event) {
            let vev = AnyEvent::Verdict(v.clone());
            out.verdicts.push(v);
            out.actions.extend(self.fixer.actions_for(&vev));
        }
        self.downstream(regressions, out);
    }

    /// End of input: closes every open window.
    pub(crate) fn finish(&mut self, out: &mut Outcome) {
        let regressions: Vec<Regression> = self
            .detectors
            .iter_mut()
            .flat_map(Detector::flush)
            .collect();
        self.downstream(regressions, out);
    }

    fn downstream(&mut self, regressions: Vec<Regression>, out: &mut Outcome) {
        for r in regressions {
            let ev = AnyEvent::Regression(r.clone());
            out.regressions.push(r);
            out.actions.extend(self.fixer.actions_for(&ev));
            for v in self.triage.on_event(&ev) {
                let vev = AnyEvent::Verdict(v.clone());
                out.verdicts.push(v);
                out.actions.extend(self.fixer.actions_for(&vev));
            }
        }
    }
}

/// Runs the pipeline over parsed records with `config`.
pub(crate) fn run_pipeline(config: &Config, records: Vec<Record>) -> anyhow::Result<Outcome> {
    run_pipeline_with(config, records, 1)
}

/// [`run_pipeline`] with `instances` detector instances.
pub(crate) fn run_pipeline_with(
    config: &Config,
    mut records: Vec<Record>,
    instances: u16,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome {
        records: records.len(),
        ..Default::default()
    };
    // Stable: file order within a millisecond.
    records.sort_by_key(ts_of);
    // One long-lived normalizer, as in the live intake: online grouping must
    // see the whole stream for signature ids to stay consistent across batches.
    let mut normalizer = selfheal_ingest::normalize::Normalizer::new(
        selfheal_ingest::cli::normalizer_config(&config.ingest),
    );
    let mut cores = Cores::with_instances(config, instances)?;
    let mut i = 0;
    while i < records.len() {
        let minute = ts_of(&records[i]).div_euclid(60_000);
        let mut j = i;
        while j < records.len() && ts_of(&records[j]).div_euclid(60_000) == minute {
            j += 1;
        }
        let events =
            selfheal_ingest::events::to_events(&mut normalizer, records[i..j].iter().cloned());
        let ordered = events
            .deploys
            .into_iter()
            .map(AnyEvent::Deploy)
            .chain(events.builds.into_iter().map(AnyEvent::Build))
            .chain(events.traffic.into_iter().map(AnyEvent::Traffic))
            .chain(events.signatures.into_iter().map(AnyEvent::SignatureCount));
        for e in ordered {
            cores.feed(&e, &mut out);
        }
        i = j;
    }
    cores.finish(&mut out);
    Ok(out)
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}

/// Writes the three output files (and `rejected.ndjson` when lines were bad).
pub(crate) fn write_outputs(
    dir: &Path,
    outcome: &Outcome,
    rejected: &[String],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, lines: Vec<String>| -> anyhow::Result<()> {
        let path = dir.join(name);
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        for l in lines {
            writeln!(f, "{l}")?;
        }
        f.flush()?;
        Ok(())
    };
    write(
        "regressions.ndjson",
        outcome
            .regressions
            .iter()
            .map(|r| {
                json!({
                    "service": r.service, "revision": r.revision, "signature": r.signature,
                    "template": r.template, "kind": kind_name(r.kind),
                    "detected_at": rfc3339(r.detected_at_ms), "detected_at_ms": r.detected_at_ms,
                    "deployed_at_ms": r.deployed_at_ms,
                    "observed": r.observed, "expected": finite(r.expected),
                    "rate_ratio": finite(r.rate_ratio), "p_value": finite(r.p_value),
                    "q_value": r.q_value.map(finite), "rate_basis": format!("{:?}", r.rate_basis),
                    "requests": r.requests, "externally_correlated": r.externally_correlated,
                    "correlation_evidence": r.correlation_evidence,
                    "sample": r.sample_message.lines().next().unwrap_or_default(),
                })
                .to_string()
            })
            .collect(),
    )?;
    write(
        "verdicts.ndjson",
        outcome
            .verdicts
            .iter()
            .map(|v| {
                json!({
                    "service": v.service, "revision": v.revision,
                    "decision": serde_json::to_value(v.decision).unwrap_or_default(),
                    "confidence": finite(v.confidence), "signatures": v.signatures,
                    "evidence": v.evidence.iter().map(|e| json!({"file": e.file, "line": e.line, "hunk": e.hunk_header, "frame": e.frame, "strength": e.strength})).collect::<Vec<_>>(),
                    "reasoning": v.reasoning, "blamed_revision": v.blamed_revision,
                    "decided_at_ms": v.decided_at_ms,
                })
                .to_string()
            })
            .collect(),
    )?;
    write(
        "actions.ndjson",
        outcome
            .actions
            .iter()
            .map(|a| {
                json!({
                    "service": a.service, "revision": a.revision,
                    "action": serde_json::to_value(a.action).unwrap_or_default(),
                    "decided_at": rfc3339(a.decided_at_ms), "decided_at_ms": a.decided_at_ms,
                    "reasons": a.reasons, "rule": a.rule,
                    "status": serde_json::to_value(a.status).unwrap_or_default(),
                    "target_revision": a.target_revision,
                })
                .to_string()
            })
            .collect(),
    )?;
    if !rejected.is_empty() {
        write("rejected.ndjson", rejected.to_vec())?;
    }
    Ok(())
}

fn kind_name(k: RegressionKind) -> &'static str {
    match k {
        RegressionKind::New => "new",
        RegressionKind::Spike => "spike",
        RegressionKind::BuildFailure => "build_failure",
    }
}

/// Detection quality against simulator ground truth.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Score {
    /// Culprit deploys.
    pub(crate) culprits: usize,
    /// Deploys with at least one regression attributed to them (not externally
    /// correlated).
    pub(crate) flagged: usize,
    /// Flagged culprits.
    pub(crate) true_positives: usize,
    /// TP / flagged.
    pub(crate) precision: f64,
    /// TP / culprits.
    pub(crate) recall: f64,
    /// Median minutes from deploy to first detection, over true positives.
    pub(crate) median_latency_min: f64,
}

/// Scores regressions against the truth: a deploy counts as flagged when a
/// `new` or `spike` regression not marked externally correlated names it.
pub(crate) fn score(truth: &[Truth], regressions: &[Regression]) -> Score {
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for r in regressions
        .iter()
        .filter(|r| r.kind != RegressionKind::BuildFailure && !r.externally_correlated)
    {
        let e = first
            .entry((r.service.as_str(), r.revision.as_str()))
            .or_insert(r.detected_at_ms);
        *e = (*e).min(r.detected_at_ms);
    }
    let culprits: Vec<&Truth> = truth.iter().filter(|t| t.label != "clean").collect();
    let mut latencies: Vec<f64> = culprits
        .iter()
        .filter_map(|t| {
            first
                .get(&(t.service.as_str(), t.revision.as_str()))
                .map(|at| (at - t.deployed_at_ms) as f64 / 60_000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let tp = latencies.len();
    let flagged = first.len();
    Score {
        culprits: culprits.len(),
        flagged,
        true_positives: tp,
        precision: if flagged == 0 {
            1.0
        } else {
            tp as f64 / flagged as f64
        },
        recall: if culprits.is_empty() {
            1.0
        } else {
            tp as f64 / culprits.len() as f64
        },
        median_latency_min: latencies.get(tp / 2).copied().unwrap_or(f64::NAN),
    }
}

/// Triage and fixer quality against simulator ground truth.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Remediation {
    /// Deploys with at least one verdict.
    pub(crate) judged: usize,
    /// Of those, verdicts right about causation: a culprit judged `caused`,
    /// a clean deploy judged anything else.
    pub(crate) triage_correct: usize,
    /// Culprits judged `caused`.
    pub(crate) culprits_caused: usize,
    /// Of those, citing the true culprit file within ±3 lines.
    pub(crate) cited_right: usize,
    /// Culprit deploys (all, flagged or not).
    pub(crate) culprits: usize,
    /// Culprit deploys that got a rollback or fix-forward action.
    pub(crate) culprits_remediated: usize,
    /// Clean deploys that were rolled back (must be 0).
    pub(crate) clean_rolled_back: usize,
}

/// Scores verdicts and actions: triage accuracy over deploys with a verdict,
/// citation accuracy over culprits judged caused, and the fixer's outcome.
pub(crate) fn score_remediation(
    truth: &[Truth],
    verdicts: &[Verdict],
    actions: &[Action],
) -> Remediation {
    use selfheal_schemas::{ActionKind, Decision};
    let by_deploy: BTreeMap<(&str, &str), &Truth> = truth
        .iter()
        .map(|t| ((t.service.as_str(), t.revision.as_str()), t))
        .collect();
    // The verdict judged per deploy: `caused` if any verdict says so.
    let mut judged: BTreeMap<(&str, &str), Option<&Verdict>> = BTreeMap::new();
    for v in verdicts {
        let e = judged
            .entry((v.service.as_str(), v.revision.as_str()))
            .or_insert(None);
        if v.decision == Decision::Caused && e.is_none() {
            *e = Some(v);
        }
    }
    let mut r = Remediation {
        judged: 0,
        triage_correct: 0,
        culprits_caused: 0,
        cited_right: 0,
        culprits: truth.iter().filter(|t| t.label != "clean").count(),
        culprits_remediated: 0,
        clean_rolled_back: 0,
    };
    for (key, caused) in &judged {
        let Some(t) = by_deploy.get(key) else {
            continue;
        };
        r.judged += 1;
        let culprit = t.label != "clean";
        if culprit == caused.is_some() {
            r.triage_correct += 1;
        }
        if let (true, Some(v)) = (culprit, caused) {
            r.culprits_caused += 1;
            let right = v.evidence.iter().any(|e| {
                Some(e.file.as_str()) == t.culprit_file.as_deref()
                    && match (e.line, t.culprit_line) {
                        (Some(l), Some(c)) => (i64::from(l) - i64::from(c)).abs() <= 3,
                        _ => false,
                    }
            });
            r.cited_right += usize::from(right);
        }
    }
    let mut acted: BTreeMap<(&str, &str), Vec<ActionKind>> = BTreeMap::new();
    for a in actions {
        acted
            .entry((a.service.as_str(), a.revision.as_str()))
            .or_default()
            .push(a.action);
    }
    for t in truth {
        let kinds = acted.get(&(t.service.as_str(), t.revision.as_str()));
        let has = |k: ActionKind| kinds.is_some_and(|v| v.contains(&k));
        if t.label != "clean" && (has(ActionKind::Rollback) || has(ActionKind::FixForward)) {
            r.culprits_remediated += 1;
        }
        if t.label == "clean" && has(ActionKind::Rollback) {
            r.clean_rolled_back += 1;
        }
    }
    r
}

/// Reads a truth file.
pub(crate) fn read_truth(path: &Path) -> anyhow::Result<Vec<Truth>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// The `selfheal backtest` command. The score table is the command's output,
/// so it goes to stdout.
#[allow(clippy::print_stdout)]
pub(crate) fn command(args: &BacktestArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let started = std::time::Instant::now();
    let (records, rejected) = read_records(&args.input)?;
    let read_s = started.elapsed().as_secs_f64();
    let n = records.len();
    let truth = args.truth.as_deref().map(read_truth).transpose()?;
    let simple_records = truth.as_ref().map(|_| records.clone());
    let started = std::time::Instant::now();
    let mut outcome = run_pipeline_with(&config, records, args.detector_instances)?;
    let run_s = started.elapsed().as_secs_f64();
    outcome.rejected = rejected.len();
    write_outputs(&args.out, &outcome, &rejected)?;
    eprintln!(
        "backtest: {} records ({} rejected) → {} regressions, {} verdicts, {} actions; read {read_s:.2}s, pipeline {run_s:.2}s ({:.0} records/s)",
        outcome.records,
        rejected.len(),
        outcome.regressions.len(),
        outcome.verdicts.len(),
        outcome.actions.len(),
        n as f64 / run_s.max(1e-9)
    );
    if let (Some(truth), Some(records)) = (truth, simple_records) {
        let ours = score(&truth, &outcome.regressions);
        let simple_config = Config {
            detector: DetectorConfig::simple_recipe(),
            ..config.clone()
        };
        let simple = run_pipeline(&simple_config, records)?;
        let theirs = score(&truth, &simple.regressions);
        let rem = score_remediation(&truth, &outcome.verdicts, &outcome.actions);
        println!(
            "triage: accuracy {:.3} over {} deploys with a verdict; culprit cited within ±3 lines {}/{}",
            rem.triage_correct as f64 / rem.judged.max(1) as f64,
            rem.judged,
            rem.cited_right,
            rem.culprits_caused
        );
        println!(
            "fixer: {}/{} culprit deploys rolled back or fixed forward; {} clean deploys rolled back",
            rem.culprits_remediated, rem.culprits, rem.clean_rolled_back
        );
        println!("method         culprits flagged  TP  precision recall median_latency_min");
        for (name, s) in [("selfheal", &ours), ("simple-recipe", &theirs)] {
            println!(
                "{name:<14} {:>8} {:>7} {:>3}  {:>9.3} {:>6.3} {:>18.1}",
                s.culprits,
                s.flagged,
                s.true_positives,
                s.precision,
                s.recall,
                s.median_latency_min
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{simulate, SimArgs};

    fn small_history() -> (Vec<Record>, Vec<Truth>) {
        let args = SimArgs {
            services: 8,
            days: 1.75,
            seed: 11,
            deploy_every_hours: 4.0,
        };
        let (mut out, mut truth) = (Vec::new(), Vec::new());
        simulate(&args, &mut out, &mut truth).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.ndjson");
        std::fs::write(&path, &out).unwrap();
        let (records, rejected) = read_records(&path).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        let truth = String::from_utf8(truth)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (records, truth)
    }

    #[test]
    fn backtest_is_byte_identical_across_runs_and_beats_the_simple_recipe() {
        let (records, truth) = small_history();
        let config = Config::default();
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut outcomes = Vec::new();
        for d in &dirs {
            let o = run_pipeline(&config, records.clone()).unwrap();
            write_outputs(d.path(), &o, &[]).unwrap();
            outcomes.push(o);
        }
        for f in ["regressions.ndjson", "verdicts.ndjson", "actions.ndjson"] {
            let a = std::fs::read(dirs[0].path().join(f)).unwrap();
            let b = std::fs::read(dirs[1].path().join(f)).unwrap();
            assert_eq!(a, b, "{f} differs between runs");
        }
        let ours = score(&truth, &outcomes[0].regressions);
        let simple_cfg = Config {
            detector: DetectorConfig::simple_recipe(),
            ..Config::default()
        };
        let theirs = score(
            &truth,
            &run_pipeline(&simple_cfg, records).unwrap().regressions,
        );
        eprintln!("selfheal {ours:?}\nsimple   {theirs:?}");
        assert!(ours.culprits >= 3, "the history has culprits: {ours:?}");
        assert!(ours.precision >= 0.85, "{ours:?}");
        // The targets (0.95 / 0.95 / 5 min) are for the full-size simulation
        // (README); this small 8-service history is a regression guard, and in
        // a fleet that small an upstream outage often reaches only one other
        // service, too little to tell it from a deploy's own regression.
        assert!(ours.recall >= 0.75, "{ours:?}");
        assert!(ours.median_latency_min <= 5.0, "{ours:?}");
        assert!(
            ours.precision > theirs.precision
                || ours.median_latency_min < theirs.median_latency_min
        );
    }

    /// Several detector instances exchanging fleet summaries decide like one
    /// detector over all services: same regressions, same event times, same
    /// external correlations (only the evidence of remote witnesses may be
    /// shorter: they count up to their instance's watermark).
    #[test]
    fn detector_instances_exchanging_summaries_decide_like_one() {
        let (records, _) = small_history();
        let config = Config::default();
        let key = |o: &Outcome| {
            let mut k: Vec<_> = o
                .regressions
                .iter()
                .map(|r| {
                    let kind = kind_name(r.kind);
                    let (service, revision) = (r.service.clone(), r.revision.clone());
                    (
                        service,
                        revision,
                        r.signature.clone(),
                        kind,
                        r.detected_at_ms,
                        r.externally_correlated,
                    )
                })
                .collect();
            k.sort();
            k
        };
        let one = run_pipeline(&config, records.clone()).unwrap();
        let three = run_pipeline_with(&config, records, 3).unwrap();
        assert!(one.regressions.iter().any(|r| r.externally_correlated));
        assert_eq!(key(&one), key(&three));
    }

    #[test]
    fn bad_lines_are_reported_with_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.ndjson");
        std::fs::write(
            &path,
            "{\"ts\":1,\"service\":\"a\",\"revision\":\"r\",\"message\":\"m\"}\n{\"ts\":1}\n",
        )
        .unwrap();
        let (records, rejected) = read_records(&path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0].contains("\"line\":2") && rejected[0].contains("service"),
            "{}",
            rejected[0]
        );
    }
}
