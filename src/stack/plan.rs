//! What to do next, decided from what was asked, what was last applied and what CloudFormation
//! reports. Pure, so every branch of the lifecycle is a unit test.

use super::cfn::ObservedStack;
use super::kind::{DeletionPolicy, Desired};
use super::ownership::{self, Owner, Ownership};
use std::collections::BTreeMap;

/// Failed creates are retried this many times (delete, create again) before the resource stalls;
/// a spec change starts the count again.
pub const MAX_RECREATES: i32 = 3;

/// CloudFormation stack statuses, grouped by what the operator does about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    InProgress,
    Complete,
    /// UPDATE_ROLLBACK_COMPLETE: the update failed and the previous configuration serves.
    UpdateRolledBack,
    /// ROLLBACK_COMPLETE: the create failed; the stack can only be deleted.
    CreateRolledBack,
    DeleteFailed,
    Deleted,
    /// A *_FAILED state that needs a person (ROLLBACK_FAILED, UPDATE_ROLLBACK_FAILED, …).
    Broken,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => Phase::Complete,
        "UPDATE_ROLLBACK_COMPLETE" => Phase::UpdateRolledBack,
        "ROLLBACK_COMPLETE" => Phase::CreateRolledBack,
        "DELETE_FAILED" => Phase::DeleteFailed,
        "DELETE_COMPLETE" => Phase::Deleted,
        s if s.ends_with("_IN_PROGRESS") => Phase::InProgress,
        _ => Phase::Broken,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Wait,
    /// Parameters or tags differ from what was last applied (or the stack is being adopted).
    Update {
        adopting: bool,
    },
    /// Settled and in sync: publish the outputs.
    Publish,
    /// The last update rolled back: publish the previous outputs and report the failure.
    PublishRolledBack,
    /// The create rolled back: delete the stack so it can be created again.
    Recreate,
    RetryDelete,
    /// Touch nothing and tell the user why.
    Refuse {
        reason: &'static str,
        message: String,
    },
}

pub struct Inputs<'a> {
    pub observed: Option<&'a ObservedStack>,
    pub desired: &'a Desired,
    pub applied: Option<&'a BTreeMap<String, String>>,
    pub owner: &'a Owner,
    pub recreate_attempts: i32,
}

pub fn decide(i: &Inputs) -> Step {
    let Some(obs) = i.observed else {
        return Step::Create;
    };
    let name = &i.desired.stack_name;
    let adopting = match ownership::classify(&obs.tags, i.owner) {
        Ownership::Ours => false,
        Ownership::Untagged | Ownership::Orphaned if i.desired.adopt_existing => true,
        Ownership::Untagged => {
            return Step::Refuse {
                reason: "StackNotManaged",
                message: format!(
                    "stack {name} already exists and is not managed by oms-data-operator; nothing was changed. \
                     Set spec.adoptExistingStack: true to take it over, or choose another stack name"
                ),
            };
        }
        Ownership::Orphaned => {
            return Step::Refuse {
                reason: "StackOrphaned",
                message: format!(
                    "stack {name} was retained by a deleted resource; nothing was changed. \
                     Set spec.adoptExistingStack: true to take it over, or choose another stack name"
                ),
            };
        }
        Ownership::Other(who) => {
            return Step::Refuse {
                reason: "StackOwnedElsewhere",
                message: format!(
                    "stack {name} belongs to {who}; nothing was changed. Choose another stack name (spec.stackName)"
                ),
            };
        }
    };
    let changed = adopting || i.applied != Some(&i.desired.parameters) || obs.tags != i.owner.tags(&i.desired.tags);
    match phase(&obs.status) {
        Phase::InProgress => Step::Wait,
        Phase::Deleted => Step::Create,
        Phase::Complete if changed => Step::Update { adopting },
        Phase::Complete => Step::Publish,
        Phase::UpdateRolledBack if changed => Step::Update { adopting },
        Phase::UpdateRolledBack => Step::PublishRolledBack,
        Phase::CreateRolledBack if i.recreate_attempts < MAX_RECREATES || changed => Step::Recreate,
        Phase::CreateRolledBack => Step::Refuse {
            reason: "StackCreateFailed",
            message: format!(
                "stack {name} failed to create {} times; change the spec to try again",
                i.recreate_attempts + 1
            ),
        },
        Phase::DeleteFailed => Step::RetryDelete,
        Phase::Broken => Step::Refuse {
            reason: "StackFailed",
            message: format!(
                "stack {name} is {}; it needs repair in CloudFormation before the operator can continue",
                obs.status
            ),
        },
    }
}

/// Where the backup that deletion policy Snapshot takes stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backup {
    /// Not asked for, or nothing to back up.
    NotNeeded,
    NotStarted,
    InProgress,
    Done,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteStep {
    /// Nothing more to do with the stack: release the resource.
    Done,
    Wait,
    Delete,
    StartBackup,
    WaitBackup,
    /// Tag the stack as orphaned and leave it.
    Orphan,
    /// The stack is not this resource's: leave it and release the resource.
    LeaveAlone(String),
    /// Keep the resource (and its finalizer) until someone acts.
    Stall {
        reason: &'static str,
        message: String,
    },
}

