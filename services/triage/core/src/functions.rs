//! Functions from source, not from hunk headers (pure).
//!
//! Git's hunk header names whatever its funcname rule matched above the hunk:
//! for Java, C# and Kotlin that is usually the *class*
//! (`@@ -540,7 +540,9 @@ public class XYSeries extends Series`), for Python a
//! `class` line as often as a `def`. So the function enclosing a changed line
//! is found in the diff's own lines (context and added lines, in the new
//! numbering): scanning upwards from the line, the nearest declaration of
//! the file's language that is less indented than everything between it and
//! the line. Only when the hunk shows no such declaration is the header used,
//! and only if it is itself a declaration.
//!
//! Languages: Java/Kotlin/Scala/C#/C/C++ (brace languages with
//! `type name(…)` declarations), Go (`func`), JavaScript/TypeScript
//! (`function`, methods, arrow functions assigned to a name), Python (`def`),
//! Ruby (`def`), Rust (`fn`). A declaration is recognised on one line; a
//! signature broken over several lines is recognised by its first line when
//! it holds the name and `(`.

use crate::diff::{FileDiff, Hunk, LineKind};

/// A source language, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Java, Kotlin, Scala, C#, C, C++, Swift: `type name(…) {`.
    Braces,
    /// Go: `func name(` / `func (r T) name(`.
    Go,
    /// JavaScript and TypeScript.
    Js,
    /// Python: `def name(`.
    Python,
    /// Ruby: `def name`.
    Ruby,
    /// Rust: `fn name(`.
    Rust,
    /// Anything else: no declarations recognised.
    Other,
}

impl Lang {
    /// The language of a path.
    pub fn of(path: &str) -> Lang {
        let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
        match ext.to_ascii_lowercase().as_str() {
            "java" | "kt" | "kts" | "scala" | "cs" | "c" | "cc" | "cpp" | "cxx" | "h" | "hpp"
            | "swift" | "groovy" => Lang::Braces,
            "go" => Lang::Go,
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" => Lang::Js,
            "py" => Lang::Python,
            "rb" => Lang::Ruby,
            "rs" => Lang::Rust,
            _ => Lang::Other,
        }
    }
}

/// Words that open a statement, never a declaration, in brace languages.
const STATEMENTS: &[&str] = &[
    "if",
    "for",
    "foreach",
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
    "using",
    "lock",
    "await",
    "yield",
    "case",
    "do",
    "try",
    "when",
    "typeof",
    "sizeof",
    "delete",
];

/// The name a line declares as a function in `lang`, if it does.
pub fn declares(lang: Lang, text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || t.starts_with("//") || t.starts_with('#') || t.starts_with('*') {
        return None;
    }
    match lang {
        Lang::Python => after_keyword(t, &["async def ", "def "]),
        Lang::Ruby => after_keyword(t, &["def self.", "def "]),
        Lang::Rust => {
            let t = t
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            let t = t.trim_start_matches("async ").trim_start_matches("const ");
            let t = t.trim_start_matches("unsafe ");
            after_keyword(t, &["fn "])
        }
        Lang::Go => {
            let rest = t.strip_prefix("func ")?;
            // Method: `func (q *Quoter) Quote(`.
            let rest = if rest.starts_with('(') {
                rest.split_once(')')?.1.trim_start()
            } else {
                rest
            };
            ident_before_paren(rest)
        }
        Lang::Js => js_declares(t),
        Lang::Braces => braces_declares(t),
        Lang::Other => None,
    }
}

/// `kw name(` → name, for the first keyword that prefixes `t`.
fn after_keyword(t: &str, keywords: &[&str]) -> Option<String> {
    keywords
        .iter()
        .find_map(|kw| t.strip_prefix(kw))
        .and_then(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '?' | '!'))
                .collect();
            (!name.is_empty()).then_some(name)
        })
}

