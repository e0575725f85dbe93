//! Secret and personal-data scrubbing, one implementation for every service:
//! everything that leaves ingest (templates, sample messages, stacks, build
//! logs), the fixer's command output and agent prompts, and what triage sends
//! to a language model go through [`scrub`].
//!
//! Detectors each find byte ranges; overlapping ranges merge and each becomes
//! `[REDACTED:<class>]`. Classes: private-key blocks, bearer/basic credentials,
//! `password=`-style pairs (also `"password": "…"` and `password: …`),
//! passwords in URLs, JWTs, API keys with well-known vendor prefixes (AWS, GitHub,
//! GitLab, Slack, Stripe, Google, OpenAI/Anthropic, npm, SendGrid, Hugging Face,
//! Shopify, DigitalOcean), Azure storage `AccountKey=`/`SharedAccessKey=` and
//! SAS `sig=`, Slack webhook paths, Luhn-valid card numbers, emails, and the
//! personal data of `pii.rs`: IBANs, US SSNs, phone numbers and IP
//! addresses (IPs can be switched off: [`set_ip_scrubbing`]). Text with
//! nothing to redact is returned borrowed.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::pii;

/// Whether [`scrub`] redacts IP addresses (`ingest.scrub_ips`).
static SCRUB_IPS: AtomicBool = AtomicBool::new(true);

/// Sets whether [`scrub`] redacts IP addresses, for the whole process (one
/// policy for everything that leaves it: `selfheal up` runs all services in
/// one process). On by default; ingest sets it from `ingest.scrub_ips`.
pub fn set_ip_scrubbing(on: bool) {
    SCRUB_IPS.store(on, Ordering::Relaxed);
}

/// Replaces secrets and personal data in `text` with `[REDACTED:<class>]`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    scrub_with(text, SCRUB_IPS.load(Ordering::Relaxed))
}

/// [`scrub`] with IP addresses redacted or not, whatever the process setting.
pub fn scrub_with(text: &str, ips: bool) -> Cow<'_, str> {
    let mut found: Vec<(usize, usize, &'static str)> = Vec::new();
    let mut t = Triggers::of(text.as_bytes());
    t.ips = ips;
    detect(text, t, &mut found);
    redact(text, found)
}

/// Bytes without which a detector cannot find anything, gathered in one
/// pass so that most text skips most detectors. Each is a necessary
/// condition of its detector, so skipping never changes what is found.
#[derive(Debug, Clone, Copy)]
struct Triggers {
    /// `-----BEGIN `.
    dash: bool,
    /// `key=value`, `key: value`, `scheme://`.
    separator: bool,
    /// `bearer `, `basic `.
    b: bool,
    /// `eyJ`.
    capital_j: bool,
    /// Emails, `user:password@host`.
    at: bool,
    /// Cards have 13 digits at least.
    digits: usize,
    /// E.164 phone numbers.
    plus: bool,
    /// IPv4, SAS and webhook URLs.
    dot: bool,
    /// Slack webhook paths.
    slash: bool,
    /// Dashed SSNs and phone numbers.
    dash_digits: bool,
    /// Not a trigger: whether IP addresses are redacted at all.
    ips: bool,
}

impl Triggers {
    fn of(b: &[u8]) -> Self {
        let mut t = Triggers {
            dash: false,
            separator: false,
            b: false,
            capital_j: false,
            at: false,
            digits: 0,
            plus: false,
            dot: false,
            slash: false,
            dash_digits: false,
            ips: true,
        };
        for &c in b {
            match c {
                b'-' => t.dash = true,
                b'=' | b':' => t.separator = true,
                b'b' | b'B' => t.b = true,
                b'J' => t.capital_j = true,
                b'@' => t.at = true,
                b'0'..=b'9' => t.digits += 1,
                b'+' => t.plus = true,
                b'.' => t.dot = true,
                b'/' => t.slash = true,
                _ => {}
            }
        }
        t.dash_digits = t.dash && t.digits >= 9;
        t
    }

    /// Every detector runs (what the triggers must never change).
    #[cfg(test)]
    fn all() -> Self {
        Triggers {
            dash: true,
            separator: true,
            b: true,
            capital_j: true,
            at: true,
            digits: usize::MAX,
            plus: true,
            dot: true,
            slash: true,
            dash_digits: true,
            ips: true,
        }
    }
}

