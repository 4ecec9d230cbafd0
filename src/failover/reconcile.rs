//! Where a test failover happens. One pass: check that the group can fail over (automatic failover
//! on, available), record the primaries and the time of the request, ask ElastiCache, then follow
//! the group until it is available with a new primary.
//!
//! The request time is in status before TestFailover is sent. A pass that finds it recorded but no
//! start asks ElastiCache for the group's events since then: the "Test Failover API called" event
//! says the request went through, so a crash between the call and the status write never fails the
//! group over twice.

use super::{FailoverPhase, NodeGroupFailover, OmsFailoverTest, OmsFailoverTestStatus};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::operation::{self, Operation, OperationStatus, Report, now, soon, working};
use crate::source;
use crate::stack::FailoverTarget;
use crate::stack::cfn::Ops;
use crate::stack::elasticache::GroupChange;
use crate::stack::reconcile::{confirm_current, reach_namespace};
use crate::stack::status::Health;
use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use std::time::Duration;

/// How long a started test may take before it is reported as failed.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30 * 60);
/// How long after the request TestFailover may still be sent (past failures were passing ones).
const GIVE_UP_STARTING: Duration = Duration::from_secs(10 * 60);

impl Operation for OmsFailoverTest {
    const ACTION: &'static str = "FailoverTest";

    fn pass<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Action>> {
        Box::pin(pass(self, ctx))
    }
}

impl OperationStatus for OmsFailoverTestStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>) {
        self.conditions = conditions;
        self.observed_generation = generation;
        if self.phase.is_none() {
            self.phase = Some(FailoverPhase::Pending);
        }
    }
}

type Step = Report<OmsFailoverTestStatus>;

async fn pass(obj: &OmsFailoverTest, ctx: &Context) -> Result<Action> {
    let ns = obj.namespace().ok_or_else(|| Error::Internal("a namespaced resource without a namespace".into()))?;
    let api: Api<OmsFailoverTest> = Api::namespaced(ctx.client.clone(), &ns);
    let prev = obj.status.clone().unwrap_or_default();
    if kube::Resource::meta(obj).deletion_timestamp.is_some()
        || matches!(prev.phase, Some(FailoverPhase::Succeeded | FailoverPhase::Refused | FailoverPhase::Failed))
    {
        return Ok(Action::await_change());
    }
    let step = match (&prev.requested_at, &prev.started_at) {
        (None, _) => prepare(obj, ctx, &ns, &prev).await?,
        (Some(_), None) => start(&api, obj, ctx, &ns, &prev).await?,
        (Some(_), Some(_)) => follow(ctx, &ns, &prev).await?,
    };
    operation::write(&api, obj, ctx, &prev, step).await
}

/// Checks the group can fail over and records the request (time, primaries) before anything is sent.
async fn prepare(obj: &OmsFailoverTest, ctx: &Context, ns: &str, prev: &OmsFailoverTestStatus) -> Result<Step> {
    let source = &obj.spec.source;
    let mut next = prev.clone();
    let Some(found) = source::resolve(ctx, ns, source).await? else {
        return Ok(pending(ctx, next, "SourceNotFound", format!("waiting for {source} to exist in namespace {ns}")));
    };
    let Some(FailoverTarget::ElastiCacheReplicationGroup { replication_group_id: group }) = found.failover.clone()
    else {
        let message = format!("waiting for {source} to be Ready: it has no replication group yet");
        return Ok(pending(ctx, next, "SourceNotReady", message));
    };
    let region = found.region.clone().or_else(|| ctx.aws.region_for(None));
    let ops = match reach_namespace(ctx, ns, region.as_deref(), found.identity()).await? {
        Ok(ops) => ops,
        Err(message) => return Ok(pending(ctx, next, "InvalidNamespaceRole", message)),
    };
    next.replication_group_id = Some(group.clone());
    next.region = region;
    let Some(live) = ops.group(&group).await? else {
        return Ok(ended(
            next,
            FailoverPhase::Failed,
            "ReplicationGroupNotFound",
            format!("replication group {group} does not exist"),
        ));
    };
    if live.automatic_failover.as_deref() != Some("enabled") {
        let message = format!(
            "refused: automatic failover is {} for replication group {group}, so ElastiCache has no replica to \
             promote. Failover tests need automaticFailoverEnabled with 2 or more nodes (the staging and prod \
             presets); a dev cache has one node",
            live.automatic_failover.as_deref().unwrap_or("off")
        );
        return Ok(ended(next, FailoverPhase::Refused, "FailoverNotEnabled", message));
    }
    if !live.available() {
        let message = format!(
            "refused: replication group {group} is {}, not available; nothing was changed. Create another \
             OmsFailoverTest once it is available",
            live.status
        );
        return Ok(ended(next, FailoverPhase::Refused, "ReplicationGroupBusy", message));
    }
    let wanted: Vec<_> = live
        .node_groups
        .iter()
        .filter(|n| obj.spec.node_group_id.as_ref().is_none_or(|id| *id == n.id))
        .map(|n| NodeGroupFailover {
            node_group_id: n.id.clone(),
            primary_before: n.primary.clone(),
            primary_after: None,
        })
        .collect();
    if wanted.is_empty() {
        let have: Vec<&str> = live.node_groups.iter().map(|n| n.id.as_str()).collect();
        let message = format!(
            "refused: replication group {group} has no node group {}; it has {}",
            obj.spec.node_group_id.as_deref().unwrap_or("?"),
            have.join(", ")
        );
        return Ok(ended(next, FailoverPhase::Refused, "NodeGroupNotFound", message));
    }
    next.node_groups = wanted;
    next.requested_at = Some(now());
    next.phase = Some(FailoverPhase::Running);
    let message = format!("asking ElastiCache to fail over {group}");
    Ok(Report { status: next, health: working("FailoverRequested", message), requeue: soon(ctx), news: None })
}

