//! Parsing: the input's lines → records, in parallel chunks, each chunk's
//! log lines prepared (stack parsed, message masked) and sorted by time;
//! bad lines become errors with their line number.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::Context;
use selfheal_ingest::events::{prepare_log, StackCache};
use selfheal_ingest::normalize::NormalizerConfig;
use selfheal_ingest::record::{parse_line_ref, DefaultType, LineError, RecordRef};
use selfheal_pipeline::Input;

/// Reads the whole input, large files in parallel parts. (The parsers check
/// that it is UTF-8, chunk by chunk.)
pub(super) fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    const PART: usize = 16 << 20;
    let opening = || format!("opening {}", path.display());
    let mut file = std::fs::File::open(path).with_context(opening)?;
    let len = usize::try_from(file.metadata().with_context(opening)?.len())?;
    let mut bytes = vec![0u8; len];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = len.div_ceil(threads).max(PART);
    let reading = || format!("reading {}", path.display());
    std::thread::scope(|scope| {
        let file = &file;
        let parts: Vec<_> = bytes
            .chunks_mut(part)
            .enumerate()
            .map(|(k, buf)| scope.spawn(move || file.read_exact_at(buf, (k * part) as u64)))
            .collect();
        parts.into_iter().try_for_each(|p| {
            p.join()
                .map_err(|_| anyhow::anyhow!("reader thread panicked"))?
                .with_context(reading)
        })
    })?;
    // A file that grew since its size was read: the rest too.
    file.seek_to(len)
        .and_then(|_| file.read_to_end(&mut bytes))
        .with_context(reading)?;
    Ok(bytes)
}

/// `Seek` to an absolute offset.
trait SeekTo {
    fn seek_to(&mut self, offset: usize) -> std::io::Result<()>;
}

impl SeekTo for std::fs::File {
    fn seek_to(&mut self, offset: usize) -> std::io::Result<()> {
        use std::io::Seek;
        self.seek(std::io::SeekFrom::Start(offset as u64))
            .map(|_| ())
    }
}

/// The error for input that is not UTF-8 (fatal, as when lines are read
/// with `BufRead::lines`).
pub(super) fn not_utf8(path: &Path, line: usize) -> anyhow::Error {
    anyhow::Error::new(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "stream did not contain valid UTF-8",
    ))
    .context(format!("reading {} line {line}", path.display()))
}

/// Lines as `BufRead::lines` splits them: at `\n`, a `\r` before it dropped.
pub(super) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find('\n') {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                Some(line.strip_suffix('\r').unwrap_or(line))
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}

/// Parses (and prepares) `input`, in parallel chunks when it is large; bad
/// lines are reported, not fatal. Records come back in file order, errors
/// in line order, whatever the number of threads.
pub(super) fn parse_input<'a>(
    input: &'a [u8],
    config: &NormalizerConfig,
    path: &Path,
) -> anyhow::Result<(Vec<Input<'a>>, Vec<String>)> {
    const MIN_CHUNK: usize = 1 << 20;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    parse_input_in(
        input,
        config,
        (input.len() / MIN_CHUNK).clamp(1, threads),
        path,
    )
}

/// [`parse_input`] in `n_chunks` chunks, one thread each.
pub(super) fn parse_input_in<'a>(
    input: &'a [u8],
    config: &NormalizerConfig,
    n_chunks: usize,
    path: &Path,
) -> anyhow::Result<(Vec<Input<'a>>, Vec<String>)> {
    // Each thread counts its own lines; the line numbers of its errors are
    // shifted once the chunks before are known.
    let chunks = split_chunks(input, n_chunks);
    let parsed: Vec<ChunkOut<'a>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .skip(1)
            .map(|chunk| {
                scope.spawn(move || parse_chunk(chunk, config, &mut StackCache::default()))
            })
            .collect();
        let mut out = vec![parse_chunk(chunks[0], config, &mut StackCache::default())];
        for h in handles {
            out.push(h.join().expect("parser thread panicked"));
        }
        out
    });
    let mut records = Vec::with_capacity(parsed.iter().map(|c| c.records.len()).sum());
    let mut rejected = Vec::new();
    let mut line_offset = 0;
    for chunk in parsed {
        if let Some(line) = chunk.not_utf8 {
            return Err(not_utf8(path, line_offset + line));
        }
        // Each chunk sorted by time, then all of them by time: file order
        // within a millisecond all the same.
        records.extend(chunk.records);
        for mut e in chunk.rejected {
            e.line += line_offset;
            rejected.push(serde_json::to_string(&e)?);
        }
        line_offset += chunk.lines;
    }
    Ok((records, rejected))
}

/// `input` in `n` chunks of about equal size, each ending at a line end.
pub(super) fn split_chunks(input: &[u8], n: usize) -> Vec<&[u8]> {
    let n = n.max(1);
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..=n {
        if start == input.len() {
            break;
        }
        let end = if k == n {
            input.len()
        } else {
            let at = (input.len() / n * k).max(start);
            input[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(input.len(), |i| at + i + 1)
        };
        chunks.push(&input[start..end]);
        start = end;
    }
    if chunks.is_empty() {
        chunks.push(input);
    }
    chunks
}

/// One chunk parsed.
pub(super) struct ChunkOut<'a> {
    /// Stably sorted by time: file order within a millisecond.
    pub(super) records: VecDeque<Input<'a>>,
    /// Line numbers relative to the chunk.
    pub(super) rejected: Vec<LineError>,
    /// Lines in the chunk.
    pub(super) lines: usize,
    /// The line (relative to the chunk) of the first bytes that are not
    /// UTF-8, if any: the chunk is not parsed.
    pub(super) not_utf8: Option<usize>,
}

