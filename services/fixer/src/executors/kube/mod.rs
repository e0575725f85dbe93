//! Rollback on Kubernetes: a Deployment (`executor = "kubernetes"`) or an
//! Argo Rollouts `Rollout` (`executor = "argo_rollouts"`) goes back to the
//! pod template of the *target* revision, not merely the previous one.
//!
//! What `kubectl rollout undo --to-revision` does, with the revision found by
//! its pod-template label ([`history`]): read the workload, list the
//! ReplicaSets it controls, and replace `spec.template` with the target's
//! (one JSON patch). A Rollout that is mid-update (canary or blue-green
//! between its stable ReplicaSet and a new one) is first aborted, as
//! `kubectl argo rollouts abort` does (merge patch `{"status":{"abort":true}}`
//! on the status subresource), which moves traffic back to the stable
//! ReplicaSet at once; the template patch then makes the rollback the
//! declared state, so the Rollout does not retry the bad version.
//!
//! # Layout
//! - [`history`]: which ReplicaSet's template to restore (pure).
//! - [`client`]: the API calls.

pub mod client;
pub mod history;

use async_trait::async_trait;
use selfheal_common::config::{RollbackConfig, RollbackExecutorKind};
use serde_json::{json, Value};

use super::{template, RollbackExecutor};
use crate::error::{Error, Result};
use crate::policy::RollbackJob;
use history::Workload;

/// Rolls a Deployment or Rollout back to the target revision's template.
#[derive(Debug, Clone)]
pub struct KubeExecutor {
    api: client::Api,
    workload: Workload,
    namespace: String,
    name: Vec<String>,
    label: String,
}

impl KubeExecutor {
    /// Builds the executor for `workload` from `[fixer.rollback.kubernetes]`.
    pub fn new(config: &RollbackConfig, workload: Workload) -> Result<Self> {
        let k = &config.kubernetes;
        let name = vec![k.name.clone()];
        template::validate(&name, &["service"])?;
        if k.revision_label.is_empty() {
            return Err(Error::Config(
                "rollback.kubernetes.revision_label is empty".to_owned(),
            ));
        }
        Ok(Self {
            api: client::Api::new(k, config.timeout_ms)?,
            workload,
            namespace: k.namespace.clone(),
            name,
            label: k.revision_label.clone(),
        })
    }

    fn object_path(&self, name: &str) -> String {
        format!("{}/{name}", self.workload.collection(&self.namespace))
    }

    /// `kubectl argo rollouts abort`: the status subresource first, the
    /// object itself where the status subresource is not served.
    async fn abort(&self, path: &str) -> Result<()> {
        let body = json!({"status": {"abort": true}});
        match self
            .api
            .patch(&format!("{path}/status"), client::MERGE_PATCH, &body)
            .await
        {
            Err(Error::Status { status: 404, .. }) => {
                self.api.patch(path, client::MERGE_PATCH, &body).await?;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}

fn refused(what: String, why: String) -> Error {
    Error::Response { what, why }
}

#[async_trait]
impl RollbackExecutor for KubeExecutor {
    fn kind(&self) -> RollbackExecutorKind {
        match self.workload {
            Workload::Deployment => RollbackExecutorKind::Kubernetes,
            Workload::Rollout => RollbackExecutorKind::ArgoRollouts,
        }
    }

    async fn rollback(&self, job: &RollbackJob) -> Result<String> {
        let vars = std::collections::BTreeMap::from([("service", job.service.clone())]);
        let name = template::render(&self.name, &vars)?.remove(0);
        let kind = self.workload.kind();
        let what = format!("{kind} {}/{name}", self.namespace);
        let path = self.object_path(&name);
        let object = self.api.get(&path).await?;
        if object.pointer("/spec/paused") == Some(&Value::Bool(true))
            && self.workload == Workload::Deployment
        {
            return Err(refused(
                what,
                "it is paused (`kubectl rollout resume` first; kubectl refuses to undo a paused deployment too)".to_owned(),
            ));
        }
        let selector = history::label_selector(&object);
        let sets = self.api.replica_sets(&self.namespace, &selector).await?;
        let template = history::template_for(
            self.workload,
            &object,
            &sets,
            &self.label,
            &job.target_revision,
        )
        .map_err(|why| refused(what.clone(), why))?;
        let mut done = Vec::new();
        if self.workload == Workload::Rollout && history::rollout_mid_update(&object) {
            self.abort(&path).await?;
            done.push("aborted the update (traffic back on the stable ReplicaSet)".to_owned());
        }
        let current = history::template_label(&object, &self.label);
        if current == Some(job.target_revision.as_str()) {
            done.push(format!(
                "template already at {}={}",
                self.label, job.target_revision
            ));
        } else {
            let patch = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
            self.api.patch(&path, client::JSON_PATCH, &patch).await?;
            done.push(format!(
                "pod template set back to {}={} (was {})",
                self.label,
                job.target_revision,
                current.unwrap_or("unlabeled")
            ));
        }
        Ok(format!("{what}: {}", done.join("; ")))
    }
}
