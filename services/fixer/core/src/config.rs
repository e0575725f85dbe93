//! The fixer's configuration (`[fixer]`) and its domain enums: remediation
//! rules, severities, rollback executors and fix-forward dispatchers.
//!
//! They live here, beside the policy that reads them, so adding a rollback
//! executor or a dispatcher is a change to this crate and the fixer's adapter
//! only. `selfheal_common::config` re-exports every type, so the one
//! `selfheal.toml` still parses into one `selfheal_common::Config` (unknown
//! keys rejected, environment overrides applied there).

use std::collections::BTreeMap;

use selfheal_common_core::ranges::{CheckRanges, Ranges};
use serde::{Deserialize, Serialize};

/// Settings of the fixer service: the remediation rules, safety rails, the
/// rollback executor, the recovery check and the fix-forward dispatcher.
///
/// Durations are milliseconds of **event time** where they govern decisions
/// (cooldowns, recovery windows, dispatch caps), so a backtest replays exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixerConfig {
    /// Decide and record actions without executing them. On by default: a fresh
    /// install must never roll anything back or open a PR on its own.
    pub dry_run: bool,
    /// Default SLO (success ratio, e.g. 0.999) for services without their own; its
    /// error budget is `1 - slo`.
    pub default_slo: f64,
    /// A regression burning the error budget at least this many times faster than
    /// sustainable is high severity (14.4 spends 2% of a 30-day budget in an hour).
    pub fast_burn_rate: f64,
    /// Below this burn rate the regression is low severity: the error budget
    /// lasts its period (1.0 = exactly sustainable); between the two, medium.
    pub slow_burn_rate: f64,
    /// A new signature whose exception type or template contains one of these
    /// (case-insensitive) is a crash, and high severity even without traffic data.
    pub crash_markers: Vec<String>,
    /// After a rollback or fix-forward on a service, further ones on the same
    /// service within this many ms notify instead.
    pub cooldown_ms: i64,
    /// Fix-forward dispatches still planned or in progress at once, fleet-wide;
    /// beyond it a fix-forward becomes a notification.
    pub max_concurrent_agent_runs: usize,
    /// Fix-forward dispatches per hour of event time, fleet-wide; beyond it a
    /// fix-forward becomes a notification.
    pub max_dispatches_per_hour: usize,
    /// The rule table, first match wins. Every action records the rule's name.
    pub rules: Vec<FixerRule>,
    /// How rollbacks are carried out.
    pub rollback: RollbackConfig,
    /// How recovery after a rollback is verified.
    pub recovery: RecoveryConfig,
    /// How fix-forwards are dispatched to a coding agent.
    pub dispatch: DispatchConfig,
    /// Per-service settings, keyed by service name.
    pub services: BTreeMap<String, FixerServiceConfig>,
    /// When a rollback's recovery check fails (the errors go on on the previous
    /// revision) and triage revises the incident to `not_caused`, roll the
    /// service forward again to the revision it was rolled back from. Off by
    /// default: a notification says so instead, once.
    pub restore_after_failed_rollback: bool,
    /// When the previous revision is itself flagged (it regressed, was blamed
    /// or was rolled back), roll back past it to the latest earlier revision
    /// that is not, at most this many revisions back (the "last known good"
    /// of Argo Rollouts and Spinnaker). 0: never skip; the incident is then
    /// fixed forward or paged.
    pub max_rollback_skip: u32,
    /// Where actions are announced (Slack, PagerDuty, a signed webhook).
    pub notify: NotifyConfig,
}

