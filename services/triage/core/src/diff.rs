//! A unified-diff parser (pure, total): files, hunks and every line with its
//! old and new line numbers.
//!
//! Understands what `git diff`, `diff -u` and the GitHub compare API emit:
//! several files and hunks; `diff --git` extended headers (`new file mode`,
//! `deleted file mode`, `rename from`/`rename to`, `copy from`/`copy to`,
//! `similarity index`); pure renames with no hunk; `Binary files … differ` and
//! `GIT binary patch`; `\ No newline at end of file`; CRLF line ends; quoted
//! paths. Anything it does not understand is skipped: the parser never panics
//! (a property test feeds it arbitrary input), because diffs are untrusted text.
//!
//! Hunk bodies are read by *count* (the `-a,b +c,d` lengths), so a removed line
//! that happens to read `--- a/x` or an added `+++ b/x` stays a changed line.

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileStatus {
    /// Changed in place.
    #[default]
    Modified,
    /// Created by the diff.
    Added,
    /// Deleted by the diff.
    Deleted,
    /// Renamed (possibly with changes); `old_path` is the former name.
    Renamed,
    /// Copied from `old_path`.
    Copied,
}

/// One file touched by a diff.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileDiff {
    /// Path before the change (`None` for a new file).
    pub old_path: Option<String>,
    /// Path after the change (`None` for a deleted file).
    pub new_path: Option<String>,
    /// Added, deleted, renamed …
    pub status: FileStatus,
    /// `similarity index` of a rename or copy, in percent.
    pub similarity: Option<u8>,
    /// A binary file: there are no lines to cite.
    pub binary: bool,
    /// The hunks, in order.
    pub hunks: Vec<Hunk>,
}

impl FileDiff {
    /// The path to cite: the new path, or the old one for a deleted file.
    pub fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or_default()
    }

    /// Every changed line of the file: `(hunk index, line)`.
    pub fn changed(&self) -> impl Iterator<Item = (usize, &Line)> {
        self.hunks
            .iter()
            .enumerate()
            .flat_map(|(i, h)| h.lines.iter().map(move |l| (i, l)))
            .filter(|(_, l)| l.kind != LineKind::Context)
    }

    /// Maps a line number of the new file to the old file: `None` when the line
    /// was added by this diff (it did not exist before).
    pub fn old_line_of(&self, new_line: u32) -> Option<u32> {
        if self.status == FileStatus::Added {
            return None;
        }
        // Lines before a hunk shift by the net growth of the hunks above them.
        let mut shift: i64 = 0;
        for h in &self.hunks {
            if new_line < h.new_start {
                break;
            }
            if new_line < h.new_start.saturating_add(h.new_count) {
                return h
                    .lines
                    .iter()
                    .find(|l| l.new == Some(new_line))
                    .and_then(|l| l.old);
            }
            shift = i64::from(h.old_start) + i64::from(h.old_count)
                - i64::from(h.new_start)
                - i64::from(h.new_count);
        }
        u32::try_from(i64::from(new_line) + shift).ok()
    }
}

/// One hunk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ context` line, verbatim (CR stripped).
    pub header: String,
    /// First line of the hunk in the old file.
    pub old_start: u32,
    /// Lines of the old file the hunk spans.
    pub old_count: u32,
    /// First line of the hunk in the new file.
    pub new_start: u32,
    /// Lines of the new file the hunk spans.
    pub new_count: u32,
    /// The text after the second `@@` (usually the enclosing function).
    pub context: String,
    /// Every line of the hunk, in order.
    pub lines: Vec<Line>,
}

impl Hunk {
    /// Lines added, with their line numbers in the new file.
    pub fn added(&self) -> impl Iterator<Item = (u32, &str)> {
        self.lines
            .iter()
            .filter(|l| l.kind == LineKind::Added)
            .filter_map(|l| Some((l.new?, l.text.as_str())))
    }

