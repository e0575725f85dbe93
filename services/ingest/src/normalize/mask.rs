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
    mask_append(line, out);
}

/// Like [`mask_into`], appending to `out`.
pub fn mask_append(line: &str, out: &mut String) {
    let mut state = Joiner {
        origin: out.len(),
        last: Last::None,
        names_start: 0,
        pending: (0, 0),
    };
    #[cfg(target_arch = "x86_64")]
    {
        let mut tokens = simd::Tokens::new(line.as_bytes());
        while let Some(t) = tokens.next() {
            state.push(line, t, out);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut i = 0;
        while let Some(t) = scalar_token(line.as_bytes(), i) {
            i = t.end;
            state.push(line, t, out);
        }
    }
    state.flush(line, out);
}

/// One whitespace-separated token: `line[start..end]`, whether it holds a
/// quoted `=` value (which may contain spaces), and the OR of its byte classes
/// outside quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    start: usize,
    end: usize,
    quoted: bool,
    flags: u8,
}

/// The next token at or after `i`, one byte at a time: the reference
/// tokenizer (the vectorized one must agree with it) and the path for tokens
/// with a quoted value.
fn scalar_token(b: &[u8], mut i: usize) -> Option<Token> {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if i >= b.len() {
        return None;
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
    Some(Token {
        start,
        end: i,
        quoted,
        flags,
    })
}

/// Joins masked tokens, collapsing runs of wildcards and date names.
struct Joiner {
    /// Where this line's output starts in `out`.
    origin: usize,
    last: Last,
    /// Where the current run of month/weekday names began.
    names_start: usize,
    /// A span of the line not yet copied to the output: plain words that are
    /// kept as they are, separated by single spaces, are copied in one go.
    pending: (usize, usize),
}

impl Joiner {
    #[inline]
    fn push(&mut self, line: &str, t: Token, out: &mut String) {
        let token = &line[t.start..t.end];
        // Fast path for plain words (most tokens): no digit, `@`, `=`, `:`, `-`,
        // `_` means no id, address, key or URL; a letter past `f` means no hex.
        let plain = t.flags & SPECIAL == 0 && (token.len() < 16 || t.flags & NON_HEX != 0);
        if plain && !is_date_name(token) {
            let (start, end) = self.pending;
            if start < end && end + 1 == t.start && line.as_bytes()[end] == b' ' {
                self.pending.1 = t.end;
            } else {
                self.flush(line, out);
                if self.last != Last::None {
                    out.push(' ');
                }
                self.pending = (t.start, t.end);
            }
            self.last = Last::Other;
            return;
        }
        self.flush(line, out);
        let before = out.len();
        if self.last != Last::None {
            out.push(' ');
        }
        let kind = if plain {
            out.push_str(token);
            Kind::DateName
        } else {
            mask_token(token, t.quoted, t.flags, out)
        };
        let wild = kind == Kind::Wild;
        // Collapse runs of whole-token wildcards, and fold month/weekday names
        // into an adjacent one.
        if wild && (self.last == Last::Wild || self.last == Last::DateName) {
            if self.last == Last::DateName {
                out.truncate(self.names_start);
                if self.names_start > self.origin {
                    out.push(' ');
                }
                out.push_str(WILDCARD);
                self.last = Last::Wild;
            } else {
                out.truncate(before);
            }
            return;
        }
        if kind == Kind::DateName && self.last == Last::Wild {
            out.truncate(before);
            return;
        }
        if kind == Kind::DateName && self.last != Last::DateName {
            self.names_start = before;
        }
        self.last = match kind {
            Kind::Wild => Last::Wild,
            Kind::DateName => Last::DateName,
            Kind::Other => Last::Other,
        };
    }

    /// Copies the pending span.
    #[inline]
    fn flush(&mut self, line: &str, out: &mut String) {
        let (start, end) = self.pending;
        if start < end {
            out.push_str(&line[start..end]);
            self.pending = (0, 0);
        }
    }
}

/// The tokenizer, 64 bytes at a time: SSE2 (part of every x86-64 CPU, so no
/// runtime detection) classifies a block into bit masks, and tokens are cut
/// with bit operations instead of a branch per byte. Same tokens as
/// [`scalar_token`] (a property test checks it).
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{scalar_token, Token, CLASS, COLON, DIGIT, EQ, NON_HEX, SEP, SPECIAL};
    use std::arch::x86_64::*;

    /// Class masks of `b[base..base + 64]`; bytes past the end count as
    /// whitespace.
    struct Block {
        base: usize,
        ws: u64,
        special: u64,
        non_hex: u64,
        eq: u64,
        colon: u64,
        digit: u64,
        sep: u64,
    }

    impl Block {
        #[inline]
        fn load(b: &[u8], base: usize) -> Self {
            let mut pad = [b' '; 64];
            let bytes: &[u8] = if base + 64 <= b.len() {
                &b[base..base + 64]
            } else {
                let rest = &b[base.min(b.len())..];
                pad[..rest.len()].copy_from_slice(rest);
                &pad
            };
            let mut m = [0u64; 7];
            for k in 0..4 {
                // The crate's one unsafe block.
                // SAFETY: `bytes` has 64 bytes, so the 16-byte unaligned load
                // at 16 * k is in bounds; SSE2 is part of the x86-64 baseline,
                // so every x86-64 CPU runs `classify`.
                #[allow(unsafe_code)]
                let c = unsafe { classify(_mm_loadu_si128(bytes.as_ptr().add(16 * k).cast())) };
                for (m, c) in m.iter_mut().zip(c) {
                    *m |= (c as u64) << (16 * k);
                }
            }
            let [ws, special, non_hex, eq, colon, digit, sep] = m;
            Self {
                base,
                ws,
                special,
                non_hex,
                eq,
                colon,
                digit,
                sep,
            }
        }
    }

    /// Bit masks of 16 bytes: ASCII whitespace (as `u8::is_ascii_whitespace`),
    /// "special" (digits and `@ = : - _`), letters that are not hex digits, `=`,
    /// `:`, digits, segment separators.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn classify(v: __m128i) -> [u32; 7] {
        macro_rules! eq8 {
            ($c:expr) => {
                _mm_cmpeq_epi8(v, _mm_set1_epi8($c as i8))
            };
        }
        // x in lo..=lo+span  ⇔  min(x - lo, span) == x - lo (unsigned).
        macro_rules! in_range {
            ($x:expr, $lo:expr, $span:expr) => {{
                let d = _mm_sub_epi8($x, _mm_set1_epi8($lo as i8));
                _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8($span as i8)), d)
            }};
        }
        let ws = _mm_or_si128(
            _mm_or_si128(eq8!(b' '), _mm_or_si128(eq8!(b'\t'), eq8!(b'\n'))),
            _mm_or_si128(eq8!(0x0c), eq8!(b'\r')),
        );
        let eq = eq8!(b'=');
        let colon = eq8!(b':');
        let digit = in_range!(v, b'0', 9);
        let special = _mm_or_si128(
            _mm_or_si128(_mm_or_si128(digit, colon), eq),
            _mm_or_si128(eq8!(b'@'), _mm_or_si128(eq8!(b'-'), eq8!(b'_'))),
        );
        // `, : = ; | ( ) { } [ ]`
        let sep = _mm_or_si128(
            _mm_or_si128(
                _mm_or_si128(eq8!(b','), _mm_or_si128(colon, eq)),
                _mm_or_si128(eq8!(b';'), eq8!(b'|')),
            ),
            _mm_or_si128(
                _mm_or_si128(eq8!(b'('), eq8!(b')')),
                _mm_or_si128(
                    _mm_or_si128(eq8!(b'{'), eq8!(b'}')),
                    _mm_or_si128(eq8!(b'['), eq8!(b']')),
                ),
            ),
        );
        let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let non_hex = in_range!(lower, b'g', b'z' - b'g');
        [ws, special, non_hex, eq, colon, digit, sep].map(|m| _mm_movemask_epi8(m) as u32)
    }

    /// The tokens of one line.
    pub(super) struct Tokens<'a> {
        b: &'a [u8],
        i: usize,
        block: Block,
    }

    impl<'a> Tokens<'a> {
        pub(super) fn new(b: &'a [u8]) -> Self {
            Self {
                b,
                i: 0,
                block: Block::load(b, 0),
            }
        }

        #[inline]
        fn at(&mut self, i: usize) -> usize {
            if i >= self.block.base + 64 {
                self.block = Block::load(self.b, i);
            }
            i - self.block.base
        }

        #[inline]
        pub(super) fn next(&mut self) -> Option<Token> {
            let b = self.b;
            // Skip whitespace.
            loop {
                if self.i >= b.len() {
                    return None;
                }
                let off = self.at(self.i);
                let rest = !self.block.ws >> off;
                if rest != 0 {
                    self.i += rest.trailing_zeros() as usize;
                    break;
                }
                self.i = self.block.base + 64;
            }
            if self.i >= b.len() {
                return None;
            }
            let start = self.i;
            // Plain words (most tokens) need only these two classes.
            let (mut special, mut non_hex) = (false, false);
            let (mut first_off, mut first_range, mut runs) = (0, 0, 0);
            loop {
                let off = self.at(self.i);
                let ws = self.block.ws >> off;
                let run = if ws == 0 {
                    64 - off
                } else {
                    ws.trailing_zeros() as usize
                };
                let range = if run >= 64 { !0 } else { (1u64 << run) - 1 };
                special |= (self.block.special >> off) & range != 0;
                non_hex |= (self.block.non_hex >> off) & range != 0;
                if runs == 0 {
                    (first_off, first_range) = (off, range);
                }
                runs += 1;
                self.i += run;
                if ws != 0 || self.i >= b.len() {
                    break;
                }
            }
            let end = self.i.min(b.len());
            let mut flags = if special { SPECIAL } else { 0 } | if non_hex { NON_HEX } else { 0 };
            // The other classes only for tokens that get the full
            // classification (see `Joiner::push`): from the masks when the
            // token lies in one block, else byte by byte.
            if special || (end - start >= 16 && !non_hex) {
                if runs == 1 {
                    let any = |m: u64| (m >> first_off) & first_range != 0;
                    for (m, f) in [
                        (self.block.eq, EQ),
                        (self.block.colon, COLON),
                        (self.block.digit, DIGIT),
                        (self.block.sep, SEP),
                    ] {
                        if any(m) {
                            flags |= f;
                        }
                    }
                } else {
                    flags |= b[start..end].iter().fold(0, |f, &c| f | CLASS[c as usize]);
                }
            }
            let end = self.i.min(b.len());
            self.i = end;
            // `key="a value"`: quoted values may hold spaces; the byte-wise
            // tokenizer handles such tokens.
            if flags & EQ != 0
                && b[start..end]
                    .windows(2)
                    .any(|w| w[0] == b'=' && (w[1] == b'"' || w[1] == b'\''))
            {
                let t = scalar_token(b, start).expect("a token starts here");
                self.i = t.end;
                return Some(t);
            }
            Some(Token {
                start,
                end,
                quoted: false,
                flags,
            })
        }
    }
}

