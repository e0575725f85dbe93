//! The `kubernetes` and `argo_rollouts` rollback executors against a local
//! stand-in of the Kubernetes API server: it serves a Deployment or Rollout
//! and its ReplicaSets, applies the patches it receives the way the API
//! server does (JSON patch `replace /spec/template`, merge patch of
//! `status`), checks each request's content type and bearer token as the
//! API documents them, and records every request.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use selfheal_common::config::{KubernetesConfig, RollbackConfig};
use selfheal_fixer::executors::kube::{history::Workload, KubeExecutor};
use selfheal_fixer::executors::RollbackExecutor;
use selfheal_fixer::policy::RollbackJob;
use serde_json::{json, Value};

const TOKEN: &str = "sa-token-1";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    content_type: String,
    body: Value,
}

#[derive(Default)]
struct Cluster {
    workload: Value,
    replica_sets: Vec<Value>,
    seen: Vec<Seen>,
    /// Answer 404 on the status subresource (an old Rollout CRD).
    no_status_subresource: bool,
}

type Shared = Arc<Mutex<Cluster>>;

fn template(version: &str, hash_key: &str, hash: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "checkout", "app.kubernetes.io/version": version, hash_key: hash}},
        "spec": {"containers": [{"name": "app", "image": format!("shop/checkout:{version}")}]},
    })
}

fn replica_set(
    uid: &str,
    annotation: &str,
    rev: u32,
    version: &str,
    hash_key: &str,
    hash: &str,
) -> Value {
    json!({
        "metadata": {
            "name": format!("checkout-{hash}"),
            "labels": {"app": "checkout"},
            "annotations": {annotation: rev.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "X", "name": "checkout", "uid": uid, "controller": true}],
        },
        "spec": {"template": template(version, hash_key, hash)},
    })
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn record(c: &mut Cluster, method: Method, path: String, h: &HeaderMap, body: &str) {
    c.seen.push(Seen {
        method,
        path,
        content_type: h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    });
}

fn status(code: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    // The API server's error shape: a `Status` object.
    (
        code,
        Json(
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code.as_u16()}),
        ),
    )
}

async fn object(
    State(s): State<Shared>,
    Path((_group_path, ns, name)): Path<(String, String, String)>,
    method: Method,
    h: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let mut c = s.lock().unwrap();
    record(&mut c, method.clone(), format!("{ns}/{name}"), &h, &body);
    if !authorized(&h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    if c.workload["metadata"]["name"] != name {
        return status(StatusCode::NOT_FOUND, "not found");
    }
    let content_type = h.get("content-type").and_then(|v| v.to_str().ok());
    if method == Method::PATCH && content_type == Some("application/merge-patch+json") {
        // Only what the executors may merge: the abort flag.
        let patch: Value = serde_json::from_str(&body).unwrap();
        if patch != json!({"status": {"abort": true}}) {
            return status(StatusCode::UNPROCESSABLE_ENTITY, "unexpected merge patch");
        }
        c.workload["status"]["abort"] = json!(true);
    } else if method == Method::PATCH {
        if content_type != Some("application/json-patch+json") {
            return status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON or merge patch",
            );
        }
        let ops: Value = serde_json::from_str(&body).unwrap();
        for op in ops.as_array().unwrap() {
            if op["op"] != "replace" || op["path"] != "/spec/template" {
                return status(StatusCode::UNPROCESSABLE_ENTITY, "unexpected patch op");
            }
            c.workload["spec"]["template"] = op["value"].clone();
        }
    }
    (StatusCode::OK, Json(c.workload.clone()))
}

async fn status_subresource(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let mut c = s.lock().unwrap();
    record(
        &mut c,
        Method::PATCH,
        format!("{ns}/{name}/status"),
        &h,
        &body,
    );
    if c.no_status_subresource {
        return status(
            StatusCode::NOT_FOUND,
            "the server could not find the requested resource",
        );
    }
    if h.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/merge-patch+json") {
        return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected a merge patch");
    }
    let patch: Value = serde_json::from_str(&body).unwrap();
    if let Some(abort) = patch.pointer("/status/abort") {
        c.workload["status"]["abort"] = abort.clone();
    }
    (StatusCode::OK, Json(c.workload.clone()))
}

