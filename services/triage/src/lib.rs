//! selfheal triage: decides whether a deploy caused a regression, citing the
//! changed line, or says why it did not or cannot tell.
//!
//! # Layout
//! Pure (sync, no IO, deterministic; in the core crate `selfheal-triage-core`
//! with the `[triage]` config, re-exported here):
//! - [`diff`]: the unified-diff parser (fuzzed: never panics).
//! - [`classes`]: file classes (runtime, config, test, docs …) with per-repo overrides.
//! - [`frames`]: stack-frame paths → repository paths.
//! - [`link`]: evidence, scores, and how scores become confidences.
//! - [`settings`]: changed configuration that governs dependency calls.
//! - [`core`]: the triage state (recent deploys per service) and the verdict rules.
//!
//! Adapters:
//! - [`source`]: diffs from a local git mirror or the GitHub compare API, cached.
//! - [`llm`]: the optional OpenAI-compatible adjudicator for inconclusive cases.
//! - [`TriageStage`]: the consumer-loop stage tying them together.
//!
//! Known limit: deploys are kept in memory, so after a restart triage only
//! knows deploys it re-reads (its group offsets are committed); a regression
//! of an unknown deploy is `inconclusive`.

pub mod llm;
pub mod source;

/// The pure modules live in the core crate (`selfheal-triage-core`), which
/// builds and tests without librdkafka or an async runtime.
pub use selfheal_triage_core::{
    classes, config, core, decide, diff, frames, functions, incident, judge, link, settings,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use selfheal_common::config::TriageConfig;
use selfheal_common::consumer::{MessageMeta, Stage, StageError};
use selfheal_common::kafka::Outgoing;
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::{AnyEvent, Decision, Regression, RegressionKind, Verdict};

/// The service name.
pub const NAME: &str = "triage";

/// Errors of triage (defined in the core crate, whose constructor returns them).
pub use selfheal_triage_core::error::{Error, Result};

/// Starts triage (consumer loop + health/metrics HTTP).
pub async fn spawn(
    config: Arc<Config>,
    shutdown: CancellationToken,
) -> selfheal_common::Result<ServiceHandle> {
    // Actions too: a rollback whose recovery failed revises its incident.
    let inputs = vec![
        config.topics.deploys.clone(),
        config.topics.regressions.clone(),
        config.topics.actions.clone(),
    ];
    let stage =
        TriageStage::from_config(&config.triage, config.topics.verdicts.clone()).map_err(|e| {
            selfheal_common::Error::Config {
                source_name: "triage".to_owned(),
                message: e.to_string(),
            }
        })?;
    let mut stage = stage;
    // Deploys consumed before a restart are behind the committed offsets:
    // rebuild the table from the topic (it holds one small record per deploy),
    // or their regressions would wait for a deploy that never comes again.
    selfheal_common::kafka::ensure_topics(&config).await?;
    let boot = config.clone();
    let deploys = tokio::task::spawn_blocking(move || {
        selfheal_common::kafka::read_to_end(
            &boot.kafka,
            &boot.kafka.group_prefix,
            &boot.topics.deploys,
            std::time::Duration::from_secs(60),
        )
    })
    .await
    .map_err(selfheal_common::Error::caused(NAME, "bootstrap task"))??;
    for e in &deploys {
        if let AnyEvent::Deploy(d) = e {
            stage.core.on_deploy(d);
        }
    }
    tracing::info!(
        deploys = deploys.len(),
        "triage deploy table rebuilt from its topic"
    );
    let addr = config.http.triage;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs triage until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> selfheal_common::Result<()> {
    spawn(config, shutdown).await?.wait().await
}

/// The triage stage: the pure core plus the diff source and LLM adapters.
///
/// # Why the stage waits (explicitly, with timeouts) for IO
/// The consumer loop stores an input's offset only after the outputs it
/// produced are acknowledged, in order; a verdict depends on the diff (and, if
/// configured, on the adjudicator's answer), so the regression's message cannot
/// be finished before they are in. Instead of letting the IO race the loop,
/// [`Stage::handle`] blocks on it, bounded by `fetch_timeout_ms` and
/// `llm_timeout_ms × (1 + llm_retries)`, inside `block_in_place` so the
/// runtime's other tasks (HTTP probes, the other services of `selfheal up`)
/// move to other workers. The slow part rarely sits on the hot path: a
/// diff fetch starts when the Deploy arrives (minutes before its regressions),
/// the LLM is asked only about `inconclusive` verdicts and within an hourly
/// budget, and with neither configured `handle` does no IO at all.
#[derive(Debug)]
pub struct TriageStage {
    core: core::Triage,
    output_topic: String,
    source: Option<source::DiffSource>,
    llm: Option<llm::Adjudicator>,
}

impl TriageStage {
    /// A stage from the `[triage]` settings (reads the GitHub token and LLM key
    /// from the environment variables they name).
    pub fn from_config(config: &TriageConfig, output_topic: String) -> Result<Self> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let source = source::DiffSource::new(source::SourceConfig {
            git_repos: config.git_repos.clone(),
            github_repos: config.github_repos.clone(),
            github_api_url: config.github_api_url.clone(),
            github_token: env(&config.github_token_env),
            timeout: Duration::from_millis(config.fetch_timeout_ms.max(1)),
            context_lines: config.diff_context_lines,
            cache_size: 256,
        });
        let llm = if config.llm_base_url.is_empty() {
            None
        } else {
            if config.llm_model.is_empty() {
                return Err(Error::Config(
                    "triage.llm_base_url is set but triage.llm_model is empty".into(),
                ));
            }
            Some(
                llm::Adjudicator::new(llm::LlmConfig {
                    base_url: config.llm_base_url.clone(),
                    model: config.llm_model.clone(),
                    api_key: env(&config.llm_api_key_env),
                    timeout: Duration::from_millis(config.llm_timeout_ms.max(1)),
                    retries: config.llm_retries,
                    max_calls_per_hour: config.llm_max_calls_per_hour,
                    max_prompt_chars: config.llm_max_prompt_chars,
                })
                .map_err(|e| Error::Config(e.to_string()))?,
            )
        };
        Ok(Self {
            core: core::Triage::new(config.clone())?,
            output_topic,
            source,
            llm,
        })
    }

    /// Handles one event: the verdicts it produces.
    pub fn process(&mut self, event: &AnyEvent) -> Vec<Verdict> {
        match event {
            AnyEvent::Deploy(d) => {
                self.core.on_deploy(d);
                if d.diff.is_none() {
                    if let Some(src) = &self.source {
                        src.prefetch(d);
                    }
                }
                let released = self.core.release(d);
                released.iter().map(|r| self.judge_full(r)).collect()
            }
            AnyEvent::Regression(r) => match self.core.admit(r) {
                core::Admitted::Judge(list) => list.iter().map(|r| self.judge_full(r)).collect(),
                core::Admitted::Held => {
                    tracing::info!(service = %r.service, revision = %r.revision,
                        "regression read before its deploy; held until the deploy is read");
                    Vec::new()
                }
            },
            AnyEvent::Action(a) => self.core.on_action(a).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Fetches missing diffs, judges, and asks the LLM when inconclusive.
    fn judge_full(&mut self, r: &Regression) -> Verdict {
        if let Some(src) = &self.source {
            for d in self.core.missing_diffs(r) {
                let fetched = wait(src.get(&d)).unwrap_or(Err(source::SourceError::NoRuntime));
                if let Err(e) = &fetched {
                    tracing::warn!(service = %d.service, revision = %d.revision, error = %e, "diff unavailable");
                }
                self.core.set_diff(
                    &d.service,
                    &d.revision,
                    fetched.map(|t| t.to_string()).map_err(|e| e.to_string()),
                );
            }
        }
        let mut v = self.core.judge(r);
        if let Some(adj) = &self.llm {
            if v.decision == Decision::Inconclusive
                && !r.externally_correlated
                && r.kind != RegressionKind::BuildFailure
            {
                if let Some(brief) = self.core.brief(r) {
                    match wait(adj.adjudicate(&brief)) {
                        Some(Ok(answer)) => {
                            v = llm::apply(&self.core, r, v, &answer, adj.model());
                        }
                        Some(Err(e)) => {
                            tracing::warn!(service = %r.service, error = %e, "LLM adjudicator");
                            v.reasoning.push_str(&format!(" (LLM adjudicator: {e})"));
                        }
                        None => {}
                    }
                }
            }
        }
        v
    }
}

/// Runs `f` to completion from the synchronous stage, see [`TriageStage`]'s
/// notes. `None` outside a multi-threaded Tokio runtime (where blocking a
/// worker could deadlock the IO the future needs).
fn wait<F: Future>(f: F) -> Option<F::Output> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        tracing::warn!("triage IO needs a multi-threaded runtime; skipping it");
        return None;
    }
    Some(tokio::task::block_in_place(|| handle.block_on(f)))
}

impl Stage for TriageStage {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(
        &mut self,
        event: AnyEvent,
        _meta: &MessageMeta,
    ) -> std::result::Result<Vec<Outgoing>, StageError> {
        self.process(&event)
            .iter()
            .map(|v| {
                tracing::info!(
                    stage = NAME,
                    service = %v.service,
                    revision = %v.revision,
                    decision = ?v.decision,
                    confidence = v.confidence,
                    adjudicator = %v.adjudicator,
                    "{}",
                    describe(v)
                );
                Outgoing::event(&self.output_topic, v)
                    .map_err(|e| StageError::Fatal(format!("cannot encode Verdict: {e}")))
            })
            .collect()
    }
}

/// A one-line summary of a verdict for the log (decision, confidence and
/// the cited `file:line`).
pub fn describe(v: &Verdict) -> String {
    selfheal_common::describe::verdict(v)
}
