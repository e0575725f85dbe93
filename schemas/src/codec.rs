//! Avro single-object encoding of the events.
//!
//! A message is `C3 01`, then the 8-byte little-endian CRC-64-AVRO (Rabin)
//! fingerprint of the writer schema's Parsing Canonical Form, then the Avro
//! binary datum. The writer schema is always the one in the `.avsc` file, so a
//! consumer in any language can decode with nothing but the files.

use std::fmt::Debug;
use std::io::Read;
use std::sync::OnceLock;

use apache_avro::rabin::Rabin;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{AvroSchema, Schema};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::events::{
    Action, Build, DeadLetter, Deploy, InstanceGauge, LatencyHistogram, Regression, SignatureCount,
    Traffic, Verdict,
};
use crate::registry_framing;

/// First two bytes of every single-object encoded message.
const MARKER: [u8; 2] = [0xC3, 0x01];
/// Marker plus fingerprint.
const HEADER_LEN: usize = 10;
/// Cap on any one allocation apache-avro makes while decoding. A garbage
/// length prefix then fails at once instead of asking for gigabytes; a real
/// message (Kafka's default limit is 1 MiB) never comes near it.
const MAX_ALLOCATION_BYTES: usize = 16 * 1024 * 1024;
/// `expected` of [`Error::UnknownFingerprint`] from [`decode_any`].
const ANY_EVENT: &str = "any selfheal event";
/// Message of [`Error::Corrupt`] when the datum ends early.
const TRUNCATED: &str = "the datum is truncated";

/// The schema files, in [`Kind`] order.
static SCHEMA_FILES: [(&str, &str); 10] = [
    (
        "SignatureCount.avsc",
        include_str!("../SignatureCount.avsc"),
    ),
    ("Traffic.avsc", include_str!("../Traffic.avsc")),
    ("Deploy.avsc", include_str!("../Deploy.avsc")),
    ("Build.avsc", include_str!("../Build.avsc")),
    ("Regression.avsc", include_str!("../Regression.avsc")),
    ("Verdict.avsc", include_str!("../Verdict.avsc")),
    ("Action.avsc", include_str!("../Action.avsc")),
    ("DeadLetter.avsc", include_str!("../DeadLetter.avsc")),
    (
        "LatencyHistogram.avsc",
        include_str!("../LatencyHistogram.avsc"),
    ),
    ("InstanceGauge.avsc", include_str!("../InstanceGauge.avsc")),
];

/// Earlier versions of the schemas, still decoded (resolved into today's
/// types: the fields added since take their defaults), as `(event, file
/// contents)`. A schema grows only by fields with defaults; each time one
/// does, the version it replaces is kept here, so messages written by an
/// older selfheal (or still on a topic) stay readable.
static HISTORY_FILES: [(Kind, &str); 5] = [
    (Kind::Verdict, include_str!("../history/Verdict.v1.avsc")),
    (
        Kind::Regression,
        include_str!("../history/Regression.v1.avsc"),
    ),
    (Kind::Action, include_str!("../history/Action.v1.avsc")),
    (
        Kind::Regression,
        include_str!("../history/Regression.v2.avsc"),
    ),
    (Kind::Traffic, include_str!("../history/Traffic.v1.avsc")),
];

/// The `.avsc` files this crate embeds, as `(file name, contents)`, e.g.
/// `("Deploy.avsc", "{ \"type\": \"record\", … }")`. Handy for publishing them
/// to a registry or writing them next to a backtest's output.
pub fn schema_files() -> &'static [(&'static str, &'static str)] {
    &SCHEMA_FILES
}

