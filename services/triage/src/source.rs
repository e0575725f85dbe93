//! Getting a deploy's diff when it is not inline on the Deploy event (adapter).
//!
//! Sources, tried in order for a deploy of service `S` with revisions
//! `previous..revision`:
//! 1. a local clone or mirror configured in `triage.git_repos` under `S` (or
//!    under the Deploy's `repo` as spelled there): `git diff previous revision`,
//!    run directly (argv, never a shell) with revisions validated first;
//! 2. the GitHub compare API for the `owner/repo` in `triage.github_repos`
//!    under `S`, with the token from `triage.github_token_env`.
//!
//! `diff_url` from events is **not** fetched: an arbitrary URL from a message
//! would let any producer make triage call internal hosts.
//!
//! Results (diffs and failures alike) are cached per deploy; a fetch started
//! when the Deploy arrives is shared with the regression that later needs it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use selfheal_schemas::Deploy;

/// A diff, or why it could not be obtained.
pub type Fetched = Result<Arc<str>, SourceError>;

/// Why a deploy's diff could not be obtained. `Clone` because one fetch is
/// shared by every regression that waits for it (the causes sit in `Arc`s).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The whole fetch took longer than `triage.diff_timeout_ms`.
    #[error("fetching the diff timed out after {ms} ms")]
    TimedOut {
        /// The timeout, in milliseconds.
        ms: u128,
    },
    /// Neither `triage.git_repos` nor `triage.github_repos` names the service.
    #[error("no git mirror or GitHub repository configured for service `{service}`")]
    NotConfigured {
        /// The deploy's service.
        service: String,
    },
    /// A revision name that could be read as a git option or range.
    #[error("refusing revision name {0:?}")]
    BadRevision(String),
    /// `triage.github_repos` holds something other than `owner/repo`.
    #[error("`{0}` is not an owner/repo name")]
    BadRepo(String),
    /// The compare request failed before a response.
    #[error("GitHub compare {repo} {range}: {source}")]
    GitHubRequest {
        /// `owner/repo`.
        repo: String,
        /// `base...head`.
        range: String,
        /// The HTTP client's error.
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// The compare API answered with an error status.
    #[error("GitHub compare {repo} {range}: HTTP {status}")]
    GitHubStatus {
        /// `owner/repo`.
        repo: String,
        /// `base...head`.
        range: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The compare response's body could not be read.
    #[error("GitHub compare {repo}: reading the body: {source}")]
    GitHubBody {
        /// `owner/repo`.
        repo: String,
        /// The HTTP client's error.
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// `git` could not be started.
    #[error("cannot run git in {path}: {source}")]
    GitSpawn {
        /// The mirror's path.
        path: String,
        /// The spawn error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// `git diff` outlived the timeout.
    #[error("git diff in {path} timed out")]
    GitTimedOut {
        /// The mirror's path.
        path: String,
    },
    /// `git diff` exited with an error.
    #[error("git diff {previous} {revision} in {path} failed: {stderr}")]
    GitFailed {
        /// The base revision.
        previous: String,
        /// The deployed revision.
        revision: String,
        /// The mirror's path.
        path: String,
        /// The first line of git's stderr.
        stderr: String,
    },
    /// The synchronous stage has no multi-threaded runtime to fetch on.
    #[error("no multi-threaded runtime to fetch on")]
    NoRuntime,
}

type Pending = Shared<BoxFuture<'static, Fetched>>;

/// Settings of the diff sources.
#[derive(Debug, Clone, Default)]
pub struct SourceConfig {
    /// Local clones/mirrors by service (or repository spelling).
    pub git_repos: BTreeMap<String, String>,
    /// GitHub `owner/repo` by service.
    pub github_repos: BTreeMap<String, String>,
    /// GitHub REST API base URL.
    pub github_api_url: String,
    /// GitHub token.
    pub github_token: Option<String>,
    /// Timeout of one fetch.
    pub timeout: Duration,
    /// `git diff -U<n>` for local mirrors.
    pub context_lines: u32,
    /// Deploys whose result is cached.
    pub cache_size: usize,
}

/// Fetches and caches diffs.
#[derive(Clone)]
pub struct DiffSource {
    config: Arc<SourceConfig>,
    client: reqwest::Client,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for DiffSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffSource")
            .field("git_repos", &self.config.git_repos)
            .field("github_repos", &self.config.github_repos)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    entries: BTreeMap<(String, String), Pending>,
    order: VecDeque<(String, String)>,
}

impl DiffSource {
    /// A source; `None` when no git repository or GitHub repository is configured.
    pub fn new(config: SourceConfig) -> Option<Self> {
        if config.git_repos.is_empty() && config.github_repos.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent("selfheal-triage")
            .build()
            .ok()?;
        Some(Self {
            config: Arc::new(config),
            client,
            cache: Arc::new(Mutex::new(Cache::default())),
        })
    }

    /// Starts fetching `d`'s diff in the background (once per deploy). Needs a
    /// Tokio runtime; without one this is a no-op and [`DiffSource::get`]
    /// fetches on demand.
    pub fn prefetch(&self, d: &Deploy) {
        let fut = self.entry(d);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = fut.await;
            });
        }
    }

    /// The diff of `d`: cached, in flight, or fetched now, bounded by the timeout.
    pub async fn get(&self, d: &Deploy) -> Fetched {
        let fut = self.entry(d);
        match tokio::time::timeout(self.config.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::TimedOut {
                ms: self.config.timeout.as_millis(),
            }),
        }
    }

    fn entry(&self, d: &Deploy) -> Pending {
        let key = (
            d.service.clone(),
            format!(
                "{}..{}",
                d.previous_revision.as_deref().unwrap_or_default(),
                d.revision
            ),
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.entries.get(&key) {
            return p.clone();
        }
        let this = self.clone();
        let deploy = d.clone();
        let fut: Pending = async move { this.fetch(&deploy).await }.boxed().shared();
        cache.entries.insert(key.clone(), fut.clone());
        cache.order.push_back(key);
        while cache.order.len() > self.config.cache_size.max(1) {
            if let Some(old) = cache.order.pop_front() {
                cache.entries.remove(&old);
            }
        }
        fut
    }

    async fn fetch(&self, d: &Deploy) -> Fetched {
        let revision = checked_rev(&d.revision)?;
        let previous = match &d.previous_revision {
            Some(p) => checked_rev(p)?,
            None => format!("{revision}^"),
        };
        let git = self
            .config
            .git_repos
            .get(&d.service)
            .or_else(|| d.repo.as_ref().and_then(|r| self.config.git_repos.get(r)));
        if let Some(path) = git {
            return git_diff(path, &previous, &revision, &self.config).await;
        }
        if let Some(repo) = self.config.github_repos.get(&d.service) {
            return self.github_compare(repo, &previous, &revision).await;
        }
        Err(SourceError::NotConfigured {
            service: d.service.clone(),
        })
    }

    async fn github_compare(&self, repo: &str, base: &str, head: &str) -> Fetched {
        if !repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
            || repo.matches('/').count() != 1
        {
            return Err(SourceError::BadRepo(repo.to_owned()));
        }
        let url = format!(
            "{}/repos/{repo}/compare/{base}...{head}",
            self.config.github_api_url.trim_end_matches('/')
        );
        let mut req = self
            .client
            .get(&url)
            .header("Accept", "application/vnd.github.diff")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &self.config.github_token {
            req = req.bearer_auth(token);
        }
        let range = format!("{base}...{head}");
        let resp = req.send().await.map_err(|e| SourceError::GitHubRequest {
            repo: repo.to_owned(),
            range: range.clone(),
            source: Arc::new(e),
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(SourceError::GitHubStatus {
                repo: repo.to_owned(),
                range,
                status,
            });
        }
        resp.text()
            .await
            .map(Arc::from)
            .map_err(|e| SourceError::GitHubBody {
                repo: repo.to_owned(),
                source: Arc::new(e),
            })
    }
}

/// Accepts revision names git would take as a commit-ish and nothing that could
/// be read as an option (`-…`) or a range; the command is run without a shell
/// anyway, this keeps odd names from becoming git flags.
fn checked_rev(rev: &str) -> Result<String, SourceError> {
    let ok = !rev.is_empty()
        && rev.len() <= 255
        && !rev.starts_with('-')
        && !rev.contains("..")
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '^' | '~'));
    if ok {
        Ok(rev.to_owned())
    } else {
        Err(SourceError::BadRevision(rev.to_owned()))
    }
}

