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
    assert!(of_kind(&objects, "ClusterRole").is_empty(), "no cluster-wide role with a cluster id and namespaces");
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
