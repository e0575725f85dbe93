//! Range checks of the configuration, run after it is loaded: a value that
//! parses but cannot mean anything (`detector.alpha = 7.0`, zero partitions)
//! is refused with its key named, instead of silently changing behaviour.

use super::Config;

/// One refused value: the key and why.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OutOfRange {
    /// The dotted key (`detector.alpha`).
    pub(super) key: String,
    /// What the value must be, and what it is.
    pub(super) message: String,
}

fn open_unit(out: &mut Vec<OutOfRange>, key: &str, v: f64) {
    if !(v > 0.0 && v < 1.0) {
        out.push(OutOfRange {
            key: key.to_owned(),
            message: format!("must be between 0 and 1, exclusive (is {v})"),
        });
    }
}

fn closed_unit(out: &mut Vec<OutOfRange>, key: &str, v: f64) {
    if !(0.0..=1.0).contains(&v) {
        out.push(OutOfRange {
            key: key.to_owned(),
            message: format!("must be between 0 and 1 (is {v})"),
        });
    }
}

fn non_negative(out: &mut Vec<OutOfRange>, key: &str, v: f64) {
    if !(v >= 0.0 && v.is_finite()) {
        out.push(OutOfRange {
            key: key.to_owned(),
            message: format!("must be a finite number ≥ 0 (is {v})"),
        });
    }
}

fn at_least_one(out: &mut Vec<OutOfRange>, key: &str, v: i64) {
    if v < 1 {
        out.push(OutOfRange {
            key: key.to_owned(),
            message: format!("must be at least 1 (is {v})"),
        });
    }
}

fn count(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Every out-of-range value of `c`, in key order of the sections.
pub(super) fn check(c: &Config) -> Vec<OutOfRange> {
    let mut out = Vec::new();
    let o = &mut out;
    at_least_one(o, "kafka.max_in_flight", count(c.kafka.max_in_flight));
    at_least_one(o, "topics.partitions", c.topics.partitions.into());
    if c.topics.replication_factor != -1 {
        at_least_one(
            o,
            "topics.replication_factor",
            c.topics.replication_factor.into(),
        );
    }
    at_least_one(o, "ingest.max_body_bytes", count(c.ingest.max_body_bytes));
    at_least_one(o, "ingest.max_connections", count(c.ingest.max_connections));
    non_negative(
        o,
        "ingest.grouping_similarity",
        c.ingest.grouping_similarity,
    );
    let d = &c.detector;
    open_unit(o, "detector.alpha", d.alpha);
    at_least_one(o, "detector.window_minutes", d.window_minutes.into());
    at_least_one(
        o,
        "detector.golden.window_minutes",
        d.golden.window_minutes.into(),
    );
    non_negative(o, "detector.min_rate_ratio", d.min_rate_ratio);
    let t = &c.triage;
    closed_unit(o, "triage.caused_threshold", t.caused_threshold);
    closed_unit(o, "triage.recency_decay", t.recency_decay);
    let f = &c.fixer;
    open_unit(o, "fixer.default_slo", f.default_slo);
    non_negative(o, "fixer.fast_burn_rate", f.fast_burn_rate);
    non_negative(o, "fixer.slow_burn_rate", f.slow_burn_rate);
    non_negative(o, "fixer.recovery.tolerance", f.recovery.tolerance);
    for (i, rule) in f.rules.iter().enumerate() {
        if let Some(m) = rule.min_confidence {
            closed_unit(o, &format!("fixer.rules[{i}].min_confidence"), m);
        }
    }
    for (name, s) in &f.services {
        if let Some(slo) = s.slo {
            open_unit(o, &format!("fixer.services.{name}.slo"), slo);
        }
    }
    super::schema_registry::check(&c.schema_registry, o);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_in_range() {
        assert_eq!(check(&Config::default()), vec![]);
    }

    #[test]
    fn every_bad_value_is_named() {
        let mut c = Config::default();
        c.detector.alpha = 7.0;
        c.topics.partitions = 0;
        c.fixer.default_slo = 1.0;
        c.detector.min_rate_ratio = f64::NAN;
        let keys: Vec<String> = check(&c).into_iter().map(|e| e.key).collect();
        assert_eq!(
            keys,
            [
                "topics.partitions",
                "detector.alpha",
                "detector.min_rate_ratio",
                "fixer.default_slo"
            ]
        );
        let alpha = check(&c)
            .into_iter()
            .find(|e| e.key == "detector.alpha")
            .unwrap();
        assert!(alpha.message.contains("is 7"), "{alpha:?}");
    }
}
