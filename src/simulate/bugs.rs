//! What a deploy changes, the `git diff` it makes, and, for culprits, the
//! errors the change causes and how well their stacks point back at it.
//!
//! Culprit kinds ([`BugKind`]): the changed line raises (its frame sits at a
//! random depth, sometimes 5–15 frames in, under library code); the changed
//! function raises 5–40 lines away from the change; a wrong value is computed
//! on the changed line and rejected elsewhere (the stack shows another file's
//! assertion and callers); a config or dependency change (no frame can point
//! at it). Clean deploys change unrelated code, a function holding an upstream
//! call site, tests, docs, CI, harmless config, or bump a dependency.

use super::lang::{self, Exc, Frame, Func, Lang, SourceFile};
use super::rng::Rng;
use super::topology::{Code, Service, Site, Upstream};

/// How a culprit's bug shows in its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BugKind {
    ChangedLine,
    SameFunction,
    WrongValue,
    Config,
    Dependency,
}

impl BugKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            BugKind::ChangedLine => "changed_line",
            BugKind::SameFunction => "same_function",
            BugKind::WrongValue => "wrong_value",
            BugKind::Config => "config",
            BugKind::Dependency => "dependency",
        }
    }
}

/// What the deploy does to error rates of its revision.
#[derive(Debug, Clone)]
pub(super) enum Effect {
    /// Nothing.
    None,
    /// A new error: per-request `rate`, from `onset_ms` after the deploy.
    New {
        rate: f64,
        onset_ms: i64,
        message: String,
        stack: String,
        /// Share of lines logged without the stack.
        stackless: f64,
    },
    /// A background signature multiplied.
    SigSpike { sig: usize, factor: f64 },
    /// An upstream call failing more often (a timeout or retry setting).
    CallSpike { call: usize, extra_rate: f64 },
}

/// A planned deploy change.
#[derive(Debug, Clone)]
pub(super) struct Change {
    pub(super) diff: String,
    /// Kinds of files changed (`code`, `config`, `dependency`, `tests`, `docs`, `ci`).
    pub(super) kinds: Vec<&'static str>,
    pub(super) effect: Effect,
    /// For culprits.
    pub(super) culprit: Option<Culprit>,
}

/// The truth about a culprit change.
#[derive(Debug, Clone)]
pub(super) struct Culprit {
    pub(super) kind: BugKind,
    pub(super) file: String,
    pub(super) line: u32,
    pub(super) function: String,
    pub(super) linkability: &'static str,
    pub(super) error: String,
    /// `culprit_new` or `culprit_spike`.
    pub(super) label: &'static str,
}

