//! `[schema_registry]`: the optional Schema Registry wire format.

use serde::{Deserialize, Serialize};

use selfheal_common_core::ranges::{CheckRanges, Ranges};

/// Where the Schema Registry is. With `url` set, selfheal registers each
/// topic's value schema (subject `<topic>-value`) at start-up, checks it is
/// compatible, and frames everything it produces as the registry expects
/// (magic byte `00`, 4-byte big-endian schema id, Avro datum). Unset (the
/// default): Avro single-object encoding. Consumers read both framings either
/// way; resolving an id they have not seen needs `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the Confluent-compatible REST API, e.g.
    /// `http://127.0.0.1:8085/apis/ccompat/v7` (Apicurio) or
    /// `http://registry:8081` (Confluent). `SELFHEAL__SCHEMA_REGISTRY__URL`.
    /// `http` only: this build's HTTP client has no TLS.
    pub url: Option<String>,
    /// Basic-auth user name (Confluent Cloud: the API key).
    pub username: Option<String>,
    /// Basic-auth password (Confluent Cloud: the API secret); prefer
    /// `SELFHEAL__SCHEMA_REGISTRY__PASSWORD` to a file.
    pub password: Option<String>,
    /// Timeout of one registry request, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        Self {
            url: None,
            username: None,
            password: None,
            timeout_ms: 10_000,
        }
    }
}

/// Out-of-range values of the section: a URL that is not `http://host…`, a
/// password without a user name, a zero timeout.
impl CheckRanges for SchemaRegistryConfig {
    fn check_ranges(&self, r: &mut Ranges) {
        if let Some(message) = self.url.as_deref().and_then(url_problem) {
            r.refuse("url", message);
        }
        if self.password.is_some() && self.username.is_none() {
            r.refuse("username", "must be set when schema_registry.password is");
        }
        r.at_least_one("timeout_ms", self.timeout_ms);
    }
}

/// Why `url` is no usable registry URL, if it is not.
fn url_problem(url: &str) -> Option<String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Some(format!(
            "must start with http:// (is `{url}`; https needs a TLS-enabled build)"
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Some(format!("has no host (is `{url}`)"));
    }
    if url.contains(['?', '#']) {
        return Some(format!(
            "must be a base URL without query or fragment (is `{url}`)"
        ));
    }
    if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
        if port.parse::<u16>().is_err() {
            return Some(format!("has a bad port `{port}` (is `{url}`)"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(c: &SchemaRegistryConfig) -> Vec<(String, String)> {
        let mut r = Ranges::new();
        r.section("schema_registry", c);
        r.finish().into_iter().map(|o| (o.key, o.message)).collect()
    }

    #[test]
    fn off_by_default_and_good_urls_pass() {
        assert!(keys(&SchemaRegistryConfig::default()).is_empty());
        for url in [
            "http://127.0.0.1:8085/apis/ccompat/v7",
            "http://registry:8081",
            "http://[::1]:8081/",
        ] {
            let c = SchemaRegistryConfig {
                url: Some(url.to_owned()),
                ..Default::default()
            };
            assert!(keys(&c).is_empty(), "{url}: {:?}", keys(&c));
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        for (url, why) in [
            ("registry:8081", "must start with http://"),
            ("https://r:8081", "must start with http://"),
            ("http://", "has no host"),
            ("http://:8081/x", "has no host"),
            ("http://r:80x1", "bad port `80x1`"),
            ("http://r:8081/?a=1", "without query"),
        ] {
            let c = SchemaRegistryConfig {
                url: Some(url.to_owned()),
                ..Default::default()
            };
            let got = keys(&c);
            assert_eq!(got.len(), 1, "{url}: {got:?}");
            assert_eq!(got[0].0, "schema_registry.url");
            assert!(got[0].1.contains(why), "{url}: {}", got[0].1);
        }
        let c = SchemaRegistryConfig {
            password: Some("p".into()),
            timeout_ms: 0,
            ..Default::default()
        };
        let got: Vec<String> = keys(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            got,
            ["schema_registry.username", "schema_registry.timeout_ms"]
        );
    }
}
