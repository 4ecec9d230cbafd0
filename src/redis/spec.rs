//! The `OmsRedis` custom resource: what a platform team asks for, and what the operator reports.
//!
//! Every rule a user can break is in the schema or in a CEL rule here, so the apiserver refuses a
//! bad manifest at apply time with a message that says what to change. Omitted sizing fields are not
//! defaulted in the schema: they take the environment's preset (see [`super::presets`]), and the CEL
//! rules that depend on sizing reason about those presets too.

use crate::stack::status::StackStatus;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::node_types;
use super::presets::{
    engine_never_downgrades_rule, failover_needs_nodes_rule, prod_needs_failover_rule, snapshots_on_cel,
    version_matches_engine_rule,
};
use super::windows;

/// Stack names double as ElastiCache replication-group ids (the seed's `oms-redis-prod`, members
/// `oms-redis-prod-001`…), so they obey the stricter of the two rule sets.
pub const STACK_NAME_PATTERN: &str = "^[a-z]([a-z0-9]|-[a-z0-9])*$";
pub const STACK_NAME_MAX: usize = 40;
/// An SNS topic ARN (`arn:aws:sns:<region>:<account>:<topic>`, as CloudWatch's PutMetricAlarm
/// documents alarm actions); the template's AlarmTopicArn takes the same or nothing.
pub const SNS_TOPIC_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$";
/// restoreFrom is settled once the stack exists (its id is in status): before that a typo can be
/// fixed in place; after it, adding, changing or removing it would replace the cache's data.
const RESTORE_ONLY_BEFORE_CREATION_RULE: &str = "!has(oldSelf.status) || !has(oldSelf.status.stackId) || (has(self.spec.restoreFrom) ? (has(oldSelf.spec.restoreFrom) && self.spec.restoreFrom == oldSelf.spec.restoreFrom) : !has(oldSelf.spec.restoreFrom))";
const RESTORE_ONLY_BEFORE_CREATION_MESSAGE: &str = "restoreFrom can only be given before the cache's stack is created, and never changed or removed after: restoring replaces a cache's data, so it is never done to a running cache. To restore, create a new OmsRedis with spec.restoreFrom.snapshotName and point workloads at its Secret";
/// A Secret's name (a DNS subdomain), for every kind's secretName.
pub const DNS_SUBDOMAIN_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// An AWS region name, for every kind's region.
pub const REGION_PATTERN: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]$";
/// Every kind's user tags: within AWS's limits, and off the prefixes AWS and the operator reserve.
pub const TAGS_RULE: &str = "self.all(k, size(k) <= 128 && !k.startsWith('aws:') && !k.startsWith('oms-data-operator/') && size(self[k]) <= 256)";
pub const TAGS_MESSAGE: &str = "tags: keys at most 128 characters and not starting with aws: or oms-data-operator/ (reserved), values at most 256 characters";
const NODE_TYPE_PATTERN: &str = r"^cache\.[a-z][a-z0-9]*\.[a-z0-9]+$";

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "data.oms-spider.io",
    version = "v1alpha1",
    kind = "OmsRedis",
    plural = "omsredises",
    singular = "omsredis",
    shortname = "omsr",
    namespaced,
    status = "OmsRedisStatus",
    doc = "An OMS Spider ElastiCache Redis data stack, reconciled into a CloudFormation stack",
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Reason", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].reason"#),
    printcolumn(name = "NodeType", type_ = "string", json_path = ".status.appliedParameters.NodeType"),
    printcolumn(name = "Nodes", type_ = "string", json_path = ".status.appliedParameters.NumCacheNodes"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.stackStatus"),
    printcolumn(name = "Cost", type_ = "string", json_path = ".status.sizing.monthlyCost"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(RESTORE_ONLY_BEFORE_CREATION_RULE).message(RESTORE_ONLY_BEFORE_CREATION_MESSAGE).field_path(".spec.restoreFrom"),
    validation = Rule::new(format!(
        "has(self.spec.stackName) || (size(self.metadata.name) <= {STACK_NAME_MAX} && self.metadata.name.matches(r'{STACK_NAME_PATTERN}'))"
    )).message(
        "metadata.name becomes the CloudFormation stack and replication-group name, so it must be at most 40 characters of lowercase letters, digits and single hyphens, starting with a letter; choose such a name or set spec.stackName"
    ),
)]
#[x_kube(validation = Rule::new(failover_needs_nodes_rule()).message(FAILOVER_NEEDS_NODES_MESSAGE))]
#[x_kube(validation = Rule::new(prod_needs_failover_rule()).message(
    "environment prod needs automaticFailoverEnabled: true; remove the field to take the prod preset or set it to true"
))]
#[x_kube(validation = Rule::new(
    "has(oldSelf.stackName) ? (has(self.stackName) && self.stackName == oldSelf.stackName) : !has(self.stackName)"
).message("stackName is immutable: it names the CloudFormation stack; create a new OmsRedis to move to another stack"))]
#[x_kube(validation = Rule::new(
    "has(oldSelf.region) ? (has(self.region) && self.region == oldSelf.region) : !has(self.region)"
).message("region is immutable: it names where the stack lives, so it cannot be added, changed or removed once the resource exists; create a new OmsRedis for a cache in another region"))]
#[x_kube(validation = Rule::new(windows::no_overlap_rule(&snapshots_on_cel())).message(windows::OVERLAP_MESSAGE))]
#[x_kube(validation = Rule::new(node_types::valkey_only_rule()).message(
    "nodeType is a type ElastiCache offers only for Valkey (m8g, r8g, c8gn): set engine: valkey, or choose a type of another family"
))]
#[x_kube(validation = Rule::new(version_matches_engine_rule()).message(
    "engineVersion must be one of the engine's versions: Redis OSS (engine redis) 6.2, 7.0 or 7.1; Valkey (engine valkey) 7.2, 8.0, 8.1 or 8.2. To move to Valkey, change engine and engineVersion in the same edit, or remove engineVersion to take the engine's newest"
))]
#[x_kube(validation = Rule::new(
    "has(oldSelf.engine) && oldSelf.engine == 'valkey' ? (has(self.engine) && self.engine == 'valkey') : true"
).message("engine cannot go from valkey back to redis: ElastiCache upgrades Redis OSS to Valkey in place but never back; create a new OmsRedis for a Redis OSS cache"))]
#[x_kube(validation = Rule::new(engine_never_downgrades_rule()).message("engineVersion can only go up (ElastiCache cannot downgrade an engine, and every Valkey version is above every Redis OSS one): keep the current version or choose a newer one"))]
#[x_kube(validation = Rule::new(
    "!has(self.auth) || !has(self.auth.enabled) || !self.auth.enabled || self.environment == 'prod'"
).message("auth.enabled needs in-transit encryption, which only environment prod has: remove auth.enabled or set it to false"))]
#[x_kube(validation = Rule::new(
    "has(oldSelf.auth) && has(oldSelf.auth.enabled) && oldSelf.auth.enabled ? !(has(self.auth) && has(self.auth.enabled) && !self.auth.enabled) : true"
).message("auth.enabled cannot be turned off: ElastiCache removes an AUTH token only when moving to RBAC. Keep it true or remove it"))]
#[x_kube(validation = Rule::new(
    "!(has(self.restoreFrom) && has(self.adoptExistingStack) && self.adoptExistingStack)"
).message("restoreFrom and adoptExistingStack cannot go together: an adopted stack already holds its data, and restoring into it would replace its replication group. Remove one of them"))]
#[serde(rename_all = "camelCase")]
pub struct OmsRedisSpec {
    /// dev, staging or prod; selects the preset for every omitted sizing field. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "environment is immutable: create a new OmsRedis for another environment"
    ))]
    pub environment: Environment,

    /// The CloudFormation stack exporting <name>-VpcId, <name>-VpcCidr and <name>-PrivateSubnetIds. Immutable.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z][-a-zA-Z0-9]*$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "vpcStackName is immutable: the cache cannot move to another VPC in place"
    ))]
    pub vpc_stack_name: String,

    /// ElastiCache node type, e.g. cache.t4g.micro or cache.m7g.large: a current-generation type
    /// ElastiCache offers (t4g, t3, m7g, m6g, m5, r7g, r6g, r5, c7gn; with engine valkey also m8g,
    /// r8g, c8gn). Default: the environment's preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 40))]
    #[x_kube(validation = Rule::new(format!("self.matches(r'{NODE_TYPE_PATTERN}')")).message(
        "nodeType must look like cache.<family>.<size>, e.g. cache.t4g.micro or cache.m7g.large"
    ))]
    #[x_kube(validation = Rule::new(node_types::cel_rule()).message(Message::Expression(node_types::cel_message())))]
    pub node_type: Option<String>,

    /// Cache nodes: one primary plus replicas, 1 to 6. Default: the environment's preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 6))]
    pub num_cache_nodes: Option<i32>,

    /// The engine: redis (Redis OSS, the seed's) or valkey. Redis OSS can be upgraded to Valkey in
    /// place; Valkey never goes back. Default: redis.
    #[serde(default)]
    pub engine: Engine,

    /// Engine version; it can only go up. Redis OSS: 6.2, 7.0 or 7.1 (default 7.1). Valkey: 7.2, 8.0,
    /// 8.1 or 8.2 (default 8.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "engine_version_schema")]
    pub engine_version: Option<EngineVersion>,

    /// Days of automatic snapshots, 0 (off) to 35. Default: the environment's preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 35))]
    pub snapshot_retention_limit: Option<i32>,

    /// Automatic failover with Multi-AZ; needs at least 2 nodes, required in prod. Default: the environment's preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_failover_enabled: Option<bool>,

    /// CloudFormation stack name. Default: metadata.name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), regex(pattern = STACK_NAME_PATTERN))]
    pub stack_name: Option<String>,

    /// Secret that receives the connection settings. Default: <metadata.name>-redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: Option<String>,

    /// AWS region. Default: the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: Option<String>,

    /// Extra tags for the stack and its resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 40))]
    #[x_kube(validation = Rule::new(TAGS_RULE).message(TAGS_MESSAGE))]
    pub tags: Option<BTreeMap<String, String>>,

    /// Weekly maintenance window, UTC, ddd:hh24:mi-ddd:hh24:mi, at least 60 minutes, not overlapping
    /// snapshotWindow. Default: sun:05:00-sun:07:00.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 19), regex(pattern = windows::MAINTENANCE_PATTERN))]
    #[x_kube(validation = Rule::new(windows::maintenance_length_rule()).message(
        "maintenanceWindow must last at least 60 minutes (AWS's minimum)"
    ))]
    pub maintenance_window: Option<String>,

    /// Daily window for automatic snapshots, UTC, hh24:mi-hh24:mi, at least 60 minutes, not
    /// overlapping maintenanceWindow. Default: 03:00-05:00.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 11), regex(pattern = windows::SNAPSHOT_PATTERN))]
    #[x_kube(validation = Rule::new(windows::snapshot_length_rule()).message(
        "snapshotWindow must last at least 60 minutes (AWS's minimum)"
    ))]
    pub snapshot_window: Option<String>,

    /// The seed's four CloudWatch alarms (CPU, memory, cache hit rate, evictions): who they notify,
    /// their thresholds, and whether environments other than prod get them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<AlarmsSpec>,

    /// Redis AUTH: a password the operator generates, keeps in the Secret `<secretName>-auth`, and
    /// copies into the connection Secret (REDIS_PASSWORD, REDIS_URL). Needs in-transit encryption,
    /// which only environment prod has. Default: on for new prod caches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// Start the new cache from an ElastiCache snapshot instead of empty: the SNAPSHOT column of
    /// `kubectl get omsbackups` (backups, and the snapshots deletion policy Snapshot took), or a
    /// snapshot taken outside the operator. Only when the OmsRedis is created; immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreFrom>,

    /// Checks that the published endpoint answers: TCP connect, TLS where the cache has it, then
    /// AUTH (with the operator's password) and PING. Reported as the EndpointReachable condition;
    /// it never holds Ready back. Off by default: turn it on when the operator's network reaches
    /// the cache's VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,

    /// CloudFormation drift detection of the stack's resources (a console or CLI change to the
    /// replication group, say), reported as the Drifted condition. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detection: Option<DriftDetectionSpec>,

    /// What deleting this resource does to the stack: Delete (default), Retain or Snapshot.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Take over an existing stack of this name that no operator owns. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_existing_stack: Option<bool>,

    /// The keys the OMS expects to keep in this cache: status then estimates the memory they take,
    /// the headroom the node type leaves, the monthly cost, and the cheapest node type that fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,

    /// Let an update go ahead when CloudFormation's preview says it replaces the replication
    /// group (a new, empty group; CloudFormation snapshots the old one first). Off by default:
    /// such an update is refused, and status.plan shows what would be replaced and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_replacement: Option<bool>,
}