    /// Lines removed, with the new-file position they were removed at.
    pub fn removed(&self) -> impl Iterator<Item = (u32, &str)> {
        self.lines
            .iter()
            .filter(|l| l.kind == LineKind::Removed)
            .map(|l| (l.at, l.text.as_str()))
    }

    /// The last line of the hunk in the new file (inclusive).
    pub fn new_end(&self) -> u32 {
        (self.new_start + self.new_count)
            .saturating_sub(1)
            .max(self.new_start)
    }
}

/// Whether a hunk line was added, removed or is context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// `+` line.
    Added,
    /// `-` line.
    Removed,
    /// ` ` line.
    Context,
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Added, removed or context.
    pub kind: LineKind,
    /// Line number in the old file (`None` for an added line).
    pub old: Option<u32>,
    /// Line number in the new file (`None` for a removed line).
    pub new: Option<u32>,
    /// The new-file line a verdict cites for this line: its own number, or for
    /// a removed line the new-file line now standing where it was.
    pub at: u32,
    /// The text without the `+`/`-`/` ` marker.
    pub text: String,
}

/// Parses a unified diff. Never fails: unrecognised text is skipped.
pub fn parse(diff: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    // Counts still expected in the current hunk (old side, new side).
    let mut left_old: u32 = 0;
    let mut left_new: u32 = 0;
    let mut old_no: u32 = 0;
    let mut new_no: u32 = 0;
    // Whether the current file was opened by `diff --git` and has not yet seen
    // its `---` header (so the next `---` belongs to it).
    let mut git_header_open = false;

    let lines: Vec<&str> = diff
        .split('\n')
        .map(|raw| raw.strip_suffix('\r').unwrap_or(raw))
        .collect();
    for (i, &line) in lines.iter().enumerate() {
        // A hunk whose counts claim more lines than it has (hand-written or
        // truncated diffs) must not swallow the next file: `--- x` followed by
        // `+++ y` and `@@ -` is a file header (no hunk line starts with `@`).
        if (left_old > 0 || left_new > 0)
            && line.starts_with("--- ")
            && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ "))
            && lines.get(i + 2).is_some_and(|l| l.starts_with("@@ -"))
        {
            left_old = 0;
            left_new = 0;
        }
        if left_old > 0 || left_new > 0 {
            let Some(h) = files.last_mut().and_then(|f| f.hunks.last_mut()) else {
                left_old = 0;
                left_new = 0;
                continue;
            };
            let (kind, text) = match line.as_bytes().first() {
                Some(b'+') if left_new > 0 => (LineKind::Added, &line[1..]),
                Some(b'-') if left_old > 0 => (LineKind::Removed, &line[1..]),
                Some(b' ') if left_old > 0 && left_new > 0 => (LineKind::Context, &line[1..]),
                // Some tools drop the space of an empty context line.
                None if left_old > 0 && left_new > 0 => (LineKind::Context, ""),
                Some(b'\\') => continue,
                _ => {
                    // The counts lied (truncated or hand-edited diff): end the
                    // hunk and read this line as a header.
                    left_old = 0;
                    left_new = 0;
                    header_line(
                        line,
                        &mut files,
                        &mut git_header_open,
                        &mut state(&mut left_old, &mut left_new, &mut old_no, &mut new_no),
                    );
                    continue;
                }
            };
            let (old, new) = match kind {
                LineKind::Added => (None, Some(new_no)),
                LineKind::Removed => (Some(old_no), None),
                LineKind::Context => (Some(old_no), Some(new_no)),
            };
            h.lines.push(Line {
                kind,
                old,
                new,
                at: new_no.max(1),
                text: text.to_owned(),
            });
            if kind != LineKind::Added {
                old_no = old_no.saturating_add(1);
                left_old -= 1;
            }
            if kind != LineKind::Removed {
                new_no = new_no.saturating_add(1);
                left_new -= 1;
            }
            continue;
        }
        if line.starts_with('\\') {
            continue;
        }
        header_line(
            line,
            &mut files,
            &mut git_header_open,
            &mut state(&mut left_old, &mut left_new, &mut old_no, &mut new_no),
        );
    }
    files.retain(|f| f.old_path.is_some() || f.new_path.is_some());
    for f in &mut files {
        if f.status == FileStatus::Modified {
            match (&f.old_path, &f.new_path) {
                (None, Some(_)) => f.status = FileStatus::Added,
                (Some(_), None) => f.status = FileStatus::Deleted,
                (Some(a), Some(b)) if a != b => f.status = FileStatus::Renamed,
                _ => {}
            }
        }
    }
    files
}

