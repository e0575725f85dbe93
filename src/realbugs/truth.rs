//! The linkability class of a Java trace against a patch, computed from the
//! raw texts and independently of triage (so the benchmark does not grade
//! triage with triage's own rules).
//!
//! - `line`: a frame of the trace is within ±3 lines of a changed line of the
//!   same file (new numbering; a deletion counts at the line after it);
//! - `function`: a frame's method is the method enclosing a changed line (its
//!   declaration is the nearest method declaration above the change in the
//!   hunk's own lines; constructors are `<init>`);
//! - `file`: a frame is in a changed file;
//! - `none`: otherwise.
//!
//! A frame is in a file when the file's path ends with the frame's package
//! directories and file name (`org/jfree/data/xy/XYSeries.java`).

/// Lines of slack for the `line` class and for a right citation.
pub(crate) const SLACK: u32 = 3;

/// How a trace can be linked to a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Linkability {
    /// A frame within ±3 of a changed line.
    Line,
    /// A frame inside a changed method.
    Function,
    /// A frame in a changed file.
    File,
    /// Nothing.
    None,
}

impl Linkability {
    /// The class's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Linkability::Line => "line",
            Linkability::Function => "function",
            Linkability::File => "file",
            Linkability::None => "none",
        }
    }
}

/// One `at pkg.Class.method(File.java:N)` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JavaFrame {
    /// `org/jfree/data/xy/XYSeries.java`.
    pub(crate) path: String,
    /// Method name (`<init>` for constructors).
    pub(crate) method: String,
    /// Line number.
    pub(crate) line: u32,
}

impl JavaFrame {
    /// Parses one trace line; `None` for anything else (native frames too).
    pub(crate) fn parse(line: &str) -> Option<JavaFrame> {
        let rest = line.trim().strip_prefix("at ")?;
        let (func, loc) = rest.split_once('(')?;
        let (file, n) = loc.trim_end_matches(')').split_once(':')?;
        let line: u32 = n.trim().parse().ok()?;
        let (class, method) = func.rsplit_once('.')?;
        let package = class.rsplit_once('.').map_or("", |(p, _)| p);
        let dir = package.replace('.', "/");
        let path = if dir.is_empty() {
            file.to_owned()
        } else {
            format!("{dir}/{file}")
        };
        Some(JavaFrame {
            path,
            method: method.to_owned(),
            line,
        })
    }
}

/// One changed position of a patch, in the new numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// File path (new side).
    pub(crate) file: String,
    /// Line.
    pub(crate) line: u32,
    /// The method enclosing it, when its declaration is in the hunk.
    pub(crate) method: Option<String>,
}

/// The class and the changed lines that make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// The class.
    pub(crate) class: Linkability,
    /// For `line`: the changed lines some frame is within ±3 of.
    pub(crate) lines: Vec<(String, u32)>,
}

/// The changed positions of a unified diff.
pub(crate) fn changes(patch: &str) -> Vec<Change> {
    let mut out = Vec::new();
    let mut file = String::new();
    let mut new_line = 0u32;
    // (line, method) declarations seen in the current hunk.
    let mut method: Option<String> = None;
    for l in patch.lines() {
        if let Some(p) = l.strip_prefix("+++ ") {
            file = p.trim().trim_start_matches("b/").to_owned();
            continue;
        }
        if l.starts_with("--- ") || l.starts_with("diff ") || l.starts_with("index ") {
            continue;
        }
        if let Some(h) = l.strip_prefix("@@ ") {
            new_line = h
                .split_whitespace()
                .find_map(|t| t.strip_prefix('+'))
                .and_then(|t| t.split(',').next())
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            method = None;
            continue;
        }
        let (mark, text) = l.split_at(l.len().min(1));
        match mark {
            "+" => {
                if let Some(m) = declared_method(text) {
                    method = Some(m);
                }
                out.push(Change {
                    file: file.clone(),
                    line: new_line,
                    method: method.clone(),
                });
                new_line += 1;
            }
            "-" => out.push(Change {
                file: file.clone(),
                line: new_line,
                method: method.clone(),
            }),
            _ => {
                if let Some(m) = declared_method(text) {
                    method = Some(m);
                }
                new_line += 1;
            }
        }
    }
    out
}

