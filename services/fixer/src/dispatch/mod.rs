//! Fix-forward dispatchers: hand a fix to a coding agent, or make it ourselves.
//!
//! Each is one [`FixDispatcher`]; the adapter runs the configured one off the
//! consumer's hot path and publishes its outcome as an update of the action
//! (`pr_url` when a PR was opened; the issue URL, session id or branch in the
//! reasons).
//!
//! # Layout
//! - [`prompt`]: the investigation prompt; untrusted text scrubbed and fenced.
//! - [`github`]: GitHub API (issues, `repository_dispatch`, PRs) and the issue
//!   and repository-dispatch dispatchers.
//! - [`opencode`]: an OpenCode headless server session.
//! - [`git`]: mirrors, worktrees, commit, push (argv only, checked inputs).
//! - [`agent`]: a local CLI agent in a fresh worktree, then push + PR.
//! - [`revert`]: built-in, no LLM: reverse-apply the blamed hunk (or `git
//!   revert` the blamed commit) in a worktree, then push + PR.

pub mod agent;
pub mod git;
pub mod github;
pub mod opencode;
pub mod prompt;
pub mod revert;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use selfheal_common::config::{DispatcherKind, FixerConfig};

use crate::error::{Error, Result};
use crate::policy::FixRequest;

/// What a dispatch achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    /// The fix PR, when one was opened.
    pub pr_url: Option<String>,
    /// What to look at: issue URL, session id, branch.
    pub reference: String,
}

/// Where a service's code lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Git remote (URL or absolute path).
    pub remote: Option<String>,
    /// `owner/name` on GitHub.
    pub github_repo: Option<String>,
    /// Branch PRs target.
    pub base_branch: String,
}

impl Target {
    /// The service's settings, falling back to the deploy's `repo` (and the
    /// GitHub `owner/name` it names, if it is a GitHub URL).
    pub fn resolve(config: &FixerConfig, req: &FixRequest) -> Self {
        let svc = config
            .services
            .get(&req.service)
            .cloned()
            .unwrap_or_default();
        let remote = svc.repo.or_else(|| req.repo.clone());
        let github_repo = svc
            .github_repo
            .or_else(|| remote.as_deref().and_then(github_repo_of));
        Self {
            remote,
            github_repo,
            base_branch: svc.base_branch,
        }
    }

    /// The GitHub repository, or an error saying how to configure it.
    pub fn github_repo(&self) -> Result<&str> {
        self.github_repo.as_deref().ok_or_else(|| {
            Error::Config("no GitHub repository: set fixer.services.<name>.github_repo".to_owned())
        })
    }

    /// The git remote, or an error saying how to configure it.
    pub fn remote(&self) -> Result<&str> {
        self.remote.as_deref().ok_or_else(|| {
            Error::Config(
                "no repository: the deploy has no `repo`; set fixer.services.<name>.repo"
                    .to_owned(),
            )
        })
    }
}

/// `owner/name` of a github.com URL (`https://github.com/o/n(.git)`, `git@github.com:o/n`).
pub fn github_repo_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let (owner, name) = rest.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (ok(owner) && ok(name)).then(|| format!("{owner}/{name}"))
}

/// Hands a fix to an agent, or makes it.
#[async_trait]
pub trait FixDispatcher: Send + Sync {
    /// Which `dispatch.dispatcher` this is; its name comes from the kind.
    fn kind(&self) -> DispatcherKind;

    /// The name recorded in `Action.executor`, the one the policy planned
    /// with ([`DispatcherKind::executor_name`]).
    fn name(&self) -> &'static str {
        self.kind().executor_name().unwrap_or("none")
    }

    /// Dispatches once (no retries).
    async fn dispatch(&self, req: &FixRequest, target: &Target) -> Result<Dispatched>;
}