/// Mutable hunk-reading state handed to [`header_line`].
struct HunkState<'a> {
    left_old: &'a mut u32,
    left_new: &'a mut u32,
    old_no: &'a mut u32,
    new_no: &'a mut u32,
}

fn state<'a>(
    left_old: &'a mut u32,
    left_new: &'a mut u32,
    old_no: &'a mut u32,
    new_no: &'a mut u32,
) -> HunkState<'a> {
    HunkState {
        left_old,
        left_new,
        old_no,
        new_no,
    }
}

/// Handles one line outside a hunk body.
fn header_line(line: &str, files: &mut Vec<FileDiff>, git_open: &mut bool, st: &mut HunkState<'_>) {
    if let Some(rest) = line.strip_prefix("diff --git ") {
        let (a, b) = split_git_paths(rest);
        files.push(FileDiff {
            old_path: a,
            new_path: b,
            ..FileDiff::default()
        });
        *git_open = true;
    } else if let Some(p) = line.strip_prefix("--- ") {
        // A `---` starts a new file unless it belongs to a `diff --git` block
        // that has not had its headers yet.
        if !*git_open {
            files.push(FileDiff::default());
        }
        *git_open = false;
        if let Some(f) = files.last_mut() {
            let path = side_path(p, "a/");
            if path.is_none() {
                f.status = FileStatus::Added;
            }
            f.old_path = path;
        }
    } else if let Some(p) = line.strip_prefix("+++ ") {
        if files.is_empty() {
            files.push(FileDiff::default());
        }
        if let Some(f) = files.last_mut() {
            let path = side_path(p, "b/");
            if path.is_none() {
                f.status = FileStatus::Deleted;
            }
            f.new_path = path;
        }
    } else if line.starts_with("@@") {
        let Some(mut hunk) = parse_hunk_header(line) else {
            return;
        };
        let Some(f) = files.last_mut() else {
            return;
        };
        *git_open = false;
        *st.old_no = hunk.old_start;
        *st.new_no = hunk.new_start;
        *st.left_old = hunk.old_count;
        *st.left_new = hunk.new_count;
        // `-0,0` / `+0,0`: numbering of an empty side starts at line 1.
        if hunk.old_start == 0 {
            *st.old_no = 1;
        }
        if hunk.new_start == 0 {
            *st.new_no = 1;
            hunk.new_start = hunk.new_start.max(u32::from(hunk.new_count > 0));
        }
        f.hunks.push(hunk);
    } else if let Some(f) = files.last_mut().filter(|_| *git_open) {
        // Extended git headers (only meaningful inside a `diff --git` block).
        if let Some(p) = line.strip_prefix("rename from ") {
            f.old_path = Some(unquote(p));
            f.status = FileStatus::Renamed;
        } else if let Some(p) = line.strip_prefix("rename to ") {
            f.new_path = Some(unquote(p));
            f.status = FileStatus::Renamed;
        } else if let Some(p) = line.strip_prefix("copy from ") {
            f.old_path = Some(unquote(p));
            f.status = FileStatus::Copied;
        } else if let Some(p) = line.strip_prefix("copy to ") {
            f.new_path = Some(unquote(p));
            f.status = FileStatus::Copied;
        } else if let Some(p) = line
            .strip_prefix("similarity index ")
            .or_else(|| line.strip_prefix("dissimilarity index "))
        {
            f.similarity = p.trim_end_matches('%').trim().parse().ok();
        } else if line.starts_with("new file mode") {
            f.status = FileStatus::Added;
            f.old_path = None;
        } else if line.starts_with("deleted file mode") {
            f.status = FileStatus::Deleted;
            f.new_path = None;
        } else if line.starts_with("GIT binary patch")
            || (line.starts_with("Binary files ") && line.ends_with(" differ"))
        {
            f.binary = true;
        }
    } else if let Some(rest) = line
        .strip_prefix("Binary files ")
        .and_then(|r| r.strip_suffix(" differ"))
    {
        // `diff -u` style binary notice without a `diff --git` header.
        if let Some((a, b)) = rest.split_once(" and ") {
            files.push(FileDiff {
                old_path: side_path(a, "a/"),
                new_path: side_path(b, "b/"),
                binary: true,
                ..FileDiff::default()
            });
        }
    }
}

