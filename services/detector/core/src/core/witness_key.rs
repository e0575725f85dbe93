//! What makes two services' errors "the same failure" for the fleet guard.
//!
//! A signature's template key is its exception type and template. Across
//! services the same upstream failure is logged with small differences that
//! say nothing about the failure: one service appends `request_id=<*>`,
//! another wraps the message in its own exception class (`UpstreamError` in
//! Ruby, none in Go), a third adds `(retry-after=<*>)`. Matching witnesses on
//! the exact key misses those: one outage then has no witness anywhere.
//!
//! The witness key drops the exception type and every `name=<*>` token. It
//! is used only when the rest still says something (at least
//! [`MIN_WORDS`] constant tokens); otherwise (`NullPointerException` with an
//! empty message, `error: <*>`) the exact key is kept, so unrelated errors
//! never become each other's witnesses on a generic message.

/// Constant tokens a loosened template needs to stand for a failure.
const MIN_WORDS: usize = 3;

/// The witness key of a template key (`{exception_type}\0{template}`).
pub(crate) fn witness_key(template_key: &str) -> String {
    let template = template_key
        .split_once('\u{0}')
        .map_or(template_key, |(_, t)| t);
    let kept: Vec<&str> = template
        .split(' ')
        .filter(|t| !t.is_empty() && !is_context_field(t))
        .collect();
    let words = kept.iter().filter(|t| **t != "<*>").count();
    if words < MIN_WORDS {
        return template_key.to_owned();
    }
    // Prefixed so that it never equals an exact key (those hold a NUL).
    format!("\u{1}{}", kept.join(" "))
}

/// `request_id=<*>`, `(retry-after=<*>)`, `trace=<*>,`: a field whose value
/// was masked, which one logger adds and another does not.
fn is_context_field(token: &str) -> bool {
    let t = token.trim_start_matches(['(', '[']);
    let t = t.trim_end_matches([')', ']', ',', ';', '.']);
    let Some((name, value)) = t.split_once('=') else {
        return false;
    };
    value == "<*>"
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_fields_and_the_exception_type_do_not_split_a_failure() {
        let go = witness_key("\u{0}dial tcp <*>: i/o timeout");
        let ruby = witness_key("UpstreamError\u{0}dial tcp <*>: i/o timeout");
        let bff = witness_key("\u{0}dial tcp <*>: i/o timeout request_id=<*>");
        assert_eq!(go, ruby);
        assert_eq!(go, bff);
        assert_eq!(
            witness_key("E\u{0}<*> Too Many Requests from auth (retry-after=<*>)"),
            witness_key("\u{0}<*> Too Many Requests from auth"),
        );
    }

    #[test]
    fn different_failures_stay_apart() {
        assert_ne!(
            witness_key("\u{0}dial tcp <*>: i/o timeout"),
            witness_key("\u{0}dial tcp <*>: connection refused"),
        );
        // A field with a constant value is part of the message.
        assert_ne!(
            witness_key("\u{0}call failed code=UNAVAILABLE upstream geo"),
            witness_key("\u{0}call failed code=DEADLINE upstream geo"),
        );
    }

    #[test]
    fn a_generic_message_keeps_its_exception_type() {
        let a = witness_key("java.lang.NullPointerException\u{0}<*>");
        let b = witness_key("java.lang.IllegalStateException\u{0}<*>");
        assert_ne!(a, b);
        assert_eq!(a, "java.lang.NullPointerException\u{0}<*>");
        let c = witness_key("KeyError\u{0}error: <*> id=<*>");
        assert_eq!(c, "KeyError\u{0}error: <*> id=<*>");
    }
}
