//! The deletion path: what the deletion policy says, against the stack recorded in status (in the
//! region it was made in), failing closed. Under policy Snapshot the snapshot is named and recorded
//! in status before it is started, confirmed available and of this resource's group before the
//! stack is deleted, and when it cannot be taken the stack stays.

use super::cfn::{ObservedStack, Ops};
use super::elasticache::SnapshotStart;
use super::kind::{BackupTarget, DataStack, DeletionPolicy};
use super::plan::{self, Backup, DeleteStep, Phase};
use super::publish;
use super::reconcile::{
    Outcome, Refusal, after_failure, confirm_current, failure_text, finish, poll_delay, publish_event, reach, stalled,
    time_token, waiting,
};
use super::status::{Health, StackStatus};
use crate::context::Context;
use crate::error::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;
use std::time::Duration;

pub(super) enum Cleanup {
    Release,
    Requeue(Duration),
}

pub(super) async fn cleanup<K: DataStack>(obj: &K, ctx: &Context) -> Result<Cleanup> {
    let prev = obj.stack_status().cloned().unwrap_or_default();
    let mut next = prev.clone();
    let desired = obj.desired().ok();
    let policy = obj.deletion_policy();
    let name = prev.stack_name.clone().or_else(|| desired.as_ref().map(|d| d.stack_name.clone()));
    // Calls go to the stack by id where one is recorded; messages name it by name.
    let Some(stack) = prev.stack_id.clone().or_else(|| name.clone()) else {
        return Ok(Cleanup::Release);
    };
    let name = name.unwrap_or_else(|| stack.clone());
    let region = plan::recorded_region(&prev).or_else(|| obj.region());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let (owner, ops) = match reach(obj, ctx, &prev, region.as_deref()).await? {
        Ok((owner, ops, _)) => (owner, ops),
        Err(Refusal { reason, message, retry }) => {
            finish(&api, obj, ctx, &prev, stalled(ctx, next, reason, message)).await?;
            return Ok(Cleanup::Requeue(retry));
        }
    };
    let observed = ops.observe(&stack, ctx.settings.poll_interval).await?;
    if let Some(o) = &observed {
        next.stack_id = Some(o.id.clone());
        next.stack_status = Some(o.status.clone());
    }
    let target = observed.as_ref().and_then(|o| obj.backup_target(&o.outputs));
    let backup = match policy {
        DeletionPolicy::Snapshot => backup_state(&ops, observed.as_ref(), target.as_ref(), &prev).await?,
        _ => Backup::NotNeeded,
    };
    let step = plan::decide_delete(observed.as_ref(), &owner, policy, &backup);
    if step.writes_to_aws() {
        confirm_current(&api, obj, ctx).await?;
    }
    let outcome = match step {
        DeleteStep::Done => {
            let (type_, reason, note) = match policy {
                // Gone before the operator deleted it: whatever the policy, its data was not kept here,
                // and a retained Secret would only point at a cache that no longer exists.
                _ if prev.lost_stack_id.is_some()
                    || (observed.as_ref().is_some_and(|o| o.status == "DELETE_COMPLETE")
                        && prev.stack_status.as_deref().is_some_and(plan::holds_data)) =>
                {
                    let when = observed.as_ref().and_then(|o| o.deletion_time.clone());
                    let note = format!(
                        "stack {name} had already been deleted outside the operator{}; nothing was left to delete{}",
                        when.map(|t| format!(" (at {t})")).unwrap_or_default(),
                        if policy == DeletionPolicy::Snapshot { " or snapshot" } else { "" }
                    );
                    (EventType::Warning, "StackLost", note)
                }
                DeletionPolicy::Retain => {
                    let secrets: Api<Secret> =
                        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
                    let secret_name =
                        prev.secret_name.clone().or_else(|| desired.as_ref().map(|d| d.secret_name.clone()));
                    // The retained cache's password goes with it: its Secret is kept too.
                    let password_secret = prev.auth.as_ref().and_then(|a| a.secret_name.clone());
                    for s in secret_name.iter().chain(password_secret.iter()) {
                        publish::release_secret(&secrets, s, ctx.settings.kube_timeout).await?;
                    }
                    let note = format!(
                        "stack {name} was kept and tagged {}=true; its Secrets kept without their owner reference",
                        super::ownership::ORPHANED
                    );
                    (EventType::Normal, "StackRetained", note)
                }
                _ => (EventType::Normal, "StackDeleted", format!("stack {name} is deleted")),
            };
            publish_event(ctx, obj, type_, reason, "Delete", note).await;
            return Ok(Cleanup::Release);
        }
        DeleteStep::LeaveAlone(why) => {
            let note = format!("stack {name} was left alone: {why}");
            publish_event(ctx, obj, EventType::Warning, "StackNotOwned", "Delete", note).await;
            return Ok(Cleanup::Release);
        }
        DeleteStep::Wait => {
            // The same reason as the step that started the work, so a poll is no new Event.
            let status = next.stack_status.clone().unwrap_or_default();
            let (reason, message) = if status == "DELETE_IN_PROGRESS" {
                ("StackDeleting", format!("deleting stack {name}{}", after_failure(&next)))
            } else if policy == DeletionPolicy::Retain {
                ("StackRetaining", format!("tagging stack {name} as orphaned before releasing it ({status})"))
            } else {
                let message =
                    format!("waiting for stack {name} to finish {status} before deleting it{}", after_failure(&next));
                ("WaitingToDelete", message)
            };
            waiting(ctx, next, reason, message)
        }
        DeleteStep::Delete => {
            let obs =
                observed.as_ref().ok_or_else(|| crate::error::Error::Internal("delete without a stack".into()))?;
            delete_stack(obj, ctx, &ops, obs, &name, &owner.uid, &backup, target.as_ref(), next).await?
        }
        DeleteStep::NameBackup => {
            let Some(target) = &target else {
                return Err(crate::error::Error::Internal("a backup without a target".into()));
            };
            let backup = super::elasticache::unique_snapshot_name(target.prefix(), &obj.name_any(), &owner.uid);
            let message =
                format!("taking {} {backup} of {} before deleting stack {name}", target.noun(), target.holder());
            next.snapshot_name = Some(backup);
            waiting(ctx, next, "SnapshotInProgress", message)
        }
        DeleteStep::StartBackup => {
            let (Some(target), Some(snapshot)) = (&target, prev.snapshot_name.clone()) else {
                return Err(crate::error::Error::Internal("a backup without a target or a name".into()));
            };
            let (noun, holder) = (target.noun(), target.holder());
            let action = target.action();
            let started = match target {
                BackupTarget::ElastiCacheReplicationGroup { replication_group_id: group, .. } => {
                    ops.create_snapshot(group, &snapshot, &owner.tags(&Default::default())).await?
                }
                BackupTarget::DynamoDbTable { table_name, .. } => {
                    ops.create_table_backup(table_name, &snapshot).await?
                }
            };
            match started {
                SnapshotStart::Started => {
                    let note =
                        format!("{noun} {snapshot} of {holder} started; stack {name} is deleted once it is available");
                    publish_event(ctx, obj, EventType::Normal, "SnapshotStarted", action, note).await;
                    let message = format!("taking {noun} {snapshot} of {holder} before deleting stack {name}");
                    waiting(ctx, next, "SnapshotInProgress", message)
                }
                SnapshotStart::GroupGone(aws) => {
                    let obs = observed.as_ref().ok_or_else(|| crate::error::Error::Internal("no stack".into()))?;
                    let note = format!(
                        "{holder} no longer exists ({aws}), so it holds no data to back up; deleting stack {name}"
                    );
                    publish_event(ctx, obj, EventType::Warning, "SnapshotSkipped", action, note).await;
                    delete_stack(obj, ctx, &ops, obs, &name, &owner.uid, &Backup::NotNeeded, None, next).await?
                }
                SnapshotStart::NameTaken(_) => {
                    // Its own snapshot, started by a call whose answer was lost, or not listed yet: the
                    // next pass finds it by name and checks it is of this stack's data.
                    let message = format!("taking {noun} {snapshot} of {holder} before deleting stack {name}");
                    waiting(ctx, next, "SnapshotInProgress", message)
                }
                SnapshotStart::Busy(aws) => {
                    let message = format!(
                        "{holder} cannot be {} yet ({aws}); {noun} {snapshot} is taken once it can be, then stack \
                         {name} is deleted",
                        target.done()
                    );
                    waiting(ctx, next, "SnapshotWaiting", message)
                }
                SnapshotStart::Refused(aws) => match plan::decide_delete(
                    observed.as_ref(),
                    &owner,
                    policy,
                    &Backup::Failed(format!("AWS refused {noun} {snapshot} of {holder}: {aws}")),
                ) {
                    DeleteStep::Stall { reason, message } => stalled(ctx, next, reason, message),
                    _ => return Err(crate::error::Error::Internal("a refused snapshot did not stall".into())),
                },
            }
        }
        DeleteStep::WaitBackup => {
            let snapshot = next.snapshot_name.clone().unwrap_or_default();
            let noun = target.as_ref().map_or("snapshot", BackupTarget::noun);
            let message = match &backup {
                Backup::Busy(why) => {
                    format!("waiting to take {noun} {snapshot} ({why}) before deleting stack {name}")
                }
                _ => format!("taking {noun} {snapshot} before deleting stack {name}"),
            };
            waiting(ctx, next, "SnapshotInProgress", message)
        }
        DeleteStep::Orphan => {
            let obs =
                observed.as_ref().ok_or_else(|| crate::error::Error::Internal("retain without a stack".into()))?;
            // No preview that never ran is left on a stack nobody manages any more, recorded or not.
            ops.delete_leftover_change_sets(&obs.id, None).await?;
            next.plan = None;
            ops.retag(obs, &owner.orphaned_tags(&obs.tags), &time_token("retain", &owner.uid)).await?;
            waiting(ctx, next, "StackRetaining", format!("tagging stack {name} as orphaned before releasing it"))
        }
        DeleteStep::Stall { reason, message } => stalled(ctx, next, reason, message),
    };
    let requeue_after = match &outcome.health {
        Health::Stalled { .. } => ctx.settings.resync,
        _ => poll_delay(ctx),
    };
    finish(&api, obj, ctx, &prev, outcome).await?;
    Ok(Cleanup::Requeue(requeue_after))
}

