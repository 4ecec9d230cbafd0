//! The apply path: the desired stack, checked against the identity recorded in status, then the
//! plan, then CloudFormation, then status and Secret. A stack that vanished while it held data is
//! reported as lost, never silently replaced by an empty one unless the kind allows it.

use super::accounts;
use super::cfn::{ObservedStack, Ops};
use super::changeset::{self, Preview};
use super::credential;
use super::kind::{Credential, DataStack, Desired, RestoreSource};
use super::outside;
use super::ownership::Owner;
use super::plan::{self, Inputs, Lost, Step};
use super::reconcile::{
    Outcome, Refusal, after_failure, confirm_current, failure_text, finish, poll_delay, publish_event, reach,
    short_hash, stalled, time_token, waiting,
};
use super::restore::Verdict;
use super::status::{AuthStatus, Health, StackStatus};
use crate::context::Context;
use crate::error::{AwsCategory, Error, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use std::time::Duration;

/// Stack statuses that mean the latest operation failed and CloudFormation is undoing it.
const ROLLING_BACK: [&str; 3] =
    ["ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"];

pub(super) async fn apply<K: DataStack>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<Action> {
    let prev = obj.stack_status().cloned().unwrap_or_default();
    let mut next = prev.clone();
    let desired = match obj.desired() {
        Ok(d) => d,
        Err(e) => {
            let outcome = Outcome {
                next,
                health: Health::Stalled { reason: "InvalidSpec", message: e.to_string() },
                published: None,
                requeue: Action::await_change(),
            };
            return finish(api, obj, ctx, &prev, outcome).await;
        }
    };
    let region = ctx
        .aws
        .region_for(desired.region.as_deref())
        .ok_or_else(|| Error::Internal("no AWS region: set spec.region, --region or AWS_REGION".into()))?;
    // Once a stack was asked for, the resource is bound to it: a spec that now points elsewhere
    // (an object older than the apply-time rules) is refused before any AWS call.
    if prev.stack_id.is_some() || prev.applied_parameters.is_some() {
        let recorded_region = plan::recorded_region(&prev);
        let moved =
            plan::identity_change(recorded_region.as_deref(), prev.stack_name.as_deref(), &region, &desired.stack_name);
        if let Some(message) = moved {
            let mut outcome = stalled(ctx, next, "StackIdentityChanged", message);
            outcome.requeue = Action::await_change();
            return finish(api, obj, ctx, &prev, outcome).await;
        }
    }
    let (owner, ops, role) = match reach(obj, ctx, &prev, Some(&region)).await? {
        Ok(reached) => reached,
        Err(Refusal { reason, message, retry }) => {
            let mut outcome = stalled(ctx, next, reason, message);
            outcome.requeue = Action::requeue(retry);
            return finish(api, obj, ctx, &prev, outcome).await;
        }
    };
    let observed = match fresh_read_needed(obj, &prev) {
        true => ops.describe(&desired.stack_name).await?,
        false => ops.observe(&desired.stack_name, sweep_age(&prev, ctx)).await?,
    };
    next.stack_name = Some(desired.stack_name.clone());
    next.secret_name = Some(desired.secret_name.clone());
    next.region = Some(region);
    next.role_arn = role.map(|r| r.arn);
    let lost = match &observed {
        Some(o) => {
            next.stack_id = Some(o.id.clone());
            next.stack_status = Some(o.status.clone());
            next.lost_stack_id = None;
            None
        }
        None => find_lost(&ops, &prev).await?,
    };
    if let Some(l) = &lost {
        next.stack_status = Some("DELETE_COMPLETE".into());
        next.lost_stack_id = Some(l.stack_id.clone());
    }
    let requested = obj
        .annotations()
        .get(plan::REQUESTED_AT)
        .filter(|v| prev.last_handled_requested_at.as_ref() != Some(*v))
        .cloned();
    let outside = match &observed {
        Some(o) if plan::phase(&o.status) == plan::Phase::Complete => {
            // Only a stack this resource already had: one being adopted or refused is not compared.
            let ours = prev.stack_id.as_deref() == Some(o.id.as_str());
            outside::changed::<K>(&ops, o, ours, &mut next, &desired, &owner.tags(&desired.tags)).await?
        }
        _ => Vec::new(),
    };
    let rolled_back_outside = observed.as_ref().is_some_and(|o| outside::rolled_back(&prev, o));
    let step = plan::decide(&Inputs {
        observed: observed.as_ref(),
        desired: &desired,
        applied: prev.applied_parameters.as_ref(),
        owner: &owner,
        recreate_attempts: prev.recreate_attempts.unwrap_or(0),
        lost: lost.as_ref(),
        retry_requested: requested.is_some(),
        changed_outside: &outside,
        rollback_continued: prev.rollback_continued == Some(true),
        rolled_back_outside,
    });
    if let (Step::Create { .. }, Some(source)) = (&step, &desired.restore) {
        match super::restore::check(obj, &ops, source).await? {
            Verdict::Go => {}
            Verdict::Wait(message) => {
                return finish(api, obj, ctx, &prev, waiting(ctx, next, "RestoreSnapshotPending", message)).await;
            }
            Verdict::Refuse(reason, message) => {
                let mut outcome = stalled(ctx, next, reason, message);
                outcome.requeue = Action::requeue(ctx.settings.max_poll_interval);
                return finish(api, obj, ctx, &prev, outcome).await;
            }
        }
    }
    if step.writes_to_aws() {
        confirm_current(api, obj, ctx).await?;
    }
    if let (true, Step::Publish, Some(o)) = (rolled_back_outside, &step, &observed) {
        outside::report_rolled_back(ctx, obj, &ops, o, &prev).await?;
    }
    if let Some(value) = &requested {
        next.last_handled_requested_at = Some(value.clone());
    }
    let mut outcome = act(obj, ctx, &ops, step, &desired, observed.as_ref(), &owner, requested.as_deref(), next)
        .await
        .map_err(|e| explained(obj, e))?;
    // An update asked for by requested-at takes several passes (its change set is made, then
    // read): the request stays open until the change set runs or is refused for good.
    let previewing = outcome
        .next
        .plan
        .as_ref()
        .is_some_and(|p| [changeset::PREVIEWING, changeset::REFUSED].contains(&p.state.as_str()));
    if requested.is_some() && previewing {
        outcome.next.last_handled_requested_at = prev.last_handled_requested_at.clone();
    }
    outcome.next.account = outcome.next.stack_id.as_deref().and_then(accounts::account_of_stack);
    // Whatever publishes (a settled stack, a rolled-back one) also says what the store reports of itself.
    if let (Some(published), Some(obs)) = (outcome.published.as_mut(), observed.as_ref()) {
        published.status.extend(obj.read_live(&ops, &obs.outputs).await);
    }
    // The checks beside Ready: each says how soon it wants to look again, and the sooner wins.
    let endpoint = super::endpoint::check(obj, &mut outcome, &ctx.probes);
    let drift = super::drift::check(obj, &ops, observed.as_ref(), &mut outcome, ctx.settings.poll_interval).await?;
    if let Some(soonest) = endpoint.into_iter().chain(drift).min() {
        outcome.requeue = Action::requeue(soonest.min(ctx.settings.resync));
    }
    finish(api, obj, ctx, &prev, outcome).await
}

/// A spec edit or a retry request is decided on a read of the stack made now; everything else
/// (polling, resync) on the shared sweep.
fn fresh_read_needed<K: DataStack>(obj: &K, prev: &StackStatus) -> bool {
    let edited = obj.meta().generation != prev.observed_generation;
    let retry =
        obj.annotations().get(plan::REQUESTED_AT).is_some_and(|v| prev.last_handled_requested_at.as_ref() != Some(v));
    prev.stack_id.is_some() && (edited || retry)
}

/// How old a sweep may be: a poll interval while CloudFormation works, longer once it settled.
pub(super) fn sweep_age(prev: &StackStatus, ctx: &Context) -> Duration {
    match prev.stack_status.as_deref().map(plan::phase) {
        Some(plan::Phase::InProgress) => ctx.settings.poll_interval,
        _ => ctx.settings.max_poll_interval.max(ctx.settings.poll_interval),
    }
}

/// The stack this resource had, if it held data and CloudFormation no longer has it by name.
async fn find_lost(ops: &Ops, prev: &StackStatus) -> Result<Option<Lost>> {
    let live_before = prev.stack_status.as_deref().is_some_and(plan::holds_data);
    let Some(id) = prev.lost_stack_id.clone().or_else(|| prev.stack_id.clone().filter(|_| live_before)) else {
        return Ok(None);
    };
    // By its id CloudFormation still answers for a deleted stack, with the time it was deleted.
    Ok(match ops.describe(&id).await? {
        Some(s) if s.status != "DELETE_COMPLETE" => None,
        seen => Some(Lost { stack_id: id, deleted_at: seen.and_then(|s| s.deletion_time) }),
    })
}

/// An AWS refusal in the kind's words, where it has some.
fn explained<K: DataStack>(obj: &K, e: Error) -> Error {
    match e {
        Error::Aws { action, category: AwsCategory::Validation, message } => {
            let message = obj.explain_refusal(&message).unwrap_or(message);
            Error::Aws { action, category: AwsCategory::Validation, message }
        }
        other => other,
    }
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
    requested: Option<&str>,
    mut next: StackStatus,
) -> Result<Outcome> {
    let name = &desired.stack_name;
    let tags = owner.tags(&desired.tags);
    Ok(match step {
        Step::Create { replacing_lost } => {
            let attempt = next.recreate_attempts.unwrap_or(0);
            let mut token = format!("create-{}-{attempt}", owner.uid);
            // A replacement is a new request, not a repeat of the create that made the lost stack.
            if let Some(lost) = &next.lost_stack_id {
                token.push_str(&format!("-l{}", short_hash(lost)));
            }
            // The password goes to CloudFormation with the create only, and never into status.
            let mut parameters = desired.parameters.clone();
            if let Some(c) = desired.credential.as_ref().filter(|c| credential::wanted(c, &next, true)) {
                let password = credential::for_create(obj, &secrets(obj, ctx), c, ctx.settings.kube_timeout).await?;
                parameters.insert(c.parameter.to_string(), password);
                next.auth = Some(AuthStatus {
                    enabled: true,
                    secret_name: Some(c.secret_name.clone()),
                    ..AuthStatus::default()
                });
            }
            let id = ops.create(name, &desired.template, &parameters, &tags, &token).await?;
            next.applied_parameters = Some(desired.parameters.clone());
            next.stack_id = id;
            next.lost_stack_id = None;
            next.stack_status = Some("CREATE_IN_PROGRESS".into());
            match (replacing_lost, next.last_failure.clone()) {
                (Some(why), _) => waiting(ctx, next, "StackLost", why),
                (None, Some(failure)) => {
                    let message = format!(
                        "creating stack {name} again (attempt {attempt} of {}) after: {failure}",
                        plan::MAX_RECREATES
                    );
                    waiting(ctx, next, "StackRecreating", message)
                }
                (None, None) => {
                    let from = match &desired.restore {
                        Some(RestoreSource::ElastiCacheSnapshot { snapshot_name }) => {
                            format!(" from snapshot {snapshot_name}")
                        }
                        None => String::new(),
                    };
                    waiting(ctx, next, "StackCreating", format!("creating stack {name}{from}"))
                }
            }
        }
        Step::Wait => {
            let obs = observed.ok_or_else(|| Error::Internal("wait without a stack".into()))?;
            // Entering a rollback: read why once, so every message until it settles says it.
            let entered = next.stack_status.as_deref() != obj.stack_status().and_then(|s| s.stack_status.as_deref());
            if ROLLING_BACK.contains(&obs.status.as_str()) && (entered || next.last_failure.is_none()) {
                next.last_failure = Some(failure_text(ops, obs).await?);
            }
            let reason = if next.recreate_attempts.unwrap_or(0) > 0 { "StackRecreating" } else { "StackInProgress" };
            let message = format!("stack {name} is {}{}", obs.status, after_failure(&next));
            waiting(ctx, next, reason, message)
        }
        Step::Revert { changes } => {
            let note = format!(
                "stack {name} was changed outside the operator: {}; changing it back to the spec",
                changes.join("; ")
            );
            // Its own change set: the same content asked again by the outside change it undoes.
            let changed = changes.join("; ");
            let was_executing = next.plan.as_ref().is_some_and(|p| p.state == changeset::EXECUTING);
            let update = Step::Update { adopting: false };
            let outcome =
                Box::pin(act(obj, ctx, ops, update, desired, observed, owner, Some(changed.as_str()), next)).await?;
            let executing = outcome.next.plan.as_ref().is_some_and(|p| p.state == changeset::EXECUTING);
            if executing && !was_executing {
                publish_event(ctx, obj, EventType::Warning, "StackChangedOutside", "Update", note.clone()).await;
            }
            match outcome.health {
                Health::Reconciling { .. } => waiting(ctx, outcome.next, "StackChangedOutside", note),
                _ => outcome,
            }
        }
        Step::Update { adopting } => {
            let obs = observed.ok_or_else(|| Error::Internal("update without a stack".into()))?;
            // A stack's password is changed only in place (see credential), and what only a create may
            // set is never changed: updates keep both as the stack has them.
            let keep: Vec<&str> = desired
                .credential
                .as_ref()
                .map(|c| c.parameter)
                .into_iter()
                .chain(desired.create_only.iter().copied())
                .filter(|p| observed.is_some_and(|o| o.parameters.contains_key(*p)))
                .collect();
            let mut parameters = desired.parameters.clone();
            parameters.retain(|k, _| !desired.create_only.contains(&k.as_str()));
            // Tags the stack has but was not sent (someone's edit, or a stack being adopted) make this
            // a new request, not a repeat of the change set that last set them.
            let salt: Vec<String> = requested
                .map(String::from)
                .into_iter()
                .chain((obs.tags != tags).then(|| format!("{:?}", obs.tags)))
                .collect();
            let salt = salt.join("\n");
            let request = changeset::Request {
                template: &desired.template,
                parameters: &parameters,
                keep: &keep,
                tags: &tags,
                salt: Some(salt.as_str()).filter(|s| !s.is_empty()),
            };
            let change_set = request.name();
            let token = format!("update-{}-{change_set}", owner.uid);
            let recorded = next.plan.as_ref().is_some_and(|p| p.change_set == change_set);
            let (preview, plan) = changeset::advance(
                ops,
                &obs.id,
                &change_set,
                recorded,
                &request,
                &token,
                K::data_resource_types(),
                desired.allow_replacement,
            )
            .await?;
            next.plan = plan;
            match preview {
                Preview::Pending => {
                    let message = format!("previewing the update of stack {name} (change set {change_set})");
                    return Ok(waiting(ctx, next, "StackPreviewing", message));
                }
                Preview::Refused(replaced) => {
                    let message = changeset::refusal(name, &change_set, &replaced, K::replacement_note());
                    return Ok(stalled(ctx, next, "StackChangeReplacesData", message));
                }
                Preview::Failed(reason) => {
                    let message = format!(
                        "CloudFormation could not preview the update of stack {name} (change set {change_set}): \
                         {reason}. Nothing was changed; change the spec"
                    );
                    return Ok(stalled(ctx, next, "StackPreviewFailed", message));
                }
                Preview::RolledBack => {
                    let failure = failure_text(ops, obs).await?;
                    let message = format!(
                        "the update of stack {name} failed and was rolled back: {failure}. The same update is not \
                         sent again; change the spec, or annotate this resource with {}=<any new value> to try it \
                         once more",
                        plan::REQUESTED_AT
                    );
                    next.last_failure = Some(failure);
                    return Ok(stalled(ctx, next, "StackUpdateRolledBack", message));
                }
                Preview::NoChange | Preview::Executed => {}
            }
            next.applied_parameters = Some(desired.parameters.clone());
            next.last_failure = None;
            match (preview, observed) {
                (Preview::NoChange, Some(obs)) if plan::phase(&obs.status) == plan::Phase::Complete => {
                    let password = password_now(obj, ctx, desired, &next).await?;
                    ready(obj, next, obs, desired, password.as_deref(), ctx.settings.resync)
                }
                _ => {
                    next.stack_status = Some("UPDATE_IN_PROGRESS".into());
                    let (reason, message) = match (adopting, requested) {
                        (true, _) => ("StackAdopting", format!("adopting stack {name}")),
                        (false, Some(r)) => (
                            "StackUpdating",
                            format!("updating stack {name} once more, as asked by {}={r}", plan::REQUESTED_AT),
                        ),
                        (false, None) => ("StackUpdating", format!("updating stack {name}")),
                    };
                    let message = match next.plan.as_ref().map(|p| p.changes.as_slice()) {
                        Some(changes) if !changes.is_empty() => format!("{message}: {}", changeset::summary(changes)),
                        _ => message,
                    };
                    waiting(ctx, next, reason, message)
                }
            }
        }
        Step::Publish => {
            let obs = observed.ok_or_else(|| Error::Internal("publish without a stack".into()))?;
            // The spec went back to what the stack has: a preview it left behind is dropped.
            if let Some(left) = next.plan.take_if(|p| changeset::never_ran(p)) {
                changeset::discard(ops, &obs.id, &left).await?;
            }
            match &desired.credential {
                Some(c) => settle_credential(obj, ctx, ops, c, obs, desired, next).await?,
                None => ready(obj, next, obs, desired, None, ctx.settings.resync),
            }
        }
        Step::PublishRolledBack => {
            let obs = observed.ok_or_else(|| Error::Internal("publish without a stack".into()))?;
            let failure = match next.last_failure.clone() {
                Some(f) => f,
                None => failure_text(ops, obs).await?,
            };
            next.last_failure = Some(failure.clone());
            next.rollback_continued = None;
            next.stack_updated_at = obs.last_updated.clone();
            next.outside_update = None;
            if let Some(p) = next.plan.as_mut().filter(|p| p.state == changeset::EXECUTING) {
                p.state = changeset::ROLLED_BACK.to_string();
            }
            let password = password_now(obj, ctx, desired, &next).await?;
            let published = obj.publish(&obs.outputs, &obs.parameters, password.as_deref()).ok();
            let message = format!(
                "the update of stack {name} failed and was rolled back: {failure}. The previous configuration still \
                 serves and stays published; change the spec, or annotate this resource with {}=<any new value> to \
                 try the same spec again",
                plan::REQUESTED_AT
            );
            Outcome { published, ..stalled(ctx, next, "StackUpdateRolledBack", message) }
        }
        Step::Recreate => {
            let obs = observed.ok_or_else(|| Error::Internal("recreate without a stack".into()))?;
            let failure = failure_text(ops, obs).await?;
            let attempt = next.recreate_attempts.unwrap_or(0) + 1;
            let message = format!(
                "stack {name} failed to create: {failure}. Deleting it to create it again (attempt {attempt} of {})",
                plan::MAX_RECREATES
            );
            ops.delete(&obs.id, &time_token("recreate", &owner.uid)).await?;
            next.recreate_attempts = Some(attempt);
            next.last_failure = Some(failure);
            next.stack_status = Some("DELETE_IN_PROGRESS".into());
            waiting(ctx, next, "StackRecreating", message)
        }
        Step::ContinueRollback => {
            let obs = observed.ok_or_else(|| Error::Internal("continue without a stack".into()))?;
            let failure = rollback_failure_text(ops, obs).await?;
            let token = format!("continue-{}-{}", owner.uid, short_hash(&format!("{}{failure}", obs.id)));
            let token = match requested {
                Some(r) => format!("{token}-r{}", short_hash(r)),
                None => token,
            };
            ops.continue_rollback(&obs.id, &token).await?;
            let message = format!(
                "the update of stack {name} failed and so did its rollback: {failure}. Continuing the rollback \
                 (ContinueUpdateRollback, skipping nothing)"
            );
            publish_event(
                ctx,
                obj,
                EventType::Warning,
                "StackRollbackFailed",
                "ContinueUpdateRollback",
                message.clone(),
            )
            .await;
            // last_failure stays the update's: it is why the cache is not what the spec says.
            next.rollback_continued = Some(true);
            next.stack_status = Some("UPDATE_ROLLBACK_IN_PROGRESS".into());
            waiting(ctx, next, "StackRollbackContinuing", message)
        }
        Step::RetryDelete => {
            let obs = observed.ok_or_else(|| Error::Internal("delete without a stack".into()))?;
            let failure = failure_text(ops, obs).await?;
            ops.delete(&obs.id, &time_token("delete", &owner.uid)).await?;
            next.last_failure = Some(failure.clone());
            waiting(ctx, next, "StackDeleteFailed", format!("deleting stack {name} failed: {failure}; retrying"))
        }
        Step::Refuse { reason: reason @ "StackRollbackFailed", message } => {
            let obs = observed.ok_or_else(|| Error::Internal("a failed rollback without a stack".into()))?;
            let failure = rollback_failure_text(ops, obs).await?;
            stalled(ctx, next, reason, format!("{message}. The rollback failed on: {failure}"))
        }
        Step::Refuse { reason, message } => {
            let message = match observed {
                Some(obs) if reason == "StackFailed" || reason == "StackCreateFailed" => {
                    let failure = failure_text(ops, obs).await?;
                    let message = format!("{message}. Cause: {failure}");
                    next.last_failure = Some(failure);
                    message
                }
                _ => message,
            };
            stalled(ctx, next, reason, message)
        }
    })
}

/// Why the latest rollback failed, else the stack's own reason.
async fn rollback_failure_text(ops: &Ops, obs: &ObservedStack) -> Result<String> {
    Ok(ops
        .rollback_failure(&obs.id)
        .await?
        .or_else(|| obs.status_reason.clone())
        .unwrap_or_else(|| format!("stack is {}", obs.status)))
}

/// Settled: publish, and look again after the resync period (drift, lost events).
fn ready<K: DataStack>(
    obj: &K,
    mut next: StackStatus,
    obs: &ObservedStack,
    desired: &Desired,
    password: Option<&str>,
    resync: Duration,
) -> Outcome {
    next.recreate_attempts = None;
    next.last_failure = None;
    next.lost_stack_id = None;
    next.rollback_continued = None;
    next.stack_updated_at = obs.last_updated.clone();
    next.outside_update = None;
    if let Some(p) = next.plan.as_mut().filter(|p| p.state == changeset::EXECUTING) {
        p.state = changeset::APPLIED.to_string();
    }
    match obj.publish(&obs.outputs, &obs.parameters, password) {
        Ok(published) => Outcome {
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
        },
        Err(e) => Outcome {
            next,
            health: Health::Stalled { reason: "StackOutputsMissing", message: e.to_string() },
            published: None,
            requeue: Action::requeue(resync),
        },
    }
}

fn secrets<K: DataStack>(obj: &K, ctx: &Context) -> Api<Secret> {
    Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default())
}

