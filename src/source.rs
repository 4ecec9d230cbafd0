//! The data resource a day-2 resource (a backup, a failover test) names: found in the same
//! namespace and read through [`DataStack`], so backups and operations work for every kind of data
//! stack the operator serves without knowing what it holds.

use crate::context::Context;
use crate::error::{Error, Result, kube_call};
use crate::stack::reconcile::owner_of;
use crate::stack::status::READY;
use crate::stack::{BackupTarget, DataStack, FailoverTarget, plan};
use kube::ResourceExt;
use kube::api::Api;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A data resource in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    /// Its kind. Default: OmsRedis.
    #[serde(default)]
    pub kind: SourceKind,
    /// Its name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The kinds a day-2 resource can name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum SourceKind {
    #[default]
    OmsRedis,
}

impl SourceKind {
    pub const ALL: [SourceKind; 1] = [SourceKind::OmsRedis];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::OmsRedis => "OmsRedis",
        }
    }

    /// The kind of that name, if day-2 resources can name it.
    pub fn of(kind: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// What a day-2 resource needs of its data resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub uid: String,
    /// Its Ready condition is True.
    pub ready: bool,
    pub deleting: bool,
    /// The region its stack lives in.
    pub region: Option<String>,
    pub backup: Option<BackupTarget>,
    pub failover: Option<FailoverTarget>,
    /// The tags a snapshot of it carries.
    pub owner_tags: BTreeMap<String, String>,
    /// Its stack's id and the role it is reached through, as recorded: a day-2 resource acts in the
    /// stack's account only.
    pub stack_id: Option<String>,
    pub role_arn: Option<String>,
}

impl Source {
    /// The recorded stack identity, for [`crate::stack::reconcile::reach_namespace`].
    pub fn identity(&self) -> Option<(Option<&str>, Option<&str>)> {
        Some((self.stack_id.as_deref(), self.role_arn.as_deref()))
    }
}

/// The data resource `source` names in `namespace`; `None` when there is none.
pub async fn resolve(ctx: &Context, namespace: &str, source: &SourceRef) -> Result<Option<Source>> {
    match source.kind {
        SourceKind::OmsRedis => load::<crate::redis::OmsRedis>(ctx, namespace, &source.name).await,
    }
}

async fn load<K: DataStack>(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Source>> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(obj) = kube_call("read the named data resource", ctx.settings.kube_timeout, api.get_opt(name)).await?
    else {
        return Ok(None);
    };
    let status = obj.stack_status().cloned().unwrap_or_default();
    let ready = status.conditions.iter().any(|c| c.type_ == READY && c.status == "True");
    let owner = owner_of(&obj, &ctx.settings.cluster_id)?;
    Ok(Some(Source {
        uid: obj.uid().ok_or_else(|| Error::Internal("a resource without a uid".into()))?,
        ready,
        deleting: obj.meta().deletion_timestamp.is_some(),
        region: plan::recorded_region(&status).or_else(|| obj.region()),
        backup: obj.backup_target(&BTreeMap::new()),
        failover: obj.failover_target(),
        owner_tags: owner.tags(&BTreeMap::new()),
        stack_id: status.stack_id.clone(),
        role_arn: status.role_arn.clone(),
    }))
}
