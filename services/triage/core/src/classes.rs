//! File classes (pure): what kind of file a changed path is, by path and
//! extension rules with sensible defaults and per-repository overrides.
//!
//! The class decides what a change *can* do at run time:
//!
//! | class | runtime-relevant | why |
//! |---|---|---|
//! | `runtime` | yes | the service's code |
//! | `config` | yes, **at a distance** | a changed key can break code the stack never names |
//! | `dependency` (manifests, lockfiles) | yes, at a distance | a new library version changes behaviour inside third-party frames |
//! | `build` (Dockerfile, Makefile …) | yes, at a distance | base images and flags change the runtime |
//! | `migration` | yes, at a distance | a schema change breaks queries elsewhere |
//! | `template` (prompts, templates) | yes | rendered at run time |
//! | `other` (unknown extension) | yes, at a distance | unknown, so never used to rule a deploy out |
//! | `test`, `docs`, `ci` | **no** | not shipped, or not executed by the service |
//!
//! "At a distance" means: such a change can cause an error whose stack trace
//! never passes through it, so a deploy that contains one is never ruled out
//! just because no frame points at it (see [`crate::link`]).
//!
//! Rules are globs over the repository path: `*` matches within one path
//! segment, `**` across segments, `?` one character; a pattern without `/`
//! matches the file name alone (like `.gitignore`). Overrides from
//! `triage.class_overrides` are tried first, then the defaults, first match wins.

use std::fmt;
use std::str::FromStr;

use crate::config::ClassOverride;

/// What kind of file a changed path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileClass {
    /// The service's code.
    Runtime,
    /// Configuration read at run time.
    Config,
    /// Prompt or template rendered at run time.
    Template,
    /// Tests and test data.
    Test,
    /// Documentation.
    Docs,
    /// Continuous-integration definitions.
    Ci,
    /// Build definitions (Dockerfile, Makefile, bundler config …).
    Build,
    /// Dependency manifest or lockfile.
    Dependency,
    /// Database migration.
    Migration,
    /// Anything the rules do not recognise.
    Other,
}

impl FileClass {
    /// Every class, in a fixed order.
    pub const ALL: [FileClass; 10] = [
        FileClass::Runtime,
        FileClass::Config,
        FileClass::Template,
        FileClass::Test,
        FileClass::Docs,
        FileClass::Ci,
        FileClass::Build,
        FileClass::Dependency,
        FileClass::Migration,
        FileClass::Other,
    ];

    /// The name used in verdicts and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FileClass::Runtime => "runtime",
            FileClass::Config => "config",
            FileClass::Template => "template",
            FileClass::Test => "test",
            FileClass::Docs => "docs",
            FileClass::Ci => "ci",
            FileClass::Build => "build",
            FileClass::Dependency => "dependency",
            FileClass::Migration => "migration",
            FileClass::Other => "other",
        }
    }

    /// Whether a change to such a file can change the running service.
    pub fn is_runtime_relevant(self) -> bool {
        !matches!(self, FileClass::Test | FileClass::Docs | FileClass::Ci)
    }

    /// Whether such a change can cause errors whose stack never names it.
    pub fn acts_at_a_distance(self) -> bool {
        matches!(
            self,
            FileClass::Config
                | FileClass::Dependency
                | FileClass::Build
                | FileClass::Migration
                | FileClass::Other
        )
    }

    /// Whether a change to such a file can break a build.
    pub fn can_break_build(self) -> bool {
        !matches!(self, FileClass::Docs)
    }
}

impl fmt::Display for FileClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`FileClass`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown file class `{name}` (expected one of {})", FileClass::ALL.map(FileClass::as_str).join(", "))]
pub struct UnknownFileClass {
    /// The name given.
    pub name: String,
}

impl FromStr for FileClass {
    type Err = UnknownFileClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FileClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownFileClass { name: s.to_owned() })
    }
}