/// The identifier right before the first `(` (or `<` of generics), when
/// that is all there is before it.
fn ident_before_paren(rest: &str) -> Option<String> {
    let end = rest.find(['(', '<', '['])?;
    let name = rest[..end].trim();
    is_ident(name).then(|| name.to_owned())
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn js_declares(t: &str) -> Option<String> {
    let t = t
        .trim_start_matches("export ")
        .trim_start_matches("default ");
    let t = t.trim_start_matches("async ");
    if let Some(rest) = t.strip_prefix("function") {
        return ident_before_paren(rest.trim_start_matches('*').trim_start());
    }
    // `const quote = (a) => {`, `let quote = async function (`.
    for kw in ["const ", "let ", "var "] {
        if let Some(rest) = t.strip_prefix(kw) {
            let (name, value) = rest.split_once('=')?;
            let value = value.trim_start().trim_start_matches("async ");
            if value.starts_with("function") || value.contains("=>") {
                let name = name.trim().split(':').next()?.trim();
                return is_ident(name).then(|| name.to_owned());
            }
            return None;
        }
    }
    // Class methods: `quote(cart) {`, `static async quote(cart: Cart): number {`.
    if t.ends_with('{') && !t.contains('=') {
        let head = t
            .trim_start_matches("public ")
            .trim_start_matches("private ")
            .trim_start_matches("protected ")
            .trim_start_matches("static ")
            .trim_start_matches("async ")
            .trim_start_matches("get ")
            .trim_start_matches("set ");
        let name = ident_before_paren(head)?;
        return (!STATEMENTS.contains(&name.as_str())).then_some(name);
    }
    None
}

/// `public double quote(Cart c) {`, `private Foo(String s)`, `fun quote(…)`,
/// `override fun quote(…): Double {`; not calls, assignments or statements.
fn braces_declares(t: &str) -> Option<String> {
    if t.ends_with(';') || t.starts_with('@') || t.starts_with('}') {
        return None;
    }
    let (head, _) = t.split_once('(')?;
    if head.contains(['=', '.', '"', '\'', '+', '-', '!', '&', '|', '?', ':']) {
        return None;
    }
    let words: Vec<&str> = head.split_whitespace().collect();
    let name = *words.last()?;
    if !is_ident(name) || words.iter().any(|w| STATEMENTS.contains(w)) {
        return None;
    }
    // A bare `name(` is a call unless it is a constructor (`Foo(`).
    if words.len() < 2 && !name.starts_with(char::is_uppercase) {
        return None;
    }
    if words.len() < 2 && !(t.ends_with('{') || t.ends_with(')')) {
        return None;
    }
    Some(name.to_owned())
}

/// Leading whitespace width (a tab counts 4).
fn indent(text: &str) -> usize {
    text.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// The function enclosing line `index` of `hunk`, as (name, declaration's
/// new-file line), from the hunk's own lines, else from its header.
pub fn enclosing(lang: Lang, hunk: &Hunk, index: usize) -> Option<(String, Option<u32>)> {
    let target = hunk.lines.get(index)?;
    let mut bound = if target.text.trim().is_empty() {
        usize::MAX
    } else {
        indent(&target.text)
    };
    if let Some(name) = declares(lang, &target.text) {
        if target.kind != LineKind::Removed {
            return Some((name, Some(target.at)));
        }
    }
    for l in hunk.lines[..index].iter().rev() {
        if l.kind == LineKind::Removed || l.text.trim().is_empty() {
            continue;
        }
        let ind = indent(&l.text);
        if ind < bound {
            if let Some(name) = declares(lang, &l.text) {
                return Some((name, Some(l.at)));
            }
            bound = ind;
        }
        if bound == 0 {
            break;
        }
    }
    // Nothing in view: the header, if it is a function declaration.
    declares(lang, &hunk.context).map(|name| (name, None))
}

/// A changed line and the function enclosing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFn {
    /// Hunk index.
    pub hunk: usize,
    /// The changed line's cited new-file line.
    pub at: u32,
    /// The enclosing function's name.
    pub name: String,
}

/// The enclosing function of every changed line of `file` that has one.
pub fn changed_functions(file: &FileDiff) -> Vec<ChangedFn> {
    let lang = Lang::of(file.path());
    let mut out = Vec::new();
    for (h, hunk) in file.hunks.iter().enumerate() {
        for (i, l) in hunk.lines.iter().enumerate() {
            if l.kind == LineKind::Context {
                continue;
            }
            if let Some((name, _)) = enclosing(lang, hunk, i) {
                out.push(ChangedFn {
                    hunk: h,
                    at: l.at,
                    name,
                });
            }
        }
    }
    out
}

/// The function enclosing a visible line `line` (new numbering) of `file`,
/// if the line is shown in a hunk.
pub fn function_at(file: &FileDiff, line: u32) -> Option<String> {
    let lang = Lang::of(file.path());
    file.hunks.iter().find_map(|h| {
        let i = h
            .lines
            .iter()
            .position(|l| l.kind != LineKind::Removed && l.new == Some(line))?;
        enclosing(lang, h, i).map(|(name, _)| name)
    })
}

/// Whether a frame's function name is `declared` (JVM constructors are
/// `<init>`, named after the class, i.e. the file's stem).
pub fn same_function(frame_function: &str, declared: &str, path: &str) -> bool {
    if frame_function == declared {
        return true;
    }
    if frame_function == "<init>" {
        let stem = path
            .rsplit('/')
            .next()
            .and_then(|f| f.split('.').next())
            .unwrap_or_default();
        return declared == stem;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff;

    fn file(text: &str) -> FileDiff {
        diff::parse(text).remove(0)
    }

    #[test]
    fn java_method_found_in_context_not_the_class_header() {
        let f = file(
            "--- a/src/main/java/org/x/XYSeries.java\n+++ b/src/main/java/org/x/XYSeries.java\n@@ -540,7 +540,7 @@ public class XYSeries extends Series\n     public XYDataItem addOrUpdate(Number x, Number y) {\n         if (x == null) {\n             throw new IllegalArgumentException(\"Null 'x' argument.\");\n-        }\n+        } else {\n         XYDataItem overwritten = null;\n         int index = indexOf(x);\n",
        );
        let fns = changed_functions(&f);
        assert!(!fns.is_empty());
        assert!(fns.iter().all(|c| c.name == "addOrUpdate"), "{fns:?}");
    }

    #[test]
    fn header_class_is_not_a_function_but_a_python_def_is() {
        let f = file("--- a/app/p.py\n+++ b/app/p.py\n@@ -10,3 +10,3 @@ def quote(cart):\n     a = 1\n-    b = a\n+    b = x\n     return b\n");
        assert_eq!(changed_functions(&f)[0].name, "quote");
        let j = file("--- a/A.java\n+++ b/A.java\n@@ -10,3 +10,3 @@ public class A extends B\n         a = 1;\n-        b = a;\n+        b = x;\n         return b;\n");
        assert!(changed_functions(&j).is_empty());
    }

    #[test]
    fn a_function_that_ended_above_is_not_the_enclosing_one() {
        let f = file("--- a/A.java\n+++ b/A.java\n@@ -1,8 +1,8 @@\n     public int a() {\n         return 1;\n     }\n \n     int b = 2;\n-    int c = 3;\n+    int c = 4;\n     int d;\n");
        assert!(
            changed_functions(&f).is_empty(),
            "{:?}",
            changed_functions(&f)
        );
    }

    #[test]
    fn declarations_per_language() {
        assert_eq!(
            declares(Lang::Go, "func (q *Quoter) Quote(c Cart) float64 {").as_deref(),
            Some("Quote")
        );
        assert_eq!(
            declares(Lang::Go, "func quote(c Cart) {").as_deref(),
            Some("quote")
        );
        assert_eq!(
            declares(Lang::Js, "export async function quote(cart) {").as_deref(),
            Some("quote")
        );
        assert_eq!(
            declares(Lang::Js, "const quote = async (cart) => {").as_deref(),
            Some("quote")
        );
        assert_eq!(
            declares(Lang::Js, "  static quote(cart: Cart): number {").as_deref(),
            Some("quote")
        );
        assert_eq!(declares(Lang::Js, "  if (cart) {"), None);
        assert_eq!(
            declares(Lang::Ruby, "  def self.quote(cart)").as_deref(),
            Some("quote")
        );
        assert_eq!(
            declares(Lang::Ruby, "  def valid?").as_deref(),
            Some("valid?")
        );
        assert_eq!(
            declares(Lang::Rust, "    pub fn quote(&self) -> f64 {").as_deref(),
            Some("quote")
        );
        assert_eq!(
            declares(Lang::Braces, "    public override decimal Quote(Cart c)").as_deref(),
            Some("Quote")
        );
        assert_eq!(
            declares(Lang::Braces, "    override fun quote(c: Cart): Double {").as_deref(),
            Some("quote")
        );
        assert_eq!(
            declares(Lang::Braces, "    private Foo(String s) {").as_deref(),
            Some("Foo")
        );
        assert_eq!(declares(Lang::Braces, "        foo(x);"), None);
        assert_eq!(declares(Lang::Braces, "        int y = foo(x)"), None);
        assert_eq!(declares(Lang::Braces, "        } else if (x) {"), None);
        assert_eq!(declares(Lang::Braces, "        return quote(x) {"), None);
    }

    #[test]
    fn constructors_match_init_frames() {
        assert!(same_function("<init>", "Foo", "src/org/x/Foo.java"));
        assert!(!same_function("<init>", "Bar", "src/org/x/Foo.java"));
    }
}
