//! How a rejected value appears in an error (the 400 body, the DLQ reason, a
//! log line): never verbatim. A rejected field may hold a secret or personal
//! data, and errors travel further than records (to shippers' logs, to
//! operators), so a value is shown as its length and a short scrubbed prefix.

/// Characters of a rejected value shown, after scrubbing.
const PREFIX_CHARS: usize = 16;

/// `` `prefix…` (N bytes) ``: the value's first characters, secrets scrubbed,
/// control characters escaped, and its length.
pub fn value(s: &str) -> String {
    let scrubbed = selfheal_common::scrub::scrub(s);
    let mut prefix: String = scrubbed
        .chars()
        .take(PREFIX_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if scrubbed.chars().nth(PREFIX_CHARS).is_some() {
        prefix.push('…');
    }
    format!("`{prefix}` ({} bytes)", s.len())
}

#[cfg(test)]
mod tests {
    use super::value;

    #[test]
    fn a_value_is_scrubbed_bounded_and_measured() {
        assert_eq!(value("failed"), "`failed` (6 bytes)");
        let token = format!("ghp_{}", "a1B2c3D4e5".repeat(4));
        let shown = value(&token);
        assert!(!shown.contains("a1B2c3D4e5"), "{shown}");
        assert!(shown.ends_with("(44 bytes)"), "{shown}");
        assert!(value(&"x".repeat(100)).contains("xxxxxxxxxxxxxxxx…"));
        assert_eq!(value("a\nb"), "`a\\nb` (3 bytes)");
    }
}