/// The method a Java line declares, if it is a method or constructor
/// declaration (`public double getX(int i) {`, `private Foo(String s)`).
fn declared_method(text: &str) -> Option<String> {
    let t = text.trim();
    if t.ends_with(';') || t.starts_with("//") || t.starts_with('*') || t.starts_with("/*") {
        return None;
    }
    let (head, _) = t.split_once('(')?;
    let words: Vec<&str> = head.split_whitespace().collect();
    let name = *words.last()?;
    const NOT_DECL: &[&str] = &[
        "if",
        "for",
        "while",
        "switch",
        "catch",
        "synchronized",
        "return",
        "new",
        "throw",
        "else",
        "super",
        "this",
        "assert",
    ];
    if words.len() < 2 && !name.chars().next()?.is_uppercase() {
        return None;
    }
    if words
        .iter()
        .any(|w| NOT_DECL.contains(w) || w.contains('=') || w.contains('.'))
    {
        return None;
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    {
        return None;
    }
    let is_ctor = name.chars().next()?.is_uppercase() && words.len() <= 2;
    Some(if is_ctor {
        "<init>".to_owned()
    } else {
        name.to_owned()
    })
}

fn same_file(frame: &JavaFrame, file: &str) -> bool {
    file == frame.path || file.ends_with(&format!("/{}", frame.path))
}

/// The linkability of `frames` against `patch`.
pub(crate) fn linkability(frames: &[JavaFrame], patch: &str) -> Link {
    let changes = changes(patch);
    let mut lines = Vec::new();
    for f in frames {
        for c in changes.iter().filter(|c| same_file(f, &c.file)) {
            if c.line.abs_diff(f.line) <= SLACK {
                lines.push((c.file.clone(), c.line));
            }
        }
    }
    if !lines.is_empty() {
        lines.sort();
        lines.dedup();
        return Link {
            class: Linkability::Line,
            lines,
        };
    }
    let in_method = frames.iter().any(|f| {
        changes
            .iter()
            .any(|c| same_file(f, &c.file) && c.method.as_deref() == Some(f.method.as_str()))
    });
    let class = if in_method {
        Linkability::Function
    } else if frames
        .iter()
        .any(|f| changes.iter().any(|c| same_file(f, &c.file)))
    {
        Linkability::File
    } else {
        Linkability::None
    };
    Link {
        class,
        lines: Vec::new(),
    }
}

/// Whether a citation `file:line` is right: for the `line` class within ±3 of
/// a changed line a frame points at; otherwise within ±3 of a changed line.
pub(crate) fn cites_right(patch: &str, file: &str, line: u32, link: &Link) -> bool {
    if link.class == Linkability::Line {
        return link
            .lines
            .iter()
            .any(|(f, l)| f == file && l.abs_diff(line) <= SLACK);
    }
    changes(patch)
        .iter()
        .any(|c| c.file == file && c.line.abs_diff(line) <= SLACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "\
--- a/source/org/x/Foo.java
+++ b/source/org/x/Foo.java
@@ -10,7 +10,7 @@ public class Foo extends Bar
     public int quote(int a) {
         int b = a * 2;
-        return b;
+        return b + 1;
     }
";

    #[test]
    fn frames_parse_with_package_paths() {
        let f = JavaFrame::parse("\tat org.x.Foo$Inner.quote(Foo.java:12)").expect("frame");
        assert_eq!(f.path, "org/x/Foo.java");
        assert_eq!(f.method, "quote");
        assert_eq!(f.line, 12);
        assert!(JavaFrame::parse("\tat sun.reflect.X.invoke0(Native Method)").is_none());
    }

    #[test]
    fn classes_line_function_file_none() {
        let at = |m: &str, line: u32, path: &str| JavaFrame {
            path: path.into(),
            method: m.into(),
            line,
        };
        let c = changes(PATCH);
        assert_eq!(c.len(), 2);
        assert!(c
            .iter()
            .all(|c| c.line == 12 && c.method.as_deref() == Some("quote")));
        let f = "org/x/Foo.java";
        assert_eq!(
            linkability(&[at("quote", 13, f)], PATCH).class,
            Linkability::Line
        );
        assert_eq!(
            linkability(&[at("quote", 40, f)], PATCH).class,
            Linkability::Function
        );
        assert_eq!(
            linkability(&[at("other", 90, f)], PATCH).class,
            Linkability::File
        );
        assert_eq!(
            linkability(&[at("quote", 12, "org/y/Foo.java")], PATCH).class,
            Linkability::None
        );
    }

    #[test]
    fn declarations_are_told_from_calls() {
        assert_eq!(
            declared_method("    public int quote(int a) {").as_deref(),
            Some("quote")
        );
        assert_eq!(
            declared_method("    private Foo(String s) {").as_deref(),
            Some("<init>")
        );
        assert_eq!(declared_method("        if (x) {"), None);
        assert_eq!(declared_method("        foo(x);"), None);
        assert_eq!(declared_method("        int y = foo(x)"), None);
    }
}
