//! The ElastiCache Redis data stack: the `OmsRedis` resource, the seed's presets, the template,
//! and how a spec becomes stack parameters and stack outputs become the connection Secret.

pub mod node_types;
pub mod presets;
pub mod probe;
pub mod size_report;
pub mod sizing;
pub mod spec;
pub mod template;
pub mod windows;

use crate::stack::{
    Advisory, BackupTarget, Credential, CredentialTarget, DataStack, DeletionPolicy, Desired, FailoverTarget, Probe,
    Published, RestoreSource, SpecError, Wanted, elasticache::Snapshot, status::StackStatus,
};

/// Seconds between endpoint checks when the spec turns them on without an interval.
pub const DEFAULT_HEALTH_CHECK_SECONDS: i32 = 60;

/// How long a rotated password's predecessor keeps working after the new one is published.
pub const DEFAULT_RELOAD_GRACE_SECONDS: i32 = 300;
use kube::ResourceExt;
use presets::{default_engine_version, preset};
pub use spec::{Engine, EngineVersion, Environment, OmsRedis, OmsRedisSpec, OmsRedisStatus, RestoreFrom};
use std::collections::BTreeMap;
use template::{output, param};

/// The Secret's keys; REDIS_HOST and REDIS_PORT are the seed's variable names.
pub mod secret_key {
    pub const HOST: &str = "REDIS_HOST";
    pub const PORT: &str = "REDIS_PORT";
    pub const READER_HOST: &str = "REDIS_READER_HOST";
    pub const URL: &str = "REDIS_URL";
    pub const PASSWORD: &str = "REDIS_PASSWORD";
    pub const TLS: &str = "REDIS_TLS";
    pub const REPLICATION_GROUP_ID: &str = "REDIS_REPLICATION_GROUP_ID";
    pub const SECURITY_GROUP_ID: &str = "REDIS_SECURITY_GROUP_ID";
}

