//! Every update is previewed before it runs: a change set is made, read, and executed only when it
//! replaces nothing that holds data (or the spec allows it). What CloudFormation says it will do is
//! kept in status.plan, so `kubectl describe` shows it before and after.
//!
//! A change set's name comes from what the update sends (and the generation that asked for it), so
//! a pass cut short anywhere finds its change set again instead of making a second one; before a
//! new one is made, the operator's unexecuted leftovers on the stack are deleted, so none pile up.
//! CloudFormation itself deletes a stack's other change sets when one is executed.

use super::cfn::{Ops, aws_error, sdk_tags, update_parameters};
use super::publish::content_hash;
use super::status::{ChangePlan, PlannedChange};
use crate::error::{Error, Result};
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{ChangeSetStatus, ExecutionStatus};
use std::collections::BTreeMap;

/// The operator's change sets, and only those, start with this.
pub const PREFIX: &str = "oms-";

pub const PREVIEWING: &str = "Previewing";
pub const REFUSED: &str = "Refused";
pub const FAILED: &str = "Failed";
pub const EXECUTING: &str = "Executing";
pub const APPLIED: &str = "Applied";
pub const ROLLED_BACK: &str = "RolledBack";

/// What an update sends, which names its change set.
pub struct Request<'a> {
    pub template: &'a str,
    pub parameters: &'a BTreeMap<String, String>,
    /// Parameters that keep the stack's value.
    pub keep: &'a [&'a str],
    pub tags: &'a BTreeMap<String, String>,
    /// What makes a repeat of the same content a new request: a requested-at value, the outside
    /// changes being reverted, or the tags the stack has instead of these.
    pub salt: Option<&'a str>,
}

impl Request<'_> {
    /// The change set's name, from what the update sends: a pass cut short finds it again, and an
    /// opt-in edit executes the very change set it was shown. Found executed, it is this request's
    /// own, cut short before its parameters were recorded: the same content is not asked for again
    /// while its change set exists, because the parameters are recorded when it runs, executing
    /// any change set deletes the stack's others, and whatever else could make a stack differ from
    /// the same request (a retry, an outside change, outside tags) is in the salt.
    pub fn name(&self) -> String {
        let mut parts = BTreeMap::new();
        parts.insert("template".to_string(), self.template.to_string());
        parts.insert("parameters".to_string(), format!("{:?}", self.parameters));
        parts.insert("keep".to_string(), self.keep.join(","));
        parts.insert("tags".to_string(), format!("{:?}", self.tags));
        parts.insert("salt".to_string(), self.salt.unwrap_or_default().to_string());
        format!("{PREFIX}{}", &content_hash(&parts)[..24])
    }
}

/// Where a change set stands, as one pass of the update sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// Made or still being made by CloudFormation: look again soon.
    Pending,
    /// CloudFormation found nothing to change; the change set is deleted.
    NoChange,
    /// It replaces something that holds data, and the spec does not allow that; not executed.
    Refused(Vec<PlannedChange>),
    /// CloudFormation could not make it, for this reason.
    Failed(String),
    /// Executed (by this pass or an earlier one): the stack is updating or has updated.
    Executed,
    /// Executed by an earlier pass, and the update failed and rolled back: the same request is not
    /// sent again.
    RolledBack,
}

/// A change set as DescribeChangeSet reports it.
struct View {
    status: ChangeSetStatus,
    execution: Option<ExecutionStatus>,
    reason: Option<String>,
    changes: Vec<PlannedChange>,
}

