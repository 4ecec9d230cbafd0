//! `make demo`: the whole product on the test bed, for a person to watch.
//!
//! Starts the control plane, the AWS emulator (its Redis endpoints pointing at a local
//! redis-server) and the operator binary; applies examples/dev.yaml; waits for Ready; shows
//! `kubectl get omsr` and the Secret; and PINGs Redis with the Secret's values. Then the same for
//! examples/prod.yaml, whose cache speaks only TLS and requires the password the operator generated
//! (a redis-server with TLS and ACLs the emulator keeps in step with the AUTH token): PING with
//! `rediss://` and the Secret's password, and a client without it refused. Then the second kind:
//! examples/dynamodb/dev.yaml becomes a DynamoDB table, and a client that knows only the Secret's
//! values writes an order, reads it back and queries it by client through the table's index. With
//! DEMO_EXIT=1 it stops there, otherwise the operator stays in the foreground until Ctrl-C.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;
use support::controlplane::{ControlPlane, Options as CpOptions};
use support::emulator::{Emulator, Options as EmuOptions};
use support::operator::{OperatorProcess, ProcessOptions, install_crds};
use support::proc::{BedError, Proc, free_port, repo_root, retry_lost_ports};
use support::redis::{TlsRedis, spawn_redis_server};

const NAMESPACE: &str = "oms-demo";
const EXAMPLE: &str = "examples/dev.yaml";
const NAME: &str = "oms-redis-dev";
const VPC: &str = "oms-vpc-dev";
const PROD_EXAMPLE: &str = "examples/prod.yaml";
const PROD_NAME: &str = "oms-redis-prod";
const PROD_VPC: &str = "oms-vpc-prod";
const TABLE_EXAMPLE: &str = "examples/dynamodb/dev.yaml";
const TABLE_NAME: &str = "oms-dynamodb-orders-dev";