/// Notification sinks for actions (`[fixer.notify]`). Each sink is on when
/// its URL (or routing key) is set; every action update other than
/// `in_progress` and `none` is sent to every sink, off the consumer's path,
/// with `retries` for 5xx/429/timeouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Slack-compatible incoming webhook URL (`{"text": …}`); empty: off.
    pub slack_webhook_url: String,
    /// Environment variable holding the PagerDuty Events API v2 routing key;
    /// empty: off.
    pub pagerduty_routing_key_env: String,
    /// The PagerDuty Events API v2 endpoint.
    pub pagerduty_url: String,
    /// Generic webhook URL: the action as JSON, HMAC-signed like the rollback
    /// webhook (`X-Selfheal-Signature: sha256=…`); empty: off.
    pub webhook_url: String,
    /// Environment variable holding the generic webhook's HMAC secret.
    pub webhook_secret_env: String,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u64,
    /// Retries of a retryable failure, with doubling backoff from `backoff_ms`.
    pub retries: u32,
    /// First backoff in milliseconds.
    pub backoff_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            slack_webhook_url: String::new(),
            pagerduty_routing_key_env: String::new(),
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".to_owned(),
            webhook_url: String::new(),
            webhook_secret_env: "SELFHEAL_NOTIFY_WEBHOOK_SECRET".to_owned(),
            timeout_ms: 10_000,
            retries: 3,
            backoff_ms: 1_000,
        }
    }
}

impl Default for FixerConfig {
    fn default() -> Self {
        Self {
            dry_run: true,
            default_slo: 0.999,
            fast_burn_rate: 14.4,
            slow_burn_rate: 1.0,
            crash_markers: [
                "panic",
                "segmentation fault",
                "sigsegv",
                "outofmemory",
                "oomkilled",
                "fatal error",
                "core dumped",
                "stack overflow",
            ]
            .map(str::to_owned)
            .to_vec(),
            cooldown_ms: 30 * 60_000,
            max_concurrent_agent_runs: 2,
            max_dispatches_per_hour: 6,
            rules: FixerRule::defaults(),
            rollback: RollbackConfig::default(),
            recovery: RecoveryConfig::default(),
            dispatch: DispatchConfig::default(),
            services: BTreeMap::new(),
            restore_after_failed_rollback: false,
            max_rollback_skip: 3,
            notify: NotifyConfig::default(),
        }
    }
}

/// Severity of a verdict's regressions, from the error-budget burn rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Burn rate at or above `fast_burn_rate`, or a new crash signature.
    High,
    /// Burn rate between `slow_burn_rate` and `fast_burn_rate`.
    Medium,
    /// Burn rate below `slow_burn_rate`: within the error budget.
    Low,
    /// No traffic data to compute a burn rate, and no crash.
    Unknown,
}

/// One row of the fixer's rule table: conditions (all must hold; an empty list
/// or absent value matches anything) and the action they choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixerRule {
    /// Name recorded in `Action.rule`.
    pub name: String,
    /// Action chosen when the rule matches: rollback, fix_forward, notify, none.
    pub action: selfheal_schemas::ActionKind,
    /// Verdict decisions matched (`caused`, `not_caused`, `inconclusive`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<selfheal_schemas::Decision>,
    /// Minimum verdict confidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    /// Severities matched (`high`, `medium`, `low`, `unknown`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<Severity>,
    /// Whether the regression is a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_failure: Option<bool>,
    /// Whether the verdict cites at least one changed line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_evidence: Option<bool>,
    /// Whether the signatures also rose where nothing was deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub externally_correlated: Option<bool>,
    /// Maximum event time between the deploy and the verdict, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_since_deploy_ms: Option<i64>,
}

impl FixerRule {
    fn named(name: &str, action: selfheal_schemas::ActionKind) -> Self {
        Self {
            name: name.to_owned(),
            action,
            decisions: Vec::new(),
            min_confidence: None,
            severities: Vec::new(),
            build_failure: None,
            has_evidence: None,
            externally_correlated: None,
            max_since_deploy_ms: None,
        }
    }

