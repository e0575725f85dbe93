//! Typed configuration: defaults, then a TOML file, then `SELFHEAL__SECTION__KEY`
//! environment overrides.
//!
//! Every section denies unknown fields, and a rejected key is reported with its
//! full path (`kafka.bootstrapp`), because a typo in a 3 a.m. config change must
//! fail loudly instead of silently falling back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

mod ranges;
mod schema_registry;

pub use schema_registry::SchemaRegistryConfig;
/// The fixer's section lives in its own core crate, beside the policy that
/// reads it; re-exported so `selfheal_common::config::FixerConfig` keeps working.
/// The detector section lives in the detector core crate.
pub use selfheal_detector_core::config::{DetectorConfig, GoldenConfig};
pub use selfheal_fixer_core::config::{
    DispatchConfig, DispatcherKind, FixerConfig, FixerRule, FixerServiceConfig, KubernetesConfig,
    LatencySlo, NotifyConfig, RecoveryConfig, RollbackConfig, RollbackExecutorKind, Severity,
};
/// The ingest section lives in the ingest core crate.
pub use selfheal_ingest_core::config::{IngestConfig, PrometheusTrafficConfig, TenantConfig};
/// The triage section, likewise, lives in the triage core crate.
pub use selfheal_triage_core::config::{ClassOverride, TriageConfig};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Prefix of environment variables that override configuration keys.
///
/// `SELFHEAL__KAFKA__BOOTSTRAP=host:9092` sets `kafka.bootstrap`; nested keys use
/// further `__` separators; map keys keep their case after the section name
/// (`SELFHEAL__KAFKA__CLIENT__socket.timeout.ms=1000`).
pub const ENV_PREFIX: &str = "SELFHEAL__";

/// The whole selfheal configuration, shared by the four services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where Kafka is and how clients talk to it.
    pub kafka: KafkaConfig,
    /// Topic names and how topics are created.
    pub topics: TopicsConfig,
    /// HTTP listen addresses (health, readiness, metrics, and ingest's intake).
    pub http: HttpConfig,
    /// Settings of the ingest service.
    pub ingest: IngestConfig,
    /// Settings of the detector service.
    pub detector: DetectorConfig,
    /// Settings of the triage service.
    pub triage: TriageConfig,
    /// Settings of the fixer service.
    pub fixer: FixerConfig,
    /// The web console (`selfheal up`, `selfheal console`).
    pub console: ConsoleConfig,
    /// The optional Schema Registry wire format (off unless `url` is set).
    pub schema_registry: SchemaRegistryConfig,
}

/// The read-only web console: fleet, service and incident pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve it from `selfheal up` (`selfheal console` always serves it).
    pub enabled: bool,
    /// Listen address. It has no authentication and shows error text and
    /// diffs: keep it on loopback or behind an authenticating proxy.
    pub listen: SocketAddr,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8084)),
        }
    }
}

/// Kafka connection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers (`host:port,host:port`). Unset means "embedded": `selfheal up`
    /// starts librdkafka's in-process mock cluster; a single service refuses to start.
    pub bootstrap: Option<String>,
    /// Consumer group prefix; each service joins `<group_prefix>.<service>`.
    pub group_prefix: String,
    /// Maximum messages whose outputs are still awaiting Kafka acknowledgement per
    /// consumer before it stops fetching more (back-pressure).
    pub max_in_flight: usize,
    /// How long a produced message may wait for acknowledgement, in milliseconds,
    /// before the delivery is reported as failed (librdkafka `message.timeout.ms`).
    pub delivery_timeout_ms: u64,
    /// How long shutdown waits for the consumer to close, in milliseconds, before
    /// abandoning it (librdkafka can hang on close; rust-rdkafka issue #509).
    pub close_timeout_ms: u64,
    /// Free-form librdkafka properties applied to every client, verbatim
    /// (e.g. `"security.protocol" = "SASL_SSL"`). They win over selfheal's defaults.
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap: None,
            group_prefix: "selfheal".to_owned(),
            max_in_flight: 1000,
            delivery_timeout_ms: 30_000,
            close_timeout_ms: 10_000,
            client: BTreeMap::new(),
        }
    }
}

