//! The `oms-data-operator` command: `run` the operator, print the `crd`s or the embedded `template`,
//! or `size` a workload.

use clap::{Parser, Subcommand, ValueEnum};
use oms_data_operator::context::{Context, Settings};
use oms_data_operator::controller;
use oms_data_operator::http::{self, Health};
use oms_data_operator::leader::{Elector, LeaseConfig};
use oms_data_operator::metrics::Metrics;
use oms_data_operator::stack::cfn::Aws;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "oms-data-operator", version, about = "OMS Spider data layer on AWS, as Kubernetes resources")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions (YAML).
    Crd,
    /// Print a CloudFormation template: a kind's as shipped, or exactly what a manifest deploys.
    Template(TemplateArgs),
    /// Estimate memory and monthly cost of an OMS workload, per environment, with the cheapest
    /// node type that holds it.
    Size(SizeArgs),
}

#[derive(clap::Args)]
struct TemplateArgs {
    /// An OmsRedis or OmsDynamoTable manifest ('-' for standard input): print the template its stack
    /// is made from (a table's indexes written in).
    #[arg(short = 'f', long = "filename", conflicts_with = "kind")]
    file: Option<std::path::PathBuf>,
    /// With --filename: print the stack parameters instead, as `aws cloudformation create-stack
    /// --parameters file://…` takes them.
    #[arg(long, requires = "file")]
    parameters: bool,
    /// The kind whose template, as shipped, is printed when no manifest is given.
    #[arg(long, value_enum, default_value = "redis")]
    kind: oms_data_operator::render::Kind,
}

/// What `template` prints.
fn template(args: TemplateArgs) -> Result<String, String> {
    let Some(file) = args.file else {
        return Ok(oms_data_operator::render::shipped(args.kind).to_string());
    };
    let manifest = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?
    };
    let deployment = oms_data_operator::render::deployment(&manifest)?;
    Ok(if args.parameters { deployment.parameters_json() } else { deployment.template })
}

