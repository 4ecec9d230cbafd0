//! The chart's RBAC is enough and no more: the operator binary, running with the chart's
//! ServiceAccount token, reconciles an OmsRedis to Ready; the same identity is refused, by the
//! apiserver itself, Secrets outside its watched namespaces and every unrelated resource.

mod support;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::time::Duration;
use support::chart::{self, render};
use support::controlplane::{self, write_kubeconfig};
use support::emulator;
use support::operator::{OperatorProcess, ProcessOptions, install_crds};
use support::{eventually, unique_name};

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).expect("ns");
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

fn forbidden<T: std::fmt::Debug>(what: &str, r: Result<T, kube::Error>) {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden from the apiserver, got {other:?}"),
    }
}

/// Installs the chart's ServiceAccount and RBAC (as the chart renders them) and returns a
/// kubeconfig carrying a token of that ServiceAccount.
async fn install_rbac(admin: &kube::Client, release: &str, ns: &str, sets: &[&str]) -> std::path::PathBuf {
    let objects = render(release, ns, sets);
    let rbac: Vec<_> = objects
        .into_iter()
        .filter(|o| {
            o.types.as_ref().is_some_and(|t| {
                ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
                    .contains(&t.kind.as_str())
            })
        })
        .collect();
    chart::apply(admin, &rbac, false).await;
    let sa_name = format!("{release}-oms-data-operator");
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))
            .expect("token request");
    let token: TokenRequest = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_subresource("token", &sa_name, &PostParams::default(), &request)
        .await
        .expect("a token for the ServiceAccount");
    let token = token.status.expect("token status").token;
    let cp = controlplane::shared();
    let path = cp.dir.path().join(format!("kubeconfig-{release}"));
    write_kubeconfig(&path, &cp.url, &cp.ca_cert(), &token).expect("write kubeconfig");
    path
}

