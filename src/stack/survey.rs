//! Shared polling. Every stack of one account and region is looked at with one paginated
//! ListStacks per interval, however many of them are in progress, and a stack is described on its
//! own only when its summary says it changed. At a thousand stacks in progress that is one call
//! every few seconds where a DescribeStacks per stack would be a hundred a second.
//!
//! Why ListStacks: AWS's DescribeStacks page says of a call without a stack name that it "can
//! impact performance" and to "consider using the ListStacks API"; ListStacks returns summaries
//! (id, name, status, reason, last update) and a NextToken for the next page. Deleted stacks stay
//! listed for 90 days unless filtered, so the sweep asks for every status but DELETE_COMPLETE.
//!
//! What a summary cannot show (tags, parameters, outputs) comes from the last description of the
//! same stack, reused only while the stack's status, reason and last-update time are what they were
//! when it was described. A sweep is used for a stack only if it started after the operator's own
//! last write to that stack, so it never answers with the state from before an action just taken.

use super::cfn::{ObservedStack, Ops};
use crate::error::{AwsCategory, Error};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A stack as ListStacks shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub last_updated: Option<String>,
}

/// What a sweep says about one stack.
#[derive(Debug)]
pub enum Seen {
    /// Known without a call of its own.
    Stack(ObservedStack),
    /// No live stack of that name when a recent enough sweep ran.
    Absent,
    /// The sweep cannot tell (never described, changed since, asked by an older id, or no sweep).
    Ask,
    /// AWS could not be reached for the sweep: every stack waits on the next one, none is read on
    /// its own meanwhile. Holds the sweep's failure, in its words.
    Unreachable(Error),
}

/// The sweeps and descriptions of one account and region.
pub struct Survey {
    sweep: tokio::sync::Mutex<Sweep>,
    /// What the operator last knew of each stack, by name.
    known: Mutex<HashMap<String, Known>>,
    /// Names of stacks whose summary changed from one sweep to the next, so the resources that
    /// own them are looked at now rather than at their next poll.
    changed: tokio::sync::broadcast::Sender<String>,
}

impl Survey {
    pub fn new(changed: tokio::sync::broadcast::Sender<String>) -> Survey {
        Survey { sweep: Default::default(), known: Default::default(), changed }
    }
}

/// A stack's last description, and when the operator last changed it (if after that description).
#[derive(Clone)]
struct Known {
    stack: ObservedStack,
    written: Option<Instant>,
}

#[derive(Default)]
struct Sweep {
    started: Option<Instant>,
    /// The last sweep's failure and when it came.
    failed: Option<(Instant, Failure)>,
    by_name: HashMap<String, Summary>,
}

/// The stack name in a stack id (`arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>`),
/// or the argument itself when it is a name.
pub fn stack_name(name_or_id: &str) -> &str {
    match name_or_id.strip_prefix("arn:").and_then(|rest| rest.split_once(":stack/")) {
        Some((_, tail)) => tail.split('/').next().unwrap_or(tail),
        None => name_or_id,
    }
}

fn in_progress(status: &str) -> bool {
    status.ends_with("_IN_PROGRESS")
}

/// Pure: what a sweep's summary and the last description say about `key` (a name or an id).
pub fn judge(key: &str, summary: Option<&Summary>, described: Option<&ObservedStack>) -> Seen {
    let by_id = key.starts_with("arn:");
    let Some(s) = summary else {
        // By id CloudFormation still answers for a deleted stack: only a description tells how it ended.
        return if by_id { Seen::Ask } else { Seen::Absent };
    };
    if by_id && s.id != key {
        return Seen::Ask;
    }
    let Some(d) = described.filter(|d| d.id == s.id) else {
        return Seen::Ask;
    };
    if d.status == s.status && d.status_reason == s.status_reason && d.last_updated == s.last_updated {
        return Seen::Stack(d.clone());
    }
    // While CloudFormation works only the status matters; the rest is read once it settles.
    if in_progress(&s.status) {
        let mut seen = d.clone();
        seen.status = s.status.clone();
        seen.status_reason = s.status_reason.clone();
        seen.last_updated = s.last_updated.clone();
        return Seen::Stack(seen);
    }
    Seen::Ask
}

/// Pure: the stacks whose summary differs between two sweeps (new, gone, or moved on).
pub fn changed_names(before: &HashMap<String, Summary>, after: &HashMap<String, Summary>) -> Vec<String> {
    let mut names: Vec<String> = after
        .iter()
        .filter(|(n, s)| before.get(*n) != Some(*s))
        .map(|(n, _)| n.clone())
        .chain(before.keys().filter(|n| !after.contains_key(*n)).cloned())
        .collect();
    names.sort();
    names
}

