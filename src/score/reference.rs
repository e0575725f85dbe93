//! The simple reference for golden signals, computed from the *input*
//! history (not from selfheal's output): for every deploy, the new
//! revision's p99 latency (histogram buckets merged across routes over
//! `[deploy, deploy + 1 h)`, linear interpolation within the bucket) and 5xx
//! rate (errors / requests over the same hour), against the same service's
//! same hour (the window shifted by 1..=7 days, merged, all revisions).
//! Flags `latency` when the p99 ratio exceeds 1.5 and `error_rate` when the
//! 5xx ratio does (a baseline of zero 5xx and any new one counts as above).
//! It needs the whole hour, so it detects at deploy + 60 min. One streaming
//! pass over the file: only traffic and histogram lines are parsed.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::golden::{score_kind, Flags, ReferenceScore};
use crate::simulate::Truth;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// Flagged above this ratio.
const FACTOR: f64 = 1.5;
/// Quantile compared.
const Q: f64 = 0.99;

/// What one window accumulated.
#[derive(Debug, Clone, Default)]
struct Acc {
    /// Bucket upper bound (bits of a positive f64; +inf for the overflow)
    /// → count. Bits of positive floats sort as the floats do.
    buckets: BTreeMap<u64, u64>,
    /// Requests of traffic records that carry `errors`, and those errors.
    requests: u64,
    errors: u64,
}

impl Acc {
    fn add_histogram(&mut self, bounds: &[f64], counts: &[u64]) {
        if counts.len() != bounds.len() + 1 {
            return;
        }
        for (i, c) in counts.iter().enumerate() {
            let ub = bounds.get(i).copied().unwrap_or(f64::INFINITY);
            if ub > 0.0 {
                *self.buckets.entry(ub.to_bits()).or_default() += c;
            }
        }
    }

    /// The `q` quantile by linear interpolation within its bucket (the
    /// overflow bucket gives its lower bound, as Prometheus does).
    fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.values().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let (mut lower, mut cum) = (0.0, 0u64);
        for (&bits, &c) in &self.buckets {
            let upper = f64::from_bits(bits);
            if c > 0 && (cum + c) as f64 >= rank {
                if upper.is_infinite() {
                    return Some(lower);
                }
                let f = (rank - cum as f64) / c as f64;
                return Some(lower + (upper - lower) * f);
            }
            cum += c;
            lower = upper;
        }
        Some(lower)
    }

    fn rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

/// `ts` as epoch ms, RFC 3339, or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Ts<'a> {
    Ms(i64),
    Float(f64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl Ts<'_> {
    fn ms(&self) -> Option<i64> {
        match self {
            Ts::Ms(x) => Some(*x),
            Ts::Float(x) => Some(*x as i64),
            Ts::Text(s) => {
                let t =
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .ok()?;
                Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
            }
        }
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    ts: Ts<'a>,
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(default, borrow)]
    revision: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    metric: Option<Cow<'a, str>>,
    #[serde(default)]
    requests: Option<u64>,
    #[serde(default)]
    errors: Option<u64>,
    #[serde(default)]
    bounds: Option<Vec<f64>>,
    #[serde(default)]
    counts: Option<Vec<u64>>,
}

/// An hour of one service: `[lo, hi)`, only `revision` when given, adding
/// into accumulator `acc`.
struct Window {
    lo: i64,
    hi: i64,
    revision: Option<String>,
    acc: usize,
}

/// (service, minute) → the hours covering it.
type Index = HashMap<(String, i64), Vec<usize>>;

