//! `make bench`, the scale part: N OmsRedis (1,000 by default, `OMS_BENCH_N`) applied at once,
//! against the floor: a bare program using the same aws-sdk that makes the same N stacks with the
//! fewest calls AWS allows (CreateStack each, one paginated ListStacks per poll interval, one
//! DescribeStacks each once complete) at the same call budget. Both run on a fresh emulator with
//! the same fixed stack time. Figures are printed and written, with a chart, to `docs/bench/`
//! (`OMS_BENCH_OUT` to write elsewhere); nothing is asserted.

mod support;

use futures::StreamExt;
use kube::api::{Api, ListParams, PostParams};
use oms_data_operator::budget::Budget;
use oms_data_operator::redis::OmsRedis;
use oms_data_operator::stack::DataStack;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::controlplane::{self, ControlPlane, Options as CpOptions};
use support::emulator::{Emulator, Options as EmuOptions};
use support::operator::{OperatorProcess, ProcessOptions, install_crds};

/// Each stack takes this long in the emulator, create and delete alike.
const STACK_SECONDS: f64 = 30.0;
/// The operator's defaults, which the floor uses too.
const MAX_RPS: f64 = 20.0;
const BURST: u32 = 40;
const POLL: Duration = Duration::from_secs(10);
const FLOOR_KEY: &str = "scale-floor";
const OPERATOR_KEY: &str = "scale-operator";

/// One run: when each resource became usable (seconds since the start), calls by action, and the
/// calls sent in each second.
struct Run {
    ready: Vec<f64>,
    calls: BTreeMap<String, u64>,
    per_second: Vec<u64>,
    took: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn manifest(name: &str, vpc: &str) -> OmsRedis {
    serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1",
        "kind": "OmsRedis",
        "metadata": { "name": name, "namespace": "bench" },
        "spec": { "environment": "dev", "vpcStackName": vpc },
    }))
    .expect("manifest")
}

fn sdk_config(emu: &Emulator, access_key: &str) -> aws_config::SdkConfig {
    use aws_sdk_cloudformation::config::{Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&emu.url)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(access_key, "bed", None, None, "bench")))
        .build()
}

/// Samples the emulator's call count for `key` once a second until `done`.
fn sample_calls(emu: &Emulator, key: &str, done: Arc<Mutex<bool>>) -> std::thread::JoinHandle<Vec<u64>> {
    let port = emu.port;
    let key = key.to_string();
    std::thread::spawn(move || {
        let mut series = Vec::new();
        let mut last = 0u64;
        let started = Instant::now();
        let mut tick = 1u64;
        while !*done.lock().expect("lock") {
            let now: u64 = support::emulator::calls_at(port, &key).values().sum();
            series.push(now.saturating_sub(last));
            last = now;
            let next = started + Duration::from_secs(tick);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            tick += 1;
        }
        series
    })
}

