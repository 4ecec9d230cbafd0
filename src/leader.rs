//! Leader election on a coordination.k8s.io Lease, so that of several replicas exactly one
//! reconciles. The holder renews the Lease every retry period; the others take it over once it has
//! not been renewed for the lease duration; a holder that shuts down gracefully releases it so a
//! standby takes over at once. Every write carries the Lease's resourceVersion, so two candidates
//! can never both win.

use crate::error::{Error, Result, kube_call};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease holds without renewal before others may take it.
    pub lease_duration: Duration,
    /// How long the holder keeps trying to renew before it gives leadership up.
    pub renew_deadline: Duration,
    /// How often candidates try and the holder renews.
    pub retry_period: Duration,
    pub call_timeout: Duration,
}

/// What one attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Leading,
    Following,
}

/// Whether `spec` lets `me` take or keep the Lease at `now`.
pub fn may_hold(spec: &LeaseSpec, me: &str, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == me {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else { return true };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    renewed + SignedDuration::from_secs(duration) < now
}

pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
}

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> Elector {
        Elector { api: Api::namespaced(client, &cfg.namespace), cfg }
    }

    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let ours = previous.and_then(|p| p.holder_identity.as_deref()) == Some(self.cfg.identity.as_str());
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs().max(1) as i32),
            acquire_time: if ours { previous.and_then(|p| p.acquire_time.clone()) } else { Some(MicroTime(now)) },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }
    }

    /// One try to take or renew the Lease.
    pub async fn try_acquire(&self) -> Result<Attempt> {
        let now = Timestamp::now();
        let t = self.cfg.call_timeout;
        let Some(mut lease) = kube_call("get Lease", t, self.api.get_opt(&self.cfg.name)).await? else {
            let mut lease = Lease::default();
            lease.metadata.name = Some(self.cfg.name.clone());
            lease.spec = Some(self.spec(None, now));
            return match tokio::time::timeout(t, self.api.create(&PostParams::default(), &lease)).await {
                Ok(Ok(_)) => Ok(Attempt::Leading),
                Ok(Err(kube::Error::Api(s))) if s.code == 409 => Ok(Attempt::Following),
                Ok(Err(e)) => Err(Error::kube("create Lease")(e)),
                Err(_) => Err(Error::Timeout { action: "create Lease", after: t }),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        if !may_hold(&current, &self.cfg.identity, now) {
            return Ok(Attempt::Following);
        }
        lease.spec = Some(self.spec(Some(&current), now));
        // The resourceVersion in `lease` makes this a compare-and-swap.
        match tokio::time::timeout(t, self.api.replace(&self.cfg.name, &PostParams::default(), &lease)).await {
            Ok(Ok(_)) => Ok(Attempt::Leading),
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Ok(Attempt::Following),
            Ok(Err(e)) => Err(Error::kube("update Lease")(e)),
            Err(_) => Err(Error::Timeout { action: "update Lease", after: t }),
        }
    }

    /// Gives the Lease up (on graceful shutdown) so a standby need not wait for it to expire.
    pub async fn release(&self) -> Result<()> {
        let t = self.cfg.call_timeout;
        let Some(mut lease) = kube_call("get Lease", t, self.api.get_opt(&self.cfg.name)).await? else { return Ok(()) };
        let Some(spec) = lease.spec.as_mut() else { return Ok(()) };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        kube_call("release Lease", t, self.api.replace(&self.cfg.name, &PostParams::default(), &lease)).await?;
        Ok(())
    }

    /// Campaigns until leading, then keeps renewing. `leading` turns true on winning and false when
    /// a renewal could not be made within the renew deadline (the caller must then stop working).
    /// Returns when `stop` fires or leadership is lost.
    pub async fn run(&self, leading: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            match self.try_acquire().await {
                Ok(Attempt::Leading) => {
                    if last_renewal.is_none() {
                        tracing::info!(
                            identity = self.cfg.identity.as_str(),
                            lease = self.cfg.name.as_str(),
                            "became leader"
                        );
                    }
                    last_renewal = Some(tokio::time::Instant::now());
                    let _ = leading.send(true);
                }
                Ok(Attempt::Following) => {
                    if last_renewal.is_some() {
                        tracing::warn!("another replica holds the Lease now; stopping");
                        let _ = leading.send(false);
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            if let Some(at) = last_renewal
                && at.elapsed() > self.cfg.renew_deadline
            {
                tracing::warn!("could not renew the Lease within the renew deadline; stopping");
                let _ = leading.send(false);
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed_secs: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed_secs).expect("time"))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("time")
    }

    #[test]
    fn a_live_lease_of_another_holder_is_respected() {
        assert!(!may_hold(&spec(Some("b"), 100, 15), "a", at(110)));
        assert!(may_hold(&spec(Some("b"), 100, 15), "a", at(116)), "expired");
    }

    #[test]
    fn an_own_released_or_empty_lease_may_be_held() {
        assert!(may_hold(&spec(Some("a"), 100, 15), "a", at(101)));
        assert!(may_hold(&spec(None, 100, 15), "a", at(101)), "released");
        assert!(may_hold(&spec(Some(""), 100, 15), "a", at(101)));
        assert!(may_hold(&LeaseSpec::default(), "a", at(0)));
    }
}
