//! Where a backup happens. One pass: the finalizer; on deletion, what the policy says; otherwise
//! name the snapshot and record the name, start it, follow it until it is available or failed.
//!
//! The name is in status before CreateSnapshot is sent, and CreateSnapshot tags the snapshot with
//! the source's identity: a pass that finds a snapshot of its recorded name either started it
//! (tagged for this source) or must leave it alone. So a crash at any point takes at most one
//! snapshot, and a backup never claims, or deletes, a snapshot someone else took.

use super::{BackupPhase, OmsBackup, OmsBackupStatus, SnapshotDeletionPolicy};
use crate::context::Context;
use crate::error::{Error, Result, kube_call};
use crate::operation::{self, Operation, OperationStatus, Report, now};
use crate::source::{self, SourceRef};
use crate::stack::BackupTarget;
use crate::stack::elasticache::{Snapshot, SnapshotDeletion, SnapshotStart, unique_snapshot_name};
use crate::stack::ownership::{self, BACKUP};
use crate::stack::publish::apply_status;
use crate::stack::reconcile::{
    add_named_finalizer, confirm_current, publish_event, reach_namespace, remove_named_finalizer,
};
use crate::stack::status::Health;
use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const FINALIZER: &str = "data.oms-spider.io/snapshot";
/// On an OmsBackup the operator made itself: what took the snapshot (`deletion-policy`).
pub const TAKEN_BY_LABEL: &str = "data.oms-spider.io/taken-by";

impl Operation for OmsBackup {
    const ACTION: &'static str = "Backup";

    fn pass<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Action>> {
        Box::pin(pass(self, ctx))
    }
}

impl OperationStatus for OmsBackupStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>) {
        self.conditions = conditions;
        self.observed_generation = generation;
        if self.phase.is_none() {
            self.phase = Some(BackupPhase::Pending);
        }
    }
}

/// Runs the OmsBackup controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    operation::run::<OmsBackup>(ctx, namespace, shutdown).await
}

type Step = Report<OmsBackupStatus>;

async fn pass(obj: &OmsBackup, ctx: &Context) -> Result<Action> {
    let ns = obj.namespace().ok_or_else(|| Error::Internal("a namespaced resource without a namespace".into()))?;
    let api: Api<OmsBackup> = Api::namespaced(ctx.client.clone(), &ns);
    let prev = obj.status.clone().unwrap_or_default();
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    if obj.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        return delete(&api, obj, ctx, &ns, &prev).await;
    }
    let owned;
    let obj = if has_finalizer {
        obj
    } else {
        owned = add_named_finalizer(&api, obj, FINALIZER, ctx).await?;
        &owned
    };
    if matches!(prev.phase, Some(BackupPhase::Completed | BackupPhase::Failed)) {
        return Ok(Action::await_change());
    }
    let step = match &prev.snapshot_name {
        None => name_it(obj, ctx, &ns, &prev).await?,
        Some(name) => follow(&api, obj, ctx, &ns, &prev, name).await?,
    };
    operation::write(&api, obj, ctx, &prev, step).await
}

/// Records the snapshot's name (and where it will be) before anything is started.
async fn name_it(obj: &OmsBackup, ctx: &Context, ns: &str, prev: &OmsBackupStatus) -> Result<Step> {
    let source = &obj.spec.source;
    let mut next = prev.clone();
    let Some(found) = source::resolve(ctx, ns, source).await? else {
        let message = format!("waiting for {source} to exist in namespace {ns}");
        return Ok(pending(ctx, next, "SourceNotFound", message));
    };
    let Some(BackupTarget::ElastiCacheReplicationGroup { replication_group_id, snapshot_prefix }) = &found.backup
    else {
        let message = format!("waiting for {source} to be Ready: it has no replication group to snapshot yet");
        return Ok(pending(ctx, next, "SourceNotReady", message));
    };
    let uid = obj.uid().ok_or_else(|| Error::Internal("a resource without a uid".into()))?;
    let name =
        obj.spec.snapshot_name.clone().unwrap_or_else(|| unique_snapshot_name(snapshot_prefix, &obj.name_any(), &uid));
    next.snapshot_name = Some(name.clone());
    next.replication_group_id = Some(replication_group_id.clone());
    next.region = found.region.clone().or_else(|| ctx.aws.region_for(None));
    let message = format!("taking snapshot {name} of {replication_group_id}");
    Ok(Report { status: next, health: working("SnapshotStarting", message), requeue: soon(ctx), news: None })
}

