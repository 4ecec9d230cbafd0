//! What a kind of data stack provides to the generic lifecycle: its template, how a spec becomes
//! stack parameters, and how stack outputs become Secret keys and status fields. All of it pure.

use super::status::StackStatus;
use kube::core::NamespaceResourceScope;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// What deleting the resource does to its stack.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the stack and wait until it is gone.
    #[default]
    Delete,
    /// Keep the stack (tagged as orphaned) and the Secret (without its owner reference).
    Retain,
    /// Back the data up, wait for the backup, then delete the stack.
    Snapshot,
}

/// A spec the operator cannot act on. The message is for the user, as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// The stack a resource asks for, with everything resolved (presets applied, names defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub stack_name: String,
    /// The template body this spec deploys: the kind's embedded template, or one generated from the
    /// spec where parameters cannot say it (a table's list of indexes).
    pub template: std::borrow::Cow<'static, str>,
    pub parameters: BTreeMap<String, String>,
    /// The user's tags; the operator adds its ownership tags on top.
    pub tags: BTreeMap<String, String>,
    pub region: Option<String>,
    pub secret_name: String,
    pub deletion_policy: DeletionPolicy,
    pub adopt_existing: bool,
    /// Let an update replace a resource that holds data (see [`DataStack::data_resource_types`]).
    pub allow_replacement: bool,
    /// When the stack is deleted outside the operator, create a new, empty one without asking
    /// (a disposable environment); otherwise the resource stalls until the user asks for one.
    pub recreate_when_lost: bool,
    /// The password the stack is protected by, when the kind has one.
    pub credential: Option<Credential>,
    /// The backup a new stack starts from, checked before the stack is created.
    pub restore: Option<RestoreSource>,
    /// Parameters sent with CreateStack only: every update keeps the stack's own value (or leaves
    /// the parameter out when the stack has none), because a change would replace what holds the
    /// data (a restore's snapshot name, say).
    pub create_only: &'static [&'static str],
}

/// A backup a new stack is seeded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreSource {
    /// An ElastiCache snapshot, by name, in the stack's region and account.
    ElastiCacheSnapshot { snapshot_name: String },
}

/// Whether a resource wants its stack protected by a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Yes,
    No,
    /// Not said: new stacks get one, a running stack keeps what it has (turning a password on under
    /// running clients would lock them out, so it is never done by default).
    ForNewStacks,
}

/// A password the operator generates, keeps in a Secret it owns, hands to CloudFormation once as a
/// NoEcho parameter, and rotates in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub wanted: Wanted,
    /// The NoEcho template parameter that takes it when the stack is created.
    pub parameter: &'static str,
    /// The Secret that holds it.
    pub secret_name: String,
    /// The connection Secret, and its key, that carry a copy for workloads.
    pub connection_secret: String,
    pub published_key: &'static str,
    /// How long a new password is published before the old one stops working.
    pub reload_grace: std::time::Duration,
}

/// Where a password is changed in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialTarget {
    /// An ElastiCache replication group's AUTH token (ModifyReplicationGroup ROTATE, then SET).
    ElastiCacheAuthToken { replication_group_id: String },
}

/// Something the user should act on before it becomes a problem; shown as a condition of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// A Warning Event announces it; otherwise a Normal one (for information).
    pub warning: bool,
}

/// What a settled stack gives the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Secret keys and values.
    pub secret: BTreeMap<String, String>,
    /// The kind's own status fields (camelCase JSON), merged into status.
    pub status: serde_json::Map<String, serde_json::Value>,
}

/// How to back up a stack's data before deleting it (deletion policy Snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupTarget {
    /// An ElastiCache snapshot of a replication group, named `<snapshot_prefix>-<date>-<time>-…`.
    ElastiCacheReplicationGroup { replication_group_id: String, snapshot_prefix: &'static str },
    /// A DynamoDB on-demand backup of a table, named `<backup_prefix>-<date>-<time>-…`.
    DynamoDbTable { table_name: String, backup_prefix: &'static str },
}

impl BackupTarget {
    /// What holds the data, in words: "replication group X", "table X".
    pub fn holder(&self) -> String {
        match self {
            BackupTarget::ElastiCacheReplicationGroup { replication_group_id, .. } => {
                format!("replication group {replication_group_id}")
            }
            BackupTarget::DynamoDbTable { table_name, .. } => format!("table {table_name}"),
        }
    }

    /// What a backup is called where it is kept: an ElastiCache "snapshot", a DynamoDB "backup".
    pub fn noun(&self) -> &'static str {
        match self {
            BackupTarget::ElastiCacheReplicationGroup { .. } => "snapshot",
            BackupTarget::DynamoDbTable { .. } => "backup",
        }
    }

    /// The verb's participle: "snapshotted", "backed up".
    pub fn done(&self) -> &'static str {
        match self {
            BackupTarget::ElastiCacheReplicationGroup { .. } => "snapshotted",
            BackupTarget::DynamoDbTable { .. } => "backed up",
        }
    }

    /// The AWS action that takes one.
    pub fn action(&self) -> &'static str {
        match self {
            BackupTarget::ElastiCacheReplicationGroup { .. } => "CreateSnapshot",
            BackupTarget::DynamoDbTable { .. } => "CreateBackup",
        }
    }

    pub fn prefix(&self) -> &'static str {
        match self {
            BackupTarget::ElastiCacheReplicationGroup { snapshot_prefix, .. } => snapshot_prefix,
            BackupTarget::DynamoDbTable { backup_prefix, .. } => backup_prefix,
        }
    }
}