/// `a/x b/y` → (x, y). Paths with spaces are ambiguous here; the `---`/`+++`
/// or `rename` headers that follow override this guess.
fn split_git_paths(rest: &str) -> (Option<String>, Option<String>) {
    let rest = rest.trim();
    if rest.starts_with('"') {
        // `"a/x y" "b/x y"`
        let mut parts = rest.split("\" \"");
        let a = parts.next().map(|s| unquote(&format!("{s}\"")));
        let b = parts.next().map(|s| unquote(&format!("\"{s}")));
        return (
            a.map(|s| s.strip_prefix("a/").map(str::to_owned).unwrap_or(s)),
            b.map(|s| s.strip_prefix("b/").map(str::to_owned).unwrap_or(s)),
        );
    }
    if let Some(idx) = rest.find(" b/") {
        let a = &rest[..idx];
        let b = &rest[idx + 1..];
        return (
            Some(a.strip_prefix("a/").unwrap_or(a).to_owned()),
            Some(b.strip_prefix("b/").unwrap_or(b).to_owned()),
        );
    }
    (None, None)
}

fn side_path(p: &str, prefix: &str) -> Option<String> {
    // A tab separates the path from a timestamp in `diff -u` output.
    let p = p.split('\t').next().unwrap_or(p).trim();
    let p = unquote(p);
    if p == "/dev/null" || p.is_empty() {
        return None;
    }
    Some(p.strip_prefix(prefix).map(str::to_owned).unwrap_or(p))
}

