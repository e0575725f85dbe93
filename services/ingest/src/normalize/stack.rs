//! Stack-trace parsing: exception type and frames `(file, line, function)` from
//! Python, JVM (with `Caused by:`), Go (panics and goroutine dumps), Node.js,
//! Rust panics and Ruby traces.
//!
//! Frames come out innermost first (where the error was raised, then its
//! callers), whatever order the language prints them in: Python and Ruby's
//! "most recent call last" form are reversed. For chained errors the frames of
//! the root cause come first (JVM's last `Caused by:`; Python's last traceback is
//! the one that propagated, so its frames are used). Go dumps keep the first
//! goroutine (the one that panicked).
//!
//! Line-based and allocation-light; never panics on any input (a property test
//! feeds it arbitrary text).

use selfheal_schemas::Frame;

/// Decides whether a frame is the service's own code.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InApp {
    /// When non-empty, a frame is in-app iff its file or function starts with one
    /// of these (e.g. `/app/`, `src/`, `com.shop.`).
    pub prefixes: Vec<String>,
    /// Otherwise a frame is in-app unless its file or function contains one of
    /// these library markers.
    pub library_markers: Vec<String>,
}

impl InApp {
    /// Whether a frame with this file and function is in-app.
    pub fn decide(&self, file: &str, function: &str) -> bool {
        if !self.prefixes.is_empty() {
            return self
                .prefixes
                .iter()
                .any(|p| file.starts_with(p.as_str()) || function.starts_with(p.as_str()));
        }
        if file.is_empty() && function.is_empty() {
            return false;
        }
        // A package marker (`java.`, `System.`) names a function prefix;
        // inside a path it would also match `/src/OrderSystem.Core/…`.
        !self.library_markers.iter().any(|m| {
            let package = m.ends_with('.');
            (!package && file.contains(m.as_str()))
                || (!package && file.is_empty() && function.contains(m.as_str()))
                || function.starts_with(m.as_str())
        })
    }
}

/// Library markers that hold in most deployments.
pub fn default_library_markers() -> Vec<String> {
    [
        "site-packages/",
        "dist-packages/",
        "/usr/lib/",
        "/usr/local/lib/",
        "node_modules/",
        "node:",
        "java.",
        "javax.",
        "jdk.",
        "sun.",
        "kotlin.",
        "scala.",
        "org.springframework.",
        "/go/pkg/mod/",
        "/usr/local/go/",
        "runtime/",
        "<frozen",
        // Not `internal/`: Go's standard project layout keeps the service's
        // own packages there; the toolchain's are under GOROOT (above).
        "System.",
        "Microsoft.",
        "/rustc/",
        "/.cargo/registry/",
        "/gems/",
        "/ruby/",
        "<internal:",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// A parsed trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The exception type (`KeyError`, `java.sql.SQLException`, `panic` …).
    pub exception_type: Option<String>,
    /// The exception's message as printed in the trace, if any.
    pub message: Option<String>,
    /// Frames, innermost first.
    pub frames: Vec<Frame>,
}

const MAX_LINES: usize = 4_000;

/// An exception type and its message.
type Head = (String, Option<String>);

/// Parses a stack trace (any supported language).
pub fn parse(stack: &str, in_app: &InApp) -> Parsed {
    let lines: Vec<&str> = stack.lines().take(MAX_LINES).collect();
    let mut p = if lines.iter().any(|l| python_frame(l.trim_start()).is_some()) {
        python(&lines)
    } else if lines.iter().any(|l| l.contains("panicked at")) {
        rust(&lines)
    } else if lines.iter().any(|l| {
        l.trim_start().starts_with("goroutine ")
            || l.starts_with("panic: ")
            || l.starts_with("fatal error: ")
    }) {
        go(&lines)
    } else if lines.iter().any(|l| ruby_frame(l).is_some()) {
        ruby(&lines)
    } else {
        jvm_or_node(&lines)
    };
    for f in &mut p.frames {
        f.in_app = in_app.decide(&f.file, &f.function);
    }
    p
}

fn frame(file: &str, line: Option<i32>, function: &str) -> Frame {
    Frame {
        file: file.to_owned(),
        line,
        function: function.to_owned(),
        in_app: false,
    }
}

/// `Type: message` or a bare `Type` when it looks like an exception class.
pub fn exception_head(line: &str) -> Option<(String, Option<String>)> {
    let line = line.trim();
    let (head, msg) = match line.split_once(": ") {
        Some((h, m)) => (h.trim(), Some(m.trim().to_owned())),
        None => (line.strip_suffix(':').unwrap_or(line), None),
    };
    let head = head
        .strip_prefix("Caused by:")
        .map(str::trim)
        .unwrap_or(head);
    if head.is_empty() || head.len() > 200 || head.contains(char::is_whitespace) {
        return None;
    }
    let name = head.rsplit(['.', ':', '$']).next()?;
    let ok_chars = head
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'$' | b':'));
    let looks = ok_chars
        && name.chars().next().is_some_and(char::is_uppercase)
        && [
            "Error",
            "Exception",
            "Fault",
            "Failure",
            "Exit",
            "Interrupt",
            "Warning",
            "Throwable",
            "Panic",
        ]
        .iter()
        .any(|s| name.ends_with(s));
    looks.then(|| (head.to_owned(), msg))
}

