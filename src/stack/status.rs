//! The lifecycle part of a data stack's status, and its conditions with kstatus semantics, so
//! Argo CD, Flux and `kubectl wait --for=condition=Ready` read the truth:
//! - `Ready` is True only when the stack has settled at the spec's generation and is published;
//! - `Reconciling` is True while the operator (or CloudFormation) is still working;
//! - `Stalled` is True when nothing will change until someone acts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<String>,
    /// The CloudFormation stack status, e.g. CREATE_COMPLETE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_status: Option<String>,
    /// The parameters last sent to CloudFormation. Spec changes are compared with these, never
    /// with the live stack's normalised values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_parameters: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Times the stack was deleted and created again after a failed create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreate_attempts: Option<i32>,
    /// The backup taken under deletion policy Snapshot: named and recorded here before it is
    /// started, so a retry finds it instead of taking another or losing track of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_name: Option<String>,
    /// The AWS region the stack lives in. With stackName, the stack's identity: the operator never
    /// acts on a stack elsewhere for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Why the latest stack operation failed, kept while the operator retries and until it is Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// The id of a stack that was deleted outside the operator while it held this resource's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_stack_id: Option<String>,
    /// The last value of the requested-at annotation the operator acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_requested_at: Option<String>,
    /// The AWS account the stack lives in (from its ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The IAM role the stack is reached through (the namespace's), absent for the operator's own
    /// credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The stack's password (never the password itself): where it is kept and any rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
    /// The operator continued the current failed rollback once (ContinueUpdateRollback); cleared
    /// when the stack settles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_continued: Option<bool>,
    /// CloudFormation drift detection of the stack's resources, when the spec schedules it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftStatus>,
    /// The last check of the published endpoint, when the spec asks for checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_check: Option<EndpointCheck>,
    /// When the stack was last updated, as CloudFormation said when the operator last saw it
    /// settle: a later time means someone else updated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_updated_at: Option<String>,
    /// An update of the stack by someone else, seen since it last settled: kept until the stack is
    /// back at the spec, so its template is read once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_update: Option<OutsideUpdate>,
    /// The latest update as CloudFormation previewed it (a change set): what it changes and
    /// replaces, and whether it was executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ChangePlan>,
}

/// An update of the stack that the operator did not make.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutsideUpdate {
    /// The stack's last-updated time when it was seen.
    pub seen_at: String,
    /// Its template is not the operator's.
    pub template_differs: bool,
}

/// An update previewed with a change set, before and after it runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePlan {
    /// The change set's name on the stack.
    pub change_set: String,
    /// Previewing (CloudFormation is computing it), Refused (it would replace data and the spec
    /// does not allow that), Failed (CloudFormation could not make it), Executing, Applied, or
    /// RolledBack.
    pub state: String,
    /// Each resource the update touches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PlannedChange>,
}

/// One resource of a change set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    /// The template's logical id, e.g. RedisReplicationGroup.
    pub resource: String,
    /// e.g. AWS::ElastiCache::ReplicationGroup.
    pub resource_type: String,
    /// Add, Modify or Remove.
    pub action: String,
    /// For Modify: True (a new resource replaces it), Conditional (CloudFormation decides while
    /// updating) or False.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// What of the resource changes: Properties, Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    /// Each changed property and why, e.g. "CacheNodeType (parameter NodeType)"; "replaces" marks
    /// a property that needs a new resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
}

/// The condition type of scheduled drift detection.
pub const DRIFTED: &str = "Drifted";

/// Scheduled drift detection of the stack's resources.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftStatus {
    /// A detection under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_id: Option<String>,
    /// When the last detection was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// What the last completed detection found: true when a resource differs from the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drifted: Option<bool>,
    /// The drifted resources and properties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
    /// Why the last detection could not finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The Drifted condition of the last completed detection, keeping its lastTransitionTime while it holds.
pub fn drift_condition(previous: &[Condition], drift: &DriftStatus, generation: Option<i64>) -> Option<Condition> {
    let drifted = drift.drifted?;
    let status = if drifted { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == DRIFTED && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .or_else(|| drift.last_check_time.clone())?;
    let message = if drifted {
        format!(
            "resources differ from the stack: {}. CloudFormation does not correct resource drift: change them back \
             (console or CLI), or let a stack update that sets the property put it back",
            drift.differences.join("; ")
        )
    } else {
        "the stack's resources match the stack".to_string()
    };
    Some(Condition {
        type_: DRIFTED.into(),
        status: status.into(),
        reason: if drifted { "ResourcesDrifted".into() } else { "InSync".into() },
        message,
        observed_generation: generation,
        last_transition_time: since,
    })
}

/// The condition type of the endpoint check. It never changes Ready: the operator's network often
/// cannot reach a cache's VPC, and the cache is no less ready for that.
pub const ENDPOINT_REACHABLE: &str = "EndpointReachable";

/// The last check of the published endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCheck {
    pub reachable: bool,
    pub last_check_time: Time,
    pub latency_milliseconds: i64,
    /// What answered, or why nothing did.
    pub message: String,
}

/// The EndpointReachable condition of a check, keeping its lastTransitionTime while it holds.
pub fn endpoint_condition(previous: &[Condition], check: &EndpointCheck, generation: Option<i64>) -> Condition {
    let status = if check.reachable { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == ENDPOINT_REACHABLE && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| check.last_check_time.clone());
    Condition {
        type_: ENDPOINT_REACHABLE.into(),
        status: status.into(),
        reason: if check.reachable { "EndpointAnswered".into() } else { "EndpointUnreachable".into() },
        message: format!("{} in {} ms", check.message, check.latency_milliseconds),
        observed_generation: generation,
        last_transition_time: since,
    }
}

