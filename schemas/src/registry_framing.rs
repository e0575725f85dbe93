//! The Schema Registry wire format (Confluent framing), selfheal's optional
//! alternative to single-object encoding:
//!
//! ```text
//! 00 | 4-byte big-endian schema id (the registry's) | Avro binary datum
//! ```
//!
//! The datum is the same as in single-object encoding; only the header
//! differs. An id means something only through a registry, so this module
//! keeps a process-wide table of the ids resolved so far, each mapped to the
//! fingerprint of a schema this crate knows (today's or an earlier version).
//! Asking the registry is the adapter's job (`selfheal-common`): it calls
//! [`learn_schema_id`] with what the registry answered, before decoding a
//! message whose id is not [`schema_id_known`]. This module does no IO.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use apache_avro::rabin::Rabin;
use apache_avro::Schema;

use crate::codec::{event_of_fingerprint, hex, write_datum, Event};
use crate::error::{Error, Result};

/// First byte of a message in Schema Registry framing.
pub const REGISTRY_MAGIC: u8 = 0;
/// Magic byte plus the 4-byte schema id.
const REGISTRY_HEADER_LEN: usize = 5;

/// Ids resolved so far: registry schema id → writer schema fingerprint.
fn ids() -> &'static RwLock<HashMap<u32, [u8; 8]>> {
    static IDS: OnceLock<RwLock<HashMap<u32, [u8; 8]>>> = OnceLock::new();
    IDS.get_or_init(Default::default)
}

/// Records that the registry's schema `id` is `schema` (its JSON text, as
/// the registry returns it), so messages carrying that id decode. Returns
/// the event the schema is, e.g. `"Regression"`.
///
/// Fails with [`Error::ForeignSchema`] when the text does not parse or is no
/// version of a selfheal schema (compared by the fingerprint of its Parsing
/// Canonical Form, so whitespace and docs do not matter).
pub fn learn_schema_id(id: u32, schema: &str) -> Result<&'static str> {
    let parsed = Schema::parse_str(schema).map_err(|e| Error::ForeignSchema {
        id,
        reason: format!("the schema does not parse: {e}"),
    })?;
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&parsed.fingerprint::<Rabin>().bytes);
    let event = event_of_fingerprint(&fingerprint).ok_or_else(|| Error::ForeignSchema {
        id,
        reason: format!(
            "its fingerprint {} is none of the selfheal schemas, current or earlier",
            hex(&fingerprint)
        ),
    })?;
    ids()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, fingerprint);
    Ok(event)
}

/// Whether messages with registry schema id `id` can be decoded here.
pub fn schema_id_known(id: u32) -> bool {
    fingerprint_of(id).is_some()
}

/// The schema id of a message in Schema Registry framing, `None` for any
/// other message (single-object encoding, garbage, too short).
pub fn registry_schema_id(bytes: &[u8]) -> Option<u32> {
    let (&magic, rest) = bytes.split_first()?;
    let id = rest.first_chunk::<4>()?;
    (magic == REGISTRY_MAGIC).then(|| u32::from_be_bytes(*id))
}

/// Encodes `event` in Schema Registry framing with the id the registry gave
/// its `.avsc` schema (the caller registered it; this crate cannot check).
pub fn encode_registry<E: Event>(event: &E, id: u32) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.push(REGISTRY_MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    write_datum(event, &mut out)?;
    Ok(out)
}

/// For a message starting with the magic byte: its writer fingerprint and
/// body, or why not. `None` for a message not in this framing.
pub(crate) fn split(bytes: &[u8]) -> Option<Result<([u8; 8], &[u8])>> {
    if bytes.first() != Some(&REGISTRY_MAGIC) {
        return None;
    }
    let Some((header, body)) = bytes.split_first_chunk::<REGISTRY_HEADER_LEN>() else {
        return Some(Err(Error::TooShort { len: bytes.len() }));
    };
    let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Some(
        fingerprint_of(id)
            .map(|fp| (fp, body))
            .ok_or(Error::UnknownSchemaId { id }),
    )
}

fn fingerprint_of(id: u32) -> Option<[u8; 8]> {
    ids()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, decode_any, encode, schema_files, AnyEvent, Traffic};

    fn traffic() -> Traffic {
        Traffic {
            service: "checkout".into(),
            revision: "b".into(),
            window_start_ms: 60_000,
            window_s: 60,
            requests: 100,
            errors: Some(3),
        }
    }

    fn file(name: &str) -> &'static str {
        schema_files()
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, text)| *text)
            .unwrap()
    }

    #[test]
    fn framed_messages_decode_once_their_id_is_learned() {
        // Ids are process-wide: each test uses its own.
        let bytes = encode_registry(&traffic(), 0x0102_0304).unwrap();
        assert_eq!(&bytes[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(&bytes[5..], &encode(&traffic()).unwrap()[10..]);
        assert_eq!(registry_schema_id(&bytes), Some(0x0102_0304));
        assert!(!schema_id_known(0x0102_0304));
        let err = decode::<Traffic>(&bytes).unwrap_err();
        assert!(
            matches!(err, Error::UnknownSchemaId { id: 0x0102_0304 }),
            "{err}"
        );
        assert_eq!(
            learn_schema_id(0x0102_0304, file("Traffic.avsc")).unwrap(),
            "Traffic"
        );
        assert_eq!(decode::<Traffic>(&bytes).unwrap(), traffic());
        assert!(matches!(decode_any(&bytes), Ok(AnyEvent::Traffic(_))));
    }

    #[test]
    fn a_learned_id_of_another_event_is_the_wrong_event() {
        learn_schema_id(77, file("Deploy.avsc")).unwrap();
        let bytes = encode_registry(&traffic(), 77).unwrap();
        // The id says Deploy: the datum is read as one and fails, never as Traffic.
        assert!(decode::<Traffic>(&bytes).is_err());
    }

    #[test]
    fn compact_and_reformatted_schema_text_is_the_same_schema() {
        let compact = Schema::parse_str(file("Verdict.avsc"))
            .unwrap()
            .canonical_form();
        assert_eq!(learn_schema_id(78, &compact).unwrap(), "Verdict");
    }

    #[test]
    fn foreign_schemas_are_refused_with_the_reason() {
        let err = learn_schema_id(79, r#"{"type":"record","name":"X","fields":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("id 79 is not a selfheal schema"), "{err}");
        assert!(err.contains("none of the selfheal schemas"), "{err}");
        let err = learn_schema_id(80, "not json").unwrap_err().to_string();
        assert!(err.contains("does not parse"), "{err}");
        assert!(!schema_id_known(79) && !schema_id_known(80));
    }

    #[test]
    fn short_or_other_messages_are_not_framed() {
        assert_eq!(registry_schema_id(&[0, 1, 2]), None);
        assert_eq!(registry_schema_id(&encode(&traffic()).unwrap()), None);
        assert!(matches!(
            decode_any(&[0, 1]),
            Err(Error::TooShort { len: 2 })
        ));
    }
}
