//! Stage: aliasing of renamed groups. Ingest names a group after the message
//! that founded it, so an ingest restart (or another ingest instance) can
//! found the same group under another id. Such a signature is not new: it is
//! judged against the baseline of the group it matches.

use crate::core::SigState;

/// Whether two signatures of a service are one group of ingest's under two
/// ids: same exception type, same in-app stack functions, and templates that
/// agree token by token wherever neither has a wildcard (the grouper would
/// have merged them, since every constant agrees). A new code path raising an
/// old message differs in its stack and stays a new signature.
pub(crate) fn same_group(a: &SigState, b: &SigState) -> bool {
    let (Some((ea, ta)), Some((eb, tb))) = (
        a.template_key.split_once('\u{0}'),
        b.template_key.split_once('\u{0}'),
    ) else {
        return false;
    };
    // The functions ingest fingerprints (its default: the top three in-app).
    fn in_app(s: &SigState) -> Vec<&str> {
        s.sample
            .frames
            .iter()
            .filter(|f| f.in_app)
            .take(3)
            .map(|f| f.function.as_str())
            .collect()
    }
    if ea != eb || ta.split(' ').count() != tb.split(' ').count() || in_app(a) != in_app(b) {
        return false;
    }
    let mut constants = 0;
    for (x, y) in ta.split(' ').zip(tb.split(' ')) {
        if x == "<*>" || y == "<*>" {
            continue;
        }
        if x != y {
            return false;
        }
        constants += 1;
    }
    constants > 0
}
