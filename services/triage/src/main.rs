//! `selfheal-triage`: the triage service on its own.

selfheal_common::service_main!(
    selfheal_triage::run,
    "selfheal triage: regressions and diffs -> verdicts."
);
