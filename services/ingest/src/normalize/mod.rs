//! The normalizer: message → template + signature id, stack → exception type and
//! frames, and secret scrubbing. Pure: no IO, no clock, no global state.
//!
//! # Layout
//! - [`mask`]: the variable parts of a line (ids, numbers, addresses …) → `<*>`.
//! - [`group`]: online Drain-style grouping of masked templates, so messages that
//!   differ only in non-id words (user names, hosts) share a signature.
//! - [`stack`]: stack-trace parsing for Python, JVM, Go, Node.js, Rust and Ruby.
//! - [`mod@scrub`]: secrets and personal data → `[REDACTED:<class>]`.
//! - [`hash`]: the stable 64-bit hash behind signature ids.
//!
//! A [`Normalizer`] is stateful (the grouper learns templates as it goes), so it
//! is deterministic for a given input order; share one per process behind a lock
//! (the intake does) or shard by service.

pub mod group;
pub mod hash;
pub mod mask;
pub use selfheal_common::scrub;
pub mod stack;

use selfheal_schemas::Frame;

pub use group::GroupingConfig;
pub use scrub::scrub;
pub use stack::InApp;

use hash::StableHasher;

/// The normalized form of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// 64-bit signature id.
    pub signature: u64,
    /// Template: variable parts masked as `<*>`, secrets scrubbed.
    pub template: String,
    /// Exception type: given, parsed from the stack, or from the message.
    pub exception_type: Option<String>,
    /// Parsed stack frames, innermost first, whatever order the language prints
    /// them in.
    pub frames: Vec<Frame>,
}

/// A message made ready for grouping by [`Normalizer::prepare_into`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    /// Exception type: given, parsed from the stack, or from the message.
    pub exception_type: Option<String>,
    /// The message's first line, masked and truncated.
    pub masked: String,
}

/// Normalizer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizerConfig {
    /// Templates longer than this are truncated (characters).
    pub max_template_chars: usize,
    /// Which frames are the service's own code.
    pub in_app: InApp,
    /// How many in-app function names enter the signature.
    pub fingerprint_frames: usize,
    /// Online grouping of templates.
    pub grouping: GroupingConfig,
}

impl Default for NormalizerConfig {
    fn default() -> Self {
        Self {
            max_template_chars: 200,
            in_app: InApp {
                prefixes: Vec::new(),
                library_markers: stack::default_library_markers(),
            },
            fingerprint_frames: 3,
            grouping: GroupingConfig::default(),
        }
    }
}

/// The stateful normalizer. See the module docs.
#[derive(Debug)]
pub struct Normalizer {
    config: NormalizerConfig,
    grouper: group::Grouper,
    masked: String,
}