async fn replica_sets(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    h: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut c = s.lock().unwrap();
    record(
        &mut c,
        Method::GET,
        format!(
            "{ns}/replicasets?{}",
            q.get("labelSelector").cloned().unwrap_or_default()
        ),
        &h,
        "",
    );
    if !authorized(&h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    let items: Vec<Value> = c
        .replica_sets
        .iter()
        .filter(|rs| {
            selector.split(',').filter(|p| !p.is_empty()).all(|p| {
                let (k, v) = p.split_once('=').unwrap();
                rs["metadata"]["labels"][k] == v
            })
        })
        .cloned()
        .collect();
    (
        StatusCode::OK,
        Json(json!({"kind": "ReplicaSetList", "items": items})),
    )
}

async fn serve(cluster: Cluster) -> (String, Shared) {
    let shared = Arc::new(Mutex::new(cluster));
    let app = Router::new()
        .route(
            "/apis/apps/v1/namespaces/{ns}/replicasets",
            get(replica_sets),
        )
        .route(
            "/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{name}/status",
            axum::routing::patch(status_subresource),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            get(
                |s: State<Shared>,
                 Path((ns, name)): Path<(String, String)>,
                 m: Method,
                 h: HeaderMap,
                 b: String| async move {
                    object(s, Path(("apps".into(), ns, name)), m, h, b).await
                },
            )
            .patch(
                |s: State<Shared>,
                 Path((ns, name)): Path<(String, String)>,
                 m: Method,
                 h: HeaderMap,
                 b: String| async move {
                    object(s, Path(("apps".into(), ns, name)), m, h, b).await
                },
            ),
        )
        .route(
            "/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{name}",
            get(
                |s: State<Shared>,
                 Path((ns, name)): Path<(String, String)>,
                 m: Method,
                 h: HeaderMap,
                 b: String| async move {
                    object(s, Path(("argo".into(), ns, name)), m, h, b).await
                },
            )
            .patch(
                |s: State<Shared>,
                 Path((ns, name)): Path<(String, String)>,
                 m: Method,
                 h: HeaderMap,
                 b: String| async move {
                    object(s, Path(("argo".into(), ns, name)), m, h, b).await
                },
            ),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shared)
}

fn config(url: &str, token_file: &std::path::Path) -> RollbackConfig {
    RollbackConfig {
        timeout_ms: 5_000,
        kubernetes: KubernetesConfig {
            api_url: url.to_owned(),
            namespace: "shop".to_owned(),
            name: "{service}".to_owned(),
            revision_label: "app.kubernetes.io/version".to_owned(),
            token_file: token_file.display().to_string(),
            ca_file: String::new(),
        },
        ..RollbackConfig::default()
    }
}

fn job(target: &str) -> RollbackJob {
    RollbackJob {
        action_id: "0123456789abcdef".into(),
        service: "checkout".into(),
        revision: "c3".into(),
        target_revision: target.into(),
    }
}

fn deployment_cluster() -> Cluster {
    let a = "deployment.kubernetes.io/revision";
    Cluster {
        workload: json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "dep-1"},
            "spec": {"selector": {"matchLabels": {"app": "checkout"}}, "template": template("c3", "pod-template-hash", "h3")},
        }),
        replica_sets: vec![
            replica_set("dep-1", a, 1, "a1", "pod-template-hash", "h1"),
            replica_set("dep-1", a, 2, "b2", "pod-template-hash", "h2"),
            replica_set("dep-1", a, 3, "c3", "pod-template-hash", "h3"),
            // Another Deployment's ReplicaSet with the same labels.
            replica_set("dep-9", a, 7, "a1", "pod-template-hash", "h9"),
        ],
        ..Cluster::default()
    }
}

fn token() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), format!("{TOKEN}\n")).unwrap();
    f
}

#[tokio::test]
async fn a_deployment_goes_back_to_the_target_revision_not_just_the_previous_one() {
    let (url, shared) = serve(deployment_cluster()).await;
    let tok = token();
    let ex = KubeExecutor::new(&config(&url, tok.path()), Workload::Deployment).unwrap();
    assert_eq!(ex.name(), "rollback_kubernetes");
    // The previous revision is b2; the fixer asked for a1 (b2 was flagged).
    let said = ex.rollback(&job("a1")).await.unwrap();
    assert!(said.contains("Deployment shop/checkout"), "{said}");
    assert!(
        said.contains("app.kubernetes.io/version=a1 (was c3)"),
        "{said}"
    );
    let c = shared.lock().unwrap();
    let t = &c.workload["spec"]["template"];
    assert_eq!(t["spec"]["containers"][0]["image"], "shop/checkout:a1");
    assert_eq!(t["metadata"]["labels"]["app.kubernetes.io/version"], "a1");
    assert!(
        t["metadata"]["labels"].get("pod-template-hash").is_none(),
        "{t}"
    );
    let methods: Vec<(String, String)> = c
        .seen
        .iter()
        .map(|s| (s.method.to_string(), s.path.clone()))
        .collect();
    assert_eq!(
        methods,
        vec![
            ("GET".into(), "shop/checkout".into()),
            ("GET".into(), "shop/replicasets?app=checkout".into()),
            ("PATCH".into(), "shop/checkout".into()),
        ]
    );
    assert_eq!(c.seen[2].content_type, "application/json-patch+json");
    assert_eq!(c.seen[2].body[0]["op"], "replace");
}