/// Topic names and creation settings. Defaults are the names in ARCHITECTURE.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsConfig {
    /// Raw JSON log lines from shippers (optional input of ingest).
    pub logs_raw: String,
    /// SignatureCount events (ingest → detector).
    pub signatures: String,
    /// Traffic events (ingest → detector).
    pub traffic: String,
    /// Deploy events (ingest → detector, triage, fixer).
    pub deploys: String,
    /// Build events (ingest → detector).
    pub builds: String,
    /// LatencyHistogram events (ingest → detector).
    pub latency: String,
    /// InstanceGauge events (ingest → detector).
    pub gauges: String,
    /// Regression events (detector → triage, fixer, other teams).
    pub regressions: String,
    /// Verdict events (triage → fixer, other teams).
    pub verdicts: String,
    /// Action events (fixer → other teams).
    pub actions: String,
    /// Dead letters: anything undecodable or rejected, with the reason.
    pub dlq: String,
    /// The detector's state changelog (compacted, keyed by service): what a
    /// restarted detector restores instead of re-reading the baseline days.
    pub detector_changelog: String,
    /// The detectors' fleet summaries (per-template counts, deploys and
    /// watermarks, keyed by instance), read by every detector instance so the
    /// fleet guard spans the services of all of them.
    pub detector_fleet: String,
    /// Create missing topics at start-up.
    pub create: bool,
    /// Partitions of created topics. Keys are service names, so this bounds how many
    /// instances of a service share the load.
    pub partitions: i32,
    /// Replication factor of created topics; `-1` uses the broker's default.
    pub replication_factor: i32,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            logs_raw: "selfheal.logs.raw".to_owned(),
            signatures: "selfheal.signatures".to_owned(),
            traffic: "selfheal.traffic".to_owned(),
            deploys: "selfheal.deploys".to_owned(),
            builds: "selfheal.builds".to_owned(),
            latency: "selfheal.latency".to_owned(),
            gauges: "selfheal.gauges".to_owned(),
            regressions: "selfheal.regressions".to_owned(),
            verdicts: "selfheal.verdicts".to_owned(),
            actions: "selfheal.actions".to_owned(),
            dlq: "selfheal.dlq".to_owned(),
            detector_changelog: "selfheal.detector.changelog".to_owned(),
            detector_fleet: "selfheal.detector.fleet".to_owned(),
            create: true,
            partitions: 6,
            replication_factor: -1,
        }
    }
}

impl TopicsConfig {
    /// Every topic name, in a fixed order.
    pub fn all(&self) -> [&str; 13] {
        [
            &self.logs_raw,
            &self.signatures,
            &self.traffic,
            &self.deploys,
            &self.builds,
            &self.latency,
            &self.gauges,
            &self.regressions,
            &self.verdicts,
            &self.actions,
            &self.dlq,
            &self.detector_changelog,
            &self.detector_fleet,
        ]
    }

    /// The detector's input topics: signature counts, traffic, deploys,
    /// builds, latency histograms and gauges.
    pub fn detector_inputs(&self) -> [&str; 6] {
        [
            &self.signatures,
            &self.traffic,
            &self.deploys,
            &self.builds,
            &self.latency,
            &self.gauges,
        ]
    }

    /// The same topics with `suffix` appended to every name (isolated test runs,
    /// backtests replaying into separate topics).
    pub fn with_suffix(&self, suffix: &str) -> Self {
        let s = |t: &String| format!("{t}{suffix}");
        Self {
            logs_raw: s(&self.logs_raw),
            signatures: s(&self.signatures),
            traffic: s(&self.traffic),
            deploys: s(&self.deploys),
            builds: s(&self.builds),
            latency: s(&self.latency),
            gauges: s(&self.gauges),
            regressions: s(&self.regressions),
            verdicts: s(&self.verdicts),
            actions: s(&self.actions),
            dlq: s(&self.dlq),
            detector_changelog: s(&self.detector_changelog),
            detector_fleet: s(&self.detector_fleet),
            ..self.clone()
        }
    }
}

