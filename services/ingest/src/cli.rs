//! `selfheal normalize`: one message per line on stdin, `<signature id>\t<template>`
//! per line on stdout, same order. The benchmarks drive it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};

use selfheal_common::config::IngestConfig;
use selfheal_common::Config;

use crate::normalize::{GroupingConfig, InApp, Normalizer, NormalizerConfig};

/// Arguments of `selfheal normalize`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NormalizeArgs {
    /// TOML configuration file (its `[ingest]` section applies).
    #[arg(long, short = 'c', env = "SELFHEAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Service the messages belong to (part of every signature).
    #[arg(long, default_value = "-")]
    pub service: String,
    /// Masking threads (default: the number of CPUs); grouping and output
    /// stay on one thread, in input order. At least 1.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
}

/// The normalizer settings an ingest configuration asks for.
pub fn normalizer_config(c: &IngestConfig) -> NormalizerConfig {
    let defaults = NormalizerConfig::default();
    NormalizerConfig {
        max_template_chars: c.max_template_chars,
        in_app: InApp {
            prefixes: c.in_app_prefixes.clone(),
            library_markers: defaults.in_app.library_markers,
        },
        fingerprint_frames: c.fingerprint_frames,
        grouping: GroupingConfig {
            similarity: c.grouping_similarity,
            max_groups: c.max_groups,
        },
    }
}

/// Runs `selfheal normalize` on the process's stdin and stdout.
pub fn main_normalize(args: NormalizeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    selfheal_common::scrub::set_ip_scrubbing(config.ingest.scrub_ips);
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // Unlocked handles: the reader runs on its own thread (Stdin is Send), and
    // both are read/written in large blocks, so per-call locking is negligible.
    normalize_stream_parallel(
        normalizer_config(&config.ingest),
        &args.service,
        io::stdin(),
        io::stdout(),
        threads,
    )?;
    Ok(())
}

/// Normalizes every line of `input` into `output`; returns the number of lines.
/// Invalid UTF-8 is replaced (U+FFFD), never an error: logs are untrusted bytes.
/// Single-threaded; [`normalize_stream_parallel`] gives the same output faster.
pub fn normalize_stream(
    config: NormalizerConfig,
    service: &str,
    mut input: impl BufRead,
    mut output: impl Write,
) -> io::Result<u64> {
    let mut normalizer = Normalizer::new(config);
    let mut line = Vec::with_capacity(4096);
    let mut lines = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let mut end = line.len();
        while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
            end -= 1;
        }
        let text = String::from_utf8_lossy(&line[..end]);
        let (signature, template) = normalizer.normalize_line(service, &text);
        output.write_all(&hex16(signature))?;
        output.write_all(b"\t")?;
        output.write_all(template.as_bytes())?;
        output.write_all(b"\n")?;
        lines += 1;
    }
    output.flush()?;
    Ok(lines)
}

/// Input bytes per chunk handed between threads.
const CHUNK_BYTES: usize = 256 * 1024;

/// A block of whole input lines and, once a worker has been at it, their
/// masked templates. Chunks are recycled, so the steady state allocates
/// nothing per line.
#[derive(Default)]
struct Chunk {
    seq: u64,
    data: Vec<u8>,
    masked: String,
    /// End offset in `masked` of each line's template.
    ends: Vec<usize>,
}

/// Like [`normalize_stream`], on `workers` masking threads: a reader thread cuts
/// the input into chunks of whole lines, the workers mask them (masking is
/// stateless, and the bulk of the cost), and the calling thread groups the
/// masked lines in input order (grouping is online, so it stays sequential)
/// and writes them. Same output as [`normalize_stream`], same order.
pub fn normalize_stream_parallel(
    config: NormalizerConfig,
    service: &str,
    mut input: impl Read + Send,
    mut output: impl Write,
    workers: usize,
) -> io::Result<u64> {
    let workers = workers.clamp(1, 64);
    // Bounded memory: this many chunks circulate, whatever the input size.
    let in_circulation = 2 * workers + 2;
    let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(in_circulation);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<Chunk>(in_circulation);
    let (free_tx, free_rx) = mpsc::sync_channel::<Chunk>(in_circulation);
    for _ in 0..in_circulation {
        free_tx
            .send(Chunk::default())
            .expect("the channel holds every chunk");
    }
    let mut normalizer = Normalizer::new(config.clone());
    let config = &config;
    let work_rx = &work_rx;
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_chunks(&mut input, &free_rx, &work_tx));
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                let mut scratch = String::new();
                loop {
                    // The lock is held only to take the next chunk.
                    let next = work_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(mut chunk) = next else { break };
                    mask_chunk(config, &mut chunk, &mut scratch);
                    if done_tx.send(chunk).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Group and write in input order; chunks arrive in any order.
        let mut waiting: BTreeMap<u64, Chunk> = BTreeMap::new();
        let mut next = 0u64;
        let mut lines = 0u64;
        let mut out = Vec::with_capacity(CHUNK_BYTES * 2);
        let mut result = Ok(());
        for chunk in done_rx.iter() {
            waiting.insert(chunk.seq, chunk);
            while let Some(chunk) = waiting.remove(&next) {
                out.clear();
                let mut start = 0;
                for &end in &chunk.ends {
                    let (signature, template) =
                        normalizer.group_masked_line(service, &chunk.masked[start..end]);
                    out.extend_from_slice(&hex16(signature));
                    out.push(b'\t');
                    out.extend_from_slice(template.as_bytes());
                    out.push(b'\n');
                    start = end;
                }
                lines += chunk.ends.len() as u64;
                next += 1;
                if result.is_ok() {
                    result = output.write_all(&out);
                }
                // The reader may be gone (end of input): then nobody needs it.
                let _ = free_tx.send(chunk);
                if result.is_err() {
                    break;
                }
            }
            if result.is_err() {
                break;
            }
        }
        // On a write error the pipeline unwinds: dropping the receivers makes
        // every sender fail, so the reader and the workers stop.
        drop(done_rx);
        drop(free_tx);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reader thread panicked")));
        result?;
        read?;
        output.flush()?;
        Ok(lines)
    })
}

