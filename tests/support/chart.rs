//! The Helm chart on the bed: rendered by the pinned helm (`tests/helm/build.sh`, or `OMS_HELM`),
//! then applied to (or dry-run against) the real apiserver.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};

pub const CHART: &str = "charts/oms-data-operator";

pub fn helm() -> String {
    if let Ok(h) = std::env::var("OMS_HELM") {
        return h;
    }
    let out = std::process::Command::new("bash")
        .arg(super::proc::repo_root().join("tests/helm/build.sh"))
        .output()
        .expect("run tests/helm/build.sh");
    assert!(out.status.success(), "building helm failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs the pinned helm in the repository root against the cluster of `kubeconfig`, with helm's
/// config, cache and data under `home` (nothing of the user's own helm setup is read or written).
pub fn helm_on(kubeconfig: &std::path::Path, home: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(helm())
        .current_dir(super::proc::repo_root())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("run helm")
}

/// `helm template <release> <chart> -n <namespace> --set …`, as objects.
pub fn render(release: &str, namespace: &str, sets: &[&str]) -> Vec<DynamicObject> {
    let mut cmd = std::process::Command::new(helm());
    cmd.current_dir(super::proc::repo_root()).args([
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--kube-version",
        super::controlplane::pinned_kubernetes_version().trim_start_matches('v'),
    ]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("run helm template");
    assert!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("helm's output is YAML");
    docs.into_iter()
        .filter(|d| d.is_object())
        .map(|d| serde_json::from_value(d).expect("a Kubernetes object"))
        .collect()
}

/// Server-side applies `objects` (or only dry-runs them); panics with the apiserver's answer on refusal.
pub async fn apply(client: &kube::Client, objects: &[DynamicObject], dry_run: bool) {
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    for obj in objects {
        let types = obj.types.as_ref().expect("typed objects");
        let gvk = kube::core::GroupVersionKind::try_from(types).expect("a GVK");
        let (ar, caps) = discovery.resolve_gvk(&gvk).unwrap_or_else(|| panic!("the apiserver does not serve {gvk:?}"));
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                Api::namespaced_with(client.clone(), obj.metadata.namespace.as_deref().unwrap_or("default"), &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let name = obj.metadata.name.clone().expect("a name");
        let mut params = PatchParams::apply("oms-bed-chart").force();
        if dry_run {
            params = params.dry_run();
        }
        if let Err(e) = api.patch(&name, &params, &Patch::Apply(obj)).await {
            panic!("the apiserver refused {} {name}: {e}", gvk.kind);
        }
    }
}

pub fn of_kind<'a>(objects: &'a [DynamicObject], kind: &str) -> Vec<&'a DynamicObject> {
    objects.iter().filter(|o| o.types.as_ref().is_some_and(|t| t.kind == kind)).collect()
}