/// HTTP listen addresses, one per service so all four can run in one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Ingest: intake (OTLP `/v1/logs`, NDJSON `/v1/ndjson/logs` …) plus
    /// health and metrics. Default `127.0.0.1:4318`, the OTLP/HTTP port, so
    /// an OpenTelemetry exporter's default endpoint reaches it.
    pub ingest: SocketAddr,
    /// Detector: health and metrics.
    pub detector: SocketAddr,
    /// Triage: health and metrics.
    pub triage: SocketAddr,
    /// Fixer: health and metrics.
    pub fixer: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            ingest: addr(4318),
            detector: addr(8081),
            triage: addr(8082),
            fixer: addr(8083),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if any), then `SELFHEAL__…` variables from the
    /// process environment.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let mut tree = toml::Value::try_from(Config::default()).map_err(|e| Error::Config {
            source_name: "defaults".to_owned(),
            message: e.to_string(),
        })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
                source_name: path.display().to_string(),
                message: format!("cannot read: {e}"),
            })?;
            let from_file: toml::Value = toml::from_str(&text).map_err(|e| Error::Config {
                source_name: path.display().to_string(),
                message: e.to_string(),
            })?;
            merge(&mut tree, from_file);
        }
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        overrides.sort();
        for (key, value) in &overrides {
            apply_env(&mut tree, key, value)?;
        }
        // Which source set a key: the variable that overrode it, else the file.
        let source_of = |key: &str| -> String {
            overrides
                .iter()
                .find(|(var, _)| env_path(var).join(".") == key)
                .map(|(var, _)| format!("environment variable {var}"))
                .or_else(|| file.map(|p| p.display().to_string()))
                .unwrap_or_else(|| "environment".to_owned())
        };
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            Error::Config {
                source_name: source_of(&key),
                message: format!("at `{key}`: {}", e.inner()),
            }
        })?;
        let refused = ranges::check(&config);
        if let Some(first) = refused.first() {
            let all: Vec<String> = refused
                .iter()
                .map(|r| format!("`{}` {}", r.key, r.message))
                .collect();
            return Err(Error::Config {
                source_name: source_of(&first.key),
                message: all.join("; "),
            });
        }
        Ok(config)
    }
}

/// Deep-merges `overlay` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (k, v) in overlay {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The key path a `SELFHEAL__A__B` variable sets (`["a", "b"]`).
fn env_path(var: &str) -> Vec<String> {
    var[ENV_PREFIX.len()..]
        .split("__")
        .enumerate()
        // Sections and fields are snake_case; keys of free-form maps (librdkafka
        // properties, the third level and below) keep their spelling.
        .map(|(i, p)| {
            if i < 2 {
                p.to_lowercase()
            } else {
                p.to_owned()
            }
        })
        .collect()
}

