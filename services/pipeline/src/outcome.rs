//! What one run of the pipeline produced.

use selfheal_schemas::{Action, Deploy, Regression, Verdict};

/// What one run produced, each kind of event in emission order.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Input records read (set by the caller, which knows its input).
    pub records: usize,
    /// Input lines rejected (set by the caller; the backtest writes their
    /// errors to `rejected.ndjson`).
    pub rejected: usize,
    /// Regressions, in emission order.
    pub regressions: Vec<Regression>,
    /// Verdicts, in emission order.
    pub verdicts: Vec<Verdict>,
    /// Actions, in emission order.
    pub actions: Vec<Action>,
    /// Deploys of the input, in event-time order (for the console).
    pub deploys: Vec<Deploy>,
}