impl OmsRedis {
    /// The stack parameters this spec resolves to, presets filled in.
    pub fn parameters(&self) -> Result<BTreeMap<String, String>, SpecError> {
        let s = &self.spec;
        let p = preset(s.environment);
        let nodes = s.num_cache_nodes.unwrap_or(p.num_cache_nodes);
        let failover = s.automatic_failover_enabled.unwrap_or(p.automatic_failover_enabled);
        // The schema and CEL rules refuse these at apply time; this guards objects that predate them.
        if !(1..=6).contains(&nodes) {
            return Err(SpecError(format!("numCacheNodes must be between 1 and 6, not {nodes}")));
        }
        if failover && nodes < 2 {
            return Err(SpecError("automaticFailoverEnabled needs at least 2 cache nodes".into()));
        }
        if s.environment == Environment::Prod && !failover {
            return Err(SpecError("environment prod needs automaticFailoverEnabled: true".into()));
        }
        let node_type = s.node_type.clone().unwrap_or_else(|| p.node_type.to_string());
        match node_types::find(&node_type) {
            None => return Err(SpecError(format!("nodeType: {}", node_types::suggestion(&node_type)))),
            Some(t) if t.valkey_only && s.engine != Engine::Valkey => {
                return Err(SpecError(format!("nodeType {node_type} is offered only for Valkey: set engine: valkey")));
            }
            Some(_) => {}
        }
        let version = s.engine_version.unwrap_or(default_engine_version(s.engine));
        if version.engine() != s.engine {
            return Err(SpecError(format!(
                "engineVersion {} is a {} version, not a {} one",
                version.as_str(),
                version.engine().as_str(),
                s.engine.as_str()
            )));
        }
        let retention = s.snapshot_retention_limit.unwrap_or(p.snapshot_retention_limit);
        if !(0..=35).contains(&retention) {
            return Err(SpecError(format!("snapshotRetentionLimit must be between 0 and 35, not {retention}")));
        }
        windows::check(s.maintenance_window.as_deref(), s.snapshot_window.as_deref(), retention > 0)
            .map_err(SpecError)?;
        // Parameters added after the seed are sent only when set: the template's defaults are the
        // seed's, and stacks made before them see no change from an operator upgrade.
        let alarms = s.alarms.clone().unwrap_or_default();
        let optional = [
            (param::ENGINE, (s.engine != Engine::Redis).then(|| s.engine.as_str().to_string())),
            (param::MAINTENANCE_WINDOW, s.maintenance_window.clone()),
            (param::SNAPSHOT_WINDOW, s.snapshot_window.clone()),
            (param::ALARMS_IN_ALL_ENVIRONMENTS, alarms.all_environments.map(|b| b.to_string())),
            (param::ALARM_TOPIC_ARN, alarms.topic_arn.clone()),
            (param::CPU_ALARM_THRESHOLD, alarms.cpu_percent.map(|v| v.to_string())),
            (param::MEMORY_ALARM_THRESHOLD, alarms.memory_percent.map(|v| v.to_string())),
            (param::CACHE_HIT_RATE_ALARM_THRESHOLD, alarms.cache_hit_rate_percent.map(|v| v.to_string())),
            (param::EVICTIONS_ALARM_THRESHOLD, alarms.evictions_per_minute.map(|v| v.to_string())),
            (param::SNAPSHOT_NAME, s.restore_from.as_ref().map(|r| r.snapshot_name.clone())),
        ];
        Ok(BTreeMap::from([
            (param::ENVIRONMENT.to_string(), s.environment.as_str().to_string()),
            (param::VPC_STACK_NAME.to_string(), s.vpc_stack_name.clone()),
            (param::NODE_TYPE.to_string(), node_type),
            (param::NUM_CACHE_NODES.to_string(), nodes.to_string()),
            (param::ENGINE_VERSION.to_string(), version.as_str().to_string()),
            (param::SNAPSHOT_RETENTION_LIMIT.to_string(), retention.to_string()),
            (param::AUTOMATIC_FAILOVER_ENABLED.to_string(), failover.to_string()),
        ])
        .into_iter()
        .chain(optional.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))))
        .collect())
    }

    /// The AUTH password this spec asks for.
    pub fn credential(&self) -> Credential {
        let auth = self.spec.auth.clone().unwrap_or_default();
        let wanted = match auth.enabled {
            Some(true) => Wanted::Yes,
            Some(false) => Wanted::No,
            None if self.spec.environment == Environment::Prod => Wanted::ForNewStacks,
            None => Wanted::No,
        };
        let grace = auth.reload_grace_seconds.unwrap_or(DEFAULT_RELOAD_GRACE_SECONDS).clamp(0, 86_400);
        Credential {
            wanted,
            parameter: param::AUTH_TOKEN,
            secret_name: crate::stack::credential::secret_name(&self.secret_name()),
            connection_secret: self.secret_name(),
            published_key: secret_key::PASSWORD,
            reload_grace: std::time::Duration::from_secs(u64::try_from(grace).unwrap_or(0)),
        }
    }

    pub fn stack_name(&self) -> String {
        self.spec.stack_name.clone().unwrap_or_else(|| self.name_any())
    }

    pub fn secret_name(&self) -> String {
        self.spec.secret_name.clone().unwrap_or_else(|| format!("{}-redis", self.name_any()))
    }
}

/// A Warning while a Redis OSS version is within 90 days of the end of AWS standard support, or past it.
fn support_advisory(version: EngineVersion, today: k8s_openapi::jiff::civil::Date) -> Option<Advisory> {
    let (_, ends) = spec::STANDARD_SUPPORT_ENDS.iter().find(|(v, _)| *v == version)?;
    let end: k8s_openapi::jiff::civil::Date = ends.parse().ok()?;
    let warn_from = end.checked_sub(k8s_openapi::jiff::Span::new().days(90)).ok()?;
    if today < warn_from {
        return None;
    }
    let newest_redis = EngineVersion::ALL.iter().filter(|v| v.engine() == Engine::Redis).max()?;
    let when = if today > end { "left" } else { "leaves" };
    Some(Advisory {
        type_: "EngineSupportEnding",
        reason: "EngineSupportEnding",
        message: format!(
            "Redis OSS {} {when} AWS standard support on {ends}; after that AWS charges Extended Support. Upgrade \
             in place to engine: valkey, or to Redis OSS {} (engineVersion)",
            version.as_str(),
            newest_redis.as_str()
        ),
        warning: true,
    })
}

