//! Built-in fix-forward with no LLM: undo exactly the blamed change.
//!
//! In a fresh worktree on the base branch: when triage cites changed lines and
//! the previous revision is known, the hunks of `git diff previous revision`
//! (read from the repository itself, not from the event) that contain a cited
//! line are reverse-applied, so unrelated work in the same deploy stays;
//! otherwise the blamed commit is `git revert`ed. Then push and open a PR.

use async_trait::async_trait;

use super::git::Git;
use super::github::GitHub;
use super::{base_of, prompt, publish, Dispatched, FixDispatcher, Target};
use selfheal_common::config::DispatcherKind;

use crate::error::{Error, Result};
use crate::executors::template::check_value;
use crate::policy::FixRequest;

/// The built-in revert dispatcher.
#[derive(Debug, Clone)]
pub struct RevertDispatcher {
    git: Git,
    github: Option<GitHub>,
    branch_prefix: String,
}

impl RevertDispatcher {
    /// Reverts with `git`, opening PRs through `github` when given.
    pub fn new(git: Git, github: Option<GitHub>, branch_prefix: String) -> Self {
        Self {
            git,
            github,
            branch_prefix,
        }
    }

    /// Reverse-applies the cited hunks; `Ok(None)` when there is nothing to cite.
    async fn revert_hunks(
        &self,
        mirror: &std::path::Path,
        wt: &std::path::Path,
        req: &FixRequest,
    ) -> Result<Option<String>> {
        let Some(prev) = req.previous_revision.as_deref() else {
            return Ok(None);
        };
        if req.evidence.iter().all(|e| e.line.is_none())
            || check_value(prev).is_err()
            || check_value(&req.revision).is_err()
        {
            return Ok(None);
        }
        let mut files: Vec<&str> = req
            .evidence
            .iter()
            .map(|e| e.file.as_str())
            .filter(|f| check_value(f).is_ok())
            .collect();
        files.sort_unstable();
        files.dedup();
        if files.is_empty() {
            return Ok(None);
        }
        let mut args = vec![
            "diff",
            "--no-color",
            "--no-ext-diff",
            "-U3",
            prev,
            &req.revision,
            "--",
        ];
        args.extend(files.iter().copied());
        let diff = self.git.git(mirror, &args).await?;
        let cited = prompt::cited_hunks(&diff, req);
        if cited.is_empty() || req.evidence.is_empty() {
            return Ok(None);
        }
        self.git.apply_reverse(wt, &cited).await?;
        let places: Vec<String> = req
            .evidence
            .iter()
            .filter_map(|e| e.line.map(|l| format!("{}:{l}", e.file)))
            .collect();
        Ok(Some(format!(
            "Revert the change at {} from {} (selfheal)\n\nReverse-applies the diff hunk(s) of {prev}..{} that triage blamed for the regression; the rest of the deploy is kept.",
            places.join(", "),
            req.revision,
            req.revision
        )))
    }
}

#[async_trait]
impl FixDispatcher for RevertDispatcher {
    fn kind(&self) -> DispatcherKind {
        DispatcherKind::Revert
    }

    async fn dispatch(&self, req: &FixRequest, target: &Target) -> Result<Dispatched> {
        let mirror = self.git.mirror(target.remote()?).await?;
        let branch = format!("{}{}", self.branch_prefix, req.action_id);
        let base = base_of(&self.git, &mirror, target, req).await?;
        let wt = self.git.worktree(&mirror, &branch, &base).await?;
        let result = async {
            let message = match self.revert_hunks(&mirror, &wt, req).await? {
                Some(message) => message,
                None => {
                    let blamed = req.blamed_revision.as_deref().unwrap_or(&req.revision);
                    check_value(blamed).map_err(|why| Error::Unsafe {
                        placeholder: "blamed_revision".to_owned(),
                        value: format!("{blamed:?}"),
                        why,
                    })?;
                    self.git.git(&wt, &["revert", "--no-edit", "--no-commit", blamed]).await?;
                    format!("Revert {blamed} (selfheal)\n\nTriage blamed this commit for the regression in {}.", req.service)
                }
            };
            if !self.git.commit_all(&wt, &message).await? {
                return Err(Error::Git {
                    operation: "revert".to_owned(),
                    message: "reverting changed nothing (already reverted on the base branch?)".to_owned(),
                });
            }
            let summary = message.lines().next().unwrap_or_default().to_owned();
            publish(&self.git, self.github.as_ref(), &wt, target, &branch, req, &summary).await
        }
        .await;
        self.git.remove_worktree(&mirror, &wt).await;
        result
    }
}
