//! Linking an error to changed lines (pure): evidence, scores, and how a score
//! becomes a decision and a confidence.
//!
//! # Evidence
//! **Strong** (from stack frames, mapped to repository paths by
//! [`crate::frames`]; files of class test/docs/ci never count for runtime errors):
//! - *line*: the frame's line is a changed line or within `line_slack` of one:
//!   p = 0.92 on the line, −0.06 per line away (0.74 at 3 lines);
//! - *function*: the frame's function is the hunk's function (the `@@ … @@`
//!   context) or is defined on a changed line: p = 0.62;
//! - *same file*: the frame is in a changed file, far from the change: p = 0.2.
//!
//! Frames are innermost first; each step outwards multiplies p by 0.93 (a call
//! site that changed is a common cause, but less direct than the failing line);
//! frames outside the app count at 0.6 and only with a two-component path match.
//! The strong part of the score is the best frame's p.
//!
//! **Weak** (identifiers): tokens of the error text — quoted literals, config
//! keys, env vars, snake/camel-case identifiers, endpoints — found as whole
//! words on added/removed lines of runtime-relevant files: p = 0.25 each (0.35
//! in config/dependency files, where a key match is more telling), combined
//! noisy-OR and capped at 0.55, so identifiers alone never reach `caused`.
//!
//! # Score → decision → confidence
//! `score = 1 − (1 − strong)(1 − weak)` (noisy-OR: independent ways of being
//! linked). The per-evidence p values are the rules' estimate of "this link is
//! causal"; on the labeled fixtures (`tests/fixtures.rs`) the caused verdicts'
//! mean confidence tracks their precision (see the README's *Triage* figures).
//! - `score ≥ caused_threshold` (0.6) → `caused`, confidence = score × recency
//!   factor of the blamed deploy.
//! - otherwise, when the deploy changed only test/docs/CI files → `not_caused`,
//!   confidence 0.95 (such files cannot run in production);
//! - otherwise, when it changed only code (no config, dependency, build,
//!   migration or unknown files), the error carries in-app frames, and none of
//!   them is in a changed file, and no identifier matched → `not_caused`,
//!   confidence 0.75 (a complete stack that avoids every change);
//! - otherwise `inconclusive`, confidence = 1 − score (how sure we are that the
//!   evidence does not reach `caused`); the LLM adjudicator, if configured,
//!   looks at these.

use std::collections::BTreeSet;

use selfheal_schemas::{Evidence, Frame, Localization};

use crate::classes::FileClass;
use crate::diff::{FileDiff, FileStatus, LineKind};
use crate::{frames, functions};

/// p of a frame on a changed line.
const P_LINE: f64 = 0.92;
/// p lost per line of distance.
const P_LINE_STEP: f64 = 0.06;
/// p of a frame whose function is the changed hunk's function.
const P_FUNCTION: f64 = 0.62;
/// p of a frame in a changed file, away from the change.
const P_SAME_FILE: f64 = 0.2;
/// Multiplier per frame outwards from the innermost.
const DEPTH_DECAY: f64 = 0.93;
/// Multiplier for frames outside the app.
const NOT_IN_APP: f64 = 0.6;
/// p of one identifier on a changed code line.
const P_TOKEN: f64 = 0.25;
/// p of one identifier on a changed config/dependency line.
const P_TOKEN_CONFIG: f64 = 0.35;
/// Cap of the combined identifier evidence.
const WEAK_CAP: f64 = 0.55;

/// A frame located in one revision's numbering.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// Repository-ish path (see [`frames::locate_path`]).
    pub path: String,
    /// Whether `path` is relative to the application root.
    pub rooted: bool,
    /// The service, for monorepo path matching ([`frames::match_frame`]).
    pub service: String,
    /// Line in this revision, if known (and if the line existed in it).
    pub line: Option<u32>,
    /// Short function name.
    pub function: String,
    /// Position in the stack, innermost = 0.
    pub depth: usize,
    /// In the service's own code.
    pub in_app: bool,
    /// The frame as the error reported it, for the evidence text.
    pub display: String,
    /// The frame named its file without directories (`Pricing.java` on the
    /// JVM): its path was rebuilt from the package, which need not mirror
    /// the repository's directories.
    pub bare_file: bool,
}

