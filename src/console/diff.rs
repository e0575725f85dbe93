//! The cited hunk of a deploy's diff (pure): the hunks of one file, each line
//! with its new-side line number, so the incident page can mark the cited one.

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DiffLine {
    /// `+`, `-` or ` `.
    pub(crate) sign: char,
    /// The line's number in the new revision (`None` for a removed line).
    pub(crate) new_line: Option<u32>,
    /// The text after the sign.
    pub(crate) text: String,
}

/// One hunk: its header and lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hunk {
    /// `@@ -a,b +c,d @@ context`.
    pub(crate) header: String,
    /// Its lines.
    pub(crate) lines: Vec<DiffLine>,
}

fn new_start(header: &str) -> Option<u32> {
    let plus = header.split_whitespace().find(|w| w.starts_with('+'))?;
    plus[1..].split(',').next()?.parse().ok()
}

fn file_of(header_line: &str) -> Option<&str> {
    let path = header_line.strip_prefix("+++ ")?.trim();
    Some(path.strip_prefix("b/").unwrap_or(path))
}

/// The hunks of `file` in a unified diff (paths compared without `b/` and
/// by suffix, as stack frames name files by absolute path).
pub(crate) fn hunks_of(diff: &str, file: &str) -> Vec<Hunk> {
    let matches = |path: &str| path == file || path.ends_with(file) || file.ends_with(path);
    let mut out = Vec::new();
    let mut in_file = false;
    let mut next_new = 0u32;
    for line in diff.lines() {
        if line.starts_with("diff --git") || line.starts_with("--- ") {
            in_file = false;
            continue;
        }
        if let Some(path) = file_of(line) {
            in_file = matches(path);
            continue;
        }
        if !in_file {
            continue;
        }
        if line.starts_with("@@") {
            next_new = new_start(line).unwrap_or(0);
            out.push(Hunk {
                header: line.to_owned(),
                lines: vec![],
            });
            continue;
        }
        let Some(hunk) = out.last_mut() else { continue };
        let (sign, text) = match line.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (c, &line[1..]),
            _ => (' ', line),
        };
        let new_line = (sign != '-').then(|| {
            next_new += 1;
            next_new - 1
        });
        hunk.lines.push(DiffLine {
            sign,
            new_line,
            text: text.to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::testing::DIFF;

    #[test]
    fn new_side_line_numbers_follow_the_hunk_header() {
        let hunks = hunks_of(DIFF, "/app/src/shop/pricing.py");
        assert_eq!(hunks.len(), 1);
        let h = &hunks[0];
        assert!(h.header.starts_with("@@ -21,3 +21,3 @@"));
        let numbered: Vec<(char, Option<u32>)> =
            h.lines.iter().map(|l| (l.sign, l.new_line)).collect();
        assert_eq!(
            numbered,
            [
                (' ', Some(21)),
                ('-', None),
                ('+', Some(22)),
                (' ', Some(23))
            ]
        );
        assert!(h.lines[2].text.contains("\"usd\""));
        assert!(hunks_of(DIFF, "README.md").is_empty());
    }
}