async fn client_for(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test]
async fn namespaced_rbac_suffices_to_reconcile_and_refuses_everything_else() {
    let cp = controlplane::shared();
    let emu = emulator::shared();
    let admin = cp.client().await;
    install_crds(&admin).await;
    let (op_ns, watched, other, outside) =
        (unique_name("oms-system"), unique_name("team-a"), unique_name("team-b"), unique_name("elsewhere"));
    for n in [&op_ns, &watched, &other, &outside] {
        namespace(&admin, n).await;
    }
    let release = unique_name("r");
    let watch = format!("watchNamespaces={{{watched},{other}}}");
    let kubeconfig = install_rbac(&admin, &release, &op_ns, &[&watch]).await;
    let sa = client_for(&kubeconfig).await;
    // The apiserver's RBAC cache takes a moment to see new bindings; start once it does.
    eventually("the new RoleBindings to take effect", Duration::from_secs(30), || async {
        let in_watched = Api::<oms_data_operator::redis::OmsRedis>::namespaced(sa.clone(), &watched);
        let identity = Api::<Namespace>::all(sa.clone());
        (in_watched.list(&ListParams::default()).await.is_ok() && identity.get("kube-system").await.is_ok())
            .then_some(())
    })
    .await;

    // The operator, as that ServiceAccount, with leader election as the chart runs it.
    let vpc = emu.deploy_vpc().await;
    let log = cp.dir.path().join(format!("operator-{release}.log"));
    let op = OperatorProcess::spawn(
        emu,
        ProcessOptions {
            kubeconfig: &kubeconfig,
            access_key: "rbac",
            args: vec![
                format!("--namespaces={watched},{other}"),
                "--leader-elect".into(),
                format!("--leader-election-namespace={op_ns}"),
                format!("--leader-election-id={release}-oms-data-operator"),
                "--poll-interval=0.3".into(),
                "--max-poll-interval=1".into(),
            ],
            log: Some(log),
            pod_name: Some("rbac-operator-0"),
            env: &[],
        },
    );
    let name = unique_name("oms-redis-rbac");
    let api: Api<oms_data_operator::redis::OmsRedis> = Api::namespaced(admin.clone(), &watched);
    let obj = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsRedis",
        "metadata": { "name": name },
        "spec": { "environment": "dev", "vpcStackName": vpc },
    }))
    .expect("manifest");
    api.create(&PostParams::default(), &obj).await.expect("create");
    eventually("Ready under the chart's RBAC", Duration::from_secs(90), || async {
        let o = api.get(&name).await.ok()?;
        o.status?.stack.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    let secret = Api::<Secret>::namespaced(admin.clone(), &watched).get(&format!("{name}-redis")).await;
    assert!(secret.is_ok(), "the Secret was written with the chart's RBAC");
    // The second kind, under the same rules.
    let table = unique_name("oms-dynamodb-rbac");
    let tables: Api<oms_data_operator::dynamo::OmsDynamoTable> = Api::namespaced(admin.clone(), &watched);
    let obj = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsDynamoTable",
        "metadata": { "name": table },
        "spec": { "environment": "dev", "partitionKey": { "name": "id", "type": "String" } },
    }))
    .expect("manifest");
    tables.create(&PostParams::default(), &obj).await.expect("create");
    eventually("the table Ready under the chart's RBAC", Duration::from_secs(90), || async {
        let o = tables.get(&table).await.ok()?;
        o.status?.stack.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    let secret = Api::<Secret>::namespaced(admin.clone(), &watched).get(&format!("{table}-dynamodb")).await;
    assert!(secret.is_ok(), "the table's Secret was written with the chart's RBAC");
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(admin.clone(), &watched)
        .list(&ListParams::default())
        .await
        .expect("events");
    assert!(
        events.items.iter().any(|e| e.reporting_controller.as_deref() == Some("oms-data-operator")),
        "Events were published with the chart's RBAC; operator log:\n{}",
        op.log_tail()
    );
    // A backup under the same RBAC: watched, finalized, its status written, its Events published.
    let backups: Api<oms_data_operator::backup::OmsBackup> = Api::namespaced(admin.clone(), &watched);
    let backup = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsBackup",
        "metadata": { "name": "under-rbac" }, "spec": { "source": { "name": name } },
    }))
    .expect("manifest");
    backups.create(&PostParams::default(), &backup).await.expect("create the backup");
    eventually("the backup to complete under the chart's RBAC", Duration::from_secs(90), || async {
        let b = backups.get("under-rbac").await.ok()?;
        b.status?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    // The apiserver's refusals read "... is forbidden: User ... cannot ..." (reason Forbidden).
    assert!(!op.log_tail().to_lowercase().contains("forbidden"), "no permission errors: {}", op.log_tail());

    // What the ServiceAccount may not do, in the apiserver's own words.
    let secrets_outside = Api::<Secret>::namespaced(admin.clone(), &outside);
    let planted: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "not-yours" }, "stringData": { "k": "v" } })).expect("s");
    secrets_outside.create(&PostParams::default(), &planted).await.expect("plant a secret");
    forbidden(
        "get a Secret outside the watched namespaces",
        Api::<Secret>::namespaced(sa.clone(), &outside).get("not-yours").await,
    );
    forbidden(
        "list Secrets outside",
        Api::<Secret>::namespaced(sa.clone(), &outside).list(&ListParams::default()).await,
    );
    forbidden("list Secrets cluster-wide", Api::<Secret>::all(sa.clone()).list(&ListParams::default()).await);
    forbidden(
        "delete its own Secret",
        Api::<Secret>::namespaced(sa.clone(), &watched).delete(&format!("{name}-redis"), &Default::default()).await,
    );
    forbidden("read ConfigMaps", Api::<ConfigMap>::namespaced(sa.clone(), &watched).list(&ListParams::default()).await);
    forbidden("list Pods", Api::<Pod>::namespaced(sa.clone(), &watched).list(&ListParams::default()).await);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "c", "image": "busybox" }] }
    }))
    .expect("pod");
    forbidden("create Pods", Api::<Pod>::namespaced(sa.clone(), &watched).create(&PostParams::default(), &pod).await);
    forbidden("get another namespace object", Api::<Namespace>::all(sa.clone()).get("default").await);
    forbidden(
        "list OmsRedis outside the watched namespaces",
        Api::<oms_data_operator::redis::OmsRedis>::namespaced(sa.clone(), &outside).list(&ListParams::default()).await,
    );
    forbidden(
        "delete OmsRedis",
        Api::<oms_data_operator::redis::OmsRedis>::namespaced(sa.clone(), &watched)
            .delete(&name, &Default::default())
            .await,
    );
    // And what it may: exactly its own work.
    Api::<Namespace>::all(sa.clone()).get("kube-system").await.expect("the cluster identity");
    Api::<Secret>::namespaced(sa.clone(), &watched).get(&format!("{name}-redis")).await.expect("its own Secret");
    drop(op);
}

#[tokio::test]
async fn cluster_wide_rbac_still_refuses_unrelated_resources() {
    let cp = controlplane::shared();
    let admin = cp.client().await;
    install_crds(&admin).await;
    let op_ns = unique_name("oms-system");
    let ns = unique_name("team-c");
    for n in [&op_ns, &ns] {
        namespace(&admin, n).await;
    }
    let release = unique_name("r");
    let kubeconfig = install_rbac(&admin, &release, &op_ns, &[]).await;
    let sa = client_for(&kubeconfig).await;
    Api::<oms_data_operator::redis::OmsRedis>::all(sa.clone())
        .list(&ListParams::default())
        .await
        .expect("cluster-wide: may list OmsRedis everywhere");
    forbidden("read ConfigMaps", Api::<ConfigMap>::all(sa.clone()).list(&ListParams::default()).await);
    forbidden("list Pods", Api::<Pod>::all(sa.clone()).list(&ListParams::default()).await);
    forbidden("list Namespaces", Api::<Namespace>::all(sa.clone()).list(&ListParams::default()).await);
    forbidden(
        "delete a Secret",
        Api::<Secret>::namespaced(sa.clone(), &ns).delete("anything", &Default::default()).await,
    );
    forbidden(
        "touch ServiceAccounts",
        Api::<ServiceAccount>::namespaced(sa.clone(), &ns).list(&ListParams::default()).await,
    );
    forbidden(
        "read another Lease",
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(sa.clone(), &op_ns).get("someone-else").await,
    );
}