// ---------------------------------------------------------------- Python

/// `File "/app/x.py", line 12, in quote`
fn python_frame(line: &str) -> Option<Frame> {
    let rest = line.strip_prefix("File \"")?;
    let (file, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(", line ")?;
    let (num, rest) = rest.split_once(',').unwrap_or((rest, ""));
    let function = rest.trim().strip_prefix("in ").unwrap_or("").trim();
    Some(frame(file, num.trim().parse().ok(), function))
}

fn python(lines: &[&str]) -> Parsed {
    // The last traceback block is the exception that propagated.
    let start = lines
        .iter()
        .rposition(|l| {
            l.trim_start()
                .starts_with("Traceback (most recent call last)")
        })
        .unwrap_or(0);
    let mut frames = Vec::new();
    let mut exception = None;
    for l in &lines[start..] {
        let t = l.trim_start();
        if let Some(f) = python_frame(t) {
            frames.push(f);
            continue;
        }
        // The exception line is not indented: `KeyError: 'x'`, `mod.Error: msg`.
        if !l.starts_with(' ') && !l.starts_with('\t') && !t.starts_with("Traceback") {
            if let Some(e) = exception_head(t) {
                exception = Some(e);
            }
        }
    }
    frames.reverse();
    let (exception_type, message) = split(exception);
    Parsed {
        exception_type,
        message,
        frames,
    }
}

fn split(e: Option<(String, Option<String>)>) -> (Option<String>, Option<String>) {
    match e {
        Some((t, m)) => (Some(t), m),
        None => (None, None),
    }
}

// ---------------------------------------------------------------- JVM / Node

/// JVM `at com.shop.Pricing.quote(Pricing.java:217)`; Node.js
/// `at quote (/app/src/pricing.js:217:13)`, `at /app/src/pricing.js:217:13`,
/// `at async Promise.all (index 0)`.
fn at_frame(line: &str) -> Option<Frame> {
    let rest = line.trim_start().strip_prefix("at ")?.trim();
    if let Some(f) = dotnet_frame(rest) {
        return Some(f);
    }
    if let Some((func, loc)) = rest.rsplit_once(" (") {
        // Node.js: `fn (loc)`.
        let loc = loc.strip_suffix(')').unwrap_or(loc);
        let (file, line_no) = split_location(loc);
        let func = func.trim().strip_prefix("async ").unwrap_or(func.trim());
        return Some(frame(&file, line_no, func));
    }
    if let Some((func, loc)) = rest.split_once('(') {
        // JVM: `pkg.Class.method(File.java:12)`, with an optional module prefix
        // (`java.base/java.lang.Thread.run`).
        let loc = loc.strip_suffix(')').unwrap_or(loc);
        let func = func.rsplit_once('/').map_or(func, |(_, f)| f).trim();
        let (file, line_no) = split_location(loc);
        return Some(frame(&file, line_no, func));
    }
    let (file, line_no) = split_location(rest);
    Some(frame(&file, line_no, ""))
}

/// .NET: `Ns.Class.Method(Type arg, …) in /src/Ns/File.cs:line 36`, or
/// without symbols `Ns.Class.Method(Type arg)` (no file). Told apart from
/// JVM frames by the ` in …:line N` suffix or by a parameter list (JVM
/// parentheses hold a file location, never `Type name`).
fn dotnet_frame(rest: &str) -> Option<Frame> {
    let (call, loc) = match rest.rsplit_once(") in ") {
        Some((call, loc)) => (call, Some(loc)),
        None => (rest.strip_suffix(')')?, None),
    };
    let (func, params) = call.split_once('(')?;
    if func.is_empty() || func.contains(' ') {
        return None;
    }
    match loc {
        Some(loc) => {
            let (file, n) = loc.rsplit_once(":line ")?;
            let n = n.trim().parse::<i32>().ok()?;
            Some(frame(file.trim(), Some(n), func))
        }
        // `(Order order)` or `()`: parameters, not a `File.java:12` location.
        None if params.is_empty()
            || (params.contains(' ')
                && !params.contains(':')
                && !["Unknown Source", "Native Method", "Compiled Code"].contains(&params)) =>
        {
            Some(frame("", None, func))
        }
        None => None,
    }
}

fn jvm_or_node(lines: &[&str]) -> Parsed {
    // Blocks: the head exception, then each `Caused by:`; the root cause (last
    // block) is the innermost failure, so blocks are emitted last-first.
    let mut blocks: Vec<(Option<Head>, Vec<Frame>)> = vec![(None, Vec::new())];
    for l in lines {
        let t = l.trim();
        if t.starts_with("at ") {
            if let Some(f) = at_frame(t) {
                if let Some(b) = blocks.last_mut() {
                    b.1.push(f);
                }
            }
            continue;
        }
        if t.starts_with("...") {
            continue;
        }
        let head = t
            .strip_prefix("Caused by:")
            .map(str::trim)
            .map(|c| (true, c))
            .unwrap_or((false, t));
        let text = match head.1.find("Exception in thread \"") {
            Some(0) => head.1.split_once("\" ").map_or("", |x| x.1),
            _ => head.1,
        };
        // Node prints `Uncaught TypeError: …` sometimes.
        let text = text.strip_prefix("Uncaught ").unwrap_or(text);
        if let Some(e) = exception_head(text) {
            if head.0 || blocks.len() == 1 && blocks[0].0.is_none() && blocks[0].1.is_empty() {
                if head.0 {
                    blocks.push((Some(e), Vec::new()));
                } else {
                    blocks[0].0 = Some(e);
                }
            }
        }
    }
    let mut frames = Vec::new();
    let mut exception = None;
    for (e, f) in blocks.into_iter().rev() {
        if exception.is_none() && e.is_some() {
            exception = e;
        }
        frames.extend(f);
    }
    let (exception_type, message) = split(exception);
    Parsed {
        exception_type,
        message,
        frames,
    }
}

/// `path:line[:col]` → (path, line).
fn split_location(loc: &str) -> (String, Option<i32>) {
    let loc = loc.trim();
    let Some((head, last)) = loc.rsplit_once(':') else {
        return (loc.to_owned(), None);
    };
    let Ok(n) = last.parse::<i32>() else {
        return (loc.to_owned(), None);
    };
    if let Some((file, mid)) = head.rsplit_once(':') {
        if let Ok(line) = mid.parse::<i32>() {
            return (file.to_owned(), Some(line));
        }
    }
    (head.to_owned(), Some(n))
}

// ---------------------------------------------------------------- Go

fn go(lines: &[&str]) -> Parsed {
    let mut exception = None;
    let mut frames = Vec::new();
    let mut goroutines = 0;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let t = l.trim();
        if exception.is_none() {
            for prefix in ["panic: ", "fatal error: "] {
                if let Some(msg) = l.strip_prefix(prefix) {
                    let msg = msg.trim_end_matches(" [recovered]").trim();
                    exception = Some((
                        prefix.trim_end_matches(": ").to_owned(),
                        Some(msg.to_owned()),
                    ));
                }
            }
        }
        if t.starts_with("goroutine ") && t.ends_with(':') {
            goroutines += 1;
            if goroutines > 1 {
                break;
            }
            i += 1;
            continue;
        }
        // A function line followed by `\t/path/file.go:42 +0x1d`.
        if let Some(next) = lines.get(i + 1) {
            let n = next.trim();
            if (next.starts_with('\t') || next.starts_with("    "))
                && !t.is_empty()
                && !t.contains(".go:")
                && n.contains(".go:")
            {
                let loc = n.split_whitespace().next().unwrap_or(n);
                let (file, line_no) = split_location(loc);
                let function = t.strip_prefix("created by ").unwrap_or(t);
                let function = function.split(" in goroutine").next().unwrap_or(function);
                let function = match function.rfind('(') {
                    Some(p) if function.ends_with(')') || function.ends_with("...)") => {
                        &function[..p]
                    }
                    _ => function,
                };
                frames.push(frame(&file, line_no, function));
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    let (exception_type, message) = split(exception);
    Parsed {
        exception_type,
        message,
        frames,
    }
}

// ---------------------------------------------------------------- Rust

fn rust(lines: &[&str]) -> Parsed {
    let mut message = None;
    let mut location = None;
    let mut frames = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if let Some(p) = t.find("panicked at ") {
            let rest = &t[p + "panicked at ".len()..];
            if let Some(old) = rest.strip_prefix('\'') {
                // Before Rust 1.73: `panicked at 'msg', src/main.rs:5:5`.
                if let Some((msg, loc)) = old.rsplit_once("', ") {
                    message = Some(msg.to_owned());
                    location = Some(split_location(loc));
                }
            } else {
                // `panicked at src/main.rs:5:5:` then the message on the next line.
                location = Some(split_location(rest.trim_end_matches(':')));
                message = lines.get(i + 1).map(|m| m.trim().to_owned());
            }
        } else if let Some((num, func)) = t.split_once(": ") {
            if !num.is_empty() && num.bytes().all(|c| c.is_ascii_digit()) {
                let at = lines
                    .get(i + 1)
                    .map(|n| n.trim())
                    .and_then(|n| n.strip_prefix("at "));
                let (file, line_no) = at.map(split_location).unwrap_or_default();
                // Strip the hash suffix of legacy symbols (`::h1234abcd`).
                let func = match func.rsplit_once("::h") {
                    Some((f, h)) if h.len() == 16 && h.bytes().all(|c| c.is_ascii_hexdigit()) => f,
                    _ => func,
                };
                frames.push(frame(&file, line_no, func));
                if at.is_some() {
                    i += 1;
                }
            }
        }
        i += 1;
    }
    // Without a backtrace the panic location is the only frame.
    if frames.iter().all(|f| f.file.is_empty()) {
        if let Some((file, line)) = location {
            frames = vec![frame(&file, line, "")];
        }
    } else {
        // Drop std's panic machinery above the user's frame.
        let first_user = frames.iter().position(|f| {
            !f.function.starts_with("std::")
                && !f.function.starts_with("core::")
                && !f.function.starts_with("rust_begin_unwind")
                && !f.function.starts_with("__rust")
        });
        if let Some(k) = first_user {
            frames.drain(..k);
        }
    }
    Parsed {
        exception_type: Some("panic".to_owned()),
        message,
        frames,
    }
}

// ---------------------------------------------------------------- Ruby

/// `/app/lib/x.rb:42:in `quote'` (or `'quote'` since Ruby 3.4), optionally after
/// `from ` or `N: from `; returns the frame and the rest of the line.
fn ruby_frame(line: &str) -> Option<(Frame, &str)> {
    let mut t = line.trim();
    if let Some((n, rest)) = t.split_once(": from ") {
        if n.bytes().all(|c| c.is_ascii_digit()) {
            t = rest;
        }
    }
    let t = t.strip_prefix("from ").unwrap_or(t);
    let p = t.find(":in ")?;
    let (file, line_no) = split_location(&t[..p]);
    line_no?;
    let rest = &t[p + 4..];
    let open = rest.chars().next()?;
    if open != '`' && open != '\'' {
        return None;
    }
    let end = rest[1..].find('\'')? + 1;
    let function = &rest[1..end];
    Some((frame(&file, line_no, function), &rest[end + 1..]))
}

fn ruby(lines: &[&str]) -> Parsed {
    let mut frames = Vec::new();
    let mut exception = None;
    let reversed = lines.iter().any(|l| {
        l.contains("Traceback (most recent call last)")
            || l.trim()
                .split_once(": from ")
                .is_some_and(|(n, _)| n.bytes().all(|c| c.is_ascii_digit()))
    });
    for l in lines {
        if let Some((f, rest)) = ruby_frame(l) {
            frames.push(f);
            // The raising line: `…:in `quote': undefined method (NoMethodError)`.
            if let Some(msg) = rest.strip_prefix(": ") {
                if let Some(open) = msg.rfind(" (") {
                    let ty = msg[open + 2..].trim_end_matches(')');
                    if !ty.is_empty() && !ty.contains(' ') {
                        exception = Some((ty.to_owned(), Some(msg[..open].to_owned())));
                    }
                }
            }
        } else if exception.is_none() {
            // Rails: `NoMethodError (undefined method …):`
            let t = l.trim();
            if let Some((ty, msg)) = t.split_once(" (") {
                if exception_head(ty).is_some() {
                    exception = Some((ty.to_owned(), Some(msg.trim_end_matches("):").to_owned())));
                }
            }
        }
    }
    if reversed {
        frames.reverse();
    }
    let (exception_type, message) = split(exception);
    Parsed {
        exception_type,
        message,
        frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ia() -> InApp {
        InApp {
            prefixes: Vec::new(),
            library_markers: default_library_markers(),
        }
    }

    fn fns(p: &Parsed) -> Vec<(&str, Option<i32>, &str, bool)> {
        p.frames
            .iter()
            .map(|f| (f.file.as_str(), f.line, f.function.as_str(), f.in_app))
            .collect()
    }

    #[test]
    fn python_innermost_first_with_chained_exceptions() {
        let s = "Traceback (most recent call last):\n  File \"/app/db.py\", line 3, in get\n    raise X\nKeyError: 'id'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/flask/app.py\", line 880, in dispatch\n    return f()\n  File \"/app/src/checkout/pricing.py\", line 217, in quote\n    rate = rates[cur]\nmyapp.errors.PricingError: no rate for 'EUR'";
        let p = parse(s, &ia());
        assert_eq!(
            p.exception_type.as_deref(),
            Some("myapp.errors.PricingError")
        );
        assert_eq!(p.message.as_deref(), Some("no rate for 'EUR'"));
        assert_eq!(
            fns(&p),
            vec![
                ("/app/src/checkout/pricing.py", Some(217), "quote", true),
                (
                    "/usr/lib/python3.11/site-packages/flask/app.py",
                    Some(880),
                    "dispatch",
                    false
                ),
            ]
        );
    }

    #[test]
    fn jvm_root_cause_first() {
        let s = "Exception in thread \"main\" java.lang.RuntimeException: wrapped\n\tat com.shop.Api.handle(Api.java:10)\n\tat java.base/java.lang.Thread.run(Thread.java:833)\nCaused by: java.sql.SQLException: connection lost\n\tat com.shop.db.Pool.get(Pool.java:42)\n\tat com.shop.Api.handle(Api.java:8)\n\t... 1 more";
        let p = parse(s, &ia());
        assert_eq!(p.exception_type.as_deref(), Some("java.sql.SQLException"));
        assert_eq!(
            fns(&p),
            vec![
                ("Pool.java", Some(42), "com.shop.db.Pool.get", true),
                ("Api.java", Some(8), "com.shop.Api.handle", true),
                ("Api.java", Some(10), "com.shop.Api.handle", true),
                ("Thread.java", Some(833), "java.lang.Thread.run", false),
            ]
        );
    }

    #[test]
    fn node_frames() {
        let s = "TypeError: Cannot read properties of undefined (reading 'id')\n    at quote (/app/src/pricing.js:217:13)\n    at async Router.handle (/app/node_modules/express/lib/router.js:5:1)\n    at /app/src/index.js:9:3\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)";
        let p = parse(s, &ia());
        assert_eq!(p.exception_type.as_deref(), Some("TypeError"));
        assert_eq!(
            fns(&p),
            vec![
                ("/app/src/pricing.js", Some(217), "quote", true),
                (
                    "/app/node_modules/express/lib/router.js",
                    Some(5),
                    "Router.handle",
                    false
                ),
                ("/app/src/index.js", Some(9), "", true),
                (
                    "node:internal/process/task_queues",
                    Some(95),
                    "process.processTicksAndRejections",
                    false
                ),
            ]
        );
    }

    #[test]
    fn go_panic_and_goroutine_dump() {
        let s = "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 7 [running]:\nmain.quote(0xc000012345, 0x3)\n\t/app/pricing.go:42 +0x1d\nmain.(*Server).handle(...)\n\t/app/server.go:10\nnet/http.HandlerFunc.ServeHTTP(0x0?, {0x1, 0x2})\n\t/usr/local/go/src/net/http/server.go:2136 +0x29\ncreated by net/http.(*Server).Serve in goroutine 1\n\t/usr/local/go/src/net/http/server.go:3285 +0x4b4\n\ngoroutine 1 [IO wait]:\nmain.other()\n\t/app/other.go:1 +0x1";
        let p = parse(s, &ia());
        assert_eq!(p.exception_type.as_deref(), Some("panic"));
        assert_eq!(
            p.message.as_deref(),
            Some("runtime error: index out of range [5] with length 3")
        );
        assert_eq!(
            fns(&p),
            vec![
                ("/app/pricing.go", Some(42), "main.quote", true),
                ("/app/server.go", Some(10), "main.(*Server).handle", true),
                (
                    "/usr/local/go/src/net/http/server.go",
                    Some(2136),
                    "net/http.HandlerFunc.ServeHTTP",
                    false
                ),
                (
                    "/usr/local/go/src/net/http/server.go",
                    Some(3285),
                    "net/http.(*Server).Serve",
                    false
                ),
            ]
        );
    }

    #[test]
    fn rust_panics_with_and_without_backtrace() {
        let s = "thread 'main' panicked at src/pricing.rs:42:9:\ncalled `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/abc/library/std/src/panicking.rs:645:5\n   1: core::panicking::panic\n             at /rustc/abc/library/core/src/panicking.rs:144:5\n   2: shop::pricing::quote\n             at ./src/pricing.rs:42:9\n   3: shop::main\n             at ./src/main.rs:7:5";
        let p = parse(s, &ia());
        assert_eq!(p.exception_type.as_deref(), Some("panic"));
        assert_eq!(
            p.message.as_deref(),
            Some("called `Option::unwrap()` on a `None` value")
        );
        assert_eq!(
            fns(&p),
            vec![
                ("./src/pricing.rs", Some(42), "shop::pricing::quote", true),
                ("./src/main.rs", Some(7), "shop::main", true),
            ]
        );
        let old = parse(
            "thread 'main' panicked at 'boom', src/main.rs:5:5\nnote: run with `RUST_BACKTRACE=1`",
            &ia(),
        );
        assert_eq!(old.message.as_deref(), Some("boom"));
        assert_eq!(fns(&old), vec![("src/main.rs", Some(5), "", true)]);
    }

    #[test]
    fn ruby_both_orders() {
        let s = "/app/lib/pricing.rb:42:in `quote': undefined method `rate' for nil:NilClass (NoMethodError)\n\tfrom /app/app/controllers/carts_controller.rb:10:in `block in create'\n\tfrom /usr/lib/ruby/gems/3.2.0/gems/actionpack/lib/x.rb:5:in `call'";
        let p = parse(s, &ia());
        assert_eq!(p.exception_type.as_deref(), Some("NoMethodError"));
        assert_eq!(
            fns(&p),
            vec![
                ("/app/lib/pricing.rb", Some(42), "quote", true),
                (
                    "/app/app/controllers/carts_controller.rb",
                    Some(10),
                    "block in create",
                    true
                ),
                (
                    "/usr/lib/ruby/gems/3.2.0/gems/actionpack/lib/x.rb",
                    Some(5),
                    "call",
                    false
                ),
            ]
        );
        let r = "Traceback (most recent call last):\n\t1: from /app/main.rb:3:in '<main>'\n/app/lib/pricing.rb:42:in 'Pricing#quote': boom (RuntimeError)";
        let p = parse(r, &ia());
        assert_eq!(p.exception_type.as_deref(), Some("RuntimeError"));
        assert_eq!(p.frames[0].function, "Pricing#quote");
        assert_eq!(p.frames[1].function, "<main>");
    }

    #[test]
    fn prefixes_decide_in_app_when_set() {
        let ia = InApp {
            prefixes: vec!["/app/src/".to_owned(), "com.shop.".to_owned()],
            library_markers: default_library_markers(),
        };
        assert!(ia.decide("/app/src/x.py", "f"));
        assert!(!ia.decide("/app/vendor/x.py", "f"));
        assert!(ia.decide("Pricing.java", "com.shop.Pricing.quote"));
    }
}