/// Locates the regression's frames in the revision that produced them.
pub fn locate(frames_in: &[Frame], service: &str) -> Vec<Located> {
    frames_in
        .iter()
        .enumerate()
        .map(|(depth, f)| {
            let (path, rooted) = frames::locate_path(f);
            (depth, f, path, rooted)
        })
        .map(|(depth, f, path, rooted)| Located {
            path,
            rooted,
            service: service.to_owned(),
            line: f
                .line
                .and_then(|l| u32::try_from(l).ok())
                .filter(|l| *l > 0),
            function: frames::short_function(&f.function).to_owned(),
            depth,
            in_app: f.in_app,
            display: match f.line {
                Some(l) => format!("{} ({}:{l})", f.function, f.file),
                None => format!("{} ({})", f.function, f.file),
            },
            bare_file: !f.file.contains(['/', '\\']),
        })
        .collect()
}

/// Maps frames located in a newer revision back through that revision's diff
/// into the revision before it: renamed files take their old name, lines shift
/// by the hunks above them, and a line the newer diff added has no older
/// counterpart (its frame keeps file-level weight only). Frames in files the
/// newer diff created did not exist before and are dropped.
pub fn map_back(located: &[Located], newer: &[FileDiff]) -> Vec<Located> {
    located
        .iter()
        .filter_map(|f| {
            let Some(file) = best_file(f, newer.iter().map(|d| d.path())).map(|(i, _)| &newer[i])
            else {
                return Some(f.clone());
            };
            if file.status == FileStatus::Added {
                return None;
            }
            let mut out = f.clone();
            if let Some(old) = &file.old_path {
                if file.status == FileStatus::Renamed || file.status == FileStatus::Copied {
                    out.path = old.clone();
                }
            }
            out.line = f.line.and_then(|l| file.old_line_of(l));
            Some(out)
        })
        .collect()
}

/// The changed file a frame path names: index and match length; the longest
/// component-suffix match wins, the first on ties.
fn best_file<'a>(f: &Located, files: impl Iterator<Item = &'a str>) -> Option<(usize, usize)> {
    best_path(files, |p| {
        frames::match_frame(&f.path, f.rooted, p, &f.service)
    })
}

/// The path with the longest match by `matcher`, the first on ties.
fn best_path<'a>(
    files: impl Iterator<Item = &'a str>,
    matcher: impl Fn(&str) -> Option<usize>,
) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (i, p) in files.enumerate() {
        if let Some(len) = matcher(p) {
            if best.is_none_or(|(_, b)| len > b) {
                best = Some((i, len));
            }
        }
    }
    best
}

/// The outcome of linking one regression to one deploy's diff.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    /// Best frame evidence (0–1).
    pub strong: f64,
    /// Combined identifier evidence (0–0.55).
    pub weak: f64,
    /// Cited lines, strongest first.
    pub evidence: Vec<Evidence>,
    /// One-line reasons, strongest first.
    pub reasons: Vec<String>,
    /// Whether any frame landed in a changed (runtime-relevant) file.
    pub frame_in_changed_file: bool,
    /// How precisely the evidence locates the change (`None` when nothing links).
    pub localization: Option<Localization>,
}

impl Link {
    /// `1 − (1 − strong)(1 − weak)`.
    pub fn score(&self) -> f64 {
        1.0 - (1.0 - self.strong) * (1.0 - self.weak)
    }

    /// The localization, `none` when nothing links.
    pub fn class(&self) -> Localization {
        self.localization.unwrap_or(Localization::None)
    }
}

/// One frame's link to one changed file.
struct Hit {
    p: f64,
    class: Localization,
    evidence: Evidence,
    reason: String,
}

/// p of a frame matched to a changed file by its file name alone (its package
/// or directories do not mirror the repository path), relative to a full match.
const BASENAME_ONLY: f64 = 0.85;