/// How a sweep failed, kept to answer for it until the next one may be tried.
#[derive(Debug, Clone)]
enum Failure {
    /// AWS did not answer (unreachable, throttled): every stack waits for the next sweep.
    Unanswered(AwsCategory, String),
    TimedOut(Duration),
    /// AWS refused (an IAM policy without ListStacks, say): each stack is read on its own.
    Refused,
}

impl Failure {
    fn of(e: &Error) -> Failure {
        match e {
            Error::Aws { category: c @ (AwsCategory::Transient | AwsCategory::Throttled), message, .. } => {
                Failure::Unanswered(*c, message.clone())
            }
            Error::Timeout { after, .. } => Failure::TimedOut(*after),
            _ => Failure::Refused,
        }
    }

    /// What a held-back sweep answers: the failure it stands for, in its category.
    fn seen(&self) -> Seen {
        match self {
            Failure::Unanswered(category, message) => Seen::Unreachable(Error::Aws {
                action: "ListStacks",
                category: *category,
                message: format!("{message} (the last sweep's answer; tried again shortly)"),
            }),
            Failure::TimedOut(after) => Seen::Unreachable(Error::Timeout { action: "ListStacks", after: *after }),
            Failure::Refused => Seen::Ask,
        }
    }
}

impl Survey {
    /// What is known of `key` from a sweep no older than `within`; sweeps again when there is none
    /// (one at a time: concurrent callers wait for it and share it). Of a stack the operator changed
    /// after that sweep began, what the change left (kept by [`Survey::wrote`]) is newer than the
    /// sweep and is what counts.
    pub async fn look(&self, ops: &Ops, key: &str, within: Duration) -> Seen {
        let name = stack_name(key).to_string();
        let now = Instant::now();
        let needed = now.checked_sub(within).unwrap_or(now);
        let mut sweep = self.sweep.lock().await;
        if sweep.started.is_none_or(|s| s < needed) {
            // After a failure, the next sweep waits: `within`, or longer while AWS stays unreachable.
            let hold = ops.outage_delay(within, within.max(Duration::from_secs(60)));
            if let Some((at, failure)) = &sweep.failed {
                let wait = if matches!(failure, Failure::Refused) { within } else { hold };
                if now.saturating_duration_since(*at) < wait {
                    return failure.seen();
                }
            }
            let started = Instant::now();
            match ops.list_live_stacks().await {
                Ok(stacks) => {
                    let by_name: HashMap<String, Summary> = stacks.into_iter().collect();
                    // The first sweep only sets the scene: every stack would look changed.
                    if sweep.started.is_some() {
                        for name in changed_names(&sweep.by_name, &by_name) {
                            let _ = self.changed.send(name);
                        }
                    }
                    // What is known of stacks that are gone goes with them, unless written since.
                    if let Ok(mut known) = self.known.lock() {
                        known.retain(|n, k| by_name.contains_key(n) || k.written.is_some_and(|w| w >= started));
                    }
                    sweep.by_name = by_name;
                    sweep.started = Some(started);
                    sweep.failed = None;
                }
                Err(e) => {
                    let failure = Failure::of(&e);
                    sweep.failed = Some((started, failure.clone()));
                    if matches!(failure, Failure::Refused) {
                        tracing::warn!(error = %e, "the shared ListStacks sweep was refused; stacks are described one by one");
                        return Seen::Ask;
                    }
                    return Seen::Unreachable(e);
                }
            }
        }
        let (summary, swept_at) = (sweep.by_name.get(&name).cloned(), sweep.started);
        drop(sweep);
        let Some(known) = self.known.lock().ok().and_then(|k| k.get(&name).cloned()) else {
            return judge(key, summary.as_ref(), None);
        };
        if known.written.is_some_and(|w| swept_at.is_none_or(|s| s < w)) {
            let by_older_id = key.starts_with("arn:") && known.stack.id != key;
            return if by_older_id { Seen::Ask } else { Seen::Stack(known.stack) };
        }
        judge(key, summary.as_ref(), Some(&known.stack))
    }

    /// Keeps a description for the sweeps to come.
    pub fn described(&self, stack: &ObservedStack) {
        let Ok(mut known) = self.known.lock() else { return };
        let name = stack_name(&stack.id).to_string();
        if stack.status == "DELETE_COMPLETE" {
            if known.get(&name).is_some_and(|k| k.stack.id == stack.id) {
                known.remove(&name);
            }
            return;
        }
        // Read after the last write: as new as anything the write left.
        known.insert(name, Known { stack: stack.clone(), written: None });
    }

    /// The operator changed the stack (`name_or_id`), which CloudFormation now has `status` for:
    /// sweeps that began before this do not speak for it.
    pub fn wrote(&self, name_or_id: &str, status: &str) {
        let Ok(mut known) = self.known.lock() else { return };
        if let Some(k) = known.get_mut(stack_name(name_or_id)) {
            k.stack.status = status.to_string();
            k.stack.status_reason = None;
            k.written = Some(Instant::now());
        }
    }

