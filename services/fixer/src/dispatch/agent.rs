//! A local CLI coding agent (`claude -p`, `codex exec -`, `aider --message-file
//! …`) run in a fresh worktree of the service's repository; whatever it changed
//! is committed, pushed and proposed as a PR.
//!
//! The agent gets the prompt on stdin and as `{prompt_file}` (written outside
//! the worktree, so it is never committed). The argv is a template with
//! validated placeholders; no shell, and nothing from the prompt's untrusted
//! parts is ever placed on the command line.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::git::Git;
use super::github::GitHub;
use super::{base_of, prompt, publish, Dispatched, FixDispatcher, Target};
use selfheal_common::config::DispatcherKind;

use crate::error::{Error, Result};
use crate::executors::command::run;
use crate::executors::template;

/// Placeholders an agent command may use.
pub const PLACEHOLDERS: [&str; 5] = ["prompt_file", "worktree", "branch", "service", "revision"];

/// Runs a local CLI agent.
#[derive(Debug, Clone)]
pub struct AgentDispatcher {
    argv: Vec<String>,
    timeout: Duration,
    git: Git,
    github: Option<GitHub>,
    branch_prefix: String,
}

impl AgentDispatcher {
    /// Checks the argv template and builds the dispatcher.
    pub fn new(
        argv: Vec<String>,
        timeout: Duration,
        git: Git,
        github: Option<GitHub>,
        branch_prefix: String,
    ) -> Result<Self> {
        template::validate(&argv, &PLACEHOLDERS)?;
        Ok(Self {
            argv,
            timeout,
            git,
            github,
            branch_prefix,
        })
    }
}

#[async_trait]
impl FixDispatcher for AgentDispatcher {
    fn kind(&self) -> DispatcherKind {
        DispatcherKind::CliAgent
    }

    async fn dispatch(
        &self,
        req: &crate::policy::FixRequest,
        target: &Target,
    ) -> Result<Dispatched> {
        let mirror = self.git.mirror(target.remote()?).await?;
        let branch = format!("{}{}", self.branch_prefix, req.action_id);
        let base = base_of(&self.git, &mirror, target, req).await?;
        let wt = self.git.worktree(&mirror, &branch, &base).await?;
        let prompt_text = prompt::build(req);
        let prompt_file = mirror
            .parent()
            .expect("mirrors/ has a parent")
            .join(format!("{}.prompt.md", req.action_id));
        let result = async {
            tokio::fs::write(&prompt_file, &prompt_text)
                .await
                .map_err(|source| Error::Io {
                    what: "writing the prompt file".to_owned(),
                    source,
                })?;
            let vars = BTreeMap::from([
                ("prompt_file", prompt_file.to_string_lossy().into_owned()),
                ("worktree", wt.to_string_lossy().into_owned()),
                ("branch", branch.clone()),
                ("service", req.service.clone()),
                ("revision", req.revision.clone()),
            ]);
            let argv = template::render(&self.argv, &vars)?;
            let out = run(&argv, Some(&wt), Some(prompt_text.as_bytes()), self.timeout).await?;
            let message = format!(
                "Fix regression in {} introduced by {} (selfheal, {})\n\n{}",
                req.service,
                req.revision,
                argv[0],
                out.lines().last().unwrap_or_default()
            );
            if !self.git.commit_all(&wt, &message).await? {
                return Err(Error::Git {
                    operation: "agent".to_owned(),
                    message: format!("the agent `{}` changed nothing", argv[0]),
                });
            }
            publish(
                &self.git,
                self.github.as_ref(),
                &wt,
                target,
                &branch,
                req,
                &format!("Fix proposed by `{}`.", argv[0]),
            )
            .await
        }
        .await;
        let _ = tokio::fs::remove_file(&prompt_file).await;
        self.git.remove_worktree(&mirror, &wt).await;
        result
    }
}
