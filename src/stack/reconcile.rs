//! One reconcile of a data-stack resource: finalizer, then either the apply path (desired stack →
//! plan → CloudFormation → status and Secret) or the deletion path (the deletion policy), each
//! ending in one status write and, on a transition, one Event.

use super::cfn::{ObservedStack, Ops, UpdateOutcome};
use super::kind::{BackupTarget, DataStack, DeletionPolicy, Desired, Published};
use super::ownership::Owner;
use super::plan::{self, Backup, DeleteStep, Inputs, Step};
use super::publish;
use super::status::{self, Health, StackStatus};
use crate::controller::Context;
use crate::error::{AwsCategory, Error, Result, kube_call};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use std::sync::Arc;
use std::time::Duration;

pub const FINALIZER: &str = "data.oms-spider.io/stack";

/// The fields of [`StackStatus`] in status JSON; every other status field belongs to the kind.
pub const LIFECYCLE_FIELDS: [&str; 9] = [
    "observedGeneration",
    "conditions",
    "stackName",
    "stackId",
    "stackStatus",
    "appliedParameters",
    "secretName",
    "recreateAttempts",
    "snapshotName",
];

/// Reconciles one resource. Errors are also reported as a Warning Event whose reason is the
/// error's static category.
pub async fn reconcile<K: DataStack>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let key = crate::metrics::object_key(&*obj);
    ctx.metrics.reconcile_started(&key);
    let result = reconcile_inner(obj.clone(), &ctx).await;
    // Every path but await_change comes back; errors come back through the error policy.
    let gone = obj.meta().deletion_timestamp.is_some() && matches!(&result, Ok(a) if *a == Action::await_change());
    ctx.metrics.reconcile_finished(&key, !gone);
    if gone {
        ctx.metrics.forget(&*obj);
    }
    ctx.metrics.reconciled(started.elapsed(), result.as_ref().err().map(Error::category));
    if let Err(e) = &result {
        tracing::warn!(
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            category = e.category(),
            error = %e,
            "reconcile failed"
        );
        publish_event(&ctx, &*obj, EventType::Warning, e.category(), "Reconcile", e.to_string()).await;
        record_error(&*obj, &ctx, e).await;
    }
    result
}

/// Puts a failed reconcile into the conditions, so `kubectl get`/`describe` and GitOps tools see
/// it: AWS refusing the request (validation, access) needs someone to act, so it stalls; anything
/// else is retried and shows as still reconciling.
async fn record_error<K: DataStack>(obj: &K, ctx: &Context, e: &Error) {
    let reason = e.category();
    let message = e.to_string();
    let health = match e {
        Error::Aws { category: AwsCategory::Validation | AwsCategory::AccessDenied, .. } => {
            Health::Stalled { reason, message }
        }
        _ => Health::Reconciling { reason, message },
    };
    let prev = obj.stack_status().cloned().unwrap_or_default();
    let outcome = Outcome { next: prev.clone(), health, published: None, requeue: Action::await_change() };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    if let Err(write) = write_status(&api, obj, ctx, &prev, outcome).await {
        tracing::warn!(error = %write, "could not record the failure in status");
    }
}

/// Requeues after an error: refusals and throttling wait longer than passing failures.
pub fn error_policy<K: DataStack>(_obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let s = &ctx.settings;
    match err {
        // Refusals repeat until someone acts (or a dependency appears): ask again slowly.
        Error::Aws { category: AwsCategory::Validation | AwsCategory::AccessDenied, .. } => {
            Action::requeue(s.max_poll_interval.max(s.poll_interval))
        }
        Error::Aws { category: AwsCategory::Throttled, .. } => Action::requeue(s.poll_interval * 3),
        _ => Action::requeue(s.poll_interval),
    }
}

