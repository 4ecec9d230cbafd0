//! Changes made to a stack outside the operator: someone's `update-stack` (parameters, template,
//! tags), which the operator names and undoes, and someone's update that failed and rolled back,
//! which leaves the stack as the operator left it.

use super::cfn::{ObservedStack, Ops};
use super::changeset;
use super::kind::{DataStack, Desired};
use super::plan;
use super::reconcile::{failure_text, publish_event};
use super::status::{OutsideUpdate, StackStatus};
use crate::context::Context;
use crate::error::Result;
use kube::runtime::events::EventType;
use std::collections::BTreeMap;

/// What a settled stack says that the spec does not: someone's update-stack. Its parameters are
/// compared at every look. Its template and tags are compared once the stack was updated since the
/// operator last saw it settle, which costs one GetTemplate per such update: the finding is kept in
/// status.outsideUpdate until the stack is back at the spec.
pub(super) async fn changed<K: DataStack>(
    ops: &Ops,
    obs: &ObservedStack,
    ours: bool,
    next: &mut StackStatus,
    desired: &Desired,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let mut changes = plan::changed_outside(&obs.parameters, &desired.parameters, K::template());
    // An update of the operator's own that just settled moved the time too.
    let own_update = next.plan.as_ref().is_some_and(|p| p.state == changeset::EXECUTING);
    if !ours || own_update || obs.last_updated == next.stack_updated_at {
        return Ok(changes);
    }
    let seen = match next.outside_update.take() {
        Some(seen) if Some(&seen.seen_at) == obs.last_updated.as_ref() => seen,
        _ => OutsideUpdate {
            seen_at: obs.last_updated.clone().unwrap_or_default(),
            template_differs: !plan::same_template(
                ops.template(&obs.id).await?.as_ref(),
                &serde_json::from_str(&desired.template).unwrap_or_default(),
            ),
        },
    };
    if seen.template_differs {
        changes.push("the template is not the operator's".to_string());
    }
    changes.extend(plan::tags_changed(&obs.tags, tags));
    next.outside_update = Some(seen);
    Ok(changes)
}

/// Whether a stack that rolled back an update did so for someone else's update: the operator's own
/// is recorded as executing, then as rolled back with its failure; one cut short before it was
/// recorded leaves parameters that differ from the spec, which the plan sees first.
pub(super) fn rolled_back(prev: &StackStatus, obs: &ObservedStack) -> bool {
    plan::phase(&obs.status) == plan::Phase::UpdateRolledBack
        && prev.stack_id.as_deref() == Some(obs.id.as_str())
        && prev
            .plan
            .as_ref()
            .is_none_or(|p| ![changeset::EXECUTING, changeset::ROLLED_BACK].contains(&p.state.as_str()))
        && prev.last_failure.is_none()
}

/// Says once, with a Warning Event, that someone else's update failed and rolled back.
pub(super) async fn report_rolled_back<K: DataStack>(
    ctx: &Context,
    obj: &K,
    ops: &Ops,
    obs: &ObservedStack,
    prev: &StackStatus,
) -> Result<()> {
    if obs.last_updated == prev.stack_updated_at {
        return Ok(());
    }
    let failure = failure_text(ops, obs).await?;
    let name = prev.stack_name.as_deref().unwrap_or(obs.id.as_str());
    let note = format!(
        "an update of stack {name} made outside the operator failed and was rolled back: {failure}. The stack is as \
         the spec says"
    );
    publish_event(ctx, obj, EventType::Warning, "StackChangedOutside", "Update", note).await;
    Ok(())
}
