//! The Kubernetes edge: the resource's status and its connection Secret, both written by
//! server-side apply under the operator's field manager, so an edited Secret is restored and a
//! deleted one recreated on the next reconcile.

use crate::error::{Result, kube_call, stale_on_conflict};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "oms-data-operator";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "oms-data-operator";
/// A hash of the Secret's data, for reloaders that restart workloads when it changes.
pub const CONTENT_HASH: &str = "oms-data-operator/content-hash";

/// A stable hash of Secret data: sha256 over `key=value\n` lines in key order.
pub fn content_hash(data: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The connection Secret for `owner`. Without `owned`, it carries no owner reference (a retained
/// stack's Secret must outlive the resource).
pub fn secret<K: Resource<DynamicType = ()>>(
    owner: &K,
    name: &str,
    data: &BTreeMap<String, String>,
    owned: bool,
) -> Secret {
    let mut s = Secret::default();
    s.metadata.name = Some(name.to_string());
    s.metadata.namespace = owner.meta().namespace.clone();
    s.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        ("app.kubernetes.io/instance".to_string(), owner.name_any()),
    ]));
    s.metadata.annotations = Some(BTreeMap::from([(CONTENT_HASH.to_string(), content_hash(data))]));
    if owned {
        s.metadata.owner_references = owner.controller_owner_ref(&()).map(|r| vec![r]);
    }
    s.type_ = Some("Opaque".to_string());
    s.data = Some(data.iter().map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec()))).collect());
    s
}

pub async fn apply_secret(api: &Api<Secret>, secret: &Secret, deadline: Duration) -> Result<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(secret).map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    kube_call(
        "apply Secret",
        deadline,
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(body)),
    )
    .await?;
    Ok(())
}

/// A Secret's data as text.
pub fn secret_text(s: &Secret) -> BTreeMap<String, String> {
    let data = s.data.iter().flatten();
    data.map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned())).collect()
}

/// The data of Secret `name` as text; `None` when there is no such Secret.
pub async fn read_secret(
    api: &Api<Secret>,
    name: &str,
    action: &'static str,
    deadline: Duration,
) -> Result<Option<BTreeMap<String, String>>> {
    Ok(kube_call(action, deadline, api.get_opt(name)).await?.as_ref().map(secret_text))
}

/// Takes the owner reference off a Secret this operator applied, keeping its data.
pub async fn release_secret(api: &Api<Secret>, name: &str, deadline: Duration) -> Result<()> {
    let Some(current) = kube_call("get Secret", deadline, api.get_opt(name)).await? else {
        return Ok(());
    };
    let data = secret_text(&current);
    let mut body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": current.metadata.labels.unwrap_or_default(),
            "annotations": { CONTENT_HASH: content_hash(&data) },
        },
        "type": "Opaque",
    });
    body["data"] = serde_json::to_value(
        data.iter().map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec()))).collect::<BTreeMap<_, _>>(),
    )
    .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    // Applying without ownerReferences drops the ones this field manager set.
    kube_call(
        "release Secret",
        deadline,
        api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(body)),
    )
    .await?;
    Ok(())
}

/// Applies `status` as the resource's whole status under this operator's field manager.
pub async fn apply_status<K>(api: &Api<K>, obj: &K, status: serde_json::Value, deadline: Duration) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + Serialize + std::fmt::Debug,
{
    // The resourceVersion the status was computed from is a precondition: a status worked out from a
    // copy the watch had not yet brought up to date is refused instead of overwriting a newer one.
    let mut body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    if let Some(version) = obj.resource_version() {
        body["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    let applied = kube_call(
        "apply status",
        deadline,
        api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(body)),
    )
    .await;
    stale_on_conflict(applied, obj).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_follows_content_not_order() {
        let a = BTreeMap::from([("A".to_string(), "1".to_string()), ("B".to_string(), "2".to_string())]);
        let mut b = BTreeMap::new();
        b.insert("B".to_string(), "2".to_string());
        b.insert("A".to_string(), "1".to_string());
        assert_eq!(content_hash(&a), content_hash(&b));
        b.insert("B".to_string(), "3".to_string());
        assert_ne!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a).len(), 64);
    }
}