/// The changed file a frame is in: by path suffix, else (weaker) by file name
/// when exactly one changed file has it and the frame named no directory. Returns (index into `relevant`,
/// match length, matched by name only).
fn frame_file(f: &Located, files: &[FileDiff], relevant: &[usize]) -> Option<(usize, usize, bool)> {
    if let Some((ri, len)) = best_file(f, relevant.iter().map(|&i| files[i].path())) {
        return Some((ri, len, false));
    }
    // Only a bare file name may match by name: a frame that names its
    // directories and does not match is another file (`legacy/pricing.py`).
    if !f.in_app || f.line.is_none() || !f.bare_file {
        return None;
    }
    let base = f.path.rsplit('/').next().filter(|b| b.contains('.'))?;
    // A repository whose paths hold the frame's package root (`org/apache/…`)
    // mirrors packages: a same-named file elsewhere in it is another class
    // (`lang3/text/StringUtils.java` is not `lang3/StringUtils.java`),
    // unless it sits in a directory named like the frame's own package (a
    // Kotlin-style layout that leaves out part of the package,
    // `com/acme/billing/X.kt` for `com.acme.shop.billing.X`).
    let dirs: Vec<&str> = f.path.split('/').collect();
    let root = &dirs[..dirs.len().min(2)];
    let package_dir = dirs.len().checked_sub(2).map(|i| dirs[i]);
    let mirrors = |p: &str| {
        let parent = p.rsplit('/').nth(1);
        root.len() == 2
            && p.contains(&format!("{}/{}/", root[0], root[1]))
            && (package_dir.is_none() || parent != package_dir)
    };
    let mut same = relevant
        .iter()
        .enumerate()
        .filter(|(_, &i)| files[i].path().rsplit('/').next() == Some(base))
        .filter(|(_, &i)| !mirrors(files[i].path()));
    let (ri, _) = same.next()?;
    same.next().is_none().then_some((ri, 1, true))
}

/// Links a runtime error (frames + message tokens) to a diff.
///
/// A frame on (or within `slack` of) a changed line is strong wherever it
/// sits in the stack: a wrong line deep in the call chain is as much the
/// cause as the innermost one. Function and file links lose `DEPTH_DECAY` per
/// in-app frame outwards (an outer call site in a changed function is a
/// weaker link than the failing function itself).
pub fn link_runtime(
    located: &[Located],
    tokens: &BTreeSet<String>,
    files: &[FileDiff],
    classes: &[FileClass],
    slack: u32,
) -> Link {
    let relevant: Vec<usize> = (0..files.len())
        .filter(|&i| classes[i].is_runtime_relevant() && !files[i].binary)
        .collect();
    let mut link = Link::default();
    let mut hits: Vec<Hit> = Vec::new();
    let in_app_depth = |f: &Located| {
        located
            .iter()
            .take(f.depth)
            .filter(|g| g.in_app == f.in_app)
            .count()
    };
    for f in located {
        let Some((ri, len, by_name)) = frame_file(f, files, &relevant) else {
            continue;
        };
        if !f.in_app && len < 2 {
            continue;
        }
        let file = &files[relevant[ri]];
        link.frame_in_changed_file = true;
        let Some(mut hit) = frame_hit(f, file, slack) else {
            continue;
        };
        let depth = if hit.class == Localization::Line {
            1.0
        } else {
            DEPTH_DECAY.powi(in_app_depth(f) as i32)
        };
        hit.p *= depth * if f.in_app { 1.0 } else { NOT_IN_APP };
        if by_name {
            hit.p *= BASENAME_ONLY;
            hit.reason
                .push_str(" (matched by file name: the frame's package does not mirror the path)");
        }
        hit.evidence.frame = Some(f.display.clone());
        hits.push(hit);
    }
    hits.sort_by(|a, b| a.class.cmp(&b.class).then(b.p.total_cmp(&a.p)));
    link.localization = hits.first().map(|h| h.class);
    link.strong = hits.iter().map(|h| h.p).fold(0.0, f64::max);
    let mut seen = BTreeSet::new();
    for h in hits {
        if link.evidence.len() >= 3 {
            break;
        }
        if seen.insert((h.evidence.file.clone(), h.evidence.line)) {
            link.evidence.push(h.evidence);
            link.reasons.push(h.reason);
        }
    }
    link_tokens(&mut link, &mut seen, tokens, files, classes, &relevant);
    link
}