async fn reconcile_inner<K: DataStack>(obj: Arc<K>, ctx: &Context) -> Result<Action> {
    let ns = obj.namespace().ok_or_else(|| Error::Internal("a namespaced resource without a namespace".into()))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    if obj.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        return match cleanup(&*obj, ctx).await? {
            Cleanup::Release => {
                remove_finalizer(&api, &*obj, ctx).await?;
                Ok(Action::await_change())
            }
            Cleanup::Requeue(after) => Ok(Action::requeue(after)),
        };
    }
    if !has_finalizer {
        add_finalizer(&api, &*obj, ctx).await?;
    }
    apply(&api, &obj, ctx).await
}

async fn add_finalizer<K: DataStack>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<()> {
    // The test on the current list makes a concurrent change fail instead of being overwritten.
    let patch = if obj.finalizers().is_empty() {
        serde_json::json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ])
    } else {
        serde_json::json!([
            { "op": "test", "path": "/metadata/finalizers", "value": obj.finalizers() },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ])
    };
    json_patch(api, obj, patch, "add finalizer", ctx).await
}

async fn remove_finalizer<K: DataStack>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<()> {
    let Some(i) = obj.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{i}");
    let patch = serde_json::json!([
        { "op": "test", "path": path, "value": FINALIZER },
        { "op": "remove", "path": path },
    ]);
    json_patch(api, obj, patch, "remove finalizer", ctx).await
}

async fn json_patch<K: DataStack>(
    api: &Api<K>,
    obj: &K,
    patch: serde_json::Value,
    action: &'static str,
    ctx: &Context,
) -> Result<()> {
    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| Error::Internal(e.to_string()))?;
    kube_call(
        action,
        ctx.settings.kube_timeout,
        api.patch(&obj.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch)),
    )
    .await?;
    Ok(())
}

fn owner_of<K: DataStack>(obj: &K, cluster_id: &str) -> Result<Owner> {
    Ok(Owner {
        cluster_id: cluster_id.to_string(),
        kind: K::kind(&()).to_string(),
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        uid: obj.uid().ok_or_else(|| Error::Internal("a resource without a uid".into()))?,
    })
}

/// What one pass decided to report.
struct Outcome {
    next: StackStatus,
    health: Health,
    published: Option<Published>,
    requeue: Action,
}

async fn apply<K: DataStack>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<Action> {
    let prev = obj.stack_status().cloned().unwrap_or_default();
    let mut next = prev.clone();
    let desired = match obj.desired() {
        Ok(d) => d,
        Err(e) => {
            let health = Health::Stalled { reason: "InvalidSpec", message: e.to_string() };
            return finish(
                api,
                obj,
                ctx,
                &prev,
                Outcome { next, health, published: None, requeue: Action::await_change() },
            )
            .await;
        }
    };
    let owner = owner_of(obj, &ctx.settings.cluster_id)?;
    let ops = ctx.aws.clients(desired.region.as_deref())?;
    let observed = ops.describe(&desired.stack_name).await?;
    next.stack_name = Some(desired.stack_name.clone());
    next.secret_name = Some(desired.secret_name.clone());
    if let Some(o) = &observed {
        next.stack_id = Some(o.id.clone());
        next.stack_status = Some(o.status.clone());
    }
    let step = plan::decide(&Inputs {
        observed: observed.as_ref(),
        desired: &desired,
        applied: prev.applied_parameters.as_ref(),
        owner: &owner,
        recreate_attempts: prev.recreate_attempts.unwrap_or(0),
    });
    let outcome = act(obj, ctx, &ops, step, &desired, observed.as_ref(), &owner, next).await?;
    finish(api, obj, ctx, &prev, outcome).await
}

