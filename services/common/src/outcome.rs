//! What an output event means for the metrics: a regression's kind, a
//! verdict's decision, an action's kind and status. Pure.
//!
//! The labels are the schemas' enum symbols, so every label takes a fixed,
//! small set of values.

use std::any::Any;

use selfheal_schemas::{Action, Event, Regression, Verdict};

/// An output event's meaning for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A regression of `kind`; `delay_ms` from the deploy to the detection,
    /// in event time, when the deploy time is known.
    Regression {
        /// `new`, `spike`, `build_failure` …
        kind: String,
        /// `detected_at_ms - deployed_at_ms`.
        delay_ms: Option<i64>,
    },
    /// A verdict with its decision.
    Verdict {
        /// `caused`, `not_caused`, `inconclusive`.
        decision: String,
    },
    /// An action of `kind` in `status`.
    Action {
        /// `rollback`, `fix_forward`, `notify`, `none`.
        kind: String,
        /// `planned`, `dry_run`, `succeeded` …
        status: String,
    },
}

/// The outcome of `event`, if it is a regression, verdict or action.
pub fn of<E: Event>(event: &E) -> Option<Outcome> {
    let any = event as &dyn Any;
    if let Some(r) = any.downcast_ref::<Regression>() {
        return Some(Outcome::Regression {
            kind: symbol(&r.kind),
            delay_ms: r.deployed_at_ms.map(|d| r.detected_at_ms - d),
        });
    }
    if let Some(v) = any.downcast_ref::<Verdict>() {
        return Some(Outcome::Verdict {
            decision: symbol(&v.decision),
        });
    }
    any.downcast_ref::<Action>().map(|a| Outcome::Action {
        kind: symbol(&a.action),
        status: symbol(&a.status),
    })
}

/// An enum's Avro symbol (its serde name).
fn symbol<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "other".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfheal_schemas::{ActionKind, ActionStatus, DeadLetter};

    #[test]
    fn symbols_are_the_avro_ones() {
        assert_eq!(symbol(&ActionKind::FixForward), "fix_forward");
        assert_eq!(symbol(&ActionStatus::DryRun), "dry_run");
        let letter = DeadLetter {
            source_topic: "t".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: vec![],
            reason: "r".into(),
            error_kind: "poison".into(),
            stage: "s".into(),
            failed_at_ms: 0,
        };
        assert_eq!(of(&letter), None);
    }
}
