//! The `OmsDynamoTable` custom resource: one DynamoDB table, what a platform team asks for and what
//! the operator reports.
//!
//! Every rule a user can break is in the schema or a CEL rule here, so the apiserver refuses a bad
//! manifest at apply time with a message that says what to change. Omitted fields take the
//! environment's preset (see [`super::presets`]); the rules that depend on them reason about the
//! presets too.

use crate::redis::spec::{DNS_SUBDOMAIN_PATTERN, DriftDetectionSpec, REGION_PATTERN, TAGS_MESSAGE, TAGS_RULE};
use crate::stack::DeletionPolicy;
use crate::stack::status::StackStatus;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::presets;

/// Stack names double as table names: CloudFormation's stack-name rules (letters, digits and
/// hyphens, starting with a letter) are the stricter of the two.
pub const STACK_NAME_PATTERN: &str = "^[a-zA-Z][-a-zA-Z0-9]*$";
pub const STACK_NAME_MAX: usize = 128;
/// DynamoDB's attribute names are any 1–255 bytes; the operator takes printable ASCII without
/// spaces, what the OMS's names (orderId, clientId#symbol…) need.
const ATTRIBUTE_NAME_PATTERN: &str = r"^[!-~]{1,255}$";
/// DynamoDB's index names: 3–255 of letters, digits, `_`, `-` and `.`; at most 128 here, so that the
/// list of index names fits in the stack parameter that records them.
const INDEX_NAME_PATTERN: &str = r"^[a-zA-Z0-9_.-]{3,128}$";

/// The indexes (the schema defaults the list to empty, so it is always there and its bound of 20
/// items holds for the rules' cost).
const INDEXES: &str = "self.globalSecondaryIndexes";

/// At most one index added or removed per edit, and none changed in place but for its capacity:
/// what CloudFormation can update on AWS::DynamoDB::Table without failing. A rule of the list
/// itself (`self` the new list, `oldSelf` the old).
fn one_index_change_rule() -> String {
    "self.filter(i, !oldSelf.exists(o, o.indexName == i.indexName)).size() + \
     oldSelf.filter(o, !self.exists(i, i.indexName == o.indexName)).size() <= 1 && \
     self.all(i, oldSelf.all(o, o.indexName != i.indexName || (o.partitionKey == i.partitionKey && \
         has(o.sortKey) == has(i.sortKey) && (!has(o.sortKey) || o.sortKey == i.sortKey) && \
         (has(o.projection) ? o.projection.type : 'ALL') == (has(i.projection) ? i.projection.type : 'ALL') && \
         (has(o.projection) && has(o.projection.nonKeyAttributes) ? o.projection.nonKeyAttributes : []) == \
         (has(i.projection) && has(i.projection.nonKeyAttributes) ? i.projection.nonKeyAttributes : []))))"
        .to_string()
}

