//! The operator on the bed: its CRDs installed in the control plane, and the controller running in
//! the test process against one namespace, talking to the emulator through the real aws-sdk.

use super::controlplane::ControlPlane;
use super::emulator::{Emulator, REGION};
use super::eventually;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use oms_data_operator::context::{Context, Settings};
use oms_data_operator::controller;
use oms_data_operator::metrics::Metrics;
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
        // Throttling shows at once, so the tests of its reporting need no two-minute storm.
        throttling_grace: Duration::ZERO,
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
        Self::start_with_aws(cp, emulator_sdk_config(emu), namespace, settings).await
    }

    /// The controller against any AWS configuration (for example one whose endpoint is down).
    pub async fn start_with_aws(
        cp: &ControlPlane,
        aws_config: aws_config::SdkConfig,
        namespace: &str,
        settings: Settings,
    ) -> Operator {
        let client = cp.client().await;
        install_crds(&client).await;
        let metrics = Arc::new(Metrics::default());
        let aws = Aws::new(aws_config, Duration::from_secs(20), metrics.clone());
        let ctx = Arc::new(Context::new(client, aws, metrics.clone(), settings));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ns = namespace.to_string();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = rx.await;
            let _ = stop_tx.send(true);
        });
        let task = tokio::spawn(controller::run_all(ctx, Some(ns), stop_rx));
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

/// The operator binary running as its own process, killed when dropped.
pub struct OperatorProcess {
    pub child: std::process::Child,
    /// Where /healthz, /readyz and /metrics are served.
    pub http_port: u16,
    pub log: Option<std::path::PathBuf>,
}

/// How to run the operator binary against the bed.
pub struct ProcessOptions<'a> {
    pub kubeconfig: &'a std::path::Path,
    /// Signs every AWS call, so the emulator can count this process's calls apart.
    pub access_key: &'a str,
    pub args: Vec<String>,
    /// `None` lets the process write to the terminal.
    pub log: Option<std::path::PathBuf>,
    pub pod_name: Option<&'a str>,
    /// More environment, e.g. SSL_CERT_FILE for a test CA.
    pub env: &'a [(&'a str, &'a str)],
}

impl OperatorProcess {
    pub fn spawn(emu: &Emulator, opts: ProcessOptions) -> OperatorProcess {
        let http_port = super::proc::free_port().expect("a free port");
        // OMS_OPERATOR_BIN runs another build of the binary (e.g. the static release one) on the bed.
        let bin =
            std::env::var("OMS_OPERATOR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_oms-data-operator").to_string());
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("run")
            .args(["--metrics-addr", &format!("127.0.0.1:{http_port}")])
            .args(&opts.args)
            .env("KUBECONFIG", opts.kubeconfig)
            .env("OMS_AWS_ENDPOINT_URL", &emu.url)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", opts.access_key)
            .env("AWS_SECRET_ACCESS_KEY", "bed")
            .env_remove("AWS_PROFILE")
            .stdin(std::process::Stdio::null());
        cmd.envs(opts.env.iter().copied());
        if let Some(name) = opts.pod_name {
            cmd.env("POD_NAME", name);
        }
        if let Some(log) = &opts.log {
            let f = std::fs::File::create(log).expect("the operator's log file");
            cmd.stdout(f.try_clone().expect("log")).stderr(f);
        }
        // Like every bed process, it dies with the thread that started it: a demo stopped by a
        // signal leaves no operator behind.
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start the operator binary");
        OperatorProcess { child, http_port, log: opts.log }
    }

    /// The binary watching only `namespace`, polling fast (0.3 s, backing off to 1 s), its calls
    /// signed with `access_key`; `extra` are more flags.
    pub fn watching(
        emu: &Emulator,
        kubeconfig: &std::path::Path,
        namespace: &str,
        access_key: &str,
        extra: &[&str],
    ) -> OperatorProcess {
        let mut args: Vec<String> = ["--namespaces", namespace, "--poll-interval", "0.3", "--max-poll-interval", "1"]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        OperatorProcess::spawn(
            emu,
            ProcessOptions { kubeconfig, access_key, args, log: None, pod_name: None, env: &[] },
        )
    }

    /// GET on the operator's HTTP port: status and body (status 0 when nothing answers).
    pub fn get(&self, path: &str) -> (u16, String) {
        super::proc::http_request(self.http_port, "GET", path, "").unwrap_or((0, String::new()))
    }

    /// The value of an unlabelled metric, e.g. `oms_data_operator_leader`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    pub fn log_tail(&self) -> String {
        self.log.as_ref().map(|l| super::proc::log_tail(l, 30)).unwrap_or_default()
    }

    pub fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
