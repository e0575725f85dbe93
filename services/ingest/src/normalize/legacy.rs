//! The normalizer: message → template + signature id, stack → frames, and secret
//! scrubbing. Pure functions, no IO.
//!
//! This is the walking-skeleton version: token-level masking of anything that
//! looks like an id or a number, a stable FNV-1a signature over (service,
//! exception type, template, top in-app functions), line-based stack parsing for
//! Python, JVM, Node.js and Go, and scrubbing of the most common secret shapes.
//! The ingest issue deepens each part behind the same functions.

use selfheal_schemas::Frame;

/// The normalized form of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// 64-bit signature id.
    pub signature: u64,
    /// Template with variable parts masked as `<*>`.
    pub template: String,
    /// Exception type, parsed from the stack or the message, if any.
    pub exception_type: Option<String>,
    /// Parsed stack frames, innermost (where the error was raised) first, whatever
    /// order the language prints them in.
    pub frames: Vec<Frame>,
}

/// Normalizer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizerConfig {
    /// Templates longer than this are truncated (characters).
    pub max_template_chars: usize,
    /// Path fragments that mark a frame as library code, not the service's own.
    pub library_markers: Vec<String>,
    /// How many in-app function names enter the signature.
    pub fingerprint_frames: usize,
}

impl Default for NormalizerConfig {
    fn default() -> Self {
        Self {
            max_template_chars: 200,
            library_markers: [
                "site-packages/",
                "dist-packages/",
                "/usr/lib/",
                "node_modules/",
                "java.",
                "javax.",
                "sun.",
                "jdk.",
                "/go/pkg/mod/",
                "runtime/",
                "<frozen",
                "internal/",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            fingerprint_frames: 3,
        }
    }
}

/// Normalizes one message (and its stack, if any) for `service`.
pub fn normalize(
    config: &NormalizerConfig,
    service: &str,
    message: &str,
    stack: Option<&str>,
    exception_type: Option<&str>,
) -> Normalized {
    let first_line = message.lines().next().unwrap_or_default();
    let template = truncate(&mask(first_line), config.max_template_chars);
    let frames = stack
        .map(|s| parse_stack(s, &config.library_markers))
        .unwrap_or_default();
    let exception_type = exception_type
        .map(str::to_owned)
        .or_else(|| stack.and_then(exception_from_stack))
        .or_else(|| exception_from_message(first_line));
    let mut h = Fnv::new();
    h.write(service.as_bytes());
    h.write(&[0]);
    h.write(exception_type.as_deref().unwrap_or_default().as_bytes());
    h.write(&[0]);
    h.write(template.as_bytes());
    // Function names, not line numbers: lines move on every deploy.
    for f in frames
        .iter()
        .filter(|f| f.in_app)
        .take(config.fingerprint_frames)
    {
        h.write(&[0]);
        h.write(f.function.as_bytes());
    }
    Normalized {
        signature: h.finish(),
        template,
        exception_type,
        frames,
    }
}

/// Masks tokens that carry ids or numbers. Structure words survive.
pub fn mask(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, token) in message.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&mask_token(token));
    }
    out
}

fn mask_token(token: &str) -> String {
    // Keep `key=` prefixes and surrounding punctuation, mask the value.
    if let Some((key, value)) = token.split_once('=') {
        if !key.is_empty() && !value.is_empty() && is_variable(value) {
            return format!("{key}=<*>");
        }
    }
    let trimmed = token.trim_matches(|c: char| {
        matches!(
            c,
            ',' | ';' | '(' | ')' | '[' | ']' | '"' | '\'' | '.' | ':'
        )
    });
    if trimmed.is_empty() || !is_variable(trimmed) {
        return token.to_owned();
    }
    token.replacen(trimmed, "<*>", 1)
}

/// A token is variable when it carries a digit (ids, numbers with units, hex,
/// addresses, timestamps) or is an email.
fn is_variable(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_digit()) || token.contains('@')
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((idx, _)) => s[..idx].to_owned(),
        None => s.to_owned(),
    }
}

/// Parses frames from a multi-line stack trace (Python, JVM, Node.js, Go),
/// innermost first (Python prints innermost last, so its frames are reversed).
pub fn parse_stack(stack: &str, library_markers: &[String]) -> Vec<Frame> {
    let lines: Vec<&str> = stack.lines().collect();
    let mut frames = Vec::new();
    let mut python = false;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        let py = python_frame(line);
        python |= py.is_some();
        let frame = py
            .or_else(|| jvm_or_node_frame(line))
            .or_else(|| go_frame(line, lines.get(i + 1).map(|l| l.trim())));
        if let Some((file, line_no, function)) = frame {
            let in_app = !library_markers.iter().any(|m| file.contains(m.as_str()));
            frames.push(Frame {
                file,
                line: line_no,
                function,
                in_app,
            });
        }
    }
    if python {
        frames.reverse();
    }
    frames
}

type RawFrame = (String, Option<i32>, String);

