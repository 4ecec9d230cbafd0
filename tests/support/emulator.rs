//! The AWS emulator: moto server with the project's extension (`tests/emulator/oms_emulator`),
//! run from the project's venv on a loopback port, and spoken to by the real aws-sdk over HTTP.
//! Its control API (`/_oms/...`) sets stack delays, injects failures and counts calls.
//!
//! Accounts: requests signed with the bed's base key ([`BASE_ACCESS_KEY`]) act in the default
//! account [`DEFAULT_ACCOUNT`]; [`Emulator::sdk_config_for_role`] assumes a role through the
//! emulator's STS, as the operator does, and its credentials act in the role's account.

use super::proc::{
    BedError, Proc, Result, bed_tempdir, ensure_port_free, err, free_port, keep, repo_root, retry_lost_ports,
};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
/// The access key id the bed signs with unless it acts through an assumed role.
pub const BASE_ACCESS_KEY: &str = "bed";
/// The account of the base key (moto's default account).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

#[derive(Clone)]
pub struct Options {
    pub port: Option<u16>,
    pub python: Option<PathBuf>,
    pub stack_delay_seconds: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { port: None, python: None, stack_delay_seconds: 1.0 }
    }
}

pub struct Emulator {
    pub url: String,
    pub port: u16,
    pub startup: Duration,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

/// The project venv's Python; `make venv` makes it.
pub fn venv_python() -> PathBuf {
    std::env::var_os("OMS_EMULATOR_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

impl Emulator {
    pub fn start(opts: Options) -> Result<Emulator> {
        let started = Instant::now();
        let python = opts.python.unwrap_or_else(venv_python);
        if !python.exists() {
            return err(format!(
                "Python for the AWS emulator is missing: {} does not exist; run `make venv` (needs python3 >= 3.11)",
                python.display()
            ));
        }
        // A port the caller chose fails at once when taken; one of the bed's choosing is reserved
        // (free_port), and picked anew if another process takes it anyway.
        if let Some(port) = opts.port {
            ensure_port_free(port, "the AWS emulator")?;
        }
        let dir = bed_tempdir("oms-emulator")?;
        let (proc, port) = retry_lost_ports("the AWS emulator", opts.port.is_some(), || {
            let port = opts.port.map(Ok).unwrap_or_else(free_port)?;
            let mut proc = Proc::spawn(
                "AWS emulator",
                &python,
                &[
                    "-m".into(),
                    "oms_emulator".into(),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                    "--stack-delay".into(),
                    opts.stack_delay_seconds.to_string(),
                ],
                &[("PYTHONPATH", &repo_root().join("tests/emulator").to_string_lossy()), ("PYTHONUNBUFFERED", "1")],
                dir.path().join("emulator.log"),
            )?;
            proc.wait_ready(Duration::from_secs(60), || {
                matches!(http_json(port, "GET", "/_oms/health", None), Ok((200, _)))
            })?;
            Ok((proc, port))
        })?;
        let url = format!("http://127.0.0.1:{port}");
        Ok(Emulator { url, port, startup: started.elapsed(), _dir: dir, _proc: proc })
    }

    /// Calls the control API and returns its JSON answer; panics on anything but 200.
    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match http_json(self.port, method, path, body.as_ref()) {
            Ok((200, v)) => v,
            Ok((status, v)) => panic!("emulator {method} {path} answered {status}: {v}"),
            Err(e) => panic!("emulator {method} {path}: {e}"),
        }
    }

    pub fn configure(&self, body: Value) -> Value {
        self.control("POST", "/_oms/config", Some(body))
    }

    /// Binds replication group `replication_group_id` (which need not exist yet) to `redis`: the
    /// group's endpoints become the server's address and port, and the emulator keeps the server's
    /// `default` user's passwords in step with the group's AUTH tokens (now, on create, and when
    /// each modification takes effect). Panics when the server cannot be told.
    pub fn bind_redis(&self, replication_group_id: &str, redis: &super::redis::TlsRedis) {
        self.configure(serde_json::json!({ "redis_bindings": { replication_group_id: redis.emulator_binding() } }));
    }

    /// Undoes [`Emulator::bind_redis`].
    pub fn unbind_redis(&self, replication_group_id: &str) {
        self.configure(serde_json::json!({ "redis_bindings": { replication_group_id: null } }));
    }

    /// Makes the next `operation` (create | update | delete) of `stack` fail on `resource`.
    pub fn fail_next(&self, stack: &str, operation: &str, resource: &str, reason: &str) {
        self.control(
            "POST",
            "/_oms/fail",
            Some(serde_json::json!({
                "stack_name": stack, "operation": operation, "resource": resource, "reason": reason
            })),
        );
    }

    /// Makes the property at `property` (a path such as `CacheNodeType` or `Tags/0/Value`) of
    /// `stack`'s resource `resource` (a logical id) read `value` (null: removed), as if it had been
    /// changed outside CloudFormation; the next drift detection reports it.
    pub fn drift(&self, stack: &str, resource: &str, property: &str, value: Value) {
        self.control(
            "POST",
            "/_oms/drift",
            Some(serde_json::json!({
                "stack_name": stack, "resource": resource, "property": property, "value": value
            })),
        );
    }

    /// Makes the next `count` calls of `action` for `stack` answer Throttling.
    /// Every request signed with `access_key` answers Throttling for `seconds`.
    pub fn storm(&self, access_key: &str, seconds: f64) {
        self.control("POST", "/_oms/storm", Some(serde_json::json!({"access_key": access_key, "seconds": seconds})));
    }

    pub fn throttle(&self, action: &str, count: u32, stack: &str) {
        self.control(
            "POST",
            "/_oms/throttle",
            Some(serde_json::json!({"action": action, "count": count, "stack_name": stack})),
        );
    }

    /// The next `count` calls of `action` for `stack` are carried out, and their replies held back
    /// `seconds`: the caller can be killed after AWS acted and before it heard so.
    pub fn hold(&self, action: &str, stack: &str, count: u32, seconds: f64) {
        self.control(
            "POST",
            "/_oms/hold",
            Some(serde_json::json!({"action": action, "stack_name": stack, "count": count, "seconds": seconds})),
        );
    }

    /// The CloudWatch alarms in the emulator's backend whose names start with `prefix`. (The Rust
    /// CloudWatch SDK speaks RPCv2 CBOR, which moto does not serve.)
    pub fn alarms(&self, prefix: &str) -> Vec<Value> {
        let v = self.control("GET", &format!("/_oms/alarms?prefix={prefix}"), None);
        v["alarms"].as_array().cloned().unwrap_or_default()
    }

    /// Calls signed with one access key id, by `service:Action`.
    pub fn calls_by_key(&self, access_key: &str) -> std::collections::BTreeMap<String, u64> {
        calls_at(self.port, access_key)
    }

    /// Calls that acted in one account (signed with a key of that account), by `service:Action`.
    pub fn calls_in_account(&self, account: &str) -> std::collections::BTreeMap<String, u64> {
        let v = self.control("GET", &format!("/_oms/calls?account={account}"), None);
        serde_json::from_value(v["counts"].clone()).unwrap_or_default()
    }

    /// Calls received for one stack (or all), by `service:Action`.
    pub fn calls(&self, stack: Option<&str>) -> std::collections::BTreeMap<String, u64> {
        let path = match stack {
            Some(s) => format!("/_oms/calls?stack_name={s}"),
            None => "/_oms/calls".to_string(),
        };
        let v = self.control("GET", &path, None);
        serde_json::from_value(v["counts"].clone()).unwrap_or_default()
    }

    /// Sets who may assume which role (config `assumable_roles`, merged into what is there):
    /// `{"<role ARN>": {"external_id": "<id>" | null}, "<role ARN>": null (removes it)}`. While any
    /// role is listed, AssumeRole of an unlisted role is AccessDenied, and of a role with an
    /// external id without that id too. Tests sharing the emulator list every role they assume, so
    /// another test's list does not refuse them.
    pub fn allow_roles(&self, map: Value) {
        self.configure(serde_json::json!({ "assumable_roles": map }));
    }

    /// Takes roles off the `assumable_roles` list again (an empty list lets any role be assumed).
    pub fn forget_roles(&self, roles: &[&str]) {
        let map: serde_json::Map<String, Value> = roles.iter().map(|arn| (arn.to_string(), Value::Null)).collect();
        self.configure(serde_json::json!({ "assumable_roles": map }));
    }

    /// The emulator with the bed's base credentials: acts in the default account.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        let (creds, region) = self.sdk_parts();
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(region)
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_cloudformation::config::SharedCredentialsProvider::new(creds))
            .build()
    }

