//! `selfheal-ingest`: the ingest service on its own.

selfheal_common::service_main!(
    selfheal_ingest::run,
    "selfheal ingest: HTTP intake -> normalized events on Kafka."
);