/// `File "/app/x.py", line 12, in quote`
fn python_frame(line: &str) -> Option<RawFrame> {
    let rest = line.strip_prefix("File \"")?;
    let (file, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(", line ")?;
    let (num, rest) = rest.split_once(',').unwrap_or((rest, ""));
    let function = rest.trim().strip_prefix("in ").unwrap_or("?").trim();
    Some((
        file.to_owned(),
        num.trim().parse().ok(),
        function.to_owned(),
    ))
}

/// JVM `at com.shop.Pricing.quote(Pricing.java:217)` and Node.js
/// `at quote (/app/src/pricing.js:217:13)` / `at /app/src/pricing.js:217:13`.
fn jvm_or_node_frame(line: &str) -> Option<RawFrame> {
    let rest = line.strip_prefix("at ")?;
    if let Some((func, loc)) = rest.rsplit_once(" (") {
        let loc = loc.strip_suffix(')')?;
        let (file, line_no) = split_location(loc);
        // JVM frames name the file without its package path; keep the qualified
        // function so triage can map `com.shop.Pricing` to `com/shop/Pricing.java`.
        return Some((file, line_no, func.trim().to_owned()));
    }
    if let Some((func, loc)) = rest.split_once('(') {
        let loc = loc.strip_suffix(')')?;
        let (file, line_no) = split_location(loc);
        return Some((file, line_no, func.trim().to_owned()));
    }
    let (file, line_no) = split_location(rest);
    Some((file, line_no, "<anonymous>".to_owned()))
}

/// Go: a function line followed by `\t/path/file.go:42 +0x1d`.
fn go_frame(line: &str, next: Option<&str>) -> Option<RawFrame> {
    let next = next?;
    if !next.contains(".go:") || line.contains(".go:") {
        return None;
    }
    let function = line.split('(').next()?.trim();
    if function.is_empty() || function.starts_with("goroutine ") {
        return None;
    }
    let loc = next.split_whitespace().next()?;
    let (file, line_no) = split_location(loc);
    Some((file, line_no, function.to_owned()))
}

/// `path:line[:col]` → (path, line).
fn split_location(loc: &str) -> (String, Option<i32>) {
    let mut parts = loc.rsplitn(3, ':');
    let last = parts.next().unwrap_or_default();
    let mid = parts.next();
    let head = parts.next();
    match (head, mid) {
        (Some(h), Some(m)) if m.parse::<i32>().is_ok() && last.parse::<i32>().is_ok() => {
            (h.to_owned(), m.parse().ok())
        }
        (_, Some(m)) if last.parse::<i32>().is_ok() => {
            let file = loc[..loc.len() - last.len() - 1].to_owned();
            let _ = m;
            (file, last.parse().ok())
        }
        _ => (loc.to_owned(), None),
    }
}

/// The exception type from the last line of a Python trace, a JVM head line, or
/// a Go panic.
fn exception_from_stack(stack: &str) -> Option<String> {
    for line in stack.lines().rev().chain(stack.lines()) {
        let line = line.trim();
        if let Some(t) = exception_from_message(line) {
            return Some(t);
        }
        if let Some(p) = line.strip_prefix("panic: ") {
            return Some(format!("panic: {}", mask(p)));
        }
    }
    None
}

/// `ValueError: …`, `java.lang.IllegalStateException: …`, `TypeError: …`.
fn exception_from_message(line: &str) -> Option<String> {
    let (head, _) = line.split_once(':')?;
    let head = head
        .trim()
        .strip_prefix("Caused by")
        .map_or(head, |_| head)
        .trim();
    let name = head.rsplit('.').next()?;
    let looks_like_type = !head.contains(' ')
        && name.chars().next().is_some_and(char::is_uppercase)
        && (name.ends_with("Error") || name.ends_with("Exception") || name.ends_with("Fault"));
    looks_like_type.then(|| head.to_owned())
}

/// Replaces secrets and personal data with `[REDACTED:<class>]`.
///
/// Skeleton coverage: bearer tokens, JWTs, `password=`/`secret=`/`token=`/`api_key=`
/// pairs, passwords in URLs, emails. The ingest issue adds vendor key prefixes
/// and Luhn-checked card numbers.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut redact_next = false;
    for (i, piece) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if redact_next {
            out.push_str("[REDACTED:token]");
            redact_next = false;
            continue;
        }
        if piece.eq_ignore_ascii_case("bearer") {
            out.push_str(piece);
            redact_next = true;
            continue;
        }
        out.push_str(&scrub_token(piece));
    }
    out
}