/// A prod cache that runs without a password because it was made before AUTH was the default: it is
/// never turned on under running clients without being asked.
fn auth_advisory(r: &OmsRedis) -> Option<Advisory> {
    let status = &r.status.as_ref()?.stack;
    let made = status.stack_id.is_some();
    let has_auth = status.auth.as_ref().is_some_and(|a| a.enabled || a.rotation.is_some());
    let unsaid = r.spec.auth.as_ref().and_then(|a| a.enabled).is_none();
    (r.spec.environment == Environment::Prod && made && !has_auth && unsaid).then(|| Advisory {
        type_: "AuthDisabled",
        reason: "AuthDisabled",
        message: "this prod cache accepts clients without a password (it was created before AUTH was the default). \
                  Set spec.auth.enabled: true to turn AUTH on without downtime: the password goes into the connection \
                  Secret, and clients without it are refused once the reload grace period is over"
            .into(),
        warning: true,
    })
}

/// Why a snapshot cannot seed a cache of this engine and version. ElastiCache restores a snapshot
/// into the same engine at the same or a newer version, and a Redis OSS one also into Valkey (the
/// way it upgrades Redis OSS in place); never into an older version or from Valkey back to Redis OSS.
fn restore_mismatch(engine: Engine, version: EngineVersion, snapshot: &Snapshot) -> Option<String> {
    let name = &snapshot.name;
    let taken_engine = snapshot.engine.as_deref().unwrap_or("redis");
    let taken_version = snapshot.engine_version.as_deref().unwrap_or_default();
    let engine_word = |e: &str| if e == "valkey" { "Valkey" } else { "Redis OSS" };
    if taken_engine == Engine::Valkey.as_str() && engine == Engine::Redis {
        return Some(format!(
            "snapshot {name} was taken from Valkey {taken_version}, and a Valkey snapshot cannot be restored into \
             Redis OSS: set engine: valkey"
        ));
    }
    let major_minor = |v: &str| -> Option<(u32, u32)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next().unwrap_or("0").parse().ok()?))
    };
    let wanted = major_minor(version.as_str());
    let taken = major_minor(taken_version);
    match (taken, wanted) {
        (Some(t), Some(w)) if w < t => Some(format!(
            "snapshot {name} was taken from {} {taken_version}, and a snapshot cannot be restored into an older \
             version than it was taken with: set engineVersion to {}.{} or newer",
            engine_word(taken_engine),
            t.0,
            t.1
        )),
        _ => None,
    }
}

/// Whether the stack runs with TLS: the template encrypts in transit exactly in prod.
fn encrypted_in_transit(parameters: &BTreeMap<String, String>) -> bool {
    parameters.get(param::ENVIRONMENT).map(String::as_str) == Some(Environment::Prod.as_str())
}

