//! The detector's changelog records (`topics.detector_changelog`, compacted):
//! how a service's state becomes bounded Kafka records and back. No IO.
//!
//! A service's state is split ([`SnapshotParts`]) into a *head* (traffic,
//! deploys, emitted ids; logical key `service`) and one part per signature
//! (logical key `service\0signature`). Each part is one record, or several
//! when it is larger than [`MAX_CHUNK_BYTES`]: chunk 0 keeps the logical key,
//! chunk `i` is keyed `logical\0#i`. Every record stays well below Kafka's
//! default 1 MB message limit whatever `max_signatures_per_service` is, and a
//! batch rewrites only the parts whose bytes changed.
//!
//! Every record value starts with a 24-byte header: magic `00 'S' 'H' 01`,
//! the input partition of the service (i32), the chunk index and count
//! (u32 each) and the FNV-1a digest of the whole part (u64), all big-endian.
//! Restore takes the latest record per key (compaction keeps just that),
//! reassembles each part from chunks that agree on count and digest, and
//! checks the digest: a part that does not reassemble is reported, never
//! silently dropped. Parts that disappear (an evicted signature, a service
//! that lost its state, chunks beyond a shrunken part's count) get tombstones.
//!
//! Records of the previous format (one JSON snapshot per service under the
//! key `service`) are still read, and overwritten by the first new write.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::core::{ServiceSnapshot, SnapshotParts};

/// Most bytes of a part carried by one record (the header and key come on top).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;
const MAGIC: [u8; 4] = [0x00, b'S', b'H', 0x01];
const HEADER_LEN: usize = 24;
const CHUNK_SEP: &str = "\u{0}#";

/// One changelog record to produce: `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The Kafka key.
    pub key: Vec<u8>,
    /// The Kafka value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// The previous format: a whole service's snapshot as one JSON record.
#[derive(Debug, Serialize, Deserialize)]
pub struct LegacyRecord {
    /// The input partition the service lives on.
    pub partition: i32,
    /// The whole service's state.
    pub snapshot: ServiceSnapshot,
}

/// What was last written under one logical key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    digest: u64,
    chunks: u32,
}

#[derive(Debug, Default)]
struct Written {
    head: Option<Entry>,
    sigs: HashMap<String, Entry>,
}

/// The writing side: remembers what it wrote (or restored) per part, so a
/// batch writes only changed parts and tombstones the ones gone. Also knows
/// the input partition of each service it owns.
#[derive(Debug, Default)]
pub struct Writer {
    written: HashMap<String, Written>,
    partition_of: BTreeMap<String, i32>,
}

impl Writer {
    /// Records that `service`'s inputs arrive on `partition`.
    pub fn set_partition(&mut self, service: &str, partition: i32) {
        if self.partition_of.get(service) != Some(&partition) {
            self.partition_of.insert(service.to_owned(), partition);
        }
    }