/// A selfheal event: a type with its own `.avsc` file and Kafka topic.
pub trait Event:
    Serialize + DeserializeOwned + AvroSchema + Clone + Debug + Send + 'static
{
    /// The event's name, the Avro record name without namespace and the
    /// schema file's stem, e.g. `"SignatureCount"`.
    const NAME: &'static str;

    /// The writer schema, parsed once from the embedded `.avsc` file.
    fn schema() -> &'static Schema;

    /// CRC-64-AVRO (Rabin) fingerprint of the schema's Parsing Canonical Form,
    /// little-endian, exactly as bytes 2..10 of an encoded message.
    fn fingerprint() -> [u8; 8];

    /// The Kafka key: the service for every event, the source topic for a
    /// [`DeadLetter`].
    fn key(&self) -> &str;
}

/// Any one selfheal event, as returned by [`decode_any`].
// A Regression is a few hundred bytes larger than a count: events are
// decoded and handled one at a time, so the size costs nothing worth the
// boxing every `match` would then carry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    /// A [`SignatureCount`].
    SignatureCount(SignatureCount),
    /// A [`Traffic`].
    Traffic(Traffic),
    /// A [`Deploy`].
    Deploy(Deploy),
    /// A [`Build`].
    Build(Build),
    /// A [`Regression`].
    Regression(Regression),
    /// A [`Verdict`].
    Verdict(Verdict),
    /// An [`Action`].
    Action(Action),
    /// A [`DeadLetter`].
    DeadLetter(DeadLetter),
    /// A [`LatencyHistogram`].
    LatencyHistogram(LatencyHistogram),
    /// An [`InstanceGauge`].
    InstanceGauge(InstanceGauge),
}

impl AnyEvent {
    /// The event's [`Event::NAME`], e.g. `"Deploy"`.
    pub fn name(&self) -> &'static str {
        match self {
            AnyEvent::SignatureCount(_) => SignatureCount::NAME,
            AnyEvent::Traffic(_) => Traffic::NAME,
            AnyEvent::Deploy(_) => Deploy::NAME,
            AnyEvent::Build(_) => Build::NAME,
            AnyEvent::Regression(_) => Regression::NAME,
            AnyEvent::Verdict(_) => Verdict::NAME,
            AnyEvent::Action(_) => Action::NAME,
            AnyEvent::DeadLetter(_) => DeadLetter::NAME,
            AnyEvent::LatencyHistogram(_) => LatencyHistogram::NAME,
            AnyEvent::InstanceGauge(_) => InstanceGauge::NAME,
        }
    }

    /// The event time an input event is bucketed at (a count's first
    /// occurrence, a window's start, a deploy's or build's time); `None`
    /// for the detector's and later stages' outputs and dead letters.
    pub fn input_time_ms(&self) -> Option<i64> {
        match self {
            AnyEvent::SignatureCount(e) => Some(e.first_seen_ms),
            AnyEvent::Traffic(e) => Some(e.window_start_ms),
            AnyEvent::Deploy(e) => Some(e.deployed_at_ms),
            AnyEvent::Build(e) => Some(e.finished_at_ms),
            AnyEvent::LatencyHistogram(e) => Some(e.window_start_ms),
            AnyEvent::InstanceGauge(e) => Some(e.ts_ms),
            AnyEvent::Regression(_)
            | AnyEvent::Verdict(_)
            | AnyEvent::Action(_)
            | AnyEvent::DeadLetter(_) => None,
        }
    }

    /// The event's Kafka key (see [`Event::key`]).
    pub fn key(&self) -> &str {
        match self {
            AnyEvent::SignatureCount(e) => e.key(),
            AnyEvent::Traffic(e) => e.key(),
            AnyEvent::Deploy(e) => e.key(),
            AnyEvent::Build(e) => e.key(),
            AnyEvent::Regression(e) => e.key(),
            AnyEvent::Verdict(e) => e.key(),
            AnyEvent::Action(e) => e.key(),
            AnyEvent::DeadLetter(e) => e.key(),
            AnyEvent::LatencyHistogram(e) => e.key(),
            AnyEvent::InstanceGauge(e) => e.key(),
        }
    }
}

/// Encodes `event` as an Avro single-object message with the writer schema
/// from its `.avsc` file.
pub fn encode<E: Event>(event: &E) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&E::fingerprint());
    write_datum(event, &mut out)?;
    Ok(out)
}

