//! Which pod template a workload goes back to (pure): the ReplicaSet history
//! of a Deployment or Rollout, searched for the target revision.
//!
//! `kubectl rollout undo --to-revision=N` counts revisions the way the
//! controller does (1, 2, 3 …); selfheal knows the *code* revision (a git
//! sha). The bridge is a pod-template label the CD pipeline sets to it
//! (`app.kubernetes.io/version`, Kubernetes' recommended label): the newest
//! ReplicaSet the workload controls whose template carries the target value
//! is the one to restore, as `undo` would restore it (its template, less the
//! controller's hash label).

use serde_json::Value;

/// The kind of workload and the names its controller uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `apps/v1` Deployment.
    Deployment,
    /// Argo Rollouts `argoproj.io/v1alpha1` Rollout.
    Rollout,
}

impl Workload {
    /// The REST path of the collection in `ns`.
    pub fn collection(self, ns: &str) -> String {
        match self {
            Workload::Deployment => format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            Workload::Rollout => format!("/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts"),
        }
    }

    /// The kind, as in `ownerReferences` and messages.
    pub fn kind(self) -> &'static str {
        match self {
            Workload::Deployment => "Deployment",
            Workload::Rollout => "Rollout",
        }
    }

    /// The label the controller adds to each ReplicaSet's template.
    pub fn hash_label(self) -> &'static str {
        match self {
            Workload::Deployment => "pod-template-hash",
            Workload::Rollout => "rollouts-pod-template-hash",
        }
    }

    /// The ReplicaSet annotation holding the controller's revision number.
    pub fn revision_annotation(self) -> &'static str {
        match self {
            Workload::Deployment => "deployment.kubernetes.io/revision",
            Workload::Rollout => "rollout.argoproj.io/revision",
        }
    }
}

/// `spec.selector.matchLabels` as a label selector (`a=b,c=d`); empty when
/// there are none (the ownership check still keeps only the workload's own).
pub fn label_selector(workload: &Value) -> String {
    workload
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The value of the pod-template label `label` in an object with
/// `spec.template` (a workload or a ReplicaSet).
pub fn template_label<'a>(object: &'a Value, label: &str) -> Option<&'a str> {
    object
        .pointer("/spec/template/metadata/labels")
        .and_then(|l| l.get(label))
        .and_then(Value::as_str)
}

fn controlled_by(rs: &Value, uid: &str) -> bool {
    rs.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(uid)
                    && r.get("controller").and_then(Value::as_bool) == Some(true)
            })
        })
}

fn revision_number(rs: &Value, annotation: &str) -> i64 {
    rs.pointer("/metadata/annotations")
        .and_then(|a| a.get(annotation))
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The restored template: the pod template of the newest ReplicaSet that
/// `owner` (the workload object) controls and whose template has
/// `label = target`, without the controller's hash label. `Err` says what
/// the history holds instead.
pub fn template_for(
    kind: Workload,
    owner: &Value,
    replica_sets: &[Value],
    label: &str,
    target: &str,
) -> Result<Value, String> {
    let uid = owner
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .ok_or("the workload has no metadata.uid")?;
    let owned: Vec<&Value> = replica_sets
        .iter()
        .filter(|rs| controlled_by(rs, uid))
        .collect();
    let best = owned
        .iter()
        .filter(|rs| template_label(rs, label) == Some(target))
        .max_by_key(|rs| revision_number(rs, kind.revision_annotation()));
    let Some(rs) = best else {
        let mut seen: Vec<String> = owned
            .iter()
            .map(|rs| {
                template_label(rs, label)
                    .unwrap_or("(unlabeled)")
                    .to_owned()
            })
            .collect();
        seen.sort();
        seen.dedup();
        return Err(format!(
            "none of its {} ReplicaSet(s) has the pod-template label {label}={target} \
             (their values: {}); the revision is no longer in the history \
             (revisionHistoryLimit) or the pipeline does not set the label",
            owned.len(),
            if seen.is_empty() {
                "none".to_owned()
            } else {
                seen.join(", ")
            }
        ));
    };
    let mut template = rs
        .pointer("/spec/template")
        .cloned()
        .ok_or("the ReplicaSet has no spec.template")?;
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(kind.hash_label());
    }
    Ok(template)
}

/// Whether a Rollout is between its stable ReplicaSet and a new one (a
/// canary or blue-green update in progress, or paused at a step).
pub fn rollout_mid_update(rollout: &Value) -> bool {
    let status = |k: &str| {
        rollout
            .pointer(&format!("/status/{k}"))
            .and_then(Value::as_str)
    };
    match (status("stableRS"), status("currentPodHash")) {
        (Some(stable), Some(current)) => stable != current,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(uid: &str, rev: i64, version: &str, hash: &str) -> Value {
        json!({
            "metadata": {
                "name": format!("checkout-{hash}"),
                "annotations": {"deployment.kubernetes.io/revision": rev.to_string()},
                "ownerReferences": [{"kind": "Deployment", "uid": uid, "controller": true}],
            },
            "spec": {"template": {
                "metadata": {"labels": {"app": "checkout", "app.kubernetes.io/version": version, "pod-template-hash": hash}},
                "spec": {"containers": [{"name": "app", "image": format!("shop/checkout:{version}"),
                    "env": [{"name": "BUILD", "value": rev.to_string()}]}]},
            }},
        })
    }

    fn owner() -> Value {
        json!({"metadata": {"uid": "u1"}, "spec": {"selector": {"matchLabels": {"app": "checkout", "tier": "web"}}}})
    }

    #[test]
    fn the_newest_owned_replica_set_with_the_target_label_wins_without_its_hash() {
        let sets = vec![
            rs("u1", 1, "a1", "h1"),
            rs("u1", 3, "a1", "h3"),
            rs("u1", 4, "b2", "h4"),
            rs("other", 9, "a1", "h9"),
        ];
        let t = template_for(
            Workload::Deployment,
            &owner(),
            &sets,
            "app.kubernetes.io/version",
            "a1",
        )
        .unwrap();
        assert_eq!(t["metadata"]["labels"]["app.kubernetes.io/version"], "a1");
        assert!(t["metadata"]["labels"].get("pod-template-hash").is_none());
        assert_eq!(t["spec"]["containers"][0]["image"], "shop/checkout:a1");
        // Revision 3 beat revision 1 and the other owner's revision 9.
        assert_eq!(t["spec"]["containers"][0]["env"][0]["value"], "3");
    }

    #[test]
    fn a_target_missing_from_the_history_is_an_error_naming_what_is_there() {
        let sets = vec![rs("u1", 4, "b2", "h4"), rs("u1", 5, "c3", "h5")];
        let e = template_for(
            Workload::Deployment,
            &owner(),
            &sets,
            "app.kubernetes.io/version",
            "a1",
        )
        .unwrap_err();
        assert!(e.contains("app.kubernetes.io/version=a1"), "{e}");
        assert!(e.contains("b2, c3"), "{e}");
    }

    #[test]
    fn selector_and_mid_update() {
        assert_eq!(label_selector(&owner()), "app=checkout,tier=web");
        assert!(rollout_mid_update(
            &json!({"status": {"stableRS": "h1", "currentPodHash": "h2"}})
        ));
        assert!(!rollout_mid_update(
            &json!({"status": {"stableRS": "h1", "currentPodHash": "h1"}})
        ));
        assert!(!rollout_mid_update(&json!({"status": {}})));
    }
}
