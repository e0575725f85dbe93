//! Detectors of personal data and of secrets carried in URLs, for
//! [`crate::scrub`]: Slack webhook paths, IBANs (mod-97 checked), US social
//! security numbers, phone numbers, IPv4 and IPv6 addresses. Each pushes the
//! byte ranges it finds; all ranges start and end at ASCII bytes.
//!
//! Patterns are deliberately narrow where ordinary log text looks alike:
//! phone numbers need a leading `+` (E.164) or the North-American shapes
//! `(415) 555-2671`, `415-555-2671`, `415.555.2671`; SSNs only the dashed
//! `123-45-6789` with valid area, group and serial; IPv6 needs `::` or all
//! eight groups and a digit, so `std::vec` and `10:00:03` are not addresses.

/// A range found: start, end, class.
pub(crate) type Found = Vec<(usize, usize, &'static str)>;

fn boundary_before(b: &[u8], i: usize) -> bool {
    i == 0 || !(b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'.' | b'_' | b'-' | b'+'))
}

fn boundary_after(b: &[u8], e: usize) -> bool {
    let Some(&c) = b.get(e) else {
        return true;
    };
    let more_number = c == b'.' && b.get(e + 1).is_some_and(u8::is_ascii_digit);
    !(c.is_ascii_alphanumeric() || c == b'_' || more_number)
}

/// `hooks.slack.com/services/T…/B…/…`: the path is the credential.
pub(crate) fn slack_webhooks(text: &str, found: &mut Found) {
    const HOST: &str = "hooks.slack.com/services/";
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(p) = text[from..].find(HOST) {
        let s = from + p + HOST.len();
        let mut e = s;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'/' | b'_' | b'-')) {
            e += 1;
        }
        if e > s {
            found.push((s, e, "slack_webhook"));
        }
        from = e.max(s);
    }
}

/// Dotted quads with octets 0–255, not part of a longer dotted number.
pub(crate) fn ipv4(b: &[u8], found: &mut Found) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || !boundary_before(b, i) {
            i += 1;
            continue;
        }
        let mut e = i;
        let mut octets = 0;
        let ok = loop {
            let s = e;
            let mut v: u32 = 0;
            while e < b.len() && b[e].is_ascii_digit() && e - s < 4 {
                v = v * 10 + u32::from(b[e] - b'0');
                e += 1;
            }
            if e == s || e - s > 3 || v > 255 {
                break false;
            }
            octets += 1;
            if octets == 4 {
                break true;
            }
            if e < b.len() && b[e] == b'.' {
                e += 1;
            } else {
                break false;
            }
        };
        if ok && boundary_after(b, e) {
            found.push((i, e, "ip"));
            i = e;
        } else {
            // Skip the rest of this number run.
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
        }
    }
}

/// IPv6: hex groups and colons with `::` (or eight groups) and a digit.
pub(crate) fn ipv6(b: &[u8], found: &mut Found) {
    let is_part = |c: u8| c.is_ascii_hexdigit() || c == b':';
    let mut i = 0;
    while i < b.len() {
        if !is_part(b[i]) || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut e = i;
        while e < b.len() && is_part(b[e]) {
            e += 1;
        }
        let run = &b[i..e];
        let colons = run.iter().filter(|&&c| c == b':').count();
        if colons < 2 {
            // Most runs are hex-letter words (`bad`, `cafe`): no address.
            i = e.max(i + 1);
            continue;
        }
        let groups: Vec<&[u8]> = run.split(|&c| c == b':').collect();
        let compressed = run.windows(2).any(|w| w == b"::");
        let plausible = (compressed || colons == 7)
            && (2..=7).contains(&colons)
            && groups.iter().all(|g| g.len() <= 4)
            && groups.iter().filter(|g| !g.is_empty()).count() >= 1
            && run.iter().any(u8::is_ascii_digit)
            && !run.windows(3).any(|w| w == b":::")
            && (e >= b.len() || !b[e].is_ascii_alphanumeric() && b[e] != b'_');
        if plausible {
            found.push((i, e, "ip"));
        }
        i = e.max(i + 1);
    }
}

