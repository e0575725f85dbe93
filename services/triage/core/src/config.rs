//! The triage service's configuration (`[triage]`) and its per-repository
//! file-class rules. They live here, beside the core that reads them;
//! `selfheal_common::config` re-exports them so the one `selfheal.toml` still
//! parses into one `selfheal_common::Config` (unknown keys rejected,
//! environment overrides applied there).

use std::collections::BTreeMap;

use selfheal_common_core::ranges::{CheckRanges, Ranges};
use serde::{Deserialize, Serialize};

/// Settings of the triage service.
///
/// Flat on purpose: every key can be overridden as `SELFHEAL__TRIAGE__<KEY>`
/// (nested tables below the second level keep their key spelling in the
/// environment, which would make `SELFHEAL__TRIAGE__LLM__…` awkward).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriageConfig {
    /// A stack frame within this many lines of a changed line counts as touching it.
    pub line_slack: u32,
    /// Deploys of the service considered for blame: the regressed revision's
    /// deploy and the ones before it, most recent first (bugs can surface a
    /// deploy or two later).
    pub lookback_deploys: usize,
    /// Score multiplier per deploy further back (the most recent is favoured).
    pub recency_decay: f64,
    /// Smallest probability (0–1) that the deploy caused its incident at which
    /// the verdict is `caused` (below it: `inconclusive`; see triage `decide`).
    pub caused_threshold: f64,
    /// File-class rules tried before the defaults, first match wins.
    pub class_overrides: Vec<ClassOverride>,
    /// Local clones or mirrors to run `git diff previous..revision` in, by
    /// service name (or by repository as spelled in Deploy events).
    pub git_repos: BTreeMap<String, String>,
    /// GitHub `owner/repo` to ask the compare API for diffs, by service name.
    pub github_repos: BTreeMap<String, String>,
    /// Base URL of the GitHub REST API (GitHub Enterprise: `https://host/api/v3`).
    pub github_api_url: String,
    /// Environment variable holding the GitHub token (read at start-up).
    pub github_token_env: String,
    /// Timeout of one diff fetch (git or GitHub), in milliseconds.
    pub fetch_timeout_ms: u64,
    /// Lines of context around each change in diffs fetched from a local git
    /// mirror (`git diff -U<n>`). More than git's 3 lets triage see the
    /// declaration of the function a change (and a frame) is in: Java's hunk
    /// headers name the class, not the method.
    pub diff_context_lines: u32,
    /// Diffs larger than this many bytes are truncated before parsing.
    pub max_diff_bytes: usize,
    /// Deploys (with their parsed diffs) remembered per service.
    pub deploys_per_service: usize,
    /// OpenAI-compatible chat-completions base URL (e.g. `https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` for Ollama). Empty: no LLM, fully deterministic.
    pub llm_base_url: String,
    /// Model name sent to the chat-completions endpoint.
    pub llm_model: String,
    /// Environment variable holding the LLM API key (read at start-up; may be unset
    /// for local servers).
    pub llm_api_key_env: String,
    /// Timeout of one LLM request, in milliseconds.
    pub llm_timeout_ms: u64,
    /// Retries after a failed or timed-out LLM request.
    pub llm_retries: u32,
    /// LLM requests allowed per hour (wall clock: the budget is about cost).
    pub llm_max_calls_per_hour: u32,
    /// Largest prompt sent to the LLM, in characters (evidence is cut to fit).
    pub llm_max_prompt_chars: usize,
}

/// A per-repository file-class rule (`[[triage.class_overrides]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassOverride {
    /// Repository it applies to (`shop/checkout`, a URL, or `*` for all).
    #[serde(default = "any_repo")]
    pub repo: String,
    /// Glob over the repository path (`*`, `**`, `?`; no `/` = file name only).
    pub pattern: String,
    /// runtime, config, template, test, docs, ci, build, dependency, migration, other.
    pub class: String,
}

fn any_repo() -> String {
    "*".to_owned()
}

impl Default for TriageConfig {
    fn default() -> Self {
        Self {
            line_slack: 3,
            lookback_deploys: 3,
            recency_decay: 0.9,
            caused_threshold: 0.6,
            class_overrides: Vec::new(),
            git_repos: BTreeMap::new(),
            github_repos: BTreeMap::new(),
            github_api_url: "https://api.github.com".to_owned(),
            github_token_env: "GITHUB_TOKEN".to_owned(),
            fetch_timeout_ms: 10_000,
            diff_context_lines: 25,
            max_diff_bytes: 4 * 1024 * 1024,
            deploys_per_service: 8,
            llm_base_url: String::new(),
            llm_model: String::new(),
            llm_api_key_env: "SELFHEAL_LLM_API_KEY".to_owned(),
            llm_timeout_ms: 20_000,
            llm_retries: 1,
            llm_max_calls_per_hour: 60,
            llm_max_prompt_chars: 12_000,
        }
    }
}

impl CheckRanges for TriageConfig {
    fn check_ranges(&self, r: &mut Ranges) {
        r.closed_unit("caused_threshold", self.caused_threshold);
        r.closed_unit("recency_decay", self.recency_decay);
    }
}