/// Appends `event`'s Avro binary datum (no header) to `out`, written with the
/// schema from its `.avsc` file.
pub(crate) fn write_datum<E: Event>(event: &E, out: &mut Vec<u8>) -> Result<()> {
    let written = match registry().by_fingerprint(&E::fingerprint()) {
        Some(entry) => entry.writer.write_ser(&mut *out, event),
        // An `Event` this crate does not define: build its writer on the spot.
        None => GenericDatumWriter::builder(E::schema())
            .build()
            .and_then(|writer| writer.write_ser(&mut *out, event)),
    };
    written.map_err(|err| Error::Encode {
        event: E::NAME,
        message: err.to_string(),
    })?;
    Ok(())
}

/// Decodes a single-object message that must hold an `E`.
///
/// Fails with [`Error::WrongEvent`] when the message is another selfheal event,
/// [`Error::UnknownFingerprint`] when it is no selfheal event at all, and
/// [`Error::Corrupt`] or [`Error::TrailingBytes`] when the body does not match.
/// Never panics, whatever the bytes.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<E> {
    let (fingerprint, body) = split_header(bytes)?;
    if fingerprint != E::fingerprint() {
        return Err(match registry().reader_for(&fingerprint) {
            Some((kind, reader)) if kind.name() == E::NAME => {
                // An earlier version of this event: resolve it into today's.
                return decode_body(reader, E::NAME, body);
            }
            Some((kind, _)) => Error::WrongEvent {
                expected: E::NAME,
                found: kind.name(),
            },
            None => Error::UnknownFingerprint {
                fingerprint: hex(&fingerprint),
                expected: E::NAME,
            },
        });
    }
    match registry().by_fingerprint(&fingerprint) {
        Some(entry) => decode_body(&entry.reader, E::NAME, body),
        // An `Event` this crate does not define: build its reader on the spot.
        None => {
            let reader = GenericDatumReader::builder(E::schema())
                .build()
                .map_err(|err| corrupt(E::NAME, &err))?;
            decode_body(&reader, E::NAME, body)
        }
    }
}

/// Decodes a single-object message holding any selfheal event, chosen by its
/// schema fingerprint. Never panics, whatever the bytes.
pub fn decode_any(bytes: &[u8]) -> Result<AnyEvent> {
    let (fingerprint, body) = split_header(bytes)?;
    let (kind, reader) =
        registry()
            .reader_for(&fingerprint)
            .ok_or_else(|| Error::UnknownFingerprint {
                fingerprint: hex(&fingerprint),
                expected: ANY_EVENT,
            })?;
    let name = kind.name();
    Ok(match kind {
        Kind::SignatureCount => AnyEvent::SignatureCount(decode_body(reader, name, body)?),
        Kind::Traffic => AnyEvent::Traffic(decode_body(reader, name, body)?),
        Kind::Deploy => AnyEvent::Deploy(decode_body(reader, name, body)?),
        Kind::Build => AnyEvent::Build(decode_body(reader, name, body)?),
        Kind::Regression => AnyEvent::Regression(decode_body(reader, name, body)?),
        Kind::Verdict => AnyEvent::Verdict(decode_body(reader, name, body)?),
        Kind::Action => AnyEvent::Action(decode_body(reader, name, body)?),
        Kind::DeadLetter => AnyEvent::DeadLetter(decode_body(reader, name, body)?),
        Kind::LatencyHistogram => AnyEvent::LatencyHistogram(decode_body(reader, name, body)?),
        Kind::InstanceGauge => AnyEvent::InstanceGauge(decode_body(reader, name, body)?),
    })
}