/// One file section of a `git diff` with one hunk: `remove` lines from `at`
/// (1-based, old numbering) replaced by `insert`, three lines of context, the
/// hunk header's function context found as git's default rule finds it.
pub(super) fn hunk(
    path: &str,
    lines: &[String],
    at: u32,
    remove: usize,
    insert: &[String],
    rng: &mut Rng,
) -> String {
    let i = at as usize - 1;
    let pre_start = i.saturating_sub(3);
    let post_end = (i + remove + 3).min(lines.len());
    let old_len = post_end - pre_start;
    let new_len = old_len - remove + insert.len();
    let range = |start: usize, len: usize| {
        if len == 1 {
            format!("{start}")
        } else if len == 0 {
            format!("{},0", start.saturating_sub(1))
        } else {
            format!("{start},{len}")
        }
    };
    let func = lang::git_funcname(lines, pre_start as u32 + 1);
    let mut s = format!(
        "diff --git a/{path} b/{path}\nindex {}..{} 100644\n--- a/{path}\n+++ b/{path}\n@@ -{} +{} @@{}{func}\n",
        rng.hex(7),
        rng.hex(7),
        range(pre_start + 1, old_len),
        range(pre_start + 1, new_len),
        if func.is_empty() { "" } else { " " }
    );
    for l in &lines[pre_start..i] {
        s.push(' ');
        s.push_str(l);
        s.push('\n');
    }
    for l in &lines[i..i + remove] {
        s.push('-');
        s.push_str(l);
        s.push('\n');
    }
    for l in insert {
        s.push('+');
        s.push_str(l);
        s.push('\n');
    }
    for l in &lines[i + remove..post_end] {
        s.push(' ');
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// A new file, as `git diff` shows it.
fn new_file(path: &str, lines: &[String], rng: &mut Rng) -> String {
    let mut s = format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..{}\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n",
        rng.hex(7),
        lines.len()
    );
    for l in lines {
        s.push('+');
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// A code edit inside function `func` of file `fi`: mutate a body line, or
/// insert a statement before it (or both). Applies it to `code`, returns the
/// diff section and the new-numbering line of the (first) changed line.
fn code_edit(code: &mut Code, fi: usize, line: u32, rng: &mut Rng) -> (String, u32) {
    code_edit_as(code, fi, line, false, rng)
}

/// [`code_edit`]; `in_place`: only rewrite the line (the statement that
/// raises is the changed one, and nothing moves).
fn code_edit_as(
    code: &mut Code,
    fi: usize,
    line: u32,
    in_place: bool,
    rng: &mut Rng,
) -> (String, u32) {
    let f = &code.files[fi];
    let old = f.line(line).to_owned();
    let lang = f.lang;
    let (remove, insert) = match if in_place { 4 } else { rng.below(5) } {
        0 => (0, vec![lang::new_statement(&old, lang, rng)]),
        1 => (
            1,
            vec![
                lang::new_statement(&old, lang, rng),
                lang::mutate(&old, lang, rng),
            ],
        ),
        _ => (1, vec![lang::mutate(&old, lang, rng)]),
    };
    let diff = hunk(&f.path, &f.lines, line, remove, &insert, rng);
    code.splice(fi, line, remove, &insert);
    (diff, line)
}

/// A random body line of function `gi` of `f`.
fn body_line(f: &SourceFile, gi: usize, rng: &mut Rng) -> u32 {
    let g = &f.funcs[gi];
    let first = g.def_line + if f.lang == Lang::CSharp { 2 } else { 1 };
    first + rng.below((g.last_line - first + 1).max(1) as usize) as u32
}

/// A function with a body of at least `min` lines, in a file not in `avoid`.
fn pick_func(code: &Code, min: u32, avoid: &[usize], rng: &mut Rng) -> Option<(usize, usize)> {
    let mut all = Vec::new();
    for (fi, f) in code.files.iter().enumerate() {
        if avoid.contains(&fi) {
            continue;
        }
        for (gi, g) in f.funcs.iter().enumerate() {
            if g.last_line - g.def_line >= min {
                all.push((fi, gi));
            }
        }
    }
    (!all.is_empty()).then(|| *rng.pick(&all))
}

/// The file holding the request handler for an error raised in `raised_in`.
pub(super) fn handler_file(code: &Code, raised_in: usize) -> Option<usize> {
    (0..code.files.len()).find(|&fi| fi != raised_in)
}

/// The request handler frame(s) outside the bug: the first function of a
/// file not in `avoid` (or none).
pub(super) fn handler_frames(code: &Code, avoid: &[usize], rng: &mut Rng) -> Vec<Frame> {
    (0..code.files.len())
        .find(|fi| !avoid.contains(fi))
        .map(|fi| {
            let f = &code.files[fi];
            let g = &f.funcs[0];
            vec![lang::app_frame(f, &g.name, g.def_line + 1, rng)]
        })
        .unwrap_or_default()
}

/// Assembles a stack innermost first: `deep` library frames, the raising
/// app frame, `middle` frames, the handler and framework frames; maybe
/// wrapped (JVM `Caused by:`, a .NET inner exception, a Python chain).
fn stack(
    lang: Lang,
    exc: &Exc,
    deep: usize,
    raising: Frame,
    middle: Vec<Frame>,
    outer: Vec<Frame>,
    rng: &mut Rng,
) -> (String, String) {
    let mut frames = lang::lib_frames(lang, deep, true, rng);
    frames.push(raising);
    frames.extend(middle);
    frames.extend(outer);
    frames.extend(lang::lib_frames(lang, 2 + rng.below(4), false, rng));
    let wrap = match lang {
        Lang::Java | Lang::Kotlin => rng.chance(0.4),
        Lang::CSharp | Lang::Python | Lang::Node | Lang::TypeScript => rng.chance(0.2),
        _ => false,
    };
    if wrap {
        let outer_exc = match lang {
            Lang::Java | Lang::Kotlin => Exc {
                ty: "jakarta.servlet.ServletException".into(),
                msg: format!("Request processing failed: {}: {}", exc.ty, exc.msg),
            },
            Lang::CSharp => Exc {
                ty: "System.AggregateException".into(),
                msg: format!("One or more errors occurred. ({})", exc.msg),
            },
            Lang::Python => Exc {
                ty: "app.errors.InternalError".into(),
                msg: "request failed".into(),
            },
            _ => Exc {
                ty: "Error".into(),
                msg: "request failed".into(),
            },
        };
        let outer_frames = lang::lib_frames(lang, 3, false, rng);
        let s = match lang {
            // A JVM trace prints the wrapper's frames first, then the cause.
            Lang::Java | Lang::Kotlin | Lang::Node | Lang::TypeScript => {
                lang::render_stack(lang, &outer_exc, &outer_frames, Some((exc, &frames)))
            }
            _ => lang::render_stack(
                lang,
                &outer_exc,
                &frames,
                Some((exc, &frames[..frames.len().min(2)])),
            ),
        };
        return (lang::message(lang, &outer_exc), s);
    }
    (
        lang::message(lang, exc),
        lang::render_stack(lang, exc, &frames, None),
    )
}

fn depth(rng: &mut Rng) -> usize {
    let u = rng.uniform();
    if u < 0.55 {
        0
    } else if u < 0.7 {
        1 + rng.below(3)
    } else {
        5 + rng.below(11)
    }
}

/// An identifier from a code line (a name the bug's message can mention).
fn ident_of(line: &str) -> String {
    line.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.len() > 3 && w.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .find(|w| {
            ![
                "self", "return", "const", "this", "null", "none", "true", "false", "logger",
                "debug", "cache", "throw", "raise", "missing", "revisit", "todo",
            ]
            .contains(w)
        })
        .unwrap_or("amount")
        .to_owned()
}

/// Culprit: a code change whose errors come from kinds (a)–(c). `spike`:
/// multiply background signature `sig` instead of raising a new error.
pub(super) fn code_culprit(
    svc: &Service,
    code: &mut Code,
    kind: BugKind,
    spike: Option<usize>,
    rng: &mut Rng,
) -> Option<Change> {
    let (fi, change_at, raise) = locate(svc, code, kind, spike, rng)?;
    let function = code.files[fi]
        .func_at(change_at)
        .map_or_else(String::new, |gi| code.files[fi].funcs[gi].name.clone());
    let old_line = code.files[fi].line(change_at).to_owned();
    // Track the raise site through the edit.
    let raise_idx = raise.map(|s| {
        code.sites.push(s);
        code.sites.len() - 1
    });
    // A spike raised on the changed line: that line itself is rewritten.
    let in_place = spike.is_some() && kind == BugKind::ChangedLine;
    let (diff, line) = code_edit_as(code, fi, change_at, in_place, rng);
    let raise = raise_idx.map(|i| code.sites.remove(i));
    let path = code.files[fi].path.clone();
    // The culprit's changed line, new numbering.
    let changed_text = code.files[fi].line(line).to_owned();
    let mut culprit = Culprit {
        kind,
        file: path,
        line,
        function,
        linkability: "line",
        error: String::new(),
        label: "culprit_new",
    };
    let effect = if let Some(sig) = spike {
        spike_effect(svc, code, sig, fi, &mut culprit, rng)
    } else {
        let ident = ident_of(if changed_text.trim().is_empty() {
            &old_line
        } else {
            &changed_text
        });
        let raise = raise.unwrap_or(Site { file: fi, line });
        new_error_effect(svc, code, (fi, raise), &ident, &mut culprit, rng)
    };
    Some(Change {
        diff,
        kinds: vec!["code"],
        effect,
        culprit: Some(culprit),
    })
}

/// Where a code bug of `kind` goes: (file, line to change, where its error
/// is raised when that is elsewhere); `None` when the code has no room.
fn locate(
    svc: &Service,
    code: &Code,
    kind: BugKind,
    spike: Option<usize>,
    rng: &mut Rng,
) -> Option<(usize, u32, Option<Site>)> {
    let body_from = |g: &Func| g.def_line + if svc.lang == Lang::CSharp { 2 } else { 1 };
    Some(match (kind, spike) {
        (BugKind::ChangedLine, Some(sig)) => {
            let s = code.sites[svc.sigs[sig].site];
            (s.file, s.line, None)
        }
        (BugKind::SameFunction, Some(sig)) => {
            let s = code.sites[svc.sigs[sig].site];
            let f = &code.files[s.file];
            let g = &f.funcs[f.func_at(s.line)?];
            let cands: Vec<u32> = (body_from(g)..=g.last_line)
                .filter(|l| (5..=40).contains(&l.abs_diff(s.line)))
                .collect();
            if cands.is_empty() {
                return None;
            }
            (s.file, *rng.pick(&cands), None)
        }
        (BugKind::WrongValue, Some(sig)) => {
            let s = code.sites[svc.sigs[sig].site];
            let (fi, gi) = pick_func(code, 4, &[s.file], rng)?;
            (fi, body_line(&code.files[fi], gi, rng), None)
        }
        (BugKind::ChangedLine, None) => {
            let (fi, gi) = pick_func(code, 4, &[], rng)?;
            let l = body_line(&code.files[fi], gi, rng);
            (fi, l, None)
        }
        (BugKind::SameFunction, None) => {
            let (fi, gi) = pick_func(code, 14, &[], rng)?;
            let f = &code.files[fi];
            let g = &f.funcs[gi];
            let l = body_line(f, gi, rng);
            let cands: Vec<u32> = (body_from(g)..=g.last_line)
                .filter(|r| (5..=40).contains(&r.abs_diff(l)))
                .collect();
            if cands.is_empty() {
                return None;
            }
            let r = *rng.pick(&cands);
            (fi, l, Some(Site { file: fi, line: r }))
        }
        (BugKind::WrongValue, None) => {
            let (fi, gi) = pick_func(code, 4, &[], rng)?;
            let l = body_line(&code.files[fi], gi, rng);
            let (bi, bg) = pick_func(code, 3, &[fi], rng)?;
            let r = body_line(&code.files[bi], bg, rng);
            (fi, l, Some(Site { file: bi, line: r }))
        }
        _ => return None,
    })
}

/// A spike of background signature `sig`, and how well its stack can link
/// the change in file `fi`.
fn spike_effect(
    svc: &Service,
    code: &Code,
    sig: usize,
    fi: usize,
    culprit: &mut Culprit,
    rng: &mut Rng,
) -> Effect {
    let s = &svc.sigs[sig];
    culprit.label = "culprit_spike";
    culprit.error = format!("{}: {}", s.exc_ty, s.template);
    culprit.linkability = match culprit.kind {
        BugKind::ChangedLine => "line",
        BugKind::SameFunction => "function",
        // The signature's stack: its site, then the handler (the first
        // function of the first other file).
        _ => match handler_file(code, code.sites[s.site].file) {
            Some(h) if h == fi => {
                if code.files[h].funcs[0].name == culprit.function {
                    "function"
                } else {
                    "file"
                }
            }
            _ => "none",
        },
    };
    if !s.stacked {
        culprit.linkability = "none";
    }
    let per_min = s.rate * svc.base_rpm;
    Effect::SigSpike {
        sig,
        factor: rng
            .range(3.0, 10.0)
            .max(1.0 + 1.0 / per_min.max(1e-9))
            .min(10.0),
    }
}

/// A new error raised at `raise` by the change in file `fi`, naming
/// `ident`: on the changed line, in the changed function, or (a wrong
/// value) in another file with the changed file's frames maybe in between.
fn new_error_effect(
    svc: &Service,
    code: &Code,
    (fi, raise): (usize, Site),
    ident: &str,
    culprit: &mut Culprit,
    rng: &mut Rng,
) -> Effect {
    let lang = svc.lang;
    let (message, stack) = if culprit.kind == BugKind::WrongValue {
        let r = raise;
        let exc = lang::wrong_value_exception(lang, ident, rng);
        let bf = &code.files[r.file];
        let raising = lang::app_frame(bf, &code.func_name(r), r.line, rng);
        // Half the time a caller in the changed file (another function) shows.
        let mut middle = Vec::new();
        let f = &code.files[fi];
        let other: Vec<usize> = (0..f.funcs.len())
            .filter(|&g| f.funcs[g].name != culprit.function)
            .collect();
        if rng.chance(0.5) && !other.is_empty() {
            let g = &f.funcs[*rng.pick(&other)];
            middle.push(lang::app_frame(f, &g.name, g.def_line + 1, rng));
            culprit.linkability = "file";
        } else {
            culprit.linkability = "none";
        }
        let outer = handler_frames(code, &[fi, r.file], rng);
        let depth = if rng.chance(0.3) { 1 } else { 0 };
        stack(lang, &exc, depth, raising, middle, outer, rng)
    } else {
        if culprit.kind == BugKind::SameFunction {
            culprit.linkability = "function";
        }
        let exc = lang::bug_exception(lang, ident, rng);
        let raising = lang::app_frame(&code.files[fi], &culprit.function, raise.line, rng);
        let outer = handler_frames(code, &[fi], rng);
        stack(lang, &exc, depth(rng), raising, Vec::new(), outer, rng)
    };
    raised(svc, culprit, message, stack, rng)
}

/// A culprit's new error `message` (with `stack`): its rate, onset and the
/// share of lines shipped without the stack.
fn raised(
    svc: &Service,
    culprit: &mut Culprit,
    message: String,
    stack: String,
    rng: &mut Rng,
) -> Effect {
    culprit.error = message.clone();
    Effect::New {
        rate: rng.log_range(0.3, 10.0) / svc.base_rpm,
        onset_ms: onset(rng),
        message,
        stack,
        stackless: rng.range(0.15, 0.45),
    }
}

fn onset(rng: &mut Rng) -> i64 {
    if rng.chance(0.75) {
        0
    } else {
        rng.int(3, 40) * 60_000
    }
}

/// Culprit: a config change (a timeout or retry count that makes an
/// upstream call fail, a pool too small, a feature flag turning on a broken
/// path) or a dependency bump; no frame names the changed file.
pub(super) fn config_culprit(
    svc: &Service,
    code: &Code,
    ups: &[Upstream],
    kind: BugKind,
    rng: &mut Rng,
) -> Change {
    let lang = svc.lang;
    let (path, lines) = if kind == BugKind::Config {
        (&svc.config.0, &svc.config.1)
    } else {
        (&svc.manifest.0, &svc.manifest.1)
    };
    let mut culprit = Culprit {
        kind,
        file: path.clone(),
        line: 0,
        function: String::new(),
        linkability: "none",
        error: String::new(),
        label: "culprit_new",
    };
    let site = code.sites[rng.below(code.sites.len())];
    let raising = lang::app_frame(
        &code.files[site.file],
        &code.func_name(site),
        site.line,
        rng,
    );
    let outer = handler_frames(code, &[site.file], rng);
    let frames = (raising, outer);
    if kind == BugKind::Dependency {
        // A version line.
        let cands: Vec<usize> = (0..lines.len())
            .filter(|&i| {
                lines[i].chars().any(|c| c.is_ascii_digit()) && !lines[i].contains("go 1.")
            })
            .collect();
        let i = *rng.pick(&cands);
        let bumped = bump(&lines[i]);
        culprit.line = i as u32 + 1;
        culprit.function = lines[i].trim().to_owned();
        let diff = hunk(path, lines, i as u32 + 1, 1, &[bumped], rng);
        let exc = lang::bug_exception(lang, "payload", rng);
        let effect = config_new_error(svc, exc, &mut culprit, frames, rng);
        return Change {
            diff,
            kinds: vec!["dependency"],
            effect,
            culprit: Some(culprit),
        };
    }
    // Config: a call's timeout / retries, or the pool size, or a flag.
    let (key, effect_kind) = config_key(svc, rng);
    let mut cands: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(key))
        .collect();
    if cands.is_empty() {
        cands.push(lines.len() / 2);
    }
    // For a call's setting, the n-th match is the n-th call's.
    let ci = rng.below(cands.len());
    let i = cands[ci];
    let changed = shrink(&lines[i]);
    culprit.line = i as u32 + 1;
    culprit.function = lines[i]
        .trim()
        .split([':', '"'])
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .trim()
        .to_owned();
    let diff = hunk(path, lines, i as u32 + 1, 1, &[changed], rng);
    let effect = match effect_kind {
        ConfigEffect::Calls => {
            let call = ci.min(svc.calls.len() - 1);
            let c = &svc.calls[call];
            if c.base_rate > 0.0 {
                culprit.label = "culprit_spike";
            }
            let (ty, msg) = super::topology::upstream_error(c.style, &ups[c.upstream], lang, rng);
            culprit.error = if ty.is_empty() {
                msg
            } else {
                format!("{ty}: {msg}")
            };
            Effect::CallSpike {
                call,
                extra_rate: rng.log_range(0.005, 0.1),
            }
        }
        ConfigEffect::Pool => {
            config_new_error(svc, pool_exhausted(lang), &mut culprit, frames, rng)
        }
        ConfigEffect::Flag => {
            let exc = lang::bug_exception(lang, "checkout_v2", rng);
            config_new_error(svc, exc, &mut culprit, frames, rng)
        }
    };
    Change {
        diff,
        kinds: vec!["config"],
        effect,
        culprit: Some(culprit),
    }
}

/// What a bad config setting breaks.
#[derive(Debug, Clone, Copy)]
enum ConfigEffect {
    /// A call's timeout or retries: that call fails more.
    Calls,
    /// The connection pool: acquiring a connection times out.
    Pool,
    /// A feature flag: the path it turns on raises a new error.
    Flag,
}

/// The setting a config culprit changes (a substring of its key in the
/// service's config file) and what that breaks.
fn config_key(svc: &Service, rng: &mut Rng) -> (&'static str, ConfigEffect) {
    let (key, effect) = match rng.below(3) {
        0 if !svc.calls.is_empty() => (
            if rng.chance(0.5) { "imeout" } else { "etries" },
            ConfigEffect::Calls,
        ),
        1 => ("ool", ConfigEffect::Pool),
        _ => ("new_checkout", ConfigEffect::Flag),
    };
    if svc.lang != Lang::CSharp {
        return (key, effect);
    }
    let key = match key {
        "imeout" => "TimeoutMs",
        "etries" => "Retries",
        "ool" => "MaxPoolSize",
        _ => "NewCheckout",
    };
    (key, effect)
}

/// The new error a config or dependency culprit raises at the first of
/// `frames` (raising, outer).
fn config_new_error(
    svc: &Service,
    exc: Exc,
    culprit: &mut Culprit,
    (raising, outer): (Frame, Vec<Frame>),
    rng: &mut Rng,
) -> Effect {
    let depth = 1 + rng.below(4);
    let (message, stack) = stack(svc.lang, &exc, depth, raising, Vec::new(), outer, rng);
    raised(svc, culprit, message, stack, rng)
}

/// The error each runtime's connection pool raises when it runs dry.
fn pool_exhausted(lang: Lang) -> Exc {
    let (ty, msg) = match lang {
        Lang::Python => ("sqlalchemy.exc.TimeoutError", "QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)"),
        Lang::Java | Lang::Kotlin => ("java.sql.SQLTransientConnectionException", "HikariPool-1 - Connection is not available, request timed out after 30000ms."),
        Lang::Go => ("", "failed to acquire connection: context deadline exceeded (pgxpool)"),
        Lang::Node | Lang::TypeScript => ("Error", "timeout exceeded when trying to connect"),
        Lang::Ruby => ("ActiveRecord::ConnectionTimeoutError", "could not obtain a connection from the pool within 5.000 seconds (waited 5.001 seconds); all pooled connections were in use"),
        Lang::CSharp => ("System.InvalidOperationException", "Timeout expired.  The timeout period elapsed prior to obtaining a connection from the pool."),
    };
    Exc {
        ty: ty.into(),
        msg: msg.into(),
    }
}

/// A setting made too small (a timeout, retries, a pool) or a flag turned on.
fn shrink(line: &str) -> String {
    if line.contains("false") {
        return line.replace("false", "true");
    }
    let b = line.as_bytes();
    let Some(end) = b.iter().rposition(u8::is_ascii_digit) else {
        return format!("{line}0");
    };
    let start = b[..end]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let n: u64 = line[start..=end].parse().unwrap_or(0);
    let m = if n >= 10 { n / 10 } else { 0 };
    format!("{}{m}{}", &line[..start], &line[end + 1..])
}

fn bump(line: &str) -> String {
    // The last number of the line, plus one.
    let b = line.as_bytes();
    let Some(end) = b.iter().rposition(u8::is_ascii_digit) else {
        return format!("{line}1");
    };
    let start = b[..end]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let n: u64 = line[start..=end].parse().unwrap_or(0);
    format!("{}{}{}", &line[..start], n + 1, &line[end + 1..])
}

/// Unrelated noise a deploy carries besides its main change.
pub(super) fn noise(
    svc: &Service,
    code: &mut Code,
    avoid_file: Option<usize>,
    rng: &mut Rng,
) -> (String, Vec<&'static str>) {
    let mut diff = String::new();
    let mut kinds = Vec::new();
    if rng.chance(0.4) {
        let avoid: Vec<usize> = avoid_file.into_iter().collect();
        if let Some((fi, gi)) = pick_func(code, 3, &avoid, rng) {
            let l = body_line(&code.files[fi], gi, rng);
            diff.push_str(&code_edit(code, fi, l, rng).0);
            kinds.push("code");
        }
    }
    if rng.chance(0.35) {
        diff.push_str(&test_diff(svc, code, rng));
        kinds.push("tests");
    }
    if rng.chance(0.1) {
        diff.push_str(&docs_diff(rng));
        kinds.push("docs");
    }
    (diff, kinds)
}

fn test_diff(svc: &Service, code: &Code, rng: &mut Rng) -> String {
    let f = &code.files[rng.below(code.files.len())];
    let g = &f.funcs[rng.below(f.funcs.len())].name;
    let (path, lines): (String, Vec<String>) = match svc.lang {
        Lang::Python => (
            format!("tests/test_{}.py", g),
            vec![
                format!("def test_{g}_handles_empty_order():"),
                format!("    assert {g}(Order()) is not None"),
            ],
        ),
        Lang::Java | Lang::Kotlin => {
            let ext = if svc.lang == Lang::Java { "java" } else { "kt" };
            let cls = f.class.clone().unwrap_or_else(|| "Main".into());
            (
                format!("src/test/{}/{}Test.{ext}", if ext == "java" { "java" } else { "kotlin" }, cls),
                vec![format!("class {cls}Test {{"), "    @Test".into(), format!("    void {g}HandlesEmptyOrder() {{ assertNotNull(new {cls}().{g}(null)); }}"), "}".into()],
            )
        }
        Lang::Go => (
            f.path.replace(".go", "_test.go"),
            vec![
                format!("func Test{g}(t *testing.T) {{"),
                "\tt.Parallel()".into(),
                "}".into(),
            ],
        ),
        Lang::Node | Lang::TypeScript => (
            f.path
                .replace("src/", "test/")
                .replace(".ts", ".test.ts")
                .replace(".js", ".test.js"),
            vec![
                format!("test('{g} handles an empty order', async () => {{"),
                format!("  expect(await {g}({{}})).toBeDefined();"),
                "});".into(),
            ],
        ),
        Lang::Ruby => (
            f.path.replace("app/", "spec/").replace(".rb", "_spec.rb"),
            vec![
                format!("RSpec.describe '{g}' do"),
                "  it 'handles an empty order' do".into(),
                "    expect(subject).to be_truthy".into(),
                "  end".into(),
                "end".into(),
            ],
        ),
        Lang::CSharp => (
            f.path.replace("src/", "tests/").replace(".cs", "Tests.cs"),
            vec![
                "[Fact]".into(),
                format!(
                    "public void {g}_HandlesEmptyOrder() => Assert.NotNull(_sut.{g}(new Order()));"
                ),
            ],
        ),
    };
    new_file(&path, &lines, rng)
}

fn docs_diff(rng: &mut Rng) -> String {
    let lines: Vec<String> = [
        "# Service",
        "",
        "## Running",
        "",
        "make run",
        "",
        "## Configuration",
        "",
        "See config/production.yaml.",
        "",
        "## On call",
        "",
        "Page #team-oncall.",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let at = 5 + rng.below(6) as u32;
    hunk(
        "README.md",
        &lines,
        at,
        0,
        &["Set `LOG_LEVEL=debug` for verbose logs.".to_owned()],
        rng,
    )
}

fn ci_diff(rng: &mut Rng) -> String {
    let lines: Vec<String> = [
        "name: ci",
        "on: [push, pull_request]",
        "jobs:",
        "  test:",
        "    runs-on: ubuntu-latest",
        "    steps:",
        "      - uses: actions/checkout@v4",
        "      - run: make test",
        "      - run: make lint",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    hunk(
        ".github/workflows/ci.yml",
        &lines,
        7,
        1,
        &["      - uses: actions/checkout@v4.1.1".to_owned()],
        rng,
    )
}

/// A clean change (no effect on errors). `near_call`: edit the function
/// holding an upstream call site (its outage errors' frames then point into
/// the diff).
pub(super) fn clean_change(svc: &Service, code: &mut Code, rng: &mut Rng) -> Change {
    let u = rng.uniform();
    let (mut diff, mut kinds) = (String::new(), Vec::new());
    if u < 0.35 {
        for _ in 0..1 + rng.below(3) {
            if let Some((fi, gi)) = pick_func(code, 3, &[], rng) {
                let l = body_line(&code.files[fi], gi, rng);
                diff.push_str(&code_edit(code, fi, l, rng).0);
            }
        }
        kinds.push("code");
    } else if u < 0.47 && !svc.calls.is_empty() {
        let site = code.sites[svc.calls[rng.below(svc.calls.len())].site];
        let f = &code.files[site.file];
        let gi = f.func_at(site.line).unwrap_or(0);
        // Near the call, often within a few lines of it.
        let g = &f.funcs[gi];
        let lo = g.def_line + if svc.lang == Lang::CSharp { 2 } else { 1 };
        let l = (i64::from(site.line) + rng.int(-6, 6)).clamp(i64::from(lo), i64::from(g.last_line))
            as u32;
        diff.push_str(&code_edit(code, site.file, l, rng).0);
        kinds.push("code");
    } else if u < 0.6 {
        diff.push_str(&test_diff(svc, code, rng));
        kinds.push("tests");
    } else if u < 0.7 {
        diff.push_str(&docs_diff(rng));
        kinds.push("docs");
    } else if u < 0.78 {
        diff.push_str(&ci_diff(rng));
        kinds.push("ci");
    } else if u < 0.9 {
        // Harmless config: a log level, a cache TTL, a worker count.
        let lines = &svc.config.1;
        let cands: Vec<usize> = (0..lines.len())
            .filter(|&i| {
                lines[i].contains("workers")
                    || lines[i].contains("ttl")
                    || lines[i].contains("port: 8080")
                    || lines[i].contains("Flags")
            })
            .collect();
        let i = cands.first().copied().unwrap_or(0);
        let changed = bump(&lines[i]);
        diff.push_str(&hunk(
            &svc.config.0,
            lines,
            i as u32 + 1,
            1,
            &[changed],
            rng,
        ));
        kinds.push("config");
    } else {
        let lines = &svc.manifest.1;
        let cands: Vec<usize> = (0..lines.len())
            .filter(|&i| {
                lines[i].chars().any(|c| c.is_ascii_digit()) && !lines[i].contains("go 1.")
            })
            .collect();
        let i = *rng.pick(&cands);
        diff.push_str(&hunk(
            &svc.manifest.0,
            lines,
            i as u32 + 1,
            1,
            &[bump(&lines[i])],
            rng,
        ));
        kinds.push("dependency");
    }
    if rng.chance(0.3) {
        diff.push_str(&test_diff(svc, code, rng));
        if !kinds.contains(&"tests") {
            kinds.push("tests");
        }
    }
    Change {
        diff,
        kinds,
        effect: Effect::None,
        culprit: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_look_like_git_and_name_the_enclosing_class() {
        let mut rng = Rng(2);
        let f = lang::gen_file(
            &mut rng,
            Lang::Java,
            "src/catalog/Pricing.java".into(),
            "src/catalog/Pricing.java".into(),
            "com.shop.catalog".into(),
            Some("PricingService".into()),
        );
        let g = &f.funcs[1];
        let at = g.def_line + 4;
        let d = hunk(
            &f.path,
            &f.lines,
            at,
            1,
            &["        var x = 1;".into(), "        var y = 2;".into()],
            &mut rng,
        );
        let start = at - 3;
        assert!(
            d.contains(&format!(
                "@@ -{start},7 +{start},8 @@ public class PricingService"
            )),
            "{d}"
        );
        assert!(d.starts_with(
            "diff --git a/src/catalog/Pricing.java b/src/catalog/Pricing.java\nindex "
        ));
        assert_eq!(
            d.lines()
                .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
                .count(),
            2
        );
    }

    #[test]
    fn bump_raises_the_last_number() {
        assert_eq!(bump("requests==2.31.0"), "requests==2.31.1");
        assert_eq!(
            bump("    <version>2.15.3</version>"),
            "    <version>2.15.4</version>"
        );
    }
}