/// Takes the update one step further: make the change set, wait for it, then execute or refuse it.
/// `plan` is what status.plan should say afterwards. `recorded` is whether status.plan already names
/// this change set; if not, it is made without looking first (a pass cut short after making it
/// gets AlreadyExistsException, which is fine).
#[allow(clippy::too_many_arguments)]
pub async fn advance(
    ops: &Ops,
    stack_id: &str,
    name: &str,
    recorded: bool,
    req: &Request<'_>,
    token: &str,
    data_types: &[&str],
    allow_replacement: bool,
) -> Result<(Preview, Option<ChangePlan>)> {
    let plan = |state: &str, changes: Vec<PlannedChange>| {
        Some(ChangePlan { change_set: name.to_string(), state: state.to_string(), changes })
    };
    let view = if recorded { ops.describe_change_set(stack_id, name).await? } else { None };
    let Some(view) = view else {
        ops.delete_leftover_change_sets(stack_id, Some(name)).await?;
        ops.create_change_set(stack_id, name, req).await?;
        return Ok((Preview::Pending, plan(PREVIEWING, Vec::new())));
    };
    use ChangeSetStatus as S;
    use ExecutionStatus as E;
    match view.execution {
        Some(E::ExecuteInProgress | E::ExecuteComplete) => {
            return Ok((Preview::Executed, plan(EXECUTING, view.changes)));
        }
        Some(E::ExecuteFailed) => return Ok((Preview::RolledBack, plan(ROLLED_BACK, view.changes))),
        _ => {}
    }
    Ok(match view.status {
        S::CreatePending | S::CreateInProgress | S::DeletePending | S::DeleteInProgress => {
            (Preview::Pending, plan(PREVIEWING, Vec::new()))
        }
        S::Failed if view.reason.as_deref().is_some_and(no_changes) => {
            ops.delete_change_set(stack_id, name).await?;
            (Preview::NoChange, None)
        }
        S::CreateComplete if view.execution == Some(E::Available) => {
            let replaced = data_replacements(&view.changes, data_types);
            if !replaced.is_empty() && !allow_replacement {
                (Preview::Refused(replaced), plan(REFUSED, view.changes))
            } else {
                ops.execute_change_set(stack_id, name, token).await?;
                (Preview::Executed, plan(EXECUTING, view.changes))
            }
        }
        // Made for a stack that has changed since (OBSOLETE), or not executable: make it again.
        S::CreateComplete => {
            ops.delete_change_set(stack_id, name).await?;
            (Preview::Pending, plan(PREVIEWING, Vec::new()))
        }
        _ => {
            let reason = view.reason.unwrap_or_else(|| format!("change set status {}", view.status.as_str()));
            (Preview::Failed(reason), plan(FAILED, view.changes))
        }
    })
}

/// Whether a plan's change set never ran (still previewing, refused, or failed to be made).
pub fn never_ran(plan: &ChangePlan) -> bool {
    [PREVIEWING, REFUSED, FAILED].contains(&plan.state.as_str())
}

/// Deletes the change set of a plan that never ran (its update was dropped or replaced).
pub async fn discard(ops: &Ops, stack_id: &str, plan: &ChangePlan) -> Result<()> {
    ops.delete_change_set(stack_id, &plan.change_set).await
}

/// CloudFormation's two answers for an update that changes nothing.
fn no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// The changes that replace a resource of one of `data_types`.
pub fn data_replacements(changes: &[PlannedChange], data_types: &[&str]) -> Vec<PlannedChange> {
    changes
        .iter()
        .filter(|c| data_types.contains(&c.resource_type.as_str()))
        .filter(|c| c.action == "Remove" || c.replacement.as_deref() == Some("True"))
        .cloned()
        .collect()
}

/// The properties that force a replacement, with their causes, e.g. "TransitEncryptionEnabled
/// (parameter Environment)".
pub fn forcing(change: &PlannedChange) -> Vec<String> {
    change
        .causes
        .iter()
        .filter_map(|c| {
            c.strip_suffix("; replaces)")
                .map(|s| format!("{s})"))
                .or_else(|| c.strip_suffix(" (replaces)").map(String::from))
        })
        .collect()
}