/// What a check of the published endpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub reachable: bool,
    pub latency: std::time::Duration,
    /// What answered, or why nothing did (never a secret).
    pub message: String,
}

/// Where a test failover runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverTarget {
    /// An ElastiCache replication group (TestFailover on each of its node groups).
    ElastiCacheReplicationGroup { replication_group_id: String },
}

/// A kind of data stack.
pub trait DataStack:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The CloudFormation template body, embedded in the binary.
    fn template_body() -> &'static str;

    /// The same template, parsed once (for its parameters' defaults and NoEcho flags).
    fn template() -> &'static serde_json::Value;

    /// The template's resource types that hold the data: an update that would replace one is
    /// refused unless the spec allows it.
    fn data_resource_types() -> &'static [&'static str];

    /// Where the data of a replaced data resource ends up, and anything else the user should know
    /// before allowing a replacement, in a sentence.
    fn replacement_note() -> &'static str {
        "the old resource is deleted with its data"
    }

    /// Validates the spec and resolves the stack it asks for.
    fn desired(&self) -> Result<Desired, SpecError>;

    /// Secret keys and status fields from a settled stack's outputs and the parameters it runs with,
    /// and the password clients are to use, if the stack has one.
    fn publish(
        &self,
        outputs: &BTreeMap<String, String>,
        parameters: &BTreeMap<String, String>,
        password: Option<&str>,
    ) -> Result<Published, SpecError>;

    /// What the running store says of itself that stack outputs cannot (a table's item count and
    /// size), merged into the published status fields. The kind decides how often it asks AWS (it
    /// sees what it published last) and keeps its last answer when AWS does not answer.
    fn read_live<'a>(
        &'a self,
        _ops: &'a super::cfn::Ops,
        _outputs: &'a BTreeMap<String, String>,
    ) -> futures::future::BoxFuture<'a, serde_json::Map<String, serde_json::Value>> {
        Box::pin(async { serde_json::Map::new() })
    }

    /// How often CloudFormation drift detection runs; `None` when the spec does not schedule it.
    fn drift_check_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// How often the published endpoint is checked; `None` when the spec does not ask for it.
    fn health_check_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Checks the published endpoint with the connection Secret's values.
    fn probe<'a>(&'a self, _secret: &'a BTreeMap<String, String>) -> futures::future::BoxFuture<'a, Option<Probe>> {
        Box::pin(async { None })
    }

    /// Where a test failover runs, from the last published status; `None` when the kind has no
    /// failover or the stack is not made yet.
    fn failover_target(&self) -> Option<FailoverTarget> {
        None
    }

    /// Where the stack's password is changed in place, from its outputs.
    fn credential_target(&self, _outputs: &BTreeMap<String, String>) -> Option<CredentialTarget> {
        None
    }

    /// What to back up under deletion policy Snapshot, from the stack's outputs (else the last
    /// published status); `None` when the kind cannot tell, and then nothing is deleted.
    fn backup_target(&self, outputs: &BTreeMap<String, String>) -> Option<BackupTarget>;

    /// Why a backup cannot seed this spec's stack (another engine, an older version…), in words
    /// that say what to change; `None` when it can.
    fn restore_mismatch(&self, _snapshot: &super::elasticache::Snapshot) -> Option<String> {
        None
    }

    /// Conditions beside Ready/Reconciling/Stalled that tell the user something about the spec
    /// without changing its health (an engine leaving support, say), as (type, reason, message).
    /// Each is shown while it holds and announced once with a Warning Event.
    fn advisories(&self) -> Vec<Advisory> {
        Vec::new()
    }

    /// A plainer account of an AWS refusal that names what in the spec to change, keeping AWS's
    /// words; `None` when there is nothing to add.
    fn explain_refusal(&self, _aws_message: &str) -> Option<String> {
        None
    }

    /// The deletion policy, readable even when the rest of the spec is not valid.
    fn deletion_policy(&self) -> DeletionPolicy;

    /// The AWS region the stack lives in, `None` for the operator's default.
    fn region(&self) -> Option<String>;

    /// The lifecycle part of the resource's status, if any was written.
    fn stack_status(&self) -> Option<&StackStatus>;
}