/// Checks the marker and splits a message into fingerprint and body. A
/// message in Schema Registry framing (first byte `00`) is split the same way,
/// its id turned into the fingerprint of the schema it names.
fn split_header(bytes: &[u8]) -> Result<([u8; 8], &[u8])> {
    if let Some(framed) = registry_framing::split(bytes) {
        return framed;
    }
    let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(Error::TooShort { len: bytes.len() });
    };
    let (marker, fingerprint) = header.split_at(MARKER.len());
    if marker != MARKER {
        return Err(Error::BadMarker {
            found: format!("{:02X} {:02X}", marker[0], marker[1]),
        });
    }
    let mut fp = [0u8; 8];
    fp.copy_from_slice(fingerprint);
    Ok((fp, body))
}

/// Reads one datum with the writer schema and insists it used every byte.
fn decode_body<E: DeserializeOwned>(
    reader: &GenericDatumReader<'_>,
    name: &'static str,
    body: &[u8],
) -> Result<E> {
    // Decode to a generic `Value` first: that path checks every union index,
    // enum index, length and UTF-8 string against the schema before serde sees
    // anything, so garbage becomes an error rather than a half-built value.
    let mut input = StrictInput {
        rest: body,
        hit_end: false,
    };
    let read = reader.read_value(&mut input);
    if input.hit_end {
        let message = match read {
            Ok(_) => TRUNCATED.to_owned(),
            Err(err) => format!("{TRUNCATED} ({err})"),
        };
        return Err(Error::Corrupt {
            event: name,
            message,
        });
    }
    let value = read.map_err(|err| corrupt(name, &err))?;
    if !input.rest.is_empty() {
        return Err(Error::TrailingBytes {
            event: name,
            count: input.rest.len(),
        });
    }
    apache_avro::from_value(&value).map_err(|err| corrupt(name, &err))
}

/// The body as a reader that remembers whether anyone read past its end.
///
/// apache-avro's decoder is lenient about running out of data: at the end of
/// the input a union reads as its first branch (null), and a boolean or string
/// as `Value::Null`. A message cut short after its last non-null field would
/// then decode "successfully". A complete datum never reads past its own last
/// byte (the decoder reads exactly what lengths and varints ask for), so any
/// read at the end means the datum is truncated.
struct StrictInput<'a> {
    rest: &'a [u8],
    hit_end: bool,
}

impl Read for StrictInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.hit_end = true;
        }
        self.rest.read(buf)
    }
}

fn corrupt(event: &'static str, err: &apache_avro::Error) -> Error {
    Error::Corrupt {
        event,
        message: err.to_string(),
    }
}

/// Lowercase hex of bytes in the order given.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The events this crate defines, in [`SCHEMA_FILES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SignatureCount,
    Traffic,
    Deploy,
    Build,
    Regression,
    Verdict,
    Action,
    DeadLetter,
    LatencyHistogram,
    InstanceGauge,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::SignatureCount,
        Kind::Traffic,
        Kind::Deploy,
        Kind::Build,
        Kind::Regression,
        Kind::Verdict,
        Kind::Action,
        Kind::DeadLetter,
        Kind::LatencyHistogram,
        Kind::InstanceGauge,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::SignatureCount => "SignatureCount",
            Kind::Traffic => "Traffic",
            Kind::Deploy => "Deploy",
            Kind::Build => "Build",
            Kind::Regression => "Regression",
            Kind::Verdict => "Verdict",
            Kind::Action => "Action",
            Kind::DeadLetter => "DeadLetter",
            Kind::LatencyHistogram => "LatencyHistogram",
            Kind::InstanceGauge => "InstanceGauge",
        }
    }
}

/// One event's parsed schema, fingerprint and ready-made reader and writer.
struct Entry {
    kind: Kind,
    schema: &'static Schema,
    fingerprint: [u8; 8],
    reader: GenericDatumReader<'static>,
    writer: GenericDatumWriter<'static>,
}