/// E.164 (`+` and 8–15 digits, with spaces, dashes, dots or parentheses) and
/// the North-American `(415) 555-2671`, `415-555-2671`, `415.555.2671`.
pub(crate) fn phones(b: &[u8], found: &mut Found) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let e164 = c == b'+' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        let nanp = (c == b'(' || c.is_ascii_digit()) && boundary_before(b, i);
        if !(e164 || nanp) || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        if e164 {
            // Ends of digit groups and the digits up to each; the longest
            // that ends at a word boundary wins (`+1 415 555 2671 0A` is a
            // number followed by a word).
            let mut ends: Vec<(usize, usize)> = Vec::new();
            let mut e = i + 1;
            let mut digits = 0;
            while e < b.len() {
                match b[e] {
                    d if d.is_ascii_digit() => {
                        digits += 1;
                        e += 1;
                        if !b.get(e).is_some_and(u8::is_ascii_digit) {
                            ends.push((e, digits));
                        }
                    }
                    b' ' | b'-' | b'.' | b'(' | b')'
                        if b.get(e + 1)
                            .is_some_and(|n| n.is_ascii_digit() || *n == b'(') =>
                    {
                        e += 1
                    }
                    _ => break,
                }
            }
            let best = ends
                .iter()
                .rev()
                .find(|(end, n)| (8..=15).contains(n) && boundary_after(b, *end));
            if let Some(&(last, _)) = best {
                found.push((i, last, "phone"));
                i = last;
                continue;
            }
        } else if let Some(e) = nanp_at(b, i) {
            found.push((i, e, "phone"));
            i = e;
            continue;
        }
        i += 1;
    }
}

/// `(ddd) ddd-dddd`, `ddd-ddd-dddd`, `ddd.ddd.dddd` at `i`: its end.
fn nanp_at(b: &[u8], i: usize) -> Option<usize> {
    let digits = |at: usize, n: usize| -> bool {
        at + n <= b.len() && b[at..at + n].iter().all(u8::is_ascii_digit)
    };
    let end = if b[i] == b'(' {
        (digits(i + 1, 3)
            && b.get(i + 4) == Some(&b')')
            && b.get(i + 5) == Some(&b' ')
            && digits(i + 6, 3)
            && b.get(i + 9) == Some(&b'-')
            && digits(i + 10, 4))
        .then_some(i + 14)?
    } else {
        let sep = *b.get(i + 3)?;
        (matches!(sep, b'-' | b'.')
            && digits(i, 3)
            && digits(i + 4, 3)
            && b.get(i + 7) == Some(&sep)
            && digits(i + 8, 4))
        .then_some(i + 12)?
    };
    boundary_after(b, end).then_some(end)
}

/// `123-45-6789` with a valid area (not 000, 666, 9xx), group and serial.
pub(crate) fn ssns(b: &[u8], found: &mut Found) {
    for i in 0..b.len().saturating_sub(10) {
        let w = &b[i..i + 11];
        let shape = w.iter().enumerate().all(|(k, c)| match k {
            3 | 6 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
        if !shape || !boundary_before(b, i) || !boundary_after(b, i + 11) {
            continue;
        }
        let area = &w[..3];
        if area == b"000"
            || area == b"666"
            || area[0] == b'9'
            || &w[4..6] == b"00"
            || &w[7..] == b"0000"
        {
            continue;
        }
        found.push((i, i + 11, "ssn"));
    }
}

/// IBANs: two letters, two check digits, 11–30 letters or digits (groups of
/// four may be separated by single spaces), passing the mod-97 check.
pub(crate) fn ibans(b: &[u8], found: &mut Found) {
    let mut i = 0;
    while i + 15 <= b.len() {
        let start = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && boundary_before(b, i);
        if !start {
            i += 1;
            continue;
        }
        let mut chars: Vec<u8> = Vec::with_capacity(34);
        let mut e = i;
        let mut last = i;
        while e < b.len() && chars.len() < 34 {
            let c = b[e];
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                chars.push(c);
                e += 1;
                last = e;
            } else if c == b' '
                && chars.len().is_multiple_of(4)
                && b.get(e + 1).is_some_and(u8::is_ascii_alphanumeric)
            {
                e += 1;
            } else {
                break;
            }
        }
        if (15..=34).contains(&chars.len()) && boundary_after(b, last) && mod97(&chars) == 1 {
            found.push((i, last, "iban"));
            i = last;
        } else {
            i += 1;
        }
    }
}

/// ISO 13616: the first four characters moved to the end, letters as 10–35.
fn mod97(chars: &[u8]) -> u32 {
    let mut r: u32 = 0;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    r
}