/// Where a stack's password stands. The password itself is only ever in the Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatus {
    /// Whether the stack requires the password.
    pub enabled: bool,
    /// The Secret the operator keeps the password in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// A rotation under way: Rotating (the new password is being added; the old one works), Reloading
    /// (both work; the connection Secret has the new one, so workloads can reload), Setting (the old
    /// one is being removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rotation_schema")]
    pub rotation: Option<Rotation>,
    /// When the rotation entered its current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<Time>,
    /// ElastiCache's AuthTokenLastModifiedDate when the phase began: a later one means the phase's
    /// change (ROTATE or SET) is applied, however often the operator was restarted meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_modified_before: Option<String>,
    /// When the last rotation finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotated_at: Option<Time>,
    /// The last value of the rotate annotation the operator acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_rotate_request: Option<String>,
}

/// An optional enum without `null` among its values (absent means no rotation).
fn rotation_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["Rotating", "Reloading", "Setting"] })
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Rotation {
    Rotating,
    Reloading,
    Setting,
}

/// Reasons that report a failure while the operator is still working on it: their Events are
/// Warnings, like every Stalled reason's.
pub const FAILURE_REASONS: [&str; 4] = ["StackRecreating", "StackDeleteFailed", "StackLost", "SnapshotWaiting"];

/// Where a resource stands, in kstatus terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ready { reason: &'static str, message: String },
    Reconciling { reason: &'static str, message: String },
    Stalled { reason: &'static str, message: String },
}

impl Health {
    pub fn reason(&self) -> &'static str {
        match self {
            Health::Ready { reason, .. } | Health::Reconciling { reason, .. } | Health::Stalled { reason, .. } => {
                reason
            }
        }
    }
    /// Whether this is news someone should look at: a Warning Event rather than a Normal one.
    pub fn is_warning(&self) -> bool {
        matches!(self, Health::Stalled { .. }) || FAILURE_REASONS.contains(&self.reason())
    }
    pub fn message(&self) -> &str {
        match self {
            Health::Ready { message, .. } | Health::Reconciling { message, .. } | Health::Stalled { message, .. } => {
                message
            }
        }
    }
}

/// The three conditions for `health`, keeping each condition's lastTransitionTime when its status
/// did not change.
pub fn conditions(previous: &[Condition], health: &Health, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let (ready, reconciling, stalled) = match health {
        Health::Ready { .. } => ("True", "False", "False"),
        Health::Reconciling { .. } => ("False", "True", "False"),
        Health::Stalled { .. } => ("False", "False", "True"),
    };
    let make = |type_: &str, status: &str| {
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        let (reason, message) = if status == "True" || type_ == READY {
            (health.reason().to_string(), health.message().to_string())
        } else {
            (format!("Not{type_}"), String::new())
        };
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason,
            message,
            observed_generation: generation,
            last_transition_time: since,
        }
    };
    vec![make(READY, ready), make(RECONCILING, reconciling), make(STALLED, stalled)]
}

/// The advisories as conditions (status True), each keeping its lastTransitionTime while it holds.
pub fn advisory_conditions(
    previous: &[Condition],
    advisories: &[super::kind::Advisory],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    advisories
        .iter()
        .map(|a| Condition {
            type_: a.type_.to_string(),
            status: "True".into(),
            reason: a.reason.to_string(),
            message: a.message.clone(),
            observed_generation: generation,
            last_transition_time: previous
                .iter()
                .find(|c| c.type_ == a.type_ && c.status == "True")
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).expect("a time"))
    }

    fn get<'a>(cs: &'a [Condition], t: &str) -> &'a Condition {
        cs.iter().find(|c| c.type_ == t).expect("condition present")
    }

    #[test]
    fn ready_reconciling_and_stalled_are_exclusive() {
        let cases = [
            (Health::Ready { reason: "StackReady", message: "ok".into() }, ["True", "False", "False"]),
            (Health::Reconciling { reason: "StackInProgress", message: "…".into() }, ["False", "True", "False"]),
            (Health::Stalled { reason: "InvalidSpec", message: "bad".into() }, ["False", "False", "True"]),
        ];
        for (health, want) in cases {
            let cs = conditions(&[], &health, Some(3), &at(10));
            let got = [READY, RECONCILING, STALLED].map(|t| get(&cs, t).status.clone());
            assert_eq!(got, want.map(String::from), "{health:?}");
            assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
            assert_eq!(get(&cs, READY).reason, health.reason(), "Ready carries the reason");
            assert_eq!(get(&cs, READY).message, health.message());
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = conditions(&[], &Health::Reconciling { reason: "A", message: "a".into() }, Some(1), &at(10));
        let same = conditions(&first, &Health::Reconciling { reason: "B", message: "b".into() }, Some(1), &at(20));
        assert_eq!(get(&same, RECONCILING).last_transition_time, at(10));
        let ready = conditions(&same, &Health::Ready { reason: "R", message: "r".into() }, Some(1), &at(30));
        assert_eq!(get(&ready, READY).last_transition_time, at(30));
        assert_eq!(get(&ready, RECONCILING).last_transition_time, at(30));
        assert_eq!(get(&ready, STALLED).last_transition_time, at(10), "Stalled stayed False");
    }
}
