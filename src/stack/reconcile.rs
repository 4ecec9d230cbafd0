//! One reconcile of a data-stack resource: the pause annotation, the finalizer, then either the
//! apply path ([`super::apply`]) or the deletion path ([`super::delete`]), each ending in one status
//! write and, on a transition, one Event. This module owns what both paths share: the finalizer,
//! status and Event writing, failure recording and poll timing.

use super::accounts::{self, Role};
use super::cfn::{ObservedStack, Ops};
use super::kind::{DataStack, Published};
use super::ownership::Owner;
use super::plan;
use super::publish;
use super::status::{self, Health, StackStatus};
use crate::context::Context;
use crate::error::{AwsCategory, Error, Result, kube_call};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use std::sync::Arc;
use std::time::Duration;

pub const FINALIZER: &str = "data.oms-spider.io/stack";

/// What the helpers shared with the day-2 resources (finalizers, Events, fresh reads) need of a kind.
pub trait Object:
    kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize
{
}
impl<K> Object for K where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize
{
}

/// The condition type shown while the pause annotation is set.
pub const PAUSED_CONDITION: &str = "Paused";

/// The fields of [`StackStatus`] in status JSON; every other status field belongs to the kind.
pub const LIFECYCLE_FIELDS: [&str; 22] = [
    "observedGeneration",
    "plan",
    "stackUpdatedAt",
    "outsideUpdate",
    "conditions",
    "stackName",
    "stackId",
    "stackStatus",
    "appliedParameters",
    "secretName",
    "recreateAttempts",
    "snapshotName",
    "region",
    "lastFailure",
    "lostStackId",
    "lastHandledRequestedAt",
    "account",
    "roleArn",
    "auth",
    "endpointCheck",
    "rollbackContinued",
    "drift",
];

/// Reconciles one resource. Errors are also reported as a Warning Event whose reason is the
/// error's static category.
pub async fn reconcile<K: DataStack>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let key = crate::metrics::object_key(&*obj);
    ctx.metrics.reconcile_started(&key);
    let result = match reconcile_inner(obj.clone(), &ctx).await {
        // The watch brings the newer copy and with it another pass; the requeue is only a safety net.
        Err(Error::Stale(what)) => {
            tracing::debug!(what, "stale copy; nothing was written");
            Ok(Action::requeue(ctx.settings.poll_interval))
        }
        other => other,
    };
    // Every path but await_change comes back; errors come back through the error policy.
    let gone = obj.meta().deletion_timestamp.is_some() && matches!(&result, Ok(a) if *a == Action::await_change());
    ctx.metrics.reconcile_finished(&key, !gone);
    if gone {
        ctx.metrics.forget(&*obj);
    }
    ctx.metrics.reconciled(started.elapsed(), result.as_ref().err().map(Error::category));
    if let Err(e) = &result
        && quiet_throttling(e, &ctx)
    {
        tracing::info!(
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            error = %e,
            "AWS throttled; the call budget slows down and the pass is retried"
        );
    } else if let Err(e) = &result {
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

/// A Throttling answer within the grace of a storm (see [`crate::context::Settings`]) is the call
/// budget's to absorb (it halves its rate at each one): the pass is retried without telling the user.
fn quiet_throttling(e: &Error, ctx: &Context) -> bool {
    matches!(e, Error::Aws { category: AwsCategory::Throttled, .. })
        && ctx.aws.budget().storm().is_some_and(|d| d < ctx.settings.throttling_grace)
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
    Action::requeue(retry_after(err, &ctx))
}

async fn reconcile_inner<K: DataStack>(obj: Arc<K>, ctx: &Context) -> Result<Action> {
    let ns = obj.namespace().ok_or_else(|| Error::Internal("a namespaced resource without a namespace".into()))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    if obj.annotations().get(plan::PAUSED).is_some_and(|v| v == "true") {
        return pause(&api, &*obj, ctx).await;
    }
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    if obj.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        return match super::delete::cleanup(&*obj, ctx).await? {
            super::delete::Cleanup::Release => {
                remove_finalizer(&api, &*obj, ctx).await?;
                Ok(Action::await_change())
            }
            super::delete::Cleanup::Requeue(after) => Ok(Action::requeue(after)),
        };
    }
    let obj = if has_finalizer { obj } else { Arc::new(add_finalizer(&api, &*obj, ctx).await?) };
    super::apply::apply(&api, &*obj, ctx).await
}

