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
    // Ingest fingerprints the top three in-app functions; the outer ones
    // are often framework frames that change with routing or middleware
    // between revisions. The two innermost (where the error is raised, and
    // its caller) must agree.
    fn in_app(s: &SigState) -> Vec<&str> {
        s.sample
            .frames
            .iter()
            .filter(|f| f.in_app)
            .take(2)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn sig(template: &str, functions: &[&str]) -> SigState {
        SigState {
            sample: selfheal_schemas::SignatureCount {
                service: "s".into(),
                revision: "a".into(),
                signature: "x".into(),
                template: template.into(),
                exception_type: Some("E".into()),
                level: "error".into(),
                count: 1,
                first_seen_ms: 0,
                last_seen_ms: 0,
                sample_message: String::new(),
                sample_stack: None,
                frames: functions
                    .iter()
                    .map(|f| selfheal_schemas::Frame {
                        file: "app.cs".into(),
                        line: Some(1),
                        function: (*f).into(),
                        in_app: true,
                    })
                    .collect(),
                trace_id: None,
            },
            template_key: format!("E\u{0}{template}"),
            witness_key: String::new(),
            last_seen_ms: 0,
            by_revision: BTreeMap::new(),
            regressed: BTreeSet::new(),
        }
    }

    #[test]
    fn the_same_error_with_another_outer_frame_is_one_group() {
        let a = sig(
            "row <*> not updated",
            &["Refresh", "Load", "Endpoint.Invoke"],
        );
        let b = sig(
            "row 42 not updated",
            &["Refresh", "Load", "Controller.Next"],
        );
        assert!(same_group(&a, &b));
        let elsewhere = sig("row 42 not updated", &["Signup", "Load"]);
        assert!(!same_group(&a, &elsewhere), "raised in another function");
        let other = sig("row <*> was deleted", &["Refresh", "Load"]);
        assert!(!same_group(&a, &other), "another message");
    }
}