fn detect(text: &str, t: Triggers, found: &mut Vec<(usize, usize, &'static str)>) {
    let b = text.as_bytes();
    if t.dash {
        private_keys(text, found);
    }
    if t.separator {
        key_values(b, found);
    }
    if t.b {
        bearer(b, found);
    }
    if t.separator && t.at {
        url_passwords(text, found);
    }
    if t.capital_j {
        jwts(b, found);
    }
    vendor_keys(b, found);
    if t.at {
        emails(b, found);
    }
    if t.digits >= 13 {
        cards(b, found);
    }
    if t.dot && t.slash {
        pii::slack_webhooks(text, found);
    }
    if t.digits >= 12 {
        pii::ibans(b, found);
    }
    if t.dash_digits {
        pii::ssns(b, found);
    }
    if t.plus || t.digits >= 10 {
        pii::phones(b, found);
    }
    if t.ips && t.dot && t.digits >= 4 {
        pii::ipv4(b, found);
    }
    if t.ips && t.separator {
        pii::ipv6(b, found);
    }
}

fn redact<'a>(text: &'a str, mut found: Vec<(usize, usize, &'static str)>) -> Cow<'a, str> {
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    found.sort_unstable_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (s, e, class) in found {
        if e <= pos {
            continue;
        }
        let s = s.max(pos);
        // Ranges are found at ASCII bytes, so they are char boundaries; guard anyway.
        if !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            continue;
        }
        out.push_str(&text[pos..s]);
        out.push_str("[REDACTED:");
        out.push_str(class);
        out.push(']');
        pos = e;
    }
    out.push_str(&text[pos..]);
    Cow::Owned(out)
}

fn is_cred_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'.' | b'_' | b'~' | b'-')
}

/// A word that looks like a credential rather than prose: credential alphabet,
/// at least 6 characters, and not a plain lowercase word.
fn credential_like(w: &[u8]) -> bool {
    w.len() >= 6
        && w.iter().all(|&c| is_cred_byte(c))
        && !w.iter().all(|c| c.is_ascii_lowercase())
        && w != b"<*>"
}

fn private_keys(text: &str, found: &mut Vec<(usize, usize, &'static str)>) {
    let mut from = 0;
    while let Some(p) = text[from..].find("-----BEGIN ") {
        let s = from + p;
        let Some(h) = text[s..]
            .find("-----\n")
            .or_else(|| text[s + 11..].find("-----").map(|x| x + 11))
        else {
            break;
        };
        if !text[s..s + h].contains("PRIVATE KEY") {
            from = s + 11;
            continue;
        }
        let end = match text[s + h..].find("-----END ") {
            Some(e) => {
                let e = s + h + e;
                match text[e + 9..].find("-----") {
                    Some(x) => e + 9 + x + 5,
                    None => text.len(),
                }
            }
            None => text.len(),
        };
        found.push((s, end, "private_key"));
        from = end;
    }
}

fn is_secret_key(key: &[u8]) -> bool {
    const SUFFIXES: [&str; 20] = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "clientsecret",
        "authorization",
        "credential",
        "credentials",
        "sessionid",
        "auth",
        "passphrase",
        // Azure storage and Service Bus connection strings, SAS and
        // presigned URLs.
        "accountkey",
        "sharedaccesskey",
        "sig",
        "signature",
    ];
    let mut norm = [0u8; 64];
    let mut n = 0;
    for &c in key.iter().rev() {
        if c.is_ascii_alphanumeric() {
            if n == norm.len() {
                break;
            }
            norm[n] = c.to_ascii_lowercase();
            n += 1;
        }
    }
    // `norm` holds the key reversed; compare reversed suffixes.
    SUFFIXES.iter().any(|s| {
        let s = s.as_bytes();
        s.len() <= n && s.iter().rev().zip(&norm[..n]).all(|(a, b)| a == b)
    })
}