#[derive(clap::Args)]
struct SizeArgs {
    /// An OmsRedis manifest with spec.workload: sized with its own environment and node type.
    #[arg(short = 'f', long = "filename", conflicts_with_all = ["orders", "positions", "instruments", "idempotency_keys", "leader_keys", "family"])]
    file: Option<std::path::PathBuf>,
    /// Active orders (order:{exchange}:{exchangeOrderId}, ~2 KB each).
    #[arg(long, default_value_t = 0)]
    orders: u64,
    /// Open positions (position:{clientId}:{symbol}, ~500 B each).
    #[arg(long, default_value_t = 0)]
    positions: u64,
    /// Instruments (instrument:{symbol}, ~2 KB each).
    #[arg(long, default_value_t = 0)]
    instruments: u64,
    /// Idempotency keys alive at once (idempotency:{requestId}, ~100 B each).
    #[arg(long, default_value_t = 0)]
    idempotency_keys: u64,
    /// Leader-election keys (leader:{service}).
    #[arg(long, default_value_t = 0)]
    leader_keys: u64,
    /// Another key family, as NAME=COUNTxBYTES (e.g. sessions=20000x800); repeatable.
    #[arg(long = "family", value_parser = parse_family)]
    family: Vec<(String, u64, u64)>,
    /// The share of a node's usable memory to keep free, in percent.
    #[arg(long, default_value_t = oms_data_operator::redis::sizing::DEFAULT_HEADROOM_PERCENT, value_parser = clap::value_parser!(u8).range(0..=90))]
    headroom: u8,
    /// Engine to price: redis or valkey.
    #[arg(long, default_value = "redis")]
    engine: String,
    /// table (the seed's tables) or json.
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

fn parse_family(s: &str) -> Result<(String, u64, u64), String> {
    let bad = || format!("{s:?}: write a family as NAME=COUNTxBYTES, e.g. sessions=20000x800");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (count, bytes) = rest.split_once('x').ok_or_else(bad)?;
    let count = count.replace(['_', ','], "").parse().map_err(|_| bad())?;
    let bytes: u64 = bytes.replace(['_', ','], "").parse().map_err(|_| bad())?;
    if name.is_empty() || bytes == 0 {
        return Err(bad());
    }
    Ok((name.to_string(), count, bytes))
}

fn size(args: SizeArgs) -> Result<String, String> {
    use oms_data_operator::redis::size_report;
    use oms_data_operator::redis::sizing::{KeyFamily, Workload};
    use oms_data_operator::redis::spec::Engine;
    let (workload, headroom, engine, configs) = match &args.file {
        Some(path) => {
            let yaml = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            size_report::from_manifest(&yaml)?
        }
        None => {
            let engine = match args.engine.as_str() {
                "redis" => Engine::Redis,
                "valkey" => Engine::Valkey,
                other => return Err(format!("--engine {other}: use redis or valkey")),
            };
            let mut w =
                Workload::oms(args.orders, args.positions, args.instruments, args.idempotency_keys, args.leader_keys);
            w.families.extend(args.family.iter().map(|(name, count, bytes)| KeyFamily::custom(name, *count, *bytes)));
            if w.families.is_empty() {
                return Err("give the workload: --orders, --positions, --instruments, --idempotency-keys, --leader-keys or --family (or -f an OmsRedis manifest with spec.workload)".into());
            }
            (w, args.headroom, engine, size_report::presets(engine))
        }
    };
    let report = size_report::report(&workload, headroom, engine, &configs);
    match args.output.as_str() {
        "table" => Ok(size_report::render(&report)),
        "json" => serde_json::to_string_pretty(&report).map(|s| s + "\n").map_err(|e| e.to_string()),
        other => Err(format!("--output {other}: use table or json")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Default AWS region for resources without spec.region (else the AWS default chain's).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Send every AWS call to this endpoint. Only for emulators; never set it in production.
    #[arg(long, env = "OMS_AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
    /// Watch only these namespaces, comma-separated (default: the whole cluster).
    #[arg(long = "namespaces", alias = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Serve /healthz, /readyz and /metrics here.
    #[arg(long, default_value = "0.0.0.0:8080", env = "OMS_METRICS_ADDR")]
    metrics_addr: String,
    /// Run only while holding the leader Lease (for more than one replica).
    #[arg(long, default_value_t = false)]
    leader_elect: bool,
    /// Namespace of the leader Lease (default: the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "oms-data-operator")]
    leader_election_id: String,
    /// Seconds a Lease holds without renewal before a standby takes it.
    #[arg(long, default_value_t = 15.0)]
    lease_duration: f64,
    /// Seconds the leader keeps trying to renew before it stops.
    #[arg(long, default_value_t = 10.0)]
    renew_deadline: f64,
    /// Seconds between leader election attempts and renewals.
    #[arg(long, default_value_t = 2.0)]
    retry_period: f64,
    /// Cluster identity in stack ownership tags (default: the uid of kube-system).
    #[arg(long, env = "OMS_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Fastest poll of a stack in progress, in seconds.
    #[arg(long, default_value_t = 10.0)]
    poll_interval: f64,
    /// Seconds a settled stack's shared ListStacks sweep may be old, and the longest back-off while
    /// AWS is unreachable or a day-2 operation runs long.
    #[arg(long, default_value_t = 60.0)]
    max_poll_interval: f64,
    /// Seconds before a settled resource is looked at again.
    #[arg(long, default_value_t = 600.0)]
    resync: f64,
    /// Resources reconciled at once.
    #[arg(long, default_value_t = 4)]
    concurrency: u16,
    /// Seconds AWS may throttle every call before it shows in conditions and Events.
    #[arg(long, default_value_t = 120.0)]
    throttling_grace: f64,
    /// Deadline of each AWS call, in seconds.
    #[arg(long, default_value_t = 30.0)]
    aws_timeout: f64,
    /// AWS calls a second this process sends at most, all resources together (0: no limit).
    /// Throttling answers halve it for a while.
    #[arg(long, default_value_t = 20.0)]
    aws_max_rps: f64,
    /// AWS calls sent at once after a quiet spell, within --aws-max-rps on average.
    #[arg(long, default_value_t = 40)]
    aws_burst: u32,
    /// Deadline of each Kubernetes call, in seconds.
    #[arg(long, default_value_t = 30.0)]
    kube_timeout: f64,
    #[arg(long, value_enum, default_value_t = LogFormat::Json, env = "OMS_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter, e.g. info or oms_data_operator=debug.
    #[arg(long, default_value = "info", env = "OMS_LOG_LEVEL")]
    log_level: String,
}

fn secs(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0))
}

fn init_logging(args: &RunArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Resolves once `rx` turns true. (Not an `async fn`: the controller's shutdown trigger must be
/// `Sync`, which the bound here promises and checks.)
#[allow(clippy::manual_async_fn)]
fn when_true(mut rx: watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    async move {
        let _ = rx.wait_for(|v| *v).await;
    }
}

fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

async fn run(args: RunArgs) -> Result<(), String> {
    init_logging(&args);
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());

    // Stop on SIGTERM/Ctrl-C: everything below watches this.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let listener = tokio::net::TcpListener::bind(&args.metrics_addr)
        .await
        .map_err(|e| format!("cannot serve on {}: {e}", args.metrics_addr))?;
    let served = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(addr = served.as_str(), "serving /healthz, /readyz and /metrics");
    let server = tokio::spawn(http::serve(listener, metrics.clone(), health.clone(), when_true(stop_rx.clone())));

    let mut kube_config = kube::Config::infer().await.map_err(|e| format!("no Kubernetes configuration: {e}"))?;
    kube_config.read_timeout = Some(secs(args.kube_timeout).max(Duration::from_secs(300)));
    kube_config.connect_timeout = Some(secs(args.kube_timeout));
    let client = kube::Client::try_from(kube_config).map_err(|e| format!("Kubernetes client: {e}"))?;
    let cluster_id = match args.cluster_id.clone() {
        Some(id) => id,
        None => oms_data_operator::context::default_cluster_id(&client)
            .await
            .map_err(|e| format!("cluster identity: {e}"))?,
    };

    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(secs(args.aws_timeout))
        .operation_attempt_timeout(secs(args.aws_timeout / 2.0))
        .connect_timeout(Duration::from_secs(5))
        .build();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &args.aws_endpoint_url {
        tracing::warn!(endpoint = url.as_str(), "AWS endpoint override in use: for emulators only");
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    let budget = oms_data_operator::budget::Budget::new(args.aws_max_rps, args.aws_burst);
    let aws = Aws::new(sdk, secs(args.aws_timeout) + Duration::from_secs(5), metrics.clone()).with_budget(budget);

    let settings = Settings {
        cluster_id,
        poll_interval: secs(args.poll_interval),
        max_poll_interval: secs(args.max_poll_interval),
        resync: secs(args.resync),
        throttling_grace: secs(args.throttling_grace),
        kube_timeout: secs(args.kube_timeout),
        concurrency: args.concurrency,
    };
    let ctx = Arc::new(Context::new(client.clone(), aws, metrics.clone(), settings));
    health.set_ready(true);

    // Work stops on shutdown, or when leadership is lost.
    let (work_stop_tx, work_stop_rx) = watch::channel(false);
    let mut elector = None;
    if args.leader_elect {
        let e = Arc::new(Elector::new(
            client.clone(),
            LeaseConfig {
                namespace: args.leader_election_namespace.clone(),
                name: args.leader_election_id.clone(),
                identity: identity(),
                lease_duration: secs(args.lease_duration),
                renew_deadline: secs(args.renew_deadline),
                retry_period: secs(args.retry_period),
                call_timeout: secs(args.kube_timeout),
            },
        ));
        let (lead_tx, mut lead_rx) = watch::channel(false);
        let runner = e.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move { runner.run(lead_tx, stop).await });
        tracing::info!(lease = args.leader_election_id.as_str(), "waiting for leadership");
        let mut stop = stop_rx.clone();
        tokio::select! {
            r = lead_rx.wait_for(|v| *v) => { r.map_err(|_| "leader election ended".to_string())?; }
            _ = stop.wait_for(|v| *v) => {
                let _ = server.await;
                return Ok(());
            }
        }
        let forward = work_stop_tx.clone();
        tokio::spawn(async move {
            let _ = lead_rx.wait_for(|v| !*v).await;
            let _ = forward.send(true);
        });
        elector = Some(e);
    }
    let forward = work_stop_tx.clone();
    let mut stop = stop_rx.clone();
    tokio::spawn(async move {
        let _ = stop.wait_for(|v| *v).await;
        let _ = forward.send(true);
    });
    metrics.set_leader(true);

    let namespaces: Vec<Option<String>> =
        if args.namespaces.is_empty() { vec![None] } else { args.namespaces.iter().cloned().map(Some).collect() };
    tracing::info!(namespaces = ?args.namespaces, "starting the OmsRedis, OmsDynamoTable, OmsBackup and OmsFailoverTest controllers");
    futures::future::join_all(
        namespaces.into_iter().map(|ns| controller::run_all(ctx.clone(), ns, work_stop_rx.clone())),
    )
    .await;
    metrics.set_leader(false);

    let graceful = *stop_rx.borrow();
    if let Some(e) = elector {
        if graceful {
            match e.release().await {
                Ok(()) => tracing::info!("released the leader Lease"),
                Err(err) => tracing::warn!(error = %err, "could not release the leader Lease"),
            }
        } else {
            return Err("lost the leader Lease".into());
        }
    }
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Template(args) => match template(args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("oms-data-operator template: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Size(args) => match size(args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("oms-data-operator size: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Crd => match oms_data_operator::crd::render() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render the CRDs: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("oms-data-operator: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
