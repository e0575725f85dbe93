//! `selfheal normalize`: one message per line on stdin, `<signature id>\t<template>`
//! per line on stdout, same order. The benchmarks drive it.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;

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
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    let input = io::BufReader::with_capacity(1 << 20, stdin);
    let output = io::BufWriter::with_capacity(1 << 20, stdout);
    normalize_stream(
        normalizer_config(&config.ingest),
        &args.service,
        input,
        output,
    )?;
    Ok(())
}

/// Normalizes every line of `input` into `output`; returns the number of lines.
/// Invalid UTF-8 is replaced (U+FFFD), never an error: logs are untrusted bytes.
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
}
