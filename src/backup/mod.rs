//! `OmsBackup`: one on-demand backup of a data resource, as a Kubernetes resource (CloudNativePG's
//! `Backup` shape). Applying it takes one snapshot; its status says how far it got; deleting it
//! keeps the snapshot or deletes it, as its policy says. Snapshots taken by deletion policy
//! Snapshot are listed as OmsBackups too, so every snapshot the operator took can be found and
//! restored with kubectl alone.

mod reconcile;

pub use reconcile::{FINALIZER, TAKEN_BY_LABEL, list_final_snapshot};

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
    kind = "OmsBackup",
    plural = "omsbackups",
    singular = "omsbackup",
    shortname = "omsb",
    namespaced,
    status = "OmsBackupStatus",
    doc = "One backup (an ElastiCache snapshot) of a data resource in the same namespace",
    printcolumn(name = "Source", type_ = "string", json_path = ".spec.source.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Snapshot", type_ = "string", json_path = ".status.snapshotName"),
    printcolumn(name = "Size", type_ = "string", json_path = ".status.size"),
    printcolumn(name = "Started", type_ = "date", json_path = ".status.startedAt"),
    printcolumn(name = "Finished", type_ = "date", json_path = ".status.completedAt"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct OmsBackupSpec {
    /// The data resource to back up, in this namespace. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "source is immutable: a backup is of one resource; create another OmsBackup for another"
    ))]
    pub source: SourceRef,

    /// What deleting this OmsBackup does to its snapshot: Retain (default) keeps it, Delete deletes
    /// it. Can be changed at any time.
    #[serde(default)]
    pub deletion_policy: SnapshotDeletionPolicy,

    /// The snapshot's name. Default: generated, unique (oms-redis-backup-<date>-<time>-<name>-<uid>).
    /// A snapshot of this name that already exists is this backup's only when the operator took it
    /// of the same source; otherwise the backup fails and the snapshot is left alone. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z][A-Za-z0-9-]*$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("snapshotName is immutable"))]
    pub snapshot_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum SnapshotDeletionPolicy {
    /// Keep the snapshot when the OmsBackup is deleted.
    #[default]
    Retain,
    /// Delete the snapshot with the OmsBackup.
    Delete,
}

/// Where a backup stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum BackupPhase {
    /// Waiting for the source to be ready or free.
    Pending,
    /// The snapshot is being taken.
    Running,
    /// The snapshot is available.
    Completed,
    /// No snapshot was taken, or it failed; the message says why.
    Failed,
}

impl BackupPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupPhase::Pending => "Pending",
            BackupPhase::Running => "Running",
            BackupPhase::Completed => "Completed",
            BackupPhase::Failed => "Failed",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OmsBackupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready is True once the snapshot is available; Stalled when the backup failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "phase_schema")]
    pub phase: Option<BackupPhase>,
    /// The snapshot: named and recorded here before it is started, so a retry after a crash finds
    /// it instead of taking a second one. Restore it with an OmsRedis's spec.restoreFrom.snapshotName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_name: Option<String>,
    /// The ElastiCache replication group it is a snapshot of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_group_id: Option<String>,
    /// The AWS region of the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// When the operator started the snapshot (or found the one it had started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the snapshot was seen available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// The data size as ElastiCache reports it, e.g. "6 MB".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    /// Why the backup failed, in AWS's words where AWS said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

fn phase_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["Pending", "Running", "Completed", "Failed"] })
}
