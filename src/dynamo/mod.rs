//! The DynamoDB table data stack: the `OmsDynamoTable` resource, its presets, the template (with the
//! spec's indexes written in), and how a spec becomes stack parameters and stack outputs become the
//! connection Secret, the status, and the IAM policy a workload attaches.
//!
//! It plugs into the same lifecycle as [`crate::redis`] through [`DataStack`]; nothing generic is
//! repeated here.

pub mod policy;
pub mod presets;
pub mod spec;
pub mod template;

pub use crate::redis::Environment;
use crate::stack::{BackupTarget, DataStack, DeletionPolicy, Desired, Published, SpecError};
use kube::ResourceExt;
use presets::preset;
pub use spec::{BillingMode, OmsDynamoTable, OmsDynamoTableSpec, OmsDynamoTableStatus};
use std::collections::BTreeMap;
use template::{output, param};

/// The connection Secret's keys. AWS_REGION is the variable the AWS SDKs for Go and Rust read
/// themselves, so a workload that loads the Secret as its environment talks to the table's region.
pub mod secret_key {
    pub const TABLE_NAME: &str = "DYNAMODB_TABLE_NAME";
    pub const TABLE_ARN: &str = "DYNAMODB_TABLE_ARN";
    /// Only when the table has a stream.
    pub const STREAM_ARN: &str = "DYNAMODB_STREAM_ARN";
    pub const REGION: &str = "AWS_REGION";
}

/// How long the table's own figures (status, item count, size) are reused before DynamoDB is asked
/// again. DynamoDB itself refreshes the count and size about every six hours.
pub const TABLE_READ_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// DynamoDB's default quota of global secondary indexes per table.
pub const MAX_INDEXES: usize = 20;

impl OmsDynamoTable {
    pub fn stack_name(&self) -> String {
        self.spec.stack_name.clone().unwrap_or_else(|| self.name_any())
    }

    pub fn secret_name(&self) -> String {
        self.spec.secret_name.clone().unwrap_or_else(|| format!("{}-dynamodb", self.name_any()))
    }

    fn provisioned(&self) -> bool {
        self.spec.billing_mode.unwrap_or(preset(self.spec.environment).billing_mode) == BillingMode::PROVISIONED
    }