/// The default rules, first match wins. Order matters: CI before config (a
/// workflow is YAML), tests before runtime (a test is code), dependency
/// manifests and prompt directories before docs (`requirements.txt`,
/// `prompts/x.txt`).
const DEFAULTS: &[(&str, FileClass)] = &[
    // CI
    (".github/**", FileClass::Ci),
    (".gitlab-ci.yml", FileClass::Ci),
    (".gitlab/**", FileClass::Ci),
    (".circleci/**", FileClass::Ci),
    (".buildkite/**", FileClass::Ci),
    (".ci/**", FileClass::Ci),
    (".travis.yml", FileClass::Ci),
    ("Jenkinsfile", FileClass::Ci),
    ("azure-pipelines.yml", FileClass::Ci),
    (".pre-commit-config.yaml", FileClass::Ci),
    // dependency manifests and lockfiles
    ("requirements*.txt", FileClass::Dependency),
    ("requirements/*.txt", FileClass::Dependency),
    ("constraints*.txt", FileClass::Dependency),
    ("Pipfile", FileClass::Dependency),
    ("Pipfile.lock", FileClass::Dependency),
    ("poetry.lock", FileClass::Dependency),
    ("uv.lock", FileClass::Dependency),
    ("pyproject.toml", FileClass::Dependency),
    ("setup.py", FileClass::Dependency),
    ("setup.cfg", FileClass::Dependency),
    ("package.json", FileClass::Dependency),
    ("package-lock.json", FileClass::Dependency),
    ("npm-shrinkwrap.json", FileClass::Dependency),
    ("yarn.lock", FileClass::Dependency),
    ("pnpm-lock.yaml", FileClass::Dependency),
    ("Cargo.toml", FileClass::Dependency),
    ("Cargo.lock", FileClass::Dependency),
    ("go.mod", FileClass::Dependency),
    ("go.sum", FileClass::Dependency),
    ("pom.xml", FileClass::Dependency),
    ("build.gradle", FileClass::Dependency),
    ("build.gradle.kts", FileClass::Dependency),
    ("gradle.lockfile", FileClass::Dependency),
    ("Gemfile", FileClass::Dependency),
    ("Gemfile.lock", FileClass::Dependency),
    ("composer.json", FileClass::Dependency),
    ("composer.lock", FileClass::Dependency),
    ("*.csproj", FileClass::Dependency),
    ("packages.lock.json", FileClass::Dependency),
    // Maven/Gradle production sources are code whatever their name
    // (`MannWhitneyUTest.java` is a statistical test, not a unit test).
    ("src/main/**/*.java", FileClass::Runtime),
    ("**/src/main/**/*.java", FileClass::Runtime),
    ("src/main/**/*.kt", FileClass::Runtime),
    ("**/src/main/**/*.kt", FileClass::Runtime),
    // tests
    ("test/**", FileClass::Test),
    ("tests/**", FileClass::Test),
    ("**/test/**", FileClass::Test),
    ("**/tests/**", FileClass::Test),
    ("**/__tests__/**", FileClass::Test),
    ("spec/**", FileClass::Test),
    ("**/spec/**", FileClass::Test),
    ("**/testdata/**", FileClass::Test),
    ("**/fixtures/**", FileClass::Test),
    ("test_*.py", FileClass::Test),
    ("*_test.py", FileClass::Test),
    ("conftest.py", FileClass::Test),
    ("*_test.go", FileClass::Test),
    ("*.test.js", FileClass::Test),
    ("*.test.ts", FileClass::Test),
    ("*.test.jsx", FileClass::Test),
    ("*.test.tsx", FileClass::Test),
    ("*.spec.js", FileClass::Test),
    ("*.spec.ts", FileClass::Test),
    ("*_spec.rb", FileClass::Test),
    ("*Test.java", FileClass::Test),
    ("*Tests.java", FileClass::Test),
    ("*IT.java", FileClass::Test),
    ("*Test.kt", FileClass::Test),
    // templates and prompts (by directory, before `*.txt` docs)
    ("**/templates/**", FileClass::Template),
    ("templates/**", FileClass::Template),
    ("**/prompts/**", FileClass::Template),
    ("prompts/**", FileClass::Template),
    // docs
    ("docs/**", FileClass::Docs),
    ("doc/**", FileClass::Docs),
    ("**/docs/**", FileClass::Docs),
    ("*.md", FileClass::Docs),
    ("*.markdown", FileClass::Docs),
    ("*.rst", FileClass::Docs),
    ("*.adoc", FileClass::Docs),
    ("*.txt", FileClass::Docs),
    ("LICENSE*", FileClass::Docs),
    ("COPYING*", FileClass::Docs),
    ("CHANGELOG*", FileClass::Docs),
    ("AUTHORS*", FileClass::Docs),
    ("NOTICE*", FileClass::Docs),
    ("CODEOWNERS", FileClass::Docs),
    (".gitignore", FileClass::Docs),
    (".gitattributes", FileClass::Docs),
    (".editorconfig", FileClass::Docs),
    // migrations
    ("**/migrations/**", FileClass::Migration),
    ("migrations/**", FileClass::Migration),
    ("**/migrate/**", FileClass::Migration),
    ("migrate/**", FileClass::Migration),
    ("**/alembic/versions/**", FileClass::Migration),
    ("V*__*.sql", FileClass::Migration),
    // build
    ("Dockerfile*", FileClass::Build),
    ("*.dockerfile", FileClass::Build),
    ("Containerfile", FileClass::Build),
    (".dockerignore", FileClass::Build),
    ("Makefile", FileClass::Build),
    ("*.mk", FileClass::Build),
    ("CMakeLists.txt", FileClass::Build),
    ("build.rs", FileClass::Build),
    ("BUILD", FileClass::Build),
    ("BUILD.bazel", FileClass::Build),
    ("WORKSPACE", FileClass::Build),
    ("*.bzl", FileClass::Build),
    ("settings.gradle*", FileClass::Build),
    ("tsconfig*.json", FileClass::Build),
    ("webpack.config.*", FileClass::Build),
    ("vite.config.*", FileClass::Build),
    ("babel.config.*", FileClass::Build),
    ("rollup.config.*", FileClass::Build),
    // templates and prompts (by extension)
    ("*.j2", FileClass::Template),
    ("*.jinja", FileClass::Template),
    ("*.jinja2", FileClass::Template),
    ("*.hbs", FileClass::Template),
    ("*.mustache", FileClass::Template),
    ("*.tmpl", FileClass::Template),
    ("*.erb", FileClass::Template),
    ("*.ejs", FileClass::Template),
    ("*.prompt", FileClass::Template),
    // configuration
    ("config/**", FileClass::Config),
    ("**/config/**", FileClass::Config),
    ("conf/**", FileClass::Config),
    ("k8s/**", FileClass::Config),
    ("helm/**", FileClass::Config),
    ("charts/**", FileClass::Config),
    (".env*", FileClass::Config),
    ("*.env", FileClass::Config),
    ("*.yaml", FileClass::Config),
    ("*.yml", FileClass::Config),
    ("*.toml", FileClass::Config),
    ("*.ini", FileClass::Config),
    ("*.cfg", FileClass::Config),
    ("*.conf", FileClass::Config),
    ("*.properties", FileClass::Config),
    ("*.json", FileClass::Config),
    ("*.xml", FileClass::Config),
    ("*.hcl", FileClass::Config),
    ("*.tf", FileClass::Config),
    // documentation assets
    ("*.png", FileClass::Docs),
    ("*.jpg", FileClass::Docs),
    ("*.jpeg", FileClass::Docs),
    ("*.gif", FileClass::Docs),
    ("*.svg", FileClass::Docs),
];

