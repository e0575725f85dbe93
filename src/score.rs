//! Scoring a backtest against the simulator's truth (`selfheal backtest
//! --truth`, `selfheal score`).
//!
//! Everything is counted **per deploy** and read from the backtest's output
//! rows (`regressions.ndjson`, `verdicts.ndjson`, `actions.ndjson`) with
//! lenient types: a field a row lacks (`incident_id`, `localization`, newer
//! or older writers) is simply absent, never an error.
//!
//! - Detection: a deploy is *flagged* when at least one `new`/`spike`
//!   regression not marked `externally_correlated` names it; precision and
//!   recall over culprit deploys; median and p90 minutes from deploy to first
//!   such regression over flagged culprits.
//! - Triage: per deploy with a verdict, the *latest* verdict (the last row of
//!   its incident, by `incident_id` when rows carry one, else by service and
//!   revision) decides: a culprit must be `caused`, a clean deploy
//!   `not_caused` (`inconclusive` is wrong either way). For culprits also the
//!   reported `localization` against the truth's linkability, and whether a
//!   cited line is within ±3 of the changed line.
//! - Fixer: culprits rolled back or fixed forward; clean deploys rolled back
//!   (must be 0) or fixed forward.
//!
//! Breakdowns by linkability, confounder, bug kind and language show where
//! each stage fails.
//!
//! Golden-signal truth (`selfheal simulate --profile golden`) adds a
//! per-kind section ([`golden`]): latency, 5xx rate and saturation scored
//! separately, beside a simple reference computed from the input history
//! ([`mod@reference`], [`Report::with_reference`]).

mod golden;
mod reference;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use selfheal_schemas::Regression;
use serde::{Deserialize, Serialize};

use crate::simulate::Truth;

/// A regression row (only what scoring needs).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RegressionRow {
    /// Absent in hand-written rows: each such row is its own regression.
    #[serde(default)]
    id: String,
    service: String,
    revision: String,
    #[serde(default)]
    kind: String,
    detected_at_ms: i64,
    #[serde(default)]
    externally_correlated: bool,
}