    /// Acts as `role_arn` the way the operator does: STS AssumeRole through the emulator, signed
    /// with the bed's base credentials, and a config holding the temporary credentials it returns,
    /// whose requests act in the role's account. Panics when STS refuses.
    pub async fn sdk_config_for_role(&self, role_arn: &str, external_id: Option<&str>) -> aws_config::SdkConfig {
        match self.try_sdk_config_for_role(role_arn, external_id).await {
            Ok(config) => config,
            Err(e) => panic!("assume {role_arn}: {e}"),
        }
    }

    /// [`Emulator::sdk_config_for_role`], with STS's refusal as an error.
    pub async fn try_sdk_config_for_role(
        &self,
        role_arn: &str,
        external_id: Option<&str>,
    ) -> std::result::Result<aws_config::SdkConfig, StsRefusal> {
        use aws_sdk_cloudformation::config::{ProvideCredentials, SharedCredentialsProvider};
        // Loaded (not just built) so it has the time source and sleep AssumeRoleProvider needs.
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(SharedCredentialsProvider::new(self.sdk_parts().0))
            .load()
            .await;
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn).session_name("oms-bed");
        if let Some(id) = external_id {
            builder = builder.external_id(id);
        }
        let provider = builder.configure(&base).build().await;
        // Assumed now, once, so a refusal shows here rather than at the first call made with it.
        let creds = provider.provide_credentials().await.map_err(StsRefusal::from_credentials_error)?;
        Ok(base.into_builder().credentials_provider(SharedCredentialsProvider::new(creds)).build())
    }

    /// Deploys `templates/data/vpc.json` as `name` (the stack the Redis template imports from) and
    /// waits until it is complete.
    pub async fn deploy_vpc_named(&self, name: &str) {
        self.deploy_vpc_in(&self.sdk_config(), name).await;
    }

    /// [`Emulator::deploy_vpc_named`] in the account `config` acts in.
    pub async fn deploy_vpc_in(&self, config: &aws_config::SdkConfig, name: &str) {
        let cfn = cloudformation_in(config);
        cfn.create_stack()
            .stack_name(name)
            .template_body(include_str!("../../templates/data/vpc.json"))
            .send()
            .await
            .expect("create the VPC stack");
        super::eventually(&format!("the VPC stack {name}"), Duration::from_secs(60), || async {
            let out = cfn.describe_stacks().stack_name(name).send().await.ok()?;
            (out.stacks().first()?.stack_status().map(|s| s.as_str()) == Some("CREATE_COMPLETE")).then_some(())
        })
        .await;
    }

    /// A VPC stack of its own for one test; its name.
    pub async fn deploy_vpc(&self) -> String {
        let name = super::unique_name("oms-vpc");
        self.deploy_vpc_named(&name).await;
        name
    }

    fn sdk_parts(&self) -> (aws_sdk_cloudformation::config::Credentials, aws_sdk_cloudformation::config::Region) {
        (
            aws_sdk_cloudformation::config::Credentials::new(BASE_ACCESS_KEY, "bed", None, None, "oms-bed"),
            aws_sdk_cloudformation::config::Region::new(REGION),
        )
    }

    pub fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        self.cloudformation_with(aws_sdk_cloudformation::config::retry::RetryConfig::standard())
    }

    /// A CloudFormation client that does not retry, to see single errors as they come.
    pub fn cloudformation_no_retry(&self) -> aws_sdk_cloudformation::Client {
        self.cloudformation_with(aws_sdk_cloudformation::config::retry::RetryConfig::disabled())
    }

    fn cloudformation_with(
        &self,
        retry: aws_sdk_cloudformation::config::retry::RetryConfig,
    ) -> aws_sdk_cloudformation::Client {
        let (creds, region) = self.sdk_parts();
        aws_sdk_cloudformation::Client::from_conf(
            aws_sdk_cloudformation::Config::builder()
                .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
                .region(region)
                .credentials_provider(creds)
                .endpoint_url(&self.url)
                .retry_config(retry)
                .build(),
        )
    }

    pub fn elasticache(&self) -> aws_sdk_elasticache::Client {
        aws_sdk_elasticache::Client::from_conf(
            aws_sdk_elasticache::Config::builder()
                .behavior_version(aws_sdk_elasticache::config::BehaviorVersion::latest())
                .region(aws_sdk_elasticache::config::Region::new(REGION))
                .credentials_provider(aws_sdk_elasticache::config::Credentials::new(
                    BASE_ACCESS_KEY,
                    "bed",
                    None,
                    None,
                    "oms-bed",
                ))
                .endpoint_url(&self.url)
                .build(),
        )
    }
}

