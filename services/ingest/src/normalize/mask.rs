//! Masking: the variable parts of one message line become `<*>`.
//!
//! One pass over the bytes, no regular expressions, no allocation beyond the
//! output buffer. The line is split at ASCII whitespace into tokens (except that
//! a quoted value after `=` may contain spaces); each token keeps its wrapping
//! punctuation and has its core replaced when the core is variable:
//!
//! - anything with a digit: numbers of any length, floats, numbers with units
//!   (`350ms`, `4KB`), hex (`0x7f3a`), ids mixing letters and digits
//!   (`blk_-1608999687919862906`, `session-7f3a9c`), UUIDs, IPv4/IPv6,
//!   `host:port`, dates and times;
//! - emails; long hex strings without a digit;
//! - URLs keep their scheme and path shape (`https://<*>/v1/users/<*>?<*>`);
//! - `key=value` keeps the key and masks a quoted or variable value;
//! - month and weekday names next to a masked number (`Mar 9 10:00:03`).
//!
//! Runs of whole-token wildcards collapse into one, so `2026-03-09 10:00:03` and
//! `2026-03-09T10:00:03` give the same template.

/// The placeholder of a masked part.
pub const WILDCARD: &str = "<*>";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    None,
    Wild,
    DateName,
    Other,
}

/// Masks `line` into `out` (cleared first): tokens joined by single spaces.
pub fn mask_into(line: &str, out: &mut String) {
    out.clear();
    let b = line.as_bytes();
    let mut i = 0;
    let mut last = Last::None;
    // Where the current run of month/weekday names began.
    let mut names_start = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut quoted = false;
        let mut flags = 0u8;
        while i < b.len() {
            let class = CLASS[b[i] as usize];
            if class & WS != 0 {
                break;
            }
            flags |= class;
            if b[i] == b'=' && i + 1 < b.len() && (b[i + 1] == b'"' || b[i + 1] == b'\'') {
                let q = b[i + 1];
                match b[i + 2..].iter().position(|&c| c == q) {
                    Some(p) => i = i + 2 + p + 1,
                    None => i = b.len(),
                }
                quoted = true;
                continue;
            }
            i += 1;
        }
        // Token boundaries are ASCII bytes, so these are char boundaries.
        let token = &line[start..i];
        let before = out.len();
        if last != Last::None {
            out.push(' ');
        }
        // Fast path for plain words (most tokens): no digit, `@`, `=`, `:`, `-`,
        // `_` means no id, address, key or URL; a letter past `f` means no hex.
        let kind = if flags & SPECIAL == 0 && (token.len() < 16 || flags & NON_HEX != 0) {
            out.push_str(token);
            if is_date_name(token) {
                Kind::DateName
            } else {
                Kind::Other
            }
        } else {
            mask_token(token, quoted, out)
        };
        let wild = kind == Kind::Wild;
        // Collapse runs of whole-token wildcards, and fold month/weekday names
        // into an adjacent one.
        if wild && (last == Last::Wild || last == Last::DateName) {
            if last == Last::DateName {
                out.truncate(names_start);
                if names_start > 0 {
                    out.push(' ');
                }
                out.push_str(WILDCARD);
                last = Last::Wild;
            } else {
                out.truncate(before);
            }
            continue;
        }
        if kind == Kind::DateName && last == Last::Wild {
            out.truncate(before);
            continue;
        }
        if kind == Kind::DateName && last != Last::DateName {
            names_start = before;
        }
        last = match kind {
            Kind::Wild => Last::Wild,
            Kind::DateName => Last::DateName,
            Kind::Other => Last::Other,
        };
    }
}

const WS: u8 = 1;
/// Digits and `@ = : - _`: the token needs the full classification.
const SPECIAL: u8 = 2;
/// A letter that is not a hex digit.
const NON_HEX: u8 = 4;

/// Byte classes for the scanning loop.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_whitespace() {
            WS
        } else if b.is_ascii_digit() || matches!(b, b'@' | b'=' | b':' | b'-' | b'_') {
            SPECIAL
        } else if b.is_ascii_alphabetic() && !b.is_ascii_hexdigit() {
            NON_HEX
        } else {
            0
        };
        c += 1;
    }
    t
};

/// Masks one message line.
pub fn mask(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    mask_into(line, &mut out);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wild,
    DateName,
    Other,
}

const LEADING: &[u8] = b"([{<\"'`";
const TRAILING: &[u8] = b")]}>\"'`,;:.!?";

