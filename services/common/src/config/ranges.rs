//! Range checks of the configuration, run after it is loaded: a value that
//! parses but cannot mean anything (`detector.alpha = 7.0`, zero partitions)
//! is refused with its key named, instead of silently changing behaviour.
//! Each section checks its own keys ([`CheckRanges`], beside its fields, in
//! its own crate); this runs them all, and holds the checks of the sections
//! that live here.

use selfheal_common_core::ranges::{CheckRanges, OutOfRange, Ranges};

use super::{Config, KafkaConfig, TopicsConfig};

impl CheckRanges for KafkaConfig {
    fn check_ranges(&self, r: &mut Ranges) {
        r.at_least_one("max_in_flight", self.max_in_flight);
    }
}

impl CheckRanges for TopicsConfig {
    fn check_ranges(&self, r: &mut Ranges) {
        r.at_least_one("partitions", self.partitions);
        // -1: the broker's default.
        if self.replication_factor != -1 {
            r.at_least_one("replication_factor", self.replication_factor);
        }
    }
}

/// Every out-of-range value of `c`, in key order of the sections.
pub(super) fn check(c: &Config) -> Vec<OutOfRange> {
    let mut r = Ranges::new();
    r.section("kafka", &c.kafka);
    r.section("topics", &c.topics);
    r.section("ingest", &c.ingest);
    r.section("detector", &c.detector);
    r.section("triage", &c.triage);
    r.section("fixer", &c.fixer);
    r.section("schema_registry", &c.schema_registry);
    r.finish()
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
