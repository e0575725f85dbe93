//! `selfheal-detector`: the detector service on its own.

selfheal_common::service_main!(
    selfheal_detector::run,
    "selfheal detector: signature counts and deploys -> regressions."
);