/// Identifier evidence, one p per distinct token (its best line).
fn link_tokens(
    link: &mut Link,
    seen: &mut BTreeSet<(String, Option<i32>)>,
    tokens: &BTreeSet<String>,
    files: &[FileDiff],
    classes: &[FileClass],
    relevant: &[usize],
) {
    let mut miss = 1.0;
    let mut token_hits = 0;
    for token in tokens {
        let found = relevant.iter().find_map(|&i| {
            let file = &files[i];
            file.changed()
                .find(|(_, l)| contains_word(&l.text, token))
                .map(|(h, l)| (i, h, l))
        });
        let Some((i, h, l)) = found else { continue };
        let p = if classes[i].acts_at_a_distance() {
            P_TOKEN_CONFIG
        } else {
            P_TOKEN
        };
        miss *= 1.0 - p;
        token_hits += 1;
        if token_hits <= 3 && !seen.contains(&(files[i].path().to_owned(), Some(l.at as i32))) {
            seen.insert((files[i].path().to_owned(), Some(l.at as i32)));
            link.evidence.push(Evidence {
                file: files[i].path().to_owned(),
                line: i32::try_from(l.at).ok(),
                hunk_header: Some(files[i].hunks[h].header.clone()),
                frame: None,
                token: Some(token.clone()),
                strength: "weak".to_owned(),
            });
            link.reasons.push(format!(
                "`{token}` from the error appears on a line this deploy {} ({}:{}, {})",
                if l.kind == LineKind::Added {
                    "added"
                } else {
                    "removed"
                },
                files[i].path(),
                l.at,
                classes[i]
            ));
        }
    }
    link.weak = (1.0 - miss).min(WEAK_CAP);
    if link.weak > 0.0 && link.localization.is_none() {
        link.localization = Some(Localization::File);
    }
}

/// The evidence one frame gives against one changed file.
fn frame_hit(f: &Located, file: &FileDiff, slack: u32) -> Option<Hit> {
    let ev = |line: u32, hunk: usize, strength: &str| Evidence {
        file: file.path().to_owned(),
        line: i32::try_from(line).ok(),
        hunk_header: file.hunks.get(hunk).map(|h| h.header.clone()),
        frame: None,
        token: None,
        strength: strength.to_owned(),
    };
    if let Some(line) = f.line {
        // Nearest changed line; on ties prefer an added line (it is what runs).
        let nearest = file
            .changed()
            .map(|(h, l)| (l.at.abs_diff(line), l.kind != LineKind::Added, h, l.at))
            .min();
        if let Some((d, _, h, at)) = nearest.filter(|n| n.0 <= slack) {
            let how = if d == 0 {
                "is a line this deploy changed".to_owned()
            } else {
                format!("is {d} line(s) from a line this deploy changed")
            };
            return Some(Hit {
                p: P_LINE - P_LINE_STEP * f64::from(d),
                class: Localization::Line,
                evidence: ev(at, h, "strong"),
                reason: format!("stack frame {} {how} ({}:{at})", f.display, file.path()),
            });
        }
    }
    if let Some((h, at)) = in_changed_function(f, file) {
        return Some(Hit {
            p: P_FUNCTION,
            class: Localization::Function,
            evidence: ev(at, h, "strong"),
            reason: format!(
                "stack frame {} is in function `{}`, which this deploy changed ({}:{at})",
                f.display,
                f.function,
                file.path()
            ),
        });
    }
    let (h, first) = file.changed().next()?;
    Some(Hit {
        p: P_SAME_FILE,
        class: Localization::File,
        evidence: ev(first.at, h, "weak"),
        reason: format!(
            "stack frame {} is in {}, which this deploy changed elsewhere",
            f.display,
            file.path()
        ),
    })
}

/// The changed line (hunk, line) of the function a frame is in: the frame's
/// function encloses a changed line (found from the diff's own lines, see
/// [`functions`]), or is defined on one, or the frame's line is shown in a
/// hunk inside the same function as a changed line. The changed line closest
/// to the frame is cited.
fn in_changed_function(f: &Located, file: &FileDiff) -> Option<(usize, u32)> {
    let changed = functions::changed_functions(file);
    let by_name: Vec<&functions::ChangedFn> = changed
        .iter()
        .filter(|_| !f.function.is_empty())
        .filter(|c| functions::same_function(&f.function, &c.name, file.path()))
        .collect();
    let by_span: Vec<&functions::ChangedFn> =
        match f.line.and_then(|l| functions::function_at(file, l)) {
            Some(name) => changed.iter().filter(|c| c.name == name).collect(),
            None => Vec::new(),
        };
    let defined = file
        .changed()
        .find(|(_, l)| !f.function.is_empty() && defines(&l.text, &f.function))
        .map(|(h, l)| (h, l.at));
    let pool = if by_name.is_empty() { by_span } else { by_name };
    let closest = pool
        .into_iter()
        .min_by_key(|c| f.line.map_or(0, |l| c.at.abs_diff(l)))
        .map(|c| (c.hunk, c.at));
    closest.or(defined)
}