/// The changes of a plan in a line: "RedisReplicationGroup Modify (CacheNodeType (parameter NodeType))".
pub fn summary(changes: &[PlannedChange]) -> String {
    changes
        .iter()
        .map(|c| {
            let replaced = match c.replacement.as_deref() {
                Some("True") => ", replaced",
                Some("Conditional") => ", may be replaced",
                _ => "",
            };
            format!("{} {}{replaced} ({})", c.resource, c.action, c.causes.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an update that would replace what holds the data was not executed, and what the user can
/// do; `note` is the kind's word on where replaced data ends up.
pub fn refusal(name: &str, change_set: &str, replaced: &[PlannedChange], note: &str) -> String {
    let what = replaced
        .iter()
        .map(|c| {
            let forcing = forcing(c);
            if c.action == "Remove" {
                format!("remove {} ({})", c.resource, c.resource_type)
            } else if forcing.is_empty() {
                format!("replace {} ({})", c.resource, c.resource_type)
            } else {
                format!(
                    "replace {} ({}), because {} cannot change in place",
                    c.resource,
                    c.resource_type,
                    forcing.join(" and ")
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "the update of stack {name} would {what}, and that resource holds the data. Nothing was executed (change set \
         {change_set}, shown in status.plan). To keep the data, put the spec back as it was, or move to a new \
         resource (take a backup, create a new one restored from it, then delete this one). To let CloudFormation \
         replace it anyway, set spec.allowReplacement: true; {}",
        note
    )
}

/// A resource change in the status's words.
fn planned(rc: &aws_sdk_cloudformation::types::ResourceChange) -> PlannedChange {
    use aws_sdk_cloudformation::types::{ChangeSource as C, RequiresRecreation as R};
    let mut causes: Vec<String> = Vec::new();
    for d in rc.details() {
        let Some(target) = d.target() else { continue };
        let what = target.name().or(target.attribute().map(|a| a.as_str())).unwrap_or("resource").to_string();
        let entity = d.causing_entity().unwrap_or_default();
        let source = match d.change_source() {
            Some(C::ParameterReference) => Some(format!("parameter {entity}")),
            Some(C::ResourceReference) => Some(format!("resource {entity}")),
            Some(C::ResourceAttribute) => Some(entity.to_string()),
            Some(C::DirectModification) => Some("template".to_string()),
            Some(C::Automatic) => Some("automatic".to_string()),
            _ => None,
        };
        let effect = match target.requires_recreation() {
            Some(R::Always) => Some("replaces"),
            Some(R::Conditionally) => Some("may replace"),
            _ => None,
        };
        let inner: Vec<String> = source.into_iter().chain(effect.map(String::from)).collect();
        let cause = if inner.is_empty() { what } else { format!("{what} ({})", inner.join("; ")) };
        if !causes.contains(&cause) {
            causes.push(cause);
        }
    }
    PlannedChange {
        resource: rc.logical_resource_id().unwrap_or_default().to_string(),
        resource_type: rc.resource_type().unwrap_or_default().to_string(),
        action: rc.action().map(|a| a.as_str().to_string()).unwrap_or_default(),
        replacement: rc.replacement().map(|r| r.as_str().to_string()),
        scope: rc.scope().iter().map(|s| s.as_str().to_string()).collect(),
        causes,
    }
}

fn is_missing<E: ProvideErrorMetadata>(e: &E) -> bool {
    matches!(e.code(), Some("ChangeSetNotFound" | "ChangeSetNotFoundException"))
}

impl Ops {
    async fn describe_change_set(&self, stack_id: &str, name: &str) -> Result<Option<View>> {
        let action = "DescribeChangeSet";
        let mut changes = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let req = self
                .clients
                .cloudformation
                .describe_change_set()
                .stack_name(stack_id)
                .change_set_name(name)
                .set_next_token(next.take());
            let out = match self.call(action, req.send()).await? {
                Ok(out) => out,
                Err(e) if is_missing(&e) => return Ok(None),
                Err(e) => return Err(aws_error(action, &self.cloudformation, e)),
            };
            changes.extend(out.changes().iter().filter_map(|c| c.resource_change()).map(planned));
            next = out.next_token().map(String::from);
            if next.is_none() {
                let status = out
                    .status()
                    .cloned()
                    .ok_or_else(|| Error::Internal(format!("change set {name} answered without a status")))?;
                return Ok(Some(View {
                    status,
                    execution: out.execution_status().cloned(),
                    reason: out.status_reason().map(String::from),
                    changes,
                }));
            }
        }
    }

    async fn create_change_set(&self, stack_id: &str, name: &str, req: &Request<'_>) -> Result<()> {
        let action = "CreateChangeSet";
        let call = self
            .clients
            .cloudformation
            .create_change_set()
            .stack_name(stack_id)
            .change_set_name(name)
            .change_set_type(aws_sdk_cloudformation::types::ChangeSetType::Update)
            .template_body(req.template)
            .set_parameters(Some(update_parameters(req.parameters, req.keep)))
            .set_tags(Some(sdk_tags(req.tags)))
            .client_token(name)
            .description("oms-data-operator: an update of the stack to its resource's spec")
            .send();
        match self.call(action, call).await? {
            Ok(_) => Ok(()),
            // Made by an earlier pass that did not see the answer: the next describe finds it.
            Err(e) if e.code() == Some("AlreadyExistsException") => Ok(()),
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    async fn execute_change_set(&self, stack_id: &str, name: &str, token: &str) -> Result<()> {
        let action = "ExecuteChangeSet";
        let call = self
            .clients
            .cloudformation
            .execute_change_set()
            .stack_name(stack_id)
            .change_set_name(name)
            .client_request_token(token)
            .send();
        match self.call(action, call).await? {
            Ok(_) => {
                self.survey.wrote(stack_id, "UPDATE_IN_PROGRESS");
                Ok(())
            }
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    async fn delete_change_set(&self, stack_id: &str, name: &str) -> Result<()> {
        let action = "DeleteChangeSet";
        let call = self.clients.cloudformation.delete_change_set().stack_name(stack_id).change_set_name(name).send();
        match self.call(action, call).await? {
            Ok(_) => Ok(()),
            Err(e) if is_missing(&e) => Ok(()),
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    /// Deletes the operator's change sets on the stack other than `keep` that never ran: previews
    /// of a spec that has moved on, or left by a pass that was cut short.
    pub(super) async fn delete_leftover_change_sets(&self, stack_id: &str, keep: Option<&str>) -> Result<()> {
        let action = "ListChangeSets";
        let mut leftovers = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let req = self.clients.cloudformation.list_change_sets().stack_name(stack_id).set_next_token(next.take());
            let out = match self.call(action, req.send()).await? {
                Ok(out) => out,
                Err(e) => return Err(aws_error(action, &self.cloudformation, e)),
            };
            for s in out.summaries() {
                let name = s.change_set_name().unwrap_or_default();
                let ran = matches!(
                    s.execution_status(),
                    Some(
                        ExecutionStatus::ExecuteInProgress
                            | ExecutionStatus::ExecuteComplete
                            | ExecutionStatus::ExecuteFailed
                    )
                );
                if name.starts_with(PREFIX) && Some(name) != keep && !ran {
                    leftovers.push(name.to_string());
                }
            }
            next = out.next_token().map(String::from);
            if next.is_none() {
                break;
            }
        }
        for name in leftovers {
            self.delete_change_set(stack_id, &name).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(resource_type: &str, action: &str, replacement: Option<&str>, causes: &[&str]) -> PlannedChange {
        PlannedChange {
            resource: "R".into(),
            resource_type: resource_type.into(),
            action: action.into(),
            replacement: replacement.map(String::from),
            scope: vec!["Properties".into()],
            causes: causes.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn only_a_certain_replacement_or_removal_of_what_holds_data_is_refused() {
        let rg = "AWS::ElastiCache::ReplicationGroup";
        let data = [rg];
        let changes = vec![
            change(rg, "Modify", Some("Conditional"), &["Engine (parameter Engine; may replace)"]),
            change("AWS::EC2::SecurityGroup", "Modify", Some("True"), &["VpcId (template; replaces)"]),
        ];
        assert!(data_replacements(&changes, &data).is_empty(), "Conditional and non-data replacements go ahead");
        let replaced = change(
            rg,
            "Modify",
            Some("True"),
            &["CacheNodeType (parameter NodeType)", "TransitEncryptionEnabled (parameter Environment; replaces)"],
        );
        assert_eq!(data_replacements(std::slice::from_ref(&replaced), &data), vec![replaced.clone()]);
        assert_eq!(forcing(&replaced), vec!["TransitEncryptionEnabled (parameter Environment)".to_string()]);
        assert_eq!(data_replacements(&[change(rg, "Remove", None, &[])], &data).len(), 1, "removal loses data too");
    }

    #[test]
    fn a_change_set_name_is_stable_for_the_same_request_and_new_for_a_new_one() {
        let params = BTreeMap::from([("NodeType".to_string(), "cache.t4g.small".to_string())]);
        let other = BTreeMap::from([("NodeType".to_string(), "cache.t4g.medium".to_string())]);
        let tags = BTreeMap::new();
        let req = |parameters, salt| Request { template: "{}", parameters, keep: &[], tags: &tags, salt };
        let first = req(&params, None).name();
        assert!(first.starts_with(PREFIX) && first.len() <= 128, "{first}");
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "CloudFormation's name pattern");
        assert_eq!(req(&params, None).name(), first, "a pass cut short finds it again");
        assert_ne!(req(&params, Some("r1")).name(), first, "a requested retry is a new request");
        assert_ne!(req(&other, None).name(), first);
    }
}
