//! `OmsFailoverTest`: one ElastiCache test failover of a data resource, asked for declaratively and
//! kept as a record (who asked, when, which primary before and after, how long the group took to be
//! available again). The seed's "test failover (staging/prod)" without the AWS CLI.

mod reconcile;

use crate::source::SourceRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

// Every print column repeats `type_`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "data.oms-spider.io",
    version = "v1alpha1",
    kind = "OmsFailoverTest",
    plural = "omsfailovertests",
    singular = "omsfailovertest",
    shortname = "omsft",
    namespaced,
    status = "OmsFailoverTestStatus",
    doc = "One test failover (ElastiCache TestFailover) of a data resource in the same namespace, and its record",
    printcolumn(name = "Source", type_ = "string", json_path = ".spec.source.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Before", type_ = "string", json_path = ".status.nodeGroups[0].primaryBefore"),
    printcolumn(name = "After", type_ = "string", json_path = ".status.nodeGroups[0].primaryAfter"),
    printcolumn(name = "Seconds", type_ = "integer", json_path = ".status.durationSeconds"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self == oldSelf").message(
    "an OmsFailoverTest is the record of one test and cannot be changed: create another one to test again"
))]
#[serde(rename_all = "camelCase")]
pub struct OmsFailoverTestSpec {
    /// The data resource whose primary fails over, in this namespace. It needs automatic failover
    /// (staging and prod have it).
    pub source: SourceRef,
    /// The node group to fail over. Default: every node group (one, for the OMS's caches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4), regex(pattern = r"^[0-9]{1,4}$"))]
    pub node_group_id: Option<String>,
}

/// Where a test stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum FailoverPhase {
    /// Waiting for the source to be ready.
    Pending,
    /// Asked of ElastiCache; waiting for the group to be available with its new primary.
    Running,
    /// The primary moved and the group is available again.
    Succeeded,
    /// ElastiCache refused it (failover off, group busy…); nothing was changed.
    Refused,
    /// It started but did not finish as expected.
    Failed,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OmsFailoverTestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready is True once the test succeeded; Stalled when it was refused or failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "phase_schema")]
    pub phase: Option<FailoverPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Recorded before TestFailover is sent: a retry after a crash looks for the group's events
    /// since then instead of failing over twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Time>,
    /// When ElastiCache accepted the test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the group was seen available again with its new primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// completedAt - startedAt, to the operator's polling interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// The node groups involved, with their primaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<NodeGroupFailover>,
    /// What happened, in words (AWS's where it refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeGroupFailover {
    pub node_group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_after: Option<String>,
}

fn phase_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["Pending", "Running", "Succeeded", "Refused", "Failed"] })
}
