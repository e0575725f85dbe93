//! The fast parser: typed fields read straight from the line.
//!
//! It answers `None` for every line it does not take exactly as
//! [`super::parse_line_precise`] would (an error of any kind, a number that is not an
//! `i64`, a field of the wrong type …), and the caller then runs the precise
//! parser, so the two can never disagree. Keys it does not know are still
//! parsed in full (numbers in range, `\u` escapes valid), as the precise
//! parser's `Value` does, rather than skipped unchecked.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{
    BuildRecord, DefaultType, DeployRecord, LogRef, RecordRef, TrafficRecord, MAX_COUNT, MAX_TS_MS,
    MAX_WINDOW_S,
};

/// A field's value, as far as the record types care.
enum Val<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    /// A boolean, a float, an integer beyond `i64`, an array or an object.
    Other,
}

/// The fields of all record types; `None` is absent or `null` (the precise
/// parser treats both alike). A repeated key keeps its last value, as a
/// `Value` map does.
#[derive(Default)]
struct Fields<'a> {
    kind: Option<Val<'a>>,
    ts: Option<Val<'a>>,
    service: Option<Val<'a>>,
    revision: Option<Val<'a>>,
    level: Option<Val<'a>>,
    message: Option<Val<'a>>,
    stack: Option<Val<'a>>,
    exception_type: Option<Val<'a>>,
    trace_id: Option<Val<'a>>,
    requests: Option<Val<'a>>,
    errors: Option<Val<'a>>,
    window_s: Option<Val<'a>>,
    previous_revision: Option<Val<'a>>,
    repo: Option<Val<'a>>,
    commit_range: Option<Val<'a>>,
    diff: Option<Val<'a>>,
    diff_url: Option<Val<'a>>,
    status: Option<Val<'a>>,
    log: Option<Val<'a>>,
}

/// Parses `line`; `None` when the precise parser must decide.
pub(super) fn parse(line: &str, default: DefaultType) -> Option<RecordRef<'_>> {
    match scan(line) {
        Scanned::Fields(f) => build(f, default),
        Scanned::Unusual => build(serde_json::from_str(line).ok()?, default),
        Scanned::Invalid => None,
    }
}

/// The serde half alone (tests compare each half with the precise parser).
#[cfg(test)]
pub(super) fn parse_serde(line: &str, default: DefaultType) -> Option<RecordRef<'_>> {
    build(serde_json::from_str(line).ok()?, default)
}

/// The scanner half alone.
#[cfg(test)]
pub(super) fn parse_scan(line: &str, default: DefaultType) -> Option<RecordRef<'_>> {
    match scan(line) {
        Scanned::Fields(f) => build(f, default),
        Scanned::Unusual | Scanned::Invalid => None,
    }
}