pub fn decide_delete(
    observed: Option<&ObservedStack>,
    owner: &Owner,
    policy: DeletionPolicy,
    backup: &Backup,
) -> DeleteStep {
    let Some(obs) = observed else {
        return DeleteStep::Done;
    };
    if phase(&obs.status) == Phase::Deleted {
        return DeleteStep::Done;
    }
    let ours =
        obs.tags.get(ownership::UID) == Some(&owner.uid) && obs.tags.get(ownership::CLUSTER) == Some(&owner.cluster_id);
    if !ours {
        return DeleteStep::LeaveAlone(match ownership::classify(&obs.tags, owner) {
            Ownership::Other(who) => format!("stack belongs to {who}"),
            _ => "stack is not managed by this resource".to_string(),
        });
    }
    if phase(&obs.status) == Phase::InProgress {
        return DeleteStep::Wait;
    }
    match policy {
        DeletionPolicy::Retain if obs.tags.get(ownership::ORPHANED).is_some_and(|v| v == "true") => DeleteStep::Done,
        DeletionPolicy::Retain => DeleteStep::Orphan,
        DeletionPolicy::Snapshot if phase(&obs.status) != Phase::DeleteFailed => match backup {
            Backup::NotStarted => DeleteStep::StartBackup,
            Backup::InProgress => DeleteStep::WaitBackup,
            Backup::Failed(why) => DeleteStep::Stall {
                reason: "SnapshotFailed",
                message: format!(
                    "the snapshot before deletion failed ({why}); the stack was kept. \
                     Set deletionPolicy: Delete to delete without a snapshot, or Retain to keep the stack"
                ),
            },
            Backup::NotNeeded | Backup::Done => DeleteStep::Delete,
        },
        DeletionPolicy::Delete | DeletionPolicy::Snapshot => DeleteStep::Delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            cluster_id: "c".into(),
            kind: "OmsRedis".into(),
            namespace: "ns".into(),
            name: "r".into(),
            uid: "u1".into(),
        }
    }

    fn desired() -> Desired {
        Desired {
            stack_name: "oms-redis-dev".into(),
            parameters: BTreeMap::from([("NodeType".into(), "cache.t4g.micro".into())]),
            tags: BTreeMap::new(),
            region: None,
            secret_name: "r-redis".into(),
            deletion_policy: DeletionPolicy::Delete,
            adopt_existing: false,
        }
    }

    fn stack(status: &str, tags: BTreeMap<String, String>) -> ObservedStack {
        ObservedStack {
            id: "arn:stack/oms-redis-dev/1".into(),
            status: status.into(),
            status_reason: None,
            tags,
            outputs: BTreeMap::new(),
            parameters: BTreeMap::new(),
        }
    }

    fn decide_with(
        obs: Option<&ObservedStack>,
        d: &Desired,
        applied: Option<&BTreeMap<String, String>>,
        attempts: i32,
    ) -> Step {
        decide(&Inputs { observed: obs, desired: d, applied, owner: &owner(), recreate_attempts: attempts })
    }

    #[test]
    fn no_stack_means_create() {
        assert_eq!(decide_with(None, &desired(), None, 0), Step::Create);
    }

    #[test]
    fn settled_and_unchanged_means_publish_without_any_update() {
        let d = desired();
        let s = stack("UPDATE_COMPLETE", owner().tags(&d.tags));
        assert_eq!(decide_with(Some(&s), &d, Some(&d.parameters), 0), Step::Publish);
    }

    #[test]
    fn changes_are_measured_against_last_applied_not_live_values() {
        let d = desired();
        let mut s = stack("CREATE_COMPLETE", owner().tags(&d.tags));
        // CloudFormation may normalise what it reports; the operator never compares with it.
        s.parameters = BTreeMap::from([("NodeType".into(), "CACHE.T4G.MICRO".into())]);
        assert_eq!(decide_with(Some(&s), &d, Some(&d.parameters), 0), Step::Publish);
        let older = BTreeMap::from([("NodeType".into(), "cache.t4g.small".into())]);
        assert_eq!(decide_with(Some(&s), &d, Some(&older), 0), Step::Update { adopting: false });
        assert_eq!(decide_with(Some(&s), &d, None, 0), Step::Update { adopting: false }, "nothing recorded yet");
    }

    #[test]
    fn a_tag_change_is_an_update() {
        let mut d = desired();
        let s = stack("CREATE_COMPLETE", owner().tags(&d.tags));
        d.tags.insert("team".into(), "payments".into());
        assert_eq!(decide_with(Some(&s), &d, Some(&d.parameters), 0), Step::Update { adopting: false });
    }

    #[test]
    fn in_progress_waits_even_with_changes() {
        let d = desired();
        for status in [
            "CREATE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        ] {
            let s = stack(status, owner().tags(&d.tags));
            assert_eq!(decide_with(Some(&s), &d, None, 0), Step::Wait, "{status}");
        }
    }

    #[test]
    fn a_rolled_back_update_keeps_serving_until_the_spec_changes() {
        let d = desired();
        let s = stack("UPDATE_ROLLBACK_COMPLETE", owner().tags(&d.tags));
        assert_eq!(decide_with(Some(&s), &d, Some(&d.parameters), 0), Step::PublishRolledBack);
        let older = BTreeMap::new();
        assert_eq!(decide_with(Some(&s), &d, Some(&older), 0), Step::Update { adopting: false });
    }

    #[test]
    fn a_rolled_back_create_is_recreated_a_bounded_number_of_times() {
        let d = desired();
        let s = stack("ROLLBACK_COMPLETE", owner().tags(&d.tags));
        assert_eq!(decide_with(Some(&s), &d, Some(&d.parameters), 0), Step::Recreate);
        assert!(matches!(
            decide_with(Some(&s), &d, Some(&d.parameters), MAX_RECREATES),
            Step::Refuse { reason: "StackCreateFailed", .. }
        ));
        let older = BTreeMap::new();
        assert_eq!(decide_with(Some(&s), &d, Some(&older), MAX_RECREATES), Step::Recreate, "a spec change retries");
    }

    #[test]
    fn other_peoples_stacks_are_refused_and_untagged_ones_adopted_only_on_request() {
        let mut d = desired();
        let theirs = Owner { uid: "u2".into(), namespace: "other".into(), ..owner() };
        let s = stack("CREATE_COMPLETE", theirs.tags(&BTreeMap::new()));
        match decide_with(Some(&s), &d, None, 0) {
            Step::Refuse { reason, message } => {
                assert_eq!(reason, "StackOwnedElsewhere");
                assert!(message.contains("other/r"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let untagged = stack("CREATE_COMPLETE", BTreeMap::new());
        assert!(matches!(decide_with(Some(&untagged), &d, None, 0), Step::Refuse { reason: "StackNotManaged", .. }));
        d.adopt_existing = true;
        assert_eq!(decide_with(Some(&untagged), &d, None, 0), Step::Update { adopting: true });
        // Adoption never extends to a stack another resource owns.
        assert!(matches!(decide_with(Some(&s), &d, None, 0), Step::Refuse { .. }));
    }

    #[test]
    fn failed_states_needing_a_person_stall() {
        let d = desired();
        for status in ["ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED", "CREATE_FAILED"] {
            let s = stack(status, owner().tags(&d.tags));
            assert!(
                matches!(decide_with(Some(&s), &d, None, 0), Step::Refuse { reason: "StackFailed", .. }),
                "{status}"
            );
        }
        let s = stack("DELETE_FAILED", owner().tags(&d.tags));
        assert_eq!(decide_with(Some(&s), &d, None, 0), Step::RetryDelete);
    }

    #[test]
    fn deletion_follows_the_policy() {
        let tags = owner().tags(&BTreeMap::new());
        let s = stack("CREATE_COMPLETE", tags.clone());
        let o = owner();
        assert_eq!(decide_delete(None, &o, DeletionPolicy::Delete, &Backup::NotNeeded), DeleteStep::Done);
        assert_eq!(decide_delete(Some(&s), &o, DeletionPolicy::Delete, &Backup::NotNeeded), DeleteStep::Delete);
        assert_eq!(decide_delete(Some(&s), &o, DeletionPolicy::Retain, &Backup::NotNeeded), DeleteStep::Orphan);
        let orphaned = stack("UPDATE_COMPLETE", o.orphaned_tags(&tags));
        assert_eq!(decide_delete(Some(&orphaned), &o, DeletionPolicy::Retain, &Backup::NotNeeded), DeleteStep::Done);
        assert_eq!(decide_delete(Some(&s), &o, DeletionPolicy::Snapshot, &Backup::NotStarted), DeleteStep::StartBackup);
        assert_eq!(decide_delete(Some(&s), &o, DeletionPolicy::Snapshot, &Backup::InProgress), DeleteStep::WaitBackup);
        assert_eq!(decide_delete(Some(&s), &o, DeletionPolicy::Snapshot, &Backup::Done), DeleteStep::Delete);
        assert!(matches!(
            decide_delete(Some(&s), &o, DeletionPolicy::Snapshot, &Backup::Failed("x".into())),
            DeleteStep::Stall { .. }
        ));
        let busy = stack("UPDATE_IN_PROGRESS", tags.clone());
        assert_eq!(decide_delete(Some(&busy), &o, DeletionPolicy::Delete, &Backup::NotNeeded), DeleteStep::Wait);
        let failed = stack("DELETE_FAILED", tags.clone());
        assert_eq!(decide_delete(Some(&failed), &o, DeletionPolicy::Delete, &Backup::NotNeeded), DeleteStep::Delete);
        let gone = stack("DELETE_COMPLETE", tags);
        assert_eq!(decide_delete(Some(&gone), &o, DeletionPolicy::Delete, &Backup::NotNeeded), DeleteStep::Done);
        let theirs = stack("CREATE_COMPLETE", Owner { uid: "u2".into(), ..owner() }.tags(&BTreeMap::new()));
        assert!(matches!(
            decide_delete(Some(&theirs), &o, DeletionPolicy::Delete, &Backup::NotNeeded),
            DeleteStep::LeaveAlone(_)
        ));
    }
}