impl From<&Regression> for RegressionRow {
    fn from(r: &Regression) -> Self {
        RegressionRow {
            id: r.id.clone(),
            service: r.service.clone(),
            revision: r.revision.clone(),
            kind: r.kind.as_str().to_owned(),
            detected_at_ms: r.detected_at_ms,
            externally_correlated: r.externally_correlated,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct EvidenceRow {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    line: Option<u32>,
}

/// A verdict row; `incident_id` and `localization` are optional (absent,
/// null, a string, or for the id a number: whatever a writer gives).
#[derive(Debug, Clone, Deserialize)]
struct VerdictRow {
    service: String,
    revision: String,
    decision: String,
    #[serde(default, deserialize_with = "lenient_string")]
    incident_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    localization: Option<String>,
    #[serde(default)]
    evidence: Vec<EvidenceRow>,
}

/// A string, a number (as its text), or nothing (null, other types).
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[derive(Debug, Clone, Deserialize)]
struct ActionRow {
    service: String,
    revision: String,
    action: String,
}

/// Detection quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Detection {
    /// Culprit deploys.
    pub(crate) culprits: usize,
    /// Deploys (service + revision) with at least one deploy-attributed regression.
    pub(crate) flagged: usize,
    /// Flagged culprits.
    pub(crate) true_positives: usize,
    /// TP / flagged (1 when nothing is flagged).
    pub(crate) precision: f64,
    /// TP / culprits (1 when there are none).
    pub(crate) recall: f64,
    /// Median minutes from deploy to first detection, over true positives
    /// (null in JSON when there are none).
    #[serde(deserialize_with = "nan_if_null")]
    pub(crate) median_latency_min: f64,
    /// 90th percentile of the same.
    #[serde(deserialize_with = "nan_if_null")]
    pub(crate) p90_latency_min: f64,
    /// Median minutes from the culprit's first error (the truth's
    /// `error_onset_ms`; the deploy where the truth has none) to its first
    /// detection: the detector's own delay, without a bug's late start.
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub(crate) median_from_onset_min: f64,
}

fn nan() -> f64 {
    f64::NAN
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The simple recipe's detection from an earlier `score.json` in `dir`, if
/// any (`selfheal score` re-scores the rows but cannot re-run the recipe).
pub(crate) fn previous_simple_recipe(dir: &Path) -> Option<Detection> {
    let text = std::fs::read_to_string(dir.join("score.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(v.get("simple_recipe")?.clone()).ok()
}

/// Scores regressions: a deploy counts as flagged when a `new` or `spike`
/// regression not marked externally correlated names it.
pub(crate) fn detection(truth: &[Truth], regressions: &[RegressionRow]) -> Detection {
    let first = first_detection(regressions);
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
    let mut from_onset: Vec<f64> = culprits
        .iter()
        .filter_map(|t| {
            let at = first.get(&(t.service.as_str(), t.revision.as_str()))?;
            let onset = t.error_onset_ms.unwrap_or(t.deployed_at_ms);
            Some((at - onset).max(0) as f64 / 60_000.0)
        })
        .collect();
    from_onset.sort_by(f64::total_cmp);
    let tp = latencies.len();
    let flagged = first.len();
    Detection {
        culprits: culprits.len(),
        flagged,
        true_positives: tp,
        precision: ratio(tp, flagged),
        recall: ratio(tp, culprits.len()),
        median_latency_min: latencies.get(tp / 2).copied().unwrap_or(f64::NAN),
        p90_latency_min: if tp == 0 {
            f64::NAN
        } else {
            latencies[((tp as f64 * 0.9).ceil() as usize).clamp(1, tp) - 1]
        },
        median_from_onset_min: from_onset.get(tp / 2).copied().unwrap_or(f64::NAN),
    }
}

/// Scores in-memory regressions (the simple recipe's, the tests').
pub(crate) fn score(truth: &[Truth], regressions: &[Regression]) -> Detection {
    let rows: Vec<RegressionRow> = regressions.iter().map(RegressionRow::from).collect();
    detection(truth, &latest_per_id(rows))
}

/// The latest record of each regression id (a later record is an update,
/// e.g. the detector's went-away check marking it external), in the order
/// of their first records.
pub(crate) fn latest_per_id(rows: Vec<RegressionRow>) -> Vec<RegressionRow> {
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<RegressionRow> = Vec::with_capacity(rows.len());
    for r in rows {
        match at.get(&r.id).filter(|_| !r.id.is_empty()) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(r.id.clone(), out.len());
                out.push(r);
            }
        }
    }
    out
}

fn first_detection(regressions: &[RegressionRow]) -> BTreeMap<(&str, &str), i64> {
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for r in regressions
        .iter()
        .filter(|r| r.kind != "build_failure" && !r.externally_correlated)
    {
        let e = first
            .entry((r.service.as_str(), r.revision.as_str()))
            .or_insert(r.detected_at_ms);
        *e = (*e).min(r.detected_at_ms);
    }
    first
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Counts for one slice of deploys.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Slice {
    /// Deploys in the slice.
    pub(crate) deploys: usize,
    /// Of those, culprits.
    pub(crate) culprits: usize,
    /// Culprits flagged (detected).
    pub(crate) culprits_detected: usize,
    /// Clean deploys flagged (false positives).
    pub(crate) clean_flagged: usize,
    /// Deploys with a verdict.
    pub(crate) judged: usize,
    /// Latest verdict right (culprit `caused`, clean `not_caused`).
    pub(crate) verdict_right: usize,
    /// Culprits whose latest verdict reports a `localization`.
    pub(crate) localized: usize,
    /// Of those, equal to the truth's linkability.
    pub(crate) localization_right: usize,
    /// Culprits judged `caused` citing the culprit file within ±3 lines.
    pub(crate) cited_right: usize,
    /// Culprits judged `caused` (latest verdict).
    pub(crate) caused: usize,
    /// Culprits with `caused` in *any* of their verdicts (the rule before
    /// incidents: one verdict per regression, any of them may say it).
    pub(crate) any_caused: usize,
    /// Culprits rolled back or fixed forward.
    pub(crate) remediated: usize,
    /// Clean deploys rolled back.
    pub(crate) clean_rolled_back: usize,
    /// Clean deploys fixed forward.
    pub(crate) clean_fixed_forward: usize,
}

/// The whole score.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// selfheal's detection.
    pub(crate) detection: Detection,
    /// The simple recipe's, when run.
    pub(crate) simple_recipe: Option<Detection>,
    /// All deploys, culprits and clean.
    pub(crate) culprit: Slice,
    pub(crate) clean: Slice,
    /// Culprits by the truth's linkability (`line`, `function`, `file`, `none`).
    pub(crate) by_linkability: BTreeMap<String, Slice>,
    /// All deploys by their main confounder (`-` for none).
    pub(crate) by_confounder: BTreeMap<String, Slice>,
    /// Culprits by bug kind.
    pub(crate) by_bug_kind: BTreeMap<String, Slice>,
    /// All deploys by language.
    pub(crate) by_language: BTreeMap<String, Slice>,
    /// Verdict rows read, and how many carried `incident_id` / `localization`.
    pub(crate) verdict_rows: usize,
    pub(crate) rows_with_incident_id: usize,
    pub(crate) rows_with_localization: usize,
    /// Per golden-signal kind, with the reference (golden truth only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) golden: Option<golden::Golden>,
}

/// The triage accuracy over deploys with a verdict.
pub(crate) fn accuracy(s: &Slice) -> f64 {
    ratio(s.verdict_right, s.judged)
}

fn read_rows<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{} line {}", path.display(), i + 1))?,
        );
    }
    Ok(rows)
}

