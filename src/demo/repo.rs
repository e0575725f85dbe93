//! The demo service's source: a local git repository with history, a bare
//! repository as its "remote", and the deploy script that runs a revision.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The demo service's files, as shipped in `examples/demo-service/` (revision A).
const APP: &str = include_str!("../../examples/demo-service/app.py");
const PRICING: &str = include_str!("../../examples/demo-service/src/shop/pricing.py");
const PAYMENTS: &str = include_str!("../../examples/demo-service/src/shop/payments.py");
const INIT: &str = include_str!("../../examples/demo-service/src/shop/__init__.py");
const README: &str = include_str!("../../examples/demo-service/README.md");
/// The deploy script (an ops tool, kept outside the service's repository).
const DEPLOY_SH: &str = include_str!("../../examples/demo-service/deploy.sh");

/// A commit made to the demo service: a message and exact text replacements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    /// Commit message.
    pub(crate) message: &'static str,
    /// (path, old text, new text); the old text must occur exactly once.
    pub(crate) edits: &'static [(&'static str, &'static str, &'static str)],
}

/// Revision B: a wrong default currency (`"usd"` is not a key of `RATES`), so
/// every quote that does not name a currency raises `KeyError: 'usd'`.
pub(crate) const WRONG_DEFAULT: Change = Change {
    message: "pricing: default currency in lower case, like the storefront sends it",
    edits: &[(
        "src/shop/pricing.py",
        "total = convert(subtotal, params.get(\"currency\", \"USD\"))",
        "total = convert(subtotal, params.get(\"currency\", \"usd\"))",
    )],
};

/// Revision B of the slow-query scenario: every conversion reloads the
/// exchange rates from the rates table, an 80 ms round trip per quote that
/// raises no error at all: only latency shows it.
pub(crate) const SLOW_QUERY: Change = Change {
    message: "pricing: always use fresh exchange rates",
    edits: &[(
        "src/shop/pricing.py",
        "return round(amount_usd * RATES[currency], 2)",
        "return round(amount_usd * load_rates()[currency], 2)",
    )],
};

/// A docs-only change: it cannot break the running service.
pub(crate) const DOCS_ONLY: Change = Change {
    message: "docs: describe the quote endpoint",
    edits: &[(
        "README.md",
        "A tiny pricing API",
        "`GET /quote?items=N&currency=EUR` prices N items (USD when no currency is\ngiven). A tiny pricing API",
    )],
};

/// The demo's directory: `repo/` (working clone), `remote.git` (bare
/// "remote"), `deploy.sh`, `releases/<rev>/`, `run/` (env, pid, logs).
#[derive(Debug, Clone)]
pub(crate) struct DemoRepo {
    pub(crate) dir: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) remote: PathBuf,
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    Ok(run_raw(cmd)?.trim_end().to_owned())
}

/// [`run`] without trimming: a diff's last context line may be blank.
fn run_raw(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

impl DemoRepo {
    /// Creates the repository with a short history (revision A at the tip),
    /// its bare remote, and the deploy script, under `dir`.
    pub(crate) fn create(dir: &Path) -> anyhow::Result<Self> {
        let repo = Self {
            dir: dir.to_owned(),
            work: dir.join("repo"),
            remote: dir.join("remote.git"),
        };
        std::fs::create_dir_all(&repo.work)?;
        std::fs::create_dir_all(dir.join("run"))?;
        std::fs::create_dir_all(dir.join("releases"))?;
        write(&dir.join("deploy.sh"), DEPLOY_SH)?;
        run(Command::new("git").arg("init").arg("-q").arg(&repo.work))?;
        repo.git(&["symbolic-ref", "HEAD", "refs/heads/main"])?;
        write(&repo.work.join("app.py"), APP)?;
        write(&repo.work.join("src/shop/__init__.py"), INIT)?;
        write(&repo.work.join("src/shop/pricing.py"), PRICING)?;
        repo.commit("shop: pricing API with currency conversion")?;
        write(&repo.work.join("src/shop/payments.py"), PAYMENTS)?;
        repo.commit("payments: pre-authorize every quote with payments-api")?;
        write(&repo.work.join("README.md"), README)?;
        repo.commit("docs: README")?;
        run(Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&repo.remote))?;
        repo.git(&["remote", "add", "origin", &repo.remote.to_string_lossy()])?;
        repo.git(&["push", "-q", "origin", "main"])?;
        Ok(repo)
    }

    /// Runs git in the working clone.
    pub(crate) fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        Ok(self.git_raw(args)?.trim_end().to_owned())
    }

    /// [`DemoRepo::git`]'s output as it is (not trimmed).
    fn git_raw(&self, args: &[&str]) -> anyhow::Result<String> {
        run_raw(
            Command::new("git")
                .arg("-C")
                .arg(&self.work)
                .args([
                    "-c",
                    "user.name=Demo Developer",
                    "-c",
                    "user.email=dev@shop.example",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args),
        )
    }

    fn commit(&self, message: &str) -> anyhow::Result<()> {
        self.git(&["add", "--all"])?;
        self.git(&["commit", "-q", "-m", message])?;
        Ok(())
    }

    /// The abbreviated id of the tip of `main`.
    pub(crate) fn head(&self) -> anyhow::Result<String> {
        self.git(&["rev-parse", "--short=12", "HEAD"])
    }

    /// Commits `change` on `main`, pushes it to the remote, returns the revision.
    pub(crate) fn commit_change(&self, change: &Change) -> anyhow::Result<String> {
        for (path, old, new) in change.edits {
            let file = self.work.join(path);
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            if text.matches(old).count() != 1 {
                bail!("{path}: expected exactly one {old:?}");
            }
            write(&file, &text.replacen(old, new, 1))?;
        }
        self.commit(change.message)?;
        self.git(&["push", "-q", "origin", "main"])?;
        self.head()
    }

    /// `git diff from..to`, as a deploy pipeline would attach it.
    pub(crate) fn diff(&self, from: &str, to: &str) -> anyhow::Result<String> {
        self.git_raw(&["diff", "--no-color", "--no-ext-diff", from, to])
    }

    /// The argv that deploys a revision (`{target_revision}` as a fixer template).
    pub(crate) fn deploy_argv(&self, revision: &str) -> Vec<String> {
        vec![
            "sh".to_owned(),
            self.dir.join("deploy.sh").to_string_lossy().into_owned(),
            self.dir.to_string_lossy().into_owned(),
            revision.to_owned(),
        ]
    }

    /// Runs the deploy script for `revision` (blocking until it serves).
    pub(crate) fn deploy(&self, revision: &str) -> anyhow::Result<String> {
        let argv = self.deploy_argv(revision);
        run(Command::new(&argv[0]).args(&argv[1..]))
    }

    /// Writes `run/env`, read by the deploy script.
    pub(crate) fn write_env(&self, port: u16, python: &str) -> anyhow::Result<()> {
        write(
            &self.dir.join("run/env"),
            &format!(
                "DEMO_PORT={port}\nDEMO_OWNER_PID={}\nDEMO_PYTHON={python}\n",
                std::process::id()
            ),
        )
    }

    /// Sets the simulated payments-api upstream's failure rate.
    pub(crate) fn set_upstream_failure_rate(&self, rate: f64) -> anyhow::Result<()> {
        write(&self.dir.join("run/upstream"), &format!("{rate}\n"))
    }

    /// The service's log file (JSON lines), tailed by the shipper.
    pub(crate) fn service_log(&self) -> PathBuf {
        self.dir.join("run/service.log")
    }

    /// Stops the running service, if any.
    pub(crate) fn stop_service(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("run/service.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}