/// Per deploy `i`, accumulator `2i` (the new revision's hour) and `2i + 1`
/// (the seven baseline hours, merged); the hours, and an index
/// (service, minute) → hours.
fn windows(truth: &[Truth]) -> (Vec<Window>, Index) {
    let mut wins = Vec::new();
    let mut index = Index::new();
    for (i, t) in truth.iter().enumerate() {
        let at = t.deployed_at_ms;
        let new = (at, Some(t.revision.clone()), 2 * i);
        let baselines = (1..=7).map(|k| (at - k * DAY, None, 2 * i + 1));
        for (lo, revision, acc) in std::iter::once(new).chain(baselines) {
            for m in lo.div_euclid(MIN)..=(lo + HOUR - 1).div_euclid(MIN) {
                index
                    .entry((t.service.clone(), m))
                    .or_default()
                    .push(wins.len());
            }
            wins.push(Window {
                lo,
                hi: lo + HOUR,
                revision,
                acc,
            });
        }
    }
    (wins, index)
}

/// Reads `input` once and accumulates every deploy's windows.
fn accumulate(truth: &[Truth], input: &Path) -> anyhow::Result<Vec<Acc>> {
    let (wins, index) = windows(truth);
    let mut accs = vec![Acc::default(); 2 * truth.len()];
    let f = std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let mut key = (String::new(), 0i64);
    for line in std::io::BufReader::with_capacity(1 << 20, f).lines() {
        let line = line.with_context(|| format!("reading {}", input.display()))?;
        // Cheap filter before parsing: deploys and logs are most of the bytes.
        if !(line.contains("\"traffic\"") || line.contains("\"histogram\"")) {
            continue;
        }
        let Ok(r) = serde_json::from_str::<Line<'_>>(&line) else {
            continue;
        };
        let Some(ts) = r.ts.ms() else { continue };
        key.0.clear();
        key.0.push_str(&r.service);
        key.1 = ts.div_euclid(MIN);
        let Some(ids) = index.get(&key) else { continue };
        for w in ids.iter().map(|&i| &wins[i]) {
            let rev_ok = match (&w.revision, &r.revision) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            };
            if ts < w.lo || ts >= w.hi || !rev_ok {
                continue;
            }
            let a = &mut accs[w.acc];
            match r.ty.as_ref() {
                "traffic" => {
                    if let (Some(req), Some(err)) = (r.requests, r.errors) {
                        a.requests += req;
                        a.errors += err;
                    }
                }
                "histogram" => {
                    let duration = r
                        .metric
                        .as_deref()
                        .is_none_or(|m| m == "http.server.request.duration");
                    if let (true, Some(b), Some(c)) = (duration, &r.bounds, &r.counts) {
                        a.add_histogram(b, c);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(accs)
}

/// Whether `new` is above [`FACTOR`] × `base` (a zero base: any new > 0).
fn above(new: Option<f64>, base: Option<f64>) -> bool {
    match (new, base) {
        (Some(n), Some(b)) if b > 0.0 => n / b > FACTOR,
        (Some(n), Some(_)) => n > 0.0,
        _ => false,
    }
}

/// The reference's flags per kind and the deploys it could not judge.
fn flags(truth: &[Truth], accs: &[Acc]) -> (Flags, Flags, usize) {
    let (mut latency, mut errors, mut without) = (Flags::new(), Flags::new(), 0);
    for (i, t) in truth.iter().enumerate() {
        let (new, base) = (&accs[2 * i], &accs[2 * i + 1]);
        if base.buckets.is_empty() && base.requests == 0 {
            without += 1;
            continue;
        }
        let key = (t.service.clone(), t.revision.clone());
        let at = t.deployed_at_ms + HOUR;
        if above(new.quantile(Q), base.quantile(Q)) {
            latency.insert(key.clone(), at);
        }
        if above(new.rate(), base.rate()) {
            errors.insert(key, at);
        }
    }
    (latency, errors, without)
}

/// Scores the reference on `input` against `truth`.
pub(crate) fn score(truth: &[Truth], input: &Path) -> anyhow::Result<ReferenceScore> {
    let accs = accumulate(truth, input)?;
    let (latency, errors, without) = flags(truth, &accs);
    Ok(ReferenceScore {
        latency: score_kind(truth, "latency", &latency),
        error_rate: score_kind(truth, "error_rate", &errors),
        saturation: None,
        deploys_without_baseline: without,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_interpolates_within_the_bucket_and_overflow_gives_the_last_bound() {
        let mut a = Acc::default();
        a.add_histogram(&[0.1, 0.2, 0.5], &[50, 40, 10, 0]);
        // rank 99 of 100: 9 of the 10 in (0.2, 0.5].
        assert!((a.quantile(0.99).unwrap() - 0.47).abs() < 1e-9);
        assert!((a.quantile(0.5).unwrap() - 0.1).abs() < 1e-9);
        a.add_histogram(&[0.1, 0.2, 0.5], &[0, 0, 0, 100]);
        assert_eq!(a.quantile(0.99), Some(0.5));
        // Wrong length: ignored.
        a.add_histogram(&[0.1], &[1]);
        assert_eq!(a.buckets.values().sum::<u64>(), 200);
        assert_eq!(Acc::default().quantile(0.99), None);
    }

    #[test]
    fn flags_against_the_same_hour_of_previous_days() {
        let day0 = 10 * DAY;
        let deploy = |service: &str, signals: &[&str]| Truth {
            service: service.into(),
            revision: "new".into(),
            deployed_at_ms: day0 + 30_000,
            label: if signals.is_empty() {
                "clean"
            } else {
                "culprit_latency"
            }
            .into(),
            signals: signals.iter().map(|s| (*s).to_owned()).collect(),
            ..Truth::default()
        };
        let truth = vec![
            deploy("slow", &["latency"]),
            deploy("fail", &["error_rate"]),
            deploy("calm", &[]),
            deploy("fresh", &[]),
        ];
        let hist = |ts: i64, svc: &str, rev: &str, slow: u64| {
            format!(
                r#"{{"type":"histogram","ts":{ts},"service":"{svc}","revision":"{rev}","metric":"http.server.request.duration","bounds":[0.1,0.2,0.5],"counts":[90,{},{slow},0],"attributes":{{"http.route":"/a"}}}}"#,
                10 - slow.min(10)
            )
        };
        let traffic = |ts: i64, svc: &str, rev: &str, errors: u64| {
            format!(
                r#"{{"type":"traffic","ts":"{}","service":"{svc}","revision":"{rev}","requests":1000,"errors":{errors},"window_s":60}}"#,
                time::OffsetDateTime::from_unix_timestamp(ts / 1000)
                    .unwrap()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            )
        };
        let mut lines = vec![r#"{"type":"deploy","ts":1,"service":"slow","diff":"x"}"#.to_owned()];
        for svc in ["slow", "fail", "calm"] {
            for k in 1..=7 {
                for m in 1..=60 {
                    let ts = day0 - k * DAY + m * MIN;
                    lines.push(hist(ts, svc, "old", 0));
                    lines.push(traffic(ts, svc, "old", 2));
                }
            }
        }
        for m in 1..=60 {
            let ts = day0 + m * MIN;
            lines.push(hist(ts, "slow", "new", 5));
            lines.push(hist(ts, "calm", "new", 0));
            lines.push(traffic(ts, "fail", "new", 10));
            lines.push(traffic(ts, "calm", "new", 2));
            // The old revision's records in the same hour are not the new one's.
            lines.push(hist(ts, "calm", "old", 10));
            lines.push(traffic(ts, "fresh", "new", 50));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.ndjson");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let r = score(&truth, &path).unwrap();
        assert_eq!(r.deploys_without_baseline, 1);
        assert_eq!(
            (
                r.latency.true_positives,
                r.latency.false_positives,
                r.latency.false_negatives
            ),
            (1, 0, 0)
        );
        assert_eq!(r.latency.median_latency_min, Some(60.0));
        assert_eq!(
            (r.error_rate.true_positives, r.error_rate.false_positives),
            (1, 0)
        );
        assert!(r.saturation.is_none());
    }
}
