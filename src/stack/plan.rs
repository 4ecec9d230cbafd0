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
    /// UPDATE_ROLLBACK_FAILED: the update failed, and so did the rollback; ContinueUpdateRollback
    /// can finish it once the cause is gone.
    RollbackFailed,
    /// A *_FAILED state that needs a person (ROLLBACK_FAILED, IMPORT_ROLLBACK_FAILED, …).
    Broken,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => Phase::Complete,
        "UPDATE_ROLLBACK_COMPLETE" => Phase::UpdateRolledBack,
        "ROLLBACK_COMPLETE" => Phase::CreateRolledBack,
        "DELETE_FAILED" => Phase::DeleteFailed,
        "DELETE_COMPLETE" => Phase::Deleted,
        "UPDATE_ROLLBACK_FAILED" => Phase::RollbackFailed,
        s if s.ends_with("_IN_PROGRESS") => Phase::InProgress,
        _ => Phase::Broken,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the stack; `replacing_lost` says which lost stack it replaces, for the user.
    Create {
        replacing_lost: Option<String>,
    },
    Wait,
    /// Parameters or tags differ from what was last applied (or the stack is being adopted).
    Update {
        adopting: bool,
    },
    /// The stack settled with parameters the spec does not have (changed outside the operator): put
    /// the spec's back, and say what changed.
    Revert {
        changes: Vec<String>,
    },
    /// Settled and in sync: publish the outputs.
    Publish,
    /// The last update rolled back: publish the previous outputs and report the failure.
    PublishRolledBack,
    /// The rollback of a failed update failed: continue it (ContinueUpdateRollback, skipping nothing).
    ContinueRollback,
    /// The create rolled back: delete the stack so it can be created again.
    Recreate,
    RetryDelete,
    /// Touch nothing and tell the user why.
    Refuse {
        reason: &'static str,
        message: String,
    },
}

/// What a settled stack's parameters say that the spec does not: changes made outside the operator
/// (someone's `update-stack`), each as "Name is X, the spec says Y". The expected value of a
/// parameter the spec leaves out is the template's default; NoEcho parameters are not compared (AWS
/// shows them masked), nor are parameters the stack's template does not have.
pub fn changed_outside(
    observed: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
    template: &serde_json::Value,
) -> Vec<String> {
    let declared = template.get("Parameters").and_then(|p| p.as_object());
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let same = |a: &str, b: &str| a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y);
    let mut changes = Vec::new();
    for (key, actual) in observed {
        let declaration = declared.and_then(|d| d.get(key));
        if declaration.and_then(|d| d.get("NoEcho")).and_then(|v| v.as_bool()) == Some(true) {
            continue;
        }
        let expected = desired.get(key).cloned().or_else(|| declaration.and_then(|d| d.get("Default")).map(text));
        if let Some(expected) = expected
            && !same(actual, &expected)
        {
            changes.push(format!("{key} is {actual}, the spec says {expected}"));
        }
    }
    changes
}

/// What a stack's tags say that the operator's do not, each as "tag K is X, the spec says Y".
pub fn tags_changed(observed: &BTreeMap<String, String>, expected: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = observed.keys().chain(expected.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (observed.get(k), expected.get(k)) {
            (Some(a), Some(b)) if a != b => Some(format!("tag {k} is {a}, the spec says {b}")),
            (Some(a), None) => Some(format!("tag {k} ({a}) was added")),
            (None, Some(b)) => Some(format!("tag {k} was removed, the spec says {b}")),
            _ => None,
        })
        .collect()
}

/// Whether a template the stack runs with is the operator's: the same JSON document.
pub fn same_template(running: Option<&serde_json::Value>, ours: &serde_json::Value) -> bool {
    running == Some(ours)
}

impl Step {
    /// Whether taking this step changes something in AWS: such a step is taken only from a copy of
    /// the resource that is known to be current.
    pub fn writes_to_aws(&self) -> bool {
        matches!(
            self,
            Step::Create { .. }
                | Step::Update { .. }
                | Step::Revert { .. }
                | Step::ContinueRollback
                | Step::Recreate
                | Step::RetryDelete
        )
    }
}