/// The snapshot a new cache starts from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreFrom {
    /// The ElastiCache snapshot's name, in the cache's region and account. It must be available
    /// and of an engine and version this cache can run (a Redis OSS snapshot restores into Redis OSS
    /// of the same or a newer version, or into Valkey; a Valkey one only into Valkey).
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z][A-Za-z0-9-]*$"))]
    pub snapshot_name: String,
}

/// Expected key counts per family (the seed's OMS key families, plus any of the user's own).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Active orders, `order:{exchange}:{exchangeOrderId}` hashes (~2 KB, TTL 24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub orders: Option<i64>,
    /// Open positions, `position:{clientId}:{symbol}` hashes (~500 B, no TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub positions: Option<i64>,
    /// Instruments, `instrument:{symbol}` hashes (~2 KB, TTL 1 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub instruments: Option<i64>,
    /// Idempotency keys alive at once, `idempotency:{requestId}` strings (~100 B, TTL 5 min).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub idempotency_keys: Option<i64>,
    /// Leader-election keys, `leader:{service}` strings (one per service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub leader_keys: Option<i64>,
    /// Other key families: a name, how many keys, and bytes per key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub families: Vec<CustomFamily>,
    /// The share of a node's usable memory to keep free, in percent: 0 to 90. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 90))]
    pub headroom_percent: Option<i32>,
}