fn mask_token(token: &str, quoted: bool, out: &mut String) -> Kind {
    let b = token.as_bytes();
    let mut s = 0;
    while s < b.len() && LEADING.contains(&b[s]) {
        s += 1;
    }
    let mut e = b.len();
    while e > s && TRAILING.contains(&b[e - 1]) {
        e -= 1;
    }
    if s == e {
        out.push_str(token);
        return Kind::Other;
    }
    let core = &token[s..e];
    // Fast path for plain words (most tokens): no digit, `@`, `=`, `:`, `-`, `_`
    // means no id, address, key or URL, and no hex tail.
    let cb = core.as_bytes();
    let mut plain = true;
    let mut all_hex = true;
    for &c in cb {
        if c.is_ascii_digit() || matches!(c, b'@' | b'=' | b':' | b'-' | b'_') {
            plain = false;
            break;
        }
        all_hex &= c.is_ascii_hexdigit();
    }
    if plain && !(all_hex && cb.len() >= 16) {
        out.push_str(token);
        return if s == 0 && e == b.len() && is_date_name(core) {
            Kind::DateName
        } else {
            Kind::Other
        };
    }
    if let Some(p) = find_scheme(cb) {
        out.push_str(&token[..s]);
        mask_url(core, p, out);
        out.push_str(&token[e..]);
        return Kind::Other;
    }
    if let Some(eq) = core.find('=') {
        let key = &core[..eq];
        if !key.is_empty() && key.bytes().all(is_key_byte) {
            let value = &token[s + eq + 1..];
            let value_end = value.len()
                - value
                    .bytes()
                    .rev()
                    .take_while(|c| TRAILING.contains(c))
                    .count();
            let tail = &value[value_end..];
            let value_core = value[..value_end].trim_start_matches(['"', '\'']);
            if !value_core.is_empty() && (quoted || is_variable(value_core)) {
                out.push_str(&token[..s]);
                out.push_str(key);
                out.push('=');
                out.push_str(WILDCARD);
                // Keep closing punctuation, drop the value's quotes.
                out.extend(tail.chars().filter(|c| !matches!(c, '"' | '\'')));
                return Kind::Other;
            }
            out.push_str(token);
            return Kind::Other;
        }
    }
    if is_variable(core) {
        // `cancelNotification,index:0` → `cancelNotification,index:<*>`: when a
        // token is a structure of words and values, mask only the values.
        if has_word_segment(core) {
            out.push_str(&token[..s]);
            mask_segments(core, out);
            out.push_str(&token[e..]);
            return Kind::Other;
        }
        let whole = s == 0 && e == b.len();
        out.push_str(&token[..s]);
        out.push_str(WILDCARD);
        out.push_str(&token[e..]);
        return if whole { Kind::Wild } else { Kind::Other };
    }
    out.push_str(token);
    if s == 0 && e == b.len() && is_date_name(core) {
        Kind::DateName
    } else {
        Kind::Other
    }
}

/// Position of `://` in `b`, if any.
fn find_scheme(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = b[from..].iter().position(|&c| c == b':') {
        let p = from + p;
        if b[p + 1..].starts_with(b"//") {
            return Some(p);
        }
        from = p + 1;
    }
    None
}

fn is_segment_separator(c: u8) -> bool {
    // Not `/`: a path with a number in it is one variable, not a structure.
    matches!(
        c,
        b',' | b':' | b'=' | b';' | b'|' | b'(' | b')' | b'{' | b'}' | b'[' | b']'
    )
}

/// Whether `core`, split at separators, has a segment that is a word (two or
/// more letters, no digit) next to a separator: a structure, not one id.
fn has_word_segment(core: &str) -> bool {
    let b = core.as_bytes();
    if !b.iter().any(|&c| is_segment_separator(c)) {
        return false;
    }
    b.split(|&c| is_segment_separator(c)).any(|seg| {
        seg.len() >= 2
            && seg
                .iter()
                .all(|c| c.is_ascii_alphabetic() || matches!(c, b'_' | b'.' | b'-'))
            && seg.iter().filter(|c| c.is_ascii_alphabetic()).count() >= 2
    })
}

fn mask_segments(core: &str, out: &mut String) {
    let mut start = 0;
    let b = core.as_bytes();
    for i in 0..=b.len() {
        if i == b.len() || is_segment_separator(b[i]) {
            let seg = &core[start..i];
            if is_variable(seg) {
                out.push_str(WILDCARD);
            } else {
                out.push_str(seg);
            }
            if i < b.len() {
                out.push(b[i] as char);
            }
            start = i + 1;
        }
    }
}

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'[' | b']')
}

/// Whether a token core carries an id, a number or an address.
pub fn is_variable(core: &str) -> bool {
    let b = core.as_bytes();
    let mut hex_letters = 0usize;
    let mut at = None;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            return true;
        }
        if c.is_ascii_hexdigit() {
            hex_letters += 1;
        } else if c == b'@' && at.is_none() {
            at = Some(i);
        }
    }
    if let Some(at) = at {
        // local@domain.tld
        if at > 0 && b[at + 1..].contains(&b'.') {
            return true;
        }
    }
    // Long hex without a digit (a digest that happens to be all letters).
    if hex_letters == b.len() {
        return b.len() >= 16;
    }
    // `session-fefede`: a word with an all-hex-letter id suffix.
    match b.iter().rposition(|&c| c == b'-' || c == b'_') {
        Some(p) if p > 0 => {
            let tail = &b[p + 1..];
            tail.len() >= 6 && tail.iter().all(u8::is_ascii_hexdigit)
        }
        _ => false,
    }
}