    /// A stack the operator just created: its tags are the ones sent, so sweeps can follow its
    /// creation without describing it.
    pub fn created(&self, id: &str, tags: &std::collections::BTreeMap<String, String>) {
        let stack = ObservedStack {
            id: id.to_string(),
            status: "CREATE_IN_PROGRESS".into(),
            status_reason: None,
            tags: tags.clone(),
            outputs: Default::default(),
            parameters: Default::default(),
            deletion_time: None,
            last_updated: None,
        };
        if let Ok(mut known) = self.known.lock() {
            known.insert(stack_name(id).to_string(), Known { stack, written: Some(Instant::now()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/oms-redis-a/1111";

    fn summary(status: &str, updated: Option<&str>) -> Summary {
        Summary { id: ID.into(), status: status.into(), status_reason: None, last_updated: updated.map(String::from) }
    }

    fn described(status: &str, updated: Option<&str>) -> ObservedStack {
        ObservedStack {
            id: ID.into(),
            status: status.into(),
            status_reason: None,
            tags: [("team".to_string(), "payments".to_string())].into(),
            outputs: [("PrimaryEndpoint".to_string(), "a:6379".to_string())].into(),
            parameters: Default::default(),
            deletion_time: None,
            last_updated: updated.map(String::from),
        }
    }

    #[test]
    fn a_sweep_names_the_stacks_that_moved_on_appeared_or_went() {
        let before: HashMap<String, Summary> = [
            ("same".to_string(), summary("CREATE_IN_PROGRESS", None)),
            ("done".to_string(), summary("CREATE_IN_PROGRESS", None)),
            ("gone".to_string(), summary("DELETE_IN_PROGRESS", None)),
        ]
        .into();
        let after: HashMap<String, Summary> = [
            ("same".to_string(), summary("CREATE_IN_PROGRESS", None)),
            ("done".to_string(), summary("CREATE_COMPLETE", None)),
            ("new".to_string(), summary("CREATE_IN_PROGRESS", None)),
        ]
        .into();
        assert_eq!(changed_names(&before, &after), ["done", "gone", "new"]);
    }

    #[test]
    fn the_stack_name_is_read_from_an_id_and_a_name_is_kept() {
        assert_eq!(stack_name(ID), "oms-redis-a");
        assert_eq!(stack_name("oms-redis-a"), "oms-redis-a");
    }

    #[test]
    fn an_unchanged_summary_reuses_the_description_and_a_settled_change_asks() {
        let d = described("CREATE_COMPLETE", None);
        assert!(
            matches!(judge("oms-redis-a", Some(&summary("CREATE_COMPLETE", None)), Some(&d)), Seen::Stack(s) if s == d)
        );
        // Updated since (by anyone): parameters, tags and outputs may differ.
        let later = summary("UPDATE_COMPLETE", Some("2026-11-29T10:00:00Z"));
        assert!(matches!(judge("oms-redis-a", Some(&later), Some(&d)), Seen::Ask));
        let same_status_later = summary("CREATE_COMPLETE", Some("2026-11-29T10:00:00Z"));
        assert!(matches!(judge("oms-redis-a", Some(&same_status_later), Some(&d)), Seen::Ask));
    }

    #[test]
    fn in_progress_takes_the_status_from_the_summary_and_the_rest_from_the_description() {
        let d = described("CREATE_COMPLETE", None);
        let Seen::Stack(seen) = judge(ID, Some(&summary("UPDATE_IN_PROGRESS", Some("t1"))), Some(&d)) else {
            panic!("an in-progress stack with a description needs no call");
        };
        assert_eq!((seen.status.as_str(), seen.tags.clone()), ("UPDATE_IN_PROGRESS", d.tags.clone()));
    }

    #[test]
    fn a_stack_never_described_or_asked_for_by_an_older_id_is_asked_for() {
        assert!(matches!(judge("oms-redis-a", Some(&summary("CREATE_IN_PROGRESS", None)), None), Seen::Ask));
        let other = "arn:aws:cloudformation:eu-west-1:123456789012:stack/oms-redis-a/2222";
        let d = described("CREATE_COMPLETE", None);
        assert!(matches!(judge(other, Some(&summary("CREATE_COMPLETE", None)), Some(&d)), Seen::Ask));
    }

    #[test]
    fn absent_by_name_is_absent_but_by_id_it_is_asked() {
        assert!(matches!(judge("oms-redis-a", None, None), Seen::Absent));
        assert!(matches!(judge(ID, None, None), Seen::Ask));
    }
}
