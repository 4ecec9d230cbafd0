//! The AWS edge for ElastiCache: snapshots (backups, the Snapshot deletion policy, restores), the
//! AUTH token changes, test failovers and the group's own state. Like [`super::cfn`], every call has
//! a deadline and maps failures to a static category; answers that are part of a normal day (a busy
//! group, a missing snapshot) come back as values, not errors.

use super::cfn::{Ops, aws_error};
use crate::error::{AwsCategory, Error, Result};
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_elasticache::types::{SourceType, Tag};
use std::collections::BTreeMap;

/// The ElastiCache actions the operator calls (see [`super::cfn::ACTIONS`]).
pub const ACTIONS: [&str; 8] = [
    "CreateSnapshot",
    "DescribeSnapshots",
    "DeleteSnapshot",
    "ListTagsForResource",
    "ModifyReplicationGroup",
    "DescribeReplicationGroups",
    "TestFailover",
    "DescribeEvents",
];

/// A snapshot as ElastiCache reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    /// `creating`, `available`, `failed`, `deleting`, …
    pub status: String,
    pub replication_group_id: Option<String>,
    pub arn: Option<String>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub node_type: Option<String>,
    /// `manual` or `automated`.
    pub source: Option<String>,
    /// The data size of the first node group's snapshot, as ElastiCache writes it (e.g. "6 MB").
    pub size: Option<String>,
    /// When the snapshot of the first node group was taken (RFC 3339).
    pub taken_at: Option<String>,
}

/// What CreateSnapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotStart {
    Started,
    /// The replication group does not exist: there is no data left to back up.
    GroupGone(String),
    /// The group cannot be snapshotted right now (it is modifying, snapshotting, …).
    Busy(String),
    /// A snapshot of that name exists: possibly this caller's own, started by a call whose answer
    /// was lost, or not yet listed by DescribeSnapshots. Look at it again.
    NameTaken(String),
    /// AWS refuses it for a reason that will not pass by itself (quota, permissions…).
    Refused(String),
}

/// What DeleteSnapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDeletion {
    Deleted,
    /// Already gone.
    Missing,
    /// Not deletable yet (still creating): ask again later.
    Busy(String),
}

/// The strategies of ModifyReplicationGroup's AuthTokenUpdateStrategy the operator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStrategy {
    /// Add the new token; the previous one keeps working.
    Rotate,
    /// Make the last rotated token the only one.
    Set,
}

/// What a token change or a test failover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Started,
    /// The group is busy (modifying, snapshotting, failing over…) or cannot do it: AWS's words.
    Refused(String),
}

/// A replication group as the operator needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub status: String,
    /// AuthTokenLastModifiedDate, as AWS writes it; `None` before any token was set.
    pub token_modified: Option<String>,
    /// `enabled`, `disabled`, `enabling`, `disabling`.
    pub automatic_failover: Option<String>,
    /// Each node group with its current primary member, in AWS's order.
    pub node_groups: Vec<NodeGroup>,
}