const WS: u8 = 1;
/// Digits and `@ = : - _`: the token needs the full classification.
const SPECIAL: u8 = 2;
/// A letter that is not a hex digit.
const NON_HEX: u8 = 4;
/// `=` (also SPECIAL): the token may be `key=value`.
const EQ: u8 = 8;
/// `:` (also SPECIAL): the token may be a URL.
const COLON: u8 = 16;
/// An ASCII digit (also SPECIAL): the token is variable.
const DIGIT: u8 = 32;
/// A segment separator (see [`is_segment_separator`]).
const SEP: u8 = 64;

/// Byte classes for the scanning loop.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_whitespace() {
            WS
        } else if b == b'=' {
            SPECIAL | EQ | SEP
        } else if b == b':' {
            SPECIAL | COLON | SEP
        } else if b.is_ascii_digit() {
            SPECIAL | DIGIT
        } else if matches!(b, b'@' | b'-' | b'_') {
            SPECIAL
        } else if is_segment_separator(b) {
            SEP
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

/// `flags`: the OR of the token's byte classes outside quotes (a quoted token
/// has both `=` and the flags of its unquoted part).
fn mask_token(token: &str, quoted: bool, flags: u8, out: &mut String) -> Kind {
    // A quoted value's bytes are not in `flags`, but the checks below look at
    // the whole token: then every check runs (DIGIT is the one bit that skips
    // a check rather than gating it).
    let flags = if quoted { !DIGIT } else { flags };
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
    if let Some(p) = (flags & COLON != 0).then(|| find_scheme(cb)).flatten() {
        out.push_str(&token[..s]);
        mask_url(core, p, out);
        out.push_str(&token[e..]);
        return Kind::Other;
    }
    if let Some(eq) = (flags & EQ != 0)
        .then(|| cb.iter().position(|&c| c == b'='))
        .flatten()
    {
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
    // Leading and trailing punctuation holds no digit, so a digit in the token
    // is one in the core.
    if flags & DIGIT != 0 || is_variable(core) {
        // `cancelNotification,index:0` → `cancelNotification,index:<*>`: when a
        // token is a structure of words and values, mask only the values.
        if flags & SEP != 0 && has_word_segment(core) {
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

const fn is_segment_separator(c: u8) -> bool {
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

/// Month and weekday names (English, any case): the three-letter forms,
/// `sept`, the full names, and `utc`.
#[inline]
fn is_date_name(w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() < 3 || b.len() > 9 {
        return false;
    }
    // `| 0x20` lowercases letters and maps nothing else onto a letter.
    let full = match [b[0] | 0x20, b[1] | 0x20, b[2] | 0x20] {
        [b'j', b'a', b'n'] => "january",
        [b'f', b'e', b'b'] => "february",
        [b'm', b'a', b'r'] => "march",
        [b'a', b'p', b'r'] => "april",
        [b'm', b'a', b'y'] => "may",
        [b'j', b'u', b'n'] => "june",
        [b'j', b'u', b'l'] => "july",
        [b'a', b'u', b'g'] => "august",
        [b's', b'e', b'p'] => {
            if b.len() == 4 {
                "sept"
            } else {
                "september"
            }
        }
        [b'o', b'c', b't'] => "october",
        [b'n', b'o', b'v'] => "november",
        [b'd', b'e', b'c'] => "december",
        [b'm', b'o', b'n'] => "monday",
        [b't', b'u', b'e'] => "tuesday",
        [b'w', b'e', b'd'] => "wednesday",
        [b't', b'h', b'u'] => "thursday",
        [b'f', b'r', b'i'] => "friday",
        [b's', b'a', b't'] => "saturday",
        [b's', b'u', b'n'] => "sunday",
        [b'u', b't', b'c'] => "utc",
        _ => return false,
    };
    b.len() == 3 || w.eq_ignore_ascii_case(full)
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

    /// Every token the vectorized tokenizer cuts, the byte-wise one cuts too,
    /// with the same flags: lines of every length around the 16- and 64-byte
    /// block edges, with quotes, `=`, `:` and non-ASCII.
    #[cfg(target_arch = "x86_64")]
    mod vectorized {
        use super::super::{scalar_token, simd, Token, NON_HEX, SPECIAL};
        use proptest::prelude::*;

        /// The flags the masker reads: plain words (see `Joiner::push`) are
        /// told apart by SPECIAL and NON_HEX alone, so only those are compared.
        fn used(mut t: Token) -> Token {
            let full = t.flags & SPECIAL != 0 || (t.end - t.start >= 16 && t.flags & NON_HEX == 0);
            if !full {
                t.flags &= SPECIAL | NON_HEX;
            }
            t
        }

        fn tokens_scalar(b: &[u8]) -> Vec<Token> {
            let mut out = Vec::new();
            let mut i = 0;
            while let Some(t) = scalar_token(b, i) {
                i = t.end;
                out.push(used(t));
            }
            out
        }

        fn tokens_simd(b: &[u8]) -> Vec<Token> {
            let mut out = Vec::new();
            let mut t = simd::Tokens::new(b);
            while let Some(tok) = t.next() {
                out.push(used(tok));
            }
            out
        }

        fn line() -> impl Strategy<Value = Vec<u8>> {
            let byte = prop_oneof![
                4 => prop::sample::select(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJXYZ".to_vec()),
                2 => prop::sample::select(b"0123456789".to_vec()),
                3 => prop::sample::select(b" \t\r\n\x0b\x0c".to_vec()),
                2 => prop::sample::select(b"=:@-_\"'/.,()[]{}<>`?#".to_vec()),
                1 => any::<u8>(),
            ];
            proptest::collection::vec(byte, 0..300)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]
            #[test]
            fn same_tokens_as_the_byte_wise_tokenizer(b in line()) {
                prop_assert_eq!(tokens_simd(&b), tokens_scalar(&b));
            }
        }

        #[test]
        fn block_edges() {
            for len in 0..200 {
                for ws_at in [0, 15, 16, 17, 63, 64, 65, 127, 128] {
                    let mut b: Vec<u8> = (0..len).map(|i| b"ab1=:x"[i % 6]).collect();
                    if ws_at < len {
                        b[ws_at] = b' ';
                    }
                    assert_eq!(tokens_simd(&b), tokens_scalar(&b), "len {len} ws {ws_at}");
                }
            }
        }
    }

    #[test]
    fn date_names() {
        for w in [
            "Jan",
            "january",
            "FEB",
            "Sept",
            "sep",
            "September",
            "may",
            "MAY",
            "thu",
            "Thursday",
            "sun",
            "Sunday",
            "UTC",
            "wed",
            "Wednesday",
        ] {
            assert!(is_date_name(w), "{w}");
        }
        for w in [
            "ja", "janu", "septe", "mayday", "thur", "utcx", "sundays", "`an", "j@n", "month", "",
        ] {
            assert!(!is_date_name(w), "{w}");
        }
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