    /// The stack parameters this spec resolves to, presets filled in. The schema and CEL rules refuse
    /// what is checked here at apply time; this guards objects that predate them.
    pub fn parameters(&self) -> Result<BTreeMap<String, String>, SpecError> {
        let s = &self.spec;
        let p = preset(s.environment);
        let billing = s.billing_mode.unwrap_or(p.billing_mode);
        let provisioned = billing == BillingMode::PROVISIONED;
        let protection = s.deletion_protection.unwrap_or(p.deletion_protection);
        let pitr = s.point_in_time_recovery.unwrap_or(p.point_in_time_recovery);
        if provisioned != s.provisioned_throughput.is_some() {
            return Err(SpecError(
                "provisionedThroughput goes with billingMode: PROVISIONED, and PROVISIONED needs it".into(),
            ));
        }
        if !provisioned && s.global_secondary_indexes.iter().any(|i| i.provisioned_throughput.is_some()) {
            return Err(SpecError(
                "globalSecondaryIndexes[].provisionedThroughput is only for billingMode: PROVISIONED".into(),
            ));
        }
        if s.environment == Environment::Prod && !(protection && pitr) {
            return Err(SpecError("environment prod needs deletionProtection and pointInTimeRecovery".into()));
        }
        if protection && self.deletion_policy() != DeletionPolicy::Retain {
            return Err(SpecError(
                "a table with deletion protection can only be retained: set deletionPolicy: Retain, or \
                 deletionProtection: false"
                    .into(),
            ));
        }
        check_indexes(&self.spec)?;
        let mut out = BTreeMap::from([
            (param::ENVIRONMENT, s.environment.as_str().to_string()),
            (param::PARTITION_KEY_NAME, s.partition_key.name.clone()),
            (param::PARTITION_KEY_TYPE, s.partition_key.type_.as_str().to_string()),
            (param::BILLING_MODE, billing.as_str().to_string()),
            (param::POINT_IN_TIME_RECOVERY, pitr.to_string()),
            (param::DELETION_PROTECTION, protection.to_string()),
            (param::KMS_ENCRYPTION, s.kms_encryption.unwrap_or(p.kms_encryption).to_string()),
            (param::TABLE_CLASS, s.table_class.unwrap_or(spec::TableClass::STANDARD).as_str().to_string()),
        ]);
        if let Some(sort) = &s.sort_key {
            out.insert(param::SORT_KEY_NAME, sort.name.clone());
            out.insert(param::SORT_KEY_TYPE, sort.type_.as_str().to_string());
        }
        if let Some(t) = &s.provisioned_throughput {
            out.insert(param::READ_CAPACITY_UNITS, t.read_capacity_units.to_string());
            out.insert(param::WRITE_CAPACITY_UNITS, t.write_capacity_units.to_string());
        }
        if let Some(ttl) = &s.time_to_live_attribute {
            out.insert(param::TIME_TO_LIVE_ATTRIBUTE, ttl.clone());
        }
        if let Some(stream) = &s.stream {
            out.insert(param::STREAM_VIEW_TYPE, stream.view_type.as_str().to_string());
        }
        let indexes = template::indexes_parameter(&s.global_secondary_indexes, provisioned);
        if !indexes.is_empty() {
            out.insert(param::GLOBAL_SECONDARY_INDEXES, indexes);
        }
        Ok(out.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// The template this spec deploys (see [`template::for_spec`]).
    pub fn deployed_template(&self) -> std::borrow::Cow<'static, str> {
        template::for_spec(
            &self.spec.partition_key,
            self.spec.sort_key.as_ref(),
            &self.spec.global_secondary_indexes,
            self.provisioned(),
        )
    }
}

/// Index names unique, each key attribute of one type, within DynamoDB's limits.
fn check_indexes(s: &OmsDynamoTableSpec) -> Result<(), SpecError> {
    let indexes = &s.global_secondary_indexes;
    if indexes.len() > MAX_INDEXES {
        return Err(SpecError(format!("at most {MAX_INDEXES} globalSecondaryIndexes, not {}", indexes.len())));
    }
    let mut names = std::collections::BTreeSet::new();
    for i in indexes {
        if !names.insert(i.index_name.as_str()) {
            return Err(SpecError(format!("two globalSecondaryIndexes are named {}", i.index_name)));
        }
    }
    let keys = std::iter::once(&s.partition_key)
        .chain(s.sort_key.as_ref())
        .chain(indexes.iter().flat_map(|i| std::iter::once(&i.partition_key).chain(i.sort_key.as_ref())));
    let mut types = BTreeMap::new();
    for k in keys {
        if let Some(t) = types.insert(k.name.as_str(), k.type_)
            && t != k.type_
        {
            return Err(SpecError(format!(
                "attribute {} is a key of type {} in one place and {} in another: DynamoDB defines each attribute once",
                k.name,
                t.as_str(),
                k.type_.as_str()
            )));
        }
    }
    let non_key: usize =
        indexes.iter().filter_map(|i| i.projection.as_ref()?.non_key_attributes.as_ref()).map(Vec::len).sum();
    if non_key > 100 {
        return Err(SpecError(format!("at most 100 nonKeyAttributes in all indexes together, not {non_key}")));
    }
    Ok(())
}

/// The region in an ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME).
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

impl DataStack for OmsDynamoTable {
    fn template_body() -> &'static str {
        template::TEMPLATE_BODY
    }

