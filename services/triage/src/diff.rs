//! A unified-diff parser (pure): files, hunks, and the changed lines with their
//! line numbers in the new file.
//!
//! Skeleton scope: `diff --git`, `---`/`+++` headers, `@@` hunks with their
//! function context, `/dev/null` for new and deleted files, CRLF. Garbage lines
//! are skipped, never a panic. The triage issue adds renames, binary markers and
//! fuzzing.

/// One file touched by a diff.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileDiff {
    /// Path before the change (`None` for a new file).
    pub old_path: Option<String>,
    /// Path after the change (`None` for a deleted file).
    pub new_path: Option<String>,
    /// The hunks.
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
}

/// One hunk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ context` line, verbatim.
    pub header: String,
    /// First line of the hunk in the new file.
    pub new_start: u32,
    /// Lines added, with their line numbers in the new file.
    pub added: Vec<(u32, String)>,
    /// Lines removed, with the new-file line number they were removed at.
    pub removed: Vec<(u32, String)>,
}

/// Parses a unified diff.
pub fn parse(diff: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut new_line: u32 = 0;
    let mut in_hunk = false;
    for raw in diff.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with("diff --git ") {
            files.push(FileDiff::default());
            in_hunk = false;
        } else if let Some(p) = line
            .strip_prefix("--- ")
            .filter(|_| !in_hunk || is_header_start(line))
        {
            if files
                .last()
                .is_none_or(|f| f.old_path.is_some() || !f.hunks.is_empty())
            {
                files.push(FileDiff::default());
            }
            in_hunk = false;
            if let Some(f) = files.last_mut() {
                f.old_path = strip_side(p, "a/");
            }
        } else if let Some(p) = line.strip_prefix("+++ ").filter(|_| !in_hunk) {
            if files.is_empty() {
                files.push(FileDiff::default());
            }
            if let Some(f) = files.last_mut() {
                f.new_path = strip_side(p, "b/");
            }
        } else if line.starts_with("@@ ") {
            let Some(start) = parse_new_start(line) else {
                continue;
            };
            if files.is_empty() {
                files.push(FileDiff::default());
            }
            if let Some(f) = files.last_mut() {
                f.hunks.push(Hunk {
                    header: line.to_owned(),
                    new_start: start,
                    ..Default::default()
                });
            }
            new_line = start;
            in_hunk = true;
        } else if in_hunk {
            let Some(h) = files.last_mut().and_then(|f| f.hunks.last_mut()) else {
                continue;
            };
            match line.as_bytes().first() {
                Some(b'+') => {
                    h.added.push((new_line, line[1..].to_owned()));
                    new_line = new_line.saturating_add(1);
                }
                Some(b'-') => h.removed.push((new_line, line[1..].to_owned())),
                Some(b' ') | None => new_line = new_line.saturating_add(1),
                // `\ No newline at end of file` and anything unknown.
                _ => {}
            }
        }
    }
    files.retain(|f| f.old_path.is_some() || f.new_path.is_some());
    files
}

fn is_header_start(line: &str) -> bool {
    // Inside a hunk, a removed line starting with "-- " looks like a header;
    // only treat it as one when it is followed by a path-like token.
    line.starts_with("--- a/") || line == "--- /dev/null"
}

fn strip_side(p: &str, prefix: &str) -> Option<String> {
    let p = p.split('\t').next().unwrap_or(p).trim();
    if p == "/dev/null" {
        return None;
    }
    Some(p.strip_prefix(prefix).unwrap_or(p).to_owned())
}

/// `@@ -a,b +c,d @@` → c.
fn parse_new_start(line: &str) -> Option<u32> {
    let plus = line.split_whitespace().find(|t| t.starts_with('+'))?;
    plus[1..].split(',').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/src/checkout/pricing.py b/src/checkout/pricing.py\r\nindex 1..2 100644\r\n--- a/src/checkout/pricing.py\r\n+++ b/src/checkout/pricing.py\r\n@@ -214,7 +214,7 @@ def quote(cart):\r\n     total = 0\r\n     for item in cart:\r\n-        rate = rates.get(item.currency, 1.0)\r\n+        rate = rates[item.currency]\r\n         total += item.price * rate\r\n     return total\r\n \r\ndiff --git a/docs/new.md b/docs/new.md\nnew file mode 100644\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# Hello\n+world\n\\ No newline at end of file\n";

    #[test]
    fn parses_files_hunks_and_new_line_numbers() {
        let files = parse(DIFF);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path(), "src/checkout/pricing.py");
        let h = &files[0].hunks[0];
        assert_eq!(h.header, "@@ -214,7 +214,7 @@ def quote(cart):");
        assert_eq!(
            h.added,
            vec![(216, "        rate = rates[item.currency]".to_owned())]
        );
        assert_eq!(h.removed.len(), 1);
        assert_eq!(files[1].old_path, None);
        assert_eq!(files[1].path(), "docs/new.md");
        assert_eq!(files[1].hunks[0].added.len(), 2);
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
        ] {
            let _ = parse(s);
        }
    }
}