/// Extensions of source code: the `runtime` class when no rule above matched.
const CODE: &[&str] = &[
    "py", "pyx", "java", "kt", "kts", "scala", "groovy", "clj", "go", "rs", "js", "mjs", "cjs",
    "ts", "mts", "jsx", "tsx", "vue", "svelte", "rb", "php", "cs", "fs", "vb", "c", "h", "cc",
    "cpp", "cxx", "hpp", "hh", "m", "mm", "swift", "ex", "exs", "erl", "hrl", "lua", "pl", "pm",
    "r", "dart", "sh", "bash", "sql", "html", "css", "scss",
];

/// Classifies repository paths: per-repo overrides, then the defaults.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    overrides: Vec<(String, String, FileClass)>,
}

impl Classifier {
    /// Builds a classifier; an override naming an unknown class is an error
    /// that names the override (`triage.class_overrides[2].class`).
    pub fn new(overrides: &[ClassOverride]) -> crate::error::Result<Self> {
        let overrides = overrides
            .iter()
            .enumerate()
            .map(|(index, o)| {
                let class = o
                    .class
                    .parse()
                    .map_err(|source| crate::error::Error::UnknownClass { index, source })?;
                Ok((normalize_repo(&o.repo), o.pattern.clone(), class))
            })
            .collect::<crate::error::Result<_>>()?;
        Ok(Self { overrides })
    }

