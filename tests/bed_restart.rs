//! The fault suite's control-plane part: kube-apiserver restarted (etcd kept) while stacks are in
//! progress. On a control plane of its own, so no other test sees the restart.

mod support;

use kube::api::{Api, PostParams};
use oms_data_operator::redis::OmsRedis;
use serde_json::json;
use std::time::Instant;
use support::controlplane::{self, ControlPlane, Options};
use support::emulator;
use support::operator::{OperatorProcess, install_crds};
use support::world::WAIT;
use support::{eventually, unique_name};

// Not a tokio test: the control plane starts (and restarts) from this thread, which its processes
// die with, outside any runtime.
#[test]
fn a_kube_apiserver_restarted_while_stacks_are_in_progress_is_ridden_out_with_one_stack_each() {
    let mut cp = ControlPlane::start(Options::default()).expect("a control plane of this test's own");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (client, ns, op, names, key) = rt.block_on(burst(&cp));
    cp.restart_apiserver().expect("start kube-apiserver again");
    let restarted = Instant::now();
    rt.block_on(ridden_out(client, &ns, &op, &names, key, restarted));
}

async fn burst(cp: &ControlPlane) -> (kube::Client, String, OperatorProcess, Vec<String>, &'static str) {
    let client = cp.client().await;
    install_crds(&client).await;
    let ns = controlplane::test_namespace(&client, "restart").await;
    let emu = emulator::shared();
    let vpc = emu.deploy_vpc().await;
    let key = "restart-operator";
    let op = OperatorProcess::watching(emu, &cp.kubeconfig, &ns, key, &[]);
    let api: Api<OmsRedis> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..5).map(|_| unique_name("oms-redis-restart")).collect();
    let delays: serde_json::Map<String, serde_json::Value> = names.iter().map(|n| (n.clone(), json!(6.0))).collect();
    emu.configure(json!({ "stack_delays": delays }));
    for n in &names {
        let m: OmsRedis = serde_json::from_value(json!({
            "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsRedis",
            "metadata": { "name": n, "namespace": ns },
            "spec": { "environment": "dev", "vpcStackName": vpc },
        }))
        .expect("manifest");
        api.create(&PostParams::default(), &m).await.expect("create");
    }
    let creates = || emu.calls_by_key(key).get("cloudformation:CreateStack").copied().unwrap_or(0);
    eventually("every stack to be asked for", WAIT, || async { (creates() >= 5).then_some(()) }).await;
    (client, ns, op, names, key)
}

async fn ridden_out(
    client: kube::Client,
    ns: &str,
    op: &OperatorProcess,
    names: &[String],
    key: &str,
    restarted: Instant,
) {
    let emu = emulator::shared();
    let api: Api<OmsRedis> = Api::namespaced(client, ns);
    let creates = || emu.calls_by_key(key).get("cloudformation:CreateStack").copied().unwrap_or(0);
    support::world::all_ready(&api, names).await;
    eprintln!(
        "faults: kube-apiserver restarted with 5 stacks in progress: all Ready {:.1}s after",
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(creates(), 5, "{:?}", emu.calls_by_key(key));
    support::world::assert_one_stack_each(emu, names).await;
    assert_eq!(op.get("/healthz").0, 200, "the operator lived through it");
}