impl Group {
    pub fn available(&self) -> bool {
        self.status == "available"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeGroup {
    pub id: String,
    /// The cache cluster whose CurrentRole is primary.
    pub primary: Option<String>,
}

/// An ElastiCache event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEvent {
    pub message: String,
    pub date: Option<String>,
}

impl Ops {
    /// Starts an ElastiCache snapshot with `tags`. A snapshot of that name that already exists is
    /// refused: the caller looks for it (and at its tags) before starting one.
    pub async fn create_snapshot(
        &self,
        replication_group: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<SnapshotStart> {
        let action = "CreateSnapshot";
        let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let req = self
            .clients
            .elasticache
            .create_snapshot()
            .replication_group_id(replication_group)
            .snapshot_name(name)
            .set_tags(Some(tags))
            .send();
        match self.call(action, req).await? {
            Ok(_) => Ok(SnapshotStart::Started),
            Err(e) => {
                let message = e.message().unwrap_or_default().to_string();
                match e.code() {
                    Some("ReplicationGroupNotFoundFault") => Ok(SnapshotStart::GroupGone(message)),
                    Some("SnapshotAlreadyExistsFault") => Ok(SnapshotStart::NameTaken(message)),
                    Some("InvalidReplicationGroupState" | "InvalidCacheClusterState") => {
                        Ok(SnapshotStart::Busy(message))
                    }
                    _ => match aws_error(action, &self.elasticache, e) {
                        err @ Error::Aws { category: AwsCategory::Transient | AwsCategory::Throttled, .. } => Err(err),
                        Error::Aws { message, .. } => Ok(SnapshotStart::Refused(message)),
                        other => Err(other),
                    },
                }
            }
        }
    }

    /// The snapshot of that name, `None` when there is none.
    pub async fn snapshot(&self, name: &str) -> Result<Option<Snapshot>> {
        let action = "DescribeSnapshots";
        match self.call(action, self.clients.elasticache.describe_snapshots().snapshot_name(name).send()).await? {
            Ok(out) => Ok(out.snapshots().first().map(|s| {
                let first = s.node_snapshots().first();
                Snapshot {
                    name: s.snapshot_name().unwrap_or(name).to_string(),
                    status: s.snapshot_status().unwrap_or_default().to_string(),
                    replication_group_id: s.replication_group_id().map(str::to_string),
                    arn: s.arn().map(str::to_string),
                    engine: s.engine().map(str::to_string),
                    engine_version: s.engine_version().map(str::to_string),
                    node_type: s.cache_node_type().map(str::to_string),
                    source: s.snapshot_source().map(str::to_string),
                    size: first.and_then(|n| n.cache_size()).map(str::to_string),
                    taken_at: first.and_then(|n| n.snapshot_create_time()).map(|t| t.to_string()),
                }
            })),
            Err(e) if e.code() == Some("SnapshotNotFoundFault") => Ok(None),
            Err(e) => Err(aws_error(action, &self.elasticache, e)),
        }
    }

    /// The tags of a snapshot (or any ElastiCache resource) by ARN.
    pub async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let action = "ListTagsForResource";
        match self.call(action, self.clients.elasticache.list_tags_for_resource().resource_name(arn).send()).await? {
            Ok(out) => {
                Ok(out.tag_list().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect())
            }
            Err(e) => Err(aws_error(action, &self.elasticache, e)),
        }
    }

    pub async fn delete_snapshot(&self, name: &str) -> Result<SnapshotDeletion> {
        let action = "DeleteSnapshot";
        match self.call(action, self.clients.elasticache.delete_snapshot().snapshot_name(name).send()).await? {
            Ok(_) => Ok(SnapshotDeletion::Deleted),
            Err(e) if e.code() == Some("SnapshotNotFoundFault") => Ok(SnapshotDeletion::Missing),
            Err(e) if e.code() == Some("InvalidSnapshotState") => {
                Ok(SnapshotDeletion::Busy(e.message().unwrap_or_default().to_string()))
            }
            Err(e) => Err(aws_error(action, &self.elasticache, e)),
        }
    }

    /// Changes a replication group's AUTH token in place, applied at once. The token is sent only
    /// here and is never part of an error or log line.
    pub async fn change_auth_token(
        &self,
        replication_group: &str,
        token: &str,
        strategy: TokenStrategy,
    ) -> Result<GroupChange> {
        use aws_sdk_elasticache::types::AuthTokenUpdateStrategyType as S;
        let action = "ModifyReplicationGroup";
        let req = self
            .clients
            .elasticache
            .modify_replication_group()
            .replication_group_id(replication_group)
            .auth_token(token)
            .auth_token_update_strategy(match strategy {
                TokenStrategy::Rotate => S::Rotate,
                TokenStrategy::Set => S::Set,
            })
            .apply_immediately(true)
            .send();
        match self.call(action, req).await? {
            Ok(_) => Ok(GroupChange::Started),
            Err(e) if matches!(e.code(), Some("InvalidReplicationGroupState" | "InvalidCacheClusterState")) => {
                Ok(GroupChange::Refused(e.message().unwrap_or_default().to_string()))
            }
            Err(e) => Err(aws_error(action, &self.elasticache, e)),
        }
    }

