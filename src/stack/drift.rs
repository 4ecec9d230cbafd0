//! Scheduled CloudFormation drift detection of a Ready stack's resources: started when due, followed
//! on later passes, and reported as the Drifted condition with the resources and properties that
//! differ. Reporting only: CloudFormation does not correct resource drift, so the message says what
//! a person can do.

use super::cfn::{ObservedStack, Ops};
use super::kind::DataStack;
use super::reconcile::Outcome;
use super::status::Health;
use crate::error::Result;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

/// Follows a detection under way, or starts one when it is due; how soon to look again.
pub(super) async fn check<K: DataStack>(
    obj: &K,
    ops: &Ops,
    observed: Option<&ObservedStack>,
    outcome: &mut Outcome,
    poll: Duration,
) -> Result<Option<Duration>> {
    let Some(interval) = obj.drift_check_interval() else {
        outcome.next.drift = None;
        return Ok(None);
    };
    let (Health::Ready { .. }, Some(stack)) = (&outcome.health, observed) else {
        return Ok(None);
    };
    let mut drift = outcome.next.drift.clone().unwrap_or_default();
    if let Some(id) = drift.detection_id.clone() {
        match ops.drift_detection(&id).await? {
            None => {
                outcome.next.drift = Some(drift);
                return Ok(Some(poll));
            }
            Some(Ok(drifted)) => {
                drift.differences = if drifted { ops.resource_drifts(&stack.id).await? } else { Vec::new() };
                drift.drifted = Some(drifted);
                drift.failure = None;
            }
            Some(Err(why)) => drift.failure = Some(why),
        }
        drift.detection_id = None;
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    let interval_secs = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let since = drift.last_check_time.as_ref().map(|t| now.duration_since(t.0).as_secs());
    let next_look = if since.is_none_or(|s| s >= interval_secs) {
        drift.detection_id = Some(ops.detect_drift(&stack.id).await?);
        drift.last_check_time = Some(Time(now));
        poll
    } else {
        Duration::from_secs(u64::try_from(interval_secs - since.unwrap_or(0)).unwrap_or(0)).max(poll)
    };
    outcome.next.drift = Some(drift);
    Ok(Some(next_look))
}
