//! `make bench`: figures for the operator on the bed, printed, never asserted.
//!
//! - apply → Ready latency for one resource, minus the emulator's configured stack delay;
//! - AWS calls by action for one create → update → delete;
//! - steady-state AWS calls per resource per resync period;
//! - the operator binary's RSS with 100 resources Ready.
//!
//! The operator runs as its own process (the built binary), so its RSS is its own.

mod support;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use oms_data_operator::redis::OmsRedis;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use support::controlplane::{self, ControlPlane, Options as CpOptions};
use support::emulator::{Emulator, Options as EmuOptions};
use support::operator::{OperatorProcess, ProcessOptions, install_crds};
use support::unique_name;

const STACK_DELAY: f64 = 2.0;
const POLL: &str = "0.5";
const RESYNC_SECS: u64 = 10;

fn operator(cp: &ControlPlane, emu: &Emulator, ns: &str) -> OperatorProcess {
    let args = ["--namespaces", ns, "--poll-interval", POLL, "--max-poll-interval", "2", "--concurrency", "8"];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.extend(["--resync".to_string(), RESYNC_SECS.to_string(), "--log-level".to_string(), "warn".to_string()]);
    let log = std::env::temp_dir().join(format!("oms-bench-operator-{}.log", std::process::id()));
    OperatorProcess::spawn(
        emu,
        ProcessOptions {
            kubeconfig: &cp.kubeconfig,
            access_key: "bench",
            args,
            log: Some(log),
            pod_name: None,
            env: &[],
        },
    )
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn manifest(name: &str, vpc: &str) -> OmsRedis {
    serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1",
        "kind": "OmsRedis",
        "metadata": { "name": name },
        "spec": { "environment": "dev", "vpcStackName": vpc },
    }))
    .expect("manifest")
}