    /// Asks ElastiCache to fail over one node group's primary to a replica (TestFailover).
    pub async fn test_failover(&self, replication_group: &str, node_group: &str) -> Result<GroupChange> {
        let action = "TestFailover";
        let req = self
            .clients
            .elasticache
            .test_failover()
            .replication_group_id(replication_group)
            .node_group_id(node_group)
            .send();
        // Every answer but a passing failure is final: a test failover is retried only by a person
        // (the API is limited per rolling 24 hours, and a late retry would fail over at a time nobody
        // chose).
        match self.call(action, req).await? {
            Ok(_) => Ok(GroupChange::Started),
            Err(e) => match aws_error(action, &self.elasticache, e) {
                err @ Error::Aws { category: AwsCategory::Transient | AwsCategory::Throttled, .. } => Err(err),
                Error::Aws { message, .. } => Ok(GroupChange::Refused(message)),
                other => Err(other),
            },
        }
    }

    /// The replication group; `None` when it does not exist.
    pub async fn group(&self, replication_group: &str) -> Result<Option<Group>> {
        let action = "DescribeReplicationGroups";
        let req = self.clients.elasticache.describe_replication_groups().replication_group_id(replication_group).send();
        match self.call(action, req).await? {
            Ok(out) => Ok(out.replication_groups().first().map(|g| Group {
                status: g.status().unwrap_or_default().to_string(),
                token_modified: g.auth_token_last_modified_date().map(|d| d.to_string()),
                automatic_failover: g.automatic_failover().map(|f| f.as_str().to_string()),
                node_groups: g
                    .node_groups()
                    .iter()
                    .map(|n| NodeGroup {
                        id: n.node_group_id().unwrap_or_default().to_string(),
                        primary: n
                            .node_group_members()
                            .iter()
                            .find(|m| m.current_role() == Some("primary"))
                            .and_then(|m| m.cache_cluster_id())
                            .map(str::to_string),
                    })
                    .collect(),
            })),
            Err(e) if e.code() == Some("ReplicationGroupNotFoundFault") => Ok(None),
            Err(e) => Err(aws_error(action, &self.elasticache, e)),
        }
    }

    /// The events of a replication group since `since` (oldest first): how a retry tells whether
    /// its test failover was already asked for.
    pub async fn group_events_since(
        &self,
        replication_group: &str,
        since: std::time::SystemTime,
    ) -> Result<Vec<GroupEvent>> {
        let action = "DescribeEvents";
        let req = self
            .clients
            .elasticache
            .describe_events()
            .source_identifier(replication_group)
            .source_type(SourceType::ReplicationGroup)
            .start_time(aws_sdk_elasticache::primitives::DateTime::from(since))
            .max_records(100)
            .send();
        match self.call(action, req).await? {
            Ok(out) => {
                let mut events: Vec<GroupEvent> = out
                    .events()
                    .iter()
                    .map(|e| GroupEvent {
                        message: e.message().unwrap_or_default().to_string(),
                        date: e.date().map(|d| d.to_string()),
                    })
                    .collect();
                events.sort_by(|a, b| a.date.cmp(&b.date));
                Ok(events)
            }
            Err(e) => Err(aws_error(action, &self.elasticache, e)),
        }
    }
}

/// A snapshot name unique per resource and attempt: the prefix, the UTC date and time, the
/// resource's name and the start of its uid (so namesakes in other namespaces never collide).
pub fn unique_snapshot_name(prefix: &str, resource: &str, uid: &str) -> String {
    let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let resource: String = resource.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(40).collect();
    let uid: String = uid.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    format!("{prefix}-{now}-{}-{uid}", resource.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_unique_per_resource_and_attempt_and_keep_the_seeds_prefix() {
        let a = unique_snapshot_name("oms-redis-backup", "cache", "1a2b3c4d-0000-1111");
        let b = unique_snapshot_name("oms-redis-backup", "cache", "9f8e7d6c-0000-1111");
        assert!(a.starts_with("oms-redis-backup-20"), "{a}");
        assert!(a.ends_with("-cache-1a2b3c4d"), "{a}");
        assert_ne!(a, b, "namesakes in two namespaces differ");
        let odd = unique_snapshot_name("oms-redis-backup", "my.cache", "x");
        assert!(odd.contains("-my-cache-"), "{odd}");
        assert!(unique_snapshot_name("p", &"a".repeat(253), "u").len() < 80);
    }
}