struct Registry {
    /// Indexed by `Kind as usize`.
    entries: Vec<Entry>,
    /// Readers of earlier writer schemas ([`HISTORY_FILES`]), resolving into
    /// the current schema of their kind.
    history: Vec<(Kind, [u8; 8], GenericDatumReader<'static>)>,
}

impl Registry {
    fn new() -> Self {
        // Must run before apache-avro decodes anything: the limit is set once,
        // first caller wins. Every decode in this crate goes through
        // `registry()` first, so ours is in force for them.
        apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
        let entries = Kind::ALL
            .iter()
            .map(|&kind| {
                let (file, text) = SCHEMA_FILES[kind as usize];
                // The files are compiled in and checked by the tests, so a
                // failure here is a build defect, not bad input.
                let parsed = Schema::parse_str(text)
                    .unwrap_or_else(|err| panic!("embedded schema {file} is invalid: {err}"));
                // Parsed once per process and needed for its whole life; leaking
                // gives the readers and writers the `'static` borrow they want.
                let schema: &'static Schema = Box::leak(Box::new(parsed));
                let mut fingerprint = [0u8; 8];
                fingerprint.copy_from_slice(&schema.fingerprint::<Rabin>().bytes);
                let reader = GenericDatumReader::builder(schema)
                    .build()
                    .unwrap_or_else(|err| panic!("embedded schema {file}: no reader: {err}"));
                let writer = GenericDatumWriter::builder(schema)
                    .build()
                    .unwrap_or_else(|err| panic!("embedded schema {file}: no writer: {err}"));
                Entry {
                    kind,
                    schema,
                    fingerprint,
                    reader,
                    writer,
                }
            })
            .collect::<Vec<Entry>>();
        let history = HISTORY_FILES
            .iter()
            .map(|&(kind, text)| {
                let parsed = Schema::parse_str(text)
                    .unwrap_or_else(|err| panic!("embedded old {kind:?} schema is invalid: {err}"));
                let writer: &'static Schema = Box::leak(Box::new(parsed));
                let mut fingerprint = [0u8; 8];
                fingerprint.copy_from_slice(&writer.fingerprint::<Rabin>().bytes);
                let reader = GenericDatumReader::builder(writer)
                    .reader_schema(entries[kind as usize].schema)
                    .build()
                    .unwrap_or_else(|err| panic!("old {kind:?} schema does not resolve: {err}"));
                (kind, fingerprint, reader)
            })
            .collect();
        Registry { entries, history }
    }

    fn entry(&self, kind: Kind) -> &Entry {
        &self.entries[kind as usize]
    }

    fn by_fingerprint(&self, fingerprint: &[u8; 8]) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|entry| &entry.fingerprint == fingerprint)
    }

    /// The kind and reader for a fingerprint, current or earlier.
    fn reader_for(&self, fingerprint: &[u8; 8]) -> Option<(Kind, &GenericDatumReader<'static>)> {
        if let Some(e) = self.by_fingerprint(fingerprint) {
            return Some((e.kind, &e.reader));
        }
        self.history
            .iter()
            .find(|(_, fp, _)| fp == fingerprint)
            .map(|(kind, _, reader)| (*kind, reader))
    }
}

/// The event name of a known writer schema fingerprint (current or earlier).
pub(crate) fn event_of_fingerprint(fingerprint: &[u8; 8]) -> Option<&'static str> {
    registry()
        .reader_for(fingerprint)
        .map(|(kind, _)| kind.name())
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

macro_rules! impl_event {
    ($ty:ident, $key:ident) => {
        impl Event for $ty {
            const NAME: &'static str = stringify!($ty);

            fn schema() -> &'static Schema {
                registry().entry(Kind::$ty).schema
            }

            fn fingerprint() -> [u8; 8] {
                registry().entry(Kind::$ty).fingerprint
            }

            fn key(&self) -> &str {
                &self.$key
            }
        }
    };
}

