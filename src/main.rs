//! The `oms-data-operator` command: `run` the operator, print the `crd`s or the embedded `template`.

use clap::{Parser, Subcommand, ValueEnum};
use oms_data_operator::controller::{self, Context, Settings};
use oms_data_operator::metrics::Metrics;
use oms_data_operator::redis::OmsRedis;
use oms_data_operator::stack::cfn::Aws;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "oms-data-operator", version, about = "OMS Spider data layer on AWS, as Kubernetes resources")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions (YAML).
    Crd,
    /// Print the embedded ElastiCache Redis CloudFormation template.
    Template,
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
    /// Watch only this namespace (default: the whole cluster).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Cluster identity in stack ownership tags (default: the uid of kube-system).
    #[arg(long, env = "OMS_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Fastest poll of a stack in progress, in seconds.
    #[arg(long, default_value_t = 10.0)]
    poll_interval: f64,
    /// Slowest poll of a long-running stack operation, in seconds.
    #[arg(long, default_value_t = 60.0)]
    max_poll_interval: f64,
    /// Seconds before a settled resource is looked at again.
    #[arg(long, default_value_t = 600.0)]
    resync: f64,
    /// Resources reconciled at once.
    #[arg(long, default_value_t = 4)]
    concurrency: u16,
    /// Deadline of each AWS call, in seconds.
    #[arg(long, default_value_t = 30.0)]
    aws_timeout: f64,
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

async fn run(args: RunArgs) -> Result<(), String> {
    init_logging(&args);
    let mut kube_config = kube::Config::infer().await.map_err(|e| format!("no Kubernetes configuration: {e}"))?;
    kube_config.read_timeout = Some(secs(args.kube_timeout).max(Duration::from_secs(300)));
    kube_config.connect_timeout = Some(secs(args.kube_timeout));
    let client = kube::Client::try_from(kube_config).map_err(|e| format!("Kubernetes client: {e}"))?;
    let cluster_id = match args.cluster_id.clone() {
        Some(id) => id,
        None => controller::default_cluster_id(&client).await.map_err(|e| format!("cluster identity: {e}"))?,
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
    let aws = Aws::new(sdk, secs(args.aws_timeout) + Duration::from_secs(5));

    let settings = Settings {
        cluster_id,
        poll_interval: secs(args.poll_interval),
        max_poll_interval: secs(args.max_poll_interval),
        resync: secs(args.resync),
        kube_timeout: secs(args.kube_timeout),
        concurrency: args.concurrency,
    };
    tracing::info!(namespace = args.namespace.as_deref().unwrap_or("*"), "starting the OmsRedis controller");
    let ctx = Arc::new(Context::new(client, aws, Arc::new(Metrics::default()), settings));
    controller::run::<OmsRedis>(ctx, args.namespace.clone(), shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Template => {
            print!("{}", oms_data_operator::redis::template::TEMPLATE_BODY);
            ExitCode::SUCCESS
        }
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
            match runtime.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("oms-data-operator: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