/// Where this resource's snapshot stands. Only a stack that may hold data needs one; the name
/// recorded in status is the only one that counts, and it must be a snapshot of this stack's group.
async fn backup_state(
    ops: &Ops,
    observed: Option<&ObservedStack>,
    target: Option<&BackupTarget>,
    prev: &StackStatus,
) -> Result<Backup> {
    let Some(obs) = observed else {
        return Ok(Backup::NotNeeded);
    };
    match plan::phase(&obs.status) {
        // Nothing was ever made (a rolled-back create) or it is already gone.
        Phase::CreateRolledBack | Phase::Deleted => return Ok(Backup::NotNeeded),
        // decide_delete waits for it to settle first.
        Phase::InProgress => return Ok(Backup::InProgress),
        _ => {}
    }
    let Some(target) = target else {
        return Ok(Backup::Failed(format!(
            "stack {} reports nothing to back up, so the operator cannot tell where the data is",
            obs.id.rsplit('/').nth(1).unwrap_or(&obs.id)
        )));
    };
    let Some(name) = &prev.snapshot_name else {
        return Ok(Backup::NotNamed);
    };
    Ok(match target {
        BackupTarget::ElastiCacheReplicationGroup { replication_group_id: group, .. } => {
            match ops.snapshot(name).await? {
                None => Backup::NotStarted,
                Some(s) if s.replication_group_id.as_deref() != Some(group.as_str()) => Backup::Failed(format!(
                    "a snapshot named {name} already exists and is of {}, not of {group}",
                    s.replication_group_id.as_deref().unwrap_or("no replication group")
                )),
                Some(s) => match s.status.as_str() {
                    // Complete, and being copied or restored from: the data is kept either way.
                    "available" | "copying" | "restoring" => Backup::Done,
                    "creating" | "" => Backup::InProgress,
                    other => Backup::Failed(format!("snapshot {name} is {other}")),
                },
            }
        }
        // Listed by table, so a backup of that name is of this table.
        BackupTarget::DynamoDbTable { table_name, .. } => match ops.table_backup(table_name, name).await? {
            None => Backup::NotStarted,
            Some(b) => match b.status.as_str() {
                "AVAILABLE" => Backup::Done,
                "CREATING" | "" => Backup::InProgress,
                other => Backup::Failed(format!("backup {name} of table {table_name} is {other}")),
            },
        },
    })
}