impl DataStack for OmsRedis {
    fn template_body() -> &'static str {
        template::TEMPLATE_BODY
    }

    fn template() -> &'static serde_json::Value {
        template::parsed()
    }

    fn data_resource_types() -> &'static [&'static str] {
        &["AWS::ElastiCache::ReplicationGroup"]
    }

    fn replacement_note() -> &'static str {
        "the template's UpdateReplacePolicy is Snapshot, so CloudFormation snapshots the old replication group before \
         deleting it (the snapshot stays in ElastiCache, outside the stack, until someone deletes it); but the group is \
         named after the stack, and CloudFormation does not replace a resource with a fixed name, so such an update \
         fails and rolls back, leaving the cache as it is"
    }

    fn desired(&self) -> Result<Desired, SpecError> {
        Ok(Desired {
            stack_name: self.stack_name(),
            template: std::borrow::Cow::Borrowed(template::TEMPLATE_BODY),
            parameters: self.parameters()?,
            tags: self.spec.tags.clone().unwrap_or_default(),
            region: self.spec.region.clone(),
            secret_name: self.secret_name(),
            deletion_policy: self.spec.deletion_policy,
            adopt_existing: self.spec.adopt_existing_stack.unwrap_or(false),
            allow_replacement: self.spec.allow_replacement.unwrap_or(false),
            // A dev cache is disposable (the seed keeps no snapshots of it); staging and prod data
            // is not replaced by an empty cache without someone asking.
            recreate_when_lost: self.spec.environment == Environment::Dev,
            credential: Some(self.credential()),
            restore: self
                .spec
                .restore_from
                .as_ref()
                .map(|r| RestoreSource::ElastiCacheSnapshot { snapshot_name: r.snapshot_name.clone() }),
            create_only: &[param::SNAPSHOT_NAME],
        })
    }

    fn publish(
        &self,
        outputs: &BTreeMap<String, String>,
        parameters: &BTreeMap<String, String>,
        password: Option<&str>,
    ) -> Result<Published, SpecError> {
        let get = |key: &str| {
            outputs
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| SpecError(format!("the stack has no {key} output")))
        };
        let host = get(output::ENDPOINT)?;
        let port = get(output::PORT)?;
        let port_number: i32 = port
            .parse()
            .map_err(|_| SpecError(format!("the stack's {} output is not a port: {port}", output::PORT)))?;
        let reader = get(output::READER_ENDPOINT)?;
        let group = get(output::REPLICATION_GROUP_ID)?;
        let security_group = get(output::SECURITY_GROUP_ID)?;
        let tls = encrypted_in_transit(parameters);
        let scheme = if tls { "rediss" } else { "redis" };
        // Generated passwords are letters and digits, so the URL needs no escaping.
        let userinfo = password.map(|p| format!(":{p}@")).unwrap_or_default();
        let mut secret = BTreeMap::from([
            (secret_key::HOST.to_string(), host.clone()),
            (secret_key::PORT.to_string(), port.clone()),
            (secret_key::READER_HOST.to_string(), reader.clone()),
            (secret_key::URL.to_string(), format!("{scheme}://{userinfo}{host}:{port}")),
            (secret_key::TLS.to_string(), tls.to_string()),
            (secret_key::REPLICATION_GROUP_ID.to_string(), group.clone()),
            (secret_key::SECURITY_GROUP_ID.to_string(), security_group.clone()),
        ]);
        if let Some(p) = password {
            secret.insert(secret_key::PASSWORD.to_string(), p.to_string());
        }
        let mut status = serde_json::Map::new();
        status.insert("endpoint".into(), host.into());
        status.insert("port".into(), port_number.into());
        status.insert("readerEndpoint".into(), reader.into());
        status.insert("securityGroupId".into(), security_group.into());
        let alarmed = parameters.get(param::ENVIRONMENT).map(String::as_str) == Some(Environment::Prod.as_str())
            || parameters.get(param::ALARMS_IN_ALL_ENVIRONMENTS).map(String::as_str) == Some("true");
        if alarmed {
            status.insert("alarmNames".into(), template::alarm_names(&group).into());
        }
        status.insert("replicationGroupId".into(), group.into());
        // Cost and sizing of the configuration as deployed.
        if let Some(config) = sizing::Config::from_parameters(parameters) {
            let workload = self.spec.workload.as_ref().map(sizing::from_spec);
            if let Ok(value) = serde_json::to_value(sizing::status(&config, workload.as_ref())) {
                status.insert("sizing".into(), value);
            }
        }
        Ok(Published { secret, status })
    }

    fn backup_target(&self, outputs: &BTreeMap<String, String>) -> Option<BackupTarget> {
        let group = outputs
            .get(output::REPLICATION_GROUP_ID)
            .filter(|g| !g.is_empty())
            .cloned()
            .or_else(|| self.status.as_ref()?.replication_group_id.clone())?;
        // The seed's manual backups are oms-redis-backup-YYYYMMDD; the lifecycle makes each name
        // unique per resource and attempt.
        Some(BackupTarget::ElastiCacheReplicationGroup {
            replication_group_id: group,
            snapshot_prefix: "oms-redis-backup",
        })
    }

    fn restore_mismatch(&self, snapshot: &Snapshot) -> Option<String> {
        restore_mismatch(
            self.spec.engine,
            self.spec.engine_version.unwrap_or(default_engine_version(self.spec.engine)),
            snapshot,
        )
    }

    fn drift_check_interval(&self) -> Option<std::time::Duration> {
        Some(self.spec.drift_detection.as_ref()?.interval())
    }

    fn health_check_interval(&self) -> Option<std::time::Duration> {
        let check = self.spec.health_check.as_ref().filter(|h| h.enabled == Some(true))?;
        let seconds = check.interval_seconds.unwrap_or(DEFAULT_HEALTH_CHECK_SECONDS).clamp(10, 3600);
        Some(std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(60)))
    }

    fn probe<'a>(&'a self, secret: &'a BTreeMap<String, String>) -> futures::future::BoxFuture<'a, Option<Probe>> {
        Box::pin(async move { Some(probe::check(secret).await) })
    }

    fn failover_target(&self) -> Option<FailoverTarget> {
        let replication_group_id = self.status.as_ref()?.replication_group_id.clone()?;
        Some(FailoverTarget::ElastiCacheReplicationGroup { replication_group_id })
    }

    fn credential_target(&self, outputs: &BTreeMap<String, String>) -> Option<CredentialTarget> {
        let replication_group_id = outputs.get(output::REPLICATION_GROUP_ID).filter(|g| !g.is_empty())?.clone();
        Some(CredentialTarget::ElastiCacheAuthToken { replication_group_id })
    }

    fn advisories(&self) -> Vec<Advisory> {
        let today = k8s_openapi::jiff::Timestamp::now().to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC).date();
        let version = self.spec.engine_version.unwrap_or(default_engine_version(self.spec.engine));
        let mut advisories: Vec<Advisory> = support_advisory(version, today).into_iter().collect();
        advisories.extend(auth_advisory(self));
        // Sized against the spec's own configuration, so an edit of nodeType clears it with the update.
        if let (Some(w), Ok(parameters)) = (&self.spec.workload, self.parameters())
            && let Some(config) = sizing::Config::from_parameters(&parameters)
        {
            let (workload, headroom) = sizing::from_spec(w);
            advisories.extend(sizing::advisories(&config, &workload, headroom));
        }
        advisories
    }

    fn explain_refusal(&self, aws_message: &str) -> Option<String> {
        let missing = aws_message.split("No export named ").nth(1)?.split(' ').next()?;
        let vpc = &self.spec.vpc_stack_name;
        let exports: Vec<String> = template::VPC_IMPORTS.iter().map(|o| template::export_name(vpc, o)).collect();
        Some(format!(
            "spec.vpcStackName is {vpc}, but no stack in this region exports {missing}. The VPC stack must export {} \
             (templates/data/vpc.json does): deploy it under the name {vpc}, or set spec.vpcStackName to the VPC \
             stack's name. AWS said: {aws_message}",
            exports.join(", ")
        ))
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn region(&self) -> Option<String> {
        self.spec.region.clone()
    }

    fn stack_status(&self) -> Option<&StackStatus> {
        self.status.as_ref().map(|s| &s.stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(spec: serde_json::Value) -> OmsRedis {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "data.oms-spider.io/v1alpha1",
            "kind": "OmsRedis",
            "metadata": { "name": "cache", "namespace": "team" },
            "spec": spec,
        }))
        .expect("an OmsRedis")
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The seed's three create-stack commands, parameter for parameter.
    fn seed(env: &str) -> BTreeMap<String, String> {
        let (node, nodes, retention, failover) = match env {
            "dev" => ("cache.t4g.micro", "1", "0", "false"),
            "staging" => ("cache.t4g.small", "2", "3", "true"),
            _ => ("cache.m7g.large", "3", "7", "true"),
        };
        let vpc = format!("oms-vpc-{env}");
        params(&[
            ("Environment", env),
            ("VPCStackName", vpc.as_str()),
            ("NodeType", node),
            ("NumCacheNodes", nodes),
            ("EngineVersion", "7.1"),
            ("SnapshotRetentionLimit", retention),
            ("AutomaticFailoverEnabled", failover),
        ])
    }

    #[test]
    fn omitted_fields_take_the_environments_preset() {
        for env in ["dev", "staging", "prod"] {
            let r = redis(serde_json::json!({ "environment": env, "vpcStackName": format!("oms-vpc-{env}") }));
            assert_eq!(r.parameters().expect("valid"), seed(env), "{env}");
        }
    }

    #[test]
    fn the_examples_are_the_seeds_commands() {
        for env in ["dev", "staging", "prod"] {
            let path = crate::repo_file(&format!("examples/{env}.yaml"));
            let text = std::fs::read_to_string(&path).expect("example exists");
            let r: OmsRedis = serde_saphyr::from_str(&text).expect("example parses");
            assert_eq!(r.parameters().expect("valid"), seed(env), "{}", path.display());
            assert_eq!(r.stack_name(), format!("oms-redis-{env}"), "the seed's stack name");
        }
    }

    #[test]
    fn given_fields_override_the_preset_and_names_default_from_the_resource() {
        let r = redis(serde_json::json!({
            "environment": "staging", "vpcStackName": "v", "nodeType": "cache.r7g.large", "numCacheNodes": 4,
            "engineVersion": "6.2", "snapshotRetentionLimit": 10, "automaticFailoverEnabled": false,
        }));
        let p = r.parameters().expect("valid");
        assert_eq!(p[param::NODE_TYPE], "cache.r7g.large");
        assert_eq!(p[param::NUM_CACHE_NODES], "4");
        assert_eq!(p[param::ENGINE_VERSION], "6.2");
        assert_eq!(p[param::SNAPSHOT_RETENTION_LIMIT], "10");
        assert_eq!(p[param::AUTOMATIC_FAILOVER_ENABLED], "false");
        let d = r.desired().expect("desired");
        assert_eq!(d.stack_name, "cache");
        assert_eq!(d.secret_name, "cache-redis");
        assert_eq!(d.deletion_policy, DeletionPolicy::Delete);
        assert!(!d.adopt_existing);
        let named = redis(
            serde_json::json!({ "environment": "dev", "vpcStackName": "v", "stackName": "oms-redis-x", "secretName": "conn" }),
        );
        assert_eq!(named.desired().expect("desired").stack_name, "oms-redis-x");
        assert_eq!(named.desired().expect("desired").secret_name, "conn");
    }

    #[test]
    fn impossible_combinations_are_refused_even_past_the_schema() {
        let cases = [
            (
                serde_json::json!({ "environment": "dev", "vpcStackName": "v", "automaticFailoverEnabled": true }),
                "at least 2",
            ),
            (
                serde_json::json!({ "environment": "prod", "vpcStackName": "v", "automaticFailoverEnabled": false }),
                "prod",
            ),
            (serde_json::json!({ "environment": "dev", "vpcStackName": "v", "numCacheNodes": 9 }), "between 1 and 6"),
            (
                serde_json::json!({ "environment": "dev", "vpcStackName": "v", "snapshotRetentionLimit": 40 }),
                "between 0 and 35",
            ),
        ];
        for (spec, want) in cases {
            let e = redis(spec.clone()).desired().expect_err("refused");
            assert!(e.0.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn valkey_sends_its_engine_and_redis_keeps_the_seeds_parameters() {
        let r = redis(serde_json::json!({ "environment": "dev", "vpcStackName": "oms-vpc-dev" }));
        assert!(!r.parameters().expect("valid").contains_key(param::ENGINE), "redis is the template's default");
        let v = redis(serde_json::json!({ "environment": "dev", "vpcStackName": "v", "engine": "valkey" }));
        let p = v.parameters().expect("valid");
        assert_eq!(p[param::ENGINE], "valkey");
        assert_eq!(p[param::ENGINE_VERSION], "8.2", "the newest Valkey by default");
        let pinned = redis(
            serde_json::json!({ "environment": "dev", "vpcStackName": "v", "engine": "valkey", "engineVersion": "7.2" }),
        );
        assert_eq!(pinned.parameters().expect("valid")[param::ENGINE_VERSION], "7.2");
        for (engine, version) in [("valkey", "7.1"), ("redis", "8.0")] {
            let bad = redis(serde_json::json!({
                "environment": "dev", "vpcStackName": "v", "engine": engine, "engineVersion": version,
            }));
            let e = bad.parameters().expect_err("a version of the other engine");
            assert!(e.0.contains(version) && e.0.contains(engine), "{e}");
        }
    }

    #[test]
    fn redis_6_is_warned_about_90_days_before_its_support_ends() {
        let day = |s: &str| s.parse::<k8s_openapi::jiff::civil::Date>().expect("a date");
        assert_eq!(support_advisory(EngineVersion::V6_2, day("2026-11-01")), None, "91 days before");
        let soon = support_advisory(EngineVersion::V6_2, day("2026-11-02")).expect("90 days before");
        assert!(soon.message.contains("leaves AWS standard support on 2027-01-31"), "{}", soon.message);
        assert!(soon.message.contains("engine: valkey") && soon.message.contains("Redis OSS 7.1"), "{}", soon.message);
        let past = support_advisory(EngineVersion::V6_2, day("2027-03-01")).expect("past");
        assert!(past.message.contains("left AWS standard support"), "{}", past.message);
        for v in EngineVersion::ALL.into_iter().filter(|v| *v != EngineVersion::V6_2) {
            assert_eq!(support_advisory(v, day("2030-01-01")), None, "{} has no published end", v.as_str());
        }
    }

    fn outputs() -> BTreeMap<String, String> {
        params(&[
            ("RedisEndpoint", "oms-redis-prod.abc123.ng.0001.use1.cache.amazonaws.com"),
            ("RedisPort", "6379"),
            ("RedisReaderEndpoint", "oms-redis-prod-ro.abc123.ng.0001.use1.cache.amazonaws.com"),
            ("RedisSecurityGroupId", "sg-0123"),
            ("RedisReplicationGroupId", "oms-redis-prod"),
        ])
    }

    #[test]
    fn outputs_become_the_secret_and_status() {
        let r = redis(serde_json::json!({ "environment": "prod", "vpcStackName": "v" }));
        let p = r.publish(&outputs(), &seed("prod"), None).expect("published");
        assert_eq!(p.secret[secret_key::HOST], "oms-redis-prod.abc123.ng.0001.use1.cache.amazonaws.com");
        assert_eq!(p.secret[secret_key::PORT], "6379");
        assert_eq!(p.secret[secret_key::READER_HOST], "oms-redis-prod-ro.abc123.ng.0001.use1.cache.amazonaws.com");
        assert_eq!(p.secret[secret_key::URL], "rediss://oms-redis-prod.abc123.ng.0001.use1.cache.amazonaws.com:6379");
        assert_eq!(p.secret[secret_key::TLS], "true");
        assert_eq!(p.secret[secret_key::REPLICATION_GROUP_ID], "oms-redis-prod");
        assert_eq!(p.secret[secret_key::SECURITY_GROUP_ID], "sg-0123");
        assert_eq!(p.secret.len(), 7);
        assert_eq!(p.status["port"], 6379);
        assert_eq!(p.status["endpoint"], "oms-redis-prod.abc123.ng.0001.use1.cache.amazonaws.com");

        let dev = r.publish(&outputs(), &seed("dev"), None).expect("published");
        assert!(dev.secret[secret_key::URL].starts_with("redis://"));
        assert_eq!(dev.secret[secret_key::TLS], "false");
    }

    #[test]
    fn a_password_goes_into_the_secret_and_its_url_but_never_into_status() {
        let r = redis(serde_json::json!({ "environment": "prod", "vpcStackName": "v" }));
        let p = r.publish(&outputs(), &seed("prod"), Some("Pw0rd")).expect("published");
        assert_eq!(p.secret[secret_key::PASSWORD], "Pw0rd");
        assert_eq!(
            p.secret[secret_key::URL],
            "rediss://:Pw0rd@oms-redis-prod.abc123.ng.0001.use1.cache.amazonaws.com:6379"
        );
        assert!(!serde_json::Value::Object(p.status).to_string().contains("Pw0rd"));
    }

    #[test]
    fn prod_gets_auth_by_default_for_new_stacks_only_and_other_environments_on_request() {
        use crate::stack::Wanted;
        let prod = redis(serde_json::json!({ "environment": "prod", "vpcStackName": "v" }));
        assert_eq!(prod.credential().wanted, Wanted::ForNewStacks);
        assert_eq!(prod.credential().secret_name, format!("{}-auth", prod.secret_name()));
        assert_eq!(prod.credential().reload_grace, std::time::Duration::from_secs(300));
        let dev = redis(serde_json::json!({ "environment": "dev", "vpcStackName": "v" }));
        assert_eq!(dev.credential().wanted, Wanted::No);
        let on = redis(
            serde_json::json!({ "environment": "prod", "vpcStackName": "v", "auth": { "enabled": true, "reloadGraceSeconds": 5 } }),
        );
        assert_eq!(on.credential().wanted, Wanted::Yes);
        assert_eq!(on.credential().reload_grace, std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_running_prod_cache_without_auth_is_told_how_to_turn_it_on() {
        let with_status = |spec: serde_json::Value, auth: serde_json::Value| {
            let mut r = redis(spec);
            r.status = serde_json::from_value(serde_json::json!({ "stackId": "arn:x", "auth": auth })).ok();
            r
        };
        let prod = serde_json::json!({ "environment": "prod", "vpcStackName": "v" });
        let none = serde_json::Value::Null;
        let r = with_status(prod.clone(), none.clone());
        assert_eq!(auth_advisory(&r).map(|a| a.type_), Some("AuthDisabled"));
        assert!(auth_advisory(&with_status(prod.clone(), serde_json::json!({ "enabled": true }))).is_none());
        let said = serde_json::json!({ "environment": "prod", "vpcStackName": "v", "auth": { "enabled": false } });
        assert!(auth_advisory(&with_status(said, none.clone())).is_none(), "the user chose it");
        assert!(auth_advisory(&redis(prod)).is_none(), "not made yet: it gets AUTH");
        let dev = serde_json::json!({ "environment": "dev", "vpcStackName": "v" });
        assert!(auth_advisory(&with_status(dev, none)).is_none());
    }

    #[test]
    fn a_restore_sends_the_snapshot_name_only_when_asked() {
        let plain = redis(serde_json::json!({ "environment": "staging", "vpcStackName": "v" }));
        assert!(!plain.parameters().expect("valid").contains_key(param::SNAPSHOT_NAME));
        assert_eq!(plain.desired().expect("desired").restore, None);
        let restored = redis(serde_json::json!({
            "environment": "staging", "vpcStackName": "v", "restoreFrom": { "snapshotName": "oms-redis-backup-1" },
        }));
        assert_eq!(restored.parameters().expect("valid")[param::SNAPSHOT_NAME], "oms-redis-backup-1");
        assert_eq!(
            restored.desired().expect("desired").restore,
            Some(RestoreSource::ElastiCacheSnapshot { snapshot_name: "oms-redis-backup-1".into() })
        );
    }

    #[test]
    fn snapshots_restore_into_the_same_or_a_newer_version_and_redis_into_valkey_never_back() {
        let snap = |engine: &str, version: &str| Snapshot {
            name: "s".into(),
            status: "available".into(),
            engine: Some(engine.into()),
            engine_version: Some(version.into()),
            ..Snapshot::default()
        };
        assert_eq!(restore_mismatch(Engine::Redis, EngineVersion::V7_1, &snap("redis", "7.1.0")), None);
        assert_eq!(restore_mismatch(Engine::Redis, EngineVersion::V7_1, &snap("redis", "6.2.6")), None);
        assert_eq!(restore_mismatch(Engine::Valkey, EngineVersion::V8_2, &snap("redis", "7.1")), None);
        let older = restore_mismatch(Engine::Redis, EngineVersion::V6_2, &snap("redis", "7.1.0")).expect("refused");
        assert!(older.contains("engineVersion to 7.1 or newer"), "{older}");
        let back = restore_mismatch(Engine::Redis, EngineVersion::V7_1, &snap("valkey", "8.0")).expect("refused");
        assert!(back.contains("set engine: valkey"), "{back}");
        let valkey_older =
            restore_mismatch(Engine::Valkey, EngineVersion::V7_2, &snap("valkey", "8.0")).expect("refused");
        assert!(valkey_older.contains("8.0 or newer"), "{valkey_older}");
    }

    #[test]
    fn missing_or_malformed_outputs_are_errors_not_empty_secrets() {
        let r = redis(serde_json::json!({ "environment": "dev", "vpcStackName": "v" }));
        let mut missing = outputs();
        missing.remove("RedisReaderEndpoint");
        assert!(r.publish(&missing, &seed("dev"), None).expect_err("missing").0.contains("RedisReaderEndpoint"));
        let mut bad_port = outputs();
        bad_port.insert("RedisPort".into(), "six".into());
        assert!(r.publish(&bad_port, &seed("dev"), None).is_err());
    }
}