#[allow(clippy::too_many_arguments)]
async fn act<K: DataStack>(
    obj: &K,
    ctx: &Context,
    ops: &Ops,
    step: Step,
    desired: &Desired,
    observed: Option<&ObservedStack>,
    owner: &Owner,
    mut next: StackStatus,
) -> Result<Outcome> {
    let name = &desired.stack_name;
    let tags = owner.tags(&desired.tags);
    let waiting = |next: StackStatus, reason: &'static str, message: String| Outcome {
        requeue: Action::requeue(poll_delay(&next, ctx)),
        next,
        health: Health::Reconciling { reason, message },
        published: None,
    };
    Ok(match step {
        Step::Create => {
            let attempt = next.recreate_attempts.unwrap_or(0);
            let token = format!("create-{}-{attempt}", owner.uid);
            ops.create(name, K::template_body(), &desired.parameters, &tags, &token).await?;
            next.applied_parameters = Some(desired.parameters.clone());
            next.stack_id = None;
            next.stack_status = Some("CREATE_IN_PROGRESS".into());
            waiting(next, "StackCreating", format!("creating stack {name}"))
        }
        Step::Wait => {
            let status = next.stack_status.clone().unwrap_or_default();
            waiting(next, "StackInProgress", format!("stack {name} is {status}"))
        }
        Step::Update { adopting } => {
            let token = format!(
                "update-{}-g{}-{}",
                owner.uid,
                obj.meta().generation.unwrap_or(0),
                &publish::content_hash(&desired.parameters)[..12]
            );
            let outcome = ops.update(name, K::template_body(), &desired.parameters, &tags, &token).await?;
            next.applied_parameters = Some(desired.parameters.clone());
            match (outcome, observed) {
                (UpdateOutcome::NoChange, Some(obs)) if plan::phase(&obs.status) == plan::Phase::Complete => {
                    ready(obj, next, obs, desired, ctx.settings.resync)?
                }
                _ => {
                    next.stack_status = Some("UPDATE_IN_PROGRESS".into());
                    let verb = if adopting { "adopting" } else { "updating" };
                    waiting(
                        next,
                        if adopting { "StackAdopting" } else { "StackUpdating" },
                        format!("{verb} stack {name}"),
                    )
                }
            }
        }
        Step::Publish => {
            let obs = observed.ok_or_else(|| Error::Internal("publish without a stack".into()))?;
            ready(obj, next, obs, desired, ctx.settings.resync)?
        }
        Step::PublishRolledBack => {
            let obs = observed.ok_or_else(|| Error::Internal("publish without a stack".into()))?;
            let failure = failure_text(ops, obs).await?;
            let published = obj.publish(&obs.outputs, &obs.parameters).ok();
            Outcome {
                next,
                health: Health::Stalled {
                    reason: "StackUpdateRolledBack",
                    message: format!(
                        "the update of stack {name} failed and was rolled back: {failure}. \
                         The previous configuration still serves and stays published; change the spec to try again"
                    ),
                },
                published,
                requeue: Action::requeue(ctx.settings.resync),
            }
        }
        Step::Recreate => {
            let obs = observed.ok_or_else(|| Error::Internal("recreate without a stack".into()))?;
            let failure = failure_text(ops, obs).await?;
            let attempt = next.recreate_attempts.unwrap_or(0) + 1;
            let message = format!(
                "stack {name} failed to create: {failure}. Deleting it to create it again (attempt {attempt} of {})",
                plan::MAX_RECREATES
            );
            publish_event(ctx, obj, EventType::Warning, "StackRecreating", "DeleteStack", message.clone()).await;
            ops.delete(&obs.id, &time_token("recreate", &owner.uid)).await?;
            next.recreate_attempts = Some(attempt);
            next.stack_status = Some("DELETE_IN_PROGRESS".into());
            waiting(next, "StackRecreating", message)
        }
        Step::RetryDelete => {
            let obs = observed.ok_or_else(|| Error::Internal("delete without a stack".into()))?;
            let failure = failure_text(ops, obs).await?;
            ops.delete(&obs.id, &time_token("delete", &owner.uid)).await?;
            waiting(next, "StackDeleteFailed", format!("deleting stack {name} failed: {failure}; retrying"))
        }
        Step::Refuse { reason, message } => {
            let message = match observed {
                Some(obs) if reason == "StackFailed" || reason == "StackCreateFailed" => {
                    format!("{message}. Cause: {}", failure_text(ops, obs).await?)
                }
                _ => message,
            };
            Outcome {
                next,
                health: Health::Stalled { reason, message },
                published: None,
                requeue: Action::requeue(ctx.settings.resync),
            }
        }
    })
}