pub struct Inputs<'a> {
    pub observed: Option<&'a ObservedStack>,
    pub desired: &'a Desired,
    pub applied: Option<&'a BTreeMap<String, String>>,
    pub owner: &'a Owner,
    pub recreate_attempts: i32,
    /// The stack this resource had, which held data and is gone without the operator deleting it.
    pub lost: Option<&'a Lost>,
    /// The user asked for one more attempt with the same spec (a requested-at value not yet handled).
    pub retry_requested: bool,
    /// The settled stack's parameters that differ from the spec (see [`changed_outside`]).
    pub changed_outside: &'a [String],
    /// The operator already continued this failed rollback once.
    pub rollback_continued: bool,
    /// The stack rolled back an update someone else made: it is back where the operator left it.
    pub rolled_back_outside: bool,
}

/// A stack deleted outside the operator while it held data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub stack_id: String,
    /// When CloudFormation says it was deleted, if it still remembers the stack.
    pub deleted_at: Option<String>,
}

/// The annotation that asks for one more attempt with the same spec: any value not handled before.
pub const REQUESTED_AT: &str = "data.oms-spider.io/requested-at";
/// The annotation that pauses reconciling while it is "true".
pub const PAUSED: &str = "data.oms-spider.io/paused";

/// Whether a stack in this status may hold the data of a settled create: losing it loses data.
pub fn holds_data(status: &str) -> bool {
    status == "CREATE_COMPLETE" || status.starts_with("UPDATE_") || status.starts_with("IMPORT_")
}

impl Lost {
    fn describe(&self, name: &str) -> String {
        let when = self.deleted_at.as_deref().map(|t| format!(" at {t}")).unwrap_or_default();
        format!(
            "stack {name} (id {}) was deleted outside the operator{when}, and the data it held is gone",
            self.stack_id
        )
    }
}

/// Where a resource's stack was recorded to live, when that differs from where the spec points now.
/// The operator never follows such a change: it would leave the first stack running, owned by
/// nobody, and make a second one.
pub fn identity_change(
    recorded_region: Option<&str>,
    recorded_name: Option<&str>,
    region: &str,
    name: &str,
) -> Option<String> {
    if let Some(was) = recorded_region.filter(|r| *r != region) {
        return Some(format!(
            "spec.region is now {region}, but this resource's stack lives in {was}; nothing was changed, and no second \
             stack is made. Set spec.region back to {was}. To move it, create a new resource in {region} \
             and delete this one"
        ));
    }
    if let Some(was) = recorded_name.filter(|n| *n != name) {
        return Some(format!(
            "the stack name is now {name}, but this resource's stack is {was}; nothing was changed, and no second \
             stack is made. Set spec.stackName back to {was}, or create a new resource for a new stack"
        ));
    }
    None
}

/// Where the resource's stack was recorded to live: status.region, else the region in its stack id
/// (statuses written before the region was recorded).
pub fn recorded_region(prev: &super::status::StackStatus) -> Option<String> {
    prev.region.clone().or_else(|| prev.stack_id.as_deref().and_then(arn_region).map(String::from))
}

/// The region in a CloudFormation stack ARN (arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID).
pub fn arn_region(stack_id: &str) -> Option<&str> {
    let mut parts = stack_id.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(2).filter(|r| !r.is_empty())
}

