//! Settings that govern how a service reaches its dependencies (pure).
//!
//! A deploy that changes `pool_size: 20 → 2`, a client timeout, a retry
//! count, an endpoint or a circuit-breaker threshold can by itself make the
//! service's calls fail: timeouts, pool exhaustion, refused connections,
//! 429s. When every error of an incident names such a dependency failure,
//! that change is what an SRE looks at first, and it turns "the error names
//! an upstream, so maybe an outage" around: the deploy changed how that
//! upstream is called.
//!
//! [`dependency_setting`] finds the first added line of a configuration
//! file whose key names such a setting. Keys are split into words at
//! `_ - .` and camelCase humps, so `maxPoolSize`, `DB_POOL_SIZE`,
//! `hikari.connection-timeout` and `retries` all count; values, comments
//! and keys like `cache_ttl_s` or `log_level` do not.

use crate::classes::FileClass;
use crate::diff::FileDiff;

/// Words of a setting key that govern dependency calls.
const WORDS: [&str; 24] = [
    "timeout",
    "timeouts",
    "deadline",
    "retry",
    "retries",
    "pool",
    "connections",
    "conn",
    "connect",
    "keepalive",
    "url",
    "uri",
    "host",
    "endpoint",
    "port",
    "address",
    "addr",
    "dsn",
    "circuit",
    "breaker",
    "ratelimit",
    "concurrency",
    "backoff",
    "socket",
];

/// A changed dependency setting: where, and the line as added.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencySetting {
    /// The configuration file.
    pub path: String,
    /// The added line's number in the new file.
    pub line: u32,
    /// The line as added.
    pub text: String,
}

impl std::fmt::Display for DependencySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} `{}`", self.path, self.line, self.text.trim())
    }
}

/// The first added line of a configuration file that sets a dependency
/// setting (see the module docs).
pub fn dependency_setting(files: &[FileDiff], classes: &[FileClass]) -> Option<DependencySetting> {
    files
        .iter()
        .zip(classes)
        .filter(|(_, c)| **c == FileClass::Config)
        .find_map(|(f, _)| {
            f.hunks
                .iter()
                .flat_map(|h| h.added())
                .find_map(|(line, text)| {
                    is_dependency_setting(text).then(|| DependencySetting {
                        path: f.path().to_owned(),
                        line,
                        text: text.to_owned(),
                    })
                })
        })
}

/// Whether a config line sets a key that governs dependency calls.
fn is_dependency_setting(text: &str) -> bool {
    let t = text.trim_start().trim_start_matches(['-', ' ', '"', '\'']);
    if t.starts_with('#') || t.starts_with("//") || t.starts_with(';') {
        return false;
    }
    let Some(end) = t.find([':', '=']) else {
        return false;
    };
    let key = t[..end].trim().trim_matches(['"', '\'']);
    words(key).any(|w| WORDS.contains(&w.as_str()))
}

/// The words of a key: split at `_ - .` and before an upper-case letter
/// that follows a lower-case one.
fn words(key: &str) -> impl Iterator<Item = String> + '_ {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            out.push(std::mem::take(&mut cur));
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase();
        cur.push(c.to_ascii_lowercase());
    }
    out.push(cur);
    out.into_iter().filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff;

    #[test]
    fn connection_settings_count_and_others_do_not() {
        for yes in [
            "  pool_size: 2",
            "    timeout_ms: 50",
            "retries: 0",
            "spring.datasource.hikari.maximumPoolSize=2",
            "DB_CONNECT_TIMEOUT=1",
            "  \"baseUrl\": \"http://payments-v2\"",
            "- circuit_breaker_threshold: 1",
        ] {
            assert!(is_dependency_setting(yes), "{yes}");
        }
        for no in [
            "  cache_ttl_s: 300",
            "log_level: debug",
            "workers: 8",
            "# timeout_ms: 50",
            "  new_checkout: true",
            "description: retries are handled upstream",
        ] {
            assert!(!is_dependency_setting(no), "{no}");
        }
    }

    #[test]
    fn only_added_lines_of_config_files_are_read() {
        let files = diff::parse(
            "--- a/config/production.yaml\n+++ b/config/production.yaml\n@@ -8,3 +8,3 @@ database:\n database:\n-  pool_size: 20\n+  pool_size: 2\n   statement_timeout_ms: 5000\n--- a/src/db.py\n+++ b/src/db.py\n@@ -1 +1 @@\n-TIMEOUT = 5\n+TIMEOUT = 1\n",
        );
        let classes = vec![FileClass::Config, FileClass::Runtime];
        let s = dependency_setting(&files, &classes).expect("found");
        assert_eq!(s.path, "config/production.yaml");
        assert_eq!(s.line, 9);
        assert_eq!(s.to_string(), "config/production.yaml:9 `pool_size: 2`");
        assert!(dependency_setting(&files[1..], &classes[1..]).is_none());
    }
}
