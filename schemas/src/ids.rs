//! Stable identifiers derived from event content.
//!
//! Ids are deterministic so that a replay, a restart or a duplicate input yields
//! the same id, which is what makes downstream de-duplication possible.

/// FNV-1a 64-bit over `parts` separated by NUL, as 16 lowercase hex characters.
/// Stable across processes, platforms and releases (unlike `DefaultHasher`).
pub fn stable_id(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The id of a latency series (`Regression.signature` of a latency
/// regression): its metric, route and bucket layout, which is what
/// histograms merge within. The detector names regressions by it and the
/// fixer's recovery check finds the histograms by it.
pub fn metric_series_id(metric: &str, route: Option<&str>, bounds: &[f64]) -> String {
    let bits: Vec<String> = bounds.iter().map(|b| format!("{b}")).collect();
    let key = format!(
        "{metric}\u{0}{}\u{0}{}",
        route.unwrap_or(""),
        bits.join(",")
    );
    stable_id(&["golden", &key])
}

#[cfg(test)]
mod tests {
    use super::stable_id;

    #[test]
    fn ids_are_stable_and_separator_aware() {
        assert_eq!(stable_id(&["a", "b"]), stable_id(&["a", "b"]));
        assert_ne!(stable_id(&["ab", ""]), stable_id(&["a", "b"]));
        // FNV-1a of the empty string is the offset basis.
        assert_eq!(stable_id(&[""]), "cbf29ce484222325");
    }
}