fn scrub_token(token: &str) -> String {
    const SECRET_KEYS: [&str; 7] = [
        "password", "passwd", "pwd", "secret", "token", "api_key", "apikey",
    ];
    if let Some((key, value)) = token.split_once('=') {
        let k = key.to_ascii_lowercase();
        if !value.is_empty() && SECRET_KEYS.iter().any(|s| k.ends_with(s)) {
            return format!("{key}=[REDACTED:secret]");
        }
    }
    if let Some(scheme_end) = token.find("://") {
        let rest = &token[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            if let Some(colon) = rest[..at].find(':') {
                let user = &rest[..colon];
                return format!(
                    "{}://{user}:[REDACTED:password]{}",
                    &token[..scheme_end],
                    &rest[at..]
                );
            }
        }
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() == 3 && parts[0].starts_with("eyJ") && parts.iter().all(|p| p.len() >= 4) {
        return "[REDACTED:jwt]".to_owned();
    }
    if let Some(at) = token.find('@') {
        let (local, domain) = (&token[..at], &token[at + 1..]);
        if !local.is_empty() && domain.contains('.') && !token.contains("://") {
            return "[REDACTED:email]".to_owned();
        }
    }
    token.to_owned()
}

/// FNV-1a, 64 bit: stable across processes, platforms and releases (unlike
/// `std`'s `DefaultHasher`), which signature ids must be.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NormalizerConfig {
        NormalizerConfig::default()
    }

    #[test]
    fn ids_and_numbers_are_masked_so_one_bug_is_one_signature() {
        let a = normalize(
            &cfg(),
            "checkout",
            "Timeout after 3001ms calling payments-api (request_id=9f8e7d)",
            None,
            None,
        );
        let b = normalize(
            &cfg(),
            "checkout",
            "Timeout after 12ms calling payments-api (request_id=0a1b2c)",
            None,
            None,
        );
        assert_eq!(
            a.template,
            "Timeout after <*> calling payments-api (request_id=<*>"
        );
        assert_eq!(a.signature, b.signature);
        let other = normalize(
            &cfg(),
            "checkout",
            "Connection refused calling payments-api",
            None,
            None,
        );
        assert_ne!(a.signature, other.signature);
        let other_service = normalize(
            &cfg(),
            "cart",
            "Timeout after 3001ms calling payments-api (request_id=9f8e7d)",
            None,
            None,
        );
        assert_ne!(a.signature, other_service.signature);
    }

    #[test]
    fn python_stack_gives_frames_and_exception_type() {
        let stack = "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/flask/app.py\", line 880, in dispatch\n  File \"/app/src/checkout/pricing.py\", line 217, in quote\nKeyError: 'currency'";
        let n = normalize(
            &cfg(),
            "checkout",
            "KeyError: 'currency'",
            Some(stack),
            None,
        );
        assert_eq!(n.exception_type.as_deref(), Some("KeyError"));
        assert_eq!(n.frames.len(), 2);
        // Innermost first: the raising frame, then its caller in flask.
        assert!(!n.frames[1].in_app);
        assert_eq!(n.frames[0].file, "/app/src/checkout/pricing.py");
        assert_eq!(n.frames[0].line, Some(217));
        assert_eq!(n.frames[0].function, "quote");
        assert!(n.frames[0].in_app);
    }

    #[test]
    fn line_numbers_do_not_change_the_signature() {
        let s1 = "  File \"/app/a.py\", line 10, in f";
        let s2 = "  File \"/app/a.py\", line 99, in f";
        let a = normalize(&cfg(), "s", "ValueError: bad", Some(s1), None);
        let b = normalize(&cfg(), "s", "ValueError: bad", Some(s2), None);
        assert_eq!(a.signature, b.signature);
        let c = normalize(
            &cfg(),
            "s",
            "ValueError: bad",
            Some("  File \"/app/a.py\", line 10, in g"),
            None,
        );
        assert_ne!(a.signature, c.signature);
    }

    #[test]
    fn jvm_node_and_go_frames() {
        let jvm = parse_stack("java.lang.IllegalStateException: x\n\tat com.shop.Pricing.quote(Pricing.java:217)\n\tat java.base/java.lang.Thread.run(Thread.java:833)", &cfg().library_markers);
        assert_eq!(jvm[0].function, "com.shop.Pricing.quote");
        assert_eq!(jvm[0].file, "Pricing.java");
        assert_eq!(jvm[0].line, Some(217));
        let node = parse_stack("TypeError: x\n    at quote (/app/src/pricing.js:217:13)\n    at /app/node_modules/express/lib/router.js:5:1", &cfg().library_markers);
        assert_eq!(node[0].file, "/app/src/pricing.js");
        assert_eq!(node[0].line, Some(217));
        assert!(!node[1].in_app);
        let go = parse_stack("panic: runtime error\n\ngoroutine 1 [running]:\nmain.quote(0x1)\n\t/app/pricing.go:42 +0x1d", &cfg().library_markers);
        assert_eq!(go.len(), 1);
        assert_eq!(go[0].function, "main.quote");
        assert_eq!(go[0].line, Some(42));
    }

    #[test]
    fn scrub_removes_secrets_and_keeps_ordinary_text() {
        let s = scrub("auth failed for bob@example.com with Bearer abc.def password=hunter2 at postgres://app:s3cret@db:5432/x token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl");
        for secret in [
            "bob@example.com",
            "abc.def",
            "hunter2",
            "s3cret",
            "eyJhbGciOi",
        ] {
            assert!(!s.contains(secret), "{secret} leaked: {s}");
        }
        let plain = "Timeout after 3001ms calling payments-api";
        assert_eq!(scrub(plain), plain);
    }
}
