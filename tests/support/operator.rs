//! The operator on the bed: its CRDs installed in the control plane, and the controller running in
//! the test process against one namespace, talking to the emulator through the real aws-sdk.

use super::controlplane::ControlPlane;
use super::emulator::{Emulator, REGION};
use super::eventually;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use oms_data_operator::controller::{self, Context, Settings};
use oms_data_operator::metrics::Metrics;
use oms_data_operator::redis::OmsRedis;
use oms_data_operator::stack::cfn::Aws;
use std::sync::Arc;
use std::time::Duration;

/// Applies the operator's generated CRDs and waits until they are served.
pub async fn install_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in oms_data_operator::crd::all() {
        let name = crd.metadata.name.clone().expect("a CRD name");
        crds.patch(&name, &PatchParams::apply("oms-bed").force(), &Patch::Apply(&crd)).await.expect("apply the CRD");
        eventually("the CRD to be established", Duration::from_secs(30), || async {
            let c = crds.get(&name).await.ok()?;
            c.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await;
    }
}

/// An AWS configuration for the emulator, as the operator's default chain would build it.
pub fn emulator_sdk_config(emu: &Emulator) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&emu.url)
        .credentials_provider(aws_sdk_cloudformation::config::SharedCredentialsProvider::new(
            aws_sdk_cloudformation::config::Credentials::new("bed", "bed", None, None, "oms-bed"),
        ))
        .build()
}

/// Settings for tests: fast polling, a short resync.
pub fn test_settings() -> Settings {
    Settings {
        cluster_id: "oms-bed-cluster".into(),
        poll_interval: Duration::from_millis(300),
        max_poll_interval: Duration::from_secs(1),
        resync: Duration::from_secs(30),
        kube_timeout: Duration::from_secs(20),
        concurrency: 4,
    }
}

/// The controller, running until dropped.
pub struct Operator {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub metrics: Arc<Metrics>,
}

impl Operator {
    pub async fn start(cp: &ControlPlane, emu: &Emulator, namespace: &str) -> Operator {
        Self::start_with(cp, emu, namespace, test_settings()).await
    }

    pub async fn start_with(cp: &ControlPlane, emu: &Emulator, namespace: &str, settings: Settings) -> Operator {
        let client = cp.client().await;
        install_crds(&client).await;
        let aws = Aws::new(emulator_sdk_config(emu), Duration::from_secs(20));
        let metrics = Arc::new(Metrics::default());
        let ctx = Arc::new(Context::new(client, aws, metrics.clone(), settings));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ns = namespace.to_string();
        let task = tokio::spawn(controller::run::<OmsRedis>(ctx, Some(ns), async move {
            let _ = rx.await;
        }));
        Operator { shutdown: Some(tx), task: Some(task), metrics }
    }

    /// Stops the controller and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