/// Starts the recorded snapshot if it is not there yet, and follows it.
async fn follow(
    api: &Api<OmsBackup>,
    obj: &OmsBackup,
    ctx: &Context,
    ns: &str,
    prev: &OmsBackupStatus,
    name: &str,
) -> Result<Step> {
    let mut next = prev.clone();
    let group = prev.replication_group_id.clone().unwrap_or_default();
    let ops = match reach_namespace(ctx, ns, prev.region.as_deref()).await? {
        Ok(ops) => ops,
        Err(message) => return Ok(pending(ctx, next, "InvalidNamespaceRole", message)),
    };
    let source = &obj.spec.source;
    let snapshot = ops.snapshot(name).await?;
    let Some(snapshot) = snapshot else {
        if prev.started_at.is_some() {
            return Ok(failed(
                next,
                format!("snapshot {name} disappeared before it was available (deleted outside the operator?)"),
            ));
        }
        let Some(found) = source::resolve(ctx, ns, source).await? else {
            return Ok(failed(next, format!("{source} was deleted before snapshot {name} could be taken")));
        };
        confirm_current(api, obj, ctx).await?;
        let mut tags = found.owner_tags.clone();
        tags.insert(BACKUP.into(), obj.name_any());
        return Ok(match ops.create_snapshot(&group, name, &tags).await? {
            SnapshotStart::Started => {
                next.phase = Some(BackupPhase::Running);
                next.started_at = Some(now());
                next.failure = None;
                let message = format!("taking snapshot {name} of {group}");
                Report {
                    status: next,
                    health: working("SnapshotRunning", message.clone()),
                    requeue: soon(ctx),
                    news: Some(("BackupStarted", format!("snapshot {name} of {group} started"))),
                }
            }
            SnapshotStart::Busy(aws) => {
                let message = format!(
                    "replication group {group} is busy and cannot be snapshotted yet ({aws}); snapshot {name} is taken \
                     once it is available"
                );
                pending(ctx, next, "SourceBusy", message)
            }
            SnapshotStart::GroupGone(aws) => failed(next, format!("replication group {group} no longer exists: {aws}")),
            SnapshotStart::Refused(aws) => failed(next, format!("AWS refused snapshot {name} of {group}: {aws}")),
        });
    };
    if prev.started_at.is_none() {
        // Found under the recorded name without a record of starting it: a crash after CreateSnapshot,
        // or someone else's snapshot. Only the source's own tags tell.
        let tags = match &snapshot.arn {
            Some(arn) => ops.tags(arn).await?,
            None => BTreeMap::new(),
        };
        let ours = ownership::snapshot_of(&tags, &ctx.settings.cluster_id, source.kind.as_str(), ns, &source.name);
        if !ours {
            return Ok(failed(
                next,
                format!(
                    "a snapshot named {name} already exists and was not taken by this operator of {source}; it is \
                     left alone. Choose another spec.snapshotName (or omit it) in a new OmsBackup"
                ),
            ));
        }
        next.started_at = Some(now());
    }
    Ok(track(ctx, next, &snapshot))
}

/// A started snapshot's progress.
fn track(ctx: &Context, mut next: OmsBackupStatus, snapshot: &Snapshot) -> Step {
    let name = &snapshot.name;
    next.engine = snapshot.engine.clone().or(next.engine);
    next.engine_version = snapshot.engine_version.clone().or(next.engine_version);
    next.node_type = snapshot.node_type.clone().or(next.node_type);
    next.size = snapshot.size.clone().or(next.size);
    match snapshot.status.as_str() {
        "available" => {
            next.phase = Some(BackupPhase::Completed);
            next.completed_at = Some(now());
            next.failure = None;
            let size = next.size.clone().map(|s| format!(" ({s})")).unwrap_or_default();
            let group = next.replication_group_id.clone().unwrap_or_default();
            let message = format!(
                "snapshot {name} of {group} is available{size}; restore it with spec.restoreFrom.snapshotName: {name} \
                 on a new OmsRedis"
            );
            Report {
                status: next,
                health: Health::Ready { reason: "SnapshotAvailable", message: message.clone() },
                requeue: Action::await_change(),
                news: Some(("BackupCompleted", message)),
            }
        }
        "creating" | "" => {
            next.phase = Some(BackupPhase::Running);
            let message = format!("taking snapshot {name}");
            Report { status: next, health: working("SnapshotRunning", message), requeue: soon(ctx), news: None }
        }
        other => failed(next, format!("snapshot {name} is {other}")),
    }
}

