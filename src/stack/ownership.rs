//! Who a stack belongs to, written in its tags. The operator touches only stacks tagged with the
//! resource's own identity (cluster, namespace, name, uid), adopts an untagged or orphaned stack
//! only when asked, and leaves every other stack alone.

use std::collections::BTreeMap;

pub const PREFIX: &str = "oms-data-operator/";
pub const CLUSTER: &str = "oms-data-operator/cluster-id";
pub const KIND: &str = "oms-data-operator/kind";
pub const NAMESPACE: &str = "oms-data-operator/namespace";
pub const NAME: &str = "oms-data-operator/name";
pub const UID: &str = "oms-data-operator/uid";
/// The AWS account, when the stack was reached through a role the namespace names.
pub const ACCOUNT: &str = "oms-data-operator/account";
/// On a snapshot: the backup resource it was taken for, by name and uid (absent for deletion policy
/// Snapshot).
pub const BACKUP: &str = "oms-data-operator/backup";
pub const BACKUP_UID: &str = "oms-data-operator/backup-uid";
/// Set when a resource with deletion policy Retain was deleted: nobody owns the stack now.
pub const ORPHANED: &str = "oms-data-operator/orphaned";

/// The resource a stack belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub cluster_id: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The account of the role the stack is reached through, if any (the operator's own account is
    /// in the stack's ARN and needs no call to learn).
    pub account: Option<String>,
}

impl Owner {
    /// The ownership tags, on top of the user's tags.
    pub fn tags(&self, user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut tags: BTreeMap<String, String> =
            user.iter().filter(|(k, _)| !k.starts_with(PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect();
        tags.insert(CLUSTER.into(), self.cluster_id.clone());
        tags.insert(KIND.into(), self.kind.clone());
        tags.insert(NAMESPACE.into(), self.namespace.clone());
        tags.insert(NAME.into(), self.name.clone());
        tags.insert(UID.into(), self.uid.clone());
        if let Some(account) = &self.account {
            tags.insert(ACCOUNT.into(), account.clone());
        }
        tags
    }

    /// The tags of a stack left behind on purpose: identity kept for the record, marked orphaned.
    pub fn orphaned_tags(&self, current: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut tags = current.clone();
        tags.insert(ORPHANED.into(), "true".into());
        tags
    }
}

/// Whether a snapshot's tags say this operator (in this cluster) took it for the backup resource
/// of uid `backup_uid`. Only such a snapshot is that backup's to follow, and to delete.
pub fn snapshot_taken_for(tags: &BTreeMap<String, String>, cluster_id: &str, backup_uid: &str) -> bool {
    tags.get(CLUSTER).is_some_and(|c| c == cluster_id) && tags.get(BACKUP_UID).is_some_and(|u| u == backup_uid)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Tagged with this resource's identity.
    Ours,
    /// No owner tags at all: made by hand or by other tooling.
    Untagged,
    /// Left behind by a deleted resource whose policy was Retain.
    Orphaned,
    /// Owned by another resource, described for the user.
    Other(String),
}

pub fn classify(tags: &BTreeMap<String, String>, owner: &Owner) -> Ownership {
    if tags.get(ORPHANED).is_some_and(|v| v == "true") {
        return Ownership::Orphaned;
    }
    let Some(uid) = tags.get(UID) else {
        return Ownership::Untagged;
    };
    if uid == &owner.uid && tags.get(CLUSTER) == Some(&owner.cluster_id) {
        return Ownership::Ours;
    }
    let field = |k: &str| tags.get(k).map(String::as_str).unwrap_or("?");
    Ownership::Other(format!(
        "{} {}/{} (uid {}) in cluster {}",
        field(KIND),
        field(NAMESPACE),
        field(NAME),
        uid,
        field(CLUSTER)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str) -> Owner {
        Owner {
            cluster_id: "c1".into(),
            kind: "OmsRedis".into(),
            namespace: "team-a".into(),
            name: "cache".into(),
            uid: uid.into(),
            account: None,
        }
    }

    #[test]
    fn own_tags_are_ours_and_user_tags_cannot_fake_them() {
        let me = owner("u1");
        let user = BTreeMap::from([("team".to_string(), "a".to_string()), (UID.to_string(), "forged".to_string())]);
        let tags = me.tags(&user);
        assert_eq!(tags.get(UID).map(String::as_str), Some("u1"));
        assert_eq!(tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(classify(&tags, &me), Ownership::Ours);
    }

    #[test]
    fn another_resource_or_cluster_is_not_ours() {
        let tags = owner("u2").tags(&BTreeMap::new());
        match classify(&tags, &owner("u1")) {
            Ownership::Other(who) => {
                assert!(who.contains("team-a/cache") && who.contains("u2"), "{who}")
            }
            other => panic!("{other:?}"),
        }
        let mut elsewhere = owner("u1");
        elsewhere.cluster_id = "c2".into();
        assert!(matches!(classify(&elsewhere.tags(&BTreeMap::new()), &owner("u1")), Ownership::Other(_)));
    }

    #[test]
    fn untagged_and_orphaned_stacks_are_told_apart() {
        assert_eq!(classify(&BTreeMap::new(), &owner("u1")), Ownership::Untagged);
        let old = owner("u0");
        let orphan = old.orphaned_tags(&old.tags(&BTreeMap::new()));
        assert_eq!(classify(&orphan, &owner("u1")), Ownership::Orphaned);
    }
}