pub fn decide(i: &Inputs) -> Step {
    let name = &i.desired.stack_name;
    let Some(obs) = i.observed else {
        let Some(lost) = i.lost else {
            return Step::Create { replacing_lost: None };
        };
        let what = lost.describe(name);
        return if i.desired.recreate_when_lost || i.retry_requested {
            Step::Create { replacing_lost: Some(format!("{what}; creating a new, empty stack in its place")) }
        } else {
            Step::Refuse {
                reason: "StackLost",
                message: format!(
                    "{what}. No new, empty stack is made without asking: to get one, annotate this resource with \
                     {REQUESTED_AT}=<any new value>; or delete this resource. Backups taken of its data, if any, \
                     outlive the stack (ElastiCache snapshots, DynamoDB backups)"
                ),
            }
        };
    };
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
    let spec_changed = adopting || i.applied != Some(&i.desired.parameters);
    let changed = spec_changed || obs.tags != i.owner.tags(&i.desired.tags);
    match phase(&obs.status) {
        Phase::InProgress => Step::Wait,
        Phase::Deleted => Step::Create { replacing_lost: None },
        Phase::Complete if spec_changed => Step::Update { adopting },
        // Before a tag difference: an outside update that changed tags is reverted and named.
        Phase::Complete if !i.changed_outside.is_empty() => Step::Revert { changes: i.changed_outside.to_vec() },
        Phase::Complete if changed => Step::Update { adopting },
        Phase::Complete => Step::Publish,
        Phase::UpdateRolledBack if changed || i.retry_requested => Step::Update { adopting },
        Phase::UpdateRolledBack if i.rolled_back_outside => Step::Publish,
        Phase::UpdateRolledBack => Step::PublishRolledBack,
        Phase::CreateRolledBack if i.recreate_attempts < MAX_RECREATES || changed || i.retry_requested => {
            Step::Recreate
        }
        Phase::CreateRolledBack => Step::Refuse {
            reason: "StackCreateFailed",
            message: format!(
                "stack {name} failed to create {} times; change the spec, or annotate this resource with \
                 {REQUESTED_AT}=<any new value> to try once more",
                i.recreate_attempts + 1
            ),
        },
        // Outside deletion, the only delete is the operator's own, of a failed create. A stack that
        // someone else tried to delete may still hold data: it is not the operator's to finish.
        Phase::DeleteFailed if i.recreate_attempts > 0 => Step::RetryDelete,
        Phase::DeleteFailed => Step::Refuse {
            reason: "StackDeleteFailed",
            message: format!(
                "stack {name} is DELETE_FAILED: a deletion the operator did not start failed, and the stack may \
                 still hold data; the operator does not finish it. Finish or undo it in CloudFormation: once the \
                 stack is gone the resource reports it lost"
            ),
        },
        // Once by itself; after that only when someone asks (the cause usually needs a person).
        Phase::RollbackFailed if !i.rollback_continued || i.retry_requested => Step::ContinueRollback,
        Phase::RollbackFailed => Step::Refuse {
            reason: "StackRollbackFailed",
            message: format!(
                "the update of stack {name} failed, and so did its rollback, twice (the operator continued it once). \
                 Fix what the failing resource's reason says, then annotate this resource with \
                 {REQUESTED_AT}=<any new value> to continue the rollback again; or continue it by hand with \
                 `aws cloudformation continue-update-rollback --stack-name {name}`, skipping the failing resource \
                 (--resources-to-skip) only if it can be left as it is"
            ),
        },
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
    /// Not asked for, or nothing left to back up.
    NotNeeded,
    /// No snapshot name is recorded yet: record one before anything is started.
    NotNamed,
    /// A name is recorded and no such snapshot exists yet.
    NotStarted,
    InProgress,
    Done,
    /// AWS cannot take it now (the group is busy); try again later.
    Busy(String),
    /// It cannot be taken, or it failed, or the name belongs to something else: keep the stack.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteStep {
    /// Nothing more to do with the stack: release the resource.
    Done,
    Wait,
    Delete,
    /// Name the backup and record the name in status; nothing is started yet.
    NameBackup,
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

/// What deleting the resource does next. Under policy Snapshot it fails closed: the stack is
/// deleted only once this resource's own snapshot is available, or when nothing is left to lose.
impl DeleteStep {
    /// See [`Step::writes_to_aws`].
    pub fn writes_to_aws(&self) -> bool {
        matches!(self, DeleteStep::Delete | DeleteStep::StartBackup | DeleteStep::Orphan)
    }
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
        DeletionPolicy::Snapshot => match backup {
            Backup::NotNamed => DeleteStep::NameBackup,
            Backup::NotStarted => DeleteStep::StartBackup,
            Backup::InProgress | Backup::Busy(_) => DeleteStep::WaitBackup,
            Backup::Failed(why) => DeleteStep::Stall {
                reason: "SnapshotFailed",
                message: format!(
                    "the snapshot before deletion could not be taken ({why}); the stack and its data were kept. \
                     Fix the cause and the operator tries again, or set deletionPolicy: Retain to keep the stack, \
                     or Delete to delete it without a snapshot"
                ),
            },
            Backup::NotNeeded | Backup::Done => DeleteStep::Delete,
        },
        DeletionPolicy::Delete => DeleteStep::Delete,
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
            account: None,
        }
    }

    #[test]
    fn parameters_changed_outside_the_operator_are_named_against_the_spec_and_the_templates_defaults() {
        let template = serde_json::json!({ "Parameters": {
            "NodeType": { "Type": "String" },
            "NumCacheNodes": { "Type": "Number", "Default": 1 },
            "AlarmsInAllEnvironments": { "Type": "String", "Default": "false" },
            "AuthToken": { "Type": "String", "NoEcho": true, "Default": "" },
        }});
        let desired = BTreeMap::from([("NodeType".to_string(), "cache.t4g.micro".to_string())]);
        let live = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let same = live(&[("NodeType", "cache.t4g.micro"), ("NumCacheNodes", "1.0"), ("AuthToken", "****")]);
        assert!(changed_outside(&same, &desired, &template).is_empty(), "numbers compare as numbers; NoEcho skipped");
        let edited = live(&[("NodeType", "cache.t4g.small"), ("AlarmsInAllEnvironments", "true")]);
        assert_eq!(
            changed_outside(&edited, &desired, &template),
            vec![
                "AlarmsInAllEnvironments is true, the spec says false".to_string(),
                "NodeType is cache.t4g.small, the spec says cache.t4g.micro".to_string(),
            ]
        );
    }

    #[test]
    fn tag_differences_are_named_and_an_outside_tag_change_is_reverted_not_just_updated() {
        let live = BTreeMap::from([("team".to_string(), "other".to_string()), ("extra".to_string(), "x".to_string())]);
        let ours =
            BTreeMap::from([("team".to_string(), "payments".to_string()), ("cost".to_string(), "c1".to_string())]);
        assert_eq!(
            tags_changed(&live, &ours),
            vec![
                "tag cost was removed, the spec says c1".to_string(),
                "tag extra (x) was added".to_string(),
                "tag team is other, the spec says payments".to_string(),
            ]
        );
        let d = desired();
        let mut s = stack("UPDATE_COMPLETE", owner().tags(&d.tags));
        s.tags.insert("team".into(), "other".into());
        let changes = vec!["tag team (other) was added".to_string()];
        let o = owner();
        let with = |outside: &[String]| decide(&Inputs { changed_outside: outside, ..settled(&s, &d, &o) });
        assert_eq!(with(&changes), Step::Revert { changes: changes.clone() });
        assert_eq!(with(&[]), Step::Update { adopting: false }, "tags differ for another reason: an update");
        assert!(same_template(Some(&serde_json::json!({"a": 1})), &serde_json::json!({"a": 1})));
        assert!(!same_template(None, &serde_json::json!({"a": 1})), "a YAML template is not the operator's");
    }

    #[test]
    fn a_failed_rollback_is_continued_once_then_only_when_asked() {
        let d = desired();
        let s = stack("UPDATE_ROLLBACK_FAILED", owner().tags(&BTreeMap::new()));
        let with = |continued: bool, asked: bool| {
            decide(&Inputs {
                observed: Some(&s),
                desired: &d,
                applied: Some(&d.parameters),
                owner: &owner(),
                recreate_attempts: 0,
                lost: None,
                retry_requested: asked,
                changed_outside: &[],
                rollback_continued: continued,
                rolled_back_outside: false,
            })
        };
        assert_eq!(with(false, false), Step::ContinueRollback);
        assert!(
            matches!(with(true, false), Step::Refuse { reason: "StackRollbackFailed", message } if message.contains("continue-update-rollback"))
        );
        assert_eq!(with(true, true), Step::ContinueRollback);
    }

    #[test]
    fn a_settled_stack_changed_outside_is_reverted_but_a_spec_change_is_an_update() {
        let d = desired();
        let s = stack("UPDATE_COMPLETE", owner().tags(&BTreeMap::new()));
        let changes = vec!["NodeType is cache.t4g.small, the spec says cache.t4g.micro".to_string()];
        let with = |applied: &BTreeMap<String, String>| {
            decide(&Inputs {
                observed: Some(&s),
                desired: &d,
                applied: Some(applied),
                owner: &owner(),
                recreate_attempts: 0,
                lost: None,
                retry_requested: false,
                changed_outside: &changes,
                rollback_continued: false,
                rolled_back_outside: false,
            })
        };
        assert_eq!(with(&d.parameters), Step::Revert { changes: changes.clone() });
        assert_eq!(with(&BTreeMap::new()), Step::Update { adopting: false }, "the spec changed too: one update");
    }

    /// A stack this resource owns, at the spec's last applied parameters, with nothing else going on.
    fn settled<'a>(s: &'a ObservedStack, d: &'a Desired, owner: &'a Owner) -> Inputs<'a> {
        Inputs {
            observed: Some(s),
            desired: d,
            applied: Some(&d.parameters),
            owner,
            recreate_attempts: 0,
            lost: None,
            retry_requested: false,
            changed_outside: &[],
            rollback_continued: false,
            rolled_back_outside: false,
        }
    }

    fn desired() -> Desired {
        Desired {
            template: std::borrow::Cow::Borrowed("{}"),
            stack_name: "oms-redis-dev".into(),
            parameters: BTreeMap::from([("NodeType".into(), "cache.t4g.micro".into())]),
            tags: BTreeMap::new(),
            region: None,
            secret_name: "r-redis".into(),
            deletion_policy: DeletionPolicy::Delete,
            adopt_existing: false,
            allow_replacement: false,
            recreate_when_lost: false,
            credential: None,
            restore: None,
            create_only: &[],
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
            deletion_time: None,
            last_updated: None,
        }
    }

    fn decide_with(
        obs: Option<&ObservedStack>,
        d: &Desired,
        applied: Option<&BTreeMap<String, String>>,
        attempts: i32,
    ) -> Step {
        decide(&Inputs {
            observed: obs,
            desired: d,
            applied,
            owner: &owner(),
            recreate_attempts: attempts,
            lost: None,
            retry_requested: false,
            changed_outside: &[],
            rollback_continued: false,
            rolled_back_outside: false,
        })
    }

    #[test]
    fn no_stack_means_create() {
        assert_eq!(decide_with(None, &desired(), None, 0), Step::Create { replacing_lost: None });
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
        let o = owner();
        let theirs = Inputs { rolled_back_outside: true, ..settled(&s, &d, &o) };
        assert_eq!(decide(&theirs), Step::Publish, "someone else's failed update left the stack as the spec says");
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
    fn a_lost_stack_is_replaced_only_where_the_kind_allows_it_or_the_user_asks() {
        let lost =
            Lost { stack_id: "arn:aws:cloudformation:us-east-1:1:stack/oms-redis-dev/9".into(), deleted_at: None };
        let d = desired();
        let inputs = |d: &Desired, retry: bool| {
            decide(&Inputs {
                observed: None,
                desired: d,
                applied: Some(&d.parameters),
                owner: &owner(),
                recreate_attempts: 0,
                lost: Some(&lost),
                retry_requested: retry,
                changed_outside: &[],
                rollback_continued: false,
                rolled_back_outside: false,
            })
        };
        match inputs(&d, false) {
            Step::Refuse { reason: "StackLost", message } => {
                assert!(message.contains(&lost.stack_id), "{message}");
                assert!(message.contains(REQUESTED_AT), "{message}");
                // The lifecycle serves every kind: a lost table is not called a cache.
                for word in ["cache", "replication group"] {
                    assert!(!message.contains(word), "{word}: {message}");
                }
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(inputs(&d, true), Step::Create { replacing_lost: Some(m) } if m.contains(&lost.stack_id)));
        let disposable = Desired { recreate_when_lost: true, ..desired() };
        assert!(matches!(inputs(&disposable, false), Step::Create { replacing_lost: Some(_) }));
    }

    #[test]
    fn only_a_settled_create_or_later_holds_data() {
        for s in ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS"] {
            assert!(holds_data(s), "{s}");
        }
        for s in ["CREATE_IN_PROGRESS", "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE"] {
            assert!(!holds_data(s), "{s}");
        }
    }

    #[test]
    fn a_requested_retry_tries_once_more_with_the_same_spec() {
        let d = desired();
        let with_retry = |status: &str, attempts: i32| {
            let s = stack(status, owner().tags(&d.tags));
            decide(&Inputs {
                observed: Some(&s),
                desired: &d,
                applied: Some(&d.parameters),
                owner: &owner(),
                recreate_attempts: attempts,
                lost: None,
                retry_requested: true,
                changed_outside: &[],
                rollback_continued: false,
                rolled_back_outside: false,
            })
        };
        assert_eq!(with_retry("UPDATE_ROLLBACK_COMPLETE", 0), Step::Update { adopting: false });
        assert_eq!(with_retry("ROLLBACK_COMPLETE", MAX_RECREATES), Step::Recreate);
        assert_eq!(with_retry("CREATE_COMPLETE", 0), Step::Publish, "nothing to retry");
    }

    #[test]
    fn a_moved_identity_is_refused_with_the_way_back() {
        assert_eq!(identity_change(None, None, "us-east-1", "s"), None, "nothing recorded yet");
        assert_eq!(identity_change(Some("us-east-1"), Some("s"), "us-east-1", "s"), None);
        let m = identity_change(Some("us-east-1"), Some("s"), "eu-west-1", "s").expect("refused");
        assert!(m.contains("spec.region back to us-east-1"), "{m}");
        let m = identity_change(Some("us-east-1"), Some("s"), "us-east-1", "t").expect("refused");
        assert!(m.contains("spec.stackName back to s"), "{m}");
        assert_eq!(arn_region("arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1"), Some("eu-west-1"));
        assert_eq!(arn_region("s"), None);
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
        // UPDATE_ROLLBACK_FAILED is continued once first (a_failed_rollback_is_continued_once…).
        for status in ["ROLLBACK_FAILED", "CREATE_FAILED", "IMPORT_ROLLBACK_FAILED"] {
            let s = stack(status, owner().tags(&d.tags));
            assert!(
                matches!(decide_with(Some(&s), &d, None, 0), Step::Refuse { reason: "StackFailed", .. }),
                "{status}"
            );
        }
        let s = stack("DELETE_FAILED", owner().tags(&d.tags));
        assert_eq!(decide_with(Some(&s), &d, None, 1), Step::RetryDelete, "the operator's own recreate");
        assert!(
            matches!(decide_with(Some(&s), &d, None, 0), Step::Refuse { reason: "StackDeleteFailed", .. }),
            "someone else's deletion is not finished for them"
        );
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
        assert_eq!(decide_delete(Some(&s), &o, DeletionPolicy::Snapshot, &Backup::NotNamed), DeleteStep::NameBackup);
        assert_eq!(decide_delete(Some(&s), &o, DeletionPolicy::Snapshot, &Backup::NotStarted), DeleteStep::StartBackup);
        assert_eq!(
            decide_delete(Some(&s), &o, DeletionPolicy::Snapshot, &Backup::Busy("modifying".into())),
            DeleteStep::WaitBackup
        );
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
        // A failed delete is no way around the snapshot: it is still taken first.
        assert_eq!(
            decide_delete(Some(&failed), &o, DeletionPolicy::Snapshot, &Backup::NotNamed),
            DeleteStep::NameBackup
        );
        let gone = stack("DELETE_COMPLETE", tags);
        assert_eq!(decide_delete(Some(&gone), &o, DeletionPolicy::Delete, &Backup::NotNeeded), DeleteStep::Done);
        let theirs = stack("CREATE_COMPLETE", Owner { uid: "u2".into(), ..owner() }.tags(&BTreeMap::new()));
        assert!(matches!(
            decide_delete(Some(&theirs), &o, DeletionPolicy::Delete, &Backup::NotNeeded),
            DeleteStep::LeaveAlone(_)
        ));
    }
}