    /// The default table, as a seasoned SRE would set it: heal fast burns at once,
    /// fix forward what is well attributed and mild, never roll back `not_caused`.
    pub fn defaults() -> Vec<Self> {
        use selfheal_schemas::{ActionKind as A, Decision as D};
        vec![
            Self {
                build_failure: Some(true),
                ..Self::named("build_failure_fix_forward", A::FixForward)
            },
            Self {
                decisions: vec![D::NotCaused],
                ..Self::named("not_caused_never_rolls_back", A::None)
            },
            // The deploy is to blame (triage's deploy-level decision), even
            // when no line is located: at a fast burn, roll back first. An
            // `inconclusive` incident (an outage-like error nothing ties to
            // the change) pages a human instead: rolling back a healthy
            // revision during an upstream outage costs a deploy and fixes
            // nothing.
            Self {
                decisions: vec![D::Caused],
                severities: vec![Severity::High],
                externally_correlated: Some(false),
                max_since_deploy_ms: Some(24 * 3_600_000),
                ..Self::named("fast_burn_rollback", A::Rollback)
            },
            Self {
                decisions: vec![D::Caused],
                min_confidence: Some(0.8),
                has_evidence: Some(true),
                severities: vec![Severity::Low],
                ..Self::named("well_attributed_fix_forward", A::FixForward)
            },
            Self {
                decisions: vec![D::Caused],
                min_confidence: Some(0.5),
                ..Self::named("caused_rollback", A::Rollback)
            },
            Self {
                decisions: vec![D::Caused],
                ..Self::named("caused_low_confidence_notify", A::Notify)
            },
            Self {
                decisions: vec![D::Inconclusive],
                ..Self::named("inconclusive_notify", A::Notify)
            },
        ]
    }
}

/// Which rollback executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackExecutorKind {
    /// None: rollbacks are recorded as planned for a human (or a subscriber).
    None,
    /// Run `rollback.command` (an argv template, no shell).
    Command,
    /// POST an HMAC-signed JSON body to `rollback.webhook_url`.
    Webhook,
    /// Put a Kubernetes Deployment's pod template back to the one of the
    /// target revision (`kubectl rollout undo --to-revision`, found by the
    /// revision's label); `[fixer.rollback.kubernetes]`.
    Kubernetes,
    /// Abort an Argo Rollouts `Rollout` that is mid-update and put its pod
    /// template back to the target revision's (`kubectl argo rollouts abort`
    /// + `undo`); `[fixer.rollback.kubernetes]`.
    ArgoRollouts,
}

impl RollbackExecutorKind {
    /// The executor's name on actions (`Action.executor`) and in logs, the
    /// one copy of it: the policy plans with it and the executor reports it
    /// (`RollbackExecutor::name`). `None` for `none`.
    pub const fn executor_name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Command => Some("rollback_command"),
            Self::Webhook => Some("rollback_webhook"),
            Self::Kubernetes => Some("rollback_kubernetes"),
            Self::ArgoRollouts => Some("rollback_argo_rollouts"),
        }
    }
}

/// Where and how the `kubernetes` and `argo_rollouts` executors reach the
/// Kubernetes API. The defaults are a pod's own service account; behind
/// `kubectl proxy` set `api_url = "http://127.0.0.1:8001"`, `token_file = ""`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The API server's base URL.
    pub api_url: String,
    /// Namespace of the workloads.
    pub namespace: String,
    /// The Deployment's or Rollout's name; placeholder `{service}`.
    pub name: String,
    /// The pod-template label whose value is selfheal's revision (the
    /// `service.version` your deploys report), e.g. set by the CD pipeline.
    pub revision_label: String,
    /// File holding the bearer token, read at every call (service-account
    /// tokens rotate); empty: no `Authorization` header.
    pub token_file: String,
    /// PEM file of the API server's CA; empty: the system's roots.
    pub ca_file: String,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            api_url: "https://kubernetes.default.svc".to_owned(),
            namespace: "default".to_owned(),
            name: "{service}".to_owned(),
            revision_label: "app.kubernetes.io/version".to_owned(),
            token_file: "/var/run/secrets/kubernetes.io/serviceaccount/token".to_owned(),
            ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".to_owned(),
        }
    }
}