#[tokio::test]
async fn a_revision_gone_from_the_history_fails_without_patching_and_is_not_retried() {
    let (url, shared) = serve(deployment_cluster()).await;
    let tok = token();
    let ex = KubeExecutor::new(&config(&url, tok.path()), Workload::Deployment).unwrap();
    let e = ex.rollback(&job("0ld")).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("app.kubernetes.io/version=0ld"), "{text}");
    assert!(text.contains("a1, b2, c3"), "{text}");
    assert!(!e.is_retryable());
    assert!(shared
        .lock()
        .unwrap()
        .seen
        .iter()
        .all(|s| s.method != Method::PATCH));
}

#[tokio::test]
async fn a_paused_deployment_or_a_wrong_token_is_refused_clearly() {
    let mut cluster = deployment_cluster();
    cluster.workload["spec"]["paused"] = json!(true);
    let (url, _) = serve(cluster).await;
    let tok = token();
    let ex = KubeExecutor::new(&config(&url, tok.path()), Workload::Deployment).unwrap();
    let e = ex.rollback(&job("a1")).await.unwrap_err().to_string();
    assert!(e.contains("paused"), "{e}");

    let (url, _) = serve(deployment_cluster()).await;
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "wrong").unwrap();
    let ex = KubeExecutor::new(&config(&url, bad.path()), Workload::Deployment).unwrap();
    let e = ex.rollback(&job("a1")).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(!e.is_retryable());

    let missing = config(&url, std::path::Path::new("/nonexistent/token"));
    let e = KubeExecutor::new(&missing, Workload::Deployment)
        .unwrap_err()
        .to_string();
    assert!(e.contains("token_file /nonexistent/token"), "{e}");
}

fn rollout_cluster(mid_update: bool) -> Cluster {
    let a = "rollout.argoproj.io/revision";
    let k = "rollouts-pod-template-hash";
    Cluster {
        workload: json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "ro-1"},
            "spec": {"selector": {"matchLabels": {"app": "checkout"}}, "template": template("c3", k, "h3"),
                     "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
            "status": {"stableRS": "h2", "currentPodHash": if mid_update { "h3" } else { "h2" }},
        }),
        replica_sets: vec![
            replica_set("ro-1", a, 1, "a1", k, "h1"),
            replica_set("ro-1", a, 2, "b2", k, "h2"),
            replica_set("ro-1", a, 3, "c3", k, "h3"),
        ],
        ..Cluster::default()
    }
}

#[tokio::test]
async fn a_rollout_mid_canary_is_aborted_then_its_template_set_back() {
    let (url, shared) = serve(rollout_cluster(true)).await;
    let tok = token();
    let ex = KubeExecutor::new(&config(&url, tok.path()), Workload::Rollout).unwrap();
    assert_eq!(ex.name(), "rollback_argo_rollouts");
    let said = ex.rollback(&job("b2")).await.unwrap();
    assert!(said.contains("aborted the update"), "{said}");
    let c = shared.lock().unwrap();
    assert_eq!(c.workload["status"]["abort"], true);
    let t = &c.workload["spec"]["template"];
    assert_eq!(t["metadata"]["labels"]["app.kubernetes.io/version"], "b2");
    assert!(t["metadata"]["labels"]
        .get("rollouts-pod-template-hash")
        .is_none());
    let patches: Vec<&Seen> = c
        .seen
        .iter()
        .filter(|s| s.method == Method::PATCH)
        .collect();
    assert_eq!(patches.len(), 2);
    // Abort first, as `kubectl argo rollouts abort` sends it.
    assert_eq!(patches[0].path, "shop/checkout/status");
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_eq!(patches[0].body, json!({"status": {"abort": true}}));
    assert_eq!(patches[1].path, "shop/checkout");
}

#[tokio::test]
async fn a_settled_rollout_is_only_undone_and_an_old_crd_is_aborted_on_the_object() {
    let (url, shared) = serve(rollout_cluster(false)).await;
    let tok = token();
    let ex = KubeExecutor::new(&config(&url, tok.path()), Workload::Rollout).unwrap();
    let said = ex.rollback(&job("a1")).await.unwrap();
    assert!(!said.contains("aborted"), "{said}");
    assert_eq!(
        shared.lock().unwrap().workload["spec"]["template"]["metadata"]["labels"]
            ["app.kubernetes.io/version"],
        "a1"
    );

    let mut old = rollout_cluster(true);
    old.no_status_subresource = true;
    let (url, shared) = serve(old).await;
    let ex = KubeExecutor::new(&config(&url, tok.path()), Workload::Rollout).unwrap();
    ex.rollback(&job("b2")).await.unwrap();
    let c = shared.lock().unwrap();
    assert_eq!(c.workload["status"]["abort"], true);
    let patches: Vec<(String, String)> = c
        .seen
        .iter()
        .filter(|s| s.method == Method::PATCH)
        .map(|s| (s.path.clone(), s.content_type.clone()))
        .collect();
    assert_eq!(
        patches,
        vec![
            (
                "shop/checkout/status".into(),
                "application/merge-patch+json".into()
            ),
            (
                "shop/checkout".into(),
                "application/merge-patch+json".into()
            ),
            ("shop/checkout".into(), "application/json-patch+json".into()),
        ]
    );
}
