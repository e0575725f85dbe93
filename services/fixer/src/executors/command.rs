//! Rollback by running a command from an argv template, without a shell.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use selfheal_common::config::{RollbackConfig, RollbackExecutorKind};

use super::{template, RollbackExecutor};
use crate::error::{Error, Result};
use crate::policy::RollbackJob;

/// Placeholders a rollback command may use.
pub const PLACEHOLDERS: [&str; 4] = ["service", "revision", "target_revision", "action_id"];

/// Runs `rollback.command`, e.g. `kubectl rollout undo deployment/{service}`.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    argv: Vec<String>,
    timeout: Duration,
}

impl CommandExecutor {
    /// Checks the template and builds the executor.
    pub fn new(config: &RollbackConfig) -> Result<Self> {
        template::validate(&config.command, &PLACEHOLDERS)?;
        Ok(Self {
            argv: config.command.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }
}

#[async_trait]
impl RollbackExecutor for CommandExecutor {
    fn kind(&self) -> RollbackExecutorKind {
        RollbackExecutorKind::Command
    }

    async fn rollback(&self, job: &RollbackJob) -> Result<String> {
        let vars = BTreeMap::from([
            ("service", job.service.clone()),
            ("revision", job.revision.clone()),
            ("target_revision", job.target_revision.clone()),
            ("action_id", job.action_id.clone()),
        ]);
        let argv = template::render(&self.argv, &vars)?;
        let out = run(&argv, None, None, self.timeout).await?;
        Ok(format!("`{}` succeeded{}", argv.join(" "), suffix(&out)))
    }
}

fn suffix(out: &str) -> String {
    if out.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", out.trim())
    }
}

/// Runs `argv` (no shell) in `dir`, feeding `stdin`, killing it after `timeout`.
/// Returns the scrubbed tail of its combined output; a non-zero exit is an error.
pub async fn run(
    argv: &[String],
    dir: Option<&std::path::Path>,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<String> {
    run_with_env(argv, dir, stdin, &[], timeout).await
}

/// [`run`] with extra environment variables (kept off the command line, where
/// every local user could read them).
pub async fn run_with_env(
    argv: &[String],
    dir: Option<&std::path::Path>,
    stdin: Option<&[u8]>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<String> {
    use tokio::io::AsyncWriteExt;

    let program = argv[0].clone();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        program: program.clone(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        // A program that does not read its stdin must not block us.
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
        });
    }
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(r) => r.map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?,
        // Dropping the future drops the child: kill_on_drop ends it.
        Err(_) => {
            return Err(Error::Timeout {
                what: format!("`{program}`"),
                ms: timeout.as_millis() as u64,
            })
        }
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let text = tail(&crate::text::scrub(&text), 800);
    if output.status.success() {
        Ok(text)
    } else {
        Err(Error::Exit {
            program,
            status: output.status.to_string(),
            output: text,
        })
    }
}

/// The last `max` characters of `s`.
pub(crate) fn tail(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_owned();
    }
    let skip = s.char_indices().nth(n - max).map(|(i, _)| i).unwrap_or(0);
    format!("…{}", &s[skip..])
}