/// A key family of the user's own.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomFamily {
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    #[schemars(range(min = 0))]
    pub count: i64,
    /// Bytes per key, value included: 1 to 512 MiB (Redis's largest value).
    #[schemars(range(min = 1, max = 536870912))]
    pub bytes_per_key: i64,
}

/// Scheduled drift detection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftDetectionSpec {
    /// Minutes between detections: 1 to 10080 (a week). Each costs a DetectStackDrift and a few
    /// reads, and CloudFormation reads every resource of the stack with the operator's role.
    #[schemars(range(min = 1, max = 10080))]
    pub interval_minutes: i32,
}

impl DriftDetectionSpec {
    /// Time between detections, the schema's bounds enforced for objects that predate them.
    pub fn interval(&self) -> std::time::Duration {
        let minutes = self.interval_minutes.clamp(1, 10080);
        std::time::Duration::from_secs(u64::try_from(minutes).unwrap_or(60) * 60)
    }
}

/// The endpoint check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// Run the check. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Seconds between checks. Default: 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 3600))]
    pub interval_seconds: Option<i32>,
}

/// Redis AUTH. To rotate the password, annotate the resource with
/// data.oms-spider.io/rotate-auth-token=<any new value>.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Require the password. Default: on for a prod cache created with this field absent; a running
    /// cache keeps what it has. Turning it on for a running cache is done without downtime; once on,
    /// it cannot be turned off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Seconds between publishing a new password in the connection Secret and the old one ceasing to
    /// work, so workloads can reload. Default: 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub reload_grace_seconds: Option<i32>,
}

