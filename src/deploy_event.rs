//! `selfheal deploy`: tell selfheal about a deploy from any CI or CD step.
//!
//! Builds the intake's `deploy` record (the revision, the one it replaced,
//! the repository and, with `--diff-from`, the change's unified diff from
//! the local checkout, which is what triage reads to localize) and POSTs it
//! to `/v1/deploys`. A resend carries the same `Idempotency-Key` (a hash of
//! the record), so retrying a step that timed out records the deploy once;
//! 503s and connection errors are retried with backoff, honouring
//! `Retry-After`. A rejected record prints the intake's line/field/reason.

use std::time::Duration;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// Arguments of `selfheal deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// The intake's base URL.
    #[arg(
        long,
        env = "SELFHEAL_INGEST_URL",
        default_value = "http://127.0.0.1:4318"
    )]
    ingest: String,
    /// The service deployed (as its logs and traffic name it).
    #[arg(long)]
    service: String,
    /// The revision now serving, exactly as the service reports it
    /// (`service.version`), e.g. the commit sha.
    #[arg(long)]
    revision: String,
    /// The revision it replaced (default: what `--diff-from` resolves to).
    #[arg(long)]
    previous_revision: Option<String>,
    /// Include `git diff <REV> <revision>` from `--repo-dir` as the diff.
    #[arg(long, value_name = "REV", conflicts_with = "diff_file")]
    diff_from: Option<String>,
    /// Include this unified diff file (`-`: stdin) as the diff.
    #[arg(long, value_name = "PATH")]
    diff_file: Option<std::path::PathBuf>,
    /// The git checkout `--diff-from` runs in.
    #[arg(long, default_value = ".")]
    repo_dir: std::path::PathBuf,
    /// Lines of context in the diff (triage finds enclosing functions in it).
    #[arg(long, default_value_t = 25)]
    context_lines: u32,
    /// Repository (URL or `owner/name`), for triage's diff sources and links.
    #[arg(long)]
    repo: Option<String>,
    /// When the deploy happened (RFC 3339 or epoch ms); default: now.
    #[arg(long)]
    ts: Option<String>,
    /// Environment variable holding the intake's bearer token, if tenants
    /// are configured.
    #[arg(long, default_value = "SELFHEAL_INGEST_TOKEN")]
    token_env: String,
    /// Attempts in all (503, 5xx, connection errors and timeouts are retried).
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Print the record instead of sending it.
    #[arg(long)]
    dry_run: bool,
}

fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "`git {}` in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("git printed invalid UTF-8")
}

fn timestamp(ts: Option<&str>) -> anyhow::Result<serde_json::Value> {
    Ok(match ts {
        None => serde_json::json!(selfheal_common::wall_clock_ms()),
        Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
            serde_json::json!(t.parse::<i64>().context("--ts")?)
        }
        Some(t) => serde_json::json!(t),
    })
}

/// The record to send (one NDJSON line).
fn record(args: &DeployArgs) -> anyhow::Result<serde_json::Value> {
    let mut previous = args.previous_revision.clone();
    let diff = match (&args.diff_from, &args.diff_file) {
        (Some(from), _) => {
            let unified = format!("-U{}", args.context_lines);
            let d = git(
                &args.repo_dir,
                &[
                    "diff",
                    "--no-color",
                    "--no-ext-diff",
                    &unified,
                    from,
                    &args.revision,
                ],
            )?;
            if previous.is_none() {
                previous = Some(git(&args.repo_dir, &["rev-parse", from])?.trim().to_owned());
            }
            Some(d)
        }
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("reading the diff from stdin")?;
            Some(s)
        }
        (None, Some(p)) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        (None, None) => None,
    };
    let mut r = serde_json::json!({
        "type": "deploy",
        "ts": timestamp(args.ts.as_deref())?,
        "service": args.service,
        "revision": args.revision,
    });
    let m = r.as_object_mut().expect("an object");
    if let Some(p) = previous {
        m.insert("previous_revision".into(), p.into());
        if let Some(from) = &args.diff_from {
            m.insert(
                "commit_range".into(),
                format!("{from}..{}", args.revision).into(),
            );
        }
    }
    if let Some(repo) = &args.repo {
        m.insert("repo".into(), repo.clone().into());
    }
    if let Some(d) = diff {
        m.insert("diff".into(), d.into());
    }
    Ok(r)
}

/// The `selfheal deploy` command (its stdout is the outcome, for the CI log).
#[allow(clippy::print_stdout)]
pub(crate) async fn command(args: DeployArgs) -> anyhow::Result<()> {
    let record = record(&args)?;
    let diff_bytes = record
        .get("diff")
        .and_then(|d| d.as_str())
        .map_or(0, str::len);
    let line = record.to_string();
    if args.dry_run {
        println!("{line}");
        return Ok(());
    }
    let key = format!("deploy-{:x}", Sha256::digest(line.as_bytes()));
    let url = format!("{}/v1/deploys", args.ingest.trim_end_matches('/'));
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|t| !t.is_empty());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=args.attempts.max(1) {
        let mut req = client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", &key)
            .body(format!("{line}\n"));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let retry_in = match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                println!(
                    "deploy of {} at {} recorded ({diff_bytes} bytes of diff)",
                    args.service, args.revision,
                );
                return Ok(());
            }
            Ok(resp) if resp.status().as_u16() == 503 || resp.status().is_server_error() => {
                let after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                eprintln!("attempt {attempt}: {url} answered {}", resp.status());
                after.unwrap_or(wait)
            }
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                bail!("{url} refused the deploy record: {status}: {}", body.trim());
            }
            Err(e) => {
                eprintln!("attempt {attempt}: {url}: {e}");
                wait
            }
        };
        if attempt < args.attempts {
            tokio::time::sleep(retry_in.min(Duration::from_secs(30))).await;
            wait *= 2;
        }
    }
    bail!(
        "{url} did not take the deploy record after {} attempts",
        args.attempts
    )
}
