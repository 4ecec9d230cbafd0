//! The fault suite on the bed: AWS unreachable, then hung, for 30 s each while stacks are being
//! made. Each ends with every resource Ready, exactly one CreateStack per resource, and figures
//! (calls a second while AWS was away, time to recover) printed for the notes.

mod support;

use kube::api::{Api, PostParams};
use oms_data_operator::redis::OmsRedis;
use serde_json::json;
use std::time::{Duration, Instant};
use support::operator::{OperatorProcess, ProcessOptions};
use support::proxy::Proxy;
use support::world::{WAIT, World, condition};
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

async fn all_ready(api: &Api<OmsRedis>, names: &[String]) {
    for n in names {
        eventually(&format!("{n} Ready"), WAIT, || async {
            let o = api.get(n).await.ok()?;
            (condition(&o, "Ready")?.status == "True").then_some(())
        })
        .await;
    }
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
    for n in &names {
        let mut m = w.manifest(n, "dev", json!({}));
        m.metadata.namespace = Some(ns.to_string());
        api.create(&PostParams::default(), &m).await.expect("create");
    }
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
    assert_eq!(calls.get("cloudformation:CreateStack").copied(), Some(names.len() as u64), "{calls:?}");
    let cfn = w.emu.cloudformation();
    for n in &names {
        let out = cfn.describe_stacks().stack_name(n).send().await.expect("one live stack by that name");
        assert_eq!(out.stacks().len(), 1);
    }
}