/// The record `f` describes, if the precise parser would take it as is.
fn build(f: Fields<'_>, default: DefaultType) -> Option<RecordRef<'_>> {
    let kind = match f.kind {
        None => Cow::Borrowed(default.name()),
        Some(Val::Str(s)) => s,
        Some(_) => return None,
    };
    match &*kind {
        "log" => Some(RecordRef::Log(LogRef {
            ts_ms: ts(f.ts)?,
            service: req_str(f.service)?,
            revision: req_str(f.revision)?,
            level: match f.level {
                None => Cow::Borrowed("error"),
                Some(Val::Str(s)) if s.bytes().any(|c| c.is_ascii_uppercase()) => {
                    Cow::Owned(s.to_ascii_lowercase())
                }
                Some(Val::Str(s)) => s,
                Some(_) => return None,
            },
            message: req_str(f.message)?,
            stack: opt_str(f.stack)?,
            exception_type: opt_str(f.exception_type)?,
            trace_id: opt_str(f.trace_id)?,
        })),
        "traffic" => {
            let requests = match f.requests {
                Some(Val::Int(n)) if (0..=MAX_COUNT).contains(&n) => n,
                _ => return None,
            };
            let window_s = match f.window_s {
                None => 60,
                Some(Val::Int(w)) if (1..=MAX_WINDOW_S).contains(&w) => w as i32,
                Some(_) => return None,
            };
            let errors = match f.errors {
                None => None,
                Some(Val::Int(e)) if (0..=requests).contains(&e) => Some(e),
                Some(_) => return None,
            };
            Some(RecordRef::Traffic(TrafficRecord {
                ts_ms: ts(f.ts)?,
                service: req_str(f.service)?.into_owned(),
                revision: req_str(f.revision)?.into_owned(),
                requests,
                errors,
                window_s,
            }))
        }
        "deploy" => Some(RecordRef::Deploy(DeployRecord {
            ts_ms: ts(f.ts)?,
            service: req_str(f.service)?.into_owned(),
            revision: req_str(f.revision)?.into_owned(),
            previous_revision: opt_str(f.previous_revision)?.map(Cow::into_owned),
            repo: opt_str(f.repo)?.map(Cow::into_owned),
            commit_range: opt_str(f.commit_range)?.map(Cow::into_owned),
            diff: opt_str(f.diff)?.map(Cow::into_owned),
            diff_url: opt_str(f.diff_url)?.map(Cow::into_owned),
        })),
        "build" => {
            let status = req_str(f.status)?;
            let failed = match status.to_ascii_lowercase().as_str() {
                "failed" | "failure" | "error" | "errored" | "broken" => true,
                "succeeded" | "success" | "passed" | "ok" | "fixed" => false,
                _ => return None,
            };
            Some(RecordRef::Build(BuildRecord {
                ts_ms: ts(f.ts)?,
                service: req_str(f.service)?.into_owned(),
                revision: req_str(f.revision)?.into_owned(),
                failed,
                log: opt_str(f.log)?.map(Cow::into_owned),
            }))
        }
        _ => None,
    }
}

/// `Some(None)`: absent; `None`: not a string.
fn opt_str(v: Option<Val<'_>>) -> Option<Option<Cow<'_, str>>> {
    match v {
        None => Some(None),
        Some(Val::Str(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

fn req_str(v: Option<Val<'_>>) -> Option<Cow<'_, str>> {
    match v {
        Some(Val::Str(s)) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

fn ts(v: Option<Val<'_>>) -> Option<i64> {
    match v {
        Some(Val::Int(ms)) if (0..=MAX_TS_MS).contains(&ms) => Some(ms),
        Some(Val::Str(s)) => OffsetDateTime::parse(&s, &Rfc3339)
            .ok()
            .filter(|t| t.year() >= 1970)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64),
        _ => None,
    }
}

impl<'a> Fields<'a> {
    /// Where the value of `key` goes; `None` for a key no record reads.
    fn slot(&mut self, key: Key) -> Option<&mut Option<Val<'a>>> {
        Some(match key {
            Key::Type => &mut self.kind,
            Key::Ts => &mut self.ts,
            Key::Service => &mut self.service,
            Key::Revision => &mut self.revision,
            Key::Level => &mut self.level,
            Key::Message => &mut self.message,
            Key::Stack => &mut self.stack,
            Key::ExceptionType => &mut self.exception_type,
            Key::TraceId => &mut self.trace_id,
            Key::Requests => &mut self.requests,
            Key::Errors => &mut self.errors,
            Key::WindowS => &mut self.window_s,
            Key::PreviousRevision => &mut self.previous_revision,
            Key::Repo => &mut self.repo,
            Key::CommitRange => &mut self.commit_range,
            Key::Diff => &mut self.diff,
            Key::DiffUrl => &mut self.diff_url,
            Key::Status => &mut self.status,
            Key::Log => &mut self.log,
            Key::Unknown => return None,
        })
    }
}

/// What [`scan`] made of a line.
// Returned by value once per line and matched at once: boxing the fields
// would cost an allocation per line for nothing.
#[allow(clippy::large_enum_variant)]
enum Scanned<'a> {
    /// A flat object of strings, integers, booleans and nulls: its fields.
    Fields(Fields<'a>),
    /// Valid or not, something the scanner leaves to serde (nesting,
    /// floats, negative numbers, surrogate escapes, escaped keys …).
    Unusual,
    /// Certainly not what the precise parser accepts.
    Invalid,
}

/// The common shape of a line, read byte by byte: a flat object whose
/// values are strings, non-negative integers, booleans or null. It
/// accepts exactly what `serde_json` accepts of that shape (the same
/// whitespace, escapes, integer syntax, no control characters in
/// strings), and leaves anything else to serde.
fn scan(line: &str) -> Scanned<'_> {
    let b = line.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\t' | b'\r') {
            i += 1;
        }
        i
    };
    let mut f = Fields::default();
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return Scanned::Unusual;
    }
    i = ws(i + 1);
    if b.get(i) == Some(&b'}') {
        return if ws(i + 1) == b.len() {
            Scanned::Fields(f)
        } else {
            Scanned::Unusual
        };
    }
    loop {
        // A key: a string without escapes.
        if b.get(i) != Some(&b'"') {
            return Scanned::Unusual;
        }
        let start = i + 1;
        let Some(len) = special(&b[start..]) else {
            return Scanned::Unusual;
        };
        if b[start + len] != b'"' {
            return Scanned::Unusual;
        }
        let key = key_of(&line[start..start + len]);
        i = ws(start + len + 1);
        if b.get(i) != Some(&b':') {
            return Scanned::Unusual;
        }
        i = ws(i + 1);
        let (value, end) = match b.get(i) {
            Some(b'"') => match string(line, i + 1) {
                Some((s, end)) => (Some(Val::Str(s)), end),
                None => return Scanned::Unusual,
            },
            Some(b'0'..=b'9') => {
                let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                let end = i + digits;
                // Leading zeros, floats and long numbers: serde decides.
                if (digits > 1 && b[i] == b'0')
                    || digits > 18
                    || matches!(b.get(end), Some(b'.' | b'e' | b'E'))
                {
                    return Scanned::Unusual;
                }
                let n = line[i..end].parse::<i64>().ok();
                match n {
                    Some(n) => (Some(Val::Int(n)), end),
                    None => return Scanned::Unusual,
                }
            }
            Some(b'n') if b[i..].starts_with(b"null") => (None, i + 4),
            Some(b't') if b[i..].starts_with(b"true") => (Some(Val::Other), i + 4),
            Some(b'f') if b[i..].starts_with(b"false") => (Some(Val::Other), i + 5),
            _ => return Scanned::Unusual,
        };
        if let Some(slot) = f.slot(key) {
            // A repeated key keeps its last value, as a `Value` map does.
            *slot = value;
        }
        i = ws(end);
        match b.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => {
                return if ws(i + 1) == b.len() {
                    Scanned::Fields(f)
                } else {
                    Scanned::Invalid
                };
            }
            _ => return Scanned::Unusual,
        }
    }
}

/// The string whose body starts at `start` (after the opening quote) and
/// the position after its closing quote; borrowed when it has no escapes.
/// `None` for what serde must judge (surrogate escapes) or reject
/// (control characters, bad escapes, no closing quote).
fn string(line: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let b = line.as_bytes();
    let plain = special(&b[start..])?;
    let mut i = start + plain;
    if b[i] == b'"' {
        return Some((Cow::Borrowed(&line[start..i]), i + 1));
    }
    let mut out = String::with_capacity(line.len() - start);
    out.push_str(&line[start..i]);
    loop {
        match b.get(i)? {
            b'"' => return Some((Cow::Owned(out), i + 1)),
            b'\\' => {
                let c = match b.get(i + 1)? {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let hex = line.get(i + 2..i + 6)?;
                        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                            return None;
                        }
                        // Surrogates (pairs or lone) are serde's to judge.
                        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                        out.push(c);
                        i += 6;
                        continue;
                    }
                    _ => return None,
                };
                out.push(c);
                i += 2;
            }
            c if *c < 0x20 => return None,
            _ => {
                let run = special(&b[i..])?;
                out.push_str(&line[i..i + run]);
                i += run;
            }
        }
    }
}