    /// The services whose inputs arrive on `partition`.
    pub fn services_on(&self, partition: i32) -> Vec<String> {
        self.partition_of
            .iter()
            .filter(|(_, p)| **p == partition)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Forgets `service` (its partition moved to another instance, which
    /// restores it from the changelog and writes it from then on).
    pub fn forget(&mut self, service: &str) {
        self.written.remove(service);
        self.partition_of.remove(service);
    }

    /// Appends to `out` the records that bring the changelog of `service` to
    /// `parts` (`None`: the service has no state any more, e.g. evicted).
    pub fn update(&mut self, service: &str, parts: Option<&SnapshotParts>, out: &mut Vec<Record>) {
        let partition = self.partition_of.get(service).copied().unwrap_or(-1);
        let w = self.written.entry(service.to_owned()).or_default();
        let Some(parts) = parts else {
            // Everything goes; the head key even if nothing is known to be
            // there (the previous format, another instance's write).
            let head = w.head.take().unwrap_or(Entry {
                digest: 0,
                chunks: 1,
            });
            tombstones(service, 0, head.chunks, out);
            for (sig, e) in w.sigs.drain() {
                tombstones(&sig_key(service, &sig), 0, e.chunks, out);
            }
            self.written.remove(service);
            return;
        };
        w.head = Some(put(service, &parts.head, partition, w.head, out));
        let mut gone: HashMap<String, Entry> = std::mem::take(&mut w.sigs);
        for (sig, bytes) in &parts.signatures {
            let prev = gone.remove(sig);
            let e = put(&sig_key(service, sig), bytes, partition, prev, out);
            w.sigs.insert(sig.clone(), e);
        }
        for (sig, e) in gone {
            tombstones(&sig_key(service, &sig), 0, e.chunks, out);
        }
    }

    /// Takes over what restore found for `service` as already written.
    pub fn note_restored(&mut self, service: &str, restored: &RestoredService) {
        self.partition_of
            .insert(service.to_owned(), restored.partition);
        let w = self.written.entry(service.to_owned()).or_default();
        w.head = Some(restored.head_entry);
        w.sigs = restored
            .signatures
            .iter()
            .map(|(sig, bytes, chunks)| {
                (
                    sig.clone(),
                    Entry {
                        digest: fnv1a(bytes),
                        chunks: *chunks,
                    },
                )
            })
            .collect();
    }
}

fn sig_key(service: &str, sig: &str) -> String {
    format!("{service}\u{0}{sig}")
}

fn chunk_key(logical: &str, index: u32) -> Vec<u8> {
    if index == 0 {
        logical.as_bytes().to_vec()
    } else {
        format!("{logical}{CHUNK_SEP}{index}").into_bytes()
    }
}

fn tombstones(logical: &str, from: u32, to: u32, out: &mut Vec<Record>) {
    out.extend((from..to).map(|i| Record {
        key: chunk_key(logical, i),
        value: None,
    }));
}

/// Writes `bytes` under `logical` unless `prev` says they are there already;
/// tombstones chunks a shorter part no longer has.
fn put(
    logical: &str,
    bytes: &[u8],
    partition: i32,
    prev: Option<Entry>,
    out: &mut Vec<Record>,
) -> Entry {
    let digest = fnv1a(bytes);
    let count = bytes.len().div_ceil(MAX_CHUNK_BYTES).max(1);
    let entry = Entry {
        digest,
        chunks: u32::try_from(count).expect("a part has fewer than 2^32 chunks"),
    };
    if prev == Some(entry) {
        return entry;
    }
    let mut chunks = bytes.chunks(MAX_CHUNK_BYTES);
    for i in 0..entry.chunks {
        let data = chunks.next().unwrap_or_default();
        let mut value = Vec::with_capacity(HEADER_LEN + data.len());
        value.extend_from_slice(&MAGIC);
        value.extend_from_slice(&partition.to_be_bytes());
        value.extend_from_slice(&i.to_be_bytes());
        value.extend_from_slice(&entry.chunks.to_be_bytes());
        value.extend_from_slice(&digest.to_be_bytes());
        value.extend_from_slice(data);
        out.push(Record {
            key: chunk_key(logical, i),
            value: Some(value),
        });
    }
    if let Some(p) = prev {
        tombstones(logical, entry.chunks, p.chunks, out);
    }
    entry
}

/// FNV-1a 64 over `bytes`: stable across processes and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One service as found in the changelog.
#[derive(Debug)]
pub struct RestoredService {
    /// The input partition the service lives on.
    pub partition: i32,
    /// Its head, or a whole snapshot of the previous format.
    pub head: RestoredHead,
    /// (signature id, its state, chunks it was written in).
    pub signatures: Vec<(String, Vec<u8>, u32)>,
    head_entry: Entry,
}

/// A service's head as found in the changelog.
#[derive(Debug)]
pub enum RestoredHead {
    /// The head part (JSON), to restore with its signatures.
    Parts(Vec<u8>),
    /// A whole snapshot in the previous format (no signature parts).
    Legacy(Box<ServiceSnapshot>),
}

/// What restore found: services by name, and every record or part that
/// could not be read (each to be logged and counted by the caller).
#[derive(Debug, Default)]
pub struct Restored {
    /// The services, by name.
    pub services: BTreeMap<String, RestoredService>,
    /// Problems, one line each (key and reason; never the payload).
    pub errors: Vec<String>,
    /// Signature parts whose service has no head (ignored).
    pub orphans: usize,
}

/// The reading side: the latest value per key while the changelog is read,
/// then [`Reader::finish`] reassembles the parts.
#[derive(Debug, Default)]
pub struct Reader {
    latest: HashMap<Vec<u8>, Vec<u8>>,
}

impl Reader {
    /// Applies one record read from the changelog (`None`: a tombstone).
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        match value {
            Some(v) => {
                self.latest.insert(key.to_vec(), v.to_vec());
            }
            None => {
                self.latest.remove(key);
            }
        }
    }

    /// Bytes held (keys and values).
    pub fn bytes(&self) -> usize {
        self.latest.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Reassembles every service's parts.
    pub fn finish(self) -> Restored {
        let mut out = Restored::default();
        // logical key → (partition, count, digest) of chunk 0, and chunks by index.
        let mut parts: BTreeMap<String, BTreeMap<u32, Chunk>> = BTreeMap::new();
        for (key, value) in self.latest {
            let shown = show_key(&key);
            match parse(&key, value) {
                Ok(Parsed::Chunk(logical, chunk)) => {
                    parts.entry(logical).or_default().insert(chunk.index, chunk);
                }
                Ok(Parsed::Legacy(service, record)) => {
                    out.services.insert(
                        service,
                        RestoredService {
                            partition: record.partition,
                            head: RestoredHead::Legacy(Box::new(record.snapshot)),
                            signatures: Vec::new(),
                            head_entry: Entry {
                                digest: 0,
                                chunks: 1,
                            },
                        },
                    );
                }
                Err(reason) => out.errors.push(format!("record {shown}: {reason}")),
            }
        }
        let mut sigs: Vec<(String, String, Vec<u8>, u32)> = Vec::new();
        for (logical, chunks) in parts {
            let (partition, bytes, entry) = match assemble(chunks) {
                Ok(x) => x,
                Err(reason) => {
                    out.errors
                        .push(format!("part {}: {reason}", show_key(logical.as_bytes())));
                    continue;
                }
            };
            match logical.split_once('\u{0}') {
                Some((service, sig)) => {
                    sigs.push((service.to_owned(), sig.to_owned(), bytes, entry.chunks))
                }
                None => {
                    out.services.insert(
                        logical,
                        RestoredService {
                            partition,
                            head: RestoredHead::Parts(bytes),
                            signatures: Vec::new(),
                            head_entry: entry,
                        },
                    );
                }
            }
        }
        for (service, sig, bytes, chunks) in sigs {
            match out.services.get_mut(&service) {
                Some(s) if matches!(s.head, RestoredHead::Parts(_)) => {
                    s.signatures.push((sig, bytes, chunks))
                }
                _ => out.orphans += 1,
            }
        }
        for s in out.services.values_mut() {
            s.signatures.sort_by(|a, b| a.0.cmp(&b.0));
        }
        out
    }
}

#[derive(Debug)]
struct Chunk {
    partition: i32,
    index: u32,
    count: u32,
    digest: u64,
    data: Vec<u8>,
}

enum Parsed {
    Chunk(String, Chunk),
    Legacy(String, Box<LegacyRecord>),
}

/// A key for a log line: printable, bounded, NUL shown as `\0`.
fn show_key(key: &[u8]) -> String {
    let s = String::from_utf8_lossy(&key[..key.len().min(120)]);
    s.replace('\u{0}', "\\0")
}

fn parse(key: &[u8], value: Vec<u8>) -> Result<Parsed, String> {
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_owned())?;
    if value.first() == Some(&b'{') && !key.contains('\u{0}') {
        let record: LegacyRecord = serde_json::from_slice(&value)
            .map_err(|e| format!("not a snapshot of the previous format: {e}"))?;
        return Ok(Parsed::Legacy(key.to_owned(), Box::new(record)));
    }
    if value.len() < HEADER_LEN || value[..4] != MAGIC {
        return Err(format!(
            "not a changelog record ({} bytes without the header)",
            value.len()
        ));
    }
    let be32 = |i: usize| u32::from_be_bytes(value[i..i + 4].try_into().expect("4 bytes"));
    let partition = i32::from_be_bytes(value[4..8].try_into().expect("4 bytes"));
    let (index, count) = (be32(8), be32(12));
    let digest = u64::from_be_bytes(value[16..24].try_into().expect("8 bytes"));
    if index >= count {
        return Err(format!("chunk {index} of {count}"));
    }
    let logical = if index == 0 {
        key.to_owned()
    } else {
        let suffix = format!("{CHUNK_SEP}{index}");
        key.strip_suffix(&suffix)
            .ok_or_else(|| format!("chunk {index} under a key without its suffix"))?
            .to_owned()
    };
    let mut data = value;
    data.drain(..HEADER_LEN);
    Ok(Parsed::Chunk(
        logical,
        Chunk {
            partition,
            index,
            count,
            digest,
            data,
        },
    ))
}

/// Joins a part's chunks: chunk 0 names the count and digest the others must share.
fn assemble(mut chunks: BTreeMap<u32, Chunk>) -> Result<(i32, Vec<u8>, Entry), String> {
    let first = chunks.remove(&0).ok_or("chunk 0 missing")?;
    let (count, digest) = (first.count, first.digest);
    let mut bytes = first.data;
    for i in 1..count {
        match chunks.remove(&i) {
            Some(c) if c.count == count && c.digest == digest => bytes.extend_from_slice(&c.data),
            Some(_) => return Err(format!("chunk {i} of {count} belongs to another write")),
            None => return Err(format!("chunk {i} of {count} missing")),
        }
    }
    if fnv1a(&bytes) != digest {
        return Err("digest mismatch".to_owned());
    }
    Ok((
        first.partition,
        bytes,
        Entry {
            digest,
            chunks: count,
        },
    ))
}

#[cfg(test)]
mod tests;
