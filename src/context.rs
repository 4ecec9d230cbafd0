//! What every reconcile shares: the Kubernetes client, the AWS clients, the Event recorder, the
//! metrics and the settings. Its own module so the reconcile paths depend on it without depending on
//! the controller loop that runs them.

use crate::metrics::Metrics;
use crate::stack::cfn::Aws;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Identifies this cluster in stack ownership tags.
    pub cluster_id: String,
    /// The fastest the operator polls a stack that is in progress.
    pub poll_interval: Duration,
    /// How old the shared sweep may be for a settled stack, and the longest back-off while AWS is
    /// unreachable (and for long day-2 operations).
    pub max_poll_interval: Duration,
    /// How often a settled resource is looked at again (drift, lost events).
    pub resync: Duration,
    /// Deadline of every Kubernetes call.
    pub kube_timeout: Duration,
    /// Resources reconciled at once.
    pub concurrency: u16,
    /// How long AWS may throttle every call before it shows in conditions and Events: a short
    /// storm is the call budget's to absorb, not the user's.
    pub throttling_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cluster_id: String::new(),
            poll_interval: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(60),
            resync: Duration::from_secs(600),
            kube_timeout: Duration::from_secs(30),
            concurrency: 4,
            throttling_grace: Duration::from_secs(120),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub aws: Aws,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Endpoint checks under way (see [`crate::stack::endpoint`]).
    pub probes: crate::stack::endpoint::Probes,
    /// Namespaces' annotations (which AWS account), read at most once a second each.
    pub namespaces: crate::stack::accounts::Namespaces,
}

impl Context {
    pub fn new(client: Client, aws: Aws, metrics: Arc<Metrics>, settings: Settings) -> Context {
        let reporter = Reporter { controller: "oms-data-operator".into(), instance: std::env::var("POD_NAME").ok() };
        let recorder = Recorder::new(client.clone(), reporter);
        Context { client, aws, recorder, metrics, settings, probes: Default::default(), namespaces: Default::default() }
    }
}

/// The uid of kube-system: a stable identity for the cluster when none is configured.
pub async fn default_cluster_id(client: &Client) -> crate::error::Result<String> {
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let kube_system =
        crate::error::kube_call("get kube-system", Duration::from_secs(30), ns.get("kube-system")).await?;
    kube_system.metadata.uid.ok_or_else(|| crate::error::Error::Internal("kube-system has no uid".into()))
}
