//! Per-kind scoring of golden-signal detections (`latency`, `error_rate`,
//! `saturation`), for selfheal's regressions and for the simple reference
//! ([`super::reference`]) side by side.
//!
//! For each kind K, a deploy is *flagged for K* when a method reports K for
//! its (service, revision) (for selfheal: a regression of kind K not marked
//! `externally_correlated`). TP: flagged and K in the truth's `signals`; FP:
//! flagged and K not in them; FN: K in them and not flagged. Detection
//! latency: first detection minus the deploy, in minutes, over TPs. The
//! log-signature kinds (`new`, `spike`) are not counted here.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ratio, RegressionRow};
use crate::simulate::Truth;

/// The golden-signal kinds, in table order.
pub(crate) const KINDS: [&str; 3] = ["latency", "error_rate", "saturation"];

/// First detection time (epoch ms) per (service, revision).
pub(crate) type Flags = BTreeMap<(String, String), i64>;

/// One method's score for one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct KindScore {
    /// Deploys whose truth lists the kind.
    pub(crate) positives: usize,
    /// Deploys flagged for the kind.
    pub(crate) flagged: usize,
    pub(crate) true_positives: usize,
    pub(crate) false_positives: usize,
    pub(crate) false_negatives: usize,
    /// Of those false positives, clean deploys (the rest are culprits of
    /// another kind).
    pub(crate) false_positives_clean: usize,
    /// TP / flagged (1 when nothing is flagged).
    pub(crate) precision: f64,
    /// TP / positives (1 when there are none).
    pub(crate) recall: f64,
    /// Median minutes from deploy to first detection over TPs (null: none).
    pub(crate) median_latency_min: Option<f64>,
    /// 90th percentile of the same.
    pub(crate) p90_latency_min: Option<f64>,
}

/// Scores `flags` for `kind` against `truth`.
pub(crate) fn score_kind(truth: &[Truth], kind: &str, flags: &Flags) -> KindScore {
    let mut s = KindScore {
        positives: 0,
        flagged: 0,
        true_positives: 0,
        false_positives: 0,
        false_negatives: 0,
        false_positives_clean: 0,
        precision: 1.0,
        recall: 1.0,
        median_latency_min: None,
        p90_latency_min: None,
    };
    let mut lat = Vec::new();
    for t in truth {
        let positive = t.signals.iter().any(|x| x == kind);
        let first = flags.get(&(t.service.clone(), t.revision.clone()));
        s.positives += usize::from(positive);
        match (first, positive) {
            (Some(at), true) => {
                s.true_positives += 1;
                lat.push((at - t.deployed_at_ms) as f64 / 60_000.0);
            }
            (Some(_), false) => {
                s.false_positives += 1;
                s.false_positives_clean += usize::from(t.label == "clean");
            }
            (None, true) => s.false_negatives += 1,
            (None, false) => {}
        }
    }
    s.flagged = s.true_positives + s.false_positives;
    s.precision = ratio(s.true_positives, s.flagged);
    s.recall = ratio(s.true_positives, s.positives);
    lat.sort_by(f64::total_cmp);
    let n = lat.len();
    if n > 0 {
        s.median_latency_min = Some(lat[n / 2]);
        s.p90_latency_min = Some(lat[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1]);
    }
    s
}

/// selfheal's flags for `kind`: regressions of that kind not marked
/// externally correlated, first detection per deploy.
pub(crate) fn selfheal_flags(regressions: &[RegressionRow], kind: &str) -> Flags {
    let mut f = Flags::new();
    for r in regressions
        .iter()
        .filter(|r| r.kind == kind && !r.externally_correlated)
    {
        let e = f
            .entry((r.service.clone(), r.revision.clone()))
            .or_insert(r.detected_at_ms);
        *e = (*e).min(r.detected_at_ms);
    }
    f
}

/// Whether the truth comes from the golden profile (golden labels or
/// signals), so the section is only printed there.
pub(crate) fn is_golden(truth: &[Truth]) -> bool {
    truth.iter().any(|t| {
        !t.signals.is_empty()
            || matches!(
                t.label.as_str(),
                "culprit_latency" | "culprit_error_rate" | "culprit_saturation"
            )
    })
}

/// The reference's scores (no saturation: it does not look at it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ReferenceScore {
    pub(crate) latency: KindScore,
    pub(crate) error_rate: KindScore,
    /// Always null: the reference has no saturation rule.
    pub(crate) saturation: Option<KindScore>,
    /// Deploys with no data in the baseline hours (never flagged).
    pub(crate) deploys_without_baseline: usize,
}

/// The golden section of the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Golden {
    /// selfheal's score per kind.
    pub(crate) selfheal: BTreeMap<String, KindScore>,
    /// The reference's, when the input was read (`backtest --truth`).
    pub(crate) reference: Option<ReferenceScore>,
}

impl Golden {
    /// The section, or `None` when the truth has no golden labels.
    pub(crate) fn score(truth: &[Truth], regressions: &[RegressionRow]) -> Option<Golden> {
        is_golden(truth).then(|| Golden {
            selfheal: KINDS
                .iter()
                .map(|k| {
                    let flags = selfheal_flags(regressions, k);
                    ((*k).to_owned(), score_kind(truth, k, &flags))
                })
                .collect(),
            reference: None,
        })
    }