/// Every key attribute (the table's and its indexes') named twice has the same type both times:
/// DynamoDB defines each attribute once. Each key becomes "<type>:<name>" (types have no colon), so
/// two keys of one name agree exactly when the whole strings are equal.
fn key_types_agree_rule() -> String {
    let key = |k: &str| format!("{k}.type + ':' + {k}.name");
    let keys = format!(
        "([{pk}] + (has(self.sortKey) ? [{sk}] : []) + {INDEXES}.map(i, {ipk}) + {INDEXES}.filter(i, has(i.sortKey)).map(i, {isk}))",
        pk = key("self.partitionKey"),
        sk = key("self.sortKey"),
        ipk = key("i.partitionKey"),
        isk = key("i.sortKey"),
    );
    format!("{keys}.all(a, {keys}.all(b, a == b || a.substring(a.indexOf(':')) != b.substring(b.indexOf(':'))))")
}

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "data.oms-spider.io",
    version = "v1alpha1",
    kind = "OmsDynamoTable",
    plural = "omsdynamotables",
    singular = "omsdynamotable",
    shortname = "omsdt",
    namespaced,
    status = "OmsDynamoTableStatus",
    doc = "An OMS Spider DynamoDB table, reconciled into a CloudFormation stack",
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Reason", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].reason"#),
    printcolumn(name = "Billing", type_ = "string", json_path = ".status.appliedParameters.BillingMode"),
    printcolumn(name = "Items", type_ = "integer", json_path = ".status.itemCount"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.stackStatus"),
    printcolumn(name = "Table", type_ = "string", json_path = ".status.tableName", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(format!(
        "has(self.spec.stackName) || (size(self.metadata.name) >= 3 && size(self.metadata.name) <= {STACK_NAME_MAX} && self.metadata.name.matches(r'{STACK_NAME_PATTERN}'))"
    )).message(
        "metadata.name becomes the CloudFormation stack and the table's name, so it must be 3 to 128 letters, digits and hyphens, starting with a letter (no dots); choose such a name or set spec.stackName"
    ),
)]
#[x_kube(validation = Rule::new(
    "has(oldSelf.stackName) ? (has(self.stackName) && self.stackName == oldSelf.stackName) : !has(self.stackName)"
).message("stackName is immutable: it names the CloudFormation stack and the table; create a new OmsDynamoTable for another table"))]
#[x_kube(validation = Rule::new(
    "has(oldSelf.region) ? (has(self.region) && self.region == oldSelf.region) : !has(self.region)"
).message("region is immutable: it names where the table lives, so it cannot be added, changed or removed once the resource exists; create a new OmsDynamoTable for a table in another region"))]
#[x_kube(validation = Rule::new(
    "has(oldSelf.sortKey) ? (has(self.sortKey) && self.sortKey == oldSelf.sortKey) : !has(self.sortKey)"
).message("sortKey is immutable: a table's key schema is fixed when it is created (changing it replaces the table and its data). Create a new OmsDynamoTable for another key schema"))]
#[x_kube(validation = Rule::new(
    "!has(oldSelf.timeToLiveAttribute) || !has(self.timeToLiveAttribute) || self.timeToLiveAttribute == oldSelf.timeToLiveAttribute"
).message("timeToLiveAttribute cannot be renamed in one edit: DynamoDB turns time to live off before it can use another attribute. Remove timeToLiveAttribute, wait for Ready, then set the new name (AWS may refuse to turn it on again for up to an hour)"))]
#[x_kube(validation = Rule::new(
    "!has(self.provisionedThroughput) || (has(self.billingMode) && self.billingMode == 'PROVISIONED')"
).message("provisionedThroughput is only for billingMode: PROVISIONED; remove it, or set billingMode: PROVISIONED"))]
#[x_kube(validation = Rule::new(
    "!has(self.billingMode) || self.billingMode != 'PROVISIONED' || has(self.provisionedThroughput)"
).message("billingMode: PROVISIONED needs provisionedThroughput (readCapacityUnits and writeCapacityUnits)"))]
#[x_kube(validation = Rule::new(format!(
    "{INDEXES}.all(i, !has(i.provisionedThroughput) || (has(self.billingMode) && self.billingMode == 'PROVISIONED'))"
)).message("globalSecondaryIndexes[].provisionedThroughput is only for billingMode: PROVISIONED; remove it, or set billingMode: PROVISIONED"))]
#[x_kube(validation = Rule::new(
    "self.environment != 'prod' || !has(self.deletionProtection) || self.deletionProtection"
).message("environment prod needs deletionProtection: remove the field to take the prod preset, or set it to true"))]
#[x_kube(validation = Rule::new(
    "self.environment != 'prod' || !has(self.pointInTimeRecovery) || self.pointInTimeRecovery"
).message("environment prod needs pointInTimeRecovery: remove the field to take the prod preset, or set it to true"))]
#[x_kube(validation = Rule::new(format!(
    "!({protected}) || {policy} == 'Retain'",
    protected = presets::deletion_protection_cel(),
    policy = presets::deletion_policy_cel()
)).message(Message::Expression(presets::DELETION_POLICY_MESSAGE_CEL.into())))]
#[x_kube(validation = Rule::new(key_types_agree_rule()).message(
    "an attribute used as a key by the table and an index (or by two indexes) must have the same type in each: DynamoDB defines each attribute once"
))]
#[serde(rename_all = "camelCase")]
pub struct OmsDynamoTableSpec {
    /// dev, staging or prod; selects the preset for every omitted field. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "environment is immutable: create a new OmsDynamoTable for another environment"
    ))]
    pub environment: super::Environment,

    /// The partition (hash) key. Immutable: a table's keys are fixed when it is created.
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "partitionKey is immutable: a table's key schema is fixed when it is created (changing it replaces the table and its data). Create a new OmsDynamoTable for another key schema"
    ))]
    pub partition_key: KeyAttribute,

    /// The sort (range) key, if the table has one. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,

    /// PAY_PER_REQUEST (on demand, the default) or PROVISIONED (with provisionedThroughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "BillingMode")]
    pub billing_mode: Option<BillingMode>,

    /// Reads and writes per second; only with billingMode PROVISIONED. Indexes without their own
    /// take the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<Throughput>,

    /// Global secondary indexes, at most 20 (DynamoDB's default quota). One index can be added or
    /// removed per edit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), extend("default" = []))]
    #[x_kube(validation = Rule::new("self.all(i, self.exists_one(j, j.indexName == i.indexName))")
        .message("globalSecondaryIndexes: each index needs its own indexName"))]
    #[x_kube(validation = Rule::new(
        "self.map(i, has(i.projection) && has(i.projection.nonKeyAttributes) ? size(i.projection.nonKeyAttributes) : 0).sum() <= 100"
    ).message("globalSecondaryIndexes: at most 100 nonKeyAttributes in all indexes together (DynamoDB's limit)"))]
    #[x_kube(validation = Rule::new(one_index_change_rule()).message(
        "DynamoDB adds or removes one global secondary index per update and never changes an index's keys or projection in place (only its provisioned capacity). Make one index change per edit; to change an index, remove it in one edit and add it back in the next"
    ))]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,

    /// A number attribute holding each item's expiry time (epoch seconds): DynamoDB deletes expired
    /// items. Leave out for no time to live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = ATTRIBUTE_NAME_PATTERN))]
    pub time_to_live_attribute: Option<String>,

    /// A stream of item changes (for audit trails and projections): what its records carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSpec>,

    /// STANDARD (default), or STANDARD_INFREQUENT_ACCESS for a table read rarely (cheaper storage,
    /// dearer requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "TableClass")]
    pub table_class: Option<TableClass>,

    /// Continuous backups, restorable to any second of the last 35 days. Default: off in dev, on in
    /// staging and prod (required in prod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery: Option<bool>,

    /// DynamoDB refuses to delete the table while this is on. Default: on in prod (required there),
    /// off elsewhere. A protected table can only be retained when its resource is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,

    /// Encrypt at rest with the AWS managed KMS key aws/dynamodb (key use audited in CloudTrail)
    /// instead of DynamoDB's default AWS owned key. Default: on in staging and prod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_encryption: Option<bool>,

    /// CloudFormation stack name, and the table's name. Default: metadata.name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 128), regex(pattern = STACK_NAME_PATTERN))]
    pub stack_name: Option<String>,

    /// Secret that receives the connection settings. Default: <metadata.name>-dynamodb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: Option<String>,

    /// AWS region. Default: the operator's region. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: Option<String>,

    /// Extra tags for the stack and its table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 40))]
    #[x_kube(validation = Rule::new(TAGS_RULE).message(TAGS_MESSAGE))]
    pub tags: Option<BTreeMap<String, String>>,

    /// What deleting this resource does to the table: Delete, Retain, or Snapshot (an on-demand
    /// DynamoDB backup first, kept after the table is gone). Default: Delete in dev, Snapshot in
    /// staging, Retain in prod. A table with deletion protection can only be retained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "DeletionPolicy")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Take over an existing stack of this name that no operator owns. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_existing_stack: Option<bool>,

    /// CloudFormation drift detection of the table (a console or CLI change), reported as the
    /// Drifted condition. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detection: Option<DriftDetectionSpec>,
}

