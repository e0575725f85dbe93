//! The crate's one error type.

/// Convenience alias used by every fallible function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while encoding or decoding an event.
///
/// Every variant is deterministic: the same bytes (or the same value) fail the
/// same way every time, so nothing here is worth retrying. See
/// [`Error::is_poison`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message is shorter than the 10-byte single-object header (or,
    /// starting with `00`, than the 5-byte Schema Registry header).
    #[error(
        "message too short for Avro single-object encoding: {len} bytes, \
         need at least 10 (2-byte marker + 8-byte fingerprint; Schema Registry \
         framing: 5, magic byte 00 + 4-byte schema id)"
    )]
    TooShort {
        /// Length of the message in bytes.
        len: usize,
    },

    /// The message does not start with the single-object marker `C3 01`.
    #[error(
        "not Avro single-object encoding: expected marker C3 01 \
         (or the Schema Registry magic byte 00), got {found}"
    )]
    BadMarker {
        /// The first two bytes of the message, as uppercase hex (e.g. `7B 22`).
        found: String,
    },

    /// The schema fingerprint names no selfheal event.
    #[error("unknown schema fingerprint {fingerprint} (expected {expected})")]
    UnknownFingerprint {
        /// The 8 fingerprint bytes as they are on the wire, as 16 lowercase hex characters.
        fingerprint: String,
        /// The event that was expected, or `any selfheal event` for
        /// [`decode_any`](crate::decode_any).
        expected: &'static str,
    },

    /// The message is a selfheal event, but not the one asked for.
    #[error("expected a {expected} event, got a {found} event")]
    WrongEvent {
        /// The event that was asked for, e.g. `Traffic`.
        expected: &'static str,
        /// The event the fingerprint names, e.g. `Deploy`.
        found: &'static str,
    },

    /// The header is fine but the Avro body does not decode with the writer schema.
    #[error("corrupt {event} body: {message}")]
    Corrupt {
        /// The event the header names.
        event: &'static str,
        /// The Avro library's error message.
        message: String,
    },

    /// The body decoded but bytes were left over after the datum.
    #[error("{count} trailing bytes after the {event} datum")]
    TrailingBytes {
        /// The event the header names.
        event: &'static str,
        /// How many bytes were left.
        count: usize,
    },

    /// The message is in Schema Registry framing with an id this process has
    /// not resolved yet (see [`learn_schema_id`](crate::learn_schema_id)).
    #[error(
        "Schema Registry schema id {id} is not known here (the consumer resolves \
         ids from the registry set by `[schema_registry] url`)"
    )]
    UnknownSchemaId {
        /// The 4-byte big-endian id after the magic byte.
        id: u32,
    },

    /// A schema the registry holds under an id is not a selfheal schema.
    #[error("Schema Registry schema id {id} is not a selfheal schema: {reason}")]
    ForeignSchema {
        /// The registry's schema id.
        id: u32,
        /// Why (unparsable, or a fingerprint no selfheal event has).
        reason: String,
    },

    /// The value could not be written with its schema.
    #[error("failed to encode {event}: {message}")]
    Encode {
        /// The event being encoded.
        event: &'static str,
        /// The Avro library's error message.
        message: String,
    },
}

impl Error {
    /// Whether the message that caused this error should be dead-lettered
    /// rather than retried.
    ///
    /// Always true: this crate does no IO, so every error comes from the bytes
    /// or the value themselves and would recur on a retry. Decode errors are
    /// poison by definition; an encode error means the value cannot be
    /// represented in its schema, which no retry changes either. An
    /// [`Error::UnknownSchemaId`] is poison for this crate too: the adapter
    /// that can ask the registry resolves the id *before* decoding.
    pub fn is_poison(&self) -> bool {
        match self {
            Error::TooShort { .. }
            | Error::BadMarker { .. }
            | Error::UnknownFingerprint { .. }
            | Error::WrongEvent { .. }
            | Error::Corrupt { .. }
            | Error::TrailingBytes { .. }
            | Error::UnknownSchemaId { .. }
            | Error::ForeignSchema { .. }
            | Error::Encode { .. } => true,
        }
    }
}
