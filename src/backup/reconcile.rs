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
use crate::operation::{self, Operation, OperationStatus, Report, now, soon, working};
use crate::source::{self, SourceRef};
use crate::stack::BackupTarget;
use crate::stack::cfn::Ops;
use crate::stack::elasticache::{Snapshot, SnapshotDeletion, SnapshotStart, unique_snapshot_name};
use crate::stack::ownership::{self, BACKUP, BACKUP_UID};
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

pub const FINALIZER: &str = "data.oms-spider.io/snapshot";
/// On an OmsBackup the operator made itself: what took the snapshot (`deletion-policy`).
pub const TAKEN_BY_LABEL: &str = "data.oms-spider.io/taken-by";
const DELETION_POLICY: &str = "deletion-policy";

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
        return operation::observe_generation(&api, obj, ctx, &prev, prev.observed_generation).await;
    }
    let listing = obj.labels().get(TAKEN_BY_LABEL).is_some_and(|v| v == DELETION_POLICY);
    let step = match &prev.snapshot_name {
        // Its snapshot, group and region are written by the deletion path that made it.
        None if listing => {
            let message = "waiting for the deletion path that listed this snapshot to record it".to_string();
            pending(ctx, prev.clone(), "SnapshotNotRecorded", message)
        }
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
    let region = found.region.clone().or_else(|| ctx.aws.region_for(None));
    if let Err(message) = reach_namespace(ctx, ns, region.as_deref(), found.identity()).await? {
        return Ok(pending(ctx, next, "StackIdentityChanged", message));
    }
    let uid = obj.uid().ok_or_else(|| Error::Internal("a resource without a uid".into()))?;
    let name =
        obj.spec.snapshot_name.clone().unwrap_or_else(|| unique_snapshot_name(snapshot_prefix, &obj.name_any(), &uid));
    next.snapshot_name = Some(name.clone());
    next.replication_group_id = Some(replication_group_id.clone());
    next.region = region;
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
    let ops = match reach_namespace(ctx, ns, prev.region.as_deref(), None).await? {
        Ok(ops) => ops,
        Err(message) => return Ok(pending(ctx, next, "InvalidNamespaceRole", message)),
    };
    let source = &obj.spec.source;
    let uid = obj.uid().ok_or_else(|| Error::Internal("a resource without a uid".into()))?;
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
        tags.insert(BACKUP_UID.into(), uid);
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
            // Looked at again next pass, where its tags tell whether this backup started it.
            SnapshotStart::NameTaken(_) => {
                pending(ctx, next, "SnapshotStarting", format!("taking snapshot {name} of {group}"))
            }
            SnapshotStart::GroupGone(aws) => failed(next, format!("replication group {group} no longer exists: {aws}")),
            SnapshotStart::Refused(aws) => failed(next, format!("AWS refused snapshot {name} of {group}: {aws}")),
        });
    };
    if prev.started_at.is_none() {
        // Found under the recorded name without a record of starting it: a crash after CreateSnapshot,
        // or another's snapshot (a name in use, a copied name). Only this backup's own tag tells.
        if !taken_for(&ops, &snapshot, ctx, &uid).await? {
            return Ok(failed(
                next,
                format!(
                    "a snapshot named {name} already exists and was not taken by this operator for this OmsBackup; \
                     it is left alone. Choose another spec.snapshotName (or omit it) in a new OmsBackup"
                ),
            ));
        }
        next.started_at = Some(now());
    }
    Ok(track(ctx, next, &snapshot))
}

/// Whether the snapshot's tags say the operator took it for the backup of uid `uid`.
async fn taken_for(ops: &Ops, snapshot: &Snapshot, ctx: &Context, uid: &str) -> Result<bool> {
    let tags = match &snapshot.arn {
        Some(arn) => ops.tags(arn).await?,
        None => BTreeMap::new(),
    };
    Ok(ownership::snapshot_taken_for(&tags, &ctx.settings.cluster_id, uid))
}