/// A key attribute: its name and type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttribute {
    #[schemars(length(min = 1, max = 255), regex(pattern = ATTRIBUTE_NAME_PATTERN))]
    pub name: String,
    /// String, Number or Binary.
    #[serde(rename = "type")]
    pub type_: AttributeType,
}

/// A key's type, spelled out: DynamoDB's one-letter S, N and B would read as YAML booleans (`N` is
/// false to kubectl's YAML parser).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum AttributeType {
    String,
    Number,
    Binary,
}

impl AttributeType {
    /// DynamoDB's letter for it.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "S",
            AttributeType::Number => "N",
            AttributeType::Binary => "B",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum BillingMode {
    PAY_PER_REQUEST,
    PROVISIONED,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::PAY_PER_REQUEST => "PAY_PER_REQUEST",
            BillingMode::PROVISIONED => "PROVISIONED",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum TableClass {
    STANDARD,
    STANDARD_INFREQUENT_ACCESS,
}

impl TableClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TableClass::STANDARD => "STANDARD",
            TableClass::STANDARD_INFREQUENT_ACCESS => "STANDARD_INFREQUENT_ACCESS",
        }
    }
}

/// Provisioned capacity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    /// Strongly consistent reads of up to 4 KB per second, 1 to 40000 (the default per-table quota).
    #[schemars(range(min = 1, max = 40000))]
    pub read_capacity_units: i64,
    /// Writes of up to 1 KB per second, 1 to 40000.
    #[schemars(range(min = 1, max = 40000))]
    pub write_capacity_units: i64,
}

