//! The optional endpoint check of a Ready resource: due every interval the kind asks for, run with
//! the Secret just published, and reported as a condition of its own. It never changes Ready.

use super::kind::DataStack;
use super::reconcile::Outcome;
use super::status::{EndpointCheck, Health};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use std::time::Duration;

/// Checks the endpoint when a check is due, and looks again when the next one is.
pub(super) async fn check<K: DataStack>(obj: &K, outcome: &mut Outcome, resync: Duration) {
    let Some(interval) = obj.health_check_interval() else {
        outcome.next.endpoint_check = None;
        return;
    };
    let (Health::Ready { .. }, Some(published)) = (&outcome.health, &outcome.published) else {
        return;
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let since_last = |c: &EndpointCheck| now.duration_since(c.last_check_time.0).as_secs();
    let interval_secs = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let due = outcome.next.endpoint_check.as_ref().is_none_or(|c| since_last(c) >= interval_secs);
    if due && let Some(probe) = obj.probe(&published.secret).await {
        outcome.next.endpoint_check = Some(EndpointCheck {
            reachable: probe.reachable,
            last_check_time: Time(now),
            latency_milliseconds: i64::try_from(probe.latency.as_millis()).unwrap_or(i64::MAX),
            message: probe.message,
        });
    }
    outcome.requeue = Action::requeue(interval.min(resync));
}