impl_event!(SignatureCount, service);
impl_event!(Traffic, service);
impl_event!(Deploy, service);
impl_event!(Build, service);
impl_event!(Regression, service);
impl_event!(Verdict, service);
impl_event!(Action, service);
impl_event!(DeadLetter, source_topic);
impl_event!(LatencyHistogram, service);
impl_event!(InstanceGauge, service);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_line_up_with_files_and_names() {
        for kind in Kind::ALL {
            let entry = registry().entry(kind);
            assert_eq!(entry.kind, kind);
            assert_eq!(
                SCHEMA_FILES[kind as usize].0,
                format!("{}.avsc", kind.name())
            );
            assert_eq!(
                entry.schema.name().map(|n| n.fullname(None)),
                Some(format!("selfheal.{}", kind.name()))
            );
        }
        let names = [
            SignatureCount::NAME,
            Traffic::NAME,
            Deploy::NAME,
            Build::NAME,
            Regression::NAME,
            Verdict::NAME,
            Action::NAME,
            DeadLetter::NAME,
            LatencyHistogram::NAME,
            InstanceGauge::NAME,
        ];
        let kinds: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.as_slice(), kinds.as_slice());
    }

    #[test]
    fn fingerprints_are_distinct() {
        let mut fps: Vec<_> = registry().entries.iter().map(|e| e.fingerprint).collect();
        fps.sort();
        fps.dedup();
        assert_eq!(fps.len(), Kind::ALL.len());
    }

    #[test]
    fn earlier_versions_are_distinct_and_resolve() {
        let current: Vec<_> = registry().entries.iter().map(|e| e.fingerprint).collect();
        for (kind, fp, _) in &registry().history {
            assert!(!current.contains(fp), "{kind:?}: history equals current");
        }
    }

    #[test]
    fn an_earlier_verdict_decodes_with_the_new_fields_defaulted() {
        let (_, text) = HISTORY_FILES[0];
        let old = Schema::parse_str(text).expect("old schema");
        let value = apache_avro::types::Value::Record(
            [
                ("id", "v1".into()),
                ("service", "checkout".into()),
                ("revision", "b".into()),
                (
                    "blamed_revision",
                    apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null)),
                ),
                (
                    "decision",
                    apache_avro::types::Value::Enum(0, "caused".into()),
                ),
                ("confidence", 0.9f64.into()),
                ("reasoning", "why".into()),
                ("evidence", apache_avro::types::Value::Array(vec![])),
                ("signatures", apache_avro::types::Value::Array(vec![])),
                ("regression_ids", apache_avro::types::Value::Array(vec![])),
                ("file_classes", apache_avro::types::Value::Array(vec![])),
                ("decided_at_ms", 7i64.into()),
                ("adjudicator", "rules".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        );
        let mut body = Vec::new();
        GenericDatumWriter::builder(&old)
            .build()
            .expect("writer")
            .write_value_ref(&mut body, &value)
            .expect("encode old");
        let mut bytes = MARKER.to_vec();
        bytes.extend_from_slice(&old.fingerprint::<Rabin>().bytes);
        bytes.extend_from_slice(&body);
        let v: Verdict = decode(&bytes).expect("old verdict decodes");
        assert_eq!(v.id, "v1");
        assert_eq!(v.incident_id, None);
        assert_eq!(v.incident_seq, 0);
        assert_eq!(v.localization, None);
        assert!(matches!(decode_any(&bytes), Ok(AnyEvent::Verdict(_))));
    }

    #[test]
    fn allocation_cap_is_ours() {
        registry();
        assert_eq!(
            apache_avro::util::max_allocation_bytes(0),
            MAX_ALLOCATION_BYTES
        );
    }

    #[test]
    fn header_errors() {
        assert!(matches!(split_header(&[]), Err(Error::TooShort { len: 0 })));
        assert!(matches!(
            split_header(&[0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::TooShort { len: 9 })
        ));
        let err = split_header(b"{\"service\":\"x\"}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not Avro single-object encoding: expected marker C3 01 \
             (or the Schema Registry magic byte 00), got 7B 22"
        );
        let (fp, body) = split_header(&[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        assert_eq!(fp, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(body, [9]);
    }

    #[test]
    fn hex_is_lowercase_in_wire_order() {
        assert_eq!(hex(&[0x8a, 0x8f, 0x25, 0x00]), "8a8f2500");
    }
}