async fn floor(emu: &Emulator, vpc: &str, n: usize) -> Run {
    let cfn = aws_sdk_cloudformation::Client::new(&sdk_config(emu, FLOOR_KEY));
    let budget = Arc::new(Budget::new(MAX_RPS, BURST));
    let done = Arc::new(Mutex::new(false));
    let sampler = sample_calls(emu, FLOOR_KEY, done.clone());
    let started = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("oms-redis-floor-{i:04}")).collect();
    // Creates, eight at a time (the operator reconciles with a few workers too).
    let creates = futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let (cfn, budget, vpc) = (cfn.clone(), budget.clone(), vpc.to_string());
            async move {
                let desired = manifest(&name, &vpc).desired().expect("a valid spec");
                let params = desired
                    .parameters
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_cloudformation::types::Parameter::builder().parameter_key(k).parameter_value(v).build()
                    })
                    .collect();
                loop {
                    budget.acquire().await;
                    let sent = cfn
                        .create_stack()
                        .stack_name(&desired.stack_name)
                        .template_body(OmsRedis::template_body())
                        .set_parameters(Some(params))
                        .send()
                        .await;
                    match sent {
                        Ok(_) => break,
                        Err(e) => panic!("floor CreateStack {name}: {e:?}"),
                    }
                }
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>();
    let poll = async {
        let mut ready: HashMap<String, f64> = HashMap::new();
        while ready.len() < n {
            tokio::time::sleep(POLL).await;
            let mut complete = Vec::new();
            let mut token = None;
            loop {
                budget.acquire().await;
                let out = match cfn.list_stacks().set_next_token(token.take()).send().await {
                    Ok(out) => out,
                    Err(_) => break,
                };
                for s in out.stack_summaries() {
                    let name = s.stack_name().unwrap_or_default();
                    if s.stack_status().map(|st| st.as_str()) == Some("CREATE_COMPLETE")
                        && name.starts_with("oms-redis-floor-")
                        && !ready.contains_key(name)
                    {
                        complete.push(name.to_string());
                    }
                }
                match out.next_token() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
            // The one read each: outputs are what a workload needs.
            let described = futures::stream::iter(complete)
                .map(|name| {
                    let (cfn, budget) = (cfn.clone(), budget.clone());
                    async move {
                        budget.acquire().await;
                        let out = cfn.describe_stacks().stack_name(&name).send().await.ok()?;
                        let has_outputs = !out.stacks().first()?.outputs().is_empty();
                        has_outputs.then_some(name)
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await;
            for name in described.into_iter().flatten() {
                ready.insert(name, started.elapsed().as_secs_f64());
            }
        }
        ready
    };
    let ((), ready) = futures::join!(
        async {
            creates.await;
        },
        poll
    );
    let took = started.elapsed().as_secs_f64();
    *done.lock().expect("lock") = true;
    let per_second = sampler.join().unwrap_or_default();
    let mut ready: Vec<f64> = ready.into_values().collect();
    ready.sort_by(|a, b| a.total_cmp(b));
    Run { ready, calls: emu.calls_by_key(FLOOR_KEY), per_second, took }
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The kube-apiserver's own count of requests it served (all clients).
async fn apiserver_requests(client: &kube::Client) -> f64 {
    let req = http::Request::get("/metrics").body(Vec::new()).expect("request");
    let text = client.request_text(req).await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

struct OperatorFigures {
    run: Run,
    peak_rss_kib: u64,
    cpu_seconds: f64,
    kube_requests: f64,
    harness_requests: u64,
    latecomer_create: f64,
}

async fn operator(cp: &ControlPlane, emu: &Emulator, vpc: &str, n: usize) -> OperatorFigures {
    let client = cp.client().await;
    install_crds(&client).await;
    let ns = controlplane::test_namespace(&client, "scale").await;
    let api: Api<OmsRedis> = Api::namespaced(client.clone(), &ns);
    let args: Vec<String> = ["--namespaces", &ns, "--log-level", "warn"].map(String::from).to_vec();
    let log = std::env::temp_dir().join(format!("oms-bench-scale-{}.log", std::process::id()));
    let op = OperatorProcess::spawn(
        emu,
        ProcessOptions {
            kubeconfig: &cp.kubeconfig,
            access_key: OPERATOR_KEY,
            args,
            log: Some(log),
            pod_name: None,
            env: &[],
        },
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kube_before = apiserver_requests(&client).await;
    let mut harness_requests = 0u64;
    let done = Arc::new(Mutex::new(false));
    let sampler = sample_calls(emu, OPERATOR_KEY, done.clone());
    let started = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("oms-redis-op-{i:04}")).collect();
    for name in &names {
        let mut m = manifest(name, vpc);
        m.metadata.namespace = Some(ns.clone());
        api.create(&PostParams::default(), &m).await.expect("create");
        harness_requests += 1;
    }
    let mut ready: HashMap<String, f64> = HashMap::new();
    let mut latecomer: Option<(Instant, f64)> = None;
    let latecomer_name = "oms-redis-op-late".to_string();
    while ready.len() < n || latecomer.is_none_or(|(_, took)| took.is_nan()) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let list = api.list(&ListParams::default()).await.expect("list");
        harness_requests += 1;
        let mut created = 0;
        for o in &list.items {
            let Some(status) = &o.status else { continue };
            let name = o.metadata.name.clone().unwrap_or_default();
            if status.stack.stack_id.is_some() {
                created += 1;
            }
            if name == latecomer_name {
                if let (Some((at, took)), Some(_)) = (latecomer.as_mut(), &status.stack.stack_id)
                    && took.is_nan()
                {
                    *took = at.elapsed().as_secs_f64();
                }
                continue;
            }
            let is_ready = status.stack.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            if is_ready && !ready.contains_key(&name) {
                ready.insert(name, started.elapsed().as_secs_f64());
            }
        }
        // Fairness: one more resource once every other stack is asked for (most still in progress).
        if latecomer.is_none() && created >= n {
            let mut m = manifest(&latecomer_name, vpc);
            m.metadata.namespace = Some(ns.clone());
            api.create(&PostParams::default(), &m).await.expect("create");
            harness_requests += 1;
            latecomer = Some((Instant::now(), f64::NAN));
        }
        assert!(started.elapsed() < Duration::from_secs(3600), "the operator run took over an hour");
    }
    let took = started.elapsed().as_secs_f64();
    *done.lock().expect("lock") = true;
    let per_second = sampler.join().unwrap_or_default();
    let kube_requests = apiserver_requests(&client).await - kube_before;
    let pid = op.child.id();
    let figures = OperatorFigures {
        peak_rss_kib: peak_rss_kib(pid),
        cpu_seconds: cpu_seconds(pid),
        kube_requests,
        harness_requests,
        latecomer_create: latecomer.map(|(_, t)| t).unwrap_or(f64::NAN),
        run: {
            let mut ready: Vec<f64> = ready.into_values().collect();
            ready.sort_by(|a, b| a.total_cmp(b));
            Run { ready, calls: emu.calls_by_key(OPERATOR_KEY), per_second, took }
        },
    };
    drop(op);
    figures
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.iter().filter(|(k, _)| k.starts_with("cloudformation:")).map(|(_, v)| v).sum()
}

/// Resources Ready over time and AWS calls a second, both runs, as one SVG.
fn chart(op: &Run, floor: &Run, n: usize) -> String {
    let (w, h, pad) = (760.0, 250.0, 50.0);
    let t_max = op.took.max(floor.took).ceil().max(1.0);
    let x = |t: f64| pad + (w - 2.0 * pad) * t / t_max;
    let ready_line = |r: &Run, top: f64| {
        let y = |k: usize| top + h - (h - 20.0) * k as f64 / n as f64;
        let mut pts = format!("{:.1},{:.1}", x(0.0), y(0));
        for (k, t) in r.ready.iter().enumerate() {
            let _ = write!(pts, " {:.1},{:.1} {:.1},{:.1}", x(*t), y(k), x(*t), y(k + 1));
        }
        pts
    };
    let peak = op.per_second.iter().chain(&floor.per_second).copied().max().unwrap_or(1).max(1) as f64;
    let calls_line = |r: &Run, top: f64| {
        r.per_second
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:.1},{:.1}", x(i as f64 + 1.0), top + h - (h - 20.0) * *c as f64 / peak))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let top2 = h + 2.0 * pad;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="20" font-weight="bold">{n} OmsRedis: resources Ready over time (operator vs floor)</text>
<text x="{pad}" y="{}" font-weight="bold">AWS calls a second (budget {MAX_RPS}/s, burst {BURST})</text>
"##,
        2.0 * h + 3.0 * pad,
        top2 - 10.0,
    );
    for (top, label) in [(pad, format!("{n}")), (top2, format!("{peak:.0}/s"))] {
        let _ = write!(
            svg,
            r##"<line x1="{pad}" y1="{}" x2="{pad}" y2="{}" stroke="black"/><line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<text x="5" y="{}">{label}</text><text x="5" y="{}">0</text><text x="{}" y="{}">{t_max:.0} s</text>
"##,
            top + 20.0,
            top + h,
            top + h,
            w - pad,
            top + h,
            top + 25.0,
            top + h,
            w - pad - 20.0,
            top + h + 15.0,
        );
    }
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>
<polyline fill="none" stroke="#ff7f0e" stroke-width="2" stroke-dasharray="5,3" points="{}"/>
<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>
<polyline fill="none" stroke="#ff7f0e" stroke-width="1.5" stroke-dasharray="5,3" points="{}"/>
<text x="{}" y="{}" fill="#1f77b4">operator</text><text x="{}" y="{}" fill="#ff7f0e">floor (bare SDK)</text>
</svg>
"##,
        ready_line(op, pad),
        ready_line(floor, pad),
        calls_line(op, top2),
        calls_line(floor, top2),
        w - 220.0,
        pad + 35.0,
        w - 140.0,
        pad + 35.0,
    );
    svg
}

fn report(op: &OperatorFigures, floor: &Run, n: usize) -> String {
    let line = |r: &Run| {
        format!(
            "p50 {:.1} s, p99 {:.1} s, max {:.1} s; all Ready after {:.1} s",
            percentile(&r.ready, 0.5),
            percentile(&r.ready, 0.99),
            r.ready.last().copied().unwrap_or(f64::NAN),
            r.took
        )
    };
    // The operator made one more stack than the floor: the latecomer of the fairness figure.
    let (op_stacks, floor_stacks) = ((n + 1) as f64, n as f64);
    let per = |calls: &BTreeMap<String, u64>, stacks: f64| {
        calls
            .iter()
            .filter(|(k, _)| k.starts_with("cloudformation:"))
            .map(|(k, v)| format!("{} {:.2}", k.trim_start_matches("cloudformation:"), *v as f64 / stacks))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (op_per, floor_per) = (total(&op.run.calls) as f64 / op_stacks, total(&floor.calls) as f64 / floor_stacks);
    let (op_max, floor_max) =
        (op.run.ready.last().copied().unwrap_or(f64::NAN), floor.ready.last().copied().unwrap_or(f64::NAN));
    let mut md = String::new();
    let _ = writeln!(md, "# Scale bench: {n} OmsRedis from one operator, against the bare-SDK floor\n");
    let _ = writeln!(
        md,
        "Reproduce: `make bench` (or `OMS_BENCH_N={n} cargo test --release --test bench_scale`, with `OMS_OPERATOR_BIN` set to the \
         static release binary). Machine: {} cores. Emulator stack time {STACK_SECONDS} s; call budget {MAX_RPS}/s, burst {BURST}, \
         poll {} s, for both. The operator runs with its defaults.\n",
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(0),
        POLL.as_secs()
    );
    let _ = writeln!(md, "![Ready over time and calls a second](scale.svg)\n");
    let _ = writeln!(md, "| | operator | floor | ratio |\n|---|---|---|---|");
    let _ = writeln!(md, "| time until all Ready | {op_max:.1} s | {floor_max:.1} s | {:.2} |", op_max / floor_max);
    let _ = writeln!(
        md,
        "| CloudFormation calls per stack | {op_per:.2} ({} in all, {} stacks) | {floor_per:.2} ({} in all, {n} stacks) | {:.2} |",
        total(&op.run.calls),
        n + 1,
        total(&floor.calls),
        op_per / floor_per
    );
    let _ = writeln!(md, "\n- Operator time to Ready: {}", line(&op.run));
    let _ = writeln!(md, "- Floor time to Ready: {}", line(floor));
    let _ = writeln!(md, "- Operator calls per stack: {}", per(&op.run.calls, op_stacks));
    let _ = writeln!(md, "- Floor calls per stack: {}", per(&floor.calls, floor_stacks));
    let _ = writeln!(
        md,
        "- Operator: peak RSS {:.1} MiB, CPU {:.1} s; kube-apiserver requests during the run {:.0} (all clients: the bench itself made {} of them)",
        op.peak_rss_kib as f64 / 1024.0,
        op.cpu_seconds,
        op.kube_requests,
        op.harness_requests
    );
    let _ = writeln!(
        md,
        "- Fairness: a resource applied once all {n} stacks were asked for got its CreateStack (stackId in status) {:.1} s later",
        op.latecomer_create
    );
    md
}

async fn bench(cp: &ControlPlane, n: usize) -> std::io::Result<()> {
    let out_dir = std::env::var("OMS_BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/bench"));
    let emu_options = || EmuOptions { stack_delay_seconds: STACK_SECONDS, ..EmuOptions::default() };
    println!(
        "bench-scale: {n} resources, stack time {STACK_SECONDS}s, operator binary {}",
        std::env::var("OMS_OPERATOR_BIN").unwrap_or_else(|_| "(debug build)".into())
    );
    let floor_run = {
        let emu = Emulator::start(emu_options()).map_err(std::io::Error::other)?;
        let vpc = emu.deploy_vpc().await;
        let run = floor(&emu, &vpc, n).await;
        println!("bench-scale: floor done in {:.1}s: {:?}", run.took, run.calls);
        run
    };
    let op = {
        let emu = Emulator::start(emu_options()).map_err(std::io::Error::other)?;
        let vpc = emu.deploy_vpc().await;
        let op = operator(cp, &emu, &vpc, n).await;
        println!("bench-scale: operator done in {:.1}s: {:?}", op.run.took, op.run.calls);
        op
    };
    let md = report(&op, &floor_run, n);
    println!("{md}");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("scale.md"), md)?;
    std::fs::write(out_dir.join("scale.svg"), chart(&op.run, &floor_run, n))?;
    println!("bench-scale: report and chart in {}", out_dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let n = std::env::var("OMS_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let cp = match ControlPlane::start(CpOptions::default()) {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("bench-scale: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    match runtime.block_on(bench(&cp, n)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-scale: {e}");
            ExitCode::FAILURE
        }
    }
}