/// The configured dispatcher, or `None` (`dispatcher = "none"`).
pub fn from_config(config: &FixerConfig) -> Result<Option<Arc<dyn FixDispatcher>>> {
    let d = &config.dispatch;
    let http = Duration::from_millis(d.http_timeout_ms);
    let workdir = if d.workdir.is_empty() {
        std::env::temp_dir().join("selfheal-fixer")
    } else {
        PathBuf::from(&d.workdir)
    };
    let git = || {
        git::Git::new(
            workdir.clone(),
            &d.git_author,
            &d.git_email,
            std::env::var(&d.github_token_env)
                .ok()
                .filter(|t| !t.is_empty()),
            Duration::from_millis(d.agent_timeout_ms.min(600_000)),
        )
    };
    Ok(match d.dispatcher {
        DispatcherKind::None => None,
        DispatcherKind::GithubIssue => Some(Arc::new(github::IssueDispatcher {
            github: github::GitHub::from_config(d)?,
            labels: d.github_labels.clone(),
            assignees: d.github_assignees.clone(),
        })),
        DispatcherKind::RepositoryDispatch => Some(Arc::new(github::RepositoryDispatcher {
            github: github::GitHub::from_config(d)?,
            event_type: d.github_event_type.clone(),
        })),
        DispatcherKind::Opencode => Some(Arc::new(opencode::OpenCodeDispatcher::new(
            &d.opencode_url,
            http,
            Duration::from_millis(d.agent_timeout_ms),
        )?)),
        DispatcherKind::CliAgent => Some(Arc::new(agent::AgentDispatcher::new(
            d.agent_command.clone(),
            Duration::from_millis(d.agent_timeout_ms),
            git(),
            Some(github::GitHub::from_config(d)?),
            d.branch_prefix.clone(),
        )?)),
        DispatcherKind::Revert => Some(Arc::new(revert::RevertDispatcher::new(
            git(),
            Some(github::GitHub::from_config(d)?),
            d.branch_prefix.clone(),
        ))),
    })
}

/// Pushes `branch` and opens a PR when a GitHub repository is known.
pub(crate) async fn publish(
    git: &git::Git,
    github: Option<&github::GitHub>,
    wt: &std::path::Path,
    target: &Target,
    branch: &str,
    req: &FixRequest,
    summary: &str,
) -> Result<Dispatched> {
    git.push(wt, target.remote()?, branch).await?;
    match (github, target.github_repo.as_deref()) {
        (Some(gh), Some(repo)) => {
            let body = format!(
                "{summary}\n\nOpened by selfheal for action `{}`.\n\n{}",
                req.action_id,
                prompt::build(req)
            );
            let url = gh
                .create_pull(
                    repo,
                    &prompt::title(req),
                    branch,
                    &target.base_branch,
                    &body,
                )
                .await?;
            Ok(Dispatched {
                pr_url: Some(url),
                reference: format!("branch {branch}"),
            })
        }
        _ => Ok(Dispatched {
            pr_url: None,
            reference: format!("branch {branch} pushed (no GitHub repository configured for a PR)"),
        }),
    }
}

/// The base a fix branch starts from: the base branch if the mirror has it,
/// else the regressed revision itself.
pub(crate) async fn base_of(
    git: &git::Git,
    mirror: &std::path::Path,
    target: &Target,
    req: &FixRequest,
) -> Result<String> {
    if git
        .has_commit(mirror, &format!("refs/heads/{}", target.base_branch))
        .await
    {
        Ok(target.base_branch.clone())
    } else if git.has_commit(mirror, &req.revision).await {
        Ok(req.revision.clone())
    } else {
        Err(Error::Git {
            operation: "find base".to_owned(),
            message: format!(
                "neither branch {} nor revision {} is in the repository",
                target.base_branch, req.revision
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_repo_from_urls() {
        assert_eq!(
            github_repo_of("https://github.com/shop/checkout.git").as_deref(),
            Some("shop/checkout")
        );
        assert_eq!(
            github_repo_of("git@github.com:shop/checkout").as_deref(),
            Some("shop/checkout")
        );
        assert_eq!(github_repo_of("https://gitlab.com/shop/checkout"), None);
        assert_eq!(github_repo_of("https://github.com/shop/x?y"), None);
    }
}