/// Parses a chunk of whole lines and sorts its records by time (here, on a
/// parser thread, so the pipeline thread only merges).
pub(super) fn parse_chunk<'a>(
    chunk: &'a [u8],
    config: &NormalizerConfig,
    stacks: &mut StackCache,
) -> ChunkOut<'a> {
    let mut out = ChunkOut {
        records: VecDeque::new(),
        rejected: Vec::new(),
        lines: 0,
        not_utf8: None,
    };
    // A line end is never inside a UTF-8 sequence, so checking chunk by chunk
    // is checking the whole.
    let text = match std::str::from_utf8(chunk) {
        Ok(text) => text,
        Err(e) => {
            let valid = &chunk[..e.valid_up_to()];
            out.not_utf8 = Some(1 + valid.iter().filter(|&&b| b == b'\n').count());
            return out;
        }
    };
    let mut records = Vec::with_capacity(chunk.len() / 200);
    for (i, line) in lines(text).enumerate() {
        out.lines = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line_ref(line, i + 1, DefaultType::Log) {
            Ok(RecordRef::Log(log)) => {
                records.push(Input::Log(prepare_log(config, stacks, log)));
            }
            Ok(other) => records.push(Input::Other(other)),
            Err(e) => out.rejected.push(e),
        }
    }
    // Stable by time: the index breaks ties (keys are sorted, not records,
    // which are large).
    let mut keys: Vec<(i64, u32)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.ts_ms(), u32::try_from(i).expect("small chunk")))
        .collect();
    if !keys.is_sorted() {
        keys.sort_unstable();
        permute(&mut records, &mut keys);
    }
    // No copy: a deque over the same allocation (fresh memory is costly).
    out.records = records.into();
    out
}

/// Puts `items[keys[j].1]` at `j`, in place, by following each cycle of the
/// permutation (`keys[..].1` is a permutation of the indices; it is used up).
fn permute<T>(items: &mut [T], keys: &mut [(i64, u32)]) {
    for start in 0..items.len() {
        let mut j = start;
        loop {
            let from = keys[j].1 as usize;
            keys[j].1 = j as u32; // in place now
            if from == start || from == j {
                break;
            }
            items.swap(j, from);
            j = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_reported_with_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.ndjson");
        std::fs::write(
            &path,
            "{\"ts\":1,\"service\":\"a\",\"revision\":\"r\",\"message\":\"m\"}\n{\"ts\":1}\n",
        )
        .unwrap();
        let input = read_input(&path).unwrap();
        let (records, rejected) = parse_input(&input, &NormalizerConfig::default(), &path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0].contains("\"line\":2") && rejected[0].contains("service"),
            "{}",
            rejected[0]
        );
    }

    #[test]
    fn line_numbers_count_every_line_across_chunks() {
        let good = "{\"ts\":1,\"service\":\"a\",\"revision\":\"r\",\"message\":\"m\"}";
        let mut text = String::new();
        for i in 1..=40 {
            text.push_str(match i {
                7 => "{\"ts\":1}",
                8 | 30 => "  ",
                33 => "{not json",
                _ => good,
            });
            text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
        }
        text.push_str("{\"ts\":\"late\",\"service\":\"a\",\"revision\":\"r\",\"message\":\"m\"}\r");
        let config = NormalizerConfig::default();
        let path = Path::new("h");
        let (one, rejected_one) = parse_input_in(text.as_bytes(), &config, 1, path).unwrap();
        for n in [2, 3, 7, 64] {
            let (records, rejected) = parse_input_in(text.as_bytes(), &config, n, path).unwrap();
            assert_eq!(records.len(), one.len());
            assert_eq!(rejected, rejected_one, "{n} chunks");
        }
        assert_eq!(one.len(), 36, "41 lines, 2 blank, 3 bad");
        let lines: Vec<&str> = rejected_one
            .iter()
            .map(|r| &r[..r.find(',').unwrap()])
            .collect();
        assert_eq!(lines, ["{\"line\":7", "{\"line\":33", "{\"line\":41"]);
    }

    #[test]
    fn permute_puts_each_item_where_its_key_says() {
        let items: Vec<u32> = (0..200).collect();
        for seed in 1..50u64 {
            // A pseudo-random permutation.
            let mut keys: Vec<(i64, u32)> = items
                .iter()
                .map(|&i| {
                    (
                        ((u64::from(i) * 2_654_435_761 * seed) % 1_000_003) as i64,
                        i,
                    )
                })
                .collect();
            keys.sort_unstable();
            let want: Vec<u32> = keys.iter().map(|k| items[k.1 as usize]).collect();
            let mut got = items.clone();
            permute(&mut got, &mut keys);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn large_files_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let data: Vec<u8> = (0..40_000_037u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        assert!(read_input(&path).unwrap() == data);
    }
}