/// Settled: publish, and look again after the resync period (drift, lost events).
fn ready<K: DataStack>(
    obj: &K,
    mut next: StackStatus,
    obs: &ObservedStack,
    desired: &Desired,
    resync: Duration,
) -> Result<Outcome> {
    next.recreate_attempts = None;
    match obj.publish(&obs.outputs, &obs.parameters) {
        Ok(published) => Ok(Outcome {
            next,
            health: Health::Ready {
                reason: "StackReady",
                message: format!(
                    "stack {} is {}; connection settings are in Secret {}",
                    desired.stack_name, obs.status, desired.secret_name
                ),
            },
            published: Some(published),
            requeue: Action::requeue(resync),
        }),
        Err(e) => Ok(Outcome {
            next,
            health: Health::Stalled { reason: "StackOutputsMissing", message: e.to_string() },
            published: None,
            requeue: Action::requeue(resync),
        }),
    }
}

async fn failure_text(ops: &Ops, obs: &ObservedStack) -> Result<String> {
    Ok(ops
        .first_failure(&obs.id)
        .await?
        .or_else(|| obs.status_reason.clone())
        .unwrap_or_else(|| format!("stack is {}", obs.status)))
}

fn time_token(op: &str, uid: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{op}-{uid}-{secs}")
}

/// While CloudFormation works: poll at the configured interval at first, then back off to a fifth
/// of the time already waited, capped.
fn poll_delay(status: &StackStatus, ctx: &Context) -> Duration {
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == status::RECONCILING && c.status == "True")
        .map(|c| c.last_transition_time.0);
    let waited = since
        .and_then(|t| {
            let now = k8s_openapi::jiff::Timestamp::now();
            now.duration_since(t).try_into().ok()
        })
        .unwrap_or(Duration::ZERO);
    (waited / 5).clamp(ctx.settings.poll_interval, ctx.settings.max_poll_interval.max(ctx.settings.poll_interval))
}

enum Cleanup {
    Release,
    Requeue(Duration),
}

