//! Wiring: the shared [`Context`] (Kubernetes client, AWS clients, Event recorder, metrics,
//! settings) and the controller loop for one kind of data stack.

use crate::metrics::Metrics;
use crate::stack::DataStack;
use crate::stack::cfn::Aws;
use crate::stack::publish::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::stack::reconcile::{error_policy, reconcile};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Identifies this cluster in stack ownership tags.
    pub cluster_id: String,
    /// The fastest the operator polls a stack that is in progress.
    pub poll_interval: Duration,
    /// The slowest it polls one (long operations back off up to this).
    pub max_poll_interval: Duration,
    /// How often a settled resource is looked at again (drift, lost events).
    pub resync: Duration,
    /// Deadline of every Kubernetes call.
    pub kube_timeout: Duration,
    /// Resources reconciled at once.
    pub concurrency: u16,
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
        }
    }
}

pub struct Context {
    pub client: Client,
    pub aws: Aws,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
}

impl Context {
    pub fn new(client: Client, aws: Aws, metrics: Arc<Metrics>, settings: Settings) -> Context {
        let reporter = Reporter { controller: "oms-data-operator".into(), instance: std::env::var("POD_NAME").ok() };
        let recorder = Recorder::new(client.clone(), reporter);
        Context { client, aws, recorder, metrics, settings }
    }
}

/// The uid of kube-system: a stable identity for the cluster when none is configured.
pub async fn default_cluster_id(client: &Client) -> crate::error::Result<String> {
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let kube_system =
        crate::error::kube_call("get kube-system", Duration::from_secs(30), ns.get("kube-system")).await?;
    kube_system.metadata.uid.ok_or_else(|| crate::error::Error::Internal("kube-system has no uid".into()))
}

/// Runs the controller for kind `K` until `shutdown` resolves. `namespace` limits the watch to one
/// namespace; `None` watches the whole cluster.
pub async fn run<K: DataStack>(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (resources, secrets): (Api<K>, Api<Secret>) = match &namespace {
        Some(ns) => (Api::namespaced(ctx.client.clone(), ns), Api::namespaced(ctx.client.clone(), ns)),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let managed = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    Controller::new(resources, watcher::Config::default().any_semantic())
        .owns(secrets, watcher::Config::default().labels(&managed))
        .with_config(controller::Config::default().concurrency(ctx.settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}
