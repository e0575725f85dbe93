//! A labeled fixture set for triage accuracy (until the fleet simulator's
//! labeled history exists): generated, deterministic cases in four stack
//! formats (Python, JVM, Node, Go).
//!
//! Culprit deploys change the line an error's frame points at (±2), the call
//! site in an outer frame, or the failing function away from the line. Clean
//! deploys change unrelated runtime code (including a same-named file in
//! another directory), a test with the failing function's name, docs, CI, or
//! coincide with an externally correlated outage.
//!
//! Two questions are scored apart. *Decision*: culprits must be `caused`;
//! deploys of only tests, docs or CI, and externally correlated outages, must
//! be `not_caused`. A clean deploy of unrelated runtime code under a new error
//! is, from the deploy's point of view, still the likeliest cause (the error
//! is new on its revision and nothing outside explains it), so its decision is
//! not scored; what is scored there is that no `line` or `function`
//! localization is claimed (a false citation).
//!
//! `cargo test -p selfheal-triage --test fixtures -- --nocapture` prints the
//! figures quoted in the README.

// The test exists to print the figures quoted in the README.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;

use selfheal_common::config::TriageConfig;
use selfheal_schemas::{AnyEvent, Decision, Deploy, Frame, Localization, Regression};
use selfheal_triage::core::Triage;

/// Tiny deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lang {
    Python,
    Jvm,
    Node,
    Go,
}

/// One stack frame's file as the trace shows it, its function, and the repo path.
fn frame_for(lang: Lang, svc: &str, module: &str, func: &str) -> (String, String, String) {
    match lang {
        Lang::Python => (
            format!("/app/src/{svc}/{module}.py"),
            func.to_owned(),
            format!("src/{svc}/{module}.py"),
        ),
        Lang::Jvm => {
            let class = capitalize(module);
            (
                format!("{class}.java"),
                format!("com.shop.{svc}.{class}.{func}"),
                format!("src/main/java/com/shop/{svc}/{class}.java"),
            )
        }
        Lang::Node => (
            format!("/usr/src/app/lib/{module}.js"),
            format!("{}.{func}", capitalize(module)),
            format!("lib/{module}.js"),
        ),
        Lang::Go => (
            format!("/go/src/github.com/shop/{svc}/internal/{module}/{module}.go"),
            format!(
                "github.com/shop/{svc}/internal/{module}.{}",
                capitalize(func)
            ),
            format!("internal/{module}/{module}.go"),
        ),
    }
}