/// Confirms that the copy being reconciled is the cluster's current one, before a step that changes
/// AWS: the watch cache can lag behind the operator's own last status write, and a decision made
/// from an older status (no applied parameters, no snapshot name) would repeat or undo work.
pub(crate) async fn confirm_current<K: Object>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<()> {
    let current =
        kube_call("read before changing AWS", ctx.settings.kube_timeout, api.get_metadata(&obj.name_any())).await?;
    if current.metadata.resource_version != obj.resource_version() {
        return Err(Error::stale(obj));
    }
    Ok(())
}

/// While the pause annotation is set, nothing is created, changed or deleted (deletion included,
/// as in Crossplane); the conditions say so and otherwise keep what they said.
async fn pause<K: DataStack>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<Action> {
    let prev = obj.stack_status().cloned().unwrap_or_default();
    // Removing the annotation is a change and wakes the resource; the resync only keeps a paused
    // resource that is being deleted from counting as released (the metrics forget those).
    let later = Action::requeue(ctx.settings.resync);
    if prev.conditions.iter().any(|c| c.type_ == PAUSED_CONDITION && c.status == "True") {
        return Ok(later);
    }
    let message = format!(
        "reconciling is paused by the annotation {}=true: nothing is created, changed or deleted (deletion \
         included) until it is removed",
        plan::PAUSED
    );
    let mut conditions: Vec<Condition> =
        prev.conditions.iter().filter(|c| c.type_ != PAUSED_CONDITION).cloned().collect();
    conditions.push(Condition {
        type_: PAUSED_CONDITION.into(),
        status: "True".into(),
        reason: "ReconcilePaused".into(),
        message: message.clone(),
        observed_generation: obj.meta().generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    });
    let mut status = match serde_json::to_value(obj).map(|v| v["status"].clone()) {
        Ok(serde_json::Value::Object(old)) => old,
        _ => serde_json::Map::new(),
    };
    status.insert("conditions".into(), serde_json::to_value(&conditions).map_err(|e| Error::Internal(e.to_string()))?);
    publish::apply_status(api, obj, serde_json::Value::Object(status), ctx.settings.kube_timeout).await?;
    publish_event(ctx, obj, EventType::Normal, "ReconcilePaused", "Pause", message).await;
    Ok(later)
}

/// Finalizers are written with the resourceVersion they were computed from as a precondition, so a
/// concurrent change (or a stale copy) fails the write instead of being overwritten.
async fn add_finalizer<K: DataStack>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<K> {
    add_named_finalizer(api, obj, FINALIZER, ctx).await
}

/// Adds `finalizer`, returning the object as written.
pub(crate) async fn add_named_finalizer<K: Object>(api: &Api<K>, obj: &K, finalizer: &str, ctx: &Context) -> Result<K> {
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(finalizer.to_string());
    patch_finalizers(api, obj, finalizers, "add finalizer", ctx).await
}

async fn remove_finalizer<K: DataStack>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<()> {
    remove_named_finalizer(api, obj, FINALIZER, ctx).await
}

pub(crate) async fn remove_named_finalizer<K: Object>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
    ctx: &Context,
) -> Result<()> {
    if !obj.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let finalizers = obj.finalizers().iter().filter(|f| *f != finalizer).cloned().collect();
    patch_finalizers(api, obj, finalizers, "remove finalizer", ctx).await.map(|_| ())
}

async fn patch_finalizers<K: Object>(
    api: &Api<K>,
    obj: &K,
    finalizers: Vec<String>,
    action: &'static str,
    ctx: &Context,
) -> Result<K> {
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": obj.resource_version(), "finalizers": finalizers }
    });
    let patched = kube_call(
        action,
        ctx.settings.kube_timeout,
        api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)),
    )
    .await;
    crate::error::stale_on_conflict(patched, obj)
}

/// Why a pass must not reach the stack's AWS account: stall with this reason and message, and
/// look again after `retry`.
pub(super) struct Refusal {
    pub reason: &'static str,
    pub message: String,
    pub retry: Duration,
}

/// The clients for the stack's account (the namespace's role, if it names one) and its owner tags.
/// The account is part of the stack's identity: a stack made in one account is never looked for,
/// taken for gone, or made again in another.
pub(super) async fn reach<K: DataStack>(
    obj: &K,
    ctx: &Context,
    prev: &StackStatus,
    region: Option<&str>,
) -> Result<std::result::Result<(Owner, Ops, Option<Role>), Refusal>> {
    let namespace = obj.namespace().unwrap_or_default();
    let role = match accounts::role_for(&ctx.client, &ctx.namespaces, &namespace, ctx.settings.kube_timeout).await? {
        Ok(role) => role,
        Err(message) => {
            let retry = ctx.settings.max_poll_interval;
            return Ok(Err(Refusal { reason: "InvalidNamespaceRole", message, retry }));
        }
    };
    if let Some(message) = accounts::account_change(prev.stack_id.as_deref(), prev.role_arn.as_deref(), role.as_ref()) {
        return Ok(Err(Refusal { reason: "StackIdentityChanged", message, retry: ctx.settings.resync }));
    }
    let mut owner = owner_of(obj, &ctx.settings.cluster_id)?;
    owner.account = role.as_ref().and_then(|r| r.account()).map(str::to_string);
    let ops = ctx.aws.clients(region, role.as_ref()).await?;
    Ok(Ok((owner, ops, role)))
}

