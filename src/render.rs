//! What `oms-data-operator template` prints: a kind's template as shipped, or exactly what a
//! manifest deploys (its template, with a table's indexes written in, and its stack parameters),
//! so a user can inspect a stack before applying the resource.

use crate::stack::DataStack;
use std::collections::BTreeMap;

/// The kinds that deploy a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Redis,
    Dynamodb,
}

/// A kind's template, as shipped.
pub fn shipped(kind: Kind) -> &'static str {
    match kind {
        Kind::Redis => crate::redis::OmsRedis::template_body(),
        Kind::Dynamodb => crate::dynamo::OmsDynamoTable::template_body(),
    }
}

/// What a manifest deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub stack_name: String,
    pub template: String,
    pub parameters: BTreeMap<String, String>,
}

impl Deployment {
    /// The parameters as `aws cloudformation create-stack --parameters file://…` takes them.
    pub fn parameters_json(&self) -> String {
        let list: Vec<serde_json::Value> = self
            .parameters
            .iter()
            .map(|(k, v)| serde_json::json!({ "ParameterKey": k, "ParameterValue": v }))
            .collect();
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    }
}

/// The stack an OmsRedis or OmsDynamoTable manifest (YAML or JSON) deploys, or why it cannot.
pub fn deployment(manifest: &str) -> Result<Deployment, String> {
    let value: serde_json::Value = serde_saphyr::from_str(manifest).map_err(|e| format!("not a manifest: {e}"))?;
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
    let desired = match kind.as_str() {
        "OmsRedis" => parse::<crate::redis::OmsRedis>(value)?.desired(),
        "OmsDynamoTable" => parse::<crate::dynamo::OmsDynamoTable>(value)?.desired(),
        "" => return Err("the manifest has no kind: expected OmsRedis or OmsDynamoTable".into()),
        other => return Err(format!("kind {other} deploys no template: expected OmsRedis or OmsDynamoTable")),
    }
    .map_err(|e| format!("{kind}: {e}"))?;
    Ok(Deployment {
        stack_name: desired.stack_name,
        template: desired.template.into_owned(),
        parameters: desired.parameters,
    })
}

fn parse<K: DataStack>(mut value: serde_json::Value) -> Result<K, String> {
    // A manifest written for `kubectl apply` often has no namespace; the template does not depend on it.
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.entry("namespace").or_insert_with(|| "default".into());
    }
    serde_json::from_value(value).map_err(|e| format!("{}: {e}", K::kind(&())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_manifest_prints_its_template_with_the_indexes_and_its_parameters() {
        let manifest = r#"
apiVersion: data.oms-spider.io/v1alpha1
kind: OmsDynamoTable
metadata: { name: oms-dynamodb-orders-dev }
spec:
  environment: dev
  partitionKey: { name: orderId, type: String }
  globalSecondaryIndexes:
    - indexName: by-client
      partitionKey: { name: clientId, type: String }
"#;
        let d = deployment(manifest).expect("deploys");
        assert_eq!(d.stack_name, "oms-dynamodb-orders-dev");
        assert!(d.template.contains("\"IndexName\": \"by-client\""), "{}", d.template);
        assert!(d.parameters["GlobalSecondaryIndexes"].starts_with("by-client@"));
        assert!(d.parameters_json().contains("\"ParameterKey\": \"PartitionKeyName\""));
        let redis = std::fs::read_to_string(crate::repo_file("examples/dev.yaml")).expect("example");
        assert_eq!(deployment(&redis).expect("deploys").template, shipped(Kind::Redis));
        assert!(deployment("kind: OmsBackup").expect_err("no template").contains("deploys no template"));
        let bad = manifest.replace("environment: dev", "environment: dev\n  billingMode: PROVISIONED");
        assert!(deployment(&bad).expect_err("invalid").contains("provisionedThroughput"));
    }
}