/// The password clients use now, for publishing without moving a rotation on.
async fn password_now<K: DataStack>(
    obj: &K,
    ctx: &Context,
    desired: &Desired,
    next: &StackStatus,
) -> Result<Option<String>> {
    match &desired.credential {
        Some(c) => credential::current(&secrets(obj, ctx), c, next, ctx.settings.kube_timeout).await,
        None => Ok(None),
    }
}

/// A settled stack with a password: the password one step further (a rotation, or turning it on),
/// then published with the password clients are to use.
async fn settle_credential<K: DataStack>(
    obj: &K,
    ctx: &Context,
    ops: &Ops,
    c: &Credential,
    obs: &ObservedStack,
    desired: &Desired,
    mut next: StackStatus,
) -> Result<Outcome> {
    let target = obj.credential_target(&obs.outputs);
    let poll = poll_delay(ctx);
    let settled = credential::settle(obj, ctx, ops, c, target.as_ref(), &next, poll).await?;
    if let Some((reason, note)) = &settled.news {
        publish_event(ctx, obj, EventType::Normal, reason, "AuthToken", note.clone()).await;
    }
    let keeps_auth = next.auth.is_some() || settled.auth.enabled || settled.auth.rotation.is_some();
    if keeps_auth {
        next.auth = Some(settled.auth.clone());
    }
    let mut outcome = ready(obj, next, obs, desired, settled.password.as_deref(), ctx.settings.resync);
    if !matches!(outcome.health, Health::Ready { .. }) {
        return Ok(outcome);
    }
    if let Some(message) = settled.refused {
        let published = outcome.published.take();
        return Ok(Outcome { published, ..stalled(ctx, outcome.next, "AuthCannotBeTurnedOff", message) });
    }
    if let Some((reason, message, after)) = settled.working {
        let published = outcome.published.take();
        let mut working = waiting(ctx, outcome.next, reason, message);
        working.published = published;
        working.requeue = Action::requeue(after);
        return Ok(working);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::OmsRedis;

    fn redis(generation: i64, requested_at: Option<&str>) -> OmsRedis {
        let annotations = requested_at.map(|v| serde_json::json!({ plan::REQUESTED_AT: v }));
        serde_json::from_value(serde_json::json!({
            "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsRedis",
            "metadata": { "name": "a", "namespace": "n", "generation": generation, "annotations": annotations },
            "spec": { "environment": "dev", "vpcStackName": "vpc" },
        }))
        .expect("an OmsRedis")
    }

    #[test]
    fn only_an_edit_or_an_open_retry_request_reads_the_stack_now() {
        let prev = StackStatus {
            stack_id: Some("arn:aws:cloudformation:us-east-1:1:stack/a/1".into()),
            observed_generation: Some(2),
            last_handled_requested_at: Some("t1".into()),
            ..Default::default()
        };
        assert!(!fresh_read_needed(&redis(2, None), &prev), "settled, nothing asked: the sweep answers");
        assert!(!fresh_read_needed(&redis(2, Some("t1")), &prev), "a handled request is not asked again");
        assert!(fresh_read_needed(&redis(3, None), &prev), "an edit");
        assert!(fresh_read_needed(&redis(2, Some("t2")), &prev), "a new request");
        let new = StackStatus { stack_id: None, ..prev };
        assert!(!fresh_read_needed(&redis(3, Some("t2")), &new), "no stack yet: the sweep says whether one exists");
    }
}