/// Deleting the OmsBackup: the snapshot goes only under policy Delete, and only if it is this
/// backup's (started or claimed by it).
async fn delete(
    api: &Api<OmsBackup>,
    obj: &OmsBackup,
    ctx: &Context,
    ns: &str,
    prev: &OmsBackupStatus,
) -> Result<Action> {
    let ours = prev.snapshot_name.clone().filter(|_| prev.started_at.is_some());
    if let (SnapshotDeletionPolicy::Delete, Some(name)) = (obj.spec.deletion_policy, ours) {
        let ops = match reach_namespace(ctx, ns, prev.region.as_deref()).await? {
            Ok(ops) => ops,
            Err(message) => {
                publish_event(ctx, obj, EventType::Warning, "InvalidNamespaceRole", "Delete", message).await;
                return Ok(Action::requeue(ctx.settings.max_poll_interval));
            }
        };
        confirm_current(api, obj, ctx).await?;
        match ops.delete_snapshot(&name).await? {
            SnapshotDeletion::Deleted | SnapshotDeletion::Missing => {
                let note = format!("snapshot {name} is deleted (deletionPolicy Delete)");
                publish_event(ctx, obj, EventType::Normal, "SnapshotDeleted", "Delete", note).await;
            }
            SnapshotDeletion::Busy(aws) => {
                tracing::info!(snapshot = name, "waiting to delete a snapshot that is still being taken: {aws}");
                return Ok(Action::requeue(ctx.settings.poll_interval));
            }
        }
    } else if let Some(name) = &prev.snapshot_name {
        let note = format!("snapshot {name} is kept (deletionPolicy Retain, or not this backup's to delete)");
        publish_event(ctx, obj, EventType::Normal, "SnapshotKept", "Delete", note).await;
    }
    remove_named_finalizer(api, obj, FINALIZER, ctx).await?;
    Ok(Action::await_change())
}

fn soon(ctx: &Context) -> Action {
    Action::requeue(ctx.settings.poll_interval)
}

fn working(reason: &'static str, message: String) -> Health {
    Health::Reconciling { reason, message }
}

fn pending(ctx: &Context, mut next: OmsBackupStatus, reason: &'static str, message: String) -> Step {
    next.phase = Some(BackupPhase::Pending);
    Report { status: next, health: working(reason, message), requeue: soon(ctx), news: None }
}

fn failed(mut next: OmsBackupStatus, message: String) -> Step {
    next.phase = Some(BackupPhase::Failed);
    next.failure = Some(message.clone());
    Report {
        status: next,
        health: Health::Stalled { reason: "BackupFailed", message },
        requeue: Action::await_change(),
        news: None,
    }
}

/// Lists a snapshot deletion policy Snapshot took as an OmsBackup (named after the snapshot, policy
/// Retain, no owner), so it can be found and restored with kubectl alone after its source is gone.
/// Idempotent: an OmsBackup of that name that exists already is left as it is.
pub async fn list_final_snapshot(
    ctx: &Context,
    namespace: &str,
    source: SourceRef,
    snapshot: &str,
    replication_group_id: &str,
    region: &str,
) -> Result<()> {
    let api: Api<OmsBackup> = Api::namespaced(ctx.client.clone(), namespace);
    let backup = OmsBackup {
        metadata: ObjectMeta {
            name: Some(snapshot.to_lowercase()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(TAKEN_BY_LABEL.to_string(), "deletion-policy".to_string())])),
            ..ObjectMeta::default()
        },
        spec: super::OmsBackupSpec {
            source,
            deletion_policy: SnapshotDeletionPolicy::Retain,
            snapshot_name: Some(snapshot.to_string()),
        },
        status: None,
    };
    let created =
        kube_call("list the final snapshot", ctx.settings.kube_timeout, api.create(&PostParams::default(), &backup))
            .await;
    let created = match created {
        Ok(b) => b,
        Err(Error::Kube { source: kube::Error::Api(s), .. }) if s.code == 409 => return Ok(()),
        Err(e) => return Err(e),
    };
    // Recorded now: once the source is gone, the backup could not learn its group or region.
    let status = OmsBackupStatus {
        snapshot_name: Some(snapshot.to_string()),
        replication_group_id: Some(replication_group_id.to_string()),
        region: Some(region.to_string()),
        started_at: Some(now()),
        phase: Some(BackupPhase::Running),
        ..OmsBackupStatus::default()
    };
    let value = serde_json::to_value(&status).map_err(|e| Error::Internal(e.to_string()))?;
    apply_status(&api, &created, value, ctx.settings.kube_timeout).await
}