/// Removes git's C-style quoting (`"a/sp ace\tx"`), leaving other text as is.
fn unquote(p: &str) -> String {
    let p = p.trim();
    let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return p.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// `@@ -a,b +c,d @@ context` → a hunk with its numbers; counts default to 1.
fn parse_hunk_header(line: &str) -> Option<Hunk> {
    let body = line.strip_prefix("@@ ")?;
    let (ranges, context) = body.split_once(" @@").unwrap_or((body, ""));
    let mut parts = ranges.split_whitespace();
    let (old_start, old_count) = parse_range(parts.next()?.strip_prefix('-')?)?;
    let (new_start, new_count) = parse_range(parts.next()?.strip_prefix('+')?)?;
    Some(Hunk {
        header: line.to_owned(),
        old_start,
        old_count,
        new_start,
        new_count,
        context: context.trim().to_owned(),
        lines: Vec::new(),
    })
}

fn parse_range(r: &str) -> Option<(u32, u32)> {
    let (start, count) = match r.split_once(',') {
        Some((s, c)) => (s.parse().ok()?, c.parse().ok()?),
        None => (r.parse().ok()?, 1),
    };
    // Absurd counts come only from hostile input; cap them so the reader ends.
    Some((start, u32::min(count, 10_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/src/checkout/pricing.py b/src/checkout/pricing.py\r\nindex 1..2 100644\r\n--- a/src/checkout/pricing.py\r\n+++ b/src/checkout/pricing.py\r\n@@ -214,7 +214,7 @@ def quote(cart):\r\n     total = 0\r\n     for item in cart:\r\n-        rate = rates.get(item.currency, 1.0)\r\n+        rate = rates[item.currency]\r\n         total += item.price * rate\r\n     return total\r\n \r\ndiff --git a/docs/new.md b/docs/new.md\nnew file mode 100644\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# Hello\n+world\n\\ No newline at end of file\n";

    #[test]
    fn parses_files_hunks_and_line_numbers_with_crlf() {
        let files = parse(DIFF);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path(), "src/checkout/pricing.py");
        assert_eq!(files[0].status, FileStatus::Modified);
        let h = &files[0].hunks[0];
        assert_eq!(h.header, "@@ -214,7 +214,7 @@ def quote(cart):");
        assert_eq!(h.context, "def quote(cart):");
        assert_eq!(
            h.added().collect::<Vec<_>>(),
            vec![(216, "        rate = rates[item.currency]")]
        );
        assert_eq!(h.removed().collect::<Vec<_>>()[0].0, 216);
        assert_eq!(h.lines.len(), 7);
        assert_eq!(files[1].old_path, None);
        assert_eq!(files[1].status, FileStatus::Added);
        assert_eq!(files[1].path(), "docs/new.md");
        assert_eq!(
            files[1].hunks[0].added().collect::<Vec<_>>(),
            vec![(1, "# Hello"), (2, "world")]
        );
    }

    #[test]
    fn multiple_hunks_and_old_line_mapping() {
        let d = "--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,4 @@\n a\n+b\n c\n d\n@@ -10,3 +11,2 @@ def f():\n k\n-l\n m\n";
        let f = &parse(d)[0];
        assert_eq!(f.hunks.len(), 2);
        assert_eq!(f.hunks[1].removed().collect::<Vec<_>>(), vec![(12, "l")]);
        assert_eq!(f.old_line_of(1), Some(1));
        assert_eq!(f.old_line_of(2), None, "added line");
        assert_eq!(f.old_line_of(3), Some(2));
        assert_eq!(f.old_line_of(8), Some(7), "between hunks: shifted by +1");
        assert_eq!(f.old_line_of(12), Some(12));
        assert_eq!(f.old_line_of(20), Some(20), "below: +1 then -1");
    }

    #[test]
    fn rename_with_similarity_and_pure_rename() {
        let d = "diff --git a/src/old_name.py b/src/new_name.py\nsimilarity index 92%\nrename from src/old_name.py\nrename to src/new_name.py\nindex 1..2 100644\n--- a/src/old_name.py\n+++ b/src/new_name.py\n@@ -5,1 +5,1 @@\n-x = 1\n+x = 2\ndiff --git a/a b.txt b/c.txt\nsimilarity index 100%\nrename from a b.txt\nrename to c.txt\n";
        let files = parse(d);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].status, FileStatus::Renamed);
        assert_eq!(files[0].old_path.as_deref(), Some("src/old_name.py"));
        assert_eq!(files[0].path(), "src/new_name.py");
        assert_eq!(files[0].similarity, Some(92));
        assert_eq!(files[1].status, FileStatus::Renamed);
        assert_eq!(files[1].old_path.as_deref(), Some("a b.txt"));
        assert_eq!(files[1].path(), "c.txt");
        assert!(files[1].hunks.is_empty());
    }

    #[test]
    fn new_deleted_and_binary_files() {
        let d = "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\nindex 1..0\n--- a/gone.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\ndiff --git a/logo.png b/logo.png\nindex 1..2 100644\nBinary files a/logo.png and b/logo.png differ\ndiff --git a/blob.bin b/blob.bin\nnew file mode 100644\nGIT binary patch\nliteral 5\nMcmZ?wbaG{6\n\nliteral 0\nHcmV?d00001\n\n";
        let files = parse(d);
        assert_eq!(files.len(), 3, "{files:#?}");
        assert_eq!(files[0].status, FileStatus::Deleted);
        assert_eq!(files[0].path(), "gone.py");
        assert_eq!(files[0].hunks[0].removed().count(), 2);
        assert!(files[1].binary);
        assert_eq!(files[1].path(), "logo.png");
        assert!(files[2].binary);
        assert_eq!(files[2].status, FileStatus::Added);
        assert_eq!(files[2].path(), "blob.bin");
    }

    #[test]
    fn no_newline_marker_is_not_a_line() {
        let d = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n\\ No newline at end of file\n+new\n\\ No newline at end of file\n";
        let f = &parse(d)[0];
        assert_eq!(f.hunks[0].lines.len(), 2);
        assert_eq!(f.hunks[0].added().collect::<Vec<_>>(), vec![(1, "new")]);
    }

    #[test]
    fn removed_line_that_looks_like_a_header_stays_a_line() {
        let d = "--- a/sql/x.sql\n+++ b/sql/x.sql\n@@ -1,2 +1,2 @@\n--- a/comment\n+++ b/comment\n";
        let files = parse(d);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].hunks[0].removed().count(), 1);
        assert_eq!(files[0].hunks[0].added().count(), 1);
    }

    #[test]
    fn hunk_with_overstated_counts_does_not_swallow_the_next_file() {
        let d = "--- a/x.py\n+++ b/x.py\n@@ -1,9 +1,9 @@ f\n a\n-b\n+c\n--- a/y.py\n+++ b/y.py\n@@ -1 +1 @@\n-x\n+y\n";
        let files = parse(d);
        assert_eq!(files.len(), 2, "{files:#?}");
        assert_eq!(files[1].path(), "y.py");
        assert_eq!(
            files[1].hunks[0].added().collect::<Vec<_>>(),
            vec![(1, "y")]
        );
    }

    #[test]
    fn plain_diff_u_with_timestamps() {
        let d = "--- src/a.c\t2024-01-01 00:00:00\n+++ src/a.c\t2024-01-02 00:00:00\n@@ -3 +3 @@\n-x\n+y\n";
        let f = &parse(d)[0];
        assert_eq!(f.path(), "src/a.c");
        assert_eq!(f.hunks[0].added().collect::<Vec<_>>(), vec![(3, "y")]);
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            "@@",
            "@@ -x +y @@",
            "+++",
            "--- \n+++ \n@@ -1 +1 @@\n+x",
            "\u{0}\u{ffff}",
            "diff --git \"a/x\" \"b/y\"\n@@ -4294967295,4294967295 +4294967295,4294967295 @@\n+a\n-b\n c",
            "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n+only one\nnot a diff line",
        ] {
            let _ = parse(s);
        }
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        /// Fragments that steer random input into the parser's interesting states.
        fn diffish() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("diff --git a/x b/y\n".to_owned()),
                Just("--- a/x\n".to_owned()),
                Just("+++ b/x\n".to_owned()),
                Just("--- /dev/null\n".to_owned()),
                Just("rename from z\n".to_owned()),
                Just("similarity index 99%\n".to_owned()),
                Just("Binary files a/x and b/x differ\n".to_owned()),
                Just("\\ No newline at end of file\n".to_owned()),
                (0u32..5, 0u32..5, 0u32..5, 0u32..5)
                    .prop_map(|(a, b, c, d)| format!("@@ -{a},{b} +{c},{d} @@ f\n")),
                "[-+ ]?[a-z\r]{0,6}\n",
                any::<String>(),
            ];
            proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn never_panics_and_lines_are_consistent(input in diffish()) {
                for f in parse(&input) {
                    prop_assert!(f.old_path.is_some() || f.new_path.is_some());
                    for h in &f.hunks {
                        prop_assert!(h.lines.iter().filter(|l| l.kind != LineKind::Added).count() as u32 <= h.old_count);
                        prop_assert!(h.lines.iter().filter(|l| l.kind != LineKind::Removed).count() as u32 <= h.new_count);
                    }
                    for n in 0..10 {
                        let _ = f.old_line_of(n);
                    }
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(input in any::<Vec<u8>>()) {
                let _ = parse(&String::from_utf8_lossy(&input));
            }
        }
    }
}
