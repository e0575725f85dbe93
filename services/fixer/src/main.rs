//! `selfheal-fixer`: the fixer service on its own.

selfheal_common::service_main!(
    selfheal_fixer::run,
    "selfheal fixer: verdicts -> rollback / fix-forward actions."
);
