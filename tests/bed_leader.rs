//! Two operator processes against the bed: only the Lease holder reconciles (counted by the AWS
//! calls each makes on the emulator), a killed leader is replaced within the lease duration, and a
//! gracefully stopped one hands the Lease over at once. Also their health and metrics endpoints.

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};
use oms_data_operator::redis::OmsRedis;
use serde_json::json;
use std::time::{Duration, Instant};
use support::controlplane::{self, ControlPlane};
use support::emulator::{self, Emulator};
use support::operator::{OperatorProcess, ProcessOptions, install_crds};
use support::{eventually, unique_name};

const WAIT: Duration = Duration::from_secs(90);

fn replica(cp: &ControlPlane, emu: &Emulator, ns: &str, lease: &str, who: &str, lease_secs: u32) -> OperatorProcess {
    OperatorProcess::spawn(
        emu,
        ProcessOptions {
            kubeconfig: &cp.kubeconfig,
            access_key: who,
            args: vec![
                format!("--namespaces={ns}"),
                "--leader-elect".into(),
                format!("--leader-election-namespace={ns}"),
                format!("--leader-election-id={lease}"),
                format!("--lease-duration={lease_secs}"),
                format!("--renew-deadline={}", lease_secs * 2 / 3),
                "--retry-period=0.5".into(),
                "--poll-interval=0.3".into(),
                "--max-poll-interval=1".into(),
            ],
            log: Some(cp.dir.path().join(format!("{who}.log"))),
            pod_name: Some(who),
            env: &[],
        },
    )
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases.get_opt(name).await.ok()??.spec?.holder_identity.filter(|h| !h.is_empty())
}

async fn setup(prefix: &str) -> (kube::Client, String, String, Api<OmsRedis>) {
    let cp = controlplane::shared();
    let client = cp.client().await;
    install_crds(&client).await;
    let ns = controlplane::test_namespace(&client, prefix).await;
    let vpc = emulator::shared().deploy_vpc().await;
    let api = Api::namespaced(client.clone(), &ns);
    (client, ns, vpc, api)
}

/// Replica a, leading, and replica b, serving as standby.
async fn pair(
    ns: &str,
    leases: &Api<Lease>,
    lease: &str,
    lease_secs: u32,
) -> (OperatorProcess, String, OperatorProcess, String) {
    let (cp, emu) = (controlplane::shared(), emulator::shared());
    let a_key = unique_name("replica-a");
    let b_key = unique_name("replica-b");
    let a = replica(cp, emu, ns, lease, &a_key, lease_secs);
    eventually("replica a to lead", WAIT, || async {
        (holder(leases, lease).await.as_deref() == Some(a_key.as_str())).then_some(())
    })
    .await;
    let b = replica(cp, emu, ns, lease, &b_key, lease_secs);
    eventually("replica b to serve", WAIT, || async { (b.get("/readyz").0 == 200).then_some(()) }).await;
    (a, a_key, b, b_key)
}

fn manifest(name: &str, vpc: &str) -> OmsRedis {
    serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsRedis",
        "metadata": { "name": name },
        "spec": { "environment": "dev", "vpcStackName": vpc },
    }))
    .expect("manifest")
}