async fn cleanup<K: DataStack>(obj: &K, ctx: &Context) -> Result<Cleanup> {
    let prev = obj.stack_status().cloned().unwrap_or_default();
    let mut next = prev.clone();
    let desired = obj.desired().ok();
    let policy = obj.deletion_policy();
    let Some(stack) = prev
        .stack_id
        .clone()
        .or_else(|| prev.stack_name.clone())
        .or_else(|| desired.as_ref().map(|d| d.stack_name.clone()))
    else {
        return Ok(Cleanup::Release);
    };
    let owner = owner_of(obj, &ctx.settings.cluster_id)?;
    let ops = ctx.aws.clients(obj.region().as_deref())?;
    let observed = ops.describe(&stack).await?;
    if let Some(o) = &observed {
        next.stack_id = Some(o.id.clone());
        next.stack_status = Some(o.status.clone());
    }
    let target = if policy == DeletionPolicy::Snapshot { obj.backup_target(&today()) } else { None };
    let backup = match &target {
        None => Backup::NotNeeded,
        Some(BackupTarget::ElastiCacheReplicationGroup { snapshot_name, .. }) => {
            let name = prev.snapshot_name.clone().unwrap_or_else(|| snapshot_name.clone());
            match ops.snapshot_status(&name).await?.as_deref() {
                None => Backup::NotStarted,
                Some("available") => Backup::Done,
                Some("failed") => Backup::Failed(format!("snapshot {name} failed")),
                Some(_) => Backup::InProgress,
            }
        }
    };
    let step = plan::decide_delete(observed.as_ref(), &owner, policy, &backup);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let secret_name = prev.secret_name.clone().or_else(|| desired.as_ref().map(|d| d.secret_name.clone()));
    let wait = |next: StackStatus, reason: &'static str, message: String| Outcome {
        requeue: Action::requeue(poll_delay(&next, ctx)),
        next,
        health: Health::Reconciling { reason, message },
        published: None,
    };
    let outcome = match step {
        DeleteStep::Done | DeleteStep::LeaveAlone(_) => {
            match &step {
                DeleteStep::LeaveAlone(why) => {
                    publish_event(
                        ctx,
                        obj,
                        EventType::Warning,
                        "StackNotOwned",
                        "Delete",
                        format!("stack {stack} was left alone: {why}"),
                    )
                    .await;
                }
                _ if policy == DeletionPolicy::Retain => {
                    if let Some(s) = &secret_name {
                        publish::release_secret(&secrets, s, ctx.settings.kube_timeout).await?;
                    }
                    publish_event(
                        ctx,
                        obj,
                        EventType::Normal,
                        "StackRetained",
                        "Delete",
                        format!(
                            "stack {stack} was kept and tagged {}=true; Secret kept without its owner reference",
                            super::ownership::ORPHANED
                        ),
                    )
                    .await;
                }
                _ => {
                    publish_event(
                        ctx,
                        obj,
                        EventType::Normal,
                        "StackDeleted",
                        "Delete",
                        format!("stack {stack} is deleted"),
                    )
                    .await;
                }
            }
            return Ok(Cleanup::Release);
        }
        DeleteStep::Wait => {
            let status = next.stack_status.clone().unwrap_or_default();
            wait(next, "Deleting", format!("waiting for stack {stack} ({status}) before deleting"))
        }
        DeleteStep::Delete => {
            let obs = observed.as_ref().ok_or_else(|| Error::Internal("delete without a stack".into()))?;
            if backup == Backup::Done {
                let name = next.snapshot_name.clone().unwrap_or_default();
                publish_event(
                    ctx,
                    obj,
                    EventType::Normal,
                    "SnapshotCompleted",
                    "CreateSnapshot",
                    format!("snapshot {name} is available; deleting stack {stack}"),
                )
                .await;
            }
            if obs.status == "DELETE_FAILED" {
                let failure = failure_text(&ops, obs).await?;
                publish_event(
                    ctx,
                    obj,
                    EventType::Warning,
                    "StackDeleteFailed",
                    "DeleteStack",
                    format!("deleting stack {stack} failed: {failure}; retrying"),
                )
                .await;
            }
            ops.delete(&obs.id, &time_token("delete", &owner.uid)).await?;
            next.stack_status = Some("DELETE_IN_PROGRESS".into());
            wait(next, "StackDeleting", format!("deleting stack {stack}"))
        }
        DeleteStep::StartBackup => {
            let Some(BackupTarget::ElastiCacheReplicationGroup { replication_group_id, snapshot_name }) = &target
            else {
                return Err(Error::Internal("backup without a target".into()));
            };
            ops.create_snapshot(replication_group_id, snapshot_name).await?;
            next.snapshot_name = Some(snapshot_name.clone());
            publish_event(ctx, obj, EventType::Normal, "SnapshotStarted", "CreateSnapshot",
                format!("snapshot {snapshot_name} of {replication_group_id} started; stack {stack} is deleted once it is available")).await;
            wait(next, "SnapshotInProgress", format!("taking snapshot {snapshot_name} before deleting stack {stack}"))
        }
        DeleteStep::WaitBackup => {
            let name = next.snapshot_name.clone().unwrap_or_default();
            wait(next, "SnapshotInProgress", format!("taking snapshot {name} before deleting stack {stack}"))
        }
        DeleteStep::Orphan => {
            let obs = observed.as_ref().ok_or_else(|| Error::Internal("retain without a stack".into()))?;
            ops.retag(obs, &owner.orphaned_tags(&obs.tags), &time_token("retain", &owner.uid)).await?;
            wait(next, "StackRetaining", format!("tagging stack {stack} as orphaned before releasing it"))
        }
        DeleteStep::Stall { reason, message } => Outcome {
            next,
            health: Health::Stalled { reason, message },
            published: None,
            requeue: Action::requeue(ctx.settings.resync),
        },
    };
    let requeue_after = match &outcome.health {
        Health::Stalled { .. } => ctx.settings.resync,
        _ => poll_delay(&outcome.next, ctx),
    };
    finish(&api, obj, ctx, &prev, outcome).await?;
    Ok(Cleanup::Requeue(requeue_after))
}