/// The alarms. Omitted thresholds are the seed's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlarmsSpec {
    /// SNS topic ARN that each alarm notifies when it fires and when it clears. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 300), regex(pattern = SNS_TOPIC_ARN_PATTERN))]
    pub topic_arn: Option<String>,
    /// Create the alarms in dev and staging too (prod always has them). Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_environments: Option<bool>,
    /// Alarm when CPUUtilization is above this percentage. Default: 75.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub cpu_percent: Option<i32>,
    /// Alarm when DatabaseMemoryUsagePercentage is above this. Default: 85.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub memory_percent: Option<i32>,
    /// Alarm when CacheHitRate is below this percentage. Default: 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub cache_hit_rate_percent: Option<i32>,
    /// Alarm when evictions per minute are above this. Default: 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000000))]
    pub evictions_per_minute: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Environment::Dev, Environment::Staging, Environment::Prod];

    /// A CEL expression for a spec field with its environment preset as fallback, e.g.
    /// `(has(self.numCacheNodes) ? self.numCacheNodes : (self.environment == 'dev' ? 1 : ...))`.
    pub fn cel_with_preset(field: &str, value: impl Fn(Environment) -> String) -> String {
        let mut fallback = value(Environment::Prod);
        for env in Environment::ALL.iter().rev().skip(1) {
            fallback = format!("(self.environment == '{}' ? {} : {fallback})", env.as_str(), value(*env));
        }
        format!("(has(self.{field}) ? self.{field} : {fallback})")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Prod => "prod",
        }
    }
}

