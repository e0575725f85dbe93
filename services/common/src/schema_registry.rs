//! The Schema Registry mode (adapter; the framing itself is pure, in
//! `selfheal_schemas::encode_registry` and the decoders).
//!
//! With `[schema_registry] url` set, [`prepare`] runs at start-up (from
//! [`ensure_topics`](crate::kafka::ensure_topics), which every service
//! calls): for each topic selfheal writes, it learns the ids of the versions
//! already under the subject `<topic>-value` (so older messages decode),
//! checks the `.avsc` schema is compatible with them under the subject's
//! compatibility level, registers it, and records the id as the topic's
//! writer id. From then on [`Outgoing::event`](crate::kafka::Outgoing::event)
//! frames that topic's values as the registry expects.
//!
//! Writer ids are process-wide and per topic (the subject is per topic), so
//! one process can hold services on differently named topics, some with the
//! registry and some without. Consumers read both framings in either mode;
//! [`resolve_id_of`] asks the registry (once per id, then cached) about an id
//! first seen on a message.
//!
//! The REST calls are `schema_registry_converter`'s; its Avro encoder is not
//! used: the bytes come from selfheal's own strict codec.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    get_all_subjects, get_all_versions, get_schema_by_id, get_schema_by_subject_and_version,
    is_compatible_schema, post_schema, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

use crate::config::{Config, SchemaRegistryConfig, TopicsConfig};
use crate::{Error, Result};

/// A configured registry: the client settings and the URL for messages.
#[derive(Clone)]
struct Registry {
    url: String,
    settings: SrSettings,
}

/// The registry of the last [`prepare`] with a URL, for consumers' look-ups.
fn current() -> &'static RwLock<Option<Registry>> {
    static CURRENT: OnceLock<RwLock<Option<Registry>>> = OnceLock::new();
    CURRENT.get_or_init(Default::default)
}

/// Topic → the registry id of its value schema, for topics in registry mode.
fn writer_ids() -> &'static RwLock<HashMap<String, u32>> {
    static IDS: OnceLock<RwLock<HashMap<String, u32>>> = OnceLock::new();
    IDS.get_or_init(Default::default)
}

/// The schema id values on `topic` are framed with, if the topic is in
/// registry mode (its schema was registered by [`prepare`]).
pub fn writer_id(topic: &str) -> Option<u32> {
    writer_ids()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(topic)
        .copied()
}

/// The Confluent subject of a topic's values (`TopicNameStrategy`).
pub fn subject_of(topic: &str) -> String {
    format!("{topic}-value")
}

/// The topics selfheal writes events to, with their schema file: one subject
/// each. (The raw-log topic is JSON; the changelog and fleet topics are
/// internal.)
pub fn event_topics(t: &TopicsConfig) -> [(&str, &'static str); 10] {
    [
        (&t.signatures, "SignatureCount.avsc"),
        (&t.traffic, "Traffic.avsc"),
        (&t.deploys, "Deploy.avsc"),
        (&t.builds, "Build.avsc"),
        (&t.latency, "LatencyHistogram.avsc"),
        (&t.gauges, "InstanceGauge.avsc"),
        (&t.regressions, "Regression.avsc"),
        (&t.verdicts, "Verdict.avsc"),
        (&t.actions, "Action.avsc"),
        (&t.dlq, "DeadLetter.avsc"),
    ]
}

/// Registers and checks every event topic's schema (see the module docs);
/// does nothing without `schema_registry.url`. Fails naming the subject when
/// the registry refuses a schema or cannot be reached.
pub async fn prepare(config: &Config) -> Result<()> {
    let Some(registry) = connect(&config.schema_registry)? else {
        return Ok(());
    };
    let subjects = get_all_subjects(&registry.settings)
        .await
        .map_err(|e| registry.error("(listing subjects)", &e))?;
    for (topic, file) in event_topics(&config.topics) {
        let subject = subject_of(topic);
        let existing = subjects.contains(&subject);
        let id = register(&registry, &subject, schema_text(file), existing).await?;
        tracing::info!(%subject, id, url = %registry.url, "schema registered");
        writer_ids()
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), id);
    }
    *current().write().unwrap_or_else(PoisonError::into_inner) = Some(registry);
    Ok(())
}

/// Makes sure the schema id of `payload`, if it is in registry framing, can
/// be decoded: asks the registry about an id not seen yet. A schema the
/// registry holds but that is no selfheal schema is logged and left unknown
/// (the decoder then dead-letters the message). Fails (retryable) only when
/// the registry cannot be asked, so the message is not lost.
pub async fn resolve_id_of(payload: &[u8]) -> Result<()> {
    let Some(id) = selfheal_schemas::registry_schema_id(payload) else {
        return Ok(());
    };
    if selfheal_schemas::schema_id_known(id) {
        return Ok(());
    }
    let registry = current()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let Some(registry) = registry else {
        // No registry configured: the decoder says so in the dead letter.
        return Ok(());
    };
    let found = get_schema_by_id(id, &registry.settings)
        .await
        .map_err(|e| registry.error(&format!("schema id {id}"), &e))?;
    match selfheal_schemas::learn_schema_id(id, &found.schema) {
        Ok(event) => tracing::info!(id, event, "schema id resolved from the registry"),
        Err(e) => tracing::warn!(id, error = %e, "schema id names no selfheal schema"),
    }
    Ok(())
}