    /// Readable rows, selfheal and the reference side by side.
    pub(crate) fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let lat = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"));
        let _ = writeln!(
            s,
            "golden signals (per deploy and kind; reference: p99 / 5xx rate in the hour after vs the same hour of the previous 7 days, >1.5×)"
        );
        let _ = writeln!(
            s,
            "  kind        method     positives flagged  TP  FP (clean)  FN  precision recall  median_min  p90_min"
        );
        for k in KINDS {
            let reference = self.reference.as_ref().map(|r| match k {
                "latency" => Some(&r.latency),
                "error_rate" => Some(&r.error_rate),
                _ => r.saturation.as_ref(),
            });
            for (name, d) in [
                ("selfheal", Some(self.selfheal.get(k))),
                ("reference", reference),
            ] {
                match d {
                    Some(Some(d)) => {
                        let _ = writeln!(
                            s,
                            "  {k:<11} {name:<10} {:>9} {:>7} {:>3} {:>3} {:>7} {:>3}  {:>9.3} {:>6.3}  {:>10} {:>8}",
                            d.positives,
                            d.flagged,
                            d.true_positives,
                            d.false_positives,
                            format!("({})", d.false_positives_clean),
                            d.false_negatives,
                            d.precision,
                            d.recall,
                            lat(d.median_latency_min),
                            lat(d.p90_latency_min)
                        );
                    }
                    Some(None) => {
                        let _ = writeln!(s, "  {k:<11} {name:<10} n/a (no rule for this kind)");
                    }
                    None => {}
                }
            }
        }
        if let Some(r) = &self.reference {
            let _ = writeln!(
                s,
                "  reference: {} deploys without baseline data (never flagged); its latency is 60 min by construction",
                r.deploys_without_baseline
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(service: &str, label: &str, signals: &[&str], at: i64) -> Truth {
        Truth {
            service: service.into(),
            revision: "r2".into(),
            deployed_at_ms: at,
            label: label.into(),
            signals: signals.iter().map(|s| (*s).to_owned()).collect(),
            ..Truth::default()
        }
    }

    fn rows(lines: &[&str]) -> Vec<RegressionRow> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn per_kind_tp_fp_fn_and_latencies() {
        let t = vec![
            truth("a", "culprit_latency", &["latency"], 0),
            truth("b", "culprit_saturation", &["saturation", "error_rate"], 0),
            truth("c", "clean", &[], 0),
            truth("d", "culprit_latency", &["latency"], 60_000),
            truth("e", "culprit_error_rate", &["error_rate"], 0),
        ];
        let regs = rows(&[
            // a: latency at 3 and 1 min (first counts), plus a log spike (ignored here).
            r#"{"service":"a","revision":"r2","kind":"latency","detected_at_ms":180000,"metric":"http.server.request.duration","quantile":0.99,"route":"/q"}"#,
            r#"{"service":"a","revision":"r2","kind":"latency","detected_at_ms":60000}"#,
            r#"{"service":"a","revision":"r2","kind":"spike","detected_at_ms":30000}"#,
            // b: saturation found, its 5xx side effect missed.
            r#"{"service":"b","revision":"r2","kind":"saturation","detected_at_ms":1200000}"#,
            // c: a clean deploy flagged for latency; an external one does not count.
            r#"{"service":"c","revision":"r2","kind":"latency","detected_at_ms":60000}"#,
            r#"{"service":"c","revision":"r2","kind":"error_rate","detected_at_ms":60000,"externally_correlated":true}"#,
            // d: flagged for error_rate although it is a latency culprit.
            r#"{"service":"d","revision":"r2","kind":"error_rate","detected_at_ms":120000}"#,
        ]);
        let g = Golden::score(&t, &regs).expect("golden truth");
        let l = &g.selfheal["latency"];
        assert_eq!(
            (
                l.positives,
                l.flagged,
                l.true_positives,
                l.false_positives,
                l.false_negatives
            ),
            (2, 2, 1, 1, 1)
        );
        assert_eq!(l.false_positives_clean, 1);
        assert_eq!((l.precision, l.recall), (0.5, 0.5));
        assert_eq!(l.median_latency_min, Some(1.0));
        let e = &g.selfheal["error_rate"];
        assert_eq!(
            (
                e.positives,
                e.true_positives,
                e.false_positives,
                e.false_negatives
            ),
            (2, 0, 1, 2)
        );
        assert_eq!((e.false_positives_clean, e.recall), (0, 0.0));
        assert_eq!(e.median_latency_min, None);
        let s = &g.selfheal["saturation"];
        assert_eq!((s.true_positives, s.precision, s.recall), (1, 1.0, 1.0));
        assert_eq!(s.p90_latency_min, Some(20.0));
        assert!(g.table().contains("saturation  selfheal"));
    }

    #[test]
    fn other_profiles_have_no_golden_section() {
        let t = vec![
            truth("a", "culprit_new", &[], 0),
            truth("b", "clean", &[], 0),
        ];
        assert!(Golden::score(&t, &[]).is_none());
    }
}