/// The cache engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Redis OSS, as in the seed.
    #[default]
    Redis,
    Valkey,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Redis => "redis",
            Engine::Valkey => "valkey",
        }
    }
}

/// Engine versions ElastiCache supports for node-based clusters, oldest first, with the engine
/// each belongs to and its parameter-group family (sources: docs/research, section 1: AWS's
/// "Supported engine versions" and "Engine-specific parameters" pages). Valkey 9.x is left out
/// until its family name is documented where we can read it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
pub enum EngineVersion {
    #[serde(rename = "6.2")]
    V6_2,
    #[serde(rename = "7.0")]
    V7_0,
    #[serde(rename = "7.1")]
    V7_1,
    #[serde(rename = "7.2")]
    V7_2,
    #[serde(rename = "8.0")]
    V8_0,
    #[serde(rename = "8.1")]
    V8_1,
    #[serde(rename = "8.2")]
    V8_2,
}

/// The schema of an optional engine version: just the versions. (The derived schema of an
/// `Option<enum>` lists `null` among the values, which the apiserver then offers to users.)
fn engine_version_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let versions: Vec<&str> = EngineVersion::ALL.iter().map(|v| v.as_str()).collect();
    schemars::json_schema!({ "type": "string", "enum": versions })
}

/// Why failover cannot run on the nodes asked for, true of every environment. (A message that
/// names the resource's own environment needs a messageExpression, and the apiserver's cost
/// estimate for one over spec strings exceeds its budget by far.)
const FAILOVER_NEEDS_NODES_MESSAGE: &str = "automaticFailoverEnabled needs at least 2 cache nodes. Failover is on when the field is true, or omitted in staging and prod (their presets turn it on); numCacheNodes, when omitted, is 1 in dev, 2 in staging and 3 in prod. Set numCacheNodes to 2 or more, or set automaticFailoverEnabled: false (not allowed in prod)";

/// When AWS ends standard support for a Redis OSS version on ElastiCache (after it, Extended
/// Support is charged). Source: AWS, "ElastiCache extended support" and "Extended Support charges"
/// (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/extended-support.html,
/// https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/extended-support-charges.html), read
/// 2026-11-29: Redis OSS 4 and 5 on 2026-01-31, Redis OSS 6 on 2027-01-31. AWS has published no
/// date for 7.x, and Valkey versions have none.
pub const STANDARD_SUPPORT_ENDS: [(EngineVersion, &str); 1] = [(EngineVersion::V6_2, "2027-01-31")];

impl EngineVersion {
    pub const ALL: [EngineVersion; 7] = [
        EngineVersion::V6_2,
        EngineVersion::V7_0,
        EngineVersion::V7_1,
        EngineVersion::V7_2,
        EngineVersion::V8_0,
        EngineVersion::V8_1,
        EngineVersion::V8_2,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EngineVersion::V6_2 => "6.2",
            EngineVersion::V7_0 => "7.0",
            EngineVersion::V7_1 => "7.1",
            EngineVersion::V7_2 => "7.2",
            EngineVersion::V8_0 => "8.0",
            EngineVersion::V8_1 => "8.1",
            EngineVersion::V8_2 => "8.2",
        }
    }

    pub fn engine(self) -> Engine {
        if self <= EngineVersion::V7_1 { Engine::Redis } else { Engine::Valkey }
    }

    /// The cache parameter group family of this version.
    pub fn family(self) -> &'static str {
        match self {
            EngineVersion::V6_2 => "redis6.x",
            EngineVersion::V7_0 | EngineVersion::V7_1 => "redis7",
            EngineVersion::V7_2 => "valkey7",
            EngineVersion::V8_0 | EngineVersion::V8_1 | EngineVersion::V8_2 => "valkey8",
        }
    }
}

pub use crate::stack::DeletionPolicy;

/// What the operator reports. The stack lifecycle fields are shared by every kind of data stack;
/// the endpoint fields are Redis's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OmsRedisStatus {
    #[serde(flatten)]
    pub stack: StackStatus,
    /// Primary (write) endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Reader endpoint (replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_group_id: Option<String>,
    /// The CloudWatch alarms the stack has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarm_names: Vec<String>,
    /// Monthly cost of the configuration as deployed and, with spec.workload, the memory it takes
    /// and the cheapest node type that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizing: Option<super::sizing::SizingStatus>,
}