/// Scores the backtest output in `dir` against `truth`.
pub(crate) fn score_dir(
    truth: &[Truth],
    dir: &Path,
    simple: Option<Detection>,
) -> anyhow::Result<Report> {
    let regressions = latest_per_id(read_rows(&dir.join("regressions.ndjson"))?);
    let verdicts: Vec<VerdictRow> = read_rows(&dir.join("verdicts.ndjson"))?;
    let actions: Vec<ActionRow> = read_rows(&dir.join("actions.ndjson"))?;
    Ok(report(truth, &regressions, &verdicts, &actions, simple))
}

fn report(
    truth: &[Truth],
    regressions: &[RegressionRow],
    verdicts: &[VerdictRow],
    actions: &[ActionRow],
    simple: Option<Detection>,
) -> Report {
    let detection = detection(truth, regressions);
    let first = first_detection(regressions);
    // Latest row per incident (or per deploy), then latest per deploy.
    let mut by_incident: BTreeMap<String, usize> = BTreeMap::new();
    for (i, v) in verdicts.iter().enumerate() {
        let key = v
            .incident_id
            .clone()
            .unwrap_or_else(|| format!("{}\u{0}{}", v.service, v.revision));
        by_incident.insert(key, i);
    }
    let mut latest: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for &i in by_incident.values() {
        let v = &verdicts[i];
        let e = latest
            .entry((v.service.as_str(), v.revision.as_str()))
            .or_insert(i);
        *e = (*e).max(i);
    }
    let any_caused: std::collections::BTreeSet<(&str, &str)> = verdicts
        .iter()
        .filter(|v| v.decision == "caused")
        .map(|v| (v.service.as_str(), v.revision.as_str()))
        .collect();
    let mut acted: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for a in actions {
        acted
            .entry((a.service.as_str(), a.revision.as_str()))
            .or_default()
            .push(a.action.as_str());
    }
    let mut r = Report {
        detection,
        simple_recipe: simple,
        culprit: Slice::default(),
        clean: Slice::default(),
        by_linkability: BTreeMap::new(),
        by_confounder: BTreeMap::new(),
        by_bug_kind: BTreeMap::new(),
        by_language: BTreeMap::new(),
        verdict_rows: verdicts.len(),
        rows_with_incident_id: verdicts.iter().filter(|v| v.incident_id.is_some()).count(),
        rows_with_localization: verdicts.iter().filter(|v| v.localization.is_some()).count(),
        golden: golden::Golden::score(truth, regressions),
    };
    for t in truth {
        let key = (t.service.as_str(), t.revision.as_str());
        let culprit = t.label != "clean";
        // Classic truth has no linkability: its culprits' frames are on the line.
        let link = t.linkability.as_deref().unwrap_or("line");
        let mut one = Slice {
            deploys: 1,
            culprits: usize::from(culprit),
            culprits_detected: usize::from(culprit && first.contains_key(&key)),
            clean_flagged: usize::from(!culprit && first.contains_key(&key)),
            ..Slice::default()
        };
        one.any_caused = usize::from(culprit && any_caused.contains(&key));
        if let Some(&i) = latest.get(&key) {
            let v = &verdicts[i];
            one.judged = 1;
            let right = if culprit {
                v.decision == "caused"
            } else {
                v.decision == "not_caused"
            };
            one.verdict_right = usize::from(right);
            if culprit {
                if let Some(l) = &v.localization {
                    one.localized = 1;
                    one.localization_right = usize::from(l == link);
                }
                if v.decision == "caused" {
                    one.caused = 1;
                    one.cited_right = usize::from(v.evidence.iter().any(|e| {
                        e.file.is_some()
                            && e.file.as_deref() == t.culprit_file.as_deref()
                            && match (e.line, t.culprit_line) {
                                (Some(l), Some(c)) => l.abs_diff(c) <= 3,
                                _ => false,
                            }
                    }));
                }
            }
        }
        let has = |k: &str| acted.get(&key).is_some_and(|v| v.contains(&k));
        if culprit {
            one.remediated = usize::from(has("rollback") || has("fix_forward"));
        } else {
            one.clean_rolled_back = usize::from(has("rollback"));
            one.clean_fixed_forward = usize::from(has("fix_forward"));
        }
        add(
            if culprit {
                &mut r.culprit
            } else {
                &mut r.clean
            },
            &one,
        );
        if culprit {
            add(r.by_linkability.entry(link.to_owned()).or_default(), &one);
            let kind = t.bug_kind.clone().unwrap_or_else(|| t.label.clone());
            add(r.by_bug_kind.entry(kind).or_default(), &one);
        }
        let conf = t.confounder.clone().unwrap_or_else(|| "-".to_owned());
        add(r.by_confounder.entry(conf).or_default(), &one);
        let lang = t.language.clone().unwrap_or_else(|| "-".to_owned());
        add(r.by_language.entry(lang).or_default(), &one);
    }
    r
}