/// Today's date as the seed's backups name it (YYYYMMDD, UTC).
fn today() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y%m%d").to_string()
}

/// Writes status (and the Secret when there is something to publish) and reports a transition.
async fn finish<K: DataStack>(
    api: &Api<K>,
    obj: &K,
    ctx: &Context,
    prev: &StackStatus,
    outcome: Outcome,
) -> Result<Action> {
    let health = outcome.health.clone();
    let requeue = outcome.requeue.clone();
    let next = write_status(api, obj, ctx, prev, outcome).await?;
    let prev_reason = prev.conditions.iter().find(|c| c.type_ == status::READY).map(|c| c.reason.as_str());
    if prev_reason != Some(health.reason()) || prev.stack_status != next.stack_status {
        tracing::info!(
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            reason = health.reason(),
            stack_status = next.stack_status.as_deref().unwrap_or(""),
            "{}",
            health.message()
        );
        let type_ = if matches!(health, Health::Stalled { .. }) { EventType::Warning } else { EventType::Normal };
        publish_event(ctx, obj, type_, health.reason(), "Reconcile", health.message().to_string()).await;
    }
    ctx.metrics.observe_phase(obj, next.stack_status.as_deref());
    Ok(requeue)
}

/// Applies the Secret (when publishing) and the status; returns the lifecycle status written.
async fn write_status<K: DataStack>(
    api: &Api<K>,
    obj: &K,
    ctx: &Context,
    prev: &StackStatus,
    outcome: Outcome,
) -> Result<StackStatus> {
    let Outcome { mut next, health, published, .. } = outcome;
    let generation = obj.meta().generation;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    next.observed_generation = generation;
    next.conditions = status::conditions(&prev.conditions, &health, generation, &now);

    if let Some(p) = &published {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        let name = next.secret_name.clone().unwrap_or_default();
        publish::apply_secret(&secrets, &publish::secret(obj, &name, &p.secret, true), ctx.settings.kube_timeout)
            .await?;
    }

    // The kind's fields: newly published ones, else whatever was published before.
    let mut status = serde_json::Map::new();
    if let Some(p) = &published {
        status.extend(p.status.clone());
    } else if let Ok(serde_json::Value::Object(old)) = serde_json::to_value(obj).map(|v| v["status"].clone()) {
        status.extend(old.into_iter().filter(|(k, _)| !LIFECYCLE_FIELDS.contains(&k.as_str())));
    }
    if let Ok(serde_json::Value::Object(lifecycle)) = serde_json::to_value(&next) {
        status.extend(lifecycle);
    }
    publish::apply_status(api, obj, serde_json::Value::Object(status), ctx.settings.kube_timeout).await?;
    Ok(next)
}

/// Publishes an Event; a failure to do so is logged, never fatal.
pub async fn publish_event<K: DataStack>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    let reference = obj.object_ref(&());
    match tokio::time::timeout(ctx.settings.kube_timeout, ctx.recorder.publish(&event, &reference)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(reason, error = %e, "could not publish an Event"),
        Err(_) => tracing::warn!(reason, "publishing an Event timed out"),
    }
}