/// The first `"`, `\\` or control character in `b`: where a string's
/// plain run ends. Eight bytes at a time (the lowest flagged byte of each
/// word is exact; flags above it may be borrows, and are not used).
fn special(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let x = u64::from_le_bytes(bytes);
        let flags = zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if flags != 0 {
            return Some(at + (flags.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

#[cfg(test)]
pub(super) fn special_for_test(b: &[u8]) -> Option<usize> {
    special(b)
}

fn key_of(k: &str) -> Key {
    match k {
        "type" => Key::Type,
        "ts" => Key::Ts,
        "service" => Key::Service,
        "revision" => Key::Revision,
        "level" => Key::Level,
        "message" => Key::Message,
        "stack" => Key::Stack,
        "exception_type" => Key::ExceptionType,
        "trace_id" => Key::TraceId,
        "requests" => Key::Requests,
        "errors" => Key::Errors,
        "window_s" => Key::WindowS,
        "previous_revision" => Key::PreviousRevision,
        "repo" => Key::Repo,
        "commit_range" => Key::CommitRange,
        "diff" => Key::Diff,
        "diff_url" => Key::DiffUrl,
        "status" => Key::Status,
        "log" => Key::Log,
        _ => Key::Unknown,
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match f.slot(key) {
                Some(slot) => *slot = map.next_value::<Nullable<'de>>()?.0,
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(f)
    }
}

enum Key {
    Type,
    Ts,
    Service,
    Revision,
    Level,
    Message,
    Stack,
    ExceptionType,
    TraceId,
    Requests,
    Errors,
    WindowS,
    PreviousRevision,
    Repo,
    CommitRange,
    Diff,
    DiffUrl,
    Status,
    Log,
    Unknown,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(key_of(v))
    }
}

/// A value of a known key; `null` is `None`.
struct Nullable<'a>(Option<Val<'a>>);

impl<'de> Deserialize<'de> for Nullable<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Nullable<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Nullable(None))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Nullable(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Nullable(Some(Val::Other)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Nullable(Some(Val::Int(v))))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        // `Value::as_i64` of a larger positive number is `None`.
        Ok(Nullable(Some(
            i64::try_from(v).map_or(Val::Other, Val::Int),
        )))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Nullable(Some(Val::Other)))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Nullable(Some(Val::Str(Cow::Borrowed(v)))))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Nullable(Some(Val::Str(Cow::Owned(v.to_owned())))))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Nullable(Some(Val::Str(Cow::Owned(v)))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_seq(seq)?;
        Ok(Nullable(Some(Val::Other)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_map(map)?;
        Ok(Nullable(Some(Val::Other)))
    }
}

/// Any JSON value, parsed in full and dropped.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}