/// `git -C path diff --no-color --no-ext-diff -M -U<n> previous revision --`.
async fn git_diff(path: &str, previous: &str, revision: &str, config: &SourceConfig) -> Fetched {
    let timeout = config.timeout;
    let context = format!("-U{}", config.context_lines.max(3));
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(path)
        .args([
            "diff",
            "--no-color",
            "--no-ext-diff",
            "-M",
            &context,
            previous,
            revision,
            "--",
        ])
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(SourceError::GitSpawn {
                path: path.to_owned(),
                source: Arc::new(e),
            })
        }
        Err(_) => {
            return Err(SourceError::GitTimedOut {
                path: path.to_owned(),
            })
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(SourceError::GitFailed {
            previous: previous.to_owned(),
            revision: revision.to_owned(),
            path: path.to_owned(),
            stderr: err.lines().next().unwrap_or("").trim().to_owned(),
        });
    }
    Ok(Arc::from(String::from_utf8_lossy(&out.stdout).as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn deploy(prev: Option<&str>, rev: &str) -> Deploy {
        Deploy {
            revision: rev.into(),
            previous_revision: prev.map(str::to_owned),
            diff: None,
            deployed_at_ms: 0,
            ..selfheal_schemas::testing::deploy()
        }
    }

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[tokio::test]
    async fn git_mirror_diffs_carry_the_enclosing_function_in_their_context() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        let body: Vec<String> = (0..12)
            .map(|i| format!("        int v{i} = a + {i};"))
            .collect();
        let file = |last: &str| {
            format!(
                "public class Pricing extends Base {{\n    public int quote(int a) {{\n{}\n        return {last};\n    }}\n}}\n",
                body.join("\n")
            )
        };
        std::fs::write(dir.path().join("Pricing.java"), file("v11")).unwrap();
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-qm", "one"]);
        let a = git(dir.path(), &["rev-parse", "HEAD"]);
        std::fs::write(dir.path().join("Pricing.java"), file("v10")).unwrap();
        git(dir.path(), &["commit", "-qam", "two"]);
        let b = git(dir.path(), &["rev-parse", "HEAD"]);
        let fetch = |context_lines| {
            DiffSource::new(SourceConfig {
                git_repos: [("checkout".to_owned(), dir.path().display().to_string())].into(),
                timeout: Duration::from_secs(10),
                cache_size: 4,
                context_lines,
                ..SourceConfig::default()
            })
            .unwrap()
        };
        let d = deploy(Some(&a), &b);
        let wide = crate::diff::parse(&fetch(25).get(&d).await.unwrap());
        let names: Vec<String> = crate::functions::changed_functions(&wide[0])
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert!(
            !names.is_empty() && names.iter().all(|n| n == "quote"),
            "{names:?}"
        );
        // git's default 3 lines show neither the method nor a useful header.
        let narrow = crate::diff::parse(&fetch(3).get(&d).await.unwrap());
        assert!(crate::functions::changed_functions(&narrow[0]).is_empty());
    }

    #[tokio::test]
    async fn git_mirror_diff_and_cache() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/pricing.py"), "a\nb\nc\n").unwrap();
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-qm", "one"]);
        let a = git(dir.path(), &["rev-parse", "HEAD"]);
        std::fs::write(dir.path().join("src/pricing.py"), "a\nB\nc\n").unwrap();
        git(dir.path(), &["commit", "-qam", "two"]);
        let b = git(dir.path(), &["rev-parse", "HEAD"]);

        let src = DiffSource::new(SourceConfig {
            git_repos: [("checkout".to_owned(), dir.path().display().to_string())].into(),
            timeout: Duration::from_secs(10),
            cache_size: 4,
            ..SourceConfig::default()
        })
        .unwrap();
        let d = deploy(Some(&a), &b);
        src.prefetch(&d);
        let diff = src.get(&d).await.unwrap();
        let files = crate::diff::parse(&diff);
        assert_eq!(files[0].path(), "src/pricing.py");
        assert_eq!(
            files[0].hunks[0].added().collect::<Vec<_>>(),
            vec![(2, "B")]
        );
        // Without a previous revision: the commit's own change.
        let d2 = deploy(None, &b);
        assert!(src.get(&d2).await.unwrap().contains("+B"));
        // Bad names never reach git.
        let err = src
            .get(&deploy(Some("--output=/tmp/x"), &b))
            .await
            .unwrap_err();
        assert!(matches!(err, SourceError::BadRevision(_)), "{err}");
        assert!(err.to_string().contains("refusing"), "{err}");
        let err = src.get(&deploy(Some(&a), "deadbeef")).await.unwrap_err();
        assert!(matches!(err, SourceError::GitFailed { .. }), "{err}");
        assert!(err.to_string().contains("failed"), "{err}");
    }

    #[tokio::test]
    async fn github_compare_api_stand_in() {
        use axum::extract::Path;
        use axum::http::HeaderMap;
        use axum::routing::get;
        // A local server speaking the GitHub compare API, standing in for GitHub.
        let app = axum::Router::new().route(
            "/repos/{owner}/{repo}/compare/{range}",
            get(|Path((owner, repo, range)): Path<(String, String, String)>, headers: HeaderMap| async move {
                assert_eq!(headers["authorization"], "Bearer t0ken");
                assert_eq!(headers["accept"], "application/vnd.github.diff");
                format!("--- a/{owner}/{repo}.py\n+++ b/{owner}/{repo}.py\n@@ -1 +1 @@\n-{range}\n+x\n")
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let src = DiffSource::new(SourceConfig {
            github_repos: [("checkout".to_owned(), "shop/checkout".to_owned())].into(),
            github_api_url: format!("http://{addr}"),
            github_token: Some("t0ken".into()),
            timeout: Duration::from_secs(5),
            cache_size: 4,
            ..SourceConfig::default()
        })
        .unwrap();
        let diff = src.get(&deploy(Some("a1"), "b2")).await.unwrap();
        assert!(diff.contains("-a1...b2"), "{diff}");
        assert!(diff.contains("shop/checkout.py"));
    }
}