fn add(to: &mut Slice, one: &Slice) {
    to.deploys += one.deploys;
    to.culprits += one.culprits;
    to.culprits_detected += one.culprits_detected;
    to.clean_flagged += one.clean_flagged;
    to.judged += one.judged;
    to.verdict_right += one.verdict_right;
    to.localized += one.localized;
    to.localization_right += one.localization_right;
    to.cited_right += one.cited_right;
    to.caused += one.caused;
    to.any_caused += one.any_caused;
    to.remediated += one.remediated;
    to.clean_rolled_back += one.clean_rolled_back;
    to.clean_fixed_forward += one.clean_fixed_forward;
}

fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else {
        serde_json::Value::Null
    }
}

impl Report {
    /// Adds the golden reference, computed from the `input` history (one
    /// streaming pass); nothing to do when the truth has no golden labels.
    pub(crate) fn with_reference(mut self, truth: &[Truth], input: &Path) -> anyhow::Result<Self> {
        if let Some(g) = &mut self.golden {
            g.reference = Some(reference::score(truth, input)?);
        }
        Ok(self)
    }

    /// The score as JSON (`DIR/score.json`); NaN latencies become null.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        for d in ["detection", "simple_recipe"] {
            if let Some(o) = v.get_mut(d).and_then(|d| d.as_object_mut()) {
                for (k, x) in [
                    (
                        "median_latency_min",
                        self.det(d).map(|d| d.median_latency_min),
                    ),
                    ("p90_latency_min", self.det(d).map(|d| d.p90_latency_min)),
                    (
                        "median_from_onset_min",
                        self.det(d).map(|d| d.median_from_onset_min),
                    ),
                ] {
                    if let Some(x) = x {
                        o.insert(k.to_owned(), finite(x));
                    }
                }
            }
        }
        let acc = serde_json::json!({
            "triage_accuracy": ratio(self.culprit.verdict_right + self.clean.verdict_right, self.culprit.judged + self.clean.judged),
            "triage_accuracy_culprits": accuracy(&self.culprit),
            "triage_accuracy_clean": accuracy(&self.clean),
            "culprits_remediated_share": ratio(self.culprit.remediated, self.culprit.deploys),
        });
        if let Some(o) = v.as_object_mut() {
            o.insert("summary".to_owned(), acc);
        }
        v
    }

    fn det(&self, which: &str) -> Option<&Detection> {
        match which {
            "detection" => Some(&self.detection),
            _ => self.simple_recipe.as_ref(),
        }
    }

    /// A readable table.
    pub(crate) fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let lat = |x: f64| {
            if x.is_finite() {
                format!("{x:.1}")
            } else {
                "-".to_owned()
            }
        };
        let _ = writeln!(
            s,
            "detection (per deploy; externally correlated regressions do not flag)"
        );
        let _ = writeln!(
            s,
            "  method         culprits flagged  TP  precision recall  median_min  p90_min  median_from_onset"
        );
        for (name, d) in [
            ("selfheal", Some(&self.detection)),
            ("simple-recipe", self.simple_recipe.as_ref()),
        ] {
            if let Some(d) = d {
                let _ = writeln!(
                    s,
                    "  {name:<14} {:>8} {:>7} {:>3}  {:>9.3} {:>6.3}  {:>10} {:>8}  {:>17}",
                    d.culprits,
                    d.flagged,
                    d.true_positives,
                    d.precision,
                    d.recall,
                    lat(d.median_latency_min),
                    lat(d.p90_latency_min),
                    lat(d.median_from_onset_min)
                );
            }
        }
        let judged = self.culprit.judged + self.clean.judged;
        let right = self.culprit.verdict_right + self.clean.verdict_right;
        let _ = writeln!(
            s,
            "triage (latest verdict per deploy): accuracy {:.3} ({right}/{judged}); culprits caused {}/{}, clean not_caused {}/{}; inconclusive counts as wrong",
            ratio(right, judged),
            self.culprit.verdict_right,
            self.culprit.judged,
            self.clean.verdict_right,
            self.clean.judged
        );
        let _ = writeln!(
            s,
            "  culprits with `caused` in any verdict (the rule before incidents) {}/{}; verdict rows {} (with incident_id {}, with localization {})",
            self.culprit.any_caused,
            self.culprit.judged,
            self.verdict_rows,
            self.rows_with_incident_id,
            self.rows_with_localization
        );
        let _ = writeln!(
            s,
            "fixer: culprits remediated {}/{} ({:.3}); clean deploys rolled back {} (must be 0), fixed forward {}",
            self.culprit.remediated,
            self.culprit.deploys,
            ratio(self.culprit.remediated, self.culprit.deploys),
            self.clean.clean_rolled_back,
            self.clean.clean_fixed_forward
        );
        let _ = writeln!(s, "culprits by linkability   culprits detected judged caused  localization_right  cited±3  remediated");
        for (k, v) in &self.by_linkability {
            let _ = writeln!(
                s,
                "  {k:<22} {:>9} {:>8} {:>6} {:>6}  {:>18}  {:>7}  {:>10}",
                v.culprits,
                v.culprits_detected,
                v.judged,
                v.caused,
                if v.localized == 0 {
                    "n/a".to_owned()
                } else {
                    format!("{}/{}", v.localization_right, v.localized)
                },
                format!("{}/{}", v.cited_right, v.caused),
                v.remediated
            );
        }
        let _ = writeln!(
            s,
            "culprits by bug kind      culprits detected judged caused  cited±3  remediated"
        );
        for (k, v) in &self.by_bug_kind {
            let _ = writeln!(
                s,
                "  {k:<22} {:>9} {:>8} {:>6} {:>6}  {:>7}  {:>10}",
                v.culprits,
                v.culprits_detected,
                v.judged,
                v.caused,
                format!("{}/{}", v.cited_right, v.caused),
                v.remediated
            );
        }
        let _ = writeln!(s, "deploys by confounder     deploys culprits  clean_flagged culprits_detected verdict_right/judged clean_rolled_back");
        for (k, v) in &self.by_confounder {
            let _ = writeln!(
                s,
                "  {k:<22} {:>8} {:>8} {:>14} {:>18} {:>20} {:>17}",
                v.deploys,
                v.culprits,
                v.clean_flagged,
                v.culprits_detected,
                format!("{}/{}", v.verdict_right, v.judged),
                v.clean_rolled_back
            );
        }
        if let Some(g) = &self.golden {
            s.push_str(&g.table());
        }
        s
    }
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