async fn ready(api: &Api<OmsRedis>, name: &str) -> OmsRedis {
    eventually(&format!("{name} Ready"), WAIT, || async {
        let o = api.get(name).await.ok()?;
        let s = o.status.as_ref()?;
        (s.stack.observed_generation == o.metadata.generation
            && s.stack.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        .then_some(o.clone())
    })
    .await
}

fn aws_calls(emu: &Emulator, who: &str) -> u64 {
    emu.calls_by_key(who).values().sum()
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_when_it_is_killed() {
    let emu = emulator::shared();
    let (client, ns, vpc, api) = setup("leader").await;
    let lease = unique_name("oms-lease");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease_secs = 4;
    let (mut a, a_key, b, b_key) = pair(&ns, &leases, &lease, lease_secs).await;

    let name = unique_name("oms-redis-le");
    api.create(&PostParams::default(), &manifest(&name, &vpc)).await.expect("create");
    ready(&api, &name).await;
    assert!(aws_calls(emu, &a_key) > 0, "the leader reconciles");
    assert_eq!(aws_calls(emu, &b_key), 0, "the standby makes no AWS call at all");

    // Health and metrics on both; leadership shows in the metric, not in readiness.
    for (p, leading) in [(&a, 1.0), (&b, 0.0)] {
        assert_eq!(p.get("/healthz"), (200, "ok".to_string()));
        assert_eq!(p.get("/readyz").0, 200, "a standby is ready to take over");
        assert_eq!(p.metric("oms_data_operator_leader"), Some(leading));
    }
    let (_, metrics) = a.get("/metrics");
    for series in [
        "oms_data_operator_reconcile_total{outcome=\"success\"}",
        "oms_data_operator_reconcile_duration_seconds_bucket{",
        "oms_data_operator_aws_calls_total{service=\"cloudformation\",action=\"CreateStack\",outcome=\"success\"} 1",
        "oms_data_operator_aws_calls_total{service=\"cloudformation\",action=\"DescribeStacks\",outcome=\"success\"}",
        "oms_data_operator_stacks{phase=\"complete\"} 1",
        "oms_data_operator_queue_depth",
        "oms_data_operator_reconciles_in_flight",
    ] {
        assert!(metrics.contains(series), "{series} in:\n{metrics}");
    }
    assert!(!metrics.contains(&name) && !metrics.contains(&ns), "labels never carry object names");

    // Kill the leader outright; the standby takes over within the lease duration.
    a.child.kill().expect("kill -9 the leader");
    let killed = Instant::now();
    let _ = a.child.wait();
    eventually("replica b to lead", WAIT, || async {
        (holder(&leases, &lease).await.as_deref() == Some(b_key.as_str())).then_some(())
    })
    .await;
    let failover = killed.elapsed();
    eprintln!(
        "leader failover after kill -9: {:.2}s (lease duration {lease_secs}s, retry period 0.5s)",
        failover.as_secs_f64()
    );
    assert!(failover < Duration::from_secs_f64(f64::from(lease_secs) + 1.5), "took {failover:?}");
    eventually("b's leader metric", WAIT, || async {
        (b.metric("oms_data_operator_leader") == Some(1.0)).then_some(())
    })
    .await;

    // The new leader does the work now.
    api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "nodeType": "cache.t4g.small" } })))
        .await
        .expect("edit");
    let o = ready(&api, &name).await;
    assert_eq!(o.status.and_then(|s| s.stack.applied_parameters).expect("applied")["NodeType"], "cache.t4g.small");
    assert!(
        emu.calls_by_key(&b_key).get("cloudformation:ExecuteChangeSet").copied().unwrap_or(0) == 1,
        "b updated the stack"
    );
}

#[tokio::test]
async fn a_graceful_shutdown_hands_the_lease_over_at_once() {
    let (client, ns, _vpc, _api) = setup("handover").await;
    let lease = unique_name("oms-lease");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    // A long lease: waiting for it to expire would take 30 s.
    let lease_secs = 30;
    let (mut a, _a_key, _b, b_key) = pair(&ns, &leases, &lease, lease_secs).await;

    a.sigterm();
    let stopped = Instant::now();
    let status = a.child.wait().expect("a exits");
    assert!(status.success(), "a graceful stop exits 0: {status:?}\n{}", a.log_tail());
    eventually("replica b to lead", WAIT, || async {
        (holder(&leases, &lease).await.as_deref() == Some(b_key.as_str())).then_some(())
    })
    .await;
    let handover = stopped.elapsed();
    eprintln!("leader handover after SIGTERM: {:.2}s (lease duration {lease_secs}s)", handover.as_secs_f64());
    assert!(handover < Duration::from_secs(5), "released, not expired: {handover:?}");
    assert!(a.log_tail().contains("released the leader Lease"), "{}", a.log_tail());
}

#[tokio::test]
async fn a_leader_killed_in_the_middle_of_a_burst_leaves_one_stack_per_resource_and_the_standby_finishes() {
    let emu = emulator::shared();
    let (client, ns, vpc, api) = setup("burst-failover").await;
    let lease = unique_name("oms-lease");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let (mut a, a_key, _b, b_key) = pair(&ns, &leases, &lease, 4).await;
    let names: Vec<String> = (0..30).map(|_| unique_name("oms-redis-burst")).collect();
    for n in &names {
        api.create(&PostParams::default(), &manifest(n, &vpc)).await.expect("create");
    }
    let creates = |who: &str| emu.calls_by_key(who).get("cloudformation:CreateStack").copied().unwrap_or(0);
    eventually("the leader to be part-way through the burst", WAIT, || async { (creates(&a_key) >= 10).then_some(()) })
        .await;
    a.child.kill().expect("kill -9 the leader");
    let killed = Instant::now();
    let _ = a.child.wait();
    for n in &names {
        ready(&api, n).await;
    }
    let (by_a, by_b) = (creates(&a_key), creates(&b_key));
    eprintln!(
        "leader killed after {by_a} of 30 creates: the standby made {by_b}, all Ready {:.1}s after the kill",
        killed.elapsed().as_secs_f64()
    );
    support::world::assert_one_stack_each(emu, &names).await;
}
