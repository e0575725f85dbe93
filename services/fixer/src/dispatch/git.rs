//! Git plumbing for the dispatchers that change code: a bare mirror of the
//! service's repository per remote, a fresh worktree per fix, commit, push.
//!
//! Every git call is an argv (no shell). Remotes are checked (https, ssh,
//! `user@host:path` or an absolute path; never `ext::` or an option), revisions
//! and branch names must pass [`check_value`], and `--` ends option parsing
//! wherever git takes a path or URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::executors::command::run_with_env;
use crate::executors::template::check_value;

/// Runs git for one dispatcher.
#[derive(Debug, Clone)]
pub struct Git {
    workdir: PathBuf,
    author: String,
    email: String,
    token: Option<String>,
    timeout: Duration,
}

/// Checks that `remote` is a plain repository location.
pub fn check_remote(remote: &str) -> Result<()> {
    let ok_scheme = ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|s| remote.starts_with(s));
    let scp_like = !remote.contains("://")
        && remote
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') && !host.contains('/'));
    let absolute = remote.starts_with('/');
    if remote.starts_with('-') || remote.contains("::") || remote.chars().any(char::is_control) {
        return Err(Error::Config(format!("refusing git remote {remote:?}")));
    }
    if ok_scheme || scp_like || absolute {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "git remote {remote:?} is not an https/ssh/git/file URL, user@host:path or an absolute path"
        )))
    }
}

fn checked<'a>(what: &'static str, v: &'a str) -> Result<&'a str> {
    check_value(v).map_err(|why| Error::Unsafe {
        placeholder: what.to_owned(),
        value: format!("{v:?}"),
        why,
    })?;
    Ok(v)
}

impl Git {
    /// Git under `workdir` (mirrors in `mirrors/`, worktrees in `worktrees/`),
    /// committing as `author <email>`; `token` authenticates https pushes.
    pub fn new(
        workdir: PathBuf,
        author: &str,
        email: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            workdir,
            author: author.to_owned(),
            email: email.to_owned(),
            token,
            timeout,
        }
    }

    /// Runs `git args…` in `dir`.
    pub async fn git(&self, dir: &Path, args: &[&str]) -> Result<String> {
        self.git_stdin(dir, args, None).await
    }

    async fn git_stdin(&self, dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
        let mut argv: Vec<String> = [
            "git",
            "-c",
            "protocol.ext.allow=never",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            &format!("user.name={}", self.author),
            "-c",
            &format!("user.email={}", self.email),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut env = vec![("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned())];
        if let Some(token) = &self.token {
            // Passed as config through the environment: never on a URL or argv.
            env.extend([
                ("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()),
                ("GIT_CONFIG_KEY_0".to_owned(), "http.extraHeader".to_owned()),
                (
                    "GIT_CONFIG_VALUE_0".to_owned(),
                    format!(
                        "Authorization: Basic {}",
                        base64(format!("x-access-token:{token}").as_bytes())
                    ),
                ),
            ]);
        }
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        run_with_env(&argv, Some(dir), stdin, &env, self.timeout)
            .await
            .map_err(|e| match e {
                Error::Exit { output, .. } => Error::Git {
                    operation: args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
                    message: output,
                },
                other => other,
            })
    }

    fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            what: what.to_owned(),
            source,
        }
    }

    /// A bare mirror of `remote`, cloned once and fetched on every use.
    pub async fn mirror(&self, remote: &str) -> Result<PathBuf> {
        check_remote(remote)?;
        let dir = self.workdir.join("mirrors").join(format!(
            "{}.git",
            selfheal_common::ids::stable_id(&[remote])
        ));
        if dir.join("HEAD").exists() {
            self.git(
                &dir,
                &[
                    "fetch",
                    "--prune",
                    "--",
                    remote,
                    "+refs/heads/*:refs/heads/*",
                ],
            )
            .await?;
        } else {
            let parent = dir.parent().expect("mirrors/ has a parent");
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(Self::io("creating the mirrors directory"))?;
            let target = dir.to_string_lossy().into_owned();
            self.git(parent, &["clone", "--bare", "--", remote, &target])
                .await?;
        }
        Ok(dir)
    }

    /// A fresh worktree of `mirror` on a new branch `branch` starting at `base`.
    pub async fn worktree(&self, mirror: &Path, branch: &str, base: &str) -> Result<PathBuf> {
        let branch = checked("branch", branch)?;
        let base = checked("base", base)?;
        let dir = self
            .workdir
            .join("worktrees")
            .join(branch.replace('/', "-"));
        if dir.exists() {
            let _ = self
                .git(
                    mirror,
                    &[
                        "worktree",
                        "remove",
                        "--force",
                        "--",
                        &dir.to_string_lossy(),
                    ],
                )
                .await;
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        let _ = self.git(mirror, &["worktree", "prune"]).await;
        tokio::fs::create_dir_all(self.workdir.join("worktrees"))
            .await
            .map_err(Self::io("creating the worktrees directory"))?;
        self.git(
            mirror,
            &[
                "worktree",
                "add",
                "-B",
                branch,
                "--",
                &dir.to_string_lossy(),
                base,
            ],
        )
        .await?;
        Ok(dir)
    }

    /// Removes a worktree (the branch stays in the mirror).
    pub async fn remove_worktree(&self, mirror: &Path, dir: &Path) {
        if let Err(e) = self
            .git(
                mirror,
                &[
                    "worktree",
                    "remove",
                    "--force",
                    "--",
                    &dir.to_string_lossy(),
                ],
            )
            .await
        {
            tracing::warn!(error = %e, dir = %dir.display(), "could not remove worktree");
        }
    }

    /// Whether `rev` names a commit in `repo`.
    pub async fn has_commit(&self, repo: &Path, rev: &str) -> bool {
        check_value(rev).is_ok()
            && self
                .git(
                    repo,
                    &[
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        &format!("{rev}^{{commit}}"),
                    ],
                )
                .await
                .is_ok()
    }

    /// Stages everything in the worktree and commits; `false` if nothing changed.
    pub async fn commit_all(&self, wt: &Path, message: &str) -> Result<bool> {
        self.git(wt, &["add", "--all", "--", "."]).await?;
        if self.git(wt, &["diff", "--cached", "--quiet"]).await.is_ok() {
            return Ok(false);
        }
        self.git(wt, &["commit", "--quiet", "--no-verify", "-m", message])
            .await?;
        Ok(true)
    }

    /// Pushes `branch` to `remote` (force: the branch is ours and per action).
    pub async fn push(&self, wt: &Path, remote: &str, branch: &str) -> Result<()> {
        check_remote(remote)?;
        let branch = checked("branch", branch)?;
        self.git(
            wt,
            &[
                "push",
                "--force",
                "--",
                remote,
                &format!("{branch}:refs/heads/{branch}"),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Applies `patch` in reverse in the worktree.
    pub async fn apply_reverse(&self, wt: &Path, patch: &str) -> Result<()> {
        self.git_stdin(
            wt,
            &["apply", "-R", "--whitespace=nowarn", "-"],
            Some(patch.as_bytes()),
        )
        .await
        .map(|_| ())
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn remotes_are_checked() {
        for ok in [
            "https://github.com/a/b.git",
            "git@github.com:a/b.git",
            "/srv/git/b.git",
            "ssh://git@h/b",
        ] {
            assert!(check_remote(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ext::sh -c touch% /tmp/x",
            "--upload-pack=touch /tmp/x",
            "b.git",
            "fd::3",
            "relative/path",
        ] {
            assert!(check_remote(bad).is_err(), "{bad}");
        }
    }
}