/// Whether a changed line defines `name` (`def name(`, `func name(`,
/// `function name(`, `fn name(`, or a Java/C-style `type name(` declaration).
fn defines(text: &str, name: &str) -> bool {
    let t = text.trim_start();
    for kw in [
        "def ",
        "async def ",
        "func ",
        "function ",
        "fn ",
        "pub fn ",
        "async function ",
    ] {
        if let Some(rest) = t.strip_prefix(kw) {
            if rest.starts_with(name)
                && rest[name.len()..].trim_start().starts_with(['(', '<', '['])
            {
                return true;
            }
        }
    }
    // `public Quote quote(Cart c) {`, `func (q *Quoter) Quote(` …
    let needle = format!(" {name}(");
    t.contains(&needle) && (t.ends_with('{') || t.ends_with(':') || t.contains(") {"))
}

/// Whether `word` occurs in `text` delimited by non-identifier characters.
pub fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut start = 0;
    while let Some(i) = text[start..].find(word) {
        let at = start + i;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let word_starts_ident = word.starts_with(is_ident);
        let word_ends_ident = word.ends_with(is_ident);
        if (!word_starts_ident || before.is_none_or(|c| !is_ident(c)))
            && (!word_ends_ident || after.is_none_or(|c| !is_ident(c)))
        {
            return true;
        }
        start = at + word.len().max(1);
        while !text.is_char_boundary(start) {
            start += 1;
        }
    }
    false
}