/// The clients a day-2 resource of `namespace` uses for its data resource's `region`: the
/// namespace's role when it names one. With `stack`, the data resource's recorded stack id and role:
/// a role of another account than the stack's is refused, as the data resource itself refuses it.
/// `Err` carries why, for the user.
pub(crate) async fn reach_namespace(
    ctx: &Context,
    namespace: &str,
    region: Option<&str>,
    stack: Option<(Option<&str>, Option<&str>)>,
) -> Result<std::result::Result<Ops, String>> {
    let role = match accounts::role_for(&ctx.client, &ctx.namespaces, namespace, ctx.settings.kube_timeout).await? {
        Ok(role) => role,
        Err(message) => return Ok(Err(message)),
    };
    if let Some((stack_id, recorded_role)) = stack
        && let Some(message) = accounts::account_change(stack_id, recorded_role, role.as_ref())
    {
        return Ok(Err(message));
    }
    Ok(Ok(ctx.aws.clients(region, role.as_ref()).await?))
}

/// How long to wait after a failed pass: refusals and throttling wait longer than passing failures.
pub(crate) fn retry_after(err: &Error, ctx: &Context) -> Duration {
    let s = &ctx.settings;
    match err {
        // Refusals repeat until someone acts (or a dependency appears): ask again slowly.
        Error::Aws { category: AwsCategory::Validation | AwsCategory::AccessDenied, .. } => {
            s.max_poll_interval.max(s.poll_interval)
        }
        Error::Aws { category: AwsCategory::Throttled, .. } => s.poll_interval * 3,
        // AWS unreachable: every resource backs off with the outage, so a long one costs little.
        Error::Aws { category: AwsCategory::Transient, .. } | Error::Timeout { .. } => {
            ctx.aws.budget().outage_delay(s.poll_interval, s.max_poll_interval)
        }
        _ => s.poll_interval,
    }
}

pub(crate) fn owner_of<K: DataStack>(obj: &K, cluster_id: &str) -> Result<Owner> {
    Ok(Owner {
        cluster_id: cluster_id.to_string(),
        kind: K::kind(&()).to_string(),
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        uid: obj.uid().ok_or_else(|| Error::Internal("a resource without a uid".into()))?,
        account: None,
    })
}

/// What one pass decided to report.
pub(super) struct Outcome {
    pub next: StackStatus,
    pub health: Health,
    pub published: Option<Published>,
    pub requeue: Action,
}

/// Still working: report it and look again soon.
pub(super) fn waiting(ctx: &Context, next: StackStatus, reason: &'static str, message: String) -> Outcome {
    Outcome {
        requeue: Action::requeue(poll_delay(ctx)),
        next,
        health: Health::Reconciling { reason, message },
        published: None,
    }
}

/// Nothing will change until someone acts: report it and look again after the resync period.
pub(super) fn stalled(ctx: &Context, next: StackStatus, reason: &'static str, message: String) -> Outcome {
    Outcome {
        next,
        health: Health::Stalled { reason, message },
        published: None,
        requeue: Action::requeue(ctx.settings.resync),
    }
}

/// The reason the stack's latest operation failed: the first failed resource, else the stack's
/// own status reason, else its status.
pub(super) async fn failure_text(ops: &Ops, obs: &ObservedStack) -> Result<String> {
    Ok(ops
        .first_failure(&obs.id)
        .await?
        .or_else(|| obs.status_reason.clone())
        .unwrap_or_else(|| format!("stack is {}", obs.status)))
}

/// `; retrying after: <failure>` when a failure is on record, for messages while the operator works.
pub(super) fn after_failure(status: &StackStatus) -> String {
    status.last_failure.as_deref().map(|f| format!("; retrying after: {f}")).unwrap_or_default()
}

pub(super) fn time_token(op: &str, uid: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{op}-{uid}-{secs}")
}

/// The first characters of a SHA-256 of `s`, to keep request tokens short and unique.
pub(super) fn short_hash(s: &str) -> String {
    let data = std::collections::BTreeMap::from([(String::new(), s.to_string())]);
    publish::content_hash(&data)[..10].to_string()
}