impl Normalizer {
    /// A normalizer that has seen nothing yet.
    pub fn new(config: NormalizerConfig) -> Self {
        Self {
            grouper: group::Grouper::new(config.grouping.clone()),
            config,
            masked: String::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &NormalizerConfig {
        &self.config
    }

    /// Normalizes one message (and its stack, if any) of `service`.
    pub fn normalize(
        &mut self,
        service: &str,
        message: &str,
        stack: Option<&str>,
        exception_type: Option<&str>,
    ) -> Normalized {
        let parsed = stack
            .map(|s| stack::parse(s, &self.config.in_app))
            .unwrap_or_default();
        let fingerprint = Self::fingerprint(&self.config, &parsed.frames);
        let mut prepared = Prepared {
            exception_type: None,
            masked: std::mem::take(&mut self.masked),
        };
        Self::prepare_into(
            &self.config,
            message,
            Some(&parsed),
            exception_type,
            &mut prepared,
        );
        let (signature, template) = self.group_prepared(service, &prepared, &fingerprint);
        let template = template.to_owned();
        self.masked = prepared.masked;
        Normalized {
            signature,
            template,
            exception_type: prepared.exception_type,
            frames: parsed.frames,
        }
    }

    /// The pure half of [`Normalizer::normalize`] (no state, so it can run
    /// ahead on another thread): the exception type and the masked template
    /// of `message`, given its parsed stack, into `out`.
    pub fn prepare_into(
        config: &NormalizerConfig,
        message: &str,
        stack: Option<&stack::Parsed>,
        exception_type: Option<&str>,
        out: &mut Prepared,
    ) {
        let first_line = first_line(message);
        // A message-less event (e.g. only a stack) is named by the stack's message.
        let text = if first_line.trim().is_empty() {
            stack
                .and_then(|p| p.message.as_deref())
                .map(first_line_of)
                .unwrap_or_default()
        } else {
            first_line
        };
        out.exception_type = exception_type
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_owned())
            .or_else(|| stack.and_then(|p| p.exception_type.clone()))
            .or_else(|| stack::exception_head(text).map(|(t, _)| t));
        Self::mask_line(config, text, &mut out.masked);
    }

    /// What of a stack enters the signature: the function names of the first
    /// in-app frames. Pure, so it can be computed once per distinct stack.
    pub fn fingerprint(config: &NormalizerConfig, frames: &[Frame]) -> Vec<String> {
        // Function names, not line numbers: lines move on every deploy.
        frames
            .iter()
            .filter(|f| f.in_app)
            .take(config.fingerprint_frames)
            .map(|f| fingerprint_function(&f.function))
            .collect()
    }

    /// The stateful half of [`Normalizer::normalize`]: groups what
    /// [`Normalizer::prepare_into`] made of a message of `service` and returns
    /// the signature and the group's current template (borrowed until the next
    /// call). Calls must come in input order (grouping is online).
    pub fn group_prepared(
        &mut self,
        service: &str,
        prepared: &Prepared,
        fingerprint: &[String],
    ) -> (u64, &str) {
        let (group, template) = self.group_masked(
            service,
            prepared.exception_type.as_deref().unwrap_or_default(),
            &prepared.masked,
        );
        let mut h = StableHasher::new();
        h.write_u64(group);
        for f in fingerprint {
            h.write_str(f);
        }
        (h.finish(), template)
    }

    /// The fast path for a bare message line (no stack, no exception type given):
    /// the signature and the template, borrowed until the next call.
    pub fn normalize_line(&mut self, service: &str, line: &str) -> (u64, &str) {
        let (group, template) = self.group_line(service, "", line);
        let mut h = StableHasher::new();
        h.write_u64(group);
        (h.finish(), template)
    }

    /// The masking half of [`Normalizer::normalize_line`], with no state, so it
    /// can run on another thread: `line` → the masked, truncated template in
    /// `out` (cleared first).
    pub fn mask_line(config: &NormalizerConfig, line: &str, out: &mut String) {
        let budget = config.max_template_chars.saturating_mul(4).max(64);
        mask::mask_into(truncate_bytes(line, budget), out);
        truncate_template(out, config.max_template_chars);
    }

    /// Like [`Normalizer::mask_line`], appending to `out` instead of replacing it.
    pub fn mask_line_append(config: &NormalizerConfig, line: &str, out: &mut String) {
        let budget = config.max_template_chars.saturating_mul(4).max(64);
        let start = out.len();
        mask::mask_append(truncate_bytes(line, budget), out);
        truncate_template_from(out, start, config.max_template_chars);
    }

    /// The grouping half of [`Normalizer::normalize_line`]: `masked` is what
    /// [`Normalizer::mask_line`] made of the line. Calls must come in input
    /// order (grouping is online).
    pub fn group_masked_line(&mut self, service: &str, masked: &str) -> (u64, &str) {
        let (group, template) = self.group_masked(service, "", masked);
        let mut h = StableHasher::new();
        h.write_u64(group);
        (h.finish(), template)
    }

    fn group_line(&mut self, service: &str, exception_type: &str, line: &str) -> (u64, &str) {
        let mut masked = std::mem::take(&mut self.masked);
        Self::mask_line(&self.config, line, &mut masked);
        self.masked = masked;
        let mut h = StableHasher::new();
        h.write_str(service);
        h.write_str(exception_type);
        let scope = h.finish();
        let assigned = self
            .grouper
            .group_with(scope, &self.masked, |t| scrub::scrub(t));
        (assigned.group, assigned.template)
    }

    fn group_masked(&mut self, service: &str, exception_type: &str, masked: &str) -> (u64, &str) {
        let mut h = StableHasher::new();
        h.write_str(service);
        h.write_str(exception_type);
        let scope = h.finish();
        let assigned = self.grouper.group_with(scope, masked, |t| scrub::scrub(t));
        (assigned.group, assigned.template)
    }
}

fn first_line(s: &str) -> &str {
    first_line_of(s)
}

fn first_line_of(s: &str) -> &str {
    s.split('\n')
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Truncates to `max_chars` characters, at a token boundary when there is one.
fn truncate_template(t: &mut String, max_chars: usize) {
    truncate_template_from(t, 0, max_chars);
}

/// [`truncate_template`] of the part of `t` from byte `from` on.
fn truncate_template_from(t: &mut String, from: usize, max_chars: usize) {
    let part = &t[from..];
    if part.len() <= max_chars {
        return;
    }
    let Some((idx, _)) = part.char_indices().nth(max_chars) else {
        return;
    };
    let cut = match part[..idx].rfind(' ') {
        Some(sp) if sp > 0 => sp,
        _ => idx,
    };
    t.truncate(from + cut);
}

/// Function name as it enters the fingerprint: compiler-generated numbering
/// (`lambda$quote$0`, `block (2 levels) in`) varies between builds.
fn fingerprint_function(f: &str) -> String {
    let mut out = String::with_capacity(f.len());
    let mut after_dollar = false;
    for c in f.chars() {
        if c.is_ascii_digit() && after_dollar {
            continue;
        }
        after_dollar = c == '$' || (after_dollar && c.is_ascii_digit());
        out.push(c);
    }
    // Ruby: `block (2 levels) in create` → `block in create`.
    if let (Some(open), Some(close)) = (out.find(" ("), out.find(" levels)")) {
        if open < close {
            out.replace_range(open..close + " levels)".len(), "");
        }
    }
    out
}

#[cfg(test)]
mod tests;