/// Sends TestFailover for each node group, unless the group's events show it was sent already.
async fn start(
    api: &Api<OmsFailoverTest>,
    obj: &OmsFailoverTest,
    ctx: &Context,
    ns: &str,
    prev: &OmsFailoverTestStatus,
) -> Result<Step> {
    let mut next = prev.clone();
    let group = prev.replication_group_id.clone().unwrap_or_default();
    let ops = match reach_namespace(ctx, ns, prev.region.as_deref(), None).await? {
        Ok(ops) => ops,
        Err(message) => return Ok(pending(ctx, next, "InvalidNamespaceRole", message)),
    };
    let requested = prev.requested_at.as_ref().map(|t| t.0).unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
    // Asked before, and the answer lost (a crash, a refused status write)? ElastiCache's events say
    // so; so does a group that is no longer as it was recorded (events can lag behind).
    let already = already_sent(&ops, &group, requested, &prev.node_groups).await?;
    let live = ops.group(&group).await?;
    let moved_on = live.as_ref().is_some_and(|g| {
        !g.available()
            || prev
                .node_groups
                .iter()
                .any(|n| g.node_groups.iter().any(|l| l.id == n.node_group_id && l.primary != n.primary_before))
    });
    let to_send: Vec<&NodeGroupFailover> =
        prev.node_groups.iter().filter(|n| !already.contains(&n.node_group_id)).collect();
    if !moved_on && !to_send.is_empty() {
        let waited = k8s_openapi::jiff::Timestamp::now().duration_since(requested).as_secs();
        if waited > i64::try_from(GIVE_UP_STARTING.as_secs()).unwrap_or(i64::MAX) {
            // A test is run when it is asked for, or not at all.
            let message = format!(
                "ElastiCache could not be asked within {} minutes of the request; nothing was sent. Create another \
                 OmsFailoverTest to test again",
                GIVE_UP_STARTING.as_secs() / 60
            );
            return Ok(ended(next, FailoverPhase::Failed, "FailoverNotStarted", message));
        }
        confirm_current(api, obj, ctx).await?;
        let mut sent: Vec<&str> = Vec::new();
        for n in to_send {
            if let GroupChange::Refused(aws) = ops.test_failover(&group, &n.node_group_id).await? {
                let message = match sent.is_empty() {
                    true => format!("refused by ElastiCache: {aws}. Nothing was changed"),
                    false => format!(
                        "node group {} was refused by ElastiCache ({aws}) after node group {} was asked to fail over",
                        n.node_group_id,
                        sent.join(", ")
                    ),
                };
                return Ok(ended(next, FailoverPhase::Refused, "FailoverRefused", message));
            }
            sent.push(&n.node_group_id);
        }
    }
    next.started_at = Some(now());
    let ids: Vec<&str> = next.node_groups.iter().map(|n| n.node_group_id.as_str()).collect();
    let note = format!("ElastiCache is failing over node group {} of {group}", ids.join(", "));
    Ok(Report {
        status: next,
        health: working("FailoverRunning", note.clone()),
        requeue: soon(ctx),
        news: Some(("FailoverStarted", note)),
    })
}