/// The table's stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamSpec {
    /// KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES.
    pub view_type: StreamViewType,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum StreamViewType {
    KEYS_ONLY,
    NEW_IMAGE,
    OLD_IMAGE,
    NEW_AND_OLD_IMAGES,
}

impl StreamViewType {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamViewType::KEYS_ONLY => "KEYS_ONLY",
            StreamViewType::NEW_IMAGE => "NEW_IMAGE",
            StreamViewType::OLD_IMAGE => "OLD_IMAGE",
            StreamViewType::NEW_AND_OLD_IMAGES => "NEW_AND_OLD_IMAGES",
        }
    }
}

/// A global secondary index: another key to query the table by.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalSecondaryIndex {
    /// 3 to 128 letters, digits, `_`, `-` and `.`.
    #[schemars(length(min = 3, max = 128), regex(pattern = INDEX_NAME_PATTERN))]
    pub index_name: String,
    pub partition_key: KeyAttribute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,
    /// Which attributes the index carries. Default: ALL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<Projection>,
    /// The index's own capacity (billingMode PROVISIONED only). Default: the table's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<Throughput>,
}

/// The attributes an index carries besides the keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "self.type == 'INCLUDE' ? has(self.nonKeyAttributes) && size(self.nonKeyAttributes) > 0 : !has(self.nonKeyAttributes)",
      "message": "projection.nonKeyAttributes goes with type INCLUDE, and INCLUDE needs at least one" }
]))]
pub struct Projection {
    /// ALL, KEYS_ONLY, or INCLUDE (the keys and nonKeyAttributes).
    #[serde(rename = "type")]
    pub type_: ProjectionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub non_key_attributes: Option<Vec<NonKeyAttribute>>,
}

/// A non-key attribute name (a newtype, so the schema can bound each name).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(transparent)]
pub struct NonKeyAttribute(#[schemars(length(min = 1, max = 255), regex(pattern = ATTRIBUTE_NAME_PATTERN))] pub String);

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum ProjectionType {
    ALL,
    KEYS_ONLY,
    INCLUDE,
}

impl ProjectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionType::ALL => "ALL",
            ProjectionType::KEYS_ONLY => "KEYS_ONLY",
            ProjectionType::INCLUDE => "INCLUDE",
        }
    }
}

/// What the operator reports: the lifecycle (shared with every kind) and the table's own facts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OmsDynamoTableStatus {
    #[serde(flatten)]
    pub stack: StackStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_arn: Option<String>,
    /// The latest stream's ARN, when the table has a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// PAY_PER_REQUEST or PROVISIONED, as deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_mode: Option<String>,
    /// The global secondary indexes, as deployed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<String>,
    /// An IAM policy for a workload that reads and writes this table and its indexes (and reads its
    /// stream): attach it to the workload's IRSA role as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_policy: Option<String>,
    /// ACTIVE, UPDATING, …, as DynamoDB last said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_status: Option<String>,
    /// Items in the table, as DynamoDB last said (it refreshes the figure about every six hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<i64>,
    /// The table's size in bytes, refreshed like itemCount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_size_bytes: Option<i64>,
    /// When tableStatus, itemCount and tableSizeBytes were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_read_at: Option<String>,
}