fn mask_url(core: &str, scheme_end: usize, out: &mut String) {
    out.push_str(&core[..scheme_end + 3]);
    let rest = &core[scheme_end + 3..];
    let (before_frag, frag) = match rest.find('#') {
        Some(p) => (&rest[..p], true),
        None => (rest, false),
    };
    let (before_query, query) = match before_frag.find('?') {
        Some(p) => (&before_frag[..p], true),
        None => (before_frag, false),
    };
    let (host, path) = match before_query.find('/') {
        Some(p) => (&before_query[..p], &before_query[p..]),
        None => (before_query, ""),
    };
    if !host.is_empty() {
        out.push_str(WILDCARD);
    }
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        // API versions (`v1`, `v2beta`) are part of the route, not ids.
        let version = seg.len() <= 8
            && seg.starts_with('v')
            && seg[1..].starts_with(|c: char| c.is_ascii_digit())
            && seg[1..].bytes().take_while(u8::is_ascii_digit).count() <= 2;
        if is_variable(seg) && !version {
            out.push_str(WILDCARD);
        } else {
            out.push_str(seg);
        }
    }
    if query {
        out.push('?');
        out.push_str(WILDCARD);
    }
    if frag {
        out.push('#');
        out.push_str(WILDCARD);
    }
}

fn is_date_name(w: &str) -> bool {
    // Fast reject: most words are not 3–9 letters starting with one of these.
    if w.len() < 3
        || w.len() > 9
        || !matches!(
            w.as_bytes()[0] | 0x20,
            b'j' | b'f' | b'm' | b'a' | b's' | b'o' | b'n' | b'd' | b't' | b'w' | b'u'
        )
    {
        return false;
    }
    const NAMES: [&str; 19] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "mon", "tue", "wed", "thu", "fri", "sat",
    ];
    const FULL: [&str; 20] = [
        "sun",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "utc",
    ];
    w.len() <= 9
        && (NAMES.iter().any(|n| w.eq_ignore_ascii_case(n))
            || FULL.iter().any(|n| w.eq_ignore_ascii_case(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, want: &str) {
        assert_eq!(mask(input), want, "input: {input}");
    }

    #[test]
    fn every_variable_class_is_masked() {
        check(
            "Timeout after 3001ms (request_id=9f8e7d)",
            "Timeout after <*> (request_id=<*>)",
        );
        check(
            "user 550e8400-e29b-41d4-a716-446655440000 gone",
            "user <*> gone",
        );
        check("at 2026-03-09T10:00:03.120Z done", "at <*> done");
        check("at 2026-03-09 10:00:03,120 done", "at <*> done");
        check("on Mon Mar  9 10:00:03 UTC 2026 done", "on <*> done");
        check(
            "from 10.0.0.1 and [fe80::1ff:fe23:4567:890a]",
            "from <*> and [<*>]",
        );
        check(
            "connect db.internal:5432 failed",
            "connect db.internal:<*> failed",
        );
        check("connect 10.0.0.7:5432 failed", "connect <*> failed");
        check(
            "cancelNotification,index:-1",
            "cancelNotification,index:<*>",
        );
        check("at 10:00:03 and /var/log/app1/x.log", "at <*> and <*>");
        check("mail bob.smith@example.com bounced", "mail <*> bounced");
        check(
            "GET https://api.example.com/v1/users/12345/orders?id=7#top failed",
            "GET https://<*>/v1/users/<*>/orders?<*>#<*> failed",
        );
        check("object 0x7f3a9c01 freed", "object <*> freed");
        check("took 12s, 4KB, 3.5%", "took <*>, <*>, <*>");
        check("block blk_-1608999687919862906 lost", "block <*> lost");
        check("session-7f3a9c expired", "<*> expired");
        check("session-fefede expired", "<*> expired");
        check("cache-eu payments-api", "cache-eu payments-api");
        check("sha deadbeefdeadbeefcafe ok", "sha <*> ok");
        check(
            r#"user="bob smith" role='admin user' ok"#,
            "user=<*> role=<*> ok",
        );
        check("state=RUNNING count=12,", "state=RUNNING count=<*>,");
    }

    #[test]
    fn ordinary_text_survives_and_whitespace_is_normalized() {
        check(
            "Connection  refused\tcalling payments-api",
            "Connection refused calling payments-api",
        );
        check("KeyError: 'currency'", "KeyError: 'currency'");
        check("", "");
        check("   ", "");
        check("May the force", "May the force");
    }
}