/// Identifiers in error text worth looking for in a diff: quoted literals,
/// config keys and env vars, snake/camel-case and dotted names, endpoints.
/// Plain words, numbers, ids and placeholders are left out.
pub fn tokens(texts: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for text in texts {
        // Quoted literals: 'EUR', "payments_url", `x_y`.
        for q in ['\'', '"', '`'] {
            let parts: Vec<&str> = text.split(q).collect();
            for inner in parts.iter().skip(1).step_by(2).take(parts.len() / 2) {
                let inner = inner.trim();
                if (3..=64).contains(&inner.chars().count())
                    && !inner.contains(char::is_whitespace)
                    && !inner.contains("<*>")
                    && !is_noise(inner)
                {
                    out.insert(inner.to_owned());
                }
            }
        }
        for raw in
            text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '$')))
        {
            let w = raw.trim_matches(|c: char| matches!(c, '.' | '-' | '/' | '$'));
            let w = if raw.starts_with('/') && w.contains('/') {
                // Keep the leading slash of endpoints.
                &raw[..raw.trim_end_matches(['.', '-', '/']).len()]
            } else {
                w
            };
            if w.chars().count() < 4 || w.len() > 80 || is_noise(w) {
                continue;
            }
            let has_upper_inside =
                w.chars().skip(1).any(char::is_uppercase) && w.chars().any(char::is_lowercase);
            let env_var = w.contains('_')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let snake = w.contains('_');
            let dotted = w.contains('.')
                && w.split('.')
                    .all(|s| !s.is_empty() && s.starts_with(char::is_alphabetic));
            let endpoint = w.starts_with('/') && w.matches('/').count() >= 2;
            if has_upper_inside || env_var || snake || dotted || endpoint {
                out.insert(w.to_owned());
                if dotted {
                    // `payments.timeout_ms` may be spelled `timeout_ms` in the file.
                    if let Some(last) = w.rsplit('.').next().filter(|l| l.contains('_')) {
                        out.insert(last.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// Numbers, hex ids, UUID-ish strings and placeholders.
fn is_noise(w: &str) -> bool {
    let hexish = w.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    w.contains('<')
        || w.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        || (hexish && w.len() >= 8)
}

/// Build-log references to source files: `path:line[:col]`, `File "path", line N`,
/// `--> path:line:col`, `path(line,col)`.
pub fn build_log_refs(log: &str) -> Vec<(String, Option<u32>)> {
    let mut out: Vec<(String, Option<u32>)> = Vec::new();
    for line in log.lines() {
        // Python: File "x.py", line 3
        if let Some(i) = line.find("File \"") {
            let rest = &line[i + 6..];
            if let Some((path, tail)) = rest.split_once('"') {
                let n = tail
                    .split_once("line ")
                    .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|d| d.parse().ok());
                out.push((path.to_owned(), n));
            }
        }
        for word in
            line.split(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '[' | ']'))
        {
            let word = word.trim_matches(|c: char| matches!(c, ',' | ';' | ')' | '('));
            // `path(12,5)` (C#, TypeScript)
            let (word, paren_line) = match word.split_once('(') {
                Some((p, r)) => (
                    p,
                    r.split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|d| d.parse().ok()),
                ),
                None => (word, None),
            };
            let mut parts = word.split(':');
            let Some(path) = parts.next() else { continue };
            if !looks_like_source_path(path) {
                continue;
            }
            let n = parts.next().and_then(|d| d.parse().ok()).or(paren_line);
            out.push((path.to_owned(), n));
        }
    }
    out.dedup();
    out
}

fn looks_like_source_path(p: &str) -> bool {
    let name = p.rsplit('/').next().unwrap_or(p);
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && (1..=6).contains(&ext.len())
        && ext.chars().all(|c| c.is_ascii_alphanumeric())
        && !ext.chars().all(|c| c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '@' | '+'))
}

/// Links a build log to a diff: changed files (and lines) the log names.
pub fn link_build(log: &str, files: &[FileDiff], slack: u32) -> Link {
    let mut link = Link::default();
    let mut seen = BTreeSet::new();
    let mut scored: Vec<(f64, Evidence, String)> = Vec::new();
    for (path, line) in build_log_refs(log) {
        let Some((i, _)) = best_path(files.iter().map(FileDiff::path), |p| {
            frames::match_len(&path, p)
        }) else {
            continue;
        };
        let file = &files[i];
        if file.binary {
            continue;
        }
        let nearest = line.and_then(|n| {
            file.changed()
                .map(|(h, l)| (l.at.abs_diff(n), h, l.at))
                .min()
                .filter(|(d, _, _)| *d <= slack)
        });
        let (p, h, at, reason) = match nearest {
            Some((d, h, at)) => (
                0.95 - 0.02 * f64::from(d),
                h,
                at,
                format!(
                    "the build log names {}:{}, next to a changed line",
                    path,
                    line.unwrap_or(at)
                ),
            ),
            None => {
                let Some((h, l)) = file.changed().next() else {
                    continue;
                };
                (
                    0.85,
                    h,
                    l.at,
                    format!(
                        "the build log names {}, which this deploy changed",
                        file.path()
                    ),
                )
            }
        };
        if seen.insert((file.path().to_owned(), at)) {
            scored.push((
                p,
                Evidence {
                    file: file.path().to_owned(),
                    line: i32::try_from(at).ok(),
                    hunk_header: file.hunks.get(h).map(|h| h.header.clone()),
                    frame: None,
                    token: Some(match line {
                        Some(n) => format!("{path}:{n}"),
                        None => path.clone(),
                    }),
                    strength: if nearest.is_some() { "strong" } else { "weak" }.to_owned(),
                },
                reason,
            ));
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    link.strong = scored.first().map(|s| s.0).unwrap_or(0.0);
    for (_, ev, reason) in scored.into_iter().take(3) {
        link.evidence.push(ev);
        link.reasons.push(reason);
    }
    link
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff;

    #[test]
    fn tokens_pick_identifiers_not_words() {
        let t = tokens(&[
            "KeyError: 'EUR' reading PAYMENTS_URL from settings.payments_timeout at /api/v2/quote for user 3f2a9c1b8d7e",
            "Timeout after 3001ms calling payments-api (request_id=<*>) in fetchRates",
        ]);
        for want in [
            "EUR",
            "PAYMENTS_URL",
            "settings.payments_timeout",
            "payments_timeout",
            "/api/v2/quote",
            "fetchRates",
            "request_id",
        ] {
            assert!(t.contains(want), "{want} missing from {t:?}");
        }
        for not in [
            "Timeout",
            "after",
            "calling",
            "3001ms",
            "3f2a9c1b8d7e",
            "user",
        ] {
            assert!(!t.contains(not), "{not} should not be a token: {t:?}");
        }
    }

    #[test]
    fn whole_words_only() {
        assert!(contains_word("rate = rates[cur]", "rates"));
        assert!(!contains_word("rate = rates_v2[cur]", "rates"));
        assert!(contains_word("url: /api/v2/quote", "/api/v2/quote"));
        assert!(!contains_word("x", ""));
        assert!(contains_word("ééé rates", "rates"));
    }

    #[test]
    fn build_log_references() {
        let log = "error[E0425]: cannot find value `x`\n --> src/pricing.rs:12:5\nsrc/app.ts(40,7): error TS2304\n  File \"/app/src/checkout/cart.py\", line 9, in <module>\nsee https://example.invalid/help.html";
        let refs = build_log_refs(log);
        assert!(
            refs.contains(&("src/pricing.rs".into(), Some(12))),
            "{refs:?}"
        );
        assert!(refs.contains(&("src/app.ts".into(), Some(40))), "{refs:?}");
        assert!(
            refs.contains(&("/app/src/checkout/cart.py".into(), Some(9))),
            "{refs:?}"
        );
    }

    #[test]
    fn map_back_follows_renames_and_shifts() {
        let newer = diff::parse("diff --git a/src/old.py b/src/new.py\nsimilarity index 90%\nrename from src/old.py\nrename to src/new.py\n--- a/src/old.py\n+++ b/src/new.py\n@@ -1,2 +1,4 @@\n a\n+b\n+c\n d\n");
        let located = vec![Located {
            path: "src/new.py".into(),
            rooted: false,
            service: "x".into(),
            line: Some(10),
            function: "f".into(),
            depth: 0,
            in_app: true,
            display: "f".into(),
            bare_file: false,
        }];
        let back = map_back(&located, &newer);
        assert_eq!(back[0].path, "src/old.py");
        assert_eq!(back[0].line, Some(8));
    }

    #[test]
    fn a_jvm_frame_whose_package_does_not_mirror_the_path_matches_by_file_name() {
        let files = diff::parse("--- a/src/catalog/Pricing.java\n+++ b/src/catalog/Pricing.java\n@@ -48,3 +48,3 @@ public class Pricing {\n   int a;\n-  return rates.getOrDefault(c, ONE);\n+  return rates.get(c);\n   int b;\n");
        let classes = vec![FileClass::Runtime];
        let frames = vec![Frame {
            file: "Pricing.java".into(),
            line: Some(50),
            function: "com.shop.catalog.quote".into(),
            in_app: true,
        }];
        let l = link_runtime(&locate(&frames, "x"), &BTreeSet::new(), &files, &classes, 3);
        assert_eq!(l.localization, Some(Localization::Line), "{l:?}");
        assert!(l.strong < P_LINE, "weaker than a full path match");
        // A frame naming its directories is another file.
        let other = vec![Frame {
            file: "/app/legacy/Pricing.java".into(),
            ..frames[0].clone()
        }];
        let l = link_runtime(&locate(&other, "x"), &BTreeSet::new(), &files, &classes, 3);
        assert_eq!(l.localization, None, "{l:?}");
    }

    #[test]
    fn a_package_layout_that_leaves_out_a_directory_still_matches_by_name() {
        let diff_of = |path: &str| {
            diff::parse(&format!("--- a/{path}\n+++ b/{path}\n@@ -48,3 +48,3 @@ public class X {{\n   int a;\n-  return rates.getOrDefault(c, ONE);\n+  return rates.get(c);\n   int b;\n"))
        };
        let classes = vec![FileClass::Runtime];
        let frame = |function: &str, file: &str| Frame {
            file: file.into(),
            line: Some(49),
            function: function.into(),
            in_app: true,
        };
        // Kotlin-style: `com/acme/billing/` holds `com.acme.shop.billing`.
        let files = diff_of("svc/src/main/java/com/acme/billing/Invoice.java");
        let frames = vec![frame("com.acme.shop.billing.Invoice.total", "Invoice.java")];
        let l = link_runtime(&locate(&frames, "x"), &BTreeSet::new(), &files, &classes, 3);
        assert_eq!(l.localization, Some(Localization::Line), "{l:?}");
        // Same package root, another package: another class.
        let files = diff_of("src/main/java/org/apache/commons/lang3/text/StringUtils.java");
        let frames = vec![frame(
            "org.apache.commons.lang3.StringUtils.join",
            "StringUtils.java",
        )];
        let l = link_runtime(&locate(&frames, "x"), &BTreeSet::new(), &files, &classes, 3);
        assert_eq!(l.localization, None, "{l:?}");
    }

    #[test]
    fn definitions() {
        assert!(defines("def quote(cart):", "quote"));
        assert!(defines("    public Money quote(Cart cart) {", "quote"));
        assert!(!defines("    total = quote(cart)", "quote"));
        assert!(defines("func (q *Quoter) Quote(c Cart) error {", "Quote"));
    }
}