/// The enclosing-function line git shows in a hunk header, per language.
fn declaration(lang: Lang, func: &str) -> String {
    match lang {
        Lang::Python => format!("def {func}(self, cart):"),
        Lang::Jvm => format!("public Money {func}(Cart cart) {{"),
        Lang::Node => format!("  {func}(cart) {{"),
        Lang::Go => format!(
            "func (s *Service) {}(ctx context.Context) error {{",
            capitalize(func)
        ),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// A one-hunk diff of `path` changing line `line`, in function `func`.
fn hunk(path: &str, line: u32, func: &str, old: &str, new: &str) -> String {
    let start = line.saturating_sub(3).max(1);
    let before = line - start;
    let mut s = format!(
        "diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n@@ -{start},{n} +{start},{n} @@ {func}\n",
        n = before + 4
    );
    for i in 0..before {
        s.push_str(&format!("     ctx_{}\n", start + i));
    }
    s.push_str(&format!("-    {old}\n+    {new}\n"));
    for i in 1..=3 {
        s.push_str(&format!("     ctx_{}\n", line + i));
    }
    s
}

#[derive(Debug)]
struct Case {
    kind: &'static str,
    lang: Lang,
    deploy_diff: String,
    regression: Regression,
    caused: bool,
    culprit: Option<(String, u32)>,
}

const MODULES: [&str; 6] = [
    "pricing",
    "cart",
    "payments",
    "orders",
    "rates",
    "inventory",
];
const FUNCS: [&str; 6] = ["quote", "total", "charge", "place", "lookup", "reserve"];

fn gen_case(rng: &mut Rng, i: usize) -> Case {
    let lang = [Lang::Python, Lang::Jvm, Lang::Node, Lang::Go][i % 4];
    let svc = ["checkout", "billing", "search"][rng.below(3) as usize];
    // A stack of three in-app frames over distinct modules, innermost first.
    let first = rng.below(6) as usize;
    let stack: Vec<(usize, u32)> = (0..3)
        .map(|k| ((first + k) % 6, 20 + rng.below(300) as u32))
        .collect();
    let unrelated = (first + 3 + rng.below(3) as usize) % 6;
    let frames: Vec<Frame> = stack
        .iter()
        .map(|&(m, line)| {
            let (file, function, _) = frame_for(lang, svc, MODULES[m], FUNCS[m]);
            Frame {
                file,
                line: Some(line as i32),
                function,
                in_app: true,
            }
        })
        .chain(std::iter::once(Frame {
            file: "/usr/lib/python3.12/threading.py".into(),
            line: Some(1016),
            function: "run".into(),
            in_app: false,
        }))
        .collect();
    let repo = |m: usize| frame_for(lang, svc, MODULES[m], FUNCS[m]).2;
    let exc = [
        "KeyError",
        "NullPointerException",
        "TypeError",
        "IndexError",
    ][i % 4];
    let mut regression = Regression {
        id: format!("r{i}"),
        service: svc.into(),
        revision: format!("rev{i}"),
        previous_revision: Some(format!("prev{i}")),
        signature: format!("{i:016x}"),
        template: format!("{exc}: cannot read value <*>"),
        exception_type: Some(exc.into()),
        detected_at_ms: 1_000 + i as i64,
        deployed_at_ms: Some(0),
        window_start_ms: 0,
        window_end_ms: 1_000,
        observed: 12,
        expected: 0.2,
        rate_ratio: 60.0,
        p_value: 1e-6,
        sample_message: format!("{exc}: cannot read value 42"),
        frames,
        ..selfheal_schemas::testing::regression()
    };
    let (m0, l0) = stack[0];
    let (m1, l1) = stack[1];
    let scenario = i % 10;
    let (kind, diff, caused, culprit) = match scenario {
        0 | 1 => {
            let d = rng.below(3) as u32;
            let line = if rng.below(2) == 0 {
                l0 + d
            } else {
                l0.saturating_sub(d).max(1)
            };
            (
                "culprit: innermost line",
                hunk(&repo(m0), line, FUNCS[m0], "v = m.get(k, 0)", "v = m[k]"),
                true,
                Some((repo(m0), line)),
            )
        }
        2 => (
            "culprit: call site in an outer frame",
            hunk(&repo(m1), l1, FUNCS[m1], "x = f(a, b)", "x = f(a, None)"),
            true,
            Some((repo(m1), l1)),
        ),
        3 => {
            // Same function, the change is 12 lines above the failing line.
            let line = l0.saturating_sub(12).max(1);
            (
                "culprit: changed function, away from the line",
                hunk(
                    &repo(m0),
                    line,
                    &declaration(lang, FUNCS[m0]),
                    "limit = 10",
                    "limit = None",
                ),
                true,
                Some((repo(m0), line)),
            )
        }
        4 => (
            "clean: unrelated runtime code",
            hunk(&repo(unrelated), 40, FUNCS[unrelated], "a = 1", "a = 2"),
            false,
            None,
        ),
        5 => {
            let test_path = match lang {
                Lang::Python => format!("tests/test_{}.py", MODULES[m0]),
                Lang::Jvm => format!(
                    "src/test/java/com/shop/{svc}/{}Test.java",
                    capitalize(MODULES[m0])
                ),
                Lang::Node => format!("lib/{}.test.js", MODULES[m0]),
                Lang::Go => format!("internal/{0}/{0}_test.go", MODULES[m0]),
            };
            (
                "clean: test with the failing function's name",
                hunk(
                    &test_path,
                    l0,
                    FUNCS[m0],
                    &format!("assert {}(x) == 1", FUNCS[m0]),
                    &format!("assert {}(x) == 2", FUNCS[m0]),
                ),
                false,
                None,
            )
        }
        6 => (
            "clean: docs only",
            hunk(
                "docs/runbook.md",
                12,
                "",
                "old text",
                &format!("how {} works", FUNCS[m0]),
            ),
            false,
            None,
        ),
        7 => (
            "clean: CI only",
            hunk(
                ".github/workflows/ci.yml",
                8,
                "",
                "run: make",
                "run: make test",
            ),
            false,
            None,
        ),
        8 => {
            // A same-named file elsewhere in the repository.
            let path = repo(m0)
                .replacen(svc, "legacy", 1)
                .replacen("lib/", "legacy/lib/", 1)
                .replacen("internal/", "legacy/internal/", 1);
            (
                "clean: same file name, other directory",
                hunk(&path, l0, FUNCS[m0], "a = 1", "a = 2"),
                false,
                None,
            )
        }
        _ => {
            regression.externally_correlated = true;
            regression.correlation_evidence =
                Some("the signature rose in 4 services that did not deploy".into());
            (
                "clean: externally correlated outage",
                hunk(&repo(m0), l0, FUNCS[m0], "a = 1", "a = 2"),
                false,
                None,
            )
        }
    };
    Case {
        kind,
        lang,
        deploy_diff: diff,
        regression,
        caused,
        culprit,
    }
}

#[test]
fn accuracy_on_the_labeled_fixture_set() {
    let mut rng = Rng(0x5e1f_4ea1);
    let cases: Vec<Case> = (0..400).map(|i| gen_case(&mut rng, i)).collect();
    let mut correct = 0;
    let mut caused_total = 0;
    let mut cited_ok = 0;
    let mut per_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut per_lang: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    // Calibration of `caused` verdicts: confidence bucket → (n, right).
    let mut calib: BTreeMap<u32, (usize, usize, f64)> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in &cases {
        let mut t = Triage::new(TriageConfig::default()).unwrap();
        t.on_event(&AnyEvent::Deploy(Deploy {
            service: c.regression.service.clone(),
            revision: c.regression.revision.clone(),
            previous_revision: c.regression.previous_revision.clone(),
            repo: Some(format!("git@github.com:shop/{}.git", c.regression.service)),
            diff: Some(c.deploy_diff.clone()),
            deployed_at_ms: 0,
            ..selfheal_schemas::testing::deploy()
        }));
        let v = t.judge(&c.regression);
        let unrelated_code =
            c.kind.starts_with("clean: unrelated") || c.kind.starts_with("clean: same file name");
        let ok = if c.caused {
            v.decision == Decision::Caused
        } else if unrelated_code {
            !matches!(
                v.localization,
                Some(Localization::Line | Localization::Function)
            )
        } else {
            v.decision == Decision::NotCaused
        };
        correct += usize::from(ok);
        let k = per_kind.entry(c.kind).or_default();
        k.0 += 1;
        k.1 += usize::from(ok);
        let l = per_lang.entry(format!("{:?}", c.lang)).or_default();
        l.0 += 1;
        l.1 += usize::from(ok);
        if v.decision == Decision::Caused && !unrelated_code {
            let b = calib
                .entry((v.confidence * 10.0).floor() as u32)
                .or_default();
            b.0 += 1;
            b.1 += usize::from(c.caused);
            b.2 += v.confidence;
        }
        if let Some((file, line)) = &c.culprit {
            caused_total += 1;
            let cited = v.decision == Decision::Caused
                && v.evidence.first().is_some_and(|e| {
                    &e.file == file && e.line.is_some_and(|l| (l - *line as i32).abs() <= 3)
                });
            cited_ok += usize::from(cited);
        }
        if !ok {
            failures.push(format!(
                "{} {:?}: {:?} — {}",
                c.kind, c.lang, v.decision, v.reasoning
            ));
        }
    }
    let accuracy = correct as f64 / cases.len() as f64;
    let citation = cited_ok as f64 / caused_total as f64;
    println!("triage fixtures: {} cases, accuracy {accuracy:.3}; culprit cited within ±3 lines: {cited_ok}/{caused_total} = {citation:.3}", cases.len());
    for (kind, (n, ok)) in &per_kind {
        println!("  {kind:<48} {ok}/{n}");
    }
    for (lang, (n, ok)) in &per_lang {
        println!("  {lang:<48} {ok}/{n}");
    }
    println!("  calibration of `caused` (confidence bucket: n, precision, mean confidence):");
    for (b, (n, right, sum)) in &calib {
        println!(
            "    [{:.1}, {:.1}): n={n:<4} precision={:.3} mean confidence={:.3}",
            *b as f64 / 10.0,
            (*b + 1) as f64 / 10.0,
            *right as f64 / *n as f64,
            sum / *n as f64
        );
    }
    for f in failures.iter().take(10) {
        println!("  miss: {f}");
    }
    assert!(accuracy >= 0.95, "accuracy {accuracy}");
    assert!(citation >= 0.95, "citation {citation}");
}
