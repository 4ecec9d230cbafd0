//! Restore at creation: a stack that is to start from a backup is created only once the backup
//! exists, is complete and fits the spec. Otherwise nothing is made, and the resource says what is
//! wrong and what to change, because a stack created from the wrong backup (or none) cannot be
//! pointed at another one later.

use super::cfn::Ops;
use super::kind::{DataStack, RestoreSource};
use crate::error::Result;

/// Whether the stack may be created from its backup now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Go,
    /// The backup is still being taken: create once it is done.
    Wait(String),
    /// It cannot be restored as asked: (reason, message).
    Refuse(&'static str, String),
}

pub(super) async fn check<K: DataStack>(obj: &K, ops: &Ops, source: &RestoreSource) -> Result<Verdict> {
    let RestoreSource::ElastiCacheSnapshot { snapshot_name: name } = source;
    let region = &ops.region;
    let recreate = "fix spec.restoreFrom.snapshotName: it can be changed until the stack is created";
    let Some(snapshot) = ops.snapshot(name).await? else {
        return Ok(Verdict::Refuse(
            "RestoreSnapshotNotFound",
            format!(
                "snapshot {name} does not exist in region {region}, so there is nothing to restore. `kubectl get \
                 omsbackups` lists the snapshots this operator took; {recreate}"
            ),
        ));
    };
    match snapshot.status.as_str() {
        "available" => {}
        // Still being taken, or seeding another cache: it will be available again by itself.
        "creating" | "restoring" | "copying" => {
            return Ok(Verdict::Wait(format!(
                "snapshot {name} is {}; the stack is created from it once it is available",
                snapshot.status
            )));
        }
        other => {
            return Ok(Verdict::Refuse(
                "RestoreSnapshotUnavailable",
                format!("snapshot {name} is {other}, not available, so it cannot be restored; {recreate}"),
            ));
        }
    }
    Ok(match obj.restore_mismatch(&snapshot) {
        Some(why) => Verdict::Refuse("RestoreSnapshotIncompatible", format!("{why}. No stack is created from it")),
        None => Verdict::Go,
    })
}