#[allow(clippy::too_many_arguments)]
async fn delete_stack<K: DataStack>(
    obj: &K,
    ctx: &Context,
    ops: &Ops,
    obs: &ObservedStack,
    name: &str,
    uid: &str,
    backup: &Backup,
    target: Option<&BackupTarget>,
    mut next: StackStatus,
) -> Result<Outcome> {
    // The snapshot outlives this resource: list it as an OmsBackup before the stack goes, so it can
    // be found and restored with kubectl alone.
    if let (
        Backup::Done,
        Some(BackupTarget::ElastiCacheReplicationGroup { replication_group_id, .. }),
        Some(snapshot),
    ) = (backup, target, next.snapshot_name.as_deref())
    {
        let kind = crate::source::SourceKind::of(K::kind(&()).as_ref())
            .ok_or_else(|| crate::error::Error::Internal("a data kind without backups".into()))?;
        let source = crate::source::SourceRef { kind, name: obj.name_any() };
        let namespace = obj.namespace().unwrap_or_default();
        crate::backup::list_final_snapshot(ctx, &namespace, source, snapshot, replication_group_id, &ops.region)
            .await?;
    }
    if *backup == Backup::Done
        && obs.status != "DELETE_FAILED"
        && let Some(target) = target
    {
        let snapshot = next.snapshot_name.clone().unwrap_or_default();
        let listed = match target {
            BackupTarget::ElastiCacheReplicationGroup { .. } => {
                format!(" (listed as OmsBackup {})", snapshot.to_lowercase())
            }
            BackupTarget::DynamoDbTable { .. } => String::new(),
        };
        let note =
            format!("{} {snapshot} of {} is available{listed}; deleting stack {name}", target.noun(), target.holder());
        publish_event(ctx, obj, EventType::Normal, "SnapshotCompleted", target.action(), note).await;
    }
    let failed = obs.status == "DELETE_FAILED";
    if failed {
        next.last_failure = Some(failure_text(ops, obs).await?);
    }
    ops.delete(&obs.id, &time_token("delete", uid)).await?;
    next.stack_status = Some("DELETE_IN_PROGRESS".into());
    Ok(if failed {
        let failure = next.last_failure.clone().unwrap_or_default();
        waiting(ctx, next, "StackDeleteFailed", format!("deleting stack {name} failed: {failure}; retrying"))
    } else {
        let message = format!("deleting stack {name}{}", after_failure(&next));
        waiting(ctx, next, "StackDeleting", message)
    })
}
