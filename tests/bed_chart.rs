//! The Helm chart renders objects the real apiserver accepts (server-side dry-run), in both RBAC
//! modes, with the pod security, probes, replicas and leader election the operator is run with.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::chart::{self, of_kind, render};
use support::{controlplane, unique_name};

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).expect("ns");
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

#[tokio::test]
async fn cluster_wide_rendering_is_accepted_and_runs_the_operator_as_documented() {
    let client = controlplane::shared().client().await;
    let ns = unique_name("oms-system");
    namespace(&client, &ns).await;
    let release = unique_name("r");
    let objects =
        render(&release, &ns, &["serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/oms-data-operator"]);
    chart::apply(&client, &objects, true).await;

    let kinds: Vec<&str> = objects.iter().filter_map(|o| o.types.as_ref().map(|t| t.kind.as_str())).collect();
    for kind in [
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(!kinds.contains(&"ServiceMonitor"), "off by default");

    let sa_obj = of_kind(&objects, "ServiceAccount")[0];
    assert_eq!(
        sa_obj.metadata.annotations.as_ref().and_then(|a| a.get("eks.amazonaws.com/role-arn")).map(String::as_str),
        Some("arn:aws:iam::123456789012:role/oms-data-operator")
    );

    let deployment: Value = serde_json::to_value(of_kind(&objects, "Deployment")[0]).expect("json");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    let args: Vec<&str> = c["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    assert!(args.contains(&"--region=us-east-1"), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--namespaces")), "cluster-wide: {args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--aws-endpoint-url")), "no emulator endpoint by default");

    let pdb: Value = serde_json::to_value(of_kind(&objects, "PodDisruptionBudget")[0]).expect("json");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}

#[tokio::test]
async fn namespaced_rendering_makes_roles_only_in_the_watched_namespaces() {
    let client = controlplane::shared().client().await;
    let ns = unique_name("oms-system");
    let (a, b) = (unique_name("team-a"), unique_name("team-b"));
    for n in [&ns, &a, &b] {
        namespace(&client, n).await;
    }
    let release = unique_name("r");
    let watch = format!("watchNamespaces={{{a},{b}}}");
    let objects = render(
        &release,
        &ns,
        &[&watch, "operator.clusterId=prod-eu-1", "aws.region=eu-west-1", "logging.format=text", "operator.resync=300"],
    );
    chart::apply(&client, &objects, true).await;

    let roles = of_kind(&objects, "Role");
    let role_namespaces: Vec<&str> = roles.iter().filter_map(|r| r.metadata.namespace.as_deref()).collect();
    assert!(role_namespaces.contains(&a.as_str()) && role_namespaces.contains(&b.as_str()), "{role_namespaces:?}");
    // Cluster-wide, only the watched namespaces' own objects may be read (their AWS role annotations).
    let cluster_roles: Vec<Value> =
        of_kind(&objects, "ClusterRole").iter().map(|r| serde_json::to_value(r).expect("json")).collect();
    assert_eq!(cluster_roles.len(), 1, "one cluster-wide role with a cluster id and namespaces");
    assert_eq!(
        cluster_roles[0]["rules"],
        json!([{ "apiGroups": [""], "resources": ["namespaces"], "resourceNames": [a, b], "verbs": ["get"] }])
    );
    let deployment: Value = serde_json::to_value(of_kind(&objects, "Deployment")[0]).expect("json");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    for want in [
        format!("--namespaces={a},{b}"),
        "--cluster-id=prod-eu-1".into(),
        "--region=eu-west-1".into(),
        "--log-format=text".into(),
        "--resync=300".into(),
    ] {
        assert!(args.contains(&want), "{want} in {args:?}");
    }
}

#[tokio::test]
async fn the_service_monitor_renders_when_asked() {
    let objects = render(&unique_name("r"), "oms-system", &["metrics.serviceMonitor.enabled=true"]);
    let sm: Value = serde_json::to_value(of_kind(&objects, "ServiceMonitor")[0]).expect("a ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
}

/// `helm install` of the chart on the bed (the apiserver's version satisfies the chart's
/// kubeVersion) makes the Deployment, ServiceAccount, RBAC and the CRD; `helm uninstall` removes
/// the release's objects and, as helm does with crds/, keeps the CRD. Nothing has to run: no --wait.
#[tokio::test]
async fn helm_install_and_uninstall_work_on_the_bed() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::ListParams;

    let cp = controlplane::shared();
    let client = cp.client().await;
    let ns = unique_name("oms-helm");
    namespace(&client, &ns).await;
    let release = unique_name("r");
    let home = tempfile::tempdir().expect("tempdir");
    let helm = |args: &[&str]| {
        let out = chart::helm_on(&cp.kubeconfig, home.path(), args);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "helm {} exited {}:\n{stdout}\n{stderr}", args.join(" "), out.status);
        stdout.into_owned()
    };
    helm(&["install", &release, chart::CHART, "--namespace", &ns, "--set", "replicaCount=1", "--timeout", "60s"]);

    let mine = ListParams::default().labels(&format!("app.kubernetes.io/instance={release}"));
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns).list(&mine).await.expect("list");
    assert_eq!(deployments.items.len(), 1, "one Deployment");
    assert_eq!(deployments.items[0].spec.as_ref().and_then(|s| s.replicas), Some(1));
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), &ns).list(&mine).await.expect("list");
    assert_eq!(sas.items.len(), 1, "one ServiceAccount");
    let roles = Api::<Role>::namespaced(client.clone(), &ns).list(&mine).await.expect("list");
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), &ns).list(&mine).await.expect("list");
    assert!(!roles.items.is_empty() && !bindings.items.is_empty(), "the leader-election Role and RoleBinding");
    let cluster_roles = Api::<ClusterRole>::all(client.clone());
    let cluster_bindings = Api::<ClusterRoleBinding>::all(client.clone());
    let crs: Vec<String> =
        cluster_roles.list(&mine).await.expect("list").items.into_iter().filter_map(|r| r.metadata.name).collect();
    let crbs: Vec<String> =
        cluster_bindings.list(&mine).await.expect("list").items.into_iter().filter_map(|r| r.metadata.name).collect();
    assert!(!crs.is_empty() && !crbs.is_empty(), "cluster-wide RBAC: {crs:?} {crbs:?}");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ["omsredises.data.oms-spider.io", "omsdynamotables.data.oms-spider.io"] {
        assert!(crds.get_opt(crd).await.expect("get").is_some(), "the chart's CRD {crd}");
    }
    let listed: Value = serde_json::from_str(&helm(&["list", "--namespace", &ns, "-o", "json"])).expect("JSON");
    assert_eq!(listed[0]["status"], "deployed", "{listed}");

    helm(&["uninstall", &release, "--namespace", &ns, "--timeout", "60s"]);
    support::eventually("the release's objects to be gone", std::time::Duration::from_secs(30), || async {
        let gone = Api::<Deployment>::namespaced(client.clone(), &ns).list(&mine).await.ok()?.items.is_empty()
            && Api::<ServiceAccount>::namespaced(client.clone(), &ns).list(&mine).await.ok()?.items.is_empty()
            && cluster_roles.list(&mine).await.ok()?.items.is_empty()
            && cluster_bindings.list(&mine).await.ok()?.items.is_empty();
        gone.then_some(())
    })
    .await;
    assert!(crds.get_opt("omsredises.data.oms-spider.io").await.expect("get").is_some(), "helm keeps crds/");
    let listed: Value = serde_json::from_str(&helm(&["list", "--namespace", &ns, "-o", "json"])).expect("JSON");
    assert_eq!(listed, json!([]), "no release left");
}