    /// The class of `path` in repository `repo` (any spelling: URL, `owner/name`).
    pub fn classify(&self, repo: Option<&str>, path: &str) -> FileClass {
        let repo = repo.map(normalize_repo).unwrap_or_default();
        for (r, pattern, class) in &self.overrides {
            let repo_matches =
                r == "*" || r.is_empty() || repo == *r || repo.ends_with(&format!("/{r}"));
            if repo_matches && glob_match(pattern, path) {
                return *class;
            }
        }
        default_class(path)
    }
}

/// The class of `path` under the default rules alone.
pub fn default_class(path: &str) -> FileClass {
    if let Some((_, class)) = DEFAULTS.iter().find(|(p, _)| glob_match(p, path)) {
        return *class;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if CODE.contains(&ext.as_str()) {
        FileClass::Runtime
    } else {
        FileClass::Other
    }
}

/// `git@github.com:Shop/Checkout.git`, `https://github.com/shop/checkout` →
/// `github.com/shop/checkout`: lower case, no scheme, user or `.git`.
pub fn normalize_repo(repo: &str) -> String {
    let r = repo.trim().to_ascii_lowercase();
    let r = r.split_once("://").map(|(_, rest)| rest).unwrap_or(&r);
    let r = r.split_once('@').map(|(_, rest)| rest).unwrap_or(r);
    r.replace(':', "/")
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .to_owned()
}

/// Glob match: `*` within a segment, `**` across segments, `?` one character.
/// A pattern with no `/` is matched against the file name only.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    if !pattern.contains('/') {
        let name = path.rsplit('/').next().unwrap_or(path);
        return glob(pattern.as_bytes(), name.as_bytes());
    }
    glob(pattern.as_bytes(), path.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking per level; `**` recurses
    // over every split point (patterns are short and fixed, paths bounded).
    match p.first() {
        None => s.is_empty(),
        Some(b'*') if p.get(1) == Some(&b'*') => {
            // `**/` also matches zero directories.
            let rest = &p[2..];
            let rest_after_slash = rest.strip_prefix(b"/").unwrap_or(rest);
            (0..=s.len()).any(|i| {
                (i == 0 || s[i - 1] == b'/') && glob(rest_after_slash, &s[i..])
                    || glob(rest, &s[i..])
            })
        }
        Some(b'*') => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob(&p[1..], &s[i..])),
        Some(b'?') => s.first().is_some_and(|&c| c != b'/') && glob(&p[1..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && glob(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maven_production_sources_named_like_tests_are_runtime() {
        let c = Classifier::new(&[]).unwrap();
        for p in [
            "src/main/java/org/apache/commons/math3/stat/inference/MannWhitneyUTest.java",
            "services/api/src/main/kotlin/com/shop/ChiSquareTest.kt",
        ] {
            assert_eq!(c.classify(None, p), FileClass::Runtime, "{p}");
        }
        assert_eq!(
            c.classify(None, "src/test/java/org/x/FooTest.java"),
            FileClass::Test
        );
    }

    fn class(path: &str) -> FileClass {
        default_class(path)
    }

    #[test]
    fn every_class_has_a_default_example() {
        let cases = [
            ("src/checkout/pricing.py", FileClass::Runtime),
            (
                "services/api/src/main/java/com/shop/Pricing.java",
                FileClass::Runtime,
            ),
            ("web/src/cart.tsx", FileClass::Runtime),
            ("config/production.yaml", FileClass::Config),
            ("app/settings.toml", FileClass::Config),
            (".env.production", FileClass::Config),
            ("prompts/summarize.txt", FileClass::Template),
            ("app/templates/email.html.j2", FileClass::Template),
            ("tests/test_pricing.py", FileClass::Test),
            ("src/checkout/test_pricing.py", FileClass::Test),
            ("pkg/pricing/quote_test.go", FileClass::Test),
            ("src/test/java/com/shop/PricingTest.java", FileClass::Test),
            ("web/src/cart.test.tsx", FileClass::Test),
            ("README.md", FileClass::Docs),
            ("docs/runbook.rst", FileClass::Docs),
            ("LICENSE", FileClass::Docs),
            (".github/workflows/ci.yml", FileClass::Ci),
            (".gitlab-ci.yml", FileClass::Ci),
            ("Jenkinsfile", FileClass::Ci),
            ("Dockerfile", FileClass::Build),
            ("Makefile", FileClass::Build),
            ("requirements.txt", FileClass::Dependency),
            ("package-lock.json", FileClass::Dependency),
            ("go.sum", FileClass::Dependency),
            ("services/x/Cargo.toml", FileClass::Dependency),
            ("pom.xml", FileClass::Dependency),
            ("db/migrations/0042_add_currency.py", FileClass::Migration),
            ("alembic/versions/abc_add.py", FileClass::Migration),
            (
                "src/main/resources/db/V3__add_col.sql",
                FileClass::Migration,
            ),
            ("assets/font.woff2", FileClass::Other),
        ];
        for (path, want) in cases {
            assert_eq!(class(path), want, "{path}");
        }
        // Every class appears in the table above.
        for c in FileClass::ALL {
            assert!(cases.iter().any(|(_, k)| *k == c), "no example for {c}");
        }
    }

    #[test]
    fn runtime_relevance() {
        for c in [FileClass::Test, FileClass::Docs, FileClass::Ci] {
            assert!(!c.is_runtime_relevant(), "{c}");
        }
        for c in [
            FileClass::Runtime,
            FileClass::Config,
            FileClass::Dependency,
            FileClass::Migration,
            FileClass::Template,
            FileClass::Build,
            FileClass::Other,
        ] {
            assert!(c.is_runtime_relevant(), "{c}");
        }
        assert!(FileClass::Config.acts_at_a_distance());
        assert!(!FileClass::Runtime.acts_at_a_distance());
    }

    #[test]
    fn per_repo_overrides_win_and_are_scoped() {
        let c = Classifier::new(&[
            ClassOverride {
                repo: "shop/checkout".into(),
                pattern: "scripts/**".into(),
                class: "ci".into(),
            },
            ClassOverride {
                repo: "*".into(),
                pattern: "*.snap".into(),
                class: "test".into(),
            },
        ])
        .unwrap();
        assert_eq!(
            c.classify(
                Some("git@github.com:shop/checkout.git"),
                "scripts/release.sh"
            ),
            FileClass::Ci
        );
        assert_eq!(
            c.classify(
                Some("https://github.com/shop/billing"),
                "scripts/release.sh"
            ),
            FileClass::Runtime
        );
        assert_eq!(c.classify(None, "ui/__snapshots__/a.snap"), FileClass::Test);
        let ok = ClassOverride {
            repo: "*".into(),
            pattern: "x".into(),
            class: "test".into(),
        };
        let bad = ClassOverride {
            class: "nonsense".into(),
            ..ok.clone()
        };
        let e = Classifier::new(&[ok, bad]).unwrap_err();
        assert!(
            matches!(&e, crate::error::Error::UnknownClass { index: 1, source } if source.name == "nonsense"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("triage.class_overrides[1].class: unknown file class `nonsense`"),
            "{e}"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("**/tests/**", "a/b/tests/c/d.py"));
        assert!(glob_match("tests/**", "tests/x.py"));
        assert!(!glob_match("tests/**", "src/tests.py"));
        assert!(glob_match("*.md", "docs/a/b.md"));
        assert!(glob_match("test_*.py", "src/test_x.py"));
        assert!(!glob_match("test_*.py", "src/contest_x.py"));
        assert!(glob_match("src/*/x.py", "src/a/x.py"));
        assert!(!glob_match("src/*/x.py", "src/a/b/x.py"));
        assert!(glob_match("**/x.py", "x.py"));
        assert!(glob_match("V?__*.sql", "V3__a.sql"));
    }

    #[test]
    fn repo_spellings_normalize() {
        assert_eq!(
            normalize_repo("git@github.com:Shop/Checkout.git"),
            "github.com/shop/checkout"
        );
        assert_eq!(
            normalize_repo("https://github.com/shop/checkout/"),
            "github.com/shop/checkout"
        );
    }
}