/// Writes `DIR/score.json`.
pub(crate) fn write_json(dir: &Path, report: &Report) -> anyhow::Result<()> {
    let path = dir.join("score.json");
    let text = serde_json::to_string_pretty(&report.to_json()).context("serializing the score")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(service: &str, rev: &str, label: &str, link: Option<&str>) -> Truth {
        Truth {
            service: service.into(),
            revision: rev.into(),
            deployed_at_ms: 0,
            label: label.into(),
            culprit_file: (label != "clean").then(|| "src/a.py".to_owned()),
            culprit_line: (label != "clean").then_some(10),
            linkability: link.map(str::to_owned),
            ..Truth::default()
        }
    }

    fn rows<T: for<'de> Deserialize<'de>>(lines: &[&str]) -> Vec<T> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_regression_marked_external_by_its_update_is_no_detection() {
        let t = vec![
            truth("a", "r2", "clean", None),
            truth("b", "r2", "culprit_new", None),
        ];
        let regs = latest_per_id(rows(&[
            r#"{"id":"x","service":"a","revision":"r2","kind":"new","detected_at_ms":60000}"#,
            r#"{"id":"y","service":"b","revision":"r2","kind":"new","detected_at_ms":60000}"#,
            r#"{"id":"x","service":"a","revision":"r2","kind":"new","detected_at_ms":600000,"externally_correlated":true}"#,
        ]));
        assert_eq!(regs.len(), 2);
        let d = detection(&t, &regs);
        assert_eq!((d.precision, d.recall), (1.0, 1.0), "{d:?}");
        // Without the update the clean deploy would be a false positive.
        let all: Vec<RegressionRow> = rows(&[
            r#"{"id":"x","service":"a","revision":"r2","kind":"new","detected_at_ms":60000}"#,
            r#"{"id":"y","service":"b","revision":"r2","kind":"new","detected_at_ms":60000}"#,
        ]);
        assert_eq!(detection(&t, &all).precision, 0.5);
    }

    #[test]
    fn latest_verdict_decides_and_rows_with_or_without_new_fields_read() {
        let t = vec![
            truth("a", "r2", "culprit_new", Some("function")),
            truth("b", "r2", "clean", None),
            truth("c", "r2", "clean", None),
            truth("d", "r2", "culprit_spike", None),
        ];
        let regs: Vec<RegressionRow> = rows(&[
            r#"{"service":"a","revision":"r2","kind":"new","detected_at_ms":120000}"#,
            r#"{"service":"b","revision":"r2","kind":"new","detected_at_ms":60000,"externally_correlated":true}"#,
            r#"{"service":"c","revision":"r2","kind":"spike","detected_at_ms":60000,"externally_correlated":false}"#,
            r#"{"service":"d","revision":"r2","kind":"spike","detected_at_ms":600000}"#,
        ]);
        let verdicts: Vec<VerdictRow> = rows(&[
            // Old rows: no incident id, no localization.
            r#"{"service":"a","revision":"r2","decision":"not_caused","evidence":[]}"#,
            r#"{"service":"a","revision":"r2","decision":"caused","evidence":[{"file":"src/a.py","line":12}],"localization":"function","incident_id":"i1"}"#,
            r#"{"service":"b","revision":"r2","decision":"not_caused","localization":null,"incident_id":null}"#,
            r#"{"service":"c","revision":"r2","decision":"inconclusive","evidence":[{"file":null,"line":null}]}"#,
            r#"{"service":"d","revision":"r2","decision":"caused","incident_id":"i2","evidence":[{"file":"src/a.py","line":30}]}"#,
            r#"{"service":"d","revision":"r2","decision":"not_caused","incident_id":"i2"}"#,
            // A numeric id, an unexpected localization shape: read, not fatal.
            r#"{"service":"e","revision":"r2","decision":"caused","incident_id":7,"localization":{"x":1}}"#,
        ]);
        let actions: Vec<ActionRow> = rows(&[
            r#"{"service":"a","revision":"r2","action":"rollback"}"#,
            r#"{"service":"c","revision":"r2","action":"rollback"}"#,
        ]);
        let r = report(&t, &regs, &verdicts, &actions, None);
        assert_eq!(r.detection.flagged, 3);
        assert_eq!(r.detection.true_positives, 2);
        assert_eq!(r.detection.median_latency_min, 10.0);
        assert_eq!(r.detection.p90_latency_min, 10.0);
        // a: the later caused wins; d: its incident's later not_caused wins.
        assert_eq!((r.culprit.judged, r.culprit.verdict_right), (2, 1));
        // b right, c inconclusive is wrong.
        assert_eq!((r.clean.judged, r.clean.verdict_right), (2, 1));
        let f = &r.by_linkability["function"];
        assert_eq!(
            (f.localized, f.localization_right, f.cited_right),
            (1, 1, 1)
        );
        // Classic truth (no linkability) counts as `line`.
        assert_eq!(r.by_linkability["line"].culprits, 1);
        assert_eq!((r.culprit.remediated, r.clean.clean_rolled_back), (1, 1));
        assert_eq!((r.rows_with_incident_id, r.rows_with_localization), (4, 1));
        let j = r.to_json();
        assert!(j["detection"]["p90_latency_min"].is_number());
        let back: Detection = serde_json::from_value(j["detection"].clone()).unwrap();
        assert_eq!(back, r.detection);
        assert!(r.table().contains("clean deploys rolled back 1"));
    }

    #[test]
    fn nothing_detected_gives_null_latencies() {
        let t = vec![truth("a", "r2", "culprit_new", None)];
        let r = report(&t, &[], &[], &[], None);
        assert_eq!(r.detection.recall, 0.0);
        assert!(r.to_json()["detection"]["median_latency_min"].is_null());
    }
}