/// A started snapshot's progress.
fn track(ctx: &Context, mut next: OmsBackupStatus, snapshot: &Snapshot) -> Step {
    let name = &snapshot.name;
    next.engine = snapshot.engine.clone().or(next.engine);
    next.engine_version = snapshot.engine_version.clone().or(next.engine_version);
    next.node_type = snapshot.node_type.clone().or(next.node_type);
    next.size = snapshot.size.clone().or(next.size);
    match snapshot.status.as_str() {
        // Being restored from or copied, a snapshot is complete.
        "available" | "restoring" | "copying" => {
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
            let requeue = operation::backoff(next.started_at.as_ref(), ctx);
            Report { status: next, health: working("SnapshotRunning", message), requeue, news: None }
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
    let policy = obj.spec.deletion_policy;
    if let (SnapshotDeletionPolicy::Delete, Some(name)) = (policy, prev.snapshot_name.clone()) {
        let ops = match reach_namespace(ctx, ns, prev.region.as_deref(), None).await? {
            Ok(ops) => ops,
            Err(message) => {
                publish_event(ctx, obj, EventType::Warning, "InvalidNamespaceRole", "Delete", message).await;
                return Ok(Action::requeue(ctx.settings.max_poll_interval));
            }
        };
        // Started by this backup as recorded, or (after a crash, before the record) tagged for it.
        let ours = match (&prev.started_at, ops.snapshot(&name).await?) {
            (_, None) => false,
            (Some(_), Some(_)) => true,
            (None, Some(snapshot)) => {
                let uid = obj.uid().ok_or_else(|| Error::Internal("a resource without a uid".into()))?;
                taken_for(&ops, &snapshot, ctx, &uid).await?
            }
        };
        if ours {
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
        } else if prev.started_at.is_none() && prev.phase == Some(BackupPhase::Failed) {
            let note = format!("snapshot {name} was not taken by this backup, so it is left alone");
            publish_event(ctx, obj, EventType::Normal, "SnapshotKept", "Delete", note).await;
        }
    } else if let (Some(name), Some(_)) = (&prev.snapshot_name, &prev.started_at) {
        let note = format!("snapshot {name} is kept (deletionPolicy Retain)");
        publish_event(ctx, obj, EventType::Normal, "SnapshotKept", "Delete", note).await;
    }
    remove_named_finalizer(api, obj, FINALIZER, ctx).await?;
    Ok(Action::await_change())
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
            labels: Some(BTreeMap::from([(TAKEN_BY_LABEL.to_string(), DELETION_POLICY.to_string())])),
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
    match created {
        Ok(_) => {}
        Err(Error::Kube { source: kube::Error::Api(s), .. }) if s.code == 409 => {}
        Err(e) => return Err(e),
    }
    // Recorded now: once the source is gone, the backup could not learn its group or region. A write
    // that races the backup's own controller (its finalizer) is tried again on the newer copy.
    let status = OmsBackupStatus {
        snapshot_name: Some(snapshot.to_string()),
        replication_group_id: Some(replication_group_id.to_string()),
        region: Some(region.to_string()),
        started_at: Some(now()),
        phase: Some(BackupPhase::Running),
        ..OmsBackupStatus::default()
    };
    let value = serde_json::to_value(&status).map_err(|e| Error::Internal(e.to_string()))?;
    let name = backup.name_any();
    for _ in 0..3 {
        let current = kube_call("read the final snapshot's listing", ctx.settings.kube_timeout, api.get(&name)).await?;
        if current.status.as_ref().is_some_and(|s| s.started_at.is_some()) {
            return Ok(());
        }
        match apply_status(&api, &current, value.clone(), ctx.settings.kube_timeout).await {
            Err(Error::Stale(_)) => continue,
            other => return other,
        }
    }
    Err(Error::Internal(format!("could not record snapshot {snapshot} in OmsBackup {name}: it kept changing")))
}