/// `password=…`, `"api_key": "…"`, `secret: …`, `?token=…&`.
fn key_values(b: &[u8], found: &mut Vec<(usize, usize, &'static str)>) {
    for (i, &c) in b.iter().enumerate() {
        if c != b'=' && c != b':' {
            continue;
        }
        // The key ends right before the separator (after an optional closing quote).
        let mut k_end = i;
        if k_end > 0 && (b[k_end - 1] == b'"' || b[k_end - 1] == b'\'') {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0
            && (b[k_start - 1].is_ascii_alphanumeric()
                || matches!(b[k_start - 1], b'_' | b'-' | b'.'))
        {
            k_start -= 1;
        }
        if k_start == k_end || !is_secret_key(&b[k_start..k_end]) {
            continue;
        }
        let mut v = i + 1;
        let mut spaced = false;
        while v < b.len() && b[v] == b' ' {
            v += 1;
            spaced = true;
        }
        if c == b':' && v < b.len() && b[v] == b'/' {
            continue; // a URL scheme, handled elsewhere
        }
        let quote = match b.get(v) {
            Some(&q @ (b'"' | b'\'')) => {
                v += 1;
                Some(q)
            }
            _ => None,
        };
        let mut e = v;
        match quote {
            Some(q) => {
                while e < b.len() && b[e] != q && b[e] != b'\n' {
                    e += 1;
                }
            }
            None => {
                while e < b.len()
                    && !b[e].is_ascii_whitespace()
                    && !matches!(b[e], b'&' | b',' | b';' | b')' | b'}' | b']' | b'"' | b'\'')
                {
                    e += 1;
                }
            }
        }
        if e == v || &b[v..e] == b"<*>" || b[v..e].starts_with(b"[REDACTED") {
            continue;
        }
        // `token: expired` in prose is not a secret; `token: eyJ…` is.
        if (c == b':' || spaced) && quote.is_none() && !credential_like(&b[v..e]) {
            continue;
        }
        found.push((v, e, "secret"));
    }
}

/// `Bearer <token>`, `Basic <base64>`.
fn bearer(b: &[u8], found: &mut Vec<(usize, usize, &'static str)>) {
    let mut i = 0;
    while i + 6 < b.len() {
        let word = if b[i..].len() >= 7 && b[i..i + 7].eq_ignore_ascii_case(b"bearer ") {
            7
        } else if b[i..].len() >= 6 && b[i..i + 6].eq_ignore_ascii_case(b"basic ") {
            6
        } else {
            i += 1;
            continue;
        };
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let mut s = i + word;
        while s < b.len() && b[s] == b' ' {
            s += 1;
        }
        let mut e = s;
        while e < b.len() && is_cred_byte(b[e]) {
            e += 1;
        }
        if credential_like(&b[s..e])
            || (word == 7 && e - s >= 6 && !b[s..e].iter().all(u8::is_ascii_alphabetic))
        {
            found.push((s, e, "token"));
        }
        i = e.max(i + 1);
    }
}

/// `scheme://user:password@host`.
fn url_passwords(text: &str, found: &mut Vec<(usize, usize, &'static str)>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(p) = text[from..].find("://") {
        let start = from + p + 3;
        let mut e = start;
        while e < b.len()
            && !b[e].is_ascii_whitespace()
            && !matches!(b[e], b'/' | b'?' | b'#' | b'"' | b'\'')
        {
            e += 1;
        }
        if let Some(at) = b[start..e].iter().rposition(|&c| c == b'@') {
            let userinfo = &b[start..start + at];
            if let Some(colon) = userinfo.iter().position(|&c| c == b':') {
                if colon + 1 < at {
                    found.push((start + colon + 1, start + at, "password"));
                }
            }
        }
        from = e.max(start);
    }
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn jwts(b: &[u8], found: &mut Vec<(usize, usize, &'static str)>) {
    let mut i = 0;
    while i + 3 <= b.len() {
        if &b[i..i + 3] != b"eyJ" || (i > 0 && is_b64url(b[i - 1])) {
            i += 1;
            continue;
        }
        let mut e = i;
        let mut parts = 0;
        let mut ok = true;
        loop {
            let s = e;
            while e < b.len() && is_b64url(b[e]) {
                e += 1;
            }
            if e - s < 4 {
                ok = false;
                break;
            }
            parts += 1;
            if parts == 3 || e >= b.len() || b[e] != b'.' {
                break;
            }
            e += 1;
        }
        if ok && parts == 3 {
            found.push((i, e, "jwt"));
            i = e;
        } else {
            i += 3;
        }
    }
}

struct Vendor {
    prefix: &'static [u8],
    min: usize,
    class: &'static str,
    alphabet: fn(u8) -> bool,
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn upper_alnum(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn key_chars(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn dotted(c: u8) -> bool {
    key_chars(c) || c == b'.'
}

/// `min`: characters after the prefix. GitHub's classic tokens carry 36; 16
/// already makes `ghp_…` a token rather than a word, and redacting a
/// truncated or test token costs nothing.
const VENDORS: &[Vendor] = &[
    Vendor {
        prefix: b"AKIA",
        min: 16,
        class: "aws_key",
        alphabet: upper_alnum,
    },
    Vendor {
        prefix: b"ASIA",
        min: 16,
        class: "aws_key",
        alphabet: upper_alnum,
    },
    Vendor {
        prefix: b"ghp_",
        min: 16,
        class: "github_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"gho_",
        min: 16,
        class: "github_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"ghu_",
        min: 16,
        class: "github_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"ghs_",
        min: 16,
        class: "github_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"ghr_",
        min: 16,
        class: "github_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"github_pat_",
        min: 20,
        class: "github_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"glpat-",
        min: 20,
        class: "gitlab_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"xoxb-",
        min: 10,
        class: "slack_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"xoxp-",
        min: 10,
        class: "slack_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"xoxa-",
        min: 10,
        class: "slack_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"xoxr-",
        min: 10,
        class: "slack_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"xoxs-",
        min: 10,
        class: "slack_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"xoxe-",
        min: 10,
        class: "slack_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"sk_live_",
        min: 10,
        class: "stripe_key",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"sk_test_",
        min: 10,
        class: "stripe_key",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"rk_live_",
        min: 10,
        class: "stripe_key",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"rk_test_",
        min: 10,
        class: "stripe_key",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"whsec_",
        min: 20,
        class: "stripe_key",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"AIza",
        min: 30,
        class: "google_key",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"ya29.",
        min: 20,
        class: "google_token",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"sk-",
        min: 20,
        class: "api_key",
        alphabet: key_chars,
    },
    Vendor {
        prefix: b"npm_",
        min: 30,
        class: "npm_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"SG.",
        min: 40,
        class: "sendgrid_key",
        alphabet: dotted,
    },
    Vendor {
        prefix: b"hf_",
        min: 30,
        class: "huggingface_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"shpat_",
        min: 32,
        class: "shopify_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"shpss_",
        min: 32,
        class: "shopify_token",
        alphabet: alnum,
    },
    Vendor {
        prefix: b"dop_v1_",
        min: 40,
        class: "digitalocean_token",
        alphabet: alnum,
    },
];

fn vendor_keys(b: &[u8], found: &mut Vec<(usize, usize, &'static str)>) {
    for i in 0..b.len() {
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let c = b[i];
        if !matches!(
            c,
            b'A' | b'g' | b'x' | b's' | b'r' | b'w' | b'y' | b'n' | b'S' | b'h' | b'd'
        ) {
            continue;
        }
        // Only vendors whose prefix starts with `c` can match (in table order,
        // as before: the first long enough wins).
        for v in VENDORS.iter().filter(|v| v.prefix[0] == c) {
            if b[i..].starts_with(v.prefix) {
                let s = i + v.prefix.len();
                let mut e = s;
                while e < b.len() && (v.alphabet)(b[e]) {
                    e += 1;
                }
                if e - s >= v.min {
                    found.push((i, e, v.class));
                    break;
                }
            }
        }
    }
}

fn emails(b: &[u8], found: &mut Vec<(usize, usize, &'static str)>) {
    for (i, &c) in b.iter().enumerate() {
        if c != b'@' {
            continue;
        }
        // `scheme://user:pw@host` is a URL's userinfo, not an email.
        let token_start = b[..i]
            .iter()
            .rposition(u8::is_ascii_whitespace)
            .map_or(0, |p| p + 1);
        if b[token_start..i].windows(3).any(|w| w == b"://") {
            continue;
        }
        let mut s = i;
        while s > 0
            && (b[s - 1].is_ascii_alphanumeric()
                || matches!(b[s - 1], b'.' | b'_' | b'%' | b'+' | b'-'))
        {
            s -= 1;
        }
        let mut e = i + 1;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'.' | b'-')) {
            e += 1;
        }
        while e > i + 1 && b[e - 1] == b'.' {
            e -= 1;
        }
        let domain = &b[i + 1..e];
        let Some(dot) = domain.iter().rposition(|&c| c == b'.') else {
            continue;
        };
        let tld = &domain[dot + 1..];
        if s < i && dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
            found.push((s, e, "email"));
        }
    }
}

/// 13–19 digits, optionally in groups separated by single spaces or dashes,
/// passing the Luhn check.
fn cards(b: &[u8], found: &mut Vec<(usize, usize, &'static str)>) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit()
            || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        let mut digits = [0u8; 19];
        let mut n = 0;
        let mut e = i;
        let mut last_digit_end = i;
        while e < b.len() && n <= 19 {
            if b[e].is_ascii_digit() {
                if n == 19 {
                    n = 20;
                    break;
                }
                digits[n] = b[e] - b'0';
                n += 1;
                e += 1;
                last_digit_end = e;
            } else if (b[e] == b' ' || b[e] == b'-')
                && e + 1 < b.len()
                && b[e + 1].is_ascii_digit()
                && e > i
                && b[e - 1].is_ascii_digit()
            {
                e += 1;
            } else {
                break;
            }
        }
        let followed_by_alnum =
            last_digit_end < b.len() && b[last_digit_end].is_ascii_alphanumeric();
        if (13..=19).contains(&n) && !followed_by_alnum && luhn(&digits[..n]) {
            found.push((i, last_digit_end, "card"));
        }
        // Skip the whole run so its tail is not re-examined as a new number.
        while i < b.len()
            && (b[i].is_ascii_digit()
                || ((b[i] == b' ' || b[i] == b'-') && i + 1 < b.len() && b[i + 1].is_ascii_digit()))
        {
            i += 1;
        }
        i = i.max(last_digit_end);
    }
}

/// The Luhn checksum (ISO/IEC 7812).
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(d);
        if k % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, the secret that must disappear, the class it becomes).
    const SECRETS: &[(&str, &str, &str)] = &[
        ("auth header Authorization: Bearer abc123.def-456_ghi rejected", "abc123.def-456_ghi", "token"),
        ("upstream said bearer 9f8e7d6c5b4a", "9f8e7d6c5b4a", "token"),
        ("basic creds Basic dXNlcjpodW50ZXIy failed", "dXNlcjpodW50ZXIy", "token"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk expired", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0", "jwt"),
        ("key AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE", "aws_key"),
        ("push with ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 failed", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "github_token"),
        ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_token"),
        ("slack xoxb-123456789012-abcdefABCDEF failed", "xoxb-123456789012-abcdefABCDEF", "slack_token"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc invalid", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
        ("google AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe quota", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "google_key"),
        ("gitlab glpat-xxxxxxxxxxxxxxxxxxxx1234 revoked", "glpat-xxxxxxxxxxxxxxxxxxxx1234", "gitlab_token"),
        ("openai sk-proj-abcdefghijklmnopqrstuvwxyz123456 quota", "sk-proj-abcdefghijklmnopqrstuvwxyz123456", "api_key"),
        ("connect postgres://app:s3cr3t-pw@db.internal:5432/shop failed", "s3cr3t-pw", "password"),
        ("login password=hunter2 rejected", "hunter2", "secret"),
        ("config {\"api_key\": \"abcDEF123\", \"x\": 1}", "abcDEF123", "secret"),
        ("client_secret='very secret value' bad", "very secret value", "secret"),
        ("callback https://x.example/cb?code=1&access_token=zzzTOKENzzz&y=2", "zzzTOKENzzz", "secret"),
        ("db password: Tr0ub4dor&3 wrong", "Tr0ub4dor", "secret"),
        ("charge 4111 1111 1111 1111 declined", "4111 1111 1111 1111", "card"),
        ("charge 5500-0000-0000-0004 declined", "5500-0000-0000-0004", "card"),
        ("charge 378282246310005 declined", "378282246310005", "card"),
        ("mail to bob.smith+x@mail.example.com bounced", "bob.smith+x@mail.example.com", "email"),
        ("key -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY----- loaded", "MIIEpAIBAAKCAQEA", "private_key"),
        ("post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX failed", "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "slack_webhook"),
        ("storage DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net down", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq", "secret"),
        ("bus Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=app;SharedAccessKey=c2VjcmV0c2VjcmV0c2VjcmV0 refused", "c2VjcmV0c2VjcmV0c2VjcmV0", "secret"),
        ("GET https://shop.blob.core.windows.net/c/x.png?sv=2022-11-02&sp=r&se=2026-12-31T00:00:00Z&sig=Zm9vYmFyYmF6cXV4%2Bc2VjcmV0 403", "Zm9vYmFyYmF6cXV4%2Bc2VjcmV0", "secret"),
        ("refund to DE89 3704 0044 0532 0130 00 failed", "3704 0044 0532", "iban"),
        ("refund to GB82WEST12345698765432 failed", "GB82WEST12345698765432", "iban"),
        ("applicant ssn 123-45-6789 rejected", "123-45-6789", "ssn"),
        ("sms to +1 415 555 2671 failed", "415 555 2671", "phone"),
        ("sms to +447911123456 failed", "+447911123456", "phone"),
        ("callback (415) 555-2671 busy", "555-2671", "phone"),
        ("callback 415-555-2671 busy", "415-555-2671", "phone"),
        ("connect to 10.1.2.3:5432 refused", "10.1.2.3", "ip"),
        ("request from 203.0.113.77 blocked", "203.0.113.77", "ip"),
        ("from 2001:db8::8a2e:370:7334 denied", "2001:db8::8a2e:370:7334", "ip"),
        ("bind [::1]:8080 in use", "::1", "ip"),
    ];

    const ORDINARY: &[&str] = &[
        "Timeout after 3001ms calling payments-api (request_id=9f8e7d)",
        "Invalid token: expired signature",
        "Bearer token missing in request",
        "basic auth is disabled",
        "order 1234567890123 not found",
        "java.lang.IllegalStateException: pool exhausted at com.shop.Pool@1a2b3c",
        "GET https://api.example.com/v1/users/42 returned 503",
        "password reset requested for account",
        "max_tokens=4096 exceeded",
        "npm ERR! 404 Not Found - GET https://registry.example/@scope/pkg",
        "skipping task-runner: sk-short",
        "2026-03-09T10:00:03.120Z worker 7 done in 350ms",
        "version 1.2.3 released, build 20260309.1 passed",
        "job started at 10:00:03 UTC, took 12.5 s",
        "std::collections::HashMap::new failed in add::face",
        "user agent Chrome/120.0.6099.109 rejected",
        "MAC 00:1a:2b:3c:4d:5e link up",
        "retry in 300 ms (attempt 2 of 5), order 2026-03-09 #4521",
        "signature verified for config_sig",
        "Invalid signature: expired",
        "queue depth 1234567890 over limit",
    ];

    #[test]
    fn every_secret_class_is_scrubbed() {
        for (input, secret, class) in SECRETS {
            let out = scrub(input);
            assert!(!out.contains(secret), "{secret} leaked: {out}");
            assert!(
                out.contains(&format!("[REDACTED:{class}]")),
                "{input} → {out}"
            );
        }
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for input in ORDINARY {
            assert_eq!(scrub(input), *input);
        }
    }

    /// What the detectors find with every one of them run, triggers or not.
    fn scrub_all(text: &str) -> Cow<'_, str> {
        let mut found = Vec::new();
        detect(text, Triggers::all(), &mut found);
        redact(text, found)
    }

    #[test]
    fn triggers_never_change_the_result() {
        for text in SECRETS.iter().map(|s| s.0).chain(ORDINARY.iter().copied()) {
            assert_eq!(scrub(text), scrub_all(text), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn triggers_never_change_the_result_on_generated_text(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    " ", "-----BEGIN ", "PRIVATE KEY-----\n", "-----END ", "password", "=", ": ",
                    "\"", "Bearer ", "basic ", "://", "u", ":", "@", "host.example.com", "eyJ",
                    "abcd", ".", "AKIA", "ghp_", "sk-", "xoxb-", "0123456789", "4111", "-", "J",
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "é", "+", "hooks.slack.com/services/",
                    "T0", "/", "DE89", "123-45-", "6789", "::", "10.0.0.1", "(415) ", "555-", "sig",
                ]),
                0..24,
            )
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(scrub(&text), scrub_all(&text));
        }
    }

    #[test]
    fn ip_scrubbing_can_be_switched_off() {
        let text = "connect to 10.1.2.3:5432 from 2001:db8::1 refused";
        assert_eq!(scrub_with(text, false), text);
        let on = scrub_with(text, true);
        assert!(
            !on.contains("10.1.2.3") && !on.contains("2001:db8::1"),
            "{on}"
        );
        // Other classes stay on.
        assert!(scrub_with("password=hunter2", false).contains("[REDACTED:secret]"));
    }

    #[test]
    fn near_misses_of_personal_data_stay() {
        for text in [
            "ssn 000-12-3456 is invalid",
            "iban DE89370400440532013001 has a bad checksum",
            "octets 256.1.2.3 are not an address",
            "short +1234567",
        ] {
            assert_eq!(scrub(text), text);
        }
    }

    #[test]
    fn luhn_rejects_near_misses() {
        assert_eq!(
            scrub("charge 4111 1111 1111 1112 declined"),
            "charge 4111 1111 1111 1112 declined"
        );
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
    }
}