/// The node groups whose test failover ElastiCache already reports since `since`.
async fn already_sent(
    ops: &Ops,
    group: &str,
    since: k8s_openapi::jiff::Timestamp,
    node_groups: &[NodeGroupFailover],
) -> Result<Vec<String>> {
    // A little before the recorded time: clocks differ, and an event on the boundary counts. (A
    // failover just before the request would have left the group busy, and the request refused.)
    let since = std::time::SystemTime::from(since) - Duration::from_secs(5);
    let events = ops.group_events_since(group, since).await?;
    Ok(node_groups
        .iter()
        .filter(|n| events.iter().any(|e| is_test_failover_of(&e.message, &n.node_group_id)))
        .map(|n| n.node_group_id.clone())
        .collect())
}

/// ElastiCache's event when TestFailover is accepted: "Test Failover API called for node group <id>".
fn is_test_failover_of(message: &str, node_group: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("test failover api called") && m.contains(&format!("node group {node_group}"))
}

/// Follows a started test until the group is available with new primaries.
async fn follow(ctx: &Context, ns: &str, prev: &OmsFailoverTestStatus) -> Result<Step> {
    let mut next = prev.clone();
    let group = prev.replication_group_id.clone().unwrap_or_default();
    let ops = match reach_namespace(ctx, ns, prev.region.as_deref(), None).await? {
        Ok(ops) => ops,
        Err(message) => return Ok(pending(ctx, next, "InvalidNamespaceRole", message)),
    };
    let started = prev.started_at.as_ref().map(|t| t.0).unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
    let waited = k8s_openapi::jiff::Timestamp::now().duration_since(started);
    let Some(live) = ops.group(&group).await? else {
        let message = format!("replication group {group} disappeared during the test");
        return Ok(ended(next, FailoverPhase::Failed, "ReplicationGroupNotFound", message));
    };
    for n in next.node_groups.iter_mut() {
        n.primary_after = live.node_groups.iter().find(|g| g.id == n.node_group_id).and_then(|g| g.primary.clone());
    }
    let moved = next.node_groups.iter().all(|n| n.primary_after.is_some() && n.primary_after != n.primary_before);
    if live.available() && moved {
        let done = now();
        let seconds = done.0.duration_since(started).as_secs();
        next.completed_at = Some(done);
        next.duration_seconds = Some(seconds);
        next.phase = Some(FailoverPhase::Succeeded);
        let moves: Vec<String> = next
            .node_groups
            .iter()
            .map(|n| {
                format!(
                    "node group {}: primary {} -> {}",
                    n.node_group_id,
                    n.primary_before.as_deref().unwrap_or("?"),
                    n.primary_after.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let message = format!(
            "{}; replication group {group} was available again after {seconds} s. The primary endpoint is unchanged",
            moves.join("; ")
        );
        next.message = Some(message.clone());
        return Ok(Report {
            status: next,
            health: Health::Ready { reason: "FailoverSucceeded", message: message.clone() },
            requeue: Action::await_change(),
            news: Some(("FailoverSucceeded", message)),
        });
    }
    if waited.as_secs() > i64::try_from(GIVE_UP_AFTER.as_secs()).unwrap_or(i64::MAX) {
        let message = format!(
            "replication group {group} is {} and its primary did not move within {} minutes of the test",
            live.status,
            GIVE_UP_AFTER.as_secs() / 60
        );
        return Ok(ended(next, FailoverPhase::Failed, "FailoverDidNotComplete", message));
    }
    let message =
        format!("replication group {group} is {}; waiting for it to be available with a new primary", live.status);
    Ok(Report { status: next, health: working("FailoverRunning", message), requeue: soon(ctx), news: None })
}

fn pending(ctx: &Context, mut next: OmsFailoverTestStatus, reason: &'static str, message: String) -> Step {
    next.phase = Some(FailoverPhase::Pending);
    Report { status: next, health: working(reason, message), requeue: soon(ctx), news: None }
}

/// A test that is over without succeeding: refused (nothing changed) or failed.
fn ended(mut next: OmsFailoverTestStatus, phase: FailoverPhase, reason: &'static str, message: String) -> Step {
    next.phase = Some(phase);
    next.message = Some(message.clone());
    Report {
        status: next,
        health: Health::Stalled { reason, message: message.clone() },
        requeue: Action::await_change(),
        news: Some((reason, message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_failover_event_is_recognised_for_its_node_group_only() {
        assert!(is_test_failover_of("Test Failover API called for node group 0001", "0001"));
        assert!(!is_test_failover_of("Test Failover API called for node group 0002", "0001"));
        assert!(!is_test_failover_of("Failover to replica node x-002 completed", "0001"));
    }
}