/// How rollbacks are carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollbackConfig {
    /// `none`, `command`, `webhook`, `kubernetes` or `argo_rollouts`.
    pub executor: RollbackExecutorKind,
    /// Argv template, run without a shell. Placeholders `{service}`, `{revision}`,
    /// `{target_revision}`, `{action_id}` are validated (`[A-Za-z0-9._/:@+=-]`, no
    /// leading `-`) before substitution; e.g. `["kubectl", "rollout", "undo",
    /// "deployment/{service}"]`.
    pub command: Vec<String>,
    /// Webhook URL (for `executor = "webhook"`).
    pub webhook_url: String,
    /// Environment variable holding the webhook's HMAC-SHA256 secret; the body's
    /// signature is sent as `X-Selfheal-Signature: sha256=<hex>`.
    pub webhook_secret_env: String,
    /// Timeout of one attempt, ms.
    pub timeout_ms: u64,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// Backoff before the first retry, ms; doubled on each further retry.
    pub backoff_ms: u64,
    /// The Kubernetes API, for `executor = "kubernetes" | "argo_rollouts"`.
    pub kubernetes: KubernetesConfig,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        Self {
            executor: RollbackExecutorKind::None,
            command: Vec::new(),
            webhook_url: String::new(),
            webhook_secret_env: "SELFHEAL_ROLLBACK_WEBHOOK_SECRET".to_owned(),
            timeout_ms: 120_000,
            retries: 2,
            backoff_ms: 2_000,
            kubernetes: KubernetesConfig::default(),
        }
    }
}

/// How recovery after a rollback is verified (event time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Watching starts this long after the rollback completed (time for the
    /// rollout): after the service's latest event time when the executor reported
    /// success, which is later than the decision's event time by the detection
    /// and execution delays.
    pub grace_ms: i64,
    /// Length of the verification window.
    pub window_ms: i64,
    /// Recovered when the regressed signatures' count in the window is at most
    /// `tolerance` × what the baseline rate predicts …
    pub tolerance: f64,
    /// … or at most this many events (new signatures have a baseline of zero).
    pub allowance: i64,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            grace_ms: 60_000,
            window_ms: 5 * 60_000,
            tolerance: 1.5,
            allowance: 0,
        }
    }
}

/// Which fix-forward dispatcher runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatcherKind {
    /// None: fix-forwards are recorded as planned for a human.
    None,
    /// Open a GitHub issue with the investigation prompt (labels/assignees).
    GithubIssue,
    /// Send a GitHub `repository_dispatch` event carrying the prompt.
    RepositoryDispatch,
    /// Start a session on an OpenCode headless server.
    Opencode,
    /// Run a local CLI agent in a fresh worktree, push, open a PR.
    CliAgent,
    /// Built-in: revert the blamed change in a worktree, push, open a PR (no LLM).
    Revert,
}

impl DispatcherKind {
    /// The dispatcher's name on actions (`Action.executor`), the one copy of
    /// it (see [`RollbackExecutorKind::executor_name`]). `None` for `none`.
    pub const fn executor_name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::GithubIssue => Some("github_issue"),
            Self::RepositoryDispatch => Some("repository_dispatch"),
            Self::Opencode => Some("opencode"),
            Self::CliAgent => Some("cli_agent"),
            Self::Revert => Some("revert"),
        }
    }
}