/// Reads `input` into chunks that end on a line boundary (the last may not).
fn read_chunks(
    input: &mut impl Read,
    free: &mpsc::Receiver<Chunk>,
    work: &mpsc::SyncSender<Chunk>,
) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut seq = 0u64;
    let mut eof = false;
    while !eof {
        let Ok(mut chunk) = free.recv() else {
            return Ok(());
        };
        chunk.data.clear();
        chunk.data.extend_from_slice(&carry);
        carry.clear();
        // Fill up to the chunk size, and beyond it only to finish a line.
        loop {
            let filled = chunk.data.len();
            let want = CHUNK_BYTES.max(filled + 64 * 1024);
            // Reads into the spare capacity (no zero-filling first); retries
            // interrupted reads.
            let n = (&mut *input)
                .take((want - filled) as u64)
                .read_to_end(&mut chunk.data)?;
            if n == 0 {
                eof = true;
                break;
            }
            if chunk.data.len() >= CHUNK_BYTES {
                if let Some(last) = memchr::memrchr(b'\n', &chunk.data) {
                    carry.extend_from_slice(&chunk.data[last + 1..]);
                    chunk.data.truncate(last + 1);
                    break;
                }
            }
        }
        if chunk.data.is_empty() {
            break;
        }
        chunk.seq = seq;
        seq += 1;
        if work.send(chunk).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Masks every line of a chunk into its `masked`/`ends`.
fn mask_chunk(config: &NormalizerConfig, chunk: &mut Chunk, scratch: &mut String) {
    chunk.masked.clear();
    chunk.ends.clear();
    let data = &chunk.data[..];
    // One validation for the whole chunk (lines split at `\n`, an ASCII byte,
    // so every line of a valid chunk is valid); line by line only when the
    // chunk holds invalid UTF-8.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut start = 0;
        while start < text.len() {
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
            let line = text[start..end].trim_end_matches('\r');
            Normalizer::mask_line_append(config, line, &mut chunk.masked);
            chunk.ends.push(chunk.masked.len());
            start = end + 1;
        }
        return;
    }
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
        let mut line = &data[start..end];
        while let [rest @ .., b'\r'] = line {
            line = rest;
        }
        // Strict validation is much faster than the lossy decoder; the lossy
        // one only runs on the rare invalid line.
        let text = match std::str::from_utf8(line) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        Normalizer::mask_line(config, &text, scratch);
        chunk.masked.push_str(scratch);
        chunk.ends.push(chunk.masked.len());
        start = end + 1;
    }
}

fn hex16(v: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_output_line_per_input_line_in_order() {
        let input =
            b"Timeout after 30ms\r\n\nTimeout after 45ms\n\xff bad utf8 42\nlast without newline";
        let mut out = Vec::new();
        let n = normalize_stream(NormalizerConfig::default(), "svc", &input[..], &mut out).unwrap();
        assert_eq!(n, 5);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<(&str, &str)> = text.lines().map(|l| l.split_once('\t').unwrap()).collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].1, "Timeout after <*>");
        assert_eq!(lines[0].0, lines[2].0);
        assert_eq!(lines[1].1, "");
        assert_eq!(lines[3].1, "\u{fffd} bad <*>");
        assert_eq!(lines[4].1, "last without newline");
        assert!(lines.iter().all(|(id, _)| id.len() == 16));
        assert_eq!(hex16(0x0123_4567_89ab_cdef), *b"0123456789abcdef");
    }

    #[test]
    fn parallel_output_equals_sequential_output() {
        // Enough lines for many chunks, lines of varied shape, a CRLF, a blank
        // line, invalid UTF-8 and a last line without newline.
        let mut input = Vec::new();
        for i in 0..60_000 {
            match i % 5 {
                0 => input
                    .extend_from_slice(format!("Timeout after {i}ms calling user{i}\n").as_bytes()),
                1 => input.extend_from_slice(
                    format!("Connection refused to 10.0.{}.{}:80\r\n", i % 256, i % 7).as_bytes(),
                ),
                2 => input.extend_from_slice(b"\n"),
                3 => input.extend_from_slice(b"\xff bad utf8 42\n"),
                _ => input
                    .extend_from_slice(format!("session-{i:x} expired for bob{i}\n").as_bytes()),
            }
        }
        input.extend_from_slice(b"last without newline");
        let mut seq = Vec::new();
        let n = normalize_stream(NormalizerConfig::default(), "svc", &input[..], &mut seq).unwrap();
        for workers in [1, 3] {
            let mut par = Vec::new();
            let m = normalize_stream_parallel(
                NormalizerConfig::default(),
                "svc",
                &input[..],
                &mut par,
                workers,
            )
            .unwrap();
            assert_eq!((m, n), (60_001, 60_001));
            assert!(par == seq, "same bytes with {workers} workers");
        }
        let mut empty = Vec::new();
        assert_eq!(
            normalize_stream_parallel(NormalizerConfig::default(), "svc", &b""[..], &mut empty, 2)
                .unwrap(),
            0
        );
    }
}
