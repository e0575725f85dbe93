//! The few Kubernetes API calls the rollback executors make (adapter):
//! get an object, list ReplicaSets by label, patch. Plain REST over
//! `reqwest` with the pod's service-account token, as `kubectl` does; a
//! full client (kube-rs) would bring a second HTTP and TLS stack for three
//! calls.

use std::time::Duration;

use selfheal_common::config::KubernetesConfig;
use serde_json::Value;

use crate::error::{Error, Result};

/// Content type of a JSON patch (RFC 6902), as `kubectl rollout undo` sends.
pub const JSON_PATCH: &str = "application/json-patch+json";
/// Content type of a JSON merge patch (RFC 7386), as `kubectl argo rollouts abort` sends.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// A Kubernetes API endpoint.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token_file: String,
    client: reqwest::Client,
    timeout_ms: u64,
}

impl Api {
    /// Builds the client; an unreadable CA or token file fails here, at
    /// start-up, rather than at the first rollback.
    pub fn new(config: &KubernetesConfig, timeout_ms: u64) -> Result<Self> {
        if config.api_url.is_empty() {
            return Err(Error::Config(
                "rollback.kubernetes.api_url is empty".to_owned(),
            ));
        }
        let mut builder = reqwest::Client::builder().timeout(Duration::from_millis(timeout_ms));
        if !config.ca_file.is_empty() {
            let pem = std::fs::read(&config.ca_file).map_err(|e| {
                Error::Config(format!(
                    "rollback.kubernetes.ca_file {}: {e} (outside a pod, set it to \"\" or to the cluster's CA)",
                    config.ca_file
                ))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "rollback.kubernetes.ca_file {}: {e}",
                    config.ca_file
                ))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if !config.token_file.is_empty() {
            read_token(&config.token_file)?;
        }
        let client = builder.build().map_err(|source| Error::Transport {
            what: "building the Kubernetes HTTP client".to_owned(),
            source,
        })?;
        Ok(Self {
            base: config.api_url.trim_end_matches('/').to_owned(),
            token_file: config.token_file.clone(),
            client,
            timeout_ms,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::ACCEPT, "application/json");
        if !self.token_file.is_empty() {
            // Read at every call: projected service-account tokens rotate.
            req = req.bearer_auth(read_token(&self.token_file)?);
        }
        Ok(req)
    }

    async fn json(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value> {
        let (_, body) = super::super::send(req, what, self.timeout_ms).await?;
        serde_json::from_str(&body).map_err(|e| Error::Response {
            what: what.to_owned(),
            why: format!("not JSON: {e}"),
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let req = self.request(reqwest::Method::GET, path)?;
        self.json(req, &format!("GET {path}")).await
    }

    /// The ReplicaSets of namespace `ns` matching `selector`.
    pub async fn replica_sets(&self, ns: &str, selector: &str) -> Result<Vec<Value>> {
        let path = format!("/apis/apps/v1/namespaces/{ns}/replicasets");
        let req = self
            .request(reqwest::Method::GET, &path)?
            .query(&[("labelSelector", selector)]);
        let list = self.json(req, &format!("GET {path}")).await?;
        Ok(list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// `PATCH path` with `body` of `content_type`.
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Value> {
        let req = self
            .request(reqwest::Method::PATCH, path)?
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_string());
        self.json(req, &format!("PATCH {path}")).await
    }
}

fn read_token(path: &str) -> Result<String> {
    let token = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "rollback.kubernetes.token_file {path}: {e} (outside a pod, behind `kubectl proxy`, set it to \"\")"
        ))
    })?;
    Ok(token.trim().to_owned())
}