    fn template() -> &'static serde_json::Value {
        template::parsed()
    }

    fn data_resource_types() -> &'static [&'static str] {
        &["AWS::DynamoDB::Table"]
    }

    fn replacement_note() -> &'static str {
        "the table is named after the stack, and CloudFormation does not replace a resource with a fixed name, so \
         such an update fails and rolls back, leaving the table and its items as they are (and were it replaced, the \
         template's UpdateReplacePolicy Retain would keep the old table)"
    }

    fn desired(&self) -> Result<Desired, SpecError> {
        Ok(Desired {
            stack_name: self.stack_name(),
            template: self.deployed_template(),
            parameters: self.parameters()?,
            tags: self.spec.tags.clone().unwrap_or_default(),
            region: self.spec.region.clone(),
            secret_name: self.secret_name(),
            deletion_policy: self.deletion_policy(),
            adopt_existing: self.spec.adopt_existing_stack.unwrap_or(false),
            allow_replacement: false,
            // A dev table is disposable; staging and prod data is not replaced by an empty table
            // without someone asking.
            recreate_when_lost: self.spec.environment == Environment::Dev,
            credential: None,
            restore: None,
            create_only: &[],
        })
    }

    fn publish(
        &self,
        outputs: &BTreeMap<String, String>,
        parameters: &BTreeMap<String, String>,
        _password: Option<&str>,
    ) -> Result<Published, SpecError> {
        let get = |key: &str| {
            outputs
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| SpecError(format!("the stack has no {key} output")))
        };
        let name = get(output::TABLE_NAME)?;
        let arn = get(output::TABLE_ARN)?;
        let region = arn_region(&arn)
            .ok_or_else(|| SpecError(format!("the stack's {} output is not a table ARN: {arn}", output::TABLE_ARN)))?
            .to_string();
        let streaming = parameters.get(param::STREAM_VIEW_TYPE).is_some_and(|v| !v.is_empty());
        let stream = if streaming { Some(get(output::STREAM_ARN)?) } else { None };
        let mut secret = BTreeMap::from([
            (secret_key::TABLE_NAME.to_string(), name.clone()),
            (secret_key::TABLE_ARN.to_string(), arn.clone()),
            (secret_key::REGION.to_string(), region),
        ]);
        let mut status = serde_json::Map::new();
        if let Some(s) = &stream {
            secret.insert(secret_key::STREAM_ARN.to_string(), s.clone());
            status.insert("streamArn".into(), s.clone().into());
        }
        status.insert("tableName".into(), name.into());
        status.insert("workloadPolicy".into(), policy::workload(&arn, streaming).into());
        status.insert("tableArn".into(), arn.into());
        if let Some(b) = parameters.get(param::BILLING_MODE) {
            status.insert("billingMode".into(), b.clone().into());
        }
        let indexes: Vec<serde_json::Value> = parameters
            .get(param::GLOBAL_SECONDARY_INDEXES)
            .and_then(|v| v.split('@').next())
            .filter(|names| !names.is_empty())
            .map(|names| names.split(',').map(|n| n.to_string().into()).collect())
            .unwrap_or_default();
        if !indexes.is_empty() {
            status.insert("indexes".into(), indexes.into());
        }
        Ok(Published { secret, status })
    }

    fn read_live<'a>(
        &'a self,
        ops: &'a crate::stack::cfn::Ops,
        outputs: &'a BTreeMap<String, String>,
    ) -> futures::future::BoxFuture<'a, serde_json::Map<String, serde_json::Value>> {
        Box::pin(async move {
            let last = self.status.as_ref();
            let previous = || {
                let mut m = serde_json::Map::new();
                if let Some(s) = last {
                    let fields = [
                        ("tableStatus", s.table_status.clone().map(Into::into)),
                        ("itemCount", s.item_count.map(Into::into)),
                        ("tableSizeBytes", s.table_size_bytes.map(Into::into)),
                        ("tableReadAt", s.table_read_at.clone().map(Into::into)),
                    ];
                    m.extend(fields.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))));
                }
                m
            };
            let now = k8s_openapi::jiff::Timestamp::now();
            let fresh = last
                .and_then(|s| s.table_read_at.as_deref())
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .is_some_and(|t| now.duration_since(t).unsigned_abs() < TABLE_READ_INTERVAL);
            let Some(name) = outputs.get(output::TABLE_NAME) else {
                return previous();
            };
            if fresh && last.is_some_and(|s| s.table_name.as_deref() == Some(name.as_str())) {
                return previous();
            }
            match ops.table(name).await {
                Ok(Some(t)) => {
                    let mut m = serde_json::Map::new();
                    m.insert("tableStatus".into(), t.status.into());
                    if let Some(n) = t.item_count {
                        m.insert("itemCount".into(), n.into());
                    }
                    if let Some(n) = t.size_bytes {
                        m.insert("tableSizeBytes".into(), n.into());
                    }
                    m.insert(
                        "tableReadAt".into(),
                        now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now).to_string().into(),
                    );
                    m
                }
                Ok(None) => previous(),
                Err(e) => {
                    tracing::info!(table = %name, error = %e, "could not read the table's item count; keeping the last");
                    previous()
                }
            }
        })
    }

    fn backup_target(&self, outputs: &BTreeMap<String, String>) -> Option<BackupTarget> {
        let table = outputs
            .get(output::TABLE_NAME)
            .filter(|t| !t.is_empty())
            .cloned()
            .or_else(|| self.status.as_ref()?.table_name.clone())?;
        Some(BackupTarget::DynamoDbTable { table_name: table, backup_prefix: "oms-dynamodb-backup" })
    }

    fn drift_check_interval(&self) -> Option<std::time::Duration> {
        Some(self.spec.drift_detection.as_ref()?.interval())
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy.unwrap_or(preset(self.spec.environment).deletion_policy)
    }

    fn region(&self) -> Option<String> {
        self.spec.region.clone()
    }

    fn stack_status(&self) -> Option<&crate::stack::status::StackStatus> {
        self.status.as_ref().map(|s| &s.stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(spec: serde_json::Value) -> OmsDynamoTable {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "data.oms-spider.io/v1alpha1",
            "kind": "OmsDynamoTable",
            "metadata": { "name": "orders", "namespace": "team" },
            "spec": spec,
        }))
        .expect("an OmsDynamoTable")
    }

    fn example(env: &str) -> OmsDynamoTable {
        let text =
            std::fs::read_to_string(crate::repo_file(&format!("examples/dynamodb/{env}.yaml"))).expect("example");
        serde_saphyr::from_str(&text).expect("example parses")
    }

    #[test]
    fn omitted_fields_take_the_environments_preset() {
        let pk = serde_json::json!({ "name": "orderId", "type": "String" });
        let want = [
            ("dev", "false", "false", "false"),
            ("staging", "true", "false", "true"),
            ("prod", "true", "true", "true"),
        ];
        for (env, pitr, protection, kms) in want {
            let t = table(serde_json::json!({ "environment": env, "partitionKey": pk }));
            let p = t.parameters().expect("valid");
            assert_eq!(p[param::BILLING_MODE], "PAY_PER_REQUEST", "{env}");
            assert_eq!(p[param::POINT_IN_TIME_RECOVERY], pitr, "{env}");
            assert_eq!(p[param::DELETION_PROTECTION], protection, "{env}");
            assert_eq!(p[param::KMS_ENCRYPTION], kms, "{env}");
            assert_eq!(p[param::PARTITION_KEY_TYPE], "S");
            assert!(!p.contains_key(param::SORT_KEY_NAME) && !p.contains_key(param::GLOBAL_SECONDARY_INDEXES));
        }
        let policies: Vec<DeletionPolicy> = ["dev", "staging", "prod"]
            .iter()
            .map(|env| table(serde_json::json!({ "environment": env, "partitionKey": pk })).deletion_policy())
            .collect();
        assert_eq!(policies, [DeletionPolicy::Delete, DeletionPolicy::Snapshot, DeletionPolicy::Retain]);
    }

    #[test]
    fn the_examples_are_valid_and_named_for_the_iam_policy() {
        for env in ["dev", "staging", "prod"] {
            let t = example(env);
            let d = t.desired().expect("valid");
            assert!(d.stack_name.starts_with("oms-dynamodb-"), "docs/iam-policy.json scopes oms-dynamodb-* stacks");
            assert_eq!(d.parameters[param::ENVIRONMENT], env);
        }
        let prod = example("prod").parameters().expect("valid");
        assert_eq!(prod[param::READ_CAPACITY_UNITS], "20");
        assert_eq!(prod[param::STREAM_VIEW_TYPE], "NEW_AND_OLD_IMAGES");
        assert!(prod[param::GLOBAL_SECONDARY_INDEXES].starts_with("by-actor@"));
    }

    #[test]
    fn impossible_combinations_are_refused_even_past_the_schema() {
        let pk = serde_json::json!({ "name": "id", "type": "String" });
        let cases = [
            (
                serde_json::json!({ "environment": "dev", "partitionKey": pk, "billingMode": "PROVISIONED" }),
                "provisionedThroughput",
            ),
            (
                serde_json::json!({ "environment": "prod", "partitionKey": pk, "deletionProtection": false }),
                "prod needs",
            ),
            (
                serde_json::json!({ "environment": "staging", "partitionKey": pk, "deletionProtection": true }),
                "only be retained",
            ),
            (
                serde_json::json!({ "environment": "dev", "partitionKey": pk, "globalSecondaryIndexes": [
                    { "indexName": "by-x", "partitionKey": { "name": "id", "type": "Number" } }
                ] }),
                "attribute id",
            ),
            (
                serde_json::json!({ "environment": "dev", "partitionKey": pk, "globalSecondaryIndexes": [
                    { "indexName": "by-x", "partitionKey": { "name": "a", "type": "String" } },
                    { "indexName": "by-x", "partitionKey": { "name": "b", "type": "String" } }
                ] }),
                "two globalSecondaryIndexes",
            ),
        ];
        for (spec, want) in cases {
            let e = table(spec.clone()).desired().expect_err("refused");
            assert!(e.0.contains(want), "{spec}: {e}");
        }
    }

    fn outputs(stream: bool) -> BTreeMap<String, String> {
        let arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders";
        let mut o = BTreeMap::from([
            (output::TABLE_NAME.to_string(), "orders".to_string()),
            (output::TABLE_ARN.to_string(), arn.to_string()),
        ]);
        if stream {
            o.insert(output::STREAM_ARN.to_string(), format!("{arn}/stream/2026-11-29T00:00:00.000"));
        }
        o
    }

    #[test]
    fn outputs_become_the_secret_status_and_workload_policy() {
        let t = example("staging");
        let params = t.parameters().expect("valid");
        let p = t.publish(&outputs(true), &params, None).expect("published");
        assert_eq!(p.secret[secret_key::TABLE_NAME], "orders");
        assert_eq!(p.secret[secret_key::REGION], "eu-west-1", "from the table's ARN");
        assert!(p.secret[secret_key::STREAM_ARN].contains("/stream/"));
        assert_eq!(p.secret.len(), 4);
        assert_eq!(p.status["indexes"], serde_json::json!(["by-symbol"]));
        assert_eq!(p.status["billingMode"], "PAY_PER_REQUEST");
        let policy: serde_json::Value =
            serde_json::from_str(p.status["workloadPolicy"].as_str().expect("a string")).expect("JSON");
        assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(3));
        // A stream the parameters ask for must be in the outputs; none asked, none published.
        assert!(t.publish(&outputs(false), &params, None).expect_err("missing").0.contains("StreamArn"));
        let dev = example("dev");
        let p = dev.publish(&outputs(false), &dev.parameters().expect("valid"), None).expect("published");
        assert!(!p.secret.contains_key(secret_key::STREAM_ARN) && !p.status.contains_key("streamArn"));
    }

    #[test]
    fn a_snapshot_backs_up_the_table_named_in_the_outputs() {
        let t = example("staging");
        assert_eq!(
            t.backup_target(&outputs(false)),
            Some(BackupTarget::DynamoDbTable { table_name: "orders".into(), backup_prefix: "oms-dynamodb-backup" })
        );
        assert_eq!(t.backup_target(&BTreeMap::new()), None, "nothing known: nothing is deleted");
    }
}