async fn wait_ready(api: &Api<OmsRedis>, name: &str) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(o) = api.get(name).await {
            let ready = o
                .status
                .as_ref()
                .map(|s| {
                    s.stack.observed_generation == o.metadata.generation
                        && s.stack.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                })
                .unwrap_or(false);
            if ready {
                return started.elapsed();
            }
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{name} never became Ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

async fn bench(cp: &ControlPlane, emu: &Emulator) {
    let client = cp.client().await;
    install_crds(&client).await;
    let ns = controlplane::test_namespace(&client, "bench").await;
    let api: Api<OmsRedis> = Api::namespaced(client.clone(), &ns);
    let vpc = emu.deploy_vpc().await;
    let op = operator(cp, emu, &ns);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_kib(op.child.id());
    println!("bench: operator binary {}", std::env::var("OMS_OPERATOR_BIN").unwrap_or_else(|_| "(debug build)".into()));
    println!("bench: operator RSS idle, no resources: {} KiB (peak {} KiB)", idle.0, idle.1);
    println!("bench: stack delay {STACK_DELAY}s, operator poll interval {POLL}s, resync {RESYNC_SECS}s");

    // 1. apply → Ready, five times, one after another.
    let mut overheads = Vec::new();
    for _ in 0..5 {
        let name = unique_name("oms-redis-lat");
        api.create(&PostParams::default(), &manifest(&name, &vpc)).await.expect("create");
        let took = wait_ready(&api, &name).await;
        overheads.push(took.as_secs_f64() - STACK_DELAY);
    }
    overheads.sort_by(|a, b| a.total_cmp(b));
    println!(
        "bench: apply→Ready minus stack delay: median {:.2}s, min {:.2}s, max {:.2}s (n=5)",
        overheads[2], overheads[0], overheads[4]
    );

    // 2. AWS calls for one create → update → delete.
    let name = unique_name("oms-redis-calls");
    let before = emu.calls(Some(&name));
    let shared_before = emu.calls_by_key("bench");
    api.create(&PostParams::default(), &manifest(&name, &vpc)).await.expect("create");
    wait_ready(&api, &name).await;
    let created = emu.calls(Some(&name));
    api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "nodeType": "cache.t4g.small" } })))
        .await
        .expect("update");
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_ready(&api, &name).await;
    let updated = emu.calls(Some(&name));
    api.delete(&name, &DeleteParams::default()).await.expect("delete");
    loop {
        if matches!(api.get_opt(&name).await, Ok(None)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deleted = emu.calls(Some(&name));
    let sweeps =
        diff(&emu.calls_by_key("bench"), &shared_before).get("cloudformation:ListStacks").copied().unwrap_or(0);
    println!("bench: AWS calls, create → Ready: {:?}", diff(&created, &before));
    let update = diff(&updated, &created);
    println!("bench: AWS calls, update → Ready: {update:?} = {} calls", update.values().sum::<u64>());
    // Before every update was previewed (issue 10), measured the same way at commit 883c5cf:
    // {"cloudformation:DescribeStacks": 8, "cloudformation:UpdateStack": 1} = 9 calls.
    println!(
        "bench: AWS calls, update → Ready before change-set previews (883c5cf): DescribeStacks 8, UpdateStack 1 = 9 calls"
    );
    println!("bench: AWS calls, delete → gone:  {:?}", diff(&deleted, &updated));
    println!("bench: AWS calls, whole lifecycle: {:?}", diff(&deleted, &before));
    println!("bench: shared ListStacks sweeps during that lifecycle (they serve every stack at once): {sweeps}");

    // 3 and 4. 100 resources: RSS, then steady-state calls per resync period.
    let few = rss_kib(op.child.id());
    println!("bench: operator RSS with 5 resources Ready: {} KiB (peak {} KiB)", few.0, few.1);
    let started = Instant::now();
    let names: Vec<String> = (0..100).map(|_| unique_name("oms-redis-rss")).collect();
    for n in &names {
        api.create(&PostParams::default(), &manifest(n, &vpc)).await.expect("create");
    }
    for n in &names {
        wait_ready(&api, n).await;
    }
    println!("bench: 100 resources applied → all Ready in {:.1}s", started.elapsed().as_secs_f64());
    let full = rss_kib(op.child.id());
    println!("bench: operator RSS with 105 resources Ready: {} KiB (peak {} KiB)", full.0, full.1);

    let periods = 3;
    let shared_before = emu.calls_by_key("bench");
    let before: BTreeMap<String, u64> =
        names.iter().flat_map(|n| emu.calls(Some(n))).fold(BTreeMap::new(), |mut m, (k, v)| {
            *m.entry(k).or_default() += v;
            m
        });
    // Writes are one per intended change: 100 creates, and no update of a stack just created.
    let writes: BTreeMap<&String, &u64> = before
        .iter()
        .filter(|(k, _)| {
            ["CreateStack", "UpdateStack", "CreateChangeSet", "ExecuteChangeSet"].iter().any(|a| k.ends_with(a))
        })
        .collect();
    println!("bench: AWS writes for 100 creates → Ready: {writes:?}");
    tokio::time::sleep(Duration::from_secs(RESYNC_SECS * periods)).await;
    let after: BTreeMap<String, u64> =
        names.iter().flat_map(|n| emu.calls(Some(n))).fold(BTreeMap::new(), |mut m, (k, v)| {
            *m.entry(k).or_default() += v;
            m
        });
    let mut steady = diff(&after, &before);
    // The shared sweeps are made for all resources together, not named after any stack.
    if let Some(n) = diff(&emu.calls_by_key("bench"), &shared_before).get("cloudformation:ListStacks") {
        steady.insert("cloudformation:ListStacks".into(), *n);
    }
    let total: u64 = steady.values().sum();
    println!(
        "bench: steady state over {periods} resync periods for 100 Ready resources: {steady:?} = {:.2} calls per resource per resync",
        total as f64 / (100.0 * periods as f64)
    );
    let end = rss_kib(op.child.id());
    println!("bench: operator RSS after the steady-state period: {} KiB (peak {} KiB)", end.0, end.1);
    drop(op);
}

fn main() -> ExitCode {
    let cp = match ControlPlane::start(CpOptions::default()) {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let emu = match Emulator::start(EmuOptions { stack_delay_seconds: STACK_DELAY, ..EmuOptions::default() }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(bench(&cp, &emu));
    ExitCode::SUCCESS
}