fn step(text: &str) {
    println!("\n==> {text}");
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .map_err(|e| format!("kubectl: {e} (install it: apt-get install kubectl)"))?;
    if !out.status.success() {
        return Err(format!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The bed's processes; they die with the demo.
struct Bed {
    cp: ControlPlane,
    emu: Emulator,
    _redis: Proc,
    tls_redis: TlsRedis,
    _dir: tempfile::TempDir,
}

/// Starts the bed before any async runtime exists (the control plane's start blocks).
fn start_bed() -> Result<Bed, String> {
    step("starting the control plane (etcd, kube-apiserver, kube-controller-manager)");
    let cp = ControlPlane::start(CpOptions::default()).map_err(|e| e.to_string())?;
    println!("    ready in {:.1}s; kubeconfig: {}", cp.startup.as_secs_f64(), cp.kubeconfig.display());

    step("starting a local redis-server");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // The port is reserved (free_port); another program may take it anyway: then redis starts again elsewhere.
    let (redis, redis_port) = retry_lost_ports("redis-server", false, || {
        let redis_port = free_port()?;
        let args: Vec<String> =
            ["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", ""].map(String::from).to_vec();
        let redis = spawn_redis_server("redis-server", &args, redis_port, &dir.path().join("redis.log"))?;
        Ok((redis, redis_port))
    })
    .map_err(|e| e.to_string())?;
    println!("    127.0.0.1:{redis_port}");

    step("starting a local redis-server with TLS only (a CA of its own) for the prod example");
    let tls_redis = TlsRedis::start().map_err(|e| e.to_string())?;
    println!("    127.0.0.1:{} (CA: {})", tls_redis.port, tls_redis.ca_file.display());

    step("starting the AWS emulator (ElastiCache endpoints point at those redis-servers)");
    let emu =
        Emulator::start(EmuOptions { stack_delay_seconds: 3.0, ..EmuOptions::default() }).map_err(|e| e.to_string())?;
    emu.configure(serde_json::json!({ "endpoint_address": "127.0.0.1", "endpoint_port": redis_port }));
    // The prod example's replication group is that TLS server, its AUTH tokens the server's passwords.
    emu.bind_redis(PROD_NAME, &tls_redis);
    println!("    {} (ready in {:.1}s)", emu.url, emu.startup.as_secs_f64());
    Ok(Bed { cp, emu, _redis: redis, tls_redis, _dir: dir })
}

async fn demo(bed: &Bed) -> Result<(), String> {
    let (cp, emu) = (&bed.cp, &bed.emu);
    step("installing the CRD and deploying the VPC stack oms-vpc-dev");
    let client = cp.client().await;
    install_crds(&client).await;
    emu.deploy_vpc_named(VPC).await;
    kubectl(&cp.kubeconfig, &["create", "namespace", NAMESPACE])?;

    step("running the operator");
    let operator = OperatorProcess::spawn(
        emu,
        ProcessOptions {
            kubeconfig: &cp.kubeconfig,
            access_key: "demo",
            args: ["--log-format", "text", "--poll-interval", "1", "--max-poll-interval", "5"]
                .map(String::from)
                .to_vec(),
            log: None,
            pod_name: None,
            env: &[],
        },
    );
    println!("    /healthz, /readyz and /metrics on 127.0.0.1:{}", operator.http_port);

    apply_and_wait(cp, EXAMPLE, "omsr", NAME)?;

    step("kubectl get omsr");
    print!("{}", kubectl(&cp.kubeconfig, &["get", "omsr", "-n", NAMESPACE])?);

    step(&format!("the Secret {NAME}-redis"));
    let data = secret_data(&client, &format!("{NAME}-redis")).await?;
    for (k, v) in &data {
        println!("    {k}={v}");
    }

    let host = data.get("REDIS_HOST").cloned().unwrap_or_default();
    let port = data.get("REDIS_PORT").cloned().unwrap_or_default();
    step(&format!("redis-cli -h $REDIS_HOST -p $REDIS_PORT PING   (REDIS_HOST={host}, REDIS_PORT={port})"));
    let ping = Command::new("redis-cli")
        .args(["-h", &host, "-p", &port, "PING"])
        .output()
        .map_err(|e| format!("redis-cli: {e} (install it: apt-get install redis-tools)"))?;
    let answer = String::from_utf8_lossy(&ping.stdout).trim().to_string();
    println!("    {answer}");
    if answer != "PONG" {
        drop(operator);
        return Err(format!("expected PONG, got {answer:?} {}", String::from_utf8_lossy(&ping.stderr)));
    }

    prod(bed, &client).await?;
    table(bed, &client).await?;

    if std::env::var("DEMO_EXIT").is_ok_and(|v| v == "1") {
        step("DEMO_EXIT=1: stopping");
        drop(operator);
        return Ok(());
    }
    step(&format!(
        "the operator keeps running; try: kubectl --kubeconfig {} -n {NAMESPACE} edit omsr {NAME}   (Ctrl-C to stop)",
        cp.kubeconfig.display()
    ));
    let _ = tokio::signal::ctrl_c().await;
    operator.sigterm();
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(operator);
    Ok(())
}

/// The Secret's data, as text.
async fn secret_data(client: &kube::Client, name: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let secret = secrets.get(name).await.map_err(|e| format!("the Secret {name}: {e}"))?;
    Ok(support::world::secret_data(&secret))
}

/// `kubectl apply -f <example>`, then `kubectl wait` for its Ready condition, both shown.
fn apply_and_wait(cp: &ControlPlane, example: &str, kind: &str, name: &str) -> Result<(), String> {
    step(&format!("kubectl apply -f {example}"));
    let path = repo_root().join(example);
    print!("{}", kubectl(&cp.kubeconfig, &["apply", "-n", NAMESPACE, "-f", &path.to_string_lossy()])?);
    step(&format!("kubectl wait --for=condition=Ready {kind}/{name}"));
    let target = format!("{kind}/{name}");
    print!(
        "{}",
        kubectl(&cp.kubeconfig, &["wait", "-n", NAMESPACE, "--for=condition=Ready", &target, "--timeout=120s"])?
    );
    Ok(())
}

/// The prod example: TLS, and the password the operator generated.
async fn prod(bed: &Bed, client: &kube::Client) -> Result<(), String> {
    let (cp, emu, tls) = (&bed.cp, &bed.emu, &bed.tls_redis);
    step(&format!("deploying the VPC stack {PROD_VPC}"));
    emu.deploy_vpc_named(PROD_VPC).await;
    apply_and_wait(cp, PROD_EXAMPLE, "omsr", PROD_NAME)?;
    step(&format!("the Secret {PROD_NAME}-redis (the password shown as ****)"));
    let data = secret_data(client, &format!("{PROD_NAME}-redis")).await?;
    let password = data.get("REDIS_PASSWORD").cloned().ok_or("the prod Secret has no REDIS_PASSWORD")?;
    for (k, v) in &data {
        println!("    {k}={}", v.replace(&password, "****"));
    }
    let host = data.get("REDIS_HOST").cloned().unwrap_or_default();
    let port = data.get("REDIS_PORT").cloned().unwrap_or_default();
    let ca = tls.ca_file.to_string_lossy().to_string();
    // redis-cli 7.0 reads REDIS_URL's `:password@` as an empty user name, so the password goes in -a
    // (client libraries take REDIS_URL as it is).
    step("redis-cli --cacert <the bed's CA> -u \"rediss://$REDIS_HOST:$REDIS_PORT\" -a \"$REDIS_PASSWORD\" PING");
    let ping = Command::new("redis-cli")
        .args(["--cacert", &ca, "--no-auth-warning", "-u", &format!("rediss://{host}:{port}"), "-a", &password, "PING"])
        .output()
        .map_err(|e| format!("redis-cli: {e} (install it: apt-get install redis-tools)"))?;
    let answer = String::from_utf8_lossy(&ping.stdout).trim().to_string();
    println!("    {answer}");
    if answer != "PONG" {
        return Err(format!(
            "expected PONG over TLS with the password, got {answer:?} {}",
            String::from_utf8_lossy(&ping.stderr)
        ));
    }
    step("the same without the password");
    let refused = tls.ping(None);
    println!("    {refused}");
    if !refused.contains("NOAUTH") {
        return Err(format!("a client without the password was not refused: {refused:?}"));
    }
    Ok(())
}

/// The DynamoDB example: a table, and a client that knows only its Secret.
async fn table(bed: &Bed, client: &kube::Client) -> Result<(), String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    apply_and_wait(&bed.cp, TABLE_EXAMPLE, "omsdt", TABLE_NAME)?;
    step("kubectl get omsdt");
    print!("{}", kubectl(&bed.cp.kubeconfig, &["get", "omsdt", "-n", NAMESPACE])?);
    step(&format!("the Secret {TABLE_NAME}-dynamodb"));
    let env = secret_data(client, &format!("{TABLE_NAME}-dynamodb")).await?;
    for (k, v) in &env {
        println!("    {k}={v}");
    }
    let (table, region) = match (env.get("DYNAMODB_TABLE_NAME"), env.get("AWS_REGION")) {
        (Some(t), Some(r)) => (t.clone(), r.clone()),
        _ => return Err("the table's Secret lacks DYNAMODB_TABLE_NAME or AWS_REGION".into()),
    };
    step("a workload with the Secret as its environment: PutItem, GetItem, Query on index by-client");
    let base = bed.emu.sdk_config();
    let mut config = base.to_builder();
    config.set_region(Some(aws_config::Region::new(region)));
    let dynamodb = aws_sdk_dynamodb::Client::new(&config.build());
    let s = |v: &str| AttributeValue::S(v.to_string());
    dynamodb
        .put_item()
        .table_name(&table)
        .item("orderId", s("ord-1001"))
        .item("clientId", s("client-42"))
        .item("createdAt", AttributeValue::N("1764374400".into()))
        .item("status", s("NEW"))
        .send()
        .await
        .map_err(|e| format!("PutItem: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    println!("    PutItem orderId=ord-1001 clientId=client-42 status=NEW");
    let got = dynamodb
        .get_item()
        .table_name(&table)
        .key("orderId", s("ord-1001"))
        .send()
        .await
        .map_err(|e| format!("GetItem: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    let status = got.item().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok()).cloned();
    println!("    GetItem orderId=ord-1001 -> status={}", status.as_deref().unwrap_or("(none)"));
    let found = dynamodb
        .query()
        .table_name(&table)
        .index_name("by-client")
        .key_condition_expression("clientId = :c")
        .expression_attribute_values(":c", s("client-42"))
        .send()
        .await
        .map_err(|e| format!("Query: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    let orders: Vec<String> = found.items().iter().filter_map(|i| i.get("orderId")?.as_s().ok().cloned()).collect();
    println!("    Query by-client clientId=client-42 -> {}", orders.join(", "));
    if status.as_deref() != Some("NEW") || orders != ["ord-1001"] {
        return Err(format!("expected the order back, got status {status:?} and {orders:?}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = start_bed().and_then(|bed| runtime.block_on(demo(&bed)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo failed: {e}");
            ExitCode::FAILURE
        }
    }
}