/// While CloudFormation works: look again at the poll interval. A look costs no AWS call of its own
/// (the shared sweep answers it, see [`super::survey`]) and no write when nothing changed, so it
/// does not back off: the stack is seen settled at most a poll interval or two after it settles.
pub(super) fn poll_delay(ctx: &Context) -> Duration {
    ctx.settings.poll_interval
}

/// Writes status (and the Secret when there is something to publish) and reports a transition.
pub(super) async fn finish<K: DataStack>(
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
        let type_ = if health.is_warning() { EventType::Warning } else { EventType::Normal };
        publish_event(ctx, obj, type_, health.reason(), "Reconcile", health.message().to_string()).await;
    }
    let drifted = |s: &StackStatus| s.drift.as_ref().and_then(|d| d.drifted);
    if let (Some(d), Some(true), true) = (&next.drift, drifted(&next), drifted(prev) != drifted(&next)) {
        let note = format!("resources of the stack drifted: {}", d.differences.join("; "));
        publish_event(ctx, obj, EventType::Warning, "ResourcesDrifted", "DetectStackDrift", note).await;
    }
    let reachable = |s: &StackStatus| s.endpoint_check.as_ref().map(|c| c.reachable);
    if let (Some(check), true) = (&next.endpoint_check, reachable(prev) != reachable(&next)) {
        let (type_, reason) = if check.reachable {
            (EventType::Normal, "EndpointAnswered")
        } else {
            (EventType::Warning, "EndpointUnreachable")
        };
        publish_event(ctx, obj, type_, reason, "EndpointCheck", check.message.clone()).await;
    }
    for advisory in obj.advisories() {
        if !prev.conditions.iter().any(|c| c.type_ == advisory.type_ && c.status == "True") {
            let type_ = if advisory.warning { EventType::Warning } else { EventType::Normal };
            publish_event(ctx, obj, type_, advisory.reason, "Reconcile", advisory.message).await;
        }
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
    next.conditions.extend(status::advisory_conditions(&prev.conditions, &obj.advisories(), generation, &now));
    if let Some(check) = &next.endpoint_check {
        next.conditions.push(status::endpoint_condition(&prev.conditions, check, generation));
    }
    if let Some(c) = next.drift.as_ref().and_then(|d| status::drift_condition(&prev.conditions, d, generation)) {
        next.conditions.push(c);
    }

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
    let status = serde_json::Value::Object(status);
    // A pass that changed nothing writes nothing: polling a thousand stacks costs no API writes.
    if serde_json::to_value(obj).is_ok_and(|o| o["status"] == status) {
        return Ok(next);
    }
    publish::apply_status(api, obj, status, ctx.settings.kube_timeout).await?;
    Ok(next)
}

/// Publishes an Event; a failure to do so is logged, never fatal.
pub async fn publish_event<K: Object>(
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

#[cfg(test)]
mod tests {
    use super::*;

    const READY_FOR_TEST: &str = status::READY;

    /// write_status keeps the kind's fields by leaving out these: every lifecycle field must be here.
    #[test]
    fn lifecycle_fields_are_every_field_of_the_stack_status() {
        let full = StackStatus {
            observed_generation: Some(1),
            conditions: vec![Condition {
                type_: READY_FOR_TEST.into(),
                status: "True".into(),
                reason: "R".into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            }],
            stack_name: Some(String::new()),
            stack_id: Some(String::new()),
            stack_status: Some(String::new()),
            applied_parameters: Some(Default::default()),
            secret_name: Some(String::new()),
            recreate_attempts: Some(0),
            snapshot_name: Some(String::new()),
            region: Some(String::new()),
            last_failure: Some(String::new()),
            lost_stack_id: Some(String::new()),
            last_handled_requested_at: Some(String::new()),
            account: Some(String::new()),
            role_arn: Some(String::new()),
            auth: Some(Default::default()),
            rollback_continued: Some(true),
            drift: Some(Default::default()),
            endpoint_check: Some(status::EndpointCheck {
                reachable: true,
                last_check_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                latency_milliseconds: 1,
                message: String::new(),
            }),
            plan: Some(Default::default()),
            stack_updated_at: Some(String::new()),
            outside_update: Some(Default::default()),
        };
        let value = serde_json::to_value(full).expect("json");
        let mut keys: Vec<&str> = value.as_object().expect("object").keys().map(String::as_str).collect();
        let mut listed = LIFECYCLE_FIELDS.to_vec();
        keys.sort_unstable();
        listed.sort_unstable();
        assert_eq!(keys, listed);
    }
}
