//! The fault suite on the bed: AWS unreachable, then hung, for 30 s each while stacks are being
//! made, a 30 s storm of Throttling answers during a burst, and the operator killed at each step
//! of a snapshot deletion. Each ends with every resource Ready (or gone), exactly one stack per
//! resource, and figures (calls a second during the fault, time to recover) printed for the notes.

mod support;

use kube::api::Api;
use oms_data_operator::redis::OmsRedis;
use serde_json::json;
use std::time::{Duration, Instant};
use support::operator::{OperatorProcess, ProcessOptions};
use support::proxy::Proxy;
use support::world::{WAIT, World, all_ready, assert_one_stack_each, create_in, delete_killing_at_each_call};
use support::{controlplane, eventually, unique_name};

const OUTAGE: Duration = Duration::from_secs(30);

/// Every AWS call the operator made so far, whatever came of it.
fn aws_calls(op: &OperatorProcess) -> f64 {
    let (_, text) = op.get("/metrics");
    text.lines()
        .filter(|l| l.starts_with("oms_data_operator_aws_calls_total{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Applies `count` resources, takes AWS away with `outage` for 30 s, brings it back; calls a second
/// while away and seconds from its return until every resource is Ready.
async fn ride_out(
    w: &World,
    api: &Api<OmsRedis>,
    ns: &str,
    op: &OperatorProcess,
    proxy: &Proxy,
    what: &str,
    outage: impl Fn(&Proxy),
) -> Vec<String> {
    let names: Vec<String> = (0..3).map(|_| unique_name(&format!("oms-redis-{what}"))).collect();
    create_in(w, api, ns, &names, "dev", json!({})).await;
    // Let the first passes reach AWS, then take it away mid-create.
    tokio::time::sleep(Duration::from_millis(400)).await;
    outage(proxy);
    let before = aws_calls(op);
    tokio::time::sleep(OUTAGE).await;
    let during = aws_calls(op) - before;
    proxy.pass();
    let back = Instant::now();
    all_ready(api, &names).await;
    let recovered = back.elapsed().as_secs_f64();
    let rate = during / OUTAGE.as_secs_f64();
    println!("faults: AWS {what} for 30 s: {during} calls while away ({rate:.2}/s), all Ready {recovered:.1} s after");
    assert!(rate <= 2.0, "AWS {what}: {rate:.2} calls a second while away is a hot loop");
    names
}

#[tokio::test]
async fn aws_unreachable_then_hung_for_30_s_each_is_ridden_out_without_a_hot_loop_or_a_second_stack() {
    let w = World::new("faults").await;
    let ns = controlplane::test_namespace(&w.client, "faults-bin").await;
    let api: Api<OmsRedis> = Api::namespaced(w.client.clone(), &ns);
    let proxy = Proxy::start(w.emu.port);
    let key = "faults-operator";
    let args: Vec<String> =
        ["--namespaces", &ns, "--poll-interval", "0.3", "--max-poll-interval", "1", "--aws-timeout", "5"]
            .map(String::from)
            .to_vec();
    let op = OperatorProcess::spawn(
        w.emu,
        ProcessOptions {
            kubeconfig: &w.cp.kubeconfig,
            access_key: key,
            args,
            log: None,
            pod_name: None,
            env: &[("OMS_AWS_ENDPOINT_URL", proxy.url.as_str())],
        },
    );
    let mut names = ride_out(&w, &api, &ns, &op, &proxy, "unreachable", Proxy::down).await;
    names.extend(ride_out(&w, &api, &ns, &op, &proxy, "hung", Proxy::hang).await);
    let calls = w.emu.calls_by_key(key);
    // A CreateStack whose reply was lost is sent again with its ClientRequestToken, which
    // CloudFormation answers with the same stack: calls may repeat, stacks may not.
    println!("faults: AWS calls over both outages: {calls:?}");
    assert_one_stack_each(w.emu, &names).await;
}

#[tokio::test]
async fn a_30_s_throttling_storm_during_a_burst_slows_the_budget_down_and_never_reaches_the_user() {
    let w = World::new("storm").await;
    let ns = controlplane::test_namespace(&w.client, "storm-bin").await;
    let api: Api<OmsRedis> = Api::namespaced(w.client.clone(), &ns);
    let key = "storm-operator";
    // The default budget (20 calls a second) and throttling grace (120 s).
    let op = OperatorProcess::watching(w.emu, &w.cp.kubeconfig, &ns, key, &["--concurrency", "8"]);
    let names: Vec<String> = (0..6).map(|_| unique_name("oms-redis-storm")).collect();
    create_in(&w, &api, &ns, &names, "dev", json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.emu.storm(key, OUTAGE.as_secs_f64());
    let (before, started) = (aws_calls(&op), Instant::now());
    let mut slowest = f64::INFINITY;
    while started.elapsed() < OUTAGE {
        tokio::time::sleep(Duration::from_secs(1)).await;
        slowest = slowest.min(op.metric("oms_data_operator_aws_budget_rate").unwrap_or(f64::INFINITY));
    }
    let during = aws_calls(&op) - before;
    let back = Instant::now();
    all_ready(&api, &names).await;
    let recovered = back.elapsed().as_secs_f64();
    let rate = during / OUTAGE.as_secs_f64();
    println!(
        "faults: Throttling storm for 30 s: {during} calls ({rate:.2}/s), budget down to {slowest:.2}/s, all Ready {recovered:.1} s after"
    );
    assert!(slowest <= 1.0, "the budget slowed down to its floor: {slowest}");
    assert!(rate <= 2.0, "{rate:.2} calls a second into a storm");
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(w.client.clone(), &ns)
        .list(&Default::default())
        .await
        .expect("events");
    let warnings: Vec<_> = events.items.iter().filter(|e| e.type_.as_deref() == Some("Warning")).collect();
    assert!(warnings.is_empty(), "a 30 s storm reached the user: {warnings:?}");
    assert_one_stack_each(w.emu, &names).await;
}

#[tokio::test]
async fn an_operator_killed_at_each_step_of_a_snapshot_deletion_takes_one_snapshot_and_deletes_the_stack_once() {
    let w = World::new("delkill").await;
    let ns = controlplane::test_namespace(&w.client, "delkill-bin").await;
    let api: Api<OmsRedis> = Api::namespaced(w.client.clone(), &ns);
    let name = unique_name("oms-redis-delkill");
    let spawn = |key: &str| OperatorProcess::watching(w.emu, &w.cp.kubeconfig, &ns, key, &[]);
    let operator = spawn("delkill-0");
    let snapshot = json!({ "deletionPolicy": "Snapshot" });
    create_in(&w, &api, &ns, std::slice::from_ref(&name), "staging", snapshot).await;
    all_ready(&api, std::slice::from_ref(&name)).await;
    // Each step: its reply is lost, the operator is SIGKILLed while it waits, a new one goes on.
    let calls = ["elasticache:CreateSnapshot", "cloudformation:DeleteStack"];
    let operator =
        delete_killing_at_each_call(&w, &api, &name, &calls, operator, |i| spawn(&format!("delkill-{i}"))).await;
    eventually(&format!("{name} to be deleted"), WAIT, || async {
        matches!(api.get_opt(&name).await, Ok(None)).then_some(())
    })
    .await;
    let snaps = w.emu.elasticache().describe_snapshots().replication_group_id(&name).send().await.expect("snapshots");
    assert_eq!(snaps.snapshots().len(), 1, "one snapshot, however often the operator died: {snaps:?}");
    let cfn = w.emu.cloudformation();
    assert!(cfn.describe_stacks().stack_name(&name).send().await.is_err(), "the stack is deleted");
    let calls = w.emu.calls(Some(&name));
    println!("faults: snapshot deletion killed at CreateSnapshot and DeleteStack: {calls:?}");
    drop(operator);
}
