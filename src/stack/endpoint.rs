//! The optional endpoint check of a Ready resource: due every interval the kind asks for, run with
//! the Secret just published, and reported as a condition of its own. It never changes Ready, and it
//! never holds a reconcile up: the check runs as a task of its own, and the next pass reports what
//! it found. An unreachable endpoint can take seconds to time out, and a platform may have many.

use super::kind::DataStack;
use super::reconcile::Outcome;
use super::status::{EndpointCheck, Health};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How soon to look again for the result of a check under way.
const RESULT_POLL: Duration = Duration::from_secs(2);

/// The checks under way and their results not yet reported, by resource uid.
#[derive(Default)]
pub struct Probes(Arc<Mutex<HashMap<String, Slot>>>);

enum Slot {
    Running,
    Done(EndpointCheck),
}

impl Probes {
    fn take_result(&self, uid: &str) -> (bool, Option<EndpointCheck>) {
        let Ok(mut map) = self.0.lock() else {
            return (false, None);
        };
        match map.get(uid) {
            Some(Slot::Running) => (true, None),
            Some(Slot::Done(_)) => match map.remove(uid) {
                Some(Slot::Done(check)) => (false, Some(check)),
                _ => (false, None),
            },
            None => (false, None),
        }
    }

    fn forget(&self, uid: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(uid);
        }
    }
}

/// Reports a finished check and starts one when it is due; how soon to look again.
pub(super) fn check<K: DataStack>(obj: &K, outcome: &mut Outcome, probes: &Probes) -> Option<Duration> {
    let uid = obj.uid().unwrap_or_default();
    let Some(interval) = obj.health_check_interval() else {
        outcome.next.endpoint_check = None;
        probes.forget(&uid);
        return None;
    };
    let (Health::Ready { .. }, Some(published)) = (&outcome.health, &outcome.published) else {
        return None;
    };
    let (running, result) = probes.take_result(&uid);
    if let Some(result) = result {
        outcome.next.endpoint_check = Some(result);
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    let interval_secs = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let due = outcome
        .next
        .endpoint_check
        .as_ref()
        .is_none_or(|c| now.duration_since(c.last_check_time.0).as_secs() >= interval_secs);
    if due && !running {
        start(obj.clone(), uid, published.secret.clone(), probes);
    }
    Some(if due || running { RESULT_POLL } else { interval })
}

fn start<K: DataStack>(obj: K, uid: String, secret: std::collections::BTreeMap<String, String>, probes: &Probes) {
    let slots = probes.0.clone();
    if let Ok(mut map) = slots.lock() {
        map.insert(uid.clone(), Slot::Running);
    }
    tokio::spawn(async move {
        let started = Time(k8s_openapi::jiff::Timestamp::now());
        let Some(probe) = obj.probe(&secret).await else {
            if let Ok(mut map) = slots.lock() {
                map.remove(&uid);
            }
            return;
        };
        let check = EndpointCheck {
            reachable: probe.reachable,
            last_check_time: started,
            latency_milliseconds: i64::try_from(probe.latency.as_millis()).unwrap_or(i64::MAX),
            message: probe.message,
        };
        if let Ok(mut map) = slots.lock() {
            map.insert(uid, Slot::Done(check));
        }
    });
}