/// How fix-forwards are dispatched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// `none`, `github_issue`, `repository_dispatch`, `opencode`, `cli_agent`, `revert`.
    pub dispatcher: DispatcherKind,
    /// Heal, then fix: once a rollback's recovery watch concludes, also dispatch
    /// a fix-forward for the rolled-back revision (its change is still on the base
    /// branch, so the next deploy would bring the bug back).
    pub after_rollback: bool,
    /// Timeout of one HTTP request, ms.
    pub http_timeout_ms: u64,
    /// GitHub API base URL.
    pub github_api_url: String,
    /// Environment variable holding the GitHub token.
    pub github_token_env: String,
    /// Labels of opened issues (e.g. the one that triggers your coding agent).
    pub github_labels: Vec<String>,
    /// Users (e.g. a coding-agent account) assigned to opened issues.
    pub github_assignees: Vec<String>,
    /// `event_type` of `repository_dispatch` events.
    pub github_event_type: String,
    /// OpenCode headless server base URL.
    pub opencode_url: String,
    /// Local CLI agent argv template (no shell), run in the worktree with the prompt
    /// on stdin; placeholders `{prompt_file}`, `{worktree}`, `{branch}`,
    /// `{service}`, `{revision}`. E.g. `["claude", "-p"]`, `["codex", "exec", "-"]`,
    /// `["aider", "--yes", "--message-file", "{prompt_file}"]`.
    pub agent_command: Vec<String>,
    /// Timeout of one agent run, ms.
    pub agent_timeout_ms: u64,
    /// Directory for repository mirrors and worktrees; empty = the system temp dir.
    pub workdir: String,
    /// Prefix of fix branch names (the action id follows).
    pub branch_prefix: String,
    /// Author name of fix commits.
    pub git_author: String,
    /// Author email of fix commits.
    pub git_email: String,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            dispatcher: DispatcherKind::None,
            after_rollback: true,
            http_timeout_ms: 30_000,
            github_api_url: "https://api.github.com".to_owned(),
            github_token_env: "GITHUB_TOKEN".to_owned(),
            github_labels: vec!["selfheal".to_owned()],
            github_assignees: Vec::new(),
            github_event_type: "selfheal-fix".to_owned(),
            opencode_url: "http://127.0.0.1:4096".to_owned(),
            agent_command: Vec::new(),
            agent_timeout_ms: 30 * 60_000,
            workdir: String::new(),
            branch_prefix: "selfheal/fix-".to_owned(),
            git_author: "selfheal".to_owned(),
            git_email: "selfheal@localhost".to_owned(),
        }
    }
}

/// Settings of one service, under `[fixer.services.<name>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixerServiceConfig {
    /// The service's SLO (success ratio); unset uses `fixer.default_slo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<f64>,
    /// Git remote (URL or path) of its repository; unset uses the deploy's `repo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// `owner/name` on GitHub, for issues, dispatches and PRs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_repo: Option<String>,
    /// Branch fix PRs target.
    pub base_branch: String,
    /// The service's latency SLO, e.g. `{ quantile = 0.99, threshold_s = 0.5 }`:
    /// a latency regression that breaks it is high severity, one that keeps
    /// it is low.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_slo: Option<LatencySlo>,
}

/// A latency SLO: the `quantile` of request durations stays at or below
/// `threshold_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySlo {
    /// The quantile, e.g. 0.99.
    pub quantile: f64,
    /// The threshold in seconds.
    pub threshold_s: f64,
}

impl Default for FixerServiceConfig {
    fn default() -> Self {
        Self {
            latency_slo: None,
            slo: None,
            repo: None,
            github_repo: None,
            base_branch: "main".to_owned(),
        }
    }
}

impl CheckRanges for FixerConfig {
    fn check_ranges(&self, r: &mut Ranges) {
        r.open_unit("default_slo", self.default_slo);
        r.non_negative("fast_burn_rate", self.fast_burn_rate);
        r.non_negative("slow_burn_rate", self.slow_burn_rate);
        r.non_negative("recovery.tolerance", self.recovery.tolerance);
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(m) = rule.min_confidence {
                r.closed_unit(&format!("rules[{i}].min_confidence"), m);
            }
        }
        for (name, s) in &self.services {
            if let Some(slo) = s.slo {
                r.open_unit(&format!("services.{name}.slo"), slo);
            }
        }
    }
}