/// Applies one `SELFHEAL__A__B=value` override. The value is read as a TOML value
/// when it parses as one (numbers, booleans, arrays), else as a plain string.
fn apply_env(tree: &mut toml::Value, key: &str, value: &str) -> Result<()> {
    let path = env_path(key);
    if path.iter().any(String::is_empty) {
        return Err(Error::Config {
            source_name: key.to_owned(),
            message: "empty key segment in environment override".to_owned(),
        });
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let mut node = tree;
    for (i, segment) in path.iter().enumerate() {
        let table = node.as_table_mut().ok_or_else(|| Error::Config {
            source_name: key.to_owned(),
            message: format!("`{}` is not a table", path[..i].join(".")),
        })?;
        if i + 1 == path.len() {
            // Keep strings as strings where the default is a string (e.g. a
            // bootstrap of `9092` or a topic named `true`).
            // The free-form librdkafka map takes strings only.
            let free_form = path.len() == 3 && path[0] == "kafka" && path[1] == "client";
            let value = match (table.get(segment), parsed) {
                (Some(toml::Value::String(_)), v) if !v.is_str() => {
                    toml::Value::String(value.to_owned())
                }
                (_, v) if free_form && !v.is_str() => toml::Value::String(value.to_owned()),
                (_, v) => v,
            };
            table.insert(segment.clone(), value);
            return Ok(());
        }
        node = table
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_architecture_topic_names() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.topics.signatures, "selfheal.signatures");
        assert_eq!(c.topics.dlq, "selfheal.dlq");
        assert_eq!(c.kafka.bootstrap, None);
        assert!(c.fixer.dry_run);
    }

    #[test]
    fn file_then_env_overrides() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "[kafka]\nbootstrap = \"a:1\"\n[topics]\npartitions = 12\n[kafka.client]\n\"socket.timeout.ms\" = \"5000\""
        )
        .unwrap();
        let c = Config::load_from(
            Some(f.path()),
            env(&[
                ("SELFHEAL__KAFKA__BOOTSTRAP", "b:2"),
                ("SELFHEAL__DETECTOR__NEW_SIGNATURE_MIN_COUNT", "7"),
                ("SELFHEAL__KAFKA__CLIENT__client.id", "x"),
                ("SELFHEAL__KAFKA__CLIENT__session.timeout.ms", "6000"),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.bootstrap.as_deref(), Some("b:2"));
        assert_eq!(c.topics.partitions, 12);
        assert_eq!(c.detector.new_signature_min_count, 7);
        assert_eq!(c.kafka.client["socket.timeout.ms"], "5000");
        assert_eq!(c.kafka.client["client.id"], "x");
        assert_eq!(c.kafka.client["session.timeout.ms"], "6000");
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[kafka]\nbootstrapp = \"a:1\"").unwrap();
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("kafka.bootstrapp"), "{msg}");
    }

    #[test]
    fn unknown_key_in_env_is_named() {
        let err = Config::load_from(None, env(&[("SELFHEAL__FIXER__DRYRUN", "false")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fixer.dryrun"), "{err}");
    }

    #[test]
    fn a_mistyped_variable_is_named() {
        let err = Config::load_from(None, env(&[("SELFHEAL__KAFKA__BOOTSTRAPP", "x:1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SELFHEAL__KAFKA__BOOTSTRAPP"), "{err}");
        assert!(err.contains("kafka.bootstrapp"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused_with_key_and_source() {
        let err = Config::load_from(None, env(&[("SELFHEAL__DETECTOR__ALPHA", "7.0")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`detector.alpha` must be between 0 and 1"),
            "{err}"
        );
        assert!(err.contains("SELFHEAL__DETECTOR__ALPHA"), "{err}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[topics]\npartitions = 0").unwrap();
        let err = Config::load_from(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`topics.partitions` must be at least 1"),
            "{err}"
        );
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::load_from(None, env(&[("SELFHEAL__TOPICS__PARTITIONS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("topics.partitions"), "{err}");
    }

    #[test]
    fn the_schema_registry_is_off_unless_its_url_is_set() {
        assert_eq!(Config::default().schema_registry.url, None);
        let url = "http://127.0.0.1:8085/apis/ccompat/v7";
        let c = Config::load_from(None, env(&[("SELFHEAL__SCHEMA_REGISTRY__URL", url)])).unwrap();
        assert_eq!(c.schema_registry.url.as_deref(), Some(url));
        let err = Config::load_from(None, env(&[("SELFHEAL__SCHEMA_REGISTRY__URL", "r:8081")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`schema_registry.url` must start with http://"),
            "{err}"
        );
        assert!(err.contains("SELFHEAL__SCHEMA_REGISTRY__URL"), "{err}");
    }

    #[test]
    fn numeric_looking_string_stays_a_string() {
        let c = Config::load_from(None, env(&[("SELFHEAL__TOPICS__DLQ", "42")])).unwrap();
        assert_eq!(c.topics.dlq, "42");
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    /// The documented example file lists every key with its default: it must
    /// parse, and must equal the defaults, so it cannot drift from the code.
    #[test]
    fn example_config_is_complete_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/selfheal.example.toml");
        let loaded = Config::load_from(Some(&path), Vec::new()).unwrap();
        assert_eq!(loaded, Config::default());
        let file: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        assert_keys_present(&defaults, &file, "");
    }

    fn assert_keys_present(defaults: &toml::Value, file: &toml::Value, at: &str) {
        let (Some(d), Some(f)) = (defaults.as_table(), file.as_table()) else {
            return;
        };
        for (k, v) in d {
            let path = format!("{at}{k}");
            let sub = f
                .get(k)
                .unwrap_or_else(|| panic!("example config lacks `{path}`"));
            assert_keys_present(v, sub, &format!("{path}."));
        }
    }
}