fn connect(c: &SchemaRegistryConfig) -> Result<Option<Registry>> {
    let Some(url) = c.url.as_deref() else {
        return Ok(None);
    };
    let url = url.trim_end_matches('/').to_owned();
    let mut builder = SrSettings::new_builder(url.clone());
    builder.set_timeout(Duration::from_millis(c.timeout_ms));
    if let Some(user) = &c.username {
        builder.set_basic_authorization(user, c.password.as_deref());
    }
    let settings = builder.build().map_err(|e| Error::Config {
        source_name: "schema_registry".to_owned(),
        message: format!("cannot build the registry client: {}", describe(&e)),
    })?;
    Ok(Some(Registry { url, settings }))
}

/// Learns the subject's existing versions, checks compatibility, registers
/// `schema` and returns its id.
async fn register(r: &Registry, subject: &str, schema: &str, existing: bool) -> Result<u32> {
    let supplied = || SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
    let mut versions = Vec::new();
    if existing {
        versions = get_all_versions(&r.settings, subject.to_owned())
            .await
            .map_err(|e| r.error(subject, &e))?;
        learn_versions(r, subject, &versions).await?;
    }
    let compatible = versions.is_empty()
        || is_compatible_schema(&r.settings, subject.to_owned(), supplied())
            .await
            .map_err(|e| r.error(subject, &e))?;
    let registered = post_schema(&r.settings, subject.to_owned(), supplied()).await;
    let id = match (compatible, registered) {
        (true, Ok(s)) => s.id,
        (false, Ok(s)) => {
            // The registry is the authority: its check said no, its
            // registration said yes (e.g. the level changed in between).
            tracing::warn!(%subject, id = s.id, "compatibility check failed but the registry registered the schema");
            s.id
        }
        (true, Err(e)) => return Err(r.refused(subject, "it refused to register the schema", &e)),
        (false, Err(e)) => {
            let why = format!(
                "the schema is not compatible with its registered version(s) {versions:?} \
                 under the subject's compatibility level"
            );
            return Err(r.refused(subject, &why, &e));
        }
    };
    selfheal_schemas::learn_schema_id(id, schema).map_err(|e| Error::SchemaRegistry {
        url: r.url.clone(),
        subject: subject.to_owned(),
        reason: format!("registered as id {id}, but: {e}"),
        retryable: false,
    })?;
    Ok(id)
}

/// Learns the ids of a subject's registered versions (earlier selfheal
/// schemas); a version that is no selfheal schema is only logged.
async fn learn_versions(r: &Registry, subject: &str, versions: &[u32]) -> Result<()> {
    for &v in versions {
        let s = get_schema_by_subject_and_version(&r.settings, subject, Some(v))
            .await
            .map_err(|e| r.error(subject, &e))?;
        if let Err(e) = selfheal_schemas::learn_schema_id(s.id, &s.schema) {
            tracing::warn!(%subject, version = v, error = %e, "registered version is no selfheal schema");
        }
    }
    Ok(())
}

impl Registry {
    fn error(&self, subject: &str, e: &SRCError) -> Error {
        Error::SchemaRegistry {
            url: self.url.clone(),
            subject: subject.to_owned(),
            reason: describe(e),
            // The crate marks transport failures (no HTTP answer) and 502/503 retryable.
            retryable: e.retriable,
        }
    }

    fn refused(&self, subject: &str, why: &str, e: &SRCError) -> Error {
        Error::SchemaRegistry {
            url: self.url.clone(),
            subject: subject.to_owned(),
            reason: format!("the registry refuses the schema: {why}: {}", describe(e)),
            retryable: false,
        }
    }
}

/// The crate error's message and cause, without its retry/cache flags.
fn describe(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{} ({cause})", e.error),
        None => e.error.clone(),
    }
}

fn schema_text(file: &str) -> &'static str {
    selfheal_schemas::schema_files()
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, text)| *text)
        // `event_topics` names only files the schemas crate embeds (a test checks).
        .unwrap_or_else(|| panic!("no embedded schema file {file}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_topic_has_an_embedded_schema_and_its_own_subject() {
        let t = TopicsConfig::default();
        let topics = event_topics(&t);
        for (topic, file) in topics {
            assert!(!schema_text(file).is_empty());
            assert_eq!(subject_of(topic), format!("{topic}-value"));
        }
        let files: std::collections::BTreeSet<_> = topics.iter().map(|(_, f)| *f).collect();
        assert_eq!(files.len(), selfheal_schemas::schema_files().len());
        assert_eq!(subject_of(&t.regressions), "selfheal.regressions-value");
    }

    #[tokio::test]
    async fn without_a_url_nothing_is_asked_and_nothing_changes() {
        prepare(&Config::default()).await.unwrap();
        assert_eq!(writer_id(&TopicsConfig::default().regressions), None);
        // Not framed for the registry: nothing to resolve.
        resolve_id_of(b"\xC3\x01rest").await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_a_retryable_error_naming_it() {
        let mut config = Config::default();
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.schema_registry.url = Some(format!("http://127.0.0.1:{port}"));
        config.schema_registry.timeout_ms = 2_000;
        let err = prepare(&config).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