/// Why STS did not hand out credentials for a role.
#[derive(Debug)]
pub struct StsRefusal {
    /// The AWS error code and message, e.g. `AccessDenied` (none when no answer came).
    pub code: Option<String>,
    pub message: Option<String>,
    /// Everything the SDK reports, the HTTP response included.
    pub detail: String,
}

impl StsRefusal {
    fn from_credentials_error<E: std::error::Error + 'static>(e: E) -> Self {
        // The chain is CredentialsError -> SdkError -> AssumeRoleError -> ErrorMetadata; the last is
        // the one type in it that can be named without aws-sdk-sts.
        let mut code = None;
        let mut message = None;
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(meta) = err.downcast_ref::<aws_sdk_cloudformation::error::ErrorMetadata>() {
                code = meta.code().map(str::to_string);
                message = meta.message().map(str::to_string);
                break;
            }
            source = err.source();
        }
        StsRefusal { code, message, detail: aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string() }
    }
}

impl std::fmt::Display for StsRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A CloudFormation client acting with `config`'s credentials (e.g. from
/// [`Emulator::sdk_config_for_role`]).
pub fn cloudformation_in(config: &aws_config::SdkConfig) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(config)
}

/// An ElastiCache client acting with `config`'s credentials.
pub fn elasticache_in(config: &aws_config::SdkConfig) -> aws_sdk_elasticache::Client {
    aws_sdk_elasticache::Client::new(config)
}

/// One request to the control API; the answer's status and JSON body.
fn http_json(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::result::Result<(u16, Value), String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, text) = super::proc::http_request(port, method, path, &body)?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

static SHARED: OnceLock<std::result::Result<Emulator, BedError>> = OnceLock::new();

/// The emulator of this test binary, started on first use.
pub fn shared() -> &'static Emulator {
    keep(&SHARED, || {
        let emu = Emulator::start(Options::default())?;
        eprintln!("bed: AWS emulator ready in {:.1}s", emu.startup.as_secs_f64());
        Ok(emu)
    })
}

/// The calls signed with `access_key` by the emulator on `port` (from any thread; empty when it
/// does not answer).
pub fn calls_at(port: u16, access_key: &str) -> std::collections::BTreeMap<String, u64> {
    match http_json(port, "GET", &format!("/_oms/calls?access_key={access_key}"), None) {
        Ok((200, v)) => serde_json::from_value(v["counts"].clone()).unwrap_or_default(),
        _ => Default::default(),
    }
}
